"""Cost of the live leaderboard: every open race page polls its JSON every 5 s, so it must stay cheap as races grow.

    .venv/bin/python benchmarks/leaderboard_polling.py [--racers 100 1000 5000] [--repeats 20]

Builds a throwaway PostgreSQL database (PITLANE_DATABASE_URL's server, default 127.0.0.1:5432), fills one race
with N ranked racers, and times the ranking query, the JSON poll (full answer and 304 when unchanged) and the
whole race page. Prints a table, then as the last line one JSON object with the figures (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "league.settings")
os.environ.setdefault("PITLANE_DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/pitlane_bench_{os.getpid()}")
os.environ.setdefault("PITLANE_DEMO_BASELINE", "0")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from league.models import RacerProfile  # noqa: E402
from races.models import LeaderboardEntry, Race, RacerModel, Submission  # noqa: E402
from races.services import leaderboard_table, race_create, track_install_builtins  # noqa: E402


def fill(race: Race, racers: int) -> None:
    """N racers, each with one model, one submission and one leaderboard row (bulk inserts)."""
    User = get_user_model()
    start = User.objects.count()
    users = User.objects.bulk_create([User(username=f"bench{start + i}") for i in range(racers)])
    RacerProfile.objects.bulk_create([RacerProfile(user=u, alias=f"Bench{u.pk}") for u in users])
    models = RacerModel.objects.bulk_create([
        RacerModel(owner=u, name="m", archive=f"models/{u.pk}.tar.gz", sha256="0" * 64, size_bytes=1, metadata={})
        for u in users
    ])
    now = timezone.now()
    submissions = Submission.objects.bulk_create([
        Submission(race=race, user=u, model=m, status="scored", submitted_at=now - timedelta(seconds=i))
        for i, (u, m) in enumerate(zip(users, models, strict=True))
    ])
    LeaderboardEntry.objects.bulk_create([
        LeaderboardEntry(race=race, user=s.user, submission=s, ranking_score_ms=10_000 + (i * 7919) % 20_000,
                         best_lap_ms=10_000, laps_completed=3, off_track_count=i % 4, reset_count=i % 4,
                         crash_count=0, submitted_at=s.submitted_at)
        for i, s in enumerate(submissions)
    ])


def timed(fn, repeats: int) -> float:
    fn()  # warm caches and connections
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--racers", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    figures: dict[str, dict[str, float]] = {}
    try:
        track = {t.slug: t for t in track_install_builtins()}["pitlane_technical"]
        viewer = get_user_model().objects.create_user("viewer")
        client = Client()
        client.force_login(viewer)
        filled = 0
        race = race_create(Race.Kind.VIRTUAL_CIRCUIT, name="Bench Cup", track=track, total_laps=3, minimum_laps=1,
                           opens_at=timezone.now() - timedelta(hours=1), closes_at=timezone.now() + timedelta(days=1))
        poll_url, page_url = f"/races/{race.slug}/leaderboard.json", f"/races/{race.slug}/"
        print(f"{'racers':>7} {'ranking query':>14} {'JSON poll':>10} {'poll 304':>9} {'race page':>10} {'JSON KB':>8}")
        for racers in sorted(args.racers):
            fill(race, racers - filled)
            filled = racers
            body = client.get(poll_url)
            etag = body["ETag"]
            row = {
                "ranking_query_ms": timed(lambda: leaderboard_table(race), args.repeats),
                "json_poll_ms": timed(lambda: client.get(poll_url), args.repeats),
                "json_poll_304_ms": timed(lambda e=etag: client.get(poll_url, HTTP_IF_NONE_MATCH=e), args.repeats),
                "race_page_ms": timed(lambda: client.get(page_url), max(3, args.repeats // 4)),
                "json_kb": len(body.content) / 1024,
            }
            figures[str(racers)] = {k: round(v, 1) for k, v in row.items()}
            print(f"{racers:>7} {row['ranking_query_ms']:>11.1f} ms {row['json_poll_ms']:>7.1f} ms "
                  f"{row['json_poll_304_ms']:>6.1f} ms {row['race_page_ms']:>7.1f} ms {row['json_kb']:>8.0f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(json.dumps({"benchmark": "leaderboard_polling", "median_ms_by_racers": figures}))


if __name__ == "__main__":
    main()
