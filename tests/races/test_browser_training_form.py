"""The create-model page in a real browser (Debian chromium): the reward editor marks a syntax error on its line,
and Validate says valid once it is fixed (the check runs in the sandbox); the garage's table follows its inputs.

Set PITLANE_SCREENSHOTS=<folder> to keep a screenshot of each step."""

from __future__ import annotations

import pytest

from evaluator.sandbox import bubblewrap_works
from tests.browser import BROWSER_TEST_MARKS
from tests.races.test_browser_papercuts import browser, new_page, shot, sign_in  # noqa: F401 (fixture)

pytestmark = BROWSER_TEST_MARKS

BROKEN = ("def reward_function(params):\n    speed = params['speed']\n    if speed > 1\n        return 2.0\n"
          "    return 1.0\n")


def set_source(page, source: str) -> None:
    # CodeMirror indents as one types: the text goes in through its own API, as a paste would.
    page.evaluate("(text) => document.querySelector('[data-code-editor]').editor.setValue(text)", source)


def open_create_model_form(browser, live_server, make_racer, username: str):  # noqa: F811
    make_racer(username.capitalize(), username=username)
    page = new_page(browser)
    sign_in(page, live_server.url, username)
    page.goto(f"{live_server.url}/models/new/training/")
    return page


@pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap is not installed (./pitlane test does)")
def test_a_syntax_error_is_marked_on_its_line_and_the_fix_validates(browser, live_server, make_racer,  # noqa: F811
                                                                      technical_track):
    page = open_create_model_form(browser, live_server, make_racer, "coder")
    page.get_by_label("Track").select_option("pitlane_technical")
    set_source(page, BROKEN)
    page.get_by_role("button", name="Validate").click()
    page.wait_for_selector(".validation.invalid")
    assert "Error on line 3" in page.locator("[data-validation]").inner_text()
    marked = page.locator(".CodeMirror-code > div", has=page.locator(".cm-error-line"))
    assert marked.count() == 1 and "if speed > 1" in marked.inner_text()
    assert marked.locator(".CodeMirror-linenumber").inner_text() == "3"
    assert page.locator(".CodeMirror-gutter-wrapper .cm-error-marker").count() == 1
    assert "expected ':'" in page.locator(".cm-error-note").inner_text()
    shot(page, "training-form-syntax-error")

    set_source(page, BROKEN.replace("if speed > 1", "if speed > 1:"))
    assert page.locator(".cm-error-line").count() == 0  # an edit clears the marks
    page.get_by_role("button", name="Validate").click()
    page.wait_for_selector(".validation.valid", timeout=30_000)
    result = page.locator("[data-validation]").inner_text()
    assert "Valid" in result and "start: reward 1.0000" in result
    shot(page, "training-form-valid")

    page.get_by_label("Start from an example").select_option("example_2_prevent_zig_zag")  # replaces after a confirm
    assert page.console_messages == [] or all("favicon" in m for m in page.console_messages)


def editor_text(page) -> str:
    return page.evaluate("() => document.querySelector('[data-code-editor]').editor.getValue()")


def test_the_racing_line_example_follows_the_chosen_track_and_car_until_edited(browser, live_server,  # noqa: F811
                                                                               make_racer, oval_track,
                                                                               technical_track):
    page = open_create_model_form(browser, live_server, make_racer, "liner")
    page.get_by_label("Track").select_option("pitlane_oval")
    page.locator("select[name=vehicle]").select_option("example:pitlane_racer")
    page.get_by_label("Start from an example").select_option("community_racing_line")
    heading = "# The racing line of {} for a {} m/s car:"
    page.wait_for_function("(text) => document.querySelector('[data-code-editor]').editor.getValue().includes(text)",
                           arg=heading.format("pitlane_oval", 3))
    shot(page, "training-form-racing-line")
    page.get_by_label("Track").select_option("pitlane_technical")
    page.wait_for_function("(text) => document.querySelector('[data-code-editor]').editor.getValue().includes(text)",
                           arg=heading.format("pitlane_technical", 3))
    page.locator("select[name=vehicle]").select_option("example:original_deepracer")
    page.wait_for_function("(text) => document.querySelector('[data-code-editor]').editor.getValue().includes(text)",
                           arg=heading.format("pitlane_technical", 1))
    edited = editor_text(page).replace("def reward_function(params):", "def reward_function(params):  # mine")
    set_source(page, edited)
    # The racer's own edit is never replaced: a refresh would start at once, in the change handler, by showing
    # "Computing the track's racing line…" (and this one is not cached, so it could not be over already).
    page.get_by_label("Track").select_option("pitlane_oval")
    assert page.locator("[data-example-note]").is_hidden()
    assert editor_text(page) == edited


def test_the_garage_table_follows_the_console_inputs(browser, live_server, make_racer):  # noqa: F811
    make_racer("Builder", username="builder")
    page = new_page(browser)
    sign_in(page, live_server.url, "builder")
    page.goto(f"{live_server.url}/garage/new/")
    assert page.locator("[data-action-rows] tr").count() == 15
    page.get_by_label("Steering angle granularity").select_option("7")
    page.wait_for_function("document.querySelectorAll('[data-action-rows] tr').length === 21")
    assert page.locator("svg[data-fan-live] .fan-ray").count() == 21
    page.get_by_label("Speed of action 20").fill("2.5")
    page.get_by_label("Name").fill("Seven wide")
    page.get_by_role("button", name="Save vehicle").click()
    page.wait_for_url(f"{live_server.url}/garage/")
    assert "Seven wide" in page.locator(".vehicle-grid").first.inner_text()
    shot(page, "garage")
