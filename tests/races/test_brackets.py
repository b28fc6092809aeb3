"""Head-to-head brackets: seeding from the qualifying board, byes, advancement, refusals, the periodic start."""

from __future__ import annotations

import pytest
from django.utils import timezone

from evaluator.contract import CarRun, MatchResult, RaceResult
from evaluator.models import EvaluationAttempt
from evaluator.services import attempt_claim_next, attempt_succeed
from races.models import BracketMatch, LeaderboardEntry, Race
from races.services import (
    RuleViolation,
    bracket_champion,
    bracket_match_rerun,
    bracket_record_result,
    bracket_rounds,
    bracket_start,
    brackets_start_due,
    race_join,
    submission_create,
)
from races.services.brackets import bracket_match_fail, seeding_order

pytestmark = pytest.mark.django_db(transaction=True)
H2H = Race.RaceType.HEAD_TO_HEAD


def lap(ms: int) -> dict:
    return {"trial": 1, "elapsed_time_in_milliseconds": ms, "completion_percentage": 100.0, "off_track_count": 0,
            "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 0,
            "episode_status": "Lap complete"}


def result(ms_a: int, ms_b: int, trace: dict | None = None) -> MatchResult:
    cars = (CarRun(laps=[lap(ms_a)], trace=trace or {}), CarRun(laps=[lap(ms_b)], trace=trace or {}))
    return MatchResult(cars=cars, lanes=["inner", "outer"], duration_s=1.0)


def qualifying(ms: int) -> RaceResult:
    return RaceResult(laps=[lap(ms)], trace={}, simtrace_csv="", duration_s=1.0)


def pending_match_attempts(race: Race) -> int:
    return EvaluationAttempt.objects.filter(target_kind=BracketMatch.EVALUATION_KIND, status="pending",
                                            target_id__in=race.bracket_matches.values("pk")).count()


@pytest.fixture
def qualified(make_race, make_racer, make_model):
    """``qualified(n, **race settings)``: a head-to-head race where racers Qual1..Qualn qualified in that order
    (Qual1 fastest), through real submissions and evaluation attempts; still open. Make every race before
    starting a bracket: waiting matches are claimed before submissions."""

    def make(n: int, prefix: str = "Qual", **values):
        race = make_race(name="Knockout", race_type=H2H, total_laps=1, **values)
        for i in range(1, n + 1):
            racer = make_racer(f"{prefix}{i}")
            if race.is_community:
                race_join(race.invite_code, racer)
            submission_create(racer, race, make_model(racer, "m"))
            claim = attempt_claim_next("qualifier")
            assert attempt_succeed(claim, qualifying(9000 + 100 * i))
        return race

    return make


def close(race: Race) -> Race:
    Race.objects.filter(pk=race.pk).update(closed_early_at=timezone.now())
    race.refresh_from_db()
    return race


def seeds(matches) -> list[tuple]:
    return [(m.round, m.slot, m.seed_a, m.seed_b, m.status) for m in matches]


def alias(user) -> str:
    return user.racer.alias


def test_seeding_keeps_the_top_seeds_apart_until_the_final():
    assert seeding_order(2) == [1, 2]
    assert seeding_order(4) == [1, 4, 2, 3]
    assert seeding_order(8) == [1, 8, 4, 5, 2, 7, 3, 6]
    order = seeding_order(16)
    assert sorted(order) == list(range(1, 17)) and order[:2] == [1, 16]
    assert all(a + b == 17 for a, b in zip(order[::2], order[1::2], strict=True))
    assert 2 in order[8:] and 1 in order[:8]  # 1 and 2 in different halves


def test_a_full_bracket_seeds_one_against_n_with_each_racers_board_submission(qualified):
    race = close(qualified(8, bracket_size=8))
    matches = bracket_start(race)
    assert seeds(matches) == [(1, 0, 1, 8, "queued"), (1, 1, 4, 5, "queued"), (1, 2, 2, 7, "queued"),
                              (1, 3, 3, 6, "queued")]
    first = matches[0]
    assert (alias(first.racer_a), alias(first.racer_b)) == ("Qual1", "Qual8")
    row = LeaderboardEntry.objects.get(race=race, user=first.racer_a)
    assert first.submission_a_id == row.submission_id
    assert pending_match_attempts(race) == 4


def test_fewer_qualifiers_give_the_top_seeds_byes(qualified):
    race = close(qualified(5, bracket_size=8))
    bracket_start(race)
    matches = list(BracketMatch.objects.filter(race=race))
    assert seeds(matches) == [(1, 0, 1, None, "bye"), (1, 1, 4, 5, "queued"), (1, 2, 2, None, "bye"),
                              (1, 3, 3, None, "bye"), (2, 1, 2, 3, "queued")]  # two byes meet at once
    assert alias(matches[0].winner) == "Qual1"
    assert pending_match_attempts(race) == 2


def test_the_bracket_shrinks_to_the_qualifiers_and_takes_only_the_top_of_the_board(qualified):
    small = close(qualified(3, bracket_size=16))
    big = close(qualified(6, prefix="Big", bracket_size=4))  # qualified before any match waits in the queue
    assert seeds(bracket_start(small)) == [(1, 0, 1, None, "bye"), (1, 1, 2, 3, "queued")]
    matches = bracket_start(big)
    assert seeds(matches) == [(1, 0, 1, 4, "queued"), (1, 1, 2, 3, "queued")]
    assert {alias(m.racer_b) for m in matches} == {"Big4", "Big3"}  # Big5 and Big6 are out


def test_winners_advance_with_the_higher_seed_as_car_a_until_a_champion(qualified):
    race = close(qualified(4, bracket_size=4))
    one_four, two_three = bracket_start(race)
    assert bracket_champion(race) is None
    bracket_record_result(one_four, None, result(9500, 9400))  # seed 4 wins
    assert not BracketMatch.objects.filter(race=race, round=2).exists()  # waits for the other semi-final
    bracket_record_result(two_three, None, result(9300, 9600))  # seed 2 wins
    final = BracketMatch.objects.get(race=race, round=2)
    assert (final.seed_a, final.seed_b, alias(final.racer_a), alias(final.racer_b)) == (2, 4, "Qual2", "Qual4")
    assert final.status == "queued" and final.attempts.filter(status="pending").count() == 1
    bracket_record_result(final, None, result(9000, 9000))  # an exact tie goes to the higher seed
    final.refresh_from_db()
    assert final.result["outcome"]["reason"] == "tie: higher seed"
    assert alias(bracket_champion(race)) == "Qual2"
    bracket_record_result(final, None, result(9999, 1))  # decided once: a second result changes nothing
    final.refresh_from_db()
    assert alias(final.winner) == "Qual2"
    columns = bracket_rounds(race)
    assert [c["name"] for c in columns] == ["Semi-finals", "Final"]
    card = columns[1]["matches"][0]
    assert card["winner"] == "Qual2" and [car["seed"] for car in card["cars"]] == [2, 4]
    assert card["cars"][0]["time"] == "00:09.000"


def test_rounds_show_placeholders_for_matches_not_made_yet(qualified):
    race = close(qualified(8))
    bracket_start(race)
    columns = bracket_rounds(race)
    assert [c["name"] for c in columns] == ["Quarter-finals", "Semi-finals", "Final"]
    assert [len(c["matches"]) for c in columns] == [4, 2, 1]
    assert columns[1]["matches"][0]["status"] == "waiting" and columns[1]["matches"][0]["id"] is None


def test_a_bracket_is_refused_clearly(qualified, make_race):
    race = qualified(3)
    with pytest.raises(RuleViolation, match="once qualifying has closed"):
        bracket_start(race)
    lonely = close(qualified(1, prefix="Solo"))
    with pytest.raises(RuleViolation, match="at least 2 qualifiers; this race has 1"):
        bracket_start(lonely)
    close(race)
    bracket_start(race)
    with pytest.raises(RuleViolation, match="already started"):
        bracket_start(race)
    trial = close(make_race(name="Plain"))
    with pytest.raises(RuleViolation, match="Only head-to-head races"):
        bracket_start(trial)


def test_the_bracket_waits_for_qualifying_runs_still_in_the_queue(qualified, make_racer, make_model):
    race = qualified(2)
    late = make_racer("Late")
    submission_create(late, race, make_model(late, "late"))  # queued, not evaluated yet
    close(race)
    with pytest.raises(RuleViolation, match="1 qualifying run"):
        bracket_start(race)
    assert brackets_start_due() == 0
    claim = attempt_claim_next("w")
    attempt_succeed(claim, qualifying(8000))
    assert brackets_start_due() == 1 and brackets_start_due() == 0
    bye = BracketMatch.objects.get(race=race, status="bye")
    assert (bye.seed_a, alias(bye.racer_a)) == (1, "Late")  # the late run topped the board: seed 1


def test_the_periodic_start_skips_open_races_and_races_without_two_qualifiers(qualified, client):
    open_race = qualified(2)
    lonely = close(qualified(1, prefix="Solo"))
    assert brackets_start_due() == 0
    assert not BracketMatch.objects.filter(race__in=[open_race, lonely]).exists()
    assert client.get(f"/api/races/{lonely.slug}/bracket/").json()["state"] == "too_few"
    assert "Fewer than 2 racers qualified" in client.get(f"/races/{lonely.slug}/").content.decode()


def test_a_failed_match_can_be_rerun_until_the_next_round_has_raced(qualified):
    race = close(qualified(4, bracket_size=4))
    one_four, two_three = bracket_start(race)
    bracket_match_fail(one_four, "The evaluator crashed twice")
    one_four.refresh_from_db()
    assert one_four.status == "failed" and one_four.failure_reason == "The evaluator crashed twice"
    with pytest.raises(RuleViolation, match="only a decided or failed match can be re-run"):
        bracket_match_rerun(two_three)  # still queued
    bracket_match_rerun(one_four)
    one_four.refresh_from_db()
    assert one_four.status == "queued" and one_four.attempts.filter(status="pending").count() == 1
    bracket_record_result(one_four, None, result(9000, 9500))
    bracket_record_result(two_three, None, result(9000, 9500))
    final = BracketMatch.objects.get(race=race, round=2)
    bracket_match_rerun(two_three)  # the final has not started: it is withdrawn and made again later
    assert not BracketMatch.objects.filter(pk=final.pk).exists()
    bracket_record_result(two_three, None, result(9900, 9500))
    final = BracketMatch.objects.get(race=race, round=2)
    assert alias(final.racer_b) == "Qual3"
    claim = attempt_claim_next("w")  # the final starts racing
    assert (claim.target_kind, claim.target_id) == (BracketMatch.EVALUATION_KIND, final.pk)
    with pytest.raises(RuleViolation, match="can no longer be re-run"):
        bracket_match_rerun(two_three)


def test_the_organiser_starts_the_bracket_from_the_manage_page_and_nobody_else_can(qualified, make_racer, client):
    organiser = make_racer("Boss")
    race = close(qualified(2, kind=Race.Kind.COMMUNITY, organiser=organiser))
    outsider = race.participants.first().user
    with pytest.raises(RuleViolation, match="Only the organiser"):
        bracket_start(race, by=outsider)
    client.force_login(organiser)
    page = client.get(f"/races/{race.slug}/manage/").content.decode()
    assert "Start the bracket" in page
    response = client.post(f"/races/{race.slug}/manage/start-bracket/")
    assert response.status_code == 302 and BracketMatch.objects.filter(race=race).count() == 1
    page = client.get(f"/races/{race.slug}/manage/").content.decode()
    assert "Start the bracket" not in page
    client.post(f"/races/{race.slug}/manage/start-bracket/")  # a second click: a message, not an error
    assert BracketMatch.objects.filter(race=race).count() == 1


def test_admins_start_brackets_and_rerun_matches_from_the_admin(qualified, client):
    from django.contrib.auth import get_user_model

    race = close(qualified(2))
    client.force_login(get_user_model().objects.create_superuser("chief", "chief@example.com", "pw-12345!"))
    client.post("/admin/races/race/", {"action": "start_bracket", "_selected_action": [race.pk]})
    match = BracketMatch.objects.get(race=race)
    bracket_record_result(match, None, result(9000, 9100))
    client.post("/admin/races/bracketmatch/", {"action": "rerun", "_selected_action": [match.pk]})
    match.refresh_from_db()
    assert match.status == "queued" and match.winner is None
    assert client.get(f"/admin/races/bracketmatch/{match.pk}/change/").status_code == 200


# ------------------------------------------------------------------------------------------ pages and API
TRACE = {"t": [0.0, 0.5, 1.0], "x": [0.0, 0.5, 1.0], "y": [0.0, 0.1, 0.2], "yaw": [0.0, 10.0, 20.0],
         "speed": [0.0, 1.0, 1.5], "status": ["prepare", "in_progress", "in_progress"]}


def raced(ms_a: int, ms_b: int) -> MatchResult:
    return result(ms_a, ms_b, trace=TRACE)


def test_the_race_page_shows_the_qualifying_board_then_the_bracket_and_match_pages(qualified, client):
    race = qualified(3, bracket_size=4)
    page = client.get(f"/races/{race.slug}/").content.decode()
    assert "Qualifying" in page and "top 4 racers are seeded" in page and "Head to head" in page
    close(race)
    bracket_start(race)
    assert "00:08.700" not in client.get(f"/races/{race.slug}/").content.decode()
    semi = BracketMatch.objects.get(race=race, round=1, slot=1)
    bracket_record_result(semi, None, raced(8700, 8800))
    page = client.get(f"/races/{race.slug}/").content.decode()  # the decided match shows at once
    assert "Semi-finals" in page and "Final" in page and "bye" in page
    assert f'href="/matches/{semi.pk}/"' in page and "00:08.700" in page
    detail = client.get(f"/matches/{semi.pk}/").content.decode()
    assert "Qual2" in detail and "Qual3" in detail and "00:08.800" in detail and "winner" in detail
    assert 'data-match-replay="/matches/' in detail
    data = client.get(f"/matches/{semi.pk}/match.json").json()
    assert [car["seed"] for car in data["cars"]] == [2, 3] and data["cars"][1]["trace"]["x"] == TRACE["x"]
    assert data["cars"][0]["lane"] == "inner" and data["winner"] == "Qual2"
    png = client.get(f"/matches/{semi.pk}/trajectory.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    final = BracketMatch.objects.get(race=race, round=2)
    assert client.get(f"/matches/{final.pk}/trajectory.png").status_code == 404  # not raced yet
    assert client.get(f"/matches/{final.pk}/").status_code == 200


def test_the_bracket_api_follows_the_race_and_its_visibility(qualified, make_racer, client):
    from rest_framework.test import APIClient

    organiser = make_racer("Host")
    race = qualified(2, kind=Race.Kind.COMMUNITY, organiser=organiser)
    member = race.participants.first().user
    api = APIClient()
    assert api.get(f"/api/races/{race.slug}/bracket/").status_code == 404  # private: no hint it exists
    api.force_authenticate(make_racer("Stranger"))
    assert api.get(f"/api/races/{race.slug}/bracket/").status_code == 404
    api.force_authenticate(member)
    body = api.get(f"/api/races/{race.slug}/bracket/").json()
    assert body == {"race": race.slug, "state": "qualifying", "bracket_size": 8, "champion": None, "rounds": []}
    close(race)
    assert api.get(f"/api/races/{race.slug}/bracket/").json()["state"] == "starting"
    (final,) = bracket_start(race)
    bracket_record_result(final, None, raced(9300, 9100))
    body = api.get(f"/api/races/{race.slug}/bracket/").json()
    assert body["state"] == "finished" and body["champion"] == "Qual2"
    (column,) = body["rounds"]
    assert column["name"] == "Final" and column["matches"][0]["winner"] == "Qual2"
    match = api.get(f"/api/matches/{final.pk}/").json()
    assert [len(car["laps"]) for car in match["cars"]] == [1, 1] and match["reason"] == "faster"
    api.force_authenticate(make_racer("Outsider"))
    response = api.get(f"/api/matches/{final.pk}/")
    assert response.status_code == 404 and response["Content-Type"].startswith("application/json")
    client.force_login(make_racer("Nosy"))
    assert client.get(f"/matches/{final.pk}/").status_code == 404
    assert client.get(f"/matches/{final.pk}/match.json").status_code == 404


@pytest.mark.parametrize("url", ["/api/races/nope/bracket/", "/api/matches/999999/", "/api/races/%E2%80%A6/bracket/"])
def test_bracket_api_odd_input_is_a_json_404(url, db):
    from rest_framework.test import APIClient

    response = APIClient().get(url)
    assert response.status_code == 404 and response["Content-Type"].startswith("application/json")


def test_a_time_trial_has_no_bracket(make_race, client):
    race = make_race(name="Plain Trial")
    assert client.get(f"/api/races/{race.slug}/bracket/").json()["state"] == "none"
    assert "Bracket" not in client.get(f"/races/{race.slug}/").content.decode()
