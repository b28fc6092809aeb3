"""Race rules of SPEC §3: settings, statuses and their priority, progress, lap metrics labels.

The batched state machine that applies them step by step is ``sim.race.env.VectorRaceEnv``; this module holds
the pieces with no state of their own, so they are easy to read against the simapp.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

ROUND_ROBIN_ADVANCE = 0.05  # training: each episode starts 5 % of the lap further on (20 start points)
IMMOBILIZED_STEPS = 15
RESET_BEHIND_DISTANCE_M = 1.0  # a reset that would land near an object goes this far behind it
IMMOBILIZED_DISTANCE = 0.0003  # metres moved per step at most
REVERSED_STEPS = 15
MAX_EPISODE_STEPS = 100_000

# Statuses in the simapp's order; the first true one wins (lap complete > crashed > off track > ...).
PREPARE, IN_PROGRESS, LAP_COMPLETE, CRASHED, OFF_TRACK, IMMOBILIZED, REVERSED, PAUSE, TIME_UP = range(9)
STATUS_NAMES = ("prepare", "in_progress", "lap_complete", "crashed", "off_track", "immobilized", "reversed",
                "pause", "time_up")
STATUS_LABELS = ("Prepare", "In progress", "Lap complete", "Crashed", "Off track", "Immobilized", "Reversed",
                 "Pause", "Time up")


@dataclass(frozen=True)
class RaceRules:
    """How a race (or an evaluation) treats mistakes. ``max_resets=None`` is unlimited."""

    total_laps: int = 3
    off_track_penalty_s: float = 2.0
    collision_penalty_s: float = 5.0
    max_resets: int | None = None
    time_cap_s: float = 180.0
    continuous: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.total_laps <= 100:
            raise ValueError("total_laps must be between 1 and 100")
        if self.off_track_penalty_s < 0 or self.collision_penalty_s < 0:
            raise ValueError("penalties cannot be negative")
        if self.max_resets is not None and self.max_resets < 0:
            raise ValueError("max_resets must be None (unlimited) or >= 0")
        if self.time_cap_s <= 0:
            raise ValueError("time_cap_s must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    def penalty_for(self, status: np.ndarray) -> np.ndarray:
        """Seconds of pause after a reset: collisions their own penalty, immobilized none, else off-track's."""
        return np.select(
            [status == CRASHED, status == IMMOBILIZED], [self.collision_penalty_s, 0.0], self.off_track_penalty_s
        )


def progress(ndist: np.ndarray, start_ndist: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Percent of the lap from the episode's start (simapp ``compute_current_prog``), capped at 100."""
    p = 100.0 * (ndist - start_ndist)
    p = np.where(p <= 0.0, p + 100.0, p)
    p = np.where(previous > p + 50.0, p + 100.0, p)  # crossed the start line forward
    p = np.where(p > previous + 50.0, p - 100.0, p)  # crossed it backwards
    return np.minimum(p, 100.0)


def first_true(*conditions: np.ndarray) -> np.ndarray:
    """Index (as a status code) of the first true condition per car, IN_PROGRESS where none holds.

    Conditions are given in priority order for the codes LAP_COMPLETE, CRASHED, OFF_TRACK, IMMOBILIZED,
    REVERSED.
    """
    codes = (LAP_COMPLETE, CRASHED, OFF_TRACK, IMMOBILIZED, REVERSED)
    return np.select(list(conditions), list(codes[: len(conditions)]), IN_PROGRESS)
