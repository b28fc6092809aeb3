"""The training job as it crosses into the sandbox: one typed document, checked by the runner on arrival."""

from __future__ import annotations

import pytest

from evaluator.contract import JobError, TrainingJob, TrainingTrack, job_from_json


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
