"""Multi-host throughput: evaluations per minute with 1 and 2 worker hosts, CPU-seconds per evaluation.

The deployment of tests/deployment (nginx TLS proxy, web host, worker hosts in their own mount namespaces, a
throwaway PostgreSQL cluster, a throwaway Redis, moto's S3 server), started from deploy/'s files. Racers sign up and
submit through the proxy's HTTPS API to the demo race (3 laps of the technical loop) with a clone of the scripted
driver. For each worker-host count: R racers x M submissions, drained; evaluations per minute from the first
submission to the last result; CPU-seconds per evaluation of the worker hosts (workers and sandboxes) and of the
whole deployment (proxy, web, PostgreSQL, Redis, object store too), measured with cpuacct cgroups, so other load on
the machine does not count (it still slows the wall-clock figures). First, one evaluation on the idle deployment,
queued -> scored, by phase.

Run: .venv/bin/python benchmarks/multi_host.py [--racers 8 --submissions-per-racer 3 --processes 1]
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "benchmarks" / "out"
DEMO_RACE = "pitlane-warm-up-cup"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--racers", type=int, default=8)
    parser.add_argument("--submissions-per-racer", type=int, default=3)
    parser.add_argument("--processes", type=int, default=1, help="Dramatiq processes per worker host (1 thread each)")
    args = parser.parse_args()

    from tests.deployment.cluster import Deployment
    from tests.deployment.league_client import Racer

    archive = _lapping_archive()
    workdir = Path(tempfile.mkdtemp(prefix="pitlane-bench-deploy-"))
    deployment = Deployment("redis", workdir, workers=2, worker_processes=args.processes,
                            extra_env={"PITLANE_LOG_LEVEL": "WARNING"})
    try:
        deployment.start()
        race = _race_slug(deployment)
        racers = [Racer(deployment, f"Bench{i:02d}") for i in range(args.racers)]
        models = {racer.alias: racer.upload("clone", archive)["id"] for racer in racers}
        worker_2 = deployment.worker_hosts[1]

        meters = {name: CpuMeter(name) for name in ("workers", "others")}

        def adopt() -> None:
            """Every process of the deployment into its meter (their children follow by themselves)."""
            for host in deployment.worker_hosts:
                if host.alive():
                    meters["workers"].adopt(host.process.pid)
            for pid in (deployment.proxy.process.pid, deployment.web.process.pid, deployment.postgres_pid(),
                        deployment.queue.process.pid, deployment.store.process.pid):
                meters["others"].adopt(pid)

        # (a) one evaluation on the idle deployment (both worker hosts waiting), by phase.
        adopt()
        before = meters["workers"].seconds()
        single = _single(deployment, racers[0], race, models[racers[0].alias])
        single["worker_cpu_s"] = round(meters["workers"].seconds() - before, 2)

        runs = {}
        for hosts in (1, 2):
            if hosts == 1:
                worker_2.stop()
            else:
                deployment.start_worker(worker_2)
                time.sleep(5)  # its Dramatiq processes connect to the broker
            adopt()
            before = {name: meter.seconds() for name, meter in meters.items()}
            runs[hosts] = _batch(deployment, racers, race, models, args.submissions_per_racer)
            evaluations = runs[hosts]["evaluations"]
            worker_cpu = meters["workers"].seconds() - before["workers"]
            all_cpu = worker_cpu + meters["others"].seconds() - before["others"]
            runs[hosts] |= {"worker_cpu_s_per_evaluation": round(worker_cpu / evaluations, 2),
                            "deployment_cpu_s_per_evaluation": round(all_cpu / evaluations, 2),
                            "worker_processes": hosts * args.processes}
    finally:
        deployment.stop()
        for meter in locals().get("meters", {}).values():
            meter.close()
        shutil.rmtree(workdir, ignore_errors=True)

    cpu_per_eval = runs[2]["worker_cpu_s_per_evaluation"]
    print(f"{'measure':<52}{'value':>16}")
    print(f"{'(a) one evaluation, queued -> scored (idle)':<52}{single['seconds']:>14.2f} s")
    print(f"{'    claimed by a worker after':<52}{single['queued_s']:>14.2f} s")
    print(f"{'    sandbox, start to result':<52}{single['sandbox_seconds']:>14.2f} s")
    for phase, seconds in single["timings"].items():
        print(f"{'      ' + phase:<52}{seconds:>14.2f} s")
    print(f"{'    recorded after the sandbox ended':<52}{single['record_s']:>14.2f} s")
    print(f"{'    worker CPU-seconds':<52}{single['worker_cpu_s']:>14.2f} s")
    for hosts, run in runs.items():
        label = f"({'b' if hosts == 1 else 'c'}) {hosts} worker host(s) x {args.processes} process(es)"
        print(label)
        print(f"{'    evaluations (racers x submissions)':<52}{run['evaluations']:>16}")
        print(f"{'    evaluations per minute':<52}{run['per_minute']:>16.1f}")
        print(f"{'    p50 / p95 queued -> scored':<52}{run['p50_s']:>9.1f} / {run['p95_s']:.1f} s")
        print(f"{'    worker CPU-seconds per evaluation':<52}{run['worker_cpu_s_per_evaluation']:>16.2f}")
        print(f"{'    whole-deployment CPU-seconds per evaluation':<52}{run['deployment_cpu_s_per_evaluation']:>16.2f}")
        print(f"{'    every submission exactly one result':<52}{run['exactly_one_result']!s:>16}")
    print(f"sizing: one worker core evaluates about {3600 / cpu_per_eval:.0f} submissions of this race per hour "
          f"({cpu_per_eval:.2f} CPU-s each); K cores = ceil(submissions per hour x {cpu_per_eval:.2f} / 3600 / 0.7)")
    for racers_n, each in ((20, 3), (100, 5), (500, 5), (1000, 10)):
        cores = math.ceil(racers_n * each * cpu_per_eval / 3600 / 0.7)
        print(f"    {racers_n} racers x {each} submissions in the hour: {cores} worker core(s)")
    print(json.dumps({"benchmark": "multi_host", "race": DEMO_RACE, "single": single,
                      "one_worker_host": runs[1], "two_worker_hosts": runs[2], "racers": args.racers,
                      "submissions_per_racer": args.submissions_per_racer, "processes_per_host": args.processes,
                      "cpu_count": os.cpu_count()}))


class CpuMeter:
    """CPU time of a group of processes and all their descendants, exited ones included: a cgroup (v1 cpuacct)
    of their own. /proc's per-process times would miss the sandboxes, whose processes are reaped inside their
    own PID namespaces."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self, name: str) -> None:
        if not (self.ROOT / "cpuacct.usage").exists():
            raise SystemExit("needs the cgroup v1 cpuacct hierarchy at /sys/fs/cgroup/cpuacct (and root)")
        self.path = self.ROOT / f"pitlane-bench-{os.getpid()}-{name}"
        self.path.mkdir()

    def adopt(self, root_pid: int | None) -> None:
        from tests.deployment.cluster import process_tree

        for pid in process_tree(root_pid) if root_pid else []:
            with contextlib.suppress(OSError):  # exited meanwhile
                (self.path / "cgroup.procs").write_text(str(pid))

    def seconds(self) -> float:
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def close(self) -> None:
        for pid in (self.path / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (self.ROOT / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.path.rmdir()


def _race_slug(deployment) -> str:
    (slug,) = [slug for (slug,) in deployment.sql("SELECT slug FROM races_race WHERE slug = %s", DEMO_RACE)]
    return slug


def _single(deployment, racer, race: str, model: int) -> dict:
    submission = racer.submit(race, model)["id"]
    _wait(lambda: racer.submission(submission)["status"] in ("scored", "failed"), 600)
    ((submitted, finished, attempt_started, attempt_finished, sandbox_s, timings, status),) = deployment.sql(
        """SELECT extract(epoch FROM s.submitted_at),
                  extract(epoch FROM s.finished_at), extract(epoch FROM a.started_at),
                  extract(epoch FROM a.finished_at), r.duration_s, a.timings, s.status
           FROM races_submission s JOIN races_run r ON r.submission_id = s.id
           JOIN evaluator_evaluationattempt a ON a.target_kind = 'submission' AND a.target_id = s.id
                AND a.status = 'succeeded' WHERE s.id = %s""", submission)
    timings = {name: round(float(value), 3) for name, value in (timings or {}).items()
               if isinstance(value, (int, float))}
    sandbox_total = timings.get("sandbox_s", sandbox_s or 0)
    return {"status": status, "seconds": round(float(finished - submitted), 3),
            "queued_s": round(float(attempt_started - submitted), 3), "sandbox_seconds": round(sandbox_total, 3),
            "timings": timings,
            "record_s": round(float(attempt_finished - attempt_started) - sandbox_total, 3)}


def _batch(deployment, racers, race: str, models: dict, per_racer: int) -> dict:
    started = time.time()
    ids = [racer.submit(race, models[racer.alias])["id"] for _ in range(per_racer) for racer in racers]
    placeholders = ",".join(["%s"] * len(ids))

    def open_count() -> int:
        return deployment.sql(f"SELECT count(*) FROM races_submission WHERE id IN ({placeholders}) "
                              "AND status NOT IN ('scored', 'failed', 'disqualified')", *ids)[0][0]

    _wait(lambda: open_count() == 0, 7200)
    rows = deployment.sql(f"""
        SELECT s.status, extract(epoch FROM s.submitted_at), extract(epoch FROM s.finished_at),
               (SELECT count(*) FROM races_run r WHERE r.submission_id = s.id)
        FROM races_submission s WHERE s.id IN ({placeholders})""", *ids)
    last = max(float(finished) for _, _, finished, _ in rows)
    latencies = sorted(float(finished - submitted) for _, submitted, finished, _ in rows)
    return {
        "evaluations": len(rows),
        "scored": sum(status == "scored" for status, *_ in rows),
        "per_minute": round(len(rows) / (last - started) * 60, 1),
        "p50_s": round(statistics.median(latencies), 1),
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "exactly_one_result": all(status in ("scored", "failed") and runs == (status == "scored")
                                  for status, _, _, runs in rows),
    }


def _lapping_archive() -> bytes:
    """The clone of the scripted driver on the technical loop (cached, shared with evaluation_throughput.py)."""
    cached = OUT / "driver-clone-technical.tar.gz"
    if not cached.exists():
        from sim.io.archive import write_model_archive
        from sim.learn.imitation import train_imitation_model
        from sim.world.track_catalog import get_track
        from sim.world.vehicle import get_vehicle

        OUT.mkdir(parents=True, exist_ok=True)
        vehicle = get_vehicle("original_deepracer")
        network = train_imitation_model(get_track("pitlane_technical"), vehicle).network
        write_model_archive(cached, vehicle, network.state_dict())
    return cached.read_bytes()


def _wait(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("evaluations did not finish in time")
        time.sleep(0.5)


if __name__ == "__main__":
    main()
