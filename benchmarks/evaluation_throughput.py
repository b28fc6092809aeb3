"""Evaluation throughput: queued -> scored through real workers, Redis, PostgreSQL and the bubblewrap sandbox.

The setting is the demo race's ("Pitlane Warm-up Cup", made by races.setup: 3 laps of the technical loop, its rules)
and its baseline entry's model (the garage's ``pitlane_racer`` car cloned from the racing-line driver, made by our
code and cached under benchmarks/out/).

(a) one evaluation queued -> scored on idle workers (each single waits until the workers' sandboxes started ahead
    are ready), median of --singles, broken down by phase: queue wait (submitted -> claimed), reading the work,
    sandbox start (or taking the one started ahead), archive fetch + validation, the runner's phases (import, track
    preparation, model load, racing: the model's network and the simulator apart), result parsing, recording;
    simulated seconds per second of the simulator (the target: >= 100x real time) and of racing as a whole (the
    simulator and the racer's network, whose cost is the racer's choice of architecture); plus the worker
    CPU-seconds it cost (workers and their sandboxes, measured with a cpuacct cgroup, so other load on the machine
    does not count);
(b) N submissions from R racers drained by W worker processes: evaluations per minute, p50/p95 queue-to-scored
    latency, worker CPU-seconds per evaluation, and the check that every submission has exactly one result.

It creates a throwaway PostgreSQL database and uses a Redis database of its own.

Run: .venv/bin/python benchmarks/evaluation_throughput.py [--submissions 200 --racers 20 --workers 2]
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from league_harness import OUT, throwaway_league, wait_until

CPUACCT = Path("/sys/fs/cgroup/cpuacct")
IDLE_BEFORE_SINGLE_S = 4.0  # the sandbox started ahead after the previous evaluation has imported torch by then


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--racers", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--singles", type=int, default=3, help="single evaluations, one after the other (median)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()

    meter = CpuMeter()
    try:
        with throwaway_league(args.redis, {"PITLANE_EVAL_MAX_CONCURRENT_PER_RACER": "1"}) as league:
            race, racers, archive = _prepare(args.racers)
            for i in range(args.workers):
                league.start_worker(f"worker-{i}", preexec_fn=meter.join)
            time.sleep(3)  # let the workers import torch and connect

            singles = [_single_evaluation(race, racers[i % len(racers)], archive, i, meter)
                       for i in range(args.singles)]
            single = sorted(singles, key=lambda run: run["seconds"])[len(singles) // 2]  # the median run
            single["all_seconds"] = [run["seconds"] for run in singles]
            batch = _batch(race, racers, archive, args.submissions, meter) if args.submissions else {}
    finally:
        meter.close()  # after the league stopped its workers

    print(f"{'measure':<52}{'value':>14}")
    print(f"{'(a) one demo-race evaluation, queued -> scored':<52}{single['seconds']:>12.2f} s  (median of "
          f"{', '.join(f'{s:.2f}' for s in single['all_seconds'])}; target <= 2 s)")
    print(f"{'    sandbox started ahead (warm)':<52}{single['warm']!s:>14}")
    for phase, seconds in single["phases"].items():
        print(f"{'    ' + phase:<52}{seconds:>12.3f} s")
    print(f"{'    simulated seconds / simulator seconds':<52}{single['x_real_time_simulator']:>12.1f} x"
          "  (target >= 100)")
    print(f"{'    simulated seconds / racing seconds (+ network)':<52}{single['x_real_time']:>12.1f} x")
    print(f"{'    worker CPU-seconds (workers + sandboxes)':<52}{single['cpu_s']:>12.2f} s")
    if batch:
        print(f"{'(b) submissions / racers / workers':<52}{args.submissions:>6} / {args.racers} / {args.workers}")
        print(f"{'    evaluations per minute':<52}{batch['per_minute']:>14.1f}  (target >= 40)")
        print(f"{'    p50 / p95 queue-to-scored latency':<52}{batch['p50_s']:>7.1f} / {batch['p95_s']:.1f} s")
        print(f"{'    worker CPU-seconds per evaluation':<52}{batch['cpu_s_per_evaluation']:>14.2f}")
        print(f"{'    evaluations that used a sandbox started ahead':<52}{batch['warm']:>14}")
        print(f"{'    scored / failed':<52}{batch['scored']:>8} / {batch['failed']}")
        print(f"{'    every submission has exactly one result':<52}{batch['exactly_one_result']!s:>14}")
    print(json.dumps({"benchmark": "evaluation_throughput", "race": "demo", "single": single, "batch": batch,
                      "submissions": args.submissions, "racers": args.racers, "workers": args.workers,
                      "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
                      "target_single_seconds": 2.0, "target_per_minute": 40, "target_x_real_time": 100}))


class CpuMeter:
    """CPU time of the workers and every descendant, exited ones included (the sandboxes' processes are reaped
    inside their own PID namespaces): a cpuacct cgroup (v1) each worker joins before it starts."""

    def __init__(self) -> None:
        self.path: Path | None = None
        if (CPUACCT / "cpuacct.usage").exists() and os.access(CPUACCT, os.W_OK):
            self.path = CPUACCT / f"pitlane-bench-eval-{os.getpid()}"
            self.path.mkdir(exist_ok=True)

    def join(self) -> None:
        """Called in the worker between fork and exec: it and all it starts count."""
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def seconds(self) -> float:
        return int((self.path / "cpuacct.usage").read_text()) / 1e9 if self.path is not None else float("nan")

    def close(self) -> None:
        if self.path is None:
            return
        for pid in (self.path / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (CPUACCT / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def _prepare(racer_count: int):
    """The demo race exactly as a new league gets it (races.setup), without its baseline entry, and R racers."""
    from django.contrib.auth import get_user_model

    from league.services import racer_set_alias
    from races.models import Race
    from races.services import track_sim
    from races.setup import DEMO_RACE_NAME, install_builtin_data

    install_builtin_data(io.StringIO())
    race = Race.objects.get(name=DEMO_RACE_NAME)
    Race.objects.filter(pk=race.pk).update(max_submissions_per_racer=10_000)  # a benchmark submits more
    race.refresh_from_db()
    racers = []
    for i in range(racer_count):
        user = get_user_model().objects.create_user(f"bench{i}")
        racer_set_alias(user, f"Bench{i:02d}")
        racers.append(user)
    return race, racers, _baseline_archive(track_sim(race.track, race.direction))


def _baseline_archive(track) -> bytes:
    """The demo race's baseline model (races.setup.install_baseline_entry's recipe), made once."""
    cached = OUT / "demo-baseline.tar.gz"
    if not cached.exists():
        from races.setup import BASELINE_VEHICLE
        from sim.io.archive import write_model_archive
        from sim.learn.imitation import clone_racing_line_driver
        from sim.world.vehicle import get_vehicle

        OUT.mkdir(parents=True, exist_ok=True)
        vehicle = get_vehicle(BASELINE_VEHICLE)
        network = clone_racing_line_driver(track, vehicle).network
        write_model_archive(cached, vehicle, network.state_dict())
    return cached.read_bytes()


def _single_evaluation(race, racer, archive: bytes, index: int, meter: CpuMeter) -> dict:
    from races.models import Run, Submission
    from races.services import model_upload, submission_create

    model = model_upload(racer, f"single-{index}", io.BytesIO(archive))
    time.sleep(IDLE_BEFORE_SINGLE_S)
    cpu_before = meter.seconds()
    submission = submission_create(racer, race, model)
    wait_until(lambda: Submission.objects.get(pk=submission.pk).status in ("scored", "failed"), 600,
               "the evaluation")
    time.sleep(IDLE_BEFORE_SINGLE_S)  # the next sandbox started ahead is part of this evaluation's cost
    cpu = meter.seconds() - cpu_before
    submission.refresh_from_db()
    run = Run.objects.filter(submission=submission).first()
    attempt = _succeeded_attempt(submission)
    timings = dict(attempt.timings) if attempt is not None else {}
    laps_ms = [lap["elapsed_time_in_milliseconds"] for lap in run.laps] if run else []
    return {
        "status": submission.status,
        "seconds": round((submission.finished_at - submission.submitted_at).total_seconds(), 3),
        "warm": bool(timings.get("warm")),
        "phases": _phases(submission, attempt) if attempt is not None else {},
        "timings": timings,
        "x_real_time": _times_real_time(laps_ms, timings.get("race_s", 0.0)),
        "x_real_time_simulator": _times_real_time(laps_ms, timings.get("race_s", 0.0) - timings.get("policy_s", 0.0)),
        "cpu_s": round(cpu, 2),
        "laps": laps_ms,
        "off_track": [lap["off_track_count"] for lap in run.laps] if run else [],
    }


def _times_real_time(laps_ms: list[int], seconds: float) -> float:
    """Simulated (lap) seconds per second of ``seconds``: 1.0 is the DeepRacer simulation's real time."""
    return round(sum(laps_ms) / 1000 / seconds, 1) if seconds > 0 else 0.0


def _succeeded_attempt(submission):
    from evaluator.models import EvaluationAttempt

    return submission.attempts.filter(status=EvaluationAttempt.Status.SUCCEEDED).first()


def _phases(submission, attempt) -> dict[str, float]:
    """Where the seconds from submitted to scored went, in order (the worker's ``at_*`` marks are seconds since the
    claim; the runner's phases are its own clock). The runner's import and track preparation overlap other phases:
    with a sandbox started ahead the import happened before the claim."""
    t = attempt.timings
    claimed = (attempt.started_at - submission.submitted_at).total_seconds()
    finished = (attempt.finished_at - attempt.started_at).total_seconds()
    phases = {"queue wait (submitted -> claimed)": claimed}
    if "at_parsed_s" in t:  # the worker's marks (older workers record only the runner's phases)
        phases |= {
            "reading the work (target, track rows)": t["at_work_s"],
            "sandbox start (or take the warm one)": t["at_started_s"] - t["at_work_s"],
            "archive fetch + validation": t["at_fetched_s"] - t["at_started_s"],
            "sandbox end of input -> result": t["at_ended_s"] - t["at_fetched_s"],
        }
    phases |= {
        "    runner: waiting for the model after track prep": t.get("model_wait_s", 0.0),
        "    runner: model load": t.get("load_s", 0.0),
        "    runner: racing": t.get("race_s", 0.0),
        "        of it the model's network": t.get("policy_s", 0.0),
        "        of it the simulator": t.get("race_s", 0.0) - t.get("policy_s", 0.0),
    }
    if "at_parsed_s" in t:
        phases |= {"result parsing (worker)": t["at_parsed_s"] - t["at_ended_s"],
                   "result recording (transaction)": finished - t["at_parsed_s"]}
    else:
        phases["claimed -> recorded, all of it"] = finished
    phases |= {"(overlapped) runner import": t.get("import_s", 0.0),
               "(overlapped) runner track preparation": t.get("track_s", 0.0)}
    return {name: round(seconds, 3) for name, seconds in phases.items()}


def _batch(race, racers, archive: bytes, count: int, meter: CpuMeter) -> dict:
    from django.db.models import Count

    from races.models import Run, Submission
    from races.services import model_upload, submission_create

    models = {racer.pk: model_upload(racer, "batch", io.BytesIO(archive)) for racer in racers}
    cpu_before = meter.seconds()
    started = time.monotonic()
    submissions = [submission_create(racers[i % len(racers)], race, models[racers[i % len(racers)].pk])
                   for i in range(count)]
    ids = [s.pk for s in submissions]
    wait_until(lambda: not Submission.objects.filter(pk__in=ids, status__in=["queued", "running"]).exists(),
               3600, "the evaluations")
    elapsed = time.monotonic() - started
    cpu = meter.seconds() - cpu_before
    done = list(Submission.objects.filter(pk__in=ids))
    from evaluator.models import EvaluationAttempt

    attempts = EvaluationAttempt.objects.filter(target_kind="submission", target_id__in=ids,
                                                status=EvaluationAttempt.Status.SUCCEEDED)
    latencies = sorted((s.finished_at - s.submitted_at).total_seconds() for s in done if s.finished_at)
    per_submission = dict(Run.objects.filter(submission_id__in=ids).values_list("submission_id")
                          .annotate(n=Count("pk")).values_list("submission_id", "n"))
    return {
        "scored": sum(s.status == "scored" for s in done),
        "failed": sum(s.status == "failed" for s in done),
        "seconds": round(elapsed, 1),
        "per_minute": round(len(done) / elapsed * 60, 1),
        "cpu_s_per_evaluation": round(cpu / len(done), 2),
        "warm": sum(bool((attempt.timings or {}).get("warm")) for attempt in attempts),
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "exactly_one_result": all(per_submission.get(i) == 1 for i in ids),
    }


if __name__ == "__main__":
    main()
