"""The community's racing-line reward function, with a track's racing line pasted in as they do.

Racers compute a racing line offline (minimum curvature, with a target speed per point) and paste it into their
reward function as a list; the reward then pays for being near the line, heading along it and driving at its
speed. ``racing_line_reward_source`` writes that source for any track from ``sim.race.ideal_lap`` (the example
file ``community_racing_line.py`` holds the line of ``pitlane_technical`` for a 3 m/s car).
"""

from __future__ import annotations

import re

from sim.race.ideal_lap import ideal_lap_time
from sim.world.reward_examples import example_source
from sim.world.track import Track

EXAMPLE = "community_racing_line"
_LINE = re.compile(r"^RACING_LINE = \[.*?^\]\n", re.MULTILINE | re.DOTALL)
_ABOUT = re.compile(r"^# The racing line of \S+ for a \S+ m/s car:", re.MULTILINE)


def racing_line_reward_source(track: Track, max_speed: float) -> str:
    """The racing-line example's source with ``track``'s racing line and speed profile at ``max_speed``."""
    lap = ideal_lap_time(track, max_speed=max_speed)
    rows = "".join(f"    [{x:.3f}, {y:.3f}, {speed:.2f}],\n" for (x, y), speed in zip(lap.line, lap.speed, strict=True))
    source, count = _LINE.subn(lambda _: f"RACING_LINE = [\n{rows}]\n", example_source(EXAMPLE))
    assert count == 1, "the example must hold exactly one RACING_LINE list"
    return _ABOUT.sub(f"# The racing line of {track.name} for a {max_speed:g} m/s car:", source, count=1)
