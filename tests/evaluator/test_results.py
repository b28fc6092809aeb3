"""Nothing the sandboxed runner prints reaches the database unchecked."""

import json
import subprocess
import sys

import pytest

from evaluator.contract import CONTRACT_VERSION, ResultError, RunnerFailure, parse_runner_output
from tests.evaluator.processes import REPO

LAP = {
    "trial": 1, "elapsed_time_in_milliseconds": 9800, "completion_percentage": 100.0, "off_track_count": 0,
    "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 0, "episode_status": "Lap complete",
}
TRACE = {"t": [0.0, 0.1], "x": [1.0, 1.1], "y": [0.0, 0.0], "yaw": [0.0, 0.0], "speed": [1.0, 1.0],
         "status": ["in_progress", "lap_complete"]}


def document(**changes):
    base = {"ok": True, "laps": [LAP], "trace": TRACE, "simtrace_csv": "episode,steps\n", "duration_s": 1.5}
    return json.dumps(base | changes).encode()


def test_a_valid_result_passes_unchanged():
    result = parse_runner_output(document(timings={"import_s": 1.2, "race_s": 3.0}), total_laps=3, limit=10**6)
    assert result.laps[0]["elapsed_time_in_milliseconds"] == 9800 and result.trace == TRACE
    assert result.timings == {"import_s": 1.2, "race_s": 3.0}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "no valid JSON document"),
        (b'{"ok": true, "duration_s": NaN}', "no valid JSON document"),
        (document(laps=[]), "expected 1 to 3 lap records"),
        (document(laps=[LAP] * 4), "expected 1 to 3 lap records"),
        (document(laps=[LAP | {"elapsed_time_in_milliseconds": -5}]), "must be a non-negative integer"),
        (document(laps=[LAP | {"trial": 2}]), "numbered 1..n"),
        (document(laps=[LAP | {"completion_percentage": 250}]), "completion_percentage is out of range"),
        (document(trace=TRACE | {"x": [1.0]}), "lists of equal length"),
        (document(trace={"x": []}), "exactly the keys"),
        (document(duration_s="fast"), "duration_s must be a finite number"),
        (b'{"ok": false, "error": 3}', "failure report is malformed"),
        (document(laps=[LAP | {"episode_status": "Teleported"}]), "unknown episode_status"),
        (document(laps=[LAP | {"completion_percentage": 40.0}]), "'Lap complete' if and only if"),
        (document(laps=[LAP | {"episode_status": "Off track"}]), "'Lap complete' if and only if"),
        (document(laps=[LAP | {"elapsed_time_in_milliseconds": 1.5}]), "must be a non-negative integer"),
        (document(laps=[LAP | {"reset_count": True}]), "must be a non-negative integer"),
        (document(trace=TRACE | {"x": [1.0, 1e308 * 10]}), "no valid JSON document"),
        (document(trace=TRACE | {"speed": [1.0, 1e9]}), "trace speed is out of range"),
        (document(timings={"race_s": -1.0}), "timings race_s is out of range"),
        (document(timings={"exfiltrate": 1.0}), "timings must be an object"),
        (b'[1, 2, 3]', "no boolean 'ok'"),
        (document(trace=TRACE | {"bots": [[1.0, 2.0, 90.0], [1.0, 2.0]]}), "the same 1 to 6 bot cars"),
        (document(trace=TRACE | {"bots": [[], []]}), "the same 1 to 6 bot cars"),
        (document(trace=TRACE | {"bots": [[0.0, 0.0, 0.0] * 7] * 2}), "the same 1 to 6 bot cars"),
        (document(trace=TRACE | {"bots": [[1.0, 2.0, "north"]] * 2}), "trace bots must be a finite number"),
        (document(trace=TRACE | {"bots": [[1.0, 2.0, 90.0]]}), "lists of equal length"),
        (document(trace=TRACE | {"bots": "everywhere"}), "lists of equal length"),
        (document(trace=TRACE | {"rivals": [[1.0, 2.0, 90.0]] * 2}), "exactly the keys"),
    ],
)
def test_malformed_results_are_refused(raw, message):
    with pytest.raises(ResultError, match=message):
        parse_runner_output(raw, total_laps=3, limit=10**6)


def test_oversized_output_is_refused():
    with pytest.raises(ResultError, match="more than 100 bytes"):
        parse_runner_output(document(), total_laps=3, limit=100)


def test_the_runners_own_failure_report_is_passed_on():
    raw = json.dumps({"ok": False, "kind": "model", "error": "bad weights"}).encode()
    assert parse_runner_output(raw, total_laps=3, limit=10**6) == RunnerFailure(kind="model", error="bad weights")


def test_a_head_to_bot_trace_keeps_the_bot_cars_poses():
    trace = TRACE | {"bots": [[1.0, 2.0, 90.0, 3.0, 4.0, -90.0], [1.1, 2.0, 90.0, 3.1, 4.0, -90.0]]}
    assert parse_runner_output(document(trace=trace), total_laps=3, limit=10**6).trace == trace


def test_the_documents_are_versioned_and_another_version_is_refused():
    parse_runner_output(document(version=CONTRACT_VERSION), total_laps=3, limit=10**6)  # absent: version 1 too
    for version in (2, "1", True, None):
        with pytest.raises(ResultError, match="contract version"):
            parse_runner_output(document(version=version), total_laps=3, limit=10**6)


def test_a_result_survives_its_round_trip_through_json():
    result = parse_runner_output(document(timings={"race_s": 3.0}), total_laps=3, limit=10**6)
    again = parse_runner_output(json.dumps(result.to_json()).encode(), total_laps=3, limit=10**6)
    assert again == result and result.to_json()["version"] == CONTRACT_VERSION
    failure = RunnerFailure(kind="model", error="bad weights", car=1)
    assert parse_runner_output(json.dumps(failure.to_json()).encode(), 3, 10**6, match=True) == failure


@pytest.mark.parametrize(("arguments", "words"), [
    (["--precision", "fp16"], "precision must be one of onnx, auto, fp32, int8, int8+bf16, got 'fp16'"),
    (["--fast"], "expected [--precision NAME], got '--fast'"),
])
def test_the_runner_refuses_an_unknown_precision_as_a_job_error(arguments, words):
    """A worker started with a wrong runner argument is our fault, never the model's: a "job" failure, said once."""
    finished = subprocess.run([sys.executable, "-m", "evaluator.runner", *arguments], cwd=REPO, input=b"",
                              capture_output=True, timeout=120, check=False)
    failure = parse_runner_output(finished.stdout, total_laps=3, limit=10**6)
    assert isinstance(failure, RunnerFailure) and failure.kind == "job" and words in failure.error, failure
