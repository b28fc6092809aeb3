"""A racer's whole journey in a real browser: sign up, upload a model, submit it, see the leaderboard row."""

from __future__ import annotations

import pytest

from tests.browser import BROWSER_TEST_MARKS, CHROMIUM, PAGE_TIMEOUT_MS

pytestmark = BROWSER_TEST_MARKS


@pytest.fixture
def oval_sprint(make_race, oval_track):
    return make_race(name="Browser Sprint", track=oval_track, total_laps=1, minimum_laps=1, time_cap_s=60)


def test_sign_up_upload_submit_and_see_the_leaderboard_row(live_server, worker, oval_sprint, lapping_archive,
                                                            monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        try:
            page.goto(live_server.url + "/accounts/signup/")
            page.get_by_label("Username").fill("vega")
            page.get_by_label("Password", exact=True).fill("a-Strong-pass-42")
            page.get_by_label("Password confirmation").fill("a-Strong-pass-42")
            page.get_by_role("button", name="Sign up").click()
            page.get_by_label("Alias").fill("Vega")
            page.get_by_role("button", name="Use this alias").click()

            page.goto(live_server.url + "/models/")
            page.get_by_label("Name").fill("driver-clone")
            page.get_by_label("model.tar.gz").set_input_files(
                {"name": "model.tar.gz", "mimeType": "application/gzip", "buffer": lapping_archive}
            )
            page.get_by_role("button", name="Upload and validate").click()
            page.get_by_text("uploaded and validated").wait_for()

            page.goto(f"{live_server.url}/races/{oval_sprint.slug}/")
            page.get_by_role("button", name="Submit to this race").click()
            # The submission page follows the run; then the race page's live leaderboard shows the row.
            page.goto(f"{live_server.url}/races/{oval_sprint.slug}/")
            page.locator("table.leaderboard tbody tr", has_text="Vega").wait_for(timeout=150_000)
            row = page.locator("table.leaderboard tbody tr", has_text="Vega").inner_text()
            assert row.startswith("1") and "00:" in row
        finally:
            browser.close()
