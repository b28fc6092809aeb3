"""A new racer's first minutes in a real browser: sign up, choose the alias, create an API token."""

import os

import pytest

from tests.browser import BROWSER_TEST_MARKS, CHROMIUM, PAGE_TIMEOUT_MS

pytestmark = BROWSER_TEST_MARKS


@pytest.fixture
def page(live_server, monkeypatch, tmp_path):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM is only used by the server thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        yield page
        if os.environ.get("PITLANE_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["PITLANE_SCREENSHOTS"], "account.png"), full_page=True)
        browser.close()


def test_sign_up_choose_alias_and_get_an_api_token(page, live_server):
    page.goto(live_server.url + "/")
    assert page.title() == "Race your RL car · Pitlane"
    page.get_by_role("link", name="Create an account").click()

    page.get_by_label("Username").fill("nova")
    page.get_by_label("Password", exact=True).fill("a-Strong-pass-42")
    page.get_by_label("Password confirmation").fill("a-Strong-pass-42")
    page.get_by_role("button", name="Sign up").click()

    page.get_by_label("Alias").fill("nova")
    page.get_by_role("button", name="Use this alias").click()
    assert page.get_by_text("You race as nova.").is_visible()

    page.get_by_text("nova", exact=True).click()  # account menu
    page.get_by_role("link", name="Account & API token").click()
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#api-token").input_value()
    assert len(token) == 40

    page.reload()
    assert page.locator("#api-token").count() == 0  # shown once
    assert page.get_by_role("button", name="Regenerate token").is_visible()
