"""The match page's replay in a real browser: both cars drawn on the track, no script error."""

from __future__ import annotations

import numpy as np
from django.utils import timezone

from tests.browser import BROWSER_TEST_MARKS, CHROMIUM

pytestmark = BROWSER_TEST_MARKS


def lap(ms: int) -> dict:
    return {"trial": 1, "elapsed_time_in_milliseconds": ms, "completion_percentage": 100.0,
            "episode_status": "Lap complete", "off_track_count": 0, "crash_count": 0, "immobilized_count": 0,
            "reversed_count": 0, "reset_count": 0}


def lap_around(track, lane: str, speed: float) -> dict:
    """A trace along a lane of ``track`` (what the runner records, every 2nd step)."""
    ndist = np.linspace(0, 0.999, 60)
    xy, yaw = track.lane_pose(ndist, lane)
    return {"t": [round(i * 0.4 / speed, 3) for i in range(60)], "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(),
            "yaw": np.degrees(yaw).tolist(), "speed": [speed] * 60, "status": ["in_progress"] * 60}


def test_the_match_replay_draws_both_cars(live_server, make_race, make_racer, make_model, monkeypatch):
    from playwright.sync_api import sync_playwright

    from evaluator.contract import CarRun, MatchResult, RaceResult
    from evaluator.services import attempt_claim_next, attempt_succeed
    from races.models import Race
    from races.services import (
        bracket_record_result,
        bracket_start,
        submission_create,
        track_install_builtins,
        track_sim,
    )

    oval = {t.slug: t for t in track_install_builtins()}["pitlane_oval"]
    race = make_race(name="Browser Duel", track=oval, race_type=Race.RaceType.HEAD_TO_HEAD, total_laps=1)
    for alias, ms in (("Orange", 9000), ("Skyblue", 9500)):
        racer = make_racer(alias)
        submission_create(racer, race, make_model(racer, alias.lower()))
        attempt_succeed(attempt_claim_next("w"), RaceResult(laps=[lap(ms)], trace={}, simtrace_csv="", duration_s=1))
    Race.objects.filter(pk=race.pk).update(closed_early_at=timezone.now())
    (match,) = bracket_start(race)
    track = track_sim(oval, race.direction)
    cars = (CarRun(laps=[lap(12000)], trace=lap_around(track, "inner", 1.5)),
            CarRun(laps=[lap(14000)], trace=lap_around(track, "outer", 1.2)))
    bracket_record_result(match, None, MatchResult(cars=cars, lanes=["inner", "outer"], duration_s=3.0))

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(f"{live_server.url}/races/{race.slug}/")
            page.get_by_role("link", name="faster · view").click()
            readout = page.locator("[data-replay-readout]")
            page.wait_for_function("document.querySelector('[data-replay-readout]').textContent.includes('Skyblue')")
            text = readout.inner_text()
            assert "#1 Orange" in text and "#2 Skyblue" in text
            # Both car colours are on the canvas.
            colours = page.evaluate("""() => {
                const c = document.querySelector('canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let orange = 0, blue = 0;
                for (let i = 0; i < d.length; i += 4) {
                  if (d[i] === 255 && d[i + 1] === 90 && d[i + 2] === 31) orange++;
                  if (d[i] === 56 && d[i + 1] === 189 && d[i + 2] === 248) blue++;
                }
                return [orange, blue];
            }""")
            assert min(colours) > 20, colours
            # The picture is rendered on request: wait for it to load (or fail) rather than racing it.
            picture = page.locator("img[alt^='Both cars']")
            picture.evaluate("img => img.complete || new Promise(done => { img.onload = img.onerror = done; })")
            assert picture.evaluate("img => img.naturalWidth") > 0
        finally:
            browser.close()
    assert not errors, errors
