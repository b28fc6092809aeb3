"""Seasons: points by finishing position, shared points for equal times, best-N, count-back, provisional
standings, recalculation after a disqualification, the final seeded from the standings, who sees a season."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from evaluator.contract import RaceResult
from evaluator.services import attempt_claim_next, attempt_succeed
from races.models import BracketMatch, Race, RaceParticipant, Season
from races.services import RuleViolation, race_join, submission_create, submission_disqualify
from races.services.seasons import (
    points_for,
    season_attach_race,
    season_create,
    season_detach_race,
    season_finish,
    season_parse_points,
    season_standings,
    season_standings_csv,
    season_update,
    season_visible_to,
    seasons_finish_due,
)

pytestmark = pytest.mark.django_db(transaction=True)


def lap(ms: int) -> dict:
    return {"trial": 1, "elapsed_time_in_milliseconds": ms, "completion_percentage": 100.0, "off_track_count": 0,
            "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 0,
            "episode_status": "Lap complete"}


@pytest.fixture
def season(staff):
    now = timezone.now()
    return season_create(Race.Kind.VIRTUAL_CIRCUIT, staff, name="Winter Series", starts_at=now - timedelta(days=2),
                         ends_at=now + timedelta(days=30), final_size=2)


@pytest.fixture
def racers(make_racer):
    return {alias: make_racer(alias) for alias in ("Ada", "Bob", "Cyd", "Dio")}


@pytest.fixture
def season_race(make_race, staff):
    def make(season: Season, name: str, **values) -> Race:
        race = make_race(name=name, total_laps=1, **values)
        return season_attach_race(season, race, staff)

    return make


@pytest.fixture
def finish(make_model):
    """``finish(race, {racer: lap ms})``: real submissions, evaluated through the evaluator's attempt services."""

    def run(race: Race, times: dict) -> dict:
        submissions = {}
        for racer, ms in times.items():
            if race.is_community:
                race_join(race.invite_code, racer)
            model = racer.racer_models.filter(name=f"m{race.pk}").first() or make_model(racer, f"m{race.pk}")
            submissions[racer] = submission_create(racer, race, model)
            assert attempt_succeed(attempt_claim_next("w"),
                                   RaceResult(laps=[lap(ms)], trace={}, simtrace_csv="", duration_s=1.0))
        return submissions

    return run


def close(*races: Race) -> None:
    Race.objects.filter(pk__in=[r.pk for r in races]).update(closed_early_at=timezone.now())


def table(season: Season) -> list[tuple]:
    return [(row.rank, row.racer, row.points) for row in season_standings(season).rows]


def test_points_follow_the_table_by_finishing_position(season, season_race, finish, racers):
    race = season_race(season, "Round 1")
    finish(race, {racers["Bob"]: 9500, racers["Ada"]: 9000, racers["Cyd"]: 9900})
    assert table(season) == [(1, "Ada", 25), (2, "Bob", 18), (3, "Cyd", 15)]
    assert season.points_table[:3] == [25, 18, 15]


def test_equal_times_share_the_points_of_the_places_they_occupy(season, season_race, finish, racers):
    race = season_race(season, "Round 1")
    finish(race, {racers["Ada"]: 9000, racers["Bob"]: 9400, racers["Cyd"]: 9400, racers["Dio"]: 9800})
    standings = season_standings(season)
    positions = {row.racer: (row.finishes[race.pk].position, row.points) for row in standings.rows}
    assert positions == {"Ada": (1, 25), "Bob": (2, 16.5), "Cyd": (2, 16.5), "Dio": (4, 12)}
    assert points_for([25, 18, 15], 3, tied=2) == 7.5  # the 4th place beyond the table scores 0


def test_only_the_best_n_results_count(season, season_race, finish, racers, staff):
    season = season_update(season, staff, best_results=2)
    rounds = [season_race(season, f"Round {n}") for n in (1, 2, 3)]
    ada, bo = racers["Ada"], racers["Bob"]
    finish(rounds[0], {ada: 9000, bo: 9100})  # Ada 25, Bo 18
    finish(rounds[1], {bo: 9000, ada: 9100})  # Bo 25, Ada 18
    finish(rounds[2], {bo: 9000, ada: 9100})  # Bo 25, Ada 18 (Ada's worst: not counted)
    standings = season_standings(season)
    assert [(row.racer, row.points) for row in standings.rows] == [("Bob", 50), ("Ada", 43)]
    ada_row = standings.row_of(ada.pk)
    assert [ada_row.finishes[r.pk].counted for r in rounds] == [True, True, False]
    assert ada_row.races_entered == 3 and ada_row.best_finish == 1


def test_equal_points_are_ordered_by_count_back_then_by_who_posted_first(season, season_race, finish, racers, staff):
    season = season_update(season, staff, points_table=[10, 6, 4])
    one, two = season_race(season, "Round 1"), season_race(season, "Round 2")
    ada, bob, cyd, dio = (racers[alias] for alias in ("Ada", "Bob", "Cyd", "Dio"))
    finish(one, {ada: 9000, bob: 9100})  # Ada 10, Bob 6
    finish(two, {cyd: 9000, dio: 9100, bob: 9200})  # Cyd 10, Dio 6, Bob 4
    # 10 points each: Ada and Cyd won a race, Bob did not; Ada's win was posted before Cyd's.
    assert table(season) == [(1, "Ada", 10), (2, "Cyd", 10), (3, "Bob", 10), (4, "Dio", 6)]


def test_standings_are_provisional_while_a_race_is_open_and_final_after(season, season_race, finish, racers):
    race = season_race(season, "Round 1")
    finish(race, {racers["Ada"]: 9000})
    standings = season_standings(season)
    assert standings.provisional and standings.rows[0].finishes[race.pk].provisional
    close(race)
    assert not season_standings(season).rows[0].finishes[race.pk].provisional


def test_a_result_disqualified_after_the_race_is_taken_out_of_the_standings(season, season_race, finish, racers):
    race = season_race(season, "Round 1")
    submissions = finish(race, {racers["Ada"]: 9000, racers["Bob"]: 9500})
    close(race)
    assert table(season) == [(1, "Ada", 25), (2, "Bob", 18)]
    submission_disqualify(submissions[racers["Ada"]], "Wrong car")
    assert table(season) == [(1, "Bob", 25)]


def test_the_final_seeds_the_top_of_the_standings_when_the_season_ends(season, season_race, finish, racers):
    one, two = season_race(season, "Round 1"), season_race(season, "Round 2")
    ada, bo, cy = racers["Ada"], racers["Bob"], racers["Cyd"]
    best_ada = finish(one, {ada: 9000, bo: 9100, cy: 9200})[ada]
    best_bo = finish(two, {bo: 9000, ada: 9100, cy: 9200})[bo]
    close(one, two)
    with pytest.raises(RuleViolation, match="The season ends"):
        season_finish(season)
    assert seasons_finish_due() == 0  # not ended yet
    Season.objects.filter(pk=season.pk).update(ends_at=timezone.now())
    assert seasons_finish_due() == 1
    season.refresh_from_db()
    final = season.final_race
    assert final.race_type == Race.RaceType.HEAD_TO_HEAD and final.bracket_size == 2 and final.season is None
    (match,) = BracketMatch.objects.filter(race=final)
    # 43 points and one win each: Bob completed his results first (he raced round 2 before Ada). Cyd is out.
    assert (match.racer_a, match.seed_a, match.racer_b, match.seed_b) == (bo, 1, ada, 2)
    # Each finalist races the model of their best result.
    assert (match.submission_a, match.submission_b) == (best_bo, best_ada)
    assert seasons_finish_due() == 0 and season_finish(season) == final  # idempotent
    assert BracketMatch.objects.filter(race=final).count() == 1


def test_the_final_page_shows_the_bracket_and_its_season_not_qualifying_or_a_submit_box(
        season, season_race, finish, racers, client):
    one = season_race(season, "Round 1")
    finish(one, {racers["Ada"]: 9000, racers["Bob"]: 9100})
    close(one)
    Season.objects.filter(pk=season.pk).update(ends_at=timezone.now())
    season_finish(season)
    final = Season.objects.get(pk=season.pk).final_race
    for viewer in (None, racers["Ada"]):
        if viewer is not None:
            client.force_login(viewer)
        page = client.get(f"/races/{final.slug}/").content.decode()
        assert "Seeded from the season" in page and "Winter Series" in page
        assert "Qualifying" not in page and "Submit a model" not in page and "sign in</a> to upload" not in page


def test_the_final_waits_for_open_races_and_runs_still_being_evaluated(season, season_race, finish, racers,
                                                                       make_model):
    race = season_race(season, "Round 1")
    finish(race, {racers["Ada"]: 9000, racers["Bob"]: 9100})
    Season.objects.filter(pk=season.pk).update(ends_at=timezone.now())
    with pytest.raises(RuleViolation, match="Still open: Round 1"):
        season_finish(season)
    submission_create(racers["Cyd"], race, make_model(racers["Cyd"], "late"))
    close(race)
    with pytest.raises(RuleViolation, match="still being evaluated"):
        season_finish(season)
    assert seasons_finish_due() == 0


def test_a_season_with_too_few_racers_finishes_without_a_final(season, season_race, finish, racers):
    race = season_race(season, "Round 1")
    finish(race, {racers["Ada"]: 9000})
    close(race)
    Season.objects.filter(pk=season.pk).update(ends_at=timezone.now())
    assert season_finish(season) is None
    season.refresh_from_db()
    assert season.finished_at is not None and "at least 2" in season.final_note
    assert not Race.objects.filter(race_type=Race.RaceType.HEAD_TO_HEAD).exists()


def test_attaching_a_race_checks_kind_dates_and_the_finished_season(season, make_race, staff, racers):
    outside = make_race(name="Too late", opens_at=season.ends_at - timedelta(hours=1),
                        closes_at=season.ends_at + timedelta(days=1))
    with pytest.raises(RuleViolation, match="within its dates"):
        season_attach_race(season, outside, staff)
    community = make_race(kind=Race.Kind.COMMUNITY, organiser=racers["Ada"], name="Private")
    with pytest.raises(RuleViolation, match="A virtual-circuit season counts virtual-circuit races only"):
        season_attach_race(season, community, staff)
    racer_made = season_create(Race.Kind.COMMUNITY, racers["Bob"], name="Bo's league",
                               starts_at=season.starts_at, ends_at=season.ends_at)
    with pytest.raises(RuleViolation, match="its organiser's own races"):
        season_attach_race(racer_made, community, racers["Bob"])
    with pytest.raises(RuleViolation, match="Only the league admins"):
        season_attach_race(season, make_race(name="Fine"), racers["Bob"])
    race = season_attach_race(season, make_race(name="Fine"), staff)
    assert season_detach_race(race, staff).season is None


def test_only_staff_create_virtual_circuit_seasons_and_settings_are_checked(racers, staff):
    now = timezone.now()
    window = {"starts_at": now, "ends_at": now + timedelta(days=1)}
    with pytest.raises(RuleViolation, match="league admins"):
        season_create(Race.Kind.VIRTUAL_CIRCUIT, racers["Ada"], name="Mine", **window)
    with pytest.raises(RuleViolation, match="decreasing order"):
        season_create(Race.Kind.VIRTUAL_CIRCUIT, staff, name="Odd", points_table=[10, 12], **window)
    with pytest.raises(RuleViolation, match="end after it starts"):
        season_create(Race.Kind.VIRTUAL_CIRCUIT, staff, name="Odd", starts_at=now, ends_at=now)
    with pytest.raises(RuleViolation, match="between the years 2000 and 2100"):
        season_create(Race.Kind.VIRTUAL_CIRCUIT, staff, name="Odd", starts_at=now,
                      ends_at=now.replace(year=2200))
    with pytest.raises(RuleViolation, match="top 2, 4, 8, 16"):
        season_create(Race.Kind.VIRTUAL_CIRCUIT, staff, name="Odd", final_size=3, **window)
    assert season_parse_points("10, 8 6;4") == [10, 8, 6, 4]
    with pytest.raises(RuleViolation, match="whole numbers"):
        season_parse_points("ten, eight")


def test_a_community_season_is_seen_by_its_organiser_and_members_only(make_race, finish, racers, staff, make_racer):
    from django.contrib.auth.models import AnonymousUser

    ada, bo, cy = racers["Ada"], racers["Bob"], racers["Cyd"]
    now = timezone.now()
    league = season_create(Race.Kind.COMMUNITY, ada, name="Club league", starts_at=now - timedelta(days=1),
                           ends_at=now + timedelta(days=30), final_size=2)
    race = season_attach_race(league, make_race(kind=Race.Kind.COMMUNITY, organiser=ada, name="Club 1"), ada)
    race_join(race.invite_code, bo)

    def sees(user) -> bool:
        return season_visible_to(user).filter(pk=league.pk).exists()

    assert sees(ada) and sees(bo) and sees(staff)
    assert not sees(cy) and not sees(AnonymousUser())
    RaceParticipant.objects.filter(race=race, user=bo).update(removed_at=now)
    assert not sees(bo)
    # The community final admits the season's members (and nobody else).
    RaceParticipant.objects.filter(race=race, user=bo).update(removed_at=None)
    finish(race, {bo: 9000, cy: 9100})
    close(race)
    Season.objects.filter(pk=league.pk).update(ends_at=timezone.now())
    final = season_finish(league, by=ada)
    assert final.kind == Race.Kind.COMMUNITY and final.organiser == ada
    assert set(final.participants.values_list("user__racer__alias", flat=True)) == {"Bob", "Cyd"}
    with pytest.raises(RuleViolation, match="Only the league admins"):
        season_finish(league, by=make_racer("Outsider"))


def test_standings_csv_has_each_races_position_and_points(season, season_race, finish, racers, staff):
    season = season_update(season, staff, best_results=1)
    one, two = season_race(season, "Round 1"), season_race(season, "Round 2")
    finish(one, {racers["Ada"]: 9000, racers["Bob"]: 9100})
    finish(two, {racers["Ada"]: 9200})
    lines = season_standings_csv(season_standings(season)).splitlines()
    assert lines[0] == (f"rank,racer,points,races_entered,best_finish,{one.slug} position,{one.slug} points,"
                        f"{two.slug} position,{two.slug} points")
    assert lines[1:] == ["1,Ada,25,2,1,1,25,1,25*", "2,Bob,18,1,2,2,18,,"]


def test_its_manager_may_finish_a_season_early_once_its_races_are_closed(season, season_race, finish, racers, staff):
    race = season_race(season, "Round 1")
    finish(race, {racers["Ada"]: 9000, racers["Bob"]: 9100})
    with pytest.raises(RuleViolation, match="Still open"):
        season_finish(season, by=staff)
    close(race)
    with pytest.raises(RuleViolation, match="The season ends"):
        season_finish(season)  # the tick waits for the end
    final = season_finish(season, by=staff)
    assert [(m.racer_a, m.racer_b) for m in final.bracket_matches.all()] == [(racers["Ada"], racers["Bob"])]
    with pytest.raises(RuleViolation, match="finished"):
        season_attach_race(season, race, staff)


def test_the_season_dates_cannot_leave_a_race_outside(season, season_race, staff):
    race = season_race(season, "Round 1")
    with pytest.raises(RuleViolation, match="within its dates"):
        season_update(season, staff, ends_at=race.closes_at - timedelta(hours=1))
    assert season_update(season, staff, ends_at=race.closes_at).ends_at == race.closes_at


def test_the_worker_tick_finishes_seasons():
    from league import periodic

    assert "races.seasons_finish" in [job.name for job in periodic.jobs()]
