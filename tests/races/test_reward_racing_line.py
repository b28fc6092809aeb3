"""The racing-line example for the chosen track and car: the editor asks for it instead of pasting the example file's
line, which is pitlane_technical's at 3 m/s and means nothing on another track (the CLI pastes the track's line)."""

from __future__ import annotations

import ast

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from races.models import Track
from races.services.reward_functions import reward_function_examples
from sim.world.reward_examples import EXAMPLES
from sim.world.reward_function import check_source

pytestmark = pytest.mark.django_db
URL = "/api/reward-functions/racing-line/"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api(make_racer, oval_track, technical_track):
    client = APIClient()
    client.force_authenticate(make_racer())
    return client


def racing_line(source: str) -> list[list[float]]:
    """The RACING_LINE list the source assigns, read without running it."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "RACING_LINE":
            return ast.literal_eval(node.value)
    raise AssertionError("no RACING_LINE in the source")


def test_the_oval_gets_its_own_line_with_speeds_up_to_the_cars_top_speed(api):
    answer = api.get(URL, {"track": "pitlane_oval", "max_speed": 2})
    assert answer.status_code == 200
    body = answer.json()
    assert body["track"] == "pitlane_oval" and body["direction"] == "counterclockwise" and body["max_speed"] == 2
    source = body["source"]
    check_source(source)  # a reward function the trainer accepts
    assert "# The racing line of pitlane_oval for a 2 m/s car:" in source
    line = racing_line(source)
    assert line != racing_line(EXAMPLES["community_racing_line"])
    assert max(speed for _x, _y, speed in line) == pytest.approx(2.0)
    clockwise = api.get(URL, {"track": "pitlane_oval", "direction": "clockwise", "max_speed": 2}).json()["source"]
    assert racing_line(clockwise) != line


def test_the_editor_is_told_which_example_follows_the_track():
    examples = {example["name"]: example for example in reward_function_examples()}
    assert examples["community_racing_line"]["per_track"] is True
    assert not any(example["per_track"] for name, example in examples.items() if name != "community_racing_line")


def test_bad_requests_are_refused_with_the_reason(api, make_racer, technical_track):
    assert APIClient().get(URL, {"track": "pitlane_oval", "max_speed": 2}).status_code in (401, 403)
    too_fast = api.get(URL, {"track": "pitlane_oval", "max_speed": 9})
    assert too_fast.status_code == 400 and "max_speed" in too_fast.json()
    assert "max_speed" in api.get(URL, {"track": "pitlane_oval"}).json()
    unknown = api.get(URL, {"track": "nowhere", "max_speed": 2})
    assert unknown.status_code == 400 and "track" in unknown.json()
    technical_track.directions = Track.Directions.COUNTERCLOCKWISE
    technical_track.save()
    one_way = api.get(URL, {"track": "pitlane_technical", "direction": "clockwise", "max_speed": 3})
    assert one_way.status_code == 400 and "counterclockwise" in str(one_way.json()).lower()
