"""Training jobs' services and API: quotas (with when they come back), validation errors on their field, who may
see and stop a job, stop before and during a run, clone compatibility, the budget a resumed run gets, the training
queue's fairness and capacity. The sandboxed runs themselves are in test_training_run and the kill -9 test in
tests/evaluator/test_training_chaos."""

from __future__ import annotations

import io
import json
import os
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from evaluator import sandbox
from evaluator.models import EvaluationAttempt
from evaluator.sandbox import ScratchView
from evaluator.services import attempt_claim_next
from races.models import Race, TrainingJob
from races.services import RuleViolation, model_upload, submission_create
from races.services.training import (
    training_job_for,
    training_progress,
    training_quota_update,
    training_sandbox_work,
    training_start,
    training_stop,
)
from sim.world.vehicle import DiscreteActionSpace, Vehicle, get_vehicle
from tests.races.training_helpers import SMALL_VEHICLE, small_options, small_request

pytestmark = pytest.mark.django_db


def refusal(call, *args, **kwargs) -> RuleViolation:
    with pytest.raises(RuleViolation) as refused:
        call(*args, **kwargs)
    return refused.value


# ------------------------------------------------------------------------------------------------------ quotas
def test_a_racer_at_their_concurrent_quota_is_told_when_it_comes_back(make_racer, oval_track):
    training_quota_update(max_concurrent_per_racer=1, minutes_per_racer_per_day=600, max_concurrent_total=4)
    racer = make_racer("Busy")
    first = training_start(racer, small_request(oval_track, name="first", max_minutes=30))
    error = refusal(training_start, racer, small_request(oval_track, name="second"))
    assert error.code == "quota_concurrent"
    assert "limit is 1 at once" in error.message and "waiting in the queue" in error.message
    # Once it runs, the message names it and when it stops at the latest.
    claim = attempt_claim_next("w", queue="training")
    assert claim.target_id == first.pk
    TrainingJob.objects.filter(pk=first.pk).update(trained_seconds=600)  # 20 of its 30 minutes left
    error = refusal(training_start, racer, small_request(oval_track, name="second"))
    latest = timezone.localtime(timezone.now() + timedelta(minutes=20))
    assert "“first” stops by" in error.message and latest.strftime("%H:") in error.message
    assert "UTC" in error.message
    # Another racer is not held back by it.
    assert training_start(make_racer("Free"), small_request(oval_track, name="other")).status == "queued"


def test_the_daily_minutes_quota_says_what_is_left_and_when_it_comes_back(make_racer, oval_track):
    training_quota_update(max_concurrent_per_racer=5, minutes_per_racer_per_day=60, max_concurrent_total=4)
    racer = make_racer("Daily")
    training_start(racer, small_request(oval_track, name="long", max_minutes=45))  # active: its whole 45 minutes count
    error = refusal(training_start, racer, small_request(oval_track, name="more", max_minutes=20))
    assert error.field == "max_minutes" and error.code == "quota_minutes"
    assert "you have 15 of your 60 training minutes left today" in error.message
    assert "Ask for 15 minutes or fewer" in error.message and "come back at 00:00 UTC" in error.message
    assert training_start(racer, small_request(oval_track, name="fits", max_minutes=15)).max_minutes == 15
    # A finished job counts what it trained, not its stop condition.
    TrainingJob.objects.filter(owner=racer).update(status="done", trained_seconds=120)
    assert training_start(racer, small_request(oval_track, name="after", max_minutes=55)).status == "queued"


def test_a_zero_quota_pauses_training(make_racer, oval_track):
    training_quota_update(max_concurrent_per_racer=0, minutes_per_racer_per_day=60, max_concurrent_total=1)
    assert "paused" in refusal(training_start, make_racer("Paused"), small_request(oval_track)).message
    with pytest.raises(RuleViolation):
        training_quota_update(max_concurrent_per_racer=-1, minutes_per_racer_per_day=60, max_concurrent_total=1)


# -------------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"reward_function_source": "def reward_function(params):\n    return 1.0 +\n"}, "reward_function_source",
     "line 2"),
    ({"reward_function_source": "def reward_function(params):\n    return params['no_such_key']\n"},
     "reward_function_source", "no_such_key"),
    ({"vehicle": {**SMALL_VEHICLE, "neural_network": "HUGE"}}, "vehicle", "HUGE"),
    ({"hyperparameters": {"batch_size": 7}}, "hyperparameters", "batch_size"),
    ({"hyperparameters": {"bach_size": 64}}, "hyperparameters", "bach_size"),
    ({"best_by": "laps"}, "best_by", "by reward"),
    ({"max_minutes": 0}, "max_minutes", "more than 0"),
    ({"name": " "}, "name", "name"),
    ({"race_type": Race.RaceType.HEAD_TO_HEAD}, "race_type", "time trial"),
])
def test_a_bad_request_is_refused_on_its_field(make_racer, oval_track, changes, field, words):
    error = refusal(training_start, make_racer("Checked"), small_request(oval_track, **changes))
    assert error.field == field and words in error.message, error.message
    assert not TrainingJob.objects.exists() and not EvaluationAttempt.objects.exists()


def test_a_network_too_large_for_the_trainings_disk_is_refused_before_it_runs(make_racer, oval_track, settings):
    """The 5-layer CNN with stereo cameras and lidar has 116 M parameters: ~1.4 GB a checkpoint with Adam's state."""
    big = Vehicle(sensors=("STEREO_CAMERAS", "LIDAR"), neural_network="DEEP_CONVOLUTIONAL_NETWORK",
                  action_space=DiscreteActionSpace.from_granularity(30, 3, 1, 1)).to_file_dict()
    racer = make_racer("Big")
    error = refusal(training_start, racer, small_request(oval_track, vehicle=big))
    assert error.field == "vehicle" and "5-layer CNN with stereo cameras and lidar" in error.message, error.message
    assert "needs about 5.7 GB to train" in error.message and "gives a training 1.0 GB" in error.message
    # The lab's cars and the garage's examples fit the default; an admin who gives more space lets the big one train.
    lab_car = get_vehicle("original_deepracer").to_file_dict()
    lab = training_start(racer, small_request(oval_track, name="lab", vehicle=lab_car))
    training_stop(lab, racer)
    settings.PITLANE_TRAINING_SCRATCH_MB = 8 * 1024
    assert training_start(racer, small_request(oval_track, name="big", vehicle=big)).status == "queued"


def test_several_tracks_train_in_order_and_a_repeated_or_one_way_track_is_refused(make_racer, oval_track,
                                                                                  technical_track):
    racer = make_racer("Tracks")
    error = refusal(training_start, racer, small_request(oval_track, tracks=(oval_track, oval_track)))
    assert error.field == "tracks" and "once" in error.message
    job = training_start(racer, small_request(oval_track, tracks=(technical_track, oval_track), best_by="reward"))
    assert [row.track for row in job.track_rows.order_by("position")] == [technical_track, oval_track]
    document = training_sandbox_work(job).job
    assert [track.name for track in document.tracks] == ["pitlane_technical", "pitlane_oval"]
    assert document.best_by == "reward" and document.objects is None
    training_stop(job, racer)
    oval_track.directions = "counterclockwise"
    oval_track.save()
    error = refusal(training_start, racer, small_request(oval_track, direction="clockwise"))
    assert error.field == "direction"


def test_a_name_already_taken_by_a_model_or_a_running_job_is_refused(make_racer, make_model, oval_track):
    racer = make_racer("Namer")
    make_model(racer, "taken")
    assert refusal(training_start, racer, small_request(oval_track, name="taken")).field == "name"
    training_quota_update(max_concurrent_per_racer=3, minutes_per_racer_per_day=600, max_concurrent_total=4)
    training_start(racer, small_request(oval_track, name="busy"))
    assert refusal(training_start, racer, small_request(oval_track, name="busy")).field == "name"


# ------------------------------------------------------------------------------------------------- clone rules
def test_clone_compatibility_follows_the_simulators_rules(make_racer, oval_track, archive_bytes):
    racer = make_racer("Cloner")
    model = model_upload(racer, "uploaded", io.BytesIO(archive_bytes))  # camera, DEEP network, 15 actions
    error = refusal(training_start, racer, small_request(oval_track, name="clone", clone_of=model))
    assert error.field == "clone_of" and "15 vs 3 actions" in error.message
    assert "“uploaded”" in error.message and "/tmp" not in error.message
    same_shape = Vehicle(sensors=("FRONT_FACING_CAMERA",), neural_network="DEEP_CONVOLUTIONAL_NETWORK_DEEP",
                         action_space=DiscreteActionSpace.from_granularity(30, 5, 1, 3)).to_file_dict()
    job = training_start(racer, small_request(oval_track, name="clone", clone_of=model, vehicle=same_shape))
    work = training_sandbox_work(job)
    assert work.job.start == "clone" and [a.folder for a in work.archives] == ["clone"]
    # Someone else's model cannot be cloned.
    error = refusal(training_start, make_racer("Thief"), small_request(oval_track, name="x", clone_of=model,
                                                                        vehicle=same_shape))
    assert error.field == "clone_of"


# -------------------------------------------------------------------------------------------------- warm start
def test_a_warm_start_is_for_a_new_model_with_discrete_actions_and_only_its_first_run_imitates(
        make_racer, oval_track, archive_bytes):
    racer = make_racer("Warmer")
    job = training_start(racer, small_request(oval_track, name="warm", warm_start=True))
    assert job.warm_start is True and training_progress(job)["warm_start"] is True
    assert training_sandbox_work(job).job.warm_start is True
    # A run resumed from a stored checkpoint carries on from it: that checkpoint holds the warm start already.
    TrainingJob.objects.filter(pk=job.pk).update(checkpoint_iteration=0, stored_files={
        "training.json": {"name": "training/x/1/training.json", "stamp": [1, 1]}})
    job.refresh_from_db()
    resumed = training_sandbox_work(job).job
    assert resumed.start == "resume" and resumed.warm_start is False
    cold = training_start(make_racer("Cold"), small_request(oval_track, name="cold"))
    assert training_sandbox_work(cold).job.warm_start is False

    model = model_upload(racer, "uploaded", io.BytesIO(archive_bytes))
    error = refusal(training_start, racer, small_request(oval_track, name="both", clone_of=model, warm_start=True))
    assert error.field == "warm_start" and "not both" in error.message
    continuous = get_vehicle("continuous_camera").to_file_dict()
    error = refusal(training_start, racer, small_request(oval_track, name="smooth", vehicle=continuous,
                                                         warm_start=True))
    assert error.field == "warm_start" and "discrete" in error.message


# ------------------------------------------------------------------------------------- stop, budget, resume
def test_stopping_a_queued_job_ends_it_without_a_model_and_only_its_owner_may(make_racer, oval_track):
    racer, other = make_racer("Owner"), make_racer("Other")
    job = training_start(racer, small_request(oval_track))
    assert refusal(training_stop, job, other).code == "not_owner"
    job = training_stop(job, racer)
    assert job.status == "failed" and "before training started" in job.failure_reason
    assert job.attempts.get().status == "superseded"
    assert attempt_claim_next("w", queue="training") is None
    assert refusal(training_stop, job, racer).code == "final"


def test_stopping_a_running_job_asks_the_worker_to_stop_it(make_racer, oval_track):
    racer = make_racer("Runner")
    job = training_start(racer, small_request(oval_track))
    attempt_claim_next("w", queue="training")
    job.refresh_from_db()
    assert job.status == "starting" and job.attempt_number == 1
    job = training_stop(job, racer)
    assert job.status == "stopping" and job.stop_requested_at is not None
    assert training_progress(job)["stop_requested"] is True
    from races.training_target import TrainingTarget

    assert TrainingTarget().stop_requested(job.pk)


def test_a_resumed_attempt_gets_the_stored_folder_and_the_budget_that_is_left(make_racer, oval_track):
    job = training_start(make_racer("Resumer"), small_request(oval_track, max_minutes=10),
                         small_options(max_episodes=None))
    work = training_sandbox_work(job)
    assert work.job.start == "new" and work.files == [] and work.job.max_seconds == 600
    assert work.progress_every_s and work.scratch_bytes >= 256 * 1024**2
    stored = {"training.json": {"name": "training/x/1/training.json", "stamp": [1, 1]},
              "checkpoints/iteration-00003/weights.safetensors": {"name": "training/x/1/w", "stamp": [1, 1]}}
    TrainingJob.objects.filter(pk=job.pk).update(trained_seconds=250.0, checkpoint_iteration=3, stored_files=stored)
    job.refresh_from_db()
    work = training_sandbox_work(job)
    assert work.job.start == "resume" and work.job.max_seconds == 350
    assert sorted(f.path for f in work.files) == ["resume/checkpoints/iteration-00003/weights.safetensors",
                                                   "resume/training.json"]
    assert work.wall_seconds > 350


def test_seconds_are_counted_once_across_attempts(make_racer, oval_track):
    from races.services.training import training_mark_running

    job = training_start(make_racer("Counted"), small_request(oval_track))
    claim = attempt_claim_next("w", queue="training")
    TrainingJob.objects.filter(pk=job.pk).update(trained_seconds=40.0)  # as the first attempt's last report said
    job.refresh_from_db()
    training_mark_running(job, EvaluationAttempt(number=claim.number + 1))
    job.refresh_from_db()
    assert job.seconds_before_attempt == 40.0 and job.attempt_number == 2


# ---------------------------------------------------------------------------------------- the training queue
def test_training_waits_for_the_leagues_capacity_and_never_holds_up_evaluations(make_racer, make_race, oval_track,
                                                                                archive_bytes):
    training_quota_update(max_concurrent_per_racer=1, minutes_per_racer_per_day=600, max_concurrent_total=1)
    ada, bob = make_racer("Ada"), make_racer("Bob")
    first = training_start(ada, small_request(oval_track, name="a"))
    second = training_start(bob, small_request(oval_track, name="b"))
    assert training_progress(second)["queue_position"] == 2
    assert attempt_claim_next("t1", queue="training").target_id == first.pk
    assert attempt_claim_next("t2", queue="training") is None  # the league runs one training at once
    assert training_progress(second)["queue_position"] == 1
    # Ada's training runs; her evaluation still goes (its own queue, its own per-racer cap).
    race = make_race(track=oval_track)
    submission = submission_create(ada, race, model_upload(ada, "mine", io.BytesIO(archive_bytes)))
    assert attempt_claim_next("e1").target_id == submission.pk


def test_the_worker_reads_a_runs_scratch_without_following_its_links(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "log.txt").write_text("x" * 100 + "last line\n")
    secret = tmp_path.parent / f"{tmp_path.name}-secret"
    secret.write_text("host secret")
    os.symlink(secret, tmp_path / "training" / "live.json")
    os.symlink(tmp_path.parent, tmp_path / "escape")
    os.mkfifo(tmp_path / "training" / "fifo")
    view = ScratchView(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY))
    try:
        assert view.read("training/live.json", 1000) is None
        assert view.read(f"escape/{secret.name}", 1000) is None and view.listdir("escape") == []
        assert view.read("training/fifo", 1000) is None  # refused at once, never blocks
        assert view.read("../x", 1000) is None
        assert view.read("training/log.txt", 10) is None  # too large
        assert view.read("training/log.txt", 10, tail=True) == b"last line\n"
        assert view.stat("training/log.txt").st_size == 110 and view.listdir("training") == ["fifo", "live.json",
                                                                                             "log.txt"]
    finally:
        view.close()


def _scratch_with_film(folder, iteration: int, film_bytes: bytes) -> ScratchView:
    (folder / "training").mkdir(exist_ok=True)
    for old in (folder / "training").glob("camera-*.npy"):
        old.unlink()
    (folder / "training" / f"camera-{iteration:05d}.npy").write_bytes(film_bytes)
    return ScratchView(os.open(folder, os.O_RDONLY | os.O_DIRECTORY))


def _film_bytes(film) -> bytes:
    out = io.BytesIO()
    np.save(out, film, allow_pickle=True)
    return out.getvalue()


def test_the_camera_film_is_checked_made_into_a_gif_here_and_shown_to_its_owner_only(
        make_racer, oval_track, tmp_path, client, django_capture_on_commit_callbacks):
    from races.services.training import training_record_progress

    owner = make_racer("Filmed")
    job = training_start(owner, small_request(oval_track))
    frames = np.random.default_rng(1).integers(0, 256, (9, 120, 160), dtype=np.uint8)
    # A warm start's (or a clone's) evaluation is filmed as iteration 0, before iteration 1 ends.
    view = _scratch_with_film(tmp_path, 0, _film_bytes(frames[:3]))
    try:
        training_record_progress(job.pk, job.attempt_number, view)
    finally:
        view.close()
    job.refresh_from_db()
    assert job.camera_iteration == 0 and job.camera_film
    client.force_login(owner)
    assert "The starting model (iteration 0)" in client.get(f"/training/{job.pk}/").content.decode()
    view = _scratch_with_film(tmp_path, 1, _film_bytes(frames))
    try:
        training_record_progress(job.pk, job.attempt_number, view)
    finally:
        view.close()
    job.refresh_from_db()
    assert job.camera_iteration == 1 and training_progress(job)["camera_iteration"] == 1
    first_film = job.camera_film.name
    page = client.get(f"/training/{job.pk}/progress.json").json()
    assert page["camera_url"] == f"/training/{job.pk}/camera.gif?i=1"
    gif = client.get(page["camera_url"])
    assert gif.status_code == 200 and gif["Content-Type"] == "image/gif"
    assert Image.open(io.BytesIO(gif.content)).n_frames == 9
    client.force_login(make_racer("Nosy"))
    assert client.get(page["camera_url"]).status_code == 404

    # A pickle, a float array or an oversized film from the run is refused: the stored film stays.
    for hostile in (_film_bytes(np.array([{"a": 1}], dtype=object)), _film_bytes(frames.astype(np.float32)),
                    _film_bytes(np.zeros((200, 120, 160), np.uint8)), b"GIF89a<script>"):
        view = _scratch_with_film(tmp_path, 2, hostile)
        try:
            training_record_progress(job.pk, job.attempt_number, view)
        finally:
            view.close()
        job.refresh_from_db()
        assert job.camera_iteration == 1 and job.camera_film.name == first_film

    # A newer film replaces the stored one, whose file goes.
    view = _scratch_with_film(tmp_path, 3, _film_bytes(frames[:4]))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            training_record_progress(job.pk, job.attempt_number, view)
    finally:
        view.close()
    job.refresh_from_db()
    assert job.camera_iteration == 3 and not default_storage.exists(first_film)


def test_the_runs_live_status_is_copied_as_known_plain_values_only(make_racer, oval_track, tmp_path):
    from races.services.training import training_record_progress

    job = training_start(make_racer("Lively"), small_request(oval_track))
    claim = attempt_claim_next("w", queue="training")
    job.refresh_from_db()
    metrics = tmp_path / "training" / "model" / "metrics"
    metrics.mkdir(parents=True)
    (metrics / "live.json").write_text(json.dumps({
        "phase": "collecting", "update": "x" * 500, "iteration": 1, "iteration_episodes_planned": 5,
        "iteration_episodes_finished": 2, "iteration_env_steps": 120, "seconds_left": 500.0,
        "elapsed_seconds": 12.0, "note": "from the sandbox", "html": "<script>"}))
    view = ScratchView(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY))
    try:
        training_record_progress(job.pk, claim.number, view)
    finally:
        view.close()
    job.refresh_from_db()
    assert job.live == {"phase": "collecting", "update": "x" * 80, "iteration": 1, "iteration_episodes_planned": 5,
                        "iteration_episodes_finished": 2, "iteration_env_steps": 120, "seconds_left": 500.0,
                        "note": ""}
    assert training_progress(job)["iteration_env_steps"] == 120 and job.trained_seconds == 12.0


# ------------------------------------------------------------------------------------------------------- API
def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def body(oval_track, **changes) -> dict:
    request = small_request(oval_track)
    return {"name": request.name, "tracks": [oval_track.slug], "vehicle": request.vehicle,
            "reward_function_source": request.reward_function_source, "hyperparameters": request.hyperparameters,
            "max_minutes": 5} | changes


def test_the_api_starts_lists_shows_and_stops_only_your_own_jobs(make_racer, oval_track):
    racer, other = make_racer("Api"), make_racer("Nosy")
    created = api(racer).post("/api/training/", body(oval_track), format="json")
    assert created.status_code == 201, created.json()
    job = created.json()
    assert job["status"] == "queued" and job["queue_position"] == 1 and job["seconds_left"] == 300
    assert [j["id"] for j in api(racer).get("/api/training/").json()["results"]] == [job["id"]]
    assert api(other).get("/api/training/").json()["results"] == []
    assert api(other).get(f"/api/training/{job['id']}/").status_code == 404
    assert api(other).post(f"/api/training/{job['id']}/stop/").status_code == 404
    assert APIClient().get(f"/api/training/{job['id']}/").status_code == 401
    detail = api(racer).get(f"/api/training/{job['id']}/").json()
    assert detail["name"] == "trained" and detail["curve"] == []
    stopped = api(racer).post(f"/api/training/{job['id']}/stop/")
    assert stopped.status_code == 200 and stopped.json()["status"] == "failed"
    with pytest.raises(TrainingJob.DoesNotExist):
        training_job_for(other, job["id"])


def test_the_api_starts_a_warm_start_and_says_so(make_racer, oval_track):
    created = api(make_racer("ApiWarm")).post("/api/training/", body(oval_track, warm_start=True), format="json")
    assert created.status_code == 201 and created.json()["warm_start"] is True
    assert TrainingJob.objects.get(pk=created.json()["id"]).warm_start is True


def test_the_api_names_the_field_of_a_refusal(make_racer, oval_track):
    answer = api(make_racer("Typo")).post("/api/training/",
                                          body(oval_track, reward_function_source="def reward_function("),
                                          format="json")
    assert answer.status_code == 400
    assert answer.json()["field"] == "reward_function_source" and "line 1" in answer.json()["detail"]
    answer = api(make_racer("Lost")).post("/api/training/", body(oval_track, tracks=["nowhere"]), format="json")
    assert answer.status_code == 400 and answer.json()["field"] == "tracks"


def test_the_api_clones_a_model_with_the_settings_it_was_trained_with(make_racer, oval_track, archive_bytes):
    racer = make_racer("Again")
    model = model_upload(racer, "base", io.BytesIO(archive_bytes))
    job = TrainingJob.objects.create(owner=racer, name="base", vehicle=SMALL_VEHICLE, status="done", model=model,
                                     reward_function_source=small_request(oval_track).reward_function_source,
                                     hyperparameters={"episodes_between_training": 5}, max_minutes=5)
    job.track_rows.create(track=oval_track, position=0)
    answer = api(racer).post("/api/training/clone/", {"model": model.pk, "name": "base v2", "max_minutes": 5},
                             format="json")
    assert answer.status_code == 201, answer.json()
    clone = TrainingJob.objects.get(pk=answer.json()["id"])
    assert clone.cloned_from == model and clone.hyperparameters["episodes_between_training"] == 5
    assert [row.track for row in clone.track_rows.all()] == [oval_track]
    assert clone.vehicle["action_space"] != SMALL_VEHICLE["action_space"]  # the model's own vehicle
    assert api(make_racer("Stranger")).post("/api/training/clone/", {"model": model.pk, "name": "mine",
                                                                    "max_minutes": 5}, format="json").status_code == 404


@pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine")
def test_starting_a_job_runs_the_racers_reward_function_in_the_sandbox_not_in_the_web_process(make_racer, oval_track,
                                                                                             tmp_path):
    planted = tmp_path / "written-by-the-reward-function"
    # Past the static checks (they refuse a plain ``open``, but they are not a security boundary):
    source = ("def reward_function(params):\n"
              "    b = __builtins__\n"
              "    write = b['op' + 'en'] if isinstance(b, dict) else getattr(b, 'op' + 'en')\n"
              f"    write({str(planted)!r}, 'w').write('escaped')\n"
              "    return 1.0\n")
    error = refusal(training_start, make_racer("Sneaky"), small_request(oval_track, reward_function_source=source))
    # Inside the sandbox the host's folders are not there (or read-only): the write fails, and the web process's
    # own filesystem never saw it.
    assert error.field == "reward_function_source" and not planted.exists()
