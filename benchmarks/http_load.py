"""HTTP load on a race with a 1,000-row leaderboard: gunicorn + PostgreSQL, concurrent keep-alive clients.

Measures requests per second and p50/p99 latency of the race page (HTML), its live leaderboard JSON and the
API leaderboard. Target: >= 300 req/s and p99 <= 100 ms. The load generator runs on the same 2-core machine
as the server: ``wrk`` (C, installed by ``./pitlane test``) when it is on the PATH, else Python threads
(``--python-clients``; they take much of the CPU themselves, so those figures are a lower bound). Each endpoint
gets 2 s of uncounted warm-up first. The page is fetched as an anonymous spectator (the shared cached copy).

Run: .venv/bin/python benchmarks/http_load.py [--rows 1000 --seconds 10 --clients 16 --python-clients]
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
POSTGRES = "postgres://postgres@127.0.0.1:5432"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


PORT = _free_port()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="per worker; 1 = gunicorn's sync worker")
    parser.add_argument("--python-clients", action="store_true", help="load from Python threads even if wrk exists")
    args = parser.parse_args()
    generator = "python" if args.python_clients or not shutil.which("wrk") else "wrk"
    load = _load_python if generator == "python" else _load_wrk

    import psycopg

    database = f"pitlane_http_{os.getpid()}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    env = os.environ | {
        "PITLANE_DATABASE_URL": f"{POSTGRES}/{database}",
        "PITLANE_BROKER_URL": "redis://127.0.0.1:6379/13",
        "PITLANE_MEDIA_ROOT": tempfile.mkdtemp(prefix="pitlane-http-"),
        "PITLANE_DEMO_BASELINE": "false",
        "PITLANE_LOG_LEVEL": "WARNING",
        "PITLANE_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    os.environ.update(env)
    server = None
    try:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "league.settings")
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)
        slug = _leaderboard(args.rows)
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "league.wsgi:application", "-w", str(args.workers),
             "--threads", str(args.threads), "-b", f"127.0.0.1:{PORT}", "--log-level", "warning"],
            cwd=REPO, env=env, start_new_session=True,
        )
        _wait_until_up()
        targets = {
            "race page (HTML)": f"/races/{slug}/",
            "leaderboard JSON": f"/races/{slug}/leaderboard.json",
            "API leaderboard": f"/api/races/{slug}/leaderboard/",
        }
        results = {}
        for name, path in targets.items():
            load(path, args.clients, 2.0)  # warm-up, not counted: template compilation, first cache fills
            results[name] = load(path, args.clients, args.seconds)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    print(f"{'endpoint':<20}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}   ({args.rows} rows, "
          f"{args.clients} clients ({generator}), {args.workers} gunicorn workers x {args.threads} threads)")
    for name, r in results.items():
        print(f"{name:<20}{r['rps']:>10.1f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}{r['errors']:>8}")
    print(json.dumps({"benchmark": "http_load", "rows": args.rows, "clients": args.clients, "generator": generator,
                      "workers": args.workers, "threads": args.threads, "results": results,
                      "targets": {"rps_at_least": 300, "p99_ms_at_most": 100}}))


def _leaderboard(rows: int) -> str:
    """A race whose leaderboard has ``rows`` racers, written straight to the database (no evaluations)."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from league.models import RacerProfile
    from races.models import LeaderboardEntry, Race, RacerModel, Submission
    from races.services import race_create, track_install_builtins

    track = {t.slug: t for t in track_install_builtins()}["pitlane_technical"]
    now = timezone.now()
    race = race_create(Race.Kind.VIRTUAL_CIRCUIT, name="Load Cup", track=track, opens_at=now - timedelta(days=1),
                       closes_at=now + timedelta(days=1))
    users = get_user_model().objects.bulk_create(get_user_model()(username=f"load{i}") for i in range(rows))
    RacerProfile.objects.bulk_create(RacerProfile(user=u, alias=f"Racer{i:04d}") for i, u in enumerate(users))
    models = RacerModel.objects.bulk_create(
        RacerModel(owner=u, name="m", archive="models/none.tar.gz", sha256="0" * 64, size_bytes=1, metadata={})
        for u in users
    )
    submissions = Submission.objects.bulk_create(
        Submission(race=race, user=u, model=m, status="scored", submitted_at=now)
        for u, m in zip(users, models, strict=True)
    )
    LeaderboardEntry.objects.bulk_create(
        LeaderboardEntry(race=race, user=s.user, submission=s, ranking_score_ms=20_000 + 7 * i,
                         best_lap_ms=20_000 + 7 * i, laps_completed=3, off_track_count=i % 3,
                         reset_count=i % 3, crash_count=0, submitted_at=now)
        for i, s in enumerate(submissions)
    )
    return race.slug


def _wait_until_up() -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status in (200, 503):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not come up")


def _load_wrk(path: str, clients: int, seconds: float) -> dict:
    """wrk with 2 threads and ``clients`` keep-alive connections; its latency distribution gives p50/p99."""
    output = subprocess.run(
        ["wrk", "-t2", f"-c{clients}", f"-d{seconds:g}s", "--latency", f"http://127.0.0.1:{PORT}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failed = (int(errors.group(1)) if errors else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": _milliseconds(percentiles["50"]),
        "p99_ms": _milliseconds(percentiles["99"]),
        "errors": failed,
    }


def _milliseconds(text: str) -> float:
    """wrk's "812.00us", "12.31ms", "1.02s" in milliseconds."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)


def _load_python(path: str, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        mine, failed = [], 0
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers={"Host": "127.0.0.1"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failed += 1
            except OSError:
                failed += 1
                connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1) if latencies else None,
        "errors": errors[0],
    }


if __name__ == "__main__":
    main()
