"""Scoring of a race run: laps -> qualification, best lap, best average window, total time, ranking score.

The one scoring module: the trainer's evaluation command, the evaluator and the league server all call
``score_run``. Semantics follow the DeepRacer league (SPEC §8): a run qualifies only if its longest streak of
consecutive fully completed laps is at least ``minimum_laps``; only completed laps count for times; penalties
are already inside each lap's elapsed time; lower scores are better.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

COMPLETED = 100.0


class RankingMethod(enum.StrEnum):
    BEST_LAP_TIME = "BEST_LAP_TIME"
    AVG_LAP_TIME = "AVG_LAP_TIME"
    TOTAL_TIME = "TOTAL_TIME"

    @property
    def label(self) -> str:
        return {"BEST_LAP_TIME": "Best lap time", "AVG_LAP_TIME": "Average lap time", "TOTAL_TIME": "Total time"}[
            self.value
        ]


class ScoringError(ValueError):
    """Inputs that cannot be scored (bad settings or malformed lap records)."""


@dataclass(frozen=True)
class LapMetrics:
    """One lap (trial) of an evaluation, with the field names of DeepRacer's evaluation metrics (SPEC §7)."""

    trial: int
    elapsed_time_in_milliseconds: int
    completion_percentage: float
    off_track_count: int = 0
    crash_count: int = 0
    immobilized_count: int = 0
    reversed_count: int = 0
    reset_count: int = 0
    episode_status: str = "Lap complete"

    @property
    def completed(self) -> bool:
        return self.completion_percentage >= COMPLETED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LapMetrics:
        names = {f.name for f in fields(cls)}
        missing = {"trial", "elapsed_time_in_milliseconds", "completion_percentage"} - set(data)
        if missing:
            raise ScoringError(f"lap record is missing {', '.join(sorted(missing))}")
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass(frozen=True)
class RunScore:
    """Everything a leaderboard and a lap table need about one run.

    ``ranking_score_ms`` is the number leaderboards sort by (lower is better); it is None when the run did
    not qualify. ``window_start`` is the first trial of the scored window (the best lap, the best average
    window or the first lap counted for total time).
    """

    ranking_method: RankingMethod
    minimum_laps: int
    qualified: bool
    laps: int
    completed_laps: int
    consecutive_completed_laps: int
    best_lap_ms: int | None
    average_lap_ms: int | None
    total_time_ms: int | None
    ranking_score_ms: int | None
    window_start: int | None
    off_track_count: int
    crash_count: int
    reset_count: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ranking_method"] = self.ranking_method.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunScore:
        values = {f.name: data[f.name] for f in fields(cls)}
        values["ranking_method"] = RankingMethod(values["ranking_method"])
        return cls(**values)


def score_run(
    laps: Iterable[LapMetrics | Mapping[str, Any]],
    ranking_method: RankingMethod | str,
    minimum_laps: int,
) -> RunScore:
    """Score a run's laps for a race's ranking method and minimum laps."""
    method = _ranking_method(ranking_method)
    if isinstance(minimum_laps, bool) or not isinstance(minimum_laps, int) or minimum_laps < 1:
        raise ScoringError(f"minimum_laps must be a positive integer, got {minimum_laps!r}")
    records = [lap if isinstance(lap, LapMetrics) else LapMetrics.from_dict(lap) for lap in laps]
    for lap in records:
        if lap.elapsed_time_in_milliseconds < 0:
            raise ScoringError(f"lap {lap.trial} has a negative elapsed time")

    streaks = _completed_streaks(records)
    longest = max((len(streak) for streak in streaks), default=0)
    completed = [lap for lap in records if lap.completed]
    qualified = longest >= minimum_laps

    best_lap = min(completed, key=lambda lap: lap.elapsed_time_in_milliseconds, default=None)
    best_window = _best_window(streaks, minimum_laps)
    average_ms = round(_window_time(best_window) / minimum_laps) if best_window else None
    total_window = _first_window(streaks, minimum_laps)
    total_ms = _window_time(total_window) if total_window else None

    if not qualified:
        score, window_start = None, None
    elif method is RankingMethod.BEST_LAP_TIME:
        score, window_start = best_lap.elapsed_time_in_milliseconds, best_lap.trial
    elif method is RankingMethod.AVG_LAP_TIME:
        score, window_start = average_ms, best_window[0].trial
    else:
        score, window_start = total_ms, total_window[0].trial

    return RunScore(
        ranking_method=method,
        minimum_laps=minimum_laps,
        qualified=qualified,
        laps=len(records),
        completed_laps=len(completed),
        consecutive_completed_laps=longest,
        best_lap_ms=best_lap.elapsed_time_in_milliseconds if best_lap else None,
        average_lap_ms=average_ms,
        total_time_ms=total_ms,
        ranking_score_ms=score,
        window_start=window_start,
        off_track_count=sum(lap.off_track_count for lap in records),
        crash_count=sum(lap.crash_count for lap in records),
        reset_count=sum(lap.reset_count for lap in records),
    )


def is_better(candidate: RunScore, incumbent: RunScore | None) -> bool:
    """True when ``candidate`` should replace ``incumbent`` on a leaderboard: strictly lower score only."""
    if candidate.ranking_score_ms is None:
        return False
    if incumbent is None or incumbent.ranking_score_ms is None:
        return True
    return candidate.ranking_score_ms < incumbent.ranking_score_ms


def format_lap_time(milliseconds: int | None) -> str:
    """``83456`` -> ``01:23.456`` (the console's format); ``None`` -> an em dash."""
    if milliseconds is None:
        return "—"
    minutes, rest = divmod(int(milliseconds), 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{minutes:02d}:{seconds:02d}.{millis:03d}"


def _ranking_method(value: RankingMethod | str) -> RankingMethod:
    try:
        return RankingMethod(value)
    except ValueError:
        choices = ", ".join(m.value for m in RankingMethod)
        raise ScoringError(f"unknown ranking method {value!r} (choose one of {choices})") from None


def _completed_streaks(laps: Sequence[LapMetrics]) -> list[list[LapMetrics]]:
    """Maximal runs of consecutive completed laps, in order."""
    streaks: list[list[LapMetrics]] = []
    current: list[LapMetrics] = []
    for lap in laps:
        if lap.completed:
            current.append(lap)
        elif current:
            streaks.append(current)
            current = []
    if current:
        streaks.append(current)
    return streaks


def _windows(streaks: Sequence[Sequence[LapMetrics]], size: int) -> Iterable[Sequence[LapMetrics]]:
    for streak in streaks:
        for start in range(len(streak) - size + 1):
            yield streak[start : start + size]


def _best_window(streaks: Sequence[Sequence[LapMetrics]], size: int) -> Sequence[LapMetrics] | None:
    """The window of ``size`` consecutive completed laps with the lowest total (earliest wins ties)."""
    return min(_windows(streaks, size), key=_window_time, default=None)


def _first_window(streaks: Sequence[Sequence[LapMetrics]], size: int) -> Sequence[LapMetrics] | None:
    return next(iter(_windows(streaks, size)), None)


def _window_time(window: Sequence[LapMetrics]) -> int:
    return sum(lap.elapsed_time_in_milliseconds for lap in window)
