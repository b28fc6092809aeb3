"""Evaluation throughput: queued -> scored through real workers, Redis, PostgreSQL and the bubblewrap sandbox.

(a) wall time of one 3-lap time trial from queued to scored (target <= 5 s; DeepRacer takes minutes);
(b) N submissions from R racers drained by W worker processes: evaluations per minute, p50/p95
    queue-to-scored latency, and the check that every submission has exactly one result.

It creates a throwaway PostgreSQL database and uses a Redis database of its own; the model is a clone of
the scripted driver made by our code (cached under benchmarks/out/).

Run: .venv/bin/python benchmarks/evaluation_throughput.py [--submissions 200 --racers 20 --workers 2]
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
POSTGRES = "postgres://postgres@127.0.0.1:5432"
OUT = REPO / "benchmarks" / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--racers", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--singles", type=int, default=3, help="single evaluations, one after the other (median)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()

    import psycopg

    database = f"pitlane_bench_{os.getpid()}"
    media = tempfile.mkdtemp(prefix="pitlane-bench-media-")
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    env = os.environ | {
        "PITLANE_DATABASE_URL": f"{POSTGRES}/{database}",
        "PITLANE_BROKER_URL": args.redis,
        "PITLANE_MEDIA_ROOT": media,
        "PITLANE_DEMO_BASELINE": "false",
        "PITLANE_LOG_LEVEL": "WARNING",
        "PITLANE_EVAL_MAX_CONCURRENT_PER_RACER": "1",
    }
    os.environ.update(env)
    workers: list[subprocess.Popen] = []
    try:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "league.settings")
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        import dramatiq

        dramatiq.get_broker().flush_all()
        race, racers, archive = _prepare(args.racers)
        workers = [_start_worker(env, OUT / f"worker-{i}.log") for i in range(args.workers)]
        time.sleep(3)  # let the workers import torch and connect

        singles = [_single_evaluation(race, racers[i % len(racers)], archive, i) for i in range(args.singles)]
        single = sorted(singles, key=lambda run: run["seconds"])[len(singles) // 2]  # the median run
        single["all_seconds"] = [run["seconds"] for run in singles]
        batch = _batch(race, racers, archive, args.submissions) if args.submissions else {}
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(30)
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    print(f"{'measure':<44}{'value':>14}")
    print(f"{'(a) one 3-lap time trial, queued -> scored':<44}{single['seconds']:>12.2f} s  (median of "
          f"{', '.join(f'{s:.2f}' for s in single['all_seconds'])})")
    print(f"{'    sandbox process, start to result':<44}{single['sandbox_seconds']:>12.2f} s")
    for phase, seconds in single["timings"].items():
        print(f"{'      ' + phase:<44}{seconds:>12.2f} s")
    if batch:
        print(f"{'(b) submissions / racers / workers':<44}{args.submissions:>6} / {args.racers} / {args.workers}")
        print(f"{'    evaluations per minute':<44}{batch['per_minute']:>14.1f}")
        print(f"{'    p50 / p95 queue-to-scored latency':<44}{batch['p50_s']:>7.1f} / {batch['p95_s']:.1f} s")
        print(f"{'    scored / failed':<44}{batch['scored']:>8} / {batch['failed']}")
        print(f"{'    every submission has exactly one result':<44}{batch['exactly_one_result']!s:>14}")
    print(json.dumps({"benchmark": "evaluation_throughput", "single": single, "batch": batch,
                      "submissions": args.submissions, "racers": args.racers, "workers": args.workers,
                      "target_single_seconds": 5.0}))


def _prepare(racer_count: int):
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from league.services import racer_set_alias
    from races.models import Race
    from races.services import race_create, track_install_builtins, track_sim

    tracks = {t.slug: t for t in track_install_builtins()}
    now = timezone.now()
    race = race_create(Race.Kind.VIRTUAL_CIRCUIT, name="Bench Cup", track=tracks["pitlane_technical"],
                       total_laps=3, minimum_laps=1, opens_at=now - timedelta(minutes=1),
                       closes_at=now + timedelta(days=1), max_submissions_per_racer=1000)
    racers = []
    for i in range(racer_count):
        user = get_user_model().objects.create_user(f"bench{i}")
        racer_set_alias(user, f"Bench{i:02d}")
        racers.append(user)
    return race, racers, _lapping_archive(track_sim(race.track))


def _lapping_archive(track) -> bytes:
    cached = OUT / "driver-clone-technical.tar.gz"
    if not cached.exists():
        from sim.io.archive import write_model_archive
        from sim.learn.imitation import train_imitation_model
        from sim.world.vehicle import get_vehicle

        OUT.mkdir(parents=True, exist_ok=True)
        vehicle = get_vehicle("original_deepracer")
        write_model_archive(cached, vehicle, train_imitation_model(track, vehicle).network.state_dict())
    return cached.read_bytes()


def _start_worker(env: dict, log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "1"],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def _single_evaluation(race, racer, archive: bytes, index: int) -> dict:
    from races.models import Run, Submission
    from races.services import model_upload, submission_create

    model = model_upload(racer, f"single-{index}", io.BytesIO(archive))
    submission = submission_create(racer, race, model)
    _wait(lambda: Submission.objects.get(pk=submission.pk).status in ("scored", "failed"), 600)
    submission.refresh_from_db()
    run = Run.objects.filter(submission=submission).first()
    return {
        "status": submission.status,
        "seconds": round((submission.finished_at - submission.submitted_at).total_seconds(), 3),
        "sandbox_seconds": run.duration_s if run else None,
        "timings": _sandbox_timings(submission) if run else {},
        "laps": [lap["elapsed_time_in_milliseconds"] for lap in run.laps] if run else [],
    }


def _sandbox_timings(submission) -> dict:
    """The runner's phase timings, read back from the worker's log line of the attempt (not stored in Run)."""
    from evaluator.models import EvaluationAttempt

    attempt = submission.attempts.filter(status=EvaluationAttempt.Status.SUCCEEDED).first()
    return dict(attempt.timings) if attempt is not None and attempt.timings else {}


def _batch(race, racers, archive: bytes, count: int) -> dict:
    from django.db.models import Count

    from races.models import Run, Submission
    from races.services import model_upload, submission_create

    models = {racer.pk: model_upload(racer, "batch", io.BytesIO(archive)) for racer in racers}
    started = time.monotonic()
    submissions = [submission_create(racers[i % len(racers)], race, models[racers[i % len(racers)].pk])
                   for i in range(count)]
    ids = [s.pk for s in submissions]
    _wait(lambda: not Submission.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists(), 3600)
    elapsed = time.monotonic() - started
    done = list(Submission.objects.filter(pk__in=ids))
    latencies = sorted((s.finished_at - s.submitted_at).total_seconds() for s in done if s.finished_at)
    per_submission = dict(Run.objects.filter(submission_id__in=ids).values_list("submission_id")
                          .annotate(n=Count("pk")).values_list("submission_id", "n"))
    return {
        "scored": sum(s.status == "scored" for s in done),
        "failed": sum(s.status == "failed" for s in done),
        "seconds": round(elapsed, 1),
        "per_minute": round(len(done) / elapsed * 60, 1),
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "exactly_one_result": all(per_submission.get(i) == 1 for i in ids),
    }


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("evaluations did not finish in time")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
