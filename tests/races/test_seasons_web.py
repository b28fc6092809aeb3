"""Season pages, CSV and API, and racer profiles: what each viewer sees (a community season and its private races
stay invisible to outsiders on every route), and who may manage a season."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from evaluator.contract import RaceResult
from evaluator.services import attempt_claim_next, attempt_succeed
from races.forms import LOCAL
from races.models import Race, Season
from races.services import race_join, submission_create
from races.services.seasons import season_attach_race, season_create

pytestmark = pytest.mark.django_db


def lap(ms: int) -> dict:
    return {"trial": 1, "elapsed_time_in_milliseconds": ms, "completion_percentage": 100.0, "off_track_count": 0,
            "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 0,
            "episode_status": "Lap complete"}


def finish(race: Race, racer, ms: int, model) -> None:
    submission_create(racer, race, model)
    assert attempt_succeed(attempt_claim_next("w"), RaceResult(laps=[lap(ms)], trace={}, simtrace_csv="",
                                                               duration_s=1.0))


@pytest.fixture
def league(make_racer, make_race, make_model):
    """A public season with one race (Vega 1st, Orion 2nd) and Vega's private community season with one race
    (Orion joined it and won it)."""
    staff = make_racer("Marshal")
    staff.is_staff = True
    staff.save()
    vega, orion = make_racer("Vega"), make_racer("Orion")
    now = timezone.now()
    window = {"starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=30)}
    public = season_create(Race.Kind.VIRTUAL_CIRCUIT, staff, name="Open Series", final_size=2, **window)
    cup = season_attach_race(public, make_race(name="Open Cup", total_laps=1), staff)
    finish(cup, vega, 9000, make_model(vega, "vega-fast"))
    finish(cup, orion, 9400, make_model(orion, "orion-one"))
    private = season_create(Race.Kind.COMMUNITY, vega, name="Garage League", **window)
    club = season_attach_race(private, make_race(kind=Race.Kind.COMMUNITY, organiser=vega, name="Garage Night",
                                                 total_laps=1), vega)
    race_join(club.invite_code, orion)
    finish(club, orion, 8800, make_model(orion, "secret-weapon"))
    return {"staff": staff, "vega": vega, "orion": orion, "public": public, "private": private, "cup": cup,
            "club": club}


def test_the_standings_page_shows_points_races_and_the_final_places(client, league):
    page = client.get(reverse("races:season_detail", args=[league["public"].slug])).content.decode()
    assert "Open Series" in page and "provisional" in page
    assert page.index(">Vega</a>") < page.index(">Orion</a>")
    assert '<td class="time">25</td>' in page and '<td class="time">18</td>' in page
    assert "Final: top 2" in page and "Open Cup" in page
    assert "Manage the season" not in page  # anonymous


def test_standings_csv_and_api(client, league):
    slug = league["public"].slug
    csv_text = client.get(reverse("races:season_standings_csv", args=[slug])).content.decode()
    assert csv_text.splitlines()[1:] == ["1,Vega,25,1,1,1,25", "2,Orion,18,1,2,2,18"]
    data = client.get(f"/api/seasons/{slug}/standings/").json()
    assert data["provisional"] is True and data["races"] == [league["cup"].slug]
    assert [(r["rank"], r["racer"], r["points"], r["results"][0]["position"]) for r in data["rows"]] == [
        (1, "Vega", 25.0, 1), (2, "Orion", 18.0, 2)]
    detail = client.get(f"/api/seasons/{slug}/").json()
    assert detail["points_table"][:3] == [25, 18, 15] and detail["races"] == [league["cup"].slug]
    assert client.get(f"/api/races/{league['cup'].slug}/").json()["season"] == slug


def test_a_community_season_is_invisible_to_outsiders_on_every_route(client, league, make_racer):
    private = league["private"].slug
    routes = [reverse("races:season_detail", args=[private]),
              reverse("races:season_standings_csv", args=[private]),
              reverse("races:season_edit", args=[private]),
              f"/api/seasons/{private}/", f"/api/seasons/{private}/standings/",
              f"/api/seasons/{private}/standings.csv"]
    for viewer in (None, make_racer("Stranger")):
        if viewer is not None:
            client.force_login(viewer)
        for url in routes:
            if viewer is None and url.endswith("/edit/"):
                continue  # sign-in first
            assert client.get(url).status_code == 404, url
        finish_now = client.post(reverse("races:season_action", args=[private, "finish"]))
        assert finish_now.status_code == (404 if viewer else 302)  # anonymous: sign in first
        slugs = [s["slug"] for s in client.get("/api/seasons/").json()["results"]]
        assert slugs == [league["public"].slug]
        assert "Garage League" not in client.get(reverse("races:season_list")).content.decode()
    # Its member sees it (and its standings), but cannot manage it.
    client.force_login(league["orion"])
    page = client.get(reverse("races:season_detail", args=[private])).content.decode()
    assert "Garage League" in page and ">Orion</a>" in page and "Manage the season" not in page
    assert Season.objects.get(slug=private).finished_at is None


def test_the_racer_profile_shows_only_what_the_viewer_may_see(client, league, make_racer):
    url = reverse("races:racer_profile", args=["orion"])  # aliases are case-insensitive
    page = client.get(url).content.decode()
    assert "Open Cup" in page and "Open Series" in page and "orion-one" in page
    assert "Garage" not in page and "secret-weapon" not in page
    api = client.get("/api/racers/Orion/").json()
    assert [r["race"] for r in api["races"]] == [league["cup"].slug]
    assert api["races"][0]["rank"] == 2 and api["races"][0]["best_lap"] == "00:09.400"
    assert [m["name"] for m in api["models"]] == ["orion-one"]
    client.force_login(league["vega"])  # the organiser sees the private race and season too
    page = client.get(url).content.decode()
    assert "Garage Night" in page and "Garage League" in page and "secret-weapon" in page
    assert client.get(reverse("races:racer_profile", args=["nobody-here"])).status_code == 404
    assert client.get("/api/racers/nobody-here/").status_code == 404


def test_organisers_run_their_season_from_its_page(client, league, make_race):
    vega, private = league["vega"], league["private"]
    second = make_race(kind=Race.Kind.COMMUNITY, organiser=vega, name="Garage Night 2")
    client.force_login(vega)
    page = client.get(reverse("races:season_detail", args=[private.slug])).content.decode()
    assert "Manage the season" in page
    assert f'value="{second.pk}"' in page  # offered in the "Add a race" menu
    client.post(reverse("races:season_action", args=[private.slug, "attach"]), {"race": second.pk})
    assert Race.objects.get(pk=second.pk).season == private
    response = client.post(reverse("races:season_edit", args=[private.slug]), {
        "name": "Garage League", "description": "", "points": "10, 5, 1",
        "starts_at": private.starts_at.strftime(LOCAL),
        "ends_at": private.ends_at.strftime(LOCAL), "best_results": 1, "final_size": "",
        "final_track": ""})
    assert response.status_code == 302
    private.refresh_from_db()
    assert (private.points_table, private.best_results) == ([10, 5, 1], 1)
    bad = client.post(reverse("races:season_edit", args=[private.slug]), {
        "name": "Garage League", "points": "5, 10", "starts_at": private.starts_at.strftime(LOCAL),
        "ends_at": private.ends_at.strftime(LOCAL)})
    assert "decreasing order" in bad.content.decode()
    # Another racer's season page offers them nothing to manage, and their posts are refused.
    client.force_login(league["orion"])
    client.post(reverse("races:season_action", args=[private.slug, "detach"]), {"race": second.pk})
    assert Race.objects.get(pk=second.pk).season == private
    assert client.get(reverse("races:season_edit", args=[private.slug])).status_code == 302


def test_racers_create_community_seasons_and_staff_virtual_ones(client, league, make_racer):
    now = timezone.now()
    form = {"name": "Friday Club", "description": "", "points": "25, 18, 15",
            "starts_at": now.strftime(LOCAL), "ends_at": (now + timedelta(days=9)).strftime(LOCAL),
            "best_results": "", "final_size": 4, "final_track": ""}
    client.force_login(make_racer("Clubber"))
    assert client.post(reverse("races:season_create"), form).status_code == 302
    assert Season.objects.get(name="Friday Club").kind == Race.Kind.COMMUNITY
    client.force_login(league["staff"])
    assert client.post(reverse("races:season_create"), form | {"name": "Summer Circuit"}).status_code == 302
    assert Season.objects.get(name="Summer Circuit").kind == Race.Kind.VIRTUAL_CIRCUIT
    assert not Season.objects.filter(name="Friday Club", kind=Race.Kind.VIRTUAL_CIRCUIT).exists()


def test_the_django_admin_keeps_raw_season_data_and_checks_it(client, league):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-12345!"))
    public = league["public"]
    assert client.get(reverse("admin:races_season_changelist")).status_code == 200
    page = client.get(reverse("admin:races_season_change", args=[public.pk])).content.decode()
    assert "Open Cup" in page  # its races, read-only
    response = client.post(reverse("admin:races_season_add"), {
        "name": "Raw", "slug": "raw", "kind": "virtual_circuit", "starts_at_0": "2026-01-01", "starts_at_1": "00:00",
        "ends_at_0": "2026-02-01", "ends_at_1": "00:00", "points_table": "[1, 5]",
        "races-TOTAL_FORMS": 0, "races-INITIAL_FORMS": 0})
    assert "decreasing order" in response.content.decode()
    assert not Season.objects.filter(slug="raw").exists()


def test_a_track_that_cannot_be_a_slug_is_a_400_not_a_server_error(client, league):
    """Found by the API contract test: a NUL byte reached PostgreSQL, which refuses it with an error."""
    client.force_login(league["vega"])
    response = client.post("/api/races/", {"name": "Nul", "track": "oval\x00", "opens_at": "2030-01-01T00:00:00Z",
                                           "closes_at": "2030-01-02T00:00:00Z"}, content_type="application/json")
    assert response.status_code == 400 and "track" in response.json()
