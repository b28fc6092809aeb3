"""Training in the web console against the CLI: env steps/s of sandboxed training jobs, and evaluation latency.

Every phase trains with the same settings (the create-model form's defaults: the lab's car on the demo race's
track, its example reward function, 20 episodes per update, batch 64, 10 epochs; one core per training as a
training worker gives each job) for ``--minutes`` each, and reports env steps per second of training time
(``env_steps / elapsed_seconds`` of the last metrics row: collection, update and evaluation, the same measure on
both sides):

  0. evaluations alone: a lapping model evaluated on the demo race, queued -> scored (median of 3), no training;
  A. the CLI alone (``python -m sim train --threads 1``): the reference;
  A'. one training job alone through the console (services -> training queue -> a training worker -> the
     bubblewrap sandbox -> progress stored every few seconds): A' / A is the console's own cost;
  B. two CLI trainings at once while evaluations flow (one submission every ``--eval-every`` s, one evaluation
     worker): the same load as C without the console, so C / B is the console's own cost;
  C. two racers' training jobs at once through the console (a training worker with two threads), evaluations
     flowing as in B: C / B is the console's cost under load.

Target (issue #15): each job's steps/s >= 80 % of the CLI's on the same settings. On a 2-core machine C runs three
busy processes (two trainings, the evaluations) on two cores, and a training yields the CPU to evaluations (nice
10), so C / A cannot reach it there; A' / A and C / B are the like-for-like ratios.

It makes a throwaway PostgreSQL database and uses a Redis db of its own (``league_harness``).
Run: .venv/bin/python benchmarks/training_console.py [--minutes 3 --eval-every 15]
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from league_harness import OUT, REPO, lapping_archive, throwaway_league, wait_until

TRACK = "pitlane_technical"  # the demo race's
VEHICLE = "original_deepracer"  # the create-model form's default car
REWARD_EXAMPLE = "example_1_follow_center_line"  # the form's default reward function


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="training minutes of each phase")
    parser.add_argument("--eval-every", type=float, default=15.0, help="seconds between submissions in B and C")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    with throwaway_league(args.redis, {"PITLANE_EVAL_MAX_CONCURRENT_PER_RACER": "1"}) as league:
        race, racers = _prepare()
        archive = lapping_archive(TRACK)
        league.start_worker("console-evaluation-worker", queues=("evaluations",))  # submissions only
        league.start_worker("console-training-worker", queues=("training",), threads=2)
        time.sleep(3)  # let the workers import and connect

        feeder = EvaluationFeeder(race, racers[2], archive)
        alone = [feeder.one_evaluation() for _ in range(3)]
        cli_alone = _cli_trainings(1, args.minutes)
        job_alone = _console_trainings(racers[:1], args.minutes, "alone")
        with feeder.flowing(args.eval_every):
            cli_loaded = _cli_trainings(2, args.minutes)
        b_latencies = feeder.take_latencies()
        with feeder.flowing(args.eval_every):
            jobs = _console_trainings(racers[:2], args.minutes, "loaded")
        c_latencies = feeder.take_latencies()

    reference = cli_alone[0]["steps_per_second"] or float("nan")  # nan: no iteration finished (too few minutes)
    loaded = statistics.mean(run["steps_per_second"] for run in cli_loaded) or float("nan")
    rows = [("A  CLI alone", cli_alone[0]), ("A' console job alone", job_alone[0]),
            *((f"B  CLI {i + 1} of 2, evaluations flowing", run)
                                              for i, run in enumerate(cli_loaded)),
            *((f"C  console job {i + 1} of 2, evaluations flowing", run) for i, run in enumerate(jobs))]
    print(f"Training {args.minutes:g} min per phase: {VEHICLE} on {TRACK}, the form's defaults, 1 core per training "
          f"(load average before: {load_before:.2f})")
    print(f"{'phase':<44}{'iterations':>11}{'env steps':>11}{'steps/s':>9}{'of A':>7}{'of B':>7}")
    for name, run in rows:
        print(f"{name:<44}{run['iterations']:>11}{run['env_steps']:>11}{run['steps_per_second']:>9.1f}"
              f"{run['steps_per_second'] / reference:>7.0%}{run['steps_per_second'] / loaded:>7.0%}")
    print()
    print(f"{'evaluation queued -> scored':<44}{'n':>5}{'median':>9}{'max':>9}")
    for name, latencies in (("0  alone (no training)", alone), ("B  during two CLI trainings", b_latencies),
                            ("C  during two console jobs", c_latencies)):
        print(f"{name:<44}{len(latencies):>5}{statistics.median(latencies):>8.1f}s{max(latencies):>8.1f}s"
              if latencies else f"{name:<44}{0:>5}")
    job_ratio_a = min(run["steps_per_second"] for run in jobs) / reference
    job_ratio_b = min(run["steps_per_second"] for run in jobs) / loaded
    alone_ratio = job_alone[0]["steps_per_second"] / reference
    print(f"\nconsole job alone: {alone_ratio:.0%} of the CLI alone; with two jobs and evaluations, the slowest job: "
          f"{job_ratio_b:.0%} of the CLI under the same load, {job_ratio_a:.0%} of the CLI alone (target >= 80 %)")
    print(json.dumps({
        "benchmark": "training_console", "minutes": args.minutes, "eval_every_s": args.eval_every,
        "track": TRACK, "vehicle": VEHICLE, "load_average_before": round(load_before, 2),
        "cli_alone": cli_alone[0], "console_job_alone": job_alone[0], "cli_two_loaded": cli_loaded,
        "console_jobs": jobs,
        "evaluation_latency_s": {"alone": alone, "during_cli": b_latencies, "during_console": c_latencies},
        "job_alone_of_cli_alone": round(alone_ratio, 3), "slowest_job_of_cli_alone": round(job_ratio_a, 3),
        "slowest_job_of_cli_loaded": round(job_ratio_b, 3),
        "target_ratio": 0.8,
    }))


def _prepare():
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from league.services import racer_set_alias
    from races.models import Race
    from races.services import race_create, track_install_builtins
    from races.services.training import training_quota_update

    tracks = {t.slug: t for t in track_install_builtins()}
    now = timezone.now()
    race = race_create(Race.Kind.VIRTUAL_CIRCUIT, name="Console Cup", track=tracks[TRACK], total_laps=3,
                       minimum_laps=1, time_cap_s=180, opens_at=now - timedelta(minutes=1),
                       closes_at=now + timedelta(days=1), max_submissions_per_racer=1000, submission_cooldown_s=0)
    racers = []
    for i in range(3):
        user = get_user_model().objects.create_user(f"console{i}")
        racer_set_alias(user, f"Console{i}")
        racers.append(user)
    training_quota_update(max_concurrent_per_racer=1, minutes_per_racer_per_day=24 * 60, max_concurrent_total=2)
    return race, racers


class EvaluationFeeder:
    """Submits the lapping model to the race, alone or every few seconds, and measures queued -> scored."""

    def __init__(self, race, racer, archive: bytes) -> None:
        from races.services import model_upload

        self.race, self.racer = race, racer
        self.model = model_upload(racer, "evaluated", io.BytesIO(archive))
        self.pending: list[int] = []
        self.latencies: list[float] = []

    def one_evaluation(self) -> float:
        self._submit()
        self._collect(wait=True)
        return self.latencies.pop() if self.latencies else float("nan")

    def _submit(self):
        from races.services import submission_create

        submission = submission_create(self.racer, self.race, self.model)
        self.pending.append(submission.pk)
        return submission

    def _collect(self, wait: bool = False) -> None:
        from races.models import Submission

        def finished() -> list:
            return list(Submission.objects.filter(pk__in=self.pending, status__in=["scored", "failed"]))

        if wait:
            wait_until(lambda: len(finished()) == len(self.pending), 900, "the evaluations")
        for submission in finished():
            if submission.status != "scored":
                raise RuntimeError(f"submission {submission.pk} failed: {submission.failure_reason}")
            self.latencies.append(round((submission.finished_at - submission.submitted_at).total_seconds(), 2))
            self.pending.remove(submission.pk)

    def flowing(self, every_s: float) -> _Flow:
        return _Flow(self, every_s)

    def take_latencies(self) -> list[float]:
        taken, self.latencies = self.latencies, []
        return taken


class _Flow:
    """While the block runs (on another thread, the trainings poll), one submission every ``every_s`` seconds."""

    def __init__(self, feeder: EvaluationFeeder, every_s: float) -> None:
        import threading

        self.feeder, self.every_s = feeder, every_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._feed, daemon=True)

    def __enter__(self) -> _Flow:
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.stopped.set()
        self.thread.join()
        self.feeder._collect(wait=True)

    def _feed(self) -> None:
        from django.db import connection

        try:
            while not self.stopped.is_set():
                self.feeder._submit()
                self.feeder._collect()
                self.stopped.wait(self.every_s)
        finally:
            connection.close()


def _cli_trainings(count: int, minutes: float) -> list[dict]:
    """``count`` CLI trainings at once, each ``--threads 1`` for ``minutes``: their steps/s from metrics."""
    folder = Path(tempfile.mkdtemp(prefix="pitlane-bench-cli-"))
    runs = []
    for i in range(count):
        command = [sys.executable, "-m", "sim", "train", str(folder / f"cli-{i}"), "--track", TRACK,
                   "--vehicle", VEHICLE, "--reward-example", REWARD_EXAMPLE, "--threads", "1",
                   "--max-minutes", str(minutes), "--seed", str(i), "--quiet"]
        runs.append(subprocess.Popen(command, cwd=REPO, stdout=(OUT / f"console-cli-{count}-{i}.log").open("w"),
                                     stderr=subprocess.STDOUT))
    for run in runs:
        if run.wait() != 0:
            raise RuntimeError(f"the CLI training failed: see {OUT}/console-cli-*.log")
    metrics = [folder / f"cli-{i}" / "metrics" / "iterations.json" for i in range(count)]
    rates = [_rate(json.loads(path.read_text())["iterations"] if path.exists() else []) for path in metrics]
    shutil.rmtree(folder, ignore_errors=True)
    return rates


def _console_trainings(racers: list, minutes: float, phase: str) -> list[dict]:
    """Each racer starts one job with the form's defaults (through the same service the form calls)."""
    from races.models import Race, Track, TrainingJob
    from races.services.training import TrainingOptions, TrainingRequest, training_start
    from sim.world.reward_examples import EXAMPLES
    from sim.world.vehicle import get_vehicle

    track = Track.objects.get(slug=TRACK)
    jobs = []
    for i, racer in enumerate(racers):
        request = TrainingRequest(name=f"console-{phase}-{i}", description="", tracks=(track,),
                                  direction=Race.Direction.COUNTERCLOCKWISE,
                                  vehicle=get_vehicle(VEHICLE).to_file_dict(), race_type=Race.RaceType.TIME_TRIAL,
                                  reward_function_source=EXAMPLES[REWARD_EXAMPLE], hyperparameters={},
                                  max_minutes=minutes)
        jobs.append(training_start(racer, request, TrainingOptions(seed=i)))
    ids = [job.pk for job in jobs]
    wait_until(lambda: not TrainingJob.objects.filter(pk__in=ids).exclude(status__in=["done", "failed"]).exists(),
               minutes * 60 + 600, "the training jobs")
    results = []
    for job in TrainingJob.objects.filter(pk__in=ids).order_by("pk"):
        if job.status != "done":
            raise RuntimeError(f"training job {job.pk} {job.status}: {job.failure_reason}")
        results.append(_rate(job.curve))
    return results


def _rate(rows: list[dict]) -> dict:
    if not rows:
        return {"iterations": 0, "env_steps": 0, "seconds": 0.0, "steps_per_second": 0.0}
    last = rows[-1]
    return {"iterations": int(last["iteration"]), "env_steps": int(last["env_steps"]),
            "seconds": round(float(last["elapsed_seconds"]), 1),
            "steps_per_second": round(int(last["env_steps"]) / float(last["elapsed_seconds"]), 1)}


if __name__ == "__main__":
    main()
