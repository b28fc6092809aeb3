"""The admins' scheduling page: staff only (every route), the friendly form with a season, open/close now,
clone to the next period, repeat monthly, attaching a race to a season, the evaluation queue at a glance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from races.forms import LOCAL
from races.models import Race, Season
from races.services import submission_create
from races.services.schedule import add_months, race_repeat_monthly
from races.services.seasons import season_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def season(staff):
    now = timezone.now()
    return season_create(Race.Kind.VIRTUAL_CIRCUIT, staff, name="Spring Series", starts_at=now - timedelta(days=1),
                         ends_at=now + timedelta(days=200), final_size=4)


def routes(race: Race) -> list[tuple[str, str]]:
    action = reverse("races:schedule_action", args=[race.slug, "close-now"])
    return [("get", reverse("races:schedule")), ("get", reverse("races:schedule_create")),
            ("post", reverse("races:schedule_create")), ("post", action)]


def test_every_schedule_route_is_for_staff_only(client, make_racer, make_race, staff):
    race = make_race(name="Guarded")
    for method, url in routes(race):
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    client.force_login(make_racer("Plain"))
    for method, url in routes(race):
        assert getattr(client, method)(url).status_code == 403, url
    assert Race.objects.get(pk=race.pk).phase() == "open"  # the refused close did nothing
    client.force_login(staff)
    assert client.get(reverse("races:schedule")).status_code == 200
    assert client.get(reverse("races:schedule_create")).status_code == 200


def test_staff_schedule_a_race_in_a_season_with_the_friendly_form(client, staff, season, technical_track):
    client.force_login(staff)
    page = client.get(reverse("races:schedule_create")).content.decode()
    assert "Opens at (UTC time)" in page and 'data-race-type="OBJECT_AVOIDANCE"' in page
    opens = timezone.now() + timedelta(days=1)
    response = client.post(reverse("races:schedule_create"), {
        "name": "Spring Round 1", "description": "", "race_type": "OBJECT_AVOIDANCE", "track": technical_track.pk,
        "direction": "counterclockwise", "box_count": 4, "box_placement": "even", "ranking_method": "BEST_LAP_TIME",
        "total_laps": 3, "minimum_laps": 1, "off_track_penalty_s": 2, "collision_penalty_s": 5, "time_cap_s": 180,
        "opens_at": opens.strftime(LOCAL), "closes_at": (opens + timedelta(days=7)).strftime(LOCAL),
        "season": season.pk, "max_submissions_per_racer": 50, "submission_cooldown_s": 0,
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    race = Race.objects.get(name="Spring Round 1")
    assert (race.kind, race.season, race.box_count, race.phase()) == ("virtual_circuit", season, 4, "upcoming")
    page = client.get(reverse("races:schedule")).content.decode()
    assert "Spring Round 1" in page and "Spring Series" in page


def test_the_form_names_what_is_wrong(client, staff, technical_track):
    client.force_login(staff)
    now = timezone.now()
    response = client.post(reverse("races:schedule_create"), {
        "name": "Backwards", "race_type": "TIME_TRIAL", "track": technical_track.pk, "direction": "counterclockwise",
        "ranking_method": "BEST_LAP_TIME", "total_laps": 3, "minimum_laps": 1, "off_track_penalty_s": 2,
        "collision_penalty_s": 5, "time_cap_s": 180, "opens_at": now.strftime("%Y-%m-%dT%H:%M"),
        "closes_at": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"), "max_submissions_per_racer": 50,
        "submission_cooldown_s": 0,
    })
    assert response.status_code == 200
    assert "The race must close after it opens." in response.content.decode()
    assert not Race.objects.filter(name="Backwards").exists()


def test_the_form_refuses_a_year_the_api_refuses_too(client, staff, technical_track):
    """A year typed as 20256 or 0056 is a typo: the web form says so like the API does, and stores nothing."""
    client.force_login(staff)
    response = client.post(reverse("races:schedule_create"), {
        "name": "Far Future", "race_type": "TIME_TRIAL", "track": technical_track.pk, "direction": "counterclockwise",
        "ranking_method": "BEST_LAP_TIME", "total_laps": 3, "minimum_laps": 1, "off_track_penalty_s": 2,
        "collision_penalty_s": 5, "time_cap_s": 180, "opens_at": "2026-12-01T10:00",
        "closes_at": "9999-12-01T10:00", "max_submissions_per_racer": 50, "submission_cooldown_s": 0,
    })
    assert response.status_code == 200
    assert "Give a date between the years 2000 and 2100." in response.content.decode()
    assert not Race.objects.filter(name="Far Future").exists()


def test_open_now_close_now_and_the_season_menu(client, staff, make_race, season):
    client.force_login(staff)
    later = timezone.now() + timedelta(days=2)
    race = make_race(name="Later", opens_at=later, closes_at=later + timedelta(days=1))

    def act(action: str, **data):
        return client.post(reverse("races:schedule_action", args=[race.slug, action]), data)

    act("open-now")
    race.refresh_from_db()
    assert race.phase() == "open"
    act("season", season=season.pk)
    assert Race.objects.get(pk=race.pk).season == season
    act("season", season="")
    assert Race.objects.get(pk=race.pk).season is None
    act("close-now")
    assert Race.objects.get(pk=race.pk).phase() == "closed"


def test_clone_to_the_next_period_and_repeat_monthly(client, staff, make_race, season):
    client.force_login(staff)
    opens = timezone.now() + timedelta(days=1)
    race = make_race(name="Monthly Sprint", opens_at=opens, closes_at=opens + timedelta(days=7))
    race.season = season
    race.save()
    client.post(reverse("races:schedule_action", args=[race.slug, "clone-next"]))
    clone = Race.objects.get(name="Monthly Sprint (next round)")
    assert clone.opens_at == race.closes_at and clone.closes_at - clone.opens_at == timedelta(days=7)
    assert clone.season == season
    client.post(reverse("races:schedule_action", args=[race.slug, "repeat-monthly"]), {"months": 2})
    repeats = Race.objects.filter(name__startswith="Monthly Sprint (").exclude(pk=clone.pk).order_by("opens_at")
    assert [r.opens_at for r in repeats] == [add_months(race.opens_at, 1), add_months(race.opens_at, 2)]
    assert all(r.season == season and r.track_id == race.track_id for r in repeats)


def test_repeats_beyond_the_season_are_scheduled_outside_it(staff, make_race, technical_track):
    now = timezone.now()
    short = season_create(Race.Kind.VIRTUAL_CIRCUIT, staff, name="Short", starts_at=now - timedelta(days=1),
                          ends_at=now + timedelta(days=20))
    race = make_race(name="Cup", opens_at=now + timedelta(days=1), closes_at=now + timedelta(days=8))
    race.season = short
    race.save()
    (next_month,) = race_repeat_monthly(race, 1, staff)
    assert next_month.season is None  # it no longer fits the season's dates


def test_calendar_months_keep_the_day_or_take_the_months_last(staff):
    assert add_months(datetime(2026, 1, 31, 18, 0, tzinfo=UTC), 1) == datetime(2026, 2, 28, 18, 0, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 15, tzinfo=UTC), 3) == datetime(2027, 2, 15, tzinfo=UTC)


def test_the_schedule_shows_the_evaluation_queue_at_a_glance(client, staff, make_race, make_racer, make_model):
    race = make_race(name="Busy Cup")
    for alias in ("Quick", "Slowpoke"):
        racer = make_racer(alias)
        submission_create(racer, race, make_model(racer))
    client.force_login(staff)
    page = client.get(reverse("races:schedule")).content.decode()
    assert "<b>2</b><span>waiting</span>" in page
    assert "#1</span> Submission" in page and "Quick in Busy Cup" in page and "Slowpoke in Busy Cup" in page


def test_a_racer_cannot_repeat_or_clone_through_the_services(make_racer, make_race):
    from races.services import RuleViolation
    from races.services.schedule import race_clone_next

    race = make_race(name="Theirs")
    with pytest.raises(RuleViolation, match="league admins"):
        race_clone_next(race, make_racer("Sneaky"))
    with pytest.raises(RuleViolation, match="league admins"):
        race_repeat_monthly(race, 2, make_racer("Sneakier"))
    assert Race.objects.count() == 1 and Season.objects.count() == 0


def test_the_calendar_shows_each_race_on_the_days_it_is_open(client, staff, make_race):
    from datetime import date

    from races.services.schedule import schedule_calendar

    cup = make_race(name="December Cup", opens_at=datetime(2026, 12, 3, 10, tzinfo=UTC),
                    closes_at=datetime(2026, 12, 5, 12, tzinfo=UTC))
    (december,) = schedule_calendar([cup], date(2026, 12, 1), months=1)
    assert december["title"] == "December 2026"
    open_days = [cell["day"].day for week in december["weeks"] for cell in week if cell["races"] == [cup]]
    assert open_days == [3, 4, 5]
    assert december["weeks"][0][0]["day"] == date(2026, 11, 30) and not december["weeks"][0][0]["in_month"]
    client.force_login(staff)
    now = timezone.now()
    make_race(name="This Month Cup", opens_at=now, closes_at=now + timedelta(days=1))
    page = client.get(reverse("races:schedule")).content.decode()
    assert f"<caption>{timezone.localdate():%B %Y}</caption>" in page and 'title="This Month Cup"' in page
