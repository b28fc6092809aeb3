"""Reward-function examples: the DeepRacer console lab's (../shared/seed, verbatim) and three in community styles.

Example 1 follows the centre line, Example 2 also penalises steering (zig-zag), Example 3 also penalises
slow actions: the standard AWS DeepRacer examples our users start from. The community examples are how racers
write fast models: heading + centre + speed on straights, progress per step, and a pasted racing line
(``sim.race.racing_line_reward`` pastes any track's line).
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent

EXAMPLE_FILES: dict[str, str] = {
    "example_1_follow_center_line": "Example 1: follow the centre line",
    "example_2_prevent_zig_zag": "Example 2: follow the centre line, penalise zig-zag steering",
    "example_3_penalize_slow": "Example 3: follow the centre line, penalise slow actions",
    "community_heading_centre_speed": "Community: heading along the track, centre line, speed on straights",
    "community_progress_per_step": "Community: progress per step (fewer steps per lap, more reward)",
    "community_racing_line": "Community: follow a pasted racing line at its target speed",
}


LAB_EXAMPLES = tuple(name for name in EXAMPLE_FILES if name.startswith("example_"))  # the lab's, verbatim


def example_source(name: str) -> str:
    """The source text of an example by name (see ``EXAMPLE_FILES``)."""
    if name not in EXAMPLE_FILES:
        raise KeyError(f"unknown reward example {name!r} (choose one of {', '.join(EXAMPLE_FILES)})")
    return (_HERE / f"{name}.py").read_text(encoding="utf-8")


EXAMPLES: dict[str, str] = {name: example_source(name) for name in EXAMPLE_FILES}
