"""A real training job end to end: queued by the service, claimed from the training queue, trained in the real
sandbox with a tiny budget, progress stored while it runs, the model validated, stored like an upload, entered in a
race; and a stop request that ends a run cleanly with its model."""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
import time
from pathlib import Path

import pytest
from deepracer.logs import DeepRacerLog
from django.core.files.storage import default_storage
from django.db import connection

from evaluator import sandbox
from evaluator.execution import execute_attempt
from evaluator.models import EvaluationAttempt
from evaluator.services import attempt_claim_next
from races.models import RacerModel, Submission, TrainingJob
from races.services.training import training_progress, training_start, training_stop
from sim.world.vehicle import get_vehicle
from tests.races.training_helpers import small_options, small_request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine"),
]


def test_a_training_job_trains_in_the_sandbox_and_its_model_is_stored_and_entered(make_racer, make_race, oval_track,
                                                                                  settings):
    settings.PITLANE_TRAINING_PROGRESS_S = 0.5
    racer = make_racer("Trainer")
    race = make_race(track=oval_track, total_laps=1, minimum_laps=1, time_cap_s=30)
    job = training_start(racer, small_request(oval_track, submit_to=race), small_options(max_episodes=10))
    assert job.status == "queued" and training_progress(job)["queue_position"] == 1
    assert attempt_claim_next("evaluation-worker") is None, "an evaluation worker must not take training"
    claim = attempt_claim_next("training-worker", queue="training")
    assert claim is not None and claim.target_id == job.pk
    job.refresh_from_db()
    assert job.status == "starting"

    seen, priorities = [], set()

    def look() -> None:  # the page's view while it runs: the statuses and counters it could show
        row = TrainingJob.objects.filter(pk=job.pk).values("status", "iterations").first()
        seen.append((row["status"], row["iterations"]))
        priorities.update(_training_runner_priorities())

    execute_watching(claim, look)

    job.refresh_from_db()
    attempt = EvaluationAttempt.objects.get(target_kind="training", target_id=job.pk)
    assert attempt.status == "succeeded", attempt.error
    assert job.status == "done" and job.stopped_by == "max_episodes", job.failure_reason
    assert job.episodes == 10 and job.iterations == 2 and job.env_steps > 0
    assert ("training", 1) in seen or ("training", 0) in seen, f"never seen training: {seen[:5]}..."
    assert 0 < job.trained_seconds < 120
    # The sandboxed trainer yields the CPU to evaluations: its own nice and its session's (kernel autogroup).
    assert priorities and all(nice == 10 and autogroup in ("", "10") for nice, autogroup in priorities), priorities
    # The reward graph's values per iteration, the evaluation paths and the log reached the database ...
    assert [row["iteration"] for row in job.curve] == [1, 2]
    assert job.trajectories["iteration"] == 2 and job.trajectories["episodes"][0]["x"]
    assert job.camera_iteration == 2 and default_storage.exists(job.camera_film.name)  # what the car saw
    assert "iteration 2" in job.log_tail
    # ... and the model folder reached storage: the latest (and best) checkpoint, metrics, the graph.
    assert job.checkpoint_iteration == 2
    assert "checkpoints/iteration-00002/weights.safetensors" in job.stored_files
    assert default_storage.exists(job.stored_files["reward_graph.png"]["name"])
    # The model is a model like an uploaded one, and it was entered in the race.
    model = job.model
    assert model is not None and model.owner == racer and model.name == "trained"
    assert model.status == RacerModel.Status.VALID and model.metadata["neural_network"] == \
        "DEEP_CONVOLUTIONAL_NETWORK_DEEP"
    assert job.submission is not None and job.submission.race == race
    assert Submission.objects.get(pk=job.submission.pk).model == model
    progress = training_progress(job)
    assert progress["status"] == "done" and progress["model_id"] == model.pk and progress["seconds_left"] == 0


def execute_watching(claim, look) -> None:
    """Run the claimed attempt here while another thread calls ``look()`` every 0.2 s, as the live page polls."""
    done = threading.Event()

    def watch() -> None:
        try:
            while not done.is_set():
                look()
                time.sleep(0.2)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        execute_attempt(claim)
    finally:
        done.set()
        watcher.join(5)


def _training_runner_priorities() -> set[tuple[int, str]]:
    """(nice, autogroup nice or "" without autogroups) of every sandboxed trainer process running now."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"evaluator.training_runner" not in argv or argv[0].endswith(b"bwrap"):
                continue
            nice = os.getpriority(os.PRIO_PROCESS, int(pid))
            autogroup = Path(f"/proc/{pid}/autogroup")
            found.add((nice, autogroup.read_text().split()[-1] if autogroup.exists() else ""))
        except OSError:  # it ended meanwhile
            continue
    return found


def test_stop_ends_the_run_cleanly_and_keeps_its_model(make_racer, oval_track, settings):
    """The Stop button: the worker interrupts the run (SIGINT), which exports the best checkpoint it has."""
    settings.PITLANE_TRAINING_PROGRESS_S = 0.5
    racer = make_racer("Stopper")
    job = training_start(racer, small_request(oval_track, name="stopped"), small_options(max_episodes=500))
    claim = attempt_claim_next("training-worker", queue="training")

    def stop_after_the_first_iteration() -> None:
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline:
                if TrainingJob.objects.filter(pk=job.pk, iterations__gte=1).exists():
                    training_stop(TrainingJob.objects.get(pk=job.pk), racer)
                    return
                time.sleep(0.2)
        finally:
            connection.close()

    stopper = threading.Thread(target=stop_after_the_first_iteration, daemon=True)
    stopper.start()
    started = time.monotonic()
    execute_attempt(claim)
    stopper.join(5)
    job.refresh_from_db()
    assert job.status == "done", job.failure_reason
    assert job.stopped_by == "interrupted" and job.stop_requested_at is not None
    assert 1 <= job.iterations < 100 and job.model is not None
    assert time.monotonic() - started < 120


def test_the_lab_car_trains_on_two_tracks_with_boxes_ranked_by_reward_as_asked(make_racer, oval_track, technical_track,
                                                                                 client, tmp_path):
    # The lab's camera car (3-layer CNN): its checkpoints, optimizer state included, are ~140 MB files.
    racer = make_racer("Rotator")
    lab_car = get_vehicle("original_deepracer").to_file_dict()
    job = training_start(racer, small_request(oval_track, tracks=(oval_track, technical_track), best_by="reward",
                                              vehicle=lab_car, race_type="OBJECT_AVOIDANCE"),
                         small_options(max_episodes=10))
    execute_attempt(attempt_claim_next("training-worker", queue="training"))
    job.refresh_from_db()
    assert job.status == "done" and job.iterations == 2, job.failure_reason
    # What the run was trained with, as its own model folder recorded it (stored with the checkpoints).
    with default_storage.open(job.stored_files["training.json"]["name"]) as stored:
        config = json.load(stored)
    assert config["track"] == "pitlane_oval" and config["more_tracks"] == ["pitlane_technical"]
    assert config["best_by"] == "reward" and config["objects"]["kind"] == "boxes"
    assert len(config["objects"]["items"]) == 3
    rewards = [row["mean_reward"] for row in job.curve]
    assert job.best_iteration == max(range(2), key=lambda i: (rewards[i], i)) + 1

    # The logs download: the model folder without checkpoints, which deepracer-utils reads.
    client.force_login(racer)
    download = client.get(f"/training/{job.pk}/logs.tar.gz")
    assert download.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(b"".join(download.streaming_content))) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path, filter="data")
    assert {"trained/training-simtrace/0-iteration.csv", "trained/training-simtrace/1-iteration.csv",
            "trained/metrics/iterations.json", "trained/reward_function.py"} <= set(names)
    assert not any("checkpoints" in name for name in names)
    log = DeepRacerLog(model_folder=str(tmp_path / "trained"))
    log.load_training_trace()
    assert sorted(log.dataframe()["episode"].unique()) == list(range(10))
    client.force_login(make_racer("Other"))
    assert client.get(f"/training/{job.pk}/logs.tar.gz").status_code == 404


def test_a_warm_started_job_imitates_the_racing_line_driver_first_within_its_budget(make_racer, oval_track, settings):
    """The create-model form's Warm start: the run begins by imitating the driver (the page shows the phase), its
    time counts in the budget, and a model comes out even when the budget ends during the imitation."""
    settings.PITLANE_TRAINING_PROGRESS_S = 0.5
    racer = make_racer("Warm")
    job = training_start(racer, small_request(oval_track, name="warm", max_minutes=0.5, warm_start=True),
                         small_options(max_episodes=5))
    claim = attempt_claim_next("training-worker", queue="training")
    phases: set[str] = set()

    def look() -> None:
        live = TrainingJob.objects.filter(pk=job.pk).values_list("live", flat=True).first() or {}
        phases.add(live.get("phase", ""))

    execute_watching(claim, look)
    job.refresh_from_db()
    assert job.status == "done" and job.model is not None, job.failure_reason
    assert job.stopped_by in ("max_minutes", "max_episodes")
    assert "warm start" in phases, phases
    assert "Warm start" in job.log_tail  # "... imitates the driver on N% of the frames" or "... cut short"
