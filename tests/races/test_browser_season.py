"""A season in a real browser: an admin creates it and schedules two races in it from the site, two racers finish
both (a third one race), the standings show the right points, and finishing the season creates the final's
bracket with the top two."""

from __future__ import annotations

import os

from tests.browser import BROWSER_TEST_MARKS, CHROMIUM, PAGE_TIMEOUT_MS

pytestmark = BROWSER_TEST_MARKS


def lap(ms: int) -> dict:
    return {"trial": 1, "elapsed_time_in_milliseconds": ms, "completion_percentage": 100.0, "off_track_count": 0,
            "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 0,
            "episode_status": "Lap complete"}


def race_results(race, times: dict, make_model) -> None:
    """Each racer submits a model; the evaluation path's services record the run (claim, then succeed), as a
    worker does after the sandbox."""
    from evaluator.contract import RaceResult
    from evaluator.services import attempt_claim_next, attempt_succeed
    from races.services import submission_create

    for racer, ms in times.items():
        submission_create(racer, race, make_model(racer, f"model-{race.pk}"))
        assert attempt_succeed(attempt_claim_next("browser-test"),
                               RaceResult(laps=[lap(ms)], trace={}, simtrace_csv="", duration_s=1.0))


def test_an_admin_runs_a_season_from_the_site(live_server, make_racer, make_model, monkeypatch):
    from django.db import connections
    from playwright.sync_api import expect, sync_playwright

    from races.models import Race, Season
    from races.services import track_install_builtins

    track_install_builtins()
    admin = make_racer("Steward", username="steward")
    admin.is_staff = True
    admin.save()
    vega, orion, lyra = make_racer("Vega"), make_racer("Orion"), make_racer("Lyra")
    shots = os.environ.get("PITLANE_SCREENSHOTS")

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("dialog", lambda dialog: dialog.accept())
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        def shot(name: str) -> None:
            if shots:
                page.screenshot(path=os.path.join(shots, f"season-{name}.png"), full_page=True)

        try:
            page.goto(live_server.url + "/accounts/login/")
            page.get_by_label("Username").fill("steward")
            page.get_by_label("Password").fill("pw-12345!")
            page.get_by_role("button", name="Sign in").click()

            # The season, with a final for the top two.
            page.goto(live_server.url + "/seasons/new/")
            page.get_by_label("Name").fill("Browser Series")
            page.get_by_label("Final:", exact=True).select_option("2")
            shot("form")
            page.get_by_role("button", name="Create season").click()
            page.get_by_text("Season created").wait_for()
            season = Season.objects.get(name="Browser Series")

            # Round 1 from the friendly form: only the chosen type's settings are shown.
            page.goto(live_server.url + "/schedule/new/")
            page.get_by_label("Name").fill("Round 1")
            page.get_by_label("Track:", exact=True).select_option(label="Pitlane Oval")
            expect(page.locator("img.form-track-picture")).to_have_attribute("src", "/tracks/pitlane_oval/preview.png")
            boxes = page.locator("fieldset[data-race-type=OBJECT_AVOIDANCE]")
            expect(boxes).to_be_hidden()
            page.get_by_label("Race type:", exact=True).select_option("OBJECT_AVOIDANCE")
            expect(boxes).to_be_visible()
            page.get_by_label("Race type:", exact=True).select_option("TIME_TRIAL")
            expect(boxes).to_be_hidden()
            page.get_by_label("Total laps:", exact=True).fill("1")
            page.get_by_label("Season:", exact=True).select_option(label="Browser Series")
            assert page.get_by_label("Opens at (UTC time):", exact=True).is_visible()
            shot("schedule-form")
            page.get_by_role("button", name="Schedule race").click()
            page.get_by_text("Scheduled Round 1.").wait_for()

            # Round 2: the same race in the next period; then both open now.
            row = page.locator("tr", has_text="Round 1")
            row.get_by_role("button", name="Clone to next period").click()
            page.get_by_text("Scheduled Round 1 (next round)").wait_for()
            for name in ("Round 1", "Round 1 (next round)"):
                page.locator("tr", has=page.get_by_role("link", name=name, exact=True)).get_by_role(
                    "button", name="Open now").click()
                page.get_by_text(f"{name} is open.").wait_for()
            round_1, round_2 = Race.objects.filter(season=season).order_by("opens_at")
            assert (round_1.phase(), round_2.phase(), round_2.name) == ("open", "open", "Round 1 (next round)")
            shot("schedule")

            race_results(round_1, {vega: 9000, orion: 9500, lyra: 9900}, make_model)  # 25, 18, 15
            race_results(round_2, {vega: 9100, orion: 9300}, make_model)  # 25, 18

            page.goto(f"{live_server.url}/seasons/{season.slug}/")
            standings = page.locator("table.standings tbody tr")
            expect(standings).to_have_count(3)
            texts = [standings.nth(i).inner_text().split() for i in range(3)]
            assert [t[:3] for t in texts] == [["1", "Vega", "final"], ["2", "Orion", "final"], ["3", "Lyra", "15"]]
            assert texts[0][3:5] == ["50", "2"] and texts[1][3:5] == ["36", "2"]  # points, races entered
            assert page.get_by_text("provisional").first.is_visible()
            shot("standings")

            # Close both races from the schedule, then finish the season: the final seeds the top two.
            page.goto(live_server.url + "/schedule/")
            for name in ("Round 1", "Round 1 (next round)"):
                page.locator("tr", has=page.get_by_role("link", name=name, exact=True)).get_by_role(
                    "button", name="Close now").click()
                page.get_by_text(f"{name} is closed.").wait_for()
            page.goto(f"{live_server.url}/seasons/{season.slug}/")
            page.get_by_role("button", name="Finish the season now and create the final").click()
            page.get_by_text("Browser Series final has started").wait_for()
            shot("finished")
            page.get_by_role("link", name="Browser Series final").first.click()
            card = page.locator(".match-card").first
            expect(card).to_contain_text("Vega")
            expect(card).to_contain_text("Orion")
            shot("final")
            page.goto(f"{live_server.url}/seasons/")
            shot("list")
            page.get_by_role("link", name="Browser Series", exact=True).click()
            page.locator("table.standings").get_by_role("link", name="Vega").click()
            seasons = page.locator("section", has=page.get_by_role("heading", name="Seasons"))
            expect(seasons.locator("tbody tr")).to_contain_text("1 of 3")
            expect(seasons.locator("tbody tr")).to_contain_text("finalist")
            shot("profile")
        finally:
            browser.close()
            # Inside Playwright's event loop the ORM calls above ran on a connection of their own: close it, or
            # the test database cannot be dropped.
            connections.close_all()
    season.refresh_from_db()
    (match,) = season.final_race.bracket_matches.all()
    assert (match.racer_a, match.seed_a, match.racer_b, match.seed_b) == (vega, 1, orion, 2)
    assert not errors, errors
