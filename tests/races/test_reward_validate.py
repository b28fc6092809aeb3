"""The Validate button's endpoint: the CLI's check, run in the evaluator's sandbox, with the error's line."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from evaluator.sandbox import bubblewrap_works
from races.services.reward_functions import CHECKS_PER_MINUTE, MAX_SOURCE_CHARS
from sim.world.reward_examples import EXAMPLES

pytestmark = pytest.mark.django_db
URL = "/api/reward-functions/validate/"
needs_sandbox = pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap is not installed (./pitlane test does)")


@pytest.fixture(autouse=True)
def fresh_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api(make_racer, technical_track):
    client = APIClient()
    client.force_authenticate(make_racer())
    return client


def check(api, source: str, **extra):
    return api.post(URL, {"source": source, "track": "pitlane_technical", **extra}, format="json")


def test_a_syntax_error_names_its_line_without_running_anything(api):
    answer = check(api, "def reward_function(params):\n    x = 1\n    return x +\n")
    body = answer.json()
    assert answer.status_code == 200 and body["valid"] is False and body["line"] == 3
    assert body["message"].startswith("Syntax error in reward_function.py, line 3")


def test_a_forbidden_import_is_refused_on_its_line(api):
    body = check(api, "import math\nimport os\ndef reward_function(params):\n    return 1.0\n").json()
    assert body["valid"] is False and body["line"] == 2 and "import of 'os' is not allowed" in body["message"]


@needs_sandbox
def test_a_lab_example_is_valid_with_each_synthetic_cars_reward(api):
    body = check(api, EXAMPLES["example_1_follow_center_line"], direction="clockwise").json()
    assert body["valid"] is True and body["line"] is None
    assert [s["car"] for s in body["samples"]] == ["start", "mid-lap", "off track", "near finish"]
    assert body["samples"][0]["reward"] == 1.0 and body["samples"][2]["reward"] == pytest.approx(1e-3)


@needs_sandbox
def test_a_runtime_error_names_the_car_the_line_and_the_params(api):
    source = "def reward_function(params):\n    width = params['track_width']\n    return 1 / (width - width)\n"
    body = check(api, source).json()
    assert body["valid"] is False and body["line"] == 3 and body["car"] == "start"
    assert "ZeroDivisionError" in body["message"] and "params: x=" in body["message"]


@needs_sandbox
def test_a_wrong_return_type_is_refused_on_the_return_line(api):
    source = "def reward_function(params):\n    if params['speed'] > 0:\n        return 'fast'\n    return 1.0\n"
    body = check(api, source).json()
    assert body["valid"] is False and body["line"] == 3 and "which is not a number" in body["message"]


@needs_sandbox
def test_the_sandbox_holds_against_code_that_gets_past_the_static_checks(api, tmp_path):
    """The static checks are no boundary (getattr reaches __import__): the sandbox is. The racer's code can read
    no file of the server and reach no server on the machine (PostgreSQL listens on 127.0.0.1:5432)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("server secret")
    settings_file = Path(settings.BASE_DIR) / "league" / "settings.py"
    assert settings_file.is_file()
    source = f'''
b = __builtins__
imp = b["__imp" + "ort__"] if isinstance(b, dict) else getattr(b, "__imp" + "ort__")
opener = b["op" + "en"] if isinstance(b, dict) else getattr(b, "op" + "en")
os, socket = imp("os"), imp("socket")
found = []
for path in ({str(secret)!r}, {str(settings_file)!r}):
    try:
        with opener(path) as f:
            f.read()
        found.append(path)
    except OSError:
        pass
try:
    socket.create_connection(("127.0.0.1", 5432), timeout=2)
    found.append("network")
except OSError:
    pass
if found:
    raise RuntimeError("escaped: " + ", ".join(found))
def reward_function(params):
    return float(os.getuid())
'''
    body = check(api, source).json()
    assert "escaped" not in body["message"], body["message"]
    assert body["valid"] is True and body["samples"][0]["reward"] == 65534.0  # nobody, not the server's user


@needs_sandbox
def test_an_endless_loop_is_stopped(api):
    body = check(api, "def reward_function(params):\n    while True:\n        pass\n").json()
    assert body["valid"] is False and "timed out after 5.0 s on synthetic car 'start'" in body["message"]


def test_oversize_anonymous_bad_track_and_direction_are_refused(api, make_racer, technical_track):
    too_big = "# " + "x" * MAX_SOURCE_CHARS + "\ndef reward_function(params):\n    return 1.0\n"
    answer = check(api, too_big)
    assert answer.status_code == 413 and "limit is 64 kB" in answer.json()["detail"]
    assert APIClient().post(URL, {"source": "x", "track": "pitlane_technical"}, format="json").status_code == 401
    assert check(api, "x", track="no-such-track").status_code == 400
    assert check(api, "x", direction="sideways").status_code == 400
    assert check(api, "   ").status_code == 400
    technical_track.directions = technical_track.Directions.CLOCKWISE
    technical_track.save()
    refused = check(api, "def reward_function(params):\n    return 1.0\n", direction="counterclockwise")
    assert refused.status_code == 400 and "is not raced counterclockwise" in refused.json()["detail"]


def test_checks_are_rate_limited_per_racer(api, make_racer):
    for _ in range(CHECKS_PER_MINUTE):
        assert check(api, "def reward_function(params) return 1").status_code == 200
    refused = check(api, "def reward_function(params) return 1")
    assert refused.status_code == 429 and refused.json()["code"] == "throttled"
    other = APIClient()
    other.force_authenticate(make_racer())
    assert check(other, "def reward_function(params) return 1").status_code == 200
