"""Training in the browser, the whole way, as a racer does it (Debian chromium): build a car in the garage, write a
reward function with a syntax error and see it marked, fix it, train for a minute, watch the reward graph get its
first point, stop, submit the model to a race and see its leaderboard row. Real workers and the real sandbox.

Set PITLANE_SCREENSHOTS=<folder> to keep a screenshot of each step."""

from __future__ import annotations

import io
import re

import pytest

from evaluator.sandbox import bubblewrap_works
from races.models import TrainingJob
from races.services import model_upload, track_install_builtins
from tests.browser import BROWSER_TEST_MARKS
from tests.races.test_browser_papercuts import browser, new_page, shot, sign_in  # noqa: F401 (fixture)
from tests.races.test_browser_training_form import BROKEN, set_source

pytestmark = [*BROWSER_TEST_MARKS,
              pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap is not installed (./pitlane test does)")]
TRAINING_MS = 600_000  # a bound on waiting for an iteration of training and its export on a loaded machine


def test_a_racer_builds_a_car_trains_it_stops_and_races_the_model(browser, live_server, worker,  # noqa: F811
                                                                   make_racer, make_race, lapping_archive):
    oval = {track.slug: track for track in track_install_builtins()}["pitlane_oval"]
    race = make_race(name="Oval Trial", track=oval, total_laps=1, minimum_laps=1, time_cap_s=60)
    racer = make_racer("Vega", username="vega")
    # A model that laps the oval, to train further: a minute from scratch would not make a lap to rank.
    model_upload(racer, "lapper", io.BytesIO(lapping_archive))
    page = new_page(browser)
    sign_in(page, live_server.url, "vega")

    # The garage: a car of our own, the lab's settings (the ones the new-vehicle form starts from).
    page.goto(f"{live_server.url}/garage/new/")
    page.get_by_label("Name").fill("My lab car")
    page.get_by_role("button", name="Save vehicle").click()
    page.wait_for_url(f"{live_server.url}/garage/")
    shot(page, "training-1-garage")

    # Create model: the reward function's syntax error is marked on its line, then fixed.
    page.goto(f"{live_server.url}/models/new/training/")
    page.get_by_label("Model name").fill("web-first")
    page.get_by_label("Track").first.select_option("pitlane_oval")
    page.get_by_label("Vehicle").first.select_option(label="My lab car")
    page.get_by_label("Clone a model").select_option(label="lapper")
    set_source(page, BROKEN)
    page.get_by_role("button", name="Validate").click()
    page.wait_for_selector(".validation.invalid")
    assert "Error on line 3" in page.locator("[data-validation]").inner_text()
    set_source(page, BROKEN.replace("if speed > 1", "if speed > 1:"))
    page.get_by_role("button", name="Validate").click()
    page.wait_for_selector(".validation.valid")
    # The cloned model drives whole laps, so episodes are long: small iterations show a point within the minute.
    page.get_by_label("Episodes between policy updates").fill("5")
    page.get_by_label("Number of epochs").fill("3")
    # The budget is no clock for CPU work: the test stops the run itself after the first point. (With 1 minute, a
    # loaded 2-core machine once ended the run at its budget before iteration 1 had finished: 0 iterations.)
    page.get_by_label("Maximum time (minutes)").fill("8")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/training/\d+/$"))
    job = TrainingJob.objects.get(name="web-first")

    # The live page: the reward graph gets its first point as the first iteration finishes.
    try:
        page.wait_for_function("() => { const c = Chart.getChart(document.querySelector('[data-reward-chart]'));"
                               " return c && c.data.datasets[0].data.length >= 1; }", timeout=TRAINING_MS)
    except Exception:
        job.refresh_from_db()
        shot(page, "training-timeout")
        raise AssertionError(f"no first point: job {job.status} {job.failure_reason} {job.iterations} "
                             f"{page.console_messages}") from None
    assert int(page.locator("[data-counter=iteration]").inner_text()) >= 1
    # ... and what the car saw in that iteration's first evaluation episode plays as a film.
    page.wait_for_function("() => { const film = document.querySelector('[data-camera]');"
                           " return !film.hidden && film.complete && film.naturalWidth === 160; }", timeout=TRAINING_MS)
    assert page.locator("[data-camera-caption]").inner_text().startswith("Iteration ")
    shot(page, "training-2-first-point")
    page.get_by_role("button", name="Stop").click()
    page.wait_for_selector("[data-model-link]:visible", timeout=TRAINING_MS)
    job.refresh_from_db()
    assert job.status == "done" and job.model is not None, job.failure_reason
    shot(page, "training-3-done")

    # The model is a model like any other: submit it from its page, and its run reaches the leaderboard.
    page.locator("[data-model-link]").click()
    page.wait_for_url(f"{live_server.url}/models/{job.model.pk}/")
    shot(page, "training-3b-model")
    page.get_by_role("button", name=f"Submit web-first to {race.name}").click()
    page.wait_for_url(re.compile(r"/submissions/\d+/$"))
    page.goto(f"{live_server.url}/races/{race.slug}/")
    page.locator("table.leaderboard tbody tr", has_text="Vega").wait_for(timeout=TRAINING_MS)
    assert page.locator("[data-ranked]").inner_text() == "1 racer ranked"  # the head follows the live board
    shot(page, "training-4-race")
    assert [m for m in page.console_messages if "favicon" not in m and "Failed to load" not in m] == []
