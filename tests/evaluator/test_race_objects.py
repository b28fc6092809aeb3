"""Object-avoidance and head-to-bot races in the evaluator: the job's objects spec, the runner, recorded runs."""

from __future__ import annotations

import io
import json
import sys

import pytest

from evaluator import runner, sandbox
from evaluator.contract import parse_runner_output
from evaluator.execution import execute_attempt, prepare_model_folder
from evaluator.services import attempt_claim_next
from races.evaluation_targets import race_job
from races.models import Race, Run
from races.services import model_upload, submission_create, submission_summary

pytestmark = pytest.mark.django_db(transaction=True)


def run_in_process(job: dict, monkeypatch, capsys) -> dict:
    """The sandboxed runner's main(), here: job on stdin, its one JSON document from stdout."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(job)))
    assert runner.main() == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def submit(make_racer, lapping_archive):
    racer = make_racer("Dodger")
    model = model_upload(racer, "clone", io.BytesIO(lapping_archive))
    return lambda race: submission_create(racer, race, model)


@pytest.mark.parametrize("objects", [
    "boxes",
    [{"ndist": 0.5, "lane": "inner"}],
    {"kind": "cones", "items": []},
    {"kind": "boxes", "items": []},
    {"kind": "boxes", "items": [{"ndist": 0.5, "lane": "inner"}] * 11},
    {"kind": "boxes", "items": [{"ndist": 1.0, "lane": "inner"}]},
    {"kind": "boxes", "items": [{"ndist": "0.5", "lane": "inner"}]},
    {"kind": "boxes", "items": [{"ndist": True, "lane": "inner"}]},
    {"kind": "boxes", "items": [{"ndist": 10**400, "lane": "inner"}]},
    {"kind": "boxes", "items": [{"ndist": 0.5, "lane": "middle"}]},
    {"kind": "boxes", "items": [{"ndist": 0.5, "lane": "inner", "size": 3}]},
    {"kind": "boxes", "items": [{"ndist": 0.5, "lane": "inner"}], "speed": 1.0},
    {"kind": "bots", "items": [{"ndist": 0.5, "lane": "inner"}], "speed": 0, "lane_change_every_s": None},
    {"kind": "bots", "items": [{"ndist": 0.5, "lane": "inner"}], "speed": 9, "lane_change_every_s": None},
    {"kind": "bots", "items": [{"ndist": 0.5, "lane": "inner"}], "speed": 1},
    {"kind": "bots", "items": [{"ndist": 0.5, "lane": "inner"}] * 7, "speed": 1, "lane_change_every_s": None},
    {"kind": "bots", "items": [{"ndist": 0.5, "lane": "inner"}], "speed": 1, "lane_change_every_s": -2},
])
def test_the_runner_refuses_a_malformed_objects_spec(make_race, oval_track, objects, monkeypatch, capsys, tmp_path):
    race = make_race(track=oval_track)
    job = race_job(race).to_json() | {"objects": objects, "model_dir": str(tmp_path)}  # no model: refused early
    document = run_in_process(job, monkeypatch, capsys)
    assert document["ok"] is False and document["kind"] == "job" and "unusable job" in document["error"]
    assert parse_runner_output(json.dumps(document).encode(), 1, 10**6).kind == "job"


def test_the_job_carries_the_races_objects(make_race, oval_track):
    boxes = make_race(track=oval_track, race_type="OBJECT_AVOIDANCE", box_count=2, direction="clockwise")
    assert race_job(boxes).objects == {"kind": "boxes", "items": [
        {"ndist": pytest.approx(1 / 3, abs=1e-6), "lane": "inner"},
        {"ndist": pytest.approx(2 / 3, abs=1e-6), "lane": "outer"}]}
    assert race_job(boxes).direction == "clockwise"
    bots = make_race(track=oval_track, race_type="HEAD_TO_BOT", bot_count=2, bot_speed_mps=0.5, bot_lane_change_s=4)
    assert race_job(bots).objects["kind"] == "bots"
    assert race_job(make_race(track=oval_track)).objects is None


@pytest.mark.slow
def test_the_same_archive_on_a_random_box_race_gives_identical_laps(make_race, oval_track, submit, lapping_archive,
                                                                    monkeypatch, capsys, tmp_path):
    race = make_race(track=oval_track, race_type="OBJECT_AVOIDANCE", box_count=4, box_placement="random", total_laps=1,
                     time_cap_s=60)
    # The seed is drawn when a race is made; seed 1's boxes lie on the car's line (some seeds' boxes miss it).
    Race.objects.filter(pk=race.pk).update(objects_seed=1)
    race.refresh_from_db()
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(lapping_archive)
    prepare_model_folder(archive, tmp_path / "model")
    job = race_job(submit(race).race).to_json() | {"model_dir": str(tmp_path / "model")}
    first, second = (run_in_process(job, monkeypatch, capsys) for _ in range(2))
    assert first["ok"], first
    checked = [parse_runner_output(json.dumps(d).encode(), race.total_laps, 10**8) for d in (first, second)]
    assert checked[0].laps == checked[1].laps and checked[0].trace == checked[1].trace
    assert sum(lap["crash_count"] for lap in checked[0].laps) > 0  # the centre-line driver meets the boxes


@pytest.mark.slow
def test_a_head_to_bot_run_records_the_bot_cars_for_the_replay(make_race, oval_track, submit, lapping_archive,
                                                               monkeypatch, capsys, tmp_path):
    race = make_race(track=oval_track, race_type="HEAD_TO_BOT", bot_count=2, bot_speed_mps=0.5, total_laps=1,
                     time_cap_s=30)
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(lapping_archive)
    prepare_model_folder(archive, tmp_path / "model")
    job = race_job(submit(race).race).to_json() | {"model_dir": str(tmp_path / "model")}
    output = run_in_process(job, monkeypatch, capsys)
    trace = parse_runner_output(json.dumps(output).encode(), race.total_laps, 10**8).trace
    assert len(trace["bots"]) == len(trace["x"]) > 10
    assert {len(step) for step in trace["bots"]} == {6}  # x, y, yaw of each of the 2 bots
    assert trace["bots"][0] != trace["bots"][-1]  # they drove on


@pytest.mark.slow
@pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine")
def test_hitting_a_box_is_recorded_as_a_collision_with_its_penalty(make_race, oval_track, submit):
    """The cloned driver follows the centre line; boxes on the lanes reach into it, so it hits them."""
    race = make_race(track=oval_track, race_type="OBJECT_AVOIDANCE", box_count=2, total_laps=1, collision_penalty_s=3,
                     time_cap_s=90)
    submission = submit(race)
    execute_attempt(attempt_claim_next("test-worker"))
    submission.refresh_from_db()
    assert submission.status == "scored", submission.failure_reason
    lap = Run.objects.get(submission=submission).laps[0]
    assert lap["crash_count"] >= 2 and lap["reset_count"] >= lap["crash_count"]
    # The clock runs while the car is held: each collision's 3 s are in the lap time (a clean lap is ~18 s).
    assert lap["elapsed_time_in_milliseconds"] >= 3000 * lap["crash_count"] + 12_000
    summary = submission_summary(submission)
    assert summary["run"]["score"]["crash_count"] == lap["crash_count"]
    assert summary["run"]["laps"][0]["penalty_s"] == pytest.approx(3 * lap["crash_count"] + 2 * lap["off_track_count"])

