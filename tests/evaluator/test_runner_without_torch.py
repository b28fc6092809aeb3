"""What the worker prepares so that a fresh sandbox per job costs little: the runner races the model folder's ONNX
race plan and never imports torch (~2 s of CPU, more than racing the demo race), and maps the floor raster the worker
drew once per track instead of drawing it (~0.6 s)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluator import execution, runner
from evaluator.contract import MatchJob, RaceJob, RaceResult, RunnerFailure, parse_runner_output
from evaluator.execution import draw_race_track, prepare_model_folder, prepare_race_track
from sim.io.model_files import RACE_PLAN_FILE, TRACK_FOLDER
from sim.world.builtin_tracks import build_builtin_track
from sim.world.rules import RaceRules
from tests.evaluator.processes import REPO


def run_runner(job: RaceJob, *arguments: str) -> tuple[RaceResult | RunnerFailure, set[str]]:
    """The runner as the sandbox starts it (``-m evaluator.runner``): its result, and every module it imported."""
    finished = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "evaluator.runner", *arguments], cwd=REPO,
        input=json.dumps(job.to_json()).encode() + b"\n", capture_output=True, timeout=600, check=False)
    modules = {line.split("|")[-1].strip() for line in finished.stderr.decode().splitlines()
               if line.startswith("import time:")}
    return parse_runner_output(finished.stdout, total_laps=job.rules.total_laps, limit=10**8), modules


@pytest.fixture
def oval_job(lapping_archive, tmp_path) -> RaceJob:
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(lapping_archive)
    prepare_model_folder(archive, tmp_path / "model")
    track = build_builtin_track("pitlane_oval")
    return RaceJob(track_name=track.name, track_rows=track.waypoints.tolist(),
                   rules=RaceRules(total_laps=1, time_cap_s=60), model_dir=str(tmp_path / "model"))


@pytest.mark.slow
def test_a_race_is_driven_by_the_onnx_plan_without_importing_torch(oval_job):
    result, modules = run_runner(oval_job)
    assert isinstance(result, RaceResult), result
    assert result.laps[0]["episode_status"] == "Lap complete"
    assert "onnxruntime" in modules and "sim.race.onnx_policy" in modules
    assert not {name for name in modules if name == "torch" or name.startswith("torch.")}

    # The reference, the network exactly as trained (torch), drives the same lap.
    reference, modules = run_runner(oval_job, "--precision", "fp32")
    assert "torch" in modules
    assert isinstance(reference, RaceResult) and reference.laps == result.laps


def test_a_model_folder_without_its_race_plan_is_the_workers_fault(oval_job):
    Path(oval_job.model_dir, RACE_PLAN_FILE).unlink()
    result, _ = run_runner(oval_job)
    assert isinstance(result, RunnerFailure) and result.kind == "job" and "race plan" in result.error, result


def test_the_runner_maps_the_floor_the_worker_drew_instead_of_drawing_it(oval_job, monkeypatch, capsys):
    def run_in_process_without_drawing() -> RaceResult | RunnerFailure:
        def no_drawing(track):
            raise AssertionError("the runner drew the floor raster itself")

        capsys.readouterr()
        with monkeypatch.context() as patch:
            patch.setattr("sim.sensors.floor._build", no_drawing)
            patch.setattr(sys, "stdin", io.StringIO(json.dumps(oval_job.to_json()) + "\n"))
            assert runner.main() == 0
        return parse_runner_output(capsys.readouterr().out.encode(), total_laps=1, limit=10**8)

    with pytest.raises(AssertionError, match="drew the floor"):  # nothing prepared: the runner draws it
        run_in_process_without_drawing()
    execution._race_track.cache_clear()  # as a worker process that has not raced on this track yet
    assert not prepare_race_track(oval_job, Path(oval_job.model_dir))  # not drawn by this process yet: left alone
    with pytest.raises(AssertionError, match="drew the floor"):
        run_in_process_without_drawing()
    draw_race_track(oval_job)  # the worker draws it after its first race there (once per track and process)
    assert prepare_race_track(oval_job, Path(oval_job.model_dir))
    result = run_in_process_without_drawing()
    assert isinstance(result, RaceResult) and result.laps[0]["episode_status"] == "Lap complete", result


def test_the_runner_looks_for_the_track_at_the_top_of_the_mount_for_a_race_and_for_a_match(tmp_path):
    # The worker saves it there (execution._run: prepare_race_track(job, <the mount>)); a match's two models are
    # folders under that top. Looked for elsewhere, it would silently be drawn again in every sandbox.
    mount, rules = tmp_path / "model", RaceRules(total_laps=1)
    race = RaceJob(track_name="oval", track_rows=[], rules=rules, model_dir=str(mount))
    match = MatchJob(track_name="oval", track_rows=[], rules=rules, model_dirs=(str(mount / "a"), str(mount / "b")))
    assert runner._track_folder(race) == runner._track_folder(match) == str(mount / TRACK_FOLDER)
