"""The training job as it crosses into the sandbox: one typed document, checked by the runner on arrival."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluator.contract import (
    JobError,
    RunnerFailure,
    TrainingJob,
    TrainingTrack,
    job_from_json,
    parse_training_output,
)
from sim.world.reward_examples import EXAMPLES
from sim.world.track_catalog import get_track
from sim.world.vehicle import get_vehicle

REPOSITORY = Path(__file__).resolve().parents[2]


def document(**changes) -> dict:
    job = TrainingJob(tracks=[TrainingTrack(name="oval", rows=[[0.0] * 6] * 4)], vehicle={"sensor": []},
                      reward_function_source="def reward_function(params):\n    return 1.0\n",
                      hyperparameters={}, max_seconds=60.0)
    return job.to_json() | changes


def test_a_warm_start_survives_the_trip_and_is_off_unless_asked():
    assert job_from_json(document(warm_start=True)).warm_start is True
    assert job_from_json(document()).warm_start is False
    older = document()
    del older["warm_start"]  # a job written before warm starts existed
    assert job_from_json(older).warm_start is False


@pytest.mark.parametrize(("changes", "reason"), [
    ({"warm_start": "yes"}, "true or false"),
    ({"warm_start": True, "start": "clone"}, "begins a new model"),
    ({"warm_start": True, "start": "resume"}, "begins a new model"),
])
def test_a_warm_start_that_cannot_be_is_a_job_error(changes, reason):
    with pytest.raises(JobError, match=reason):
        job_from_json(document(**changes))


def test_a_warm_start_for_a_car_without_discrete_actions_is_the_models_failure_before_anything_trains(tmp_path):
    """The service refuses it up front; a job that gets past it anyway fails the same way every time (no retry)."""
    job = TrainingJob(tracks=[TrainingTrack(name="pitlane_oval", rows=get_track("pitlane_oval").waypoints.tolist())],
                      vehicle=get_vehicle("continuous_camera").to_file_dict(),
                      reward_function_source=EXAMPLES["example_1_follow_center_line"], hyperparameters={},
                      max_seconds=60.0, warm_start=True)
    ran = subprocess.run([sys.executable, "-m", "evaluator.training_runner"], input=json.dumps(job.to_json()).encode(),
                         cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(REPOSITORY)}, capture_output=True,
                         timeout=600)
    outcome = parse_training_output(ran.stdout, 64 * 1024)
    assert isinstance(outcome, RunnerFailure), ran.stderr[-2000:]
    assert outcome.kind == "model" and "discrete action space" in outcome.error
    assert not (tmp_path / "training" / "model").exists()
