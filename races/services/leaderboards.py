"""Leaderboards: one row per racer per race, replaced only by a strictly better score."""

from __future__ import annotations

import csv
import io
import threading

from cachetools import LRUCache
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery

from races.models import LeaderboardEntry, Race, Run, Submission
from races.services.presenters import leaderboard_row
from races.services.tracks import track_ideal_lap_ms
from sim.race.scoring import RankingMethod, RunScore


def leaderboard_offer(submission: Submission, score: RunScore) -> bool:
    """Put a qualifying run on the board if it beats the racer's row strictly; returns True if it did."""
    with transaction.atomic():
        _lock_racer(submission.user_id)
        entry = (
            LeaderboardEntry.objects.select_for_update()
            .filter(race_id=submission.race_id, user_id=submission.user_id)
            .first()
        )
        if entry is not None and entry.ranking_score_ms <= score.ranking_score_ms:
            return False  # equal is not better: the earlier submission keeps the row
        entry = entry or LeaderboardEntry(race_id=submission.race_id, user_id=submission.user_id)
        _fill(entry, submission, score)
        entry.save()
    return True


def leaderboard_recompute(race: Race, user) -> None:
    """Rebuild a racer's row from their remaining scored, qualifying submissions (after a disqualification)."""
    with transaction.atomic():
        _lock_racer(user.pk)
        best = (
            Run.objects.filter(submission__race=race, submission__user=user, qualified=True,
                               submission__status=Submission.Status.SCORED)
            .select_related("submission")
            .order_by("ranking_score_ms", "submission__submitted_at")
            .first()
        )
        LeaderboardEntry.objects.filter(race=race, user=user).delete()
        if best is not None:
            entry = LeaderboardEntry(race=race, user=user)
            _fill(entry, best.submission, RunScore.from_dict(best.score))
            entry.save()


def leaderboard_rows(race: Race) -> QuerySet[LeaderboardEntry]:
    """Ranked rows with the racer's alias and submission count (ties: earlier submission first)."""
    counts = (
        Submission.objects.filter(race=race, user=OuterRef("user")).values("user").annotate(n=Count("pk")).values("n")
    )
    return (
        LeaderboardEntry.objects.filter(race=race)
        .select_related("user__racer")
        .annotate(submission_count=Subquery(counts))
        .order_by("ranking_score_ms", "submitted_at", "pk")
    )


def leaderboard_table(race: Race) -> list[dict]:
    """Rows as plain dicts (rank, alias, time, gap to first, counts) for the API, the page and CSV.

    Built once per leaderboard version (bumped by every row or submission change, see ``races.signals``):
    this process keeps the newest tables in memory (no unpickling on a hit) and the shared cache spares
    other processes the build. Treat the rows as read-only.
    """
    key = leaderboard_cache_key(race)
    with _recent_tables_lock:
        rows = _recent_tables.get(key)
    if rows is None:
        rows = cache.get(key)
        if rows is None:
            rows = _build_table(race)
            cache.set(key, rows, timeout=600)
        with _recent_tables_lock:
            _recent_tables[key] = rows
    return rows


def leaderboard_cache_key(race: Race) -> str:
    """Changes with every change the board shows: a key for anything derived from the table.

    The version is read from the database, not from ``race``: an instance loaded before a change must not
    hide it (one primary-key lookup).
    """
    version = Race.objects.filter(pk=race.pk).values_list("leaderboard_version", flat=True).first()
    return f"leaderboard:{race.pk}:{version}"


RECENT_TABLES_KEPT = 64
# The least recently used table is evicted first. cachetools caches are not thread-safe and gunicorn's threads
# share this one: every read and write holds the lock (a lookup reorders the cache).
_recent_tables: LRUCache[str, list[dict]] = LRUCache(maxsize=RECENT_TABLES_KEPT)
_recent_tables_lock = threading.Lock()


def leaderboard_reference_ms(race: Race) -> int | None:
    """The board's reference line: the track's ideal lap in the race's direction, in the race's ranking terms
    (a lap for best-lap and average-lap races, every lap for total-time ones); None where there is no figure."""
    ideal = track_ideal_lap_ms(race.track, race.direction)
    if ideal is None:
        return None
    return ideal * race.total_laps if race.ranking_method == RankingMethod.TOTAL_TIME else ideal


def _build_table(race: Race) -> list[dict]:
    rows, leader = [], None
    reference = leaderboard_reference_ms(race)
    for rank, entry in enumerate(leaderboard_rows(race), start=1):
        leader = entry.ranking_score_ms if leader is None else leader
        rows.append(leaderboard_row(rank, entry, leader, reference))
    return rows


def leaderboard_top(race: Race, alias: str | None = None, limit: int = 100) -> tuple[list[dict], int]:
    """The first ``limit`` rows, plus the row of ``alias`` when it ranks lower, and the number of ranked racers.

    What the race page shows and polls: its cost stays flat however many racers a race has.
    """
    table = leaderboard_table(race)
    rows = table[:limit]
    if alias and len(table) > limit:
        rows += [row for row in table[limit:] if row["racer"] == alias]
    return rows, len(table)


CSV_COLUMNS = ("rank", "racer", "time", "time_ms", "gap_ms", "ideal_gap_ms", "best_lap_ms", "off_track_count",
               "reset_count", "crash_count", "laps", "submission_count", "submitted_at")


def leaderboard_csv(race: Race) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(leaderboard_table(race))
    return buffer.getvalue()


def _lock_racer(user_id: int) -> None:
    """Serialise leaderboard writes of one racer: two of their runs scored at the same moment by two workers
    would otherwise both find no row and both insert one. FOR NO KEY UPDATE: it must not block the foreign-key
    checks (FOR KEY SHARE) of rows that reference the racer, e.g. a submission being created meanwhile, which
    holds its race's lock and would deadlock with a worker holding this one."""
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user_id).values_list("pk", flat=True).first()


def _fill(entry: LeaderboardEntry, submission: Submission, score: RunScore) -> None:
    entry.submission = submission
    entry.ranking_score_ms = score.ranking_score_ms
    entry.best_lap_ms = score.best_lap_ms
    entry.average_lap_ms = score.average_lap_ms
    entry.total_time_ms = score.total_time_ms
    entry.laps_completed = score.completed_laps
    entry.off_track_count = score.off_track_count
    entry.reset_count = score.reset_count
    entry.crash_count = score.crash_count
    entry.submitted_at = submission.submitted_at
