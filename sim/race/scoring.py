"""Scoring of a race run: laps -> qualification, best lap, best average window, total time, ranking score.

The one scoring module: the trainer's evaluation command, the evaluator and the league server all call
``score_run``. Semantics follow the DeepRacer league (SPEC §8; DeepRacer on AWS ``ModelPerformanceMetricsHelper``):

- a lap counts as completed only at 100 % completion; only completed laps count for times;
- a run qualifies only if its longest streak of consecutive completed laps is at least ``minimum_laps``;
- ``BEST_LAP_TIME`` scores the fastest completed lap of a qualifying run;
- ``AVG_LAP_TIME`` scores the lowest mean over any window of ``minimum_laps`` consecutive completed laps
  (rounded to the millisecond; the earliest window wins ties);
- ``TOTAL_TIME`` scores the sum of the completed laps. Race settings lock ``minimum_laps`` to the total laps
  for this method, so a qualifying run has completed every lap and the sum is its race time;
- penalties (off-track, collision) are already inside each lap's elapsed time;
- lower scores are better; a leaderboard row is replaced only by a strictly better score.

Head-to-head matches are decided here too (``match_outcome``): the car that completes the laps in less race
time wins; otherwise the finisher, then more completed laps, then more progress; an exact tie goes to car A.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

COMPLETED = 100.0
_COUNT_FIELDS = ("off_track_count", "crash_count", "immobilized_count", "reversed_count", "reset_count")


class RankingMethod(enum.StrEnum):
    BEST_LAP_TIME = "BEST_LAP_TIME"
    AVG_LAP_TIME = "AVG_LAP_TIME"
    TOTAL_TIME = "TOTAL_TIME"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    RankingMethod.BEST_LAP_TIME: "Best lap time",
    RankingMethod.AVG_LAP_TIME: "Average lap time",
    RankingMethod.TOTAL_TIME: "Total time",
}


class ScoringError(ValueError):
    """Inputs that cannot be scored (bad settings or malformed lap records)."""


@dataclass(frozen=True)
class LapMetrics:
    """One lap (trial) of an evaluation, with the field names of DeepRacer's evaluation metrics (SPEC §7).

    ``elapsed_time_in_milliseconds`` includes the penalty time the car spent held after resets.
    """

    trial: int
    elapsed_time_in_milliseconds: int
    completion_percentage: float
    off_track_count: int = 0
    crash_count: int = 0
    immobilized_count: int = 0
    reversed_count: int = 0
    reset_count: int = 0
    episode_status: str = "Lap complete"

    def __post_init__(self) -> None:
        for name in ("trial", "elapsed_time_in_milliseconds", *_COUNT_FIELDS):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ScoringError(f"lap {self.trial!r}: {name} must be a non-negative integer, got {value!r}")
        if self.trial < 1:
            raise ScoringError(f"lap trial numbers start at 1, got {self.trial}")
        completion = self.completion_percentage
        if (isinstance(completion, bool) or not isinstance(completion, int | float) or not math.isfinite(completion)
                or not 0.0 <= completion <= COMPLETED):
            raise ScoringError(f"lap {self.trial}: completion_percentage must be within 0..100, got {completion!r}")
        if not isinstance(self.episode_status, str):
            raise ScoringError(f"lap {self.trial}: episode_status must be a string, got {self.episode_status!r}")

    @property
    def completed(self) -> bool:
        return self.completion_percentage >= COMPLETED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LapMetrics:
        """Build from a metrics record; keys DeepRacer adds (``metric_time``, ``start_time`` ...) are ignored."""
        names = {f.name for f in fields(cls)}
        missing = {"trial", "elapsed_time_in_milliseconds", "completion_percentage"} - set(data)
        if missing:
            raise ScoringError(f"lap record is missing {', '.join(sorted(missing))}")
        return cls(**{key: value for key, value in data.items() if key in names})


@dataclass(frozen=True)
class RunScore:
    """Everything a leaderboard and a lap table need about one run.

    ``ranking_score_ms`` is the number leaderboards sort by (lower is better); it is None when the run did
    not qualify. ``window_start`` is the first trial of the scored laps (the best lap, the first lap of the
    best average window, or the first completed lap for total time) and ``scored_off_track_count`` the
    off-tracks within those laps (DeepRacer on AWS shows it beside the time); both None when not qualified.
    ``best_lap_ms``, ``average_lap_ms`` and ``total_time_ms`` are filled whenever the laps allow, qualified
    or not, so a lap table can show them.
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
    scored_off_track_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ranking_method"] = self.ranking_method.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunScore:
        """Inverse of ``to_dict``; fields added later (with defaults) may be absent from stored scores."""
        required = [f.name for f in fields(cls) if f.default is not None]
        missing = [name for name in required if name not in data]
        if missing:
            raise ScoringError(f"score record is missing {', '.join(missing)}")
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["ranking_method"] = _ranking_method(values["ranking_method"])
        return cls(**values)


def score_run(
    laps: Iterable[LapMetrics | Mapping[str, Any]],
    ranking_method: RankingMethod | str,
    minimum_laps: int,
) -> RunScore:
    """Score a run's laps (in trial order, numbered 1..n) for a race's ranking method and minimum laps."""
    method = _ranking_method(ranking_method)
    if isinstance(minimum_laps, bool) or not isinstance(minimum_laps, int) or minimum_laps < 1:
        raise ScoringError(f"minimum_laps must be a positive integer, got {minimum_laps!r}")
    records = [lap if isinstance(lap, LapMetrics) else LapMetrics.from_dict(lap) for lap in laps]
    for position, lap in enumerate(records, start=1):
        if lap.trial != position:
            raise ScoringError(f"laps must be numbered 1..n in order (lap {position} says trial {lap.trial})")

    streaks = _completed_streaks(records)
    longest = max((len(streak) for streak in streaks), default=0)
    completed = [lap for lap in records if lap.completed]
    qualified = longest >= minimum_laps

    best_lap = min(completed, key=_lap_time, default=None)  # earliest wins ties
    best_window = _best_window(streaks, minimum_laps)
    average_ms = round(_window_time(best_window) / minimum_laps) if best_window else None
    total_ms = _window_time(completed) if completed else None

    scored: Sequence[LapMetrics] = ()
    score: int | None = None
    if qualified and method is RankingMethod.BEST_LAP_TIME:
        scored, score = [best_lap], _lap_time(best_lap)
    elif qualified and method is RankingMethod.AVG_LAP_TIME:
        scored, score = best_window, average_ms
    elif qualified:
        scored, score = completed, total_ms

    return RunScore(
        ranking_method=method,
        minimum_laps=minimum_laps,
        qualified=qualified,
        laps=len(records),
        completed_laps=len(completed),
        consecutive_completed_laps=longest,
        best_lap_ms=_lap_time(best_lap) if best_lap else None,
        average_lap_ms=average_ms,
        total_time_ms=total_ms,
        ranking_score_ms=score,
        window_start=scored[0].trial if scored else None,
        off_track_count=sum(lap.off_track_count for lap in records),
        crash_count=sum(lap.crash_count for lap in records),
        reset_count=sum(lap.reset_count for lap in records),
        scored_off_track_count=sum(lap.off_track_count for lap in scored) if scored else None,
    )


def ranking_key(score: RunScore) -> tuple[int, int]:
    """Sort key for a leaderboard: qualified runs by ascending score, then every run that did not qualify.

    Ties are left to the caller (the league breaks them by earlier submission):
    ``sorted(rows, key=lambda row: (*ranking_key(row.score), row.submitted_at))``.
    """
    if score.ranking_score_ms is None:
        return (1, 0)
    return (0, score.ranking_score_ms)


def is_better(candidate: RunScore, incumbent: RunScore | None) -> bool:
    """True when ``candidate`` should replace ``incumbent`` on a leaderboard: a strictly lower score only.

    A run that did not qualify never replaces anything; an equal score keeps the earlier submission.
    """
    if candidate.ranking_score_ms is None:
        return False
    if incumbent is None:
        return True
    return ranking_key(candidate) < ranking_key(incumbent)


@dataclass(frozen=True)
class MatchStanding:
    """Where one car of a head-to-head match ended: ``race_time_ms`` (penalties included) only if it finished."""

    finished: bool
    completed_laps: int
    last_lap_progress: float  # completion of the lap it was on when its run ended (0 when it finished)
    race_time_ms: int | None

    @classmethod
    def of(cls, laps: Iterable[LapMetrics | Mapping[str, Any]], total_laps: int) -> MatchStanding:
        records = [lap if isinstance(lap, LapMetrics) else LapMetrics.from_dict(lap) for lap in laps]
        completed = sum(1 for lap in records if lap.completed)
        finished = completed >= total_laps
        last = records[-1] if records else None
        progress = last.completion_percentage if last is not None and not last.completed else 0.0
        return cls(finished, completed, float(progress),
                   sum(_lap_time(lap) for lap in records) if finished else None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MatchOutcome:
    """``winner`` is 0 (car A, the higher seed) or 1 (car B); ``reason`` says which rule decided it."""

    winner: int
    reason: str
    standings: tuple[MatchStanding, MatchStanding]

    def to_dict(self) -> dict[str, Any]:
        return {"winner": self.winner, "reason": self.reason, "standings": [s.to_dict() for s in self.standings]}


MATCH_REASONS = ("faster", "only finisher", "more laps", "more progress", "tie: higher seed")


def match_outcome(laps_a: Iterable[LapMetrics | Mapping[str, Any]], laps_b: Iterable[LapMetrics | Mapping[str, Any]],
                  total_laps: int) -> MatchOutcome:
    """Decide a head-to-head match from both cars' laps (car A is the higher seed).

    Both finished: less race time wins. One finished: it wins. Neither: more completed laps, then more
    progress on the last lap. An exact tie on every rule goes to car A.
    """
    if isinstance(total_laps, bool) or not isinstance(total_laps, int) or total_laps < 1:
        raise ScoringError(f"total_laps must be a positive integer, got {total_laps!r}")
    a, b = MatchStanding.of(laps_a, total_laps), MatchStanding.of(laps_b, total_laps)
    # Each rule: (reason, key where smaller is better); the first rule that separates the cars decides.
    rules: list[tuple[str, tuple[float, float]]] = [("only finisher", (not a.finished, not b.finished))]
    if a.finished and b.finished:
        rules.append(("faster", (a.race_time_ms, b.race_time_ms)))
    else:
        rules += [("more laps", (-a.completed_laps, -b.completed_laps)),
                  ("more progress", (-a.last_lap_progress, -b.last_lap_progress))]
    for reason, (key_a, key_b) in rules:
        if key_a != key_b:
            return MatchOutcome(0 if key_a < key_b else 1, reason, (a, b))
    return MatchOutcome(0, "tie: higher seed", (a, b))


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


def _lap_time(lap: LapMetrics) -> int:
    return lap.elapsed_time_in_milliseconds


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


def _best_window(streaks: Sequence[Sequence[LapMetrics]], size: int) -> Sequence[LapMetrics]:
    """The window of ``size`` consecutive completed laps with the lowest total (earliest wins ties); () if none."""
    windows = (streak[start : start + size] for streak in streaks for start in range(len(streak) - size + 1))
    return min(windows, key=_window_time, default=())


def _window_time(window: Sequence[LapMetrics]) -> int:
    return sum(lap.elapsed_time_in_milliseconds for lap in window)
