"""Validating a racer's reward function for the web (the Validate button and its API), safely.

The check is the CLI's (``python -m sim validate-reward``: ``sim.world.reward_check``): the static checks, then the
function loaded and called on a few synthetic cars of the chosen track. Loading and calling run the racer's code,
so that part never runs in the web process: it runs in the evaluator's sandbox (``evaluator.engine.sandbox_run``:
bubblewrap, no network, unprivileged, syscall filter, CPU, memory, process and wall-clock limits). Only parsing
happens here (``check_source`` reads the text with ``ast``; nothing is executed), so a syntax error is answered at
once. The sandbox's report is untrusted output: it is read with a size cap and a strict shape, and it can only
describe the racer's own code to the racer.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache

from evaluator.engine import SandboxLimits, SandboxUnavailable, sandbox_run
from races.models import Track
from races.services.errors import RuleViolation
from races.services.tracks import track_sim
from sim.race.racing_line_reward import EXAMPLE as RACING_LINE_EXAMPLE
from sim.race.racing_line_reward import racing_line_reward_source
from sim.world.reward_check import REPORT_MARKER
from sim.world.reward_examples import EXAMPLE_FILES, EXAMPLES
from sim.world.reward_function import DEFAULT_FILENAME, RewardFunctionError, check_source
from sim.world.vehicle import MAX_SPEED, MIN_SPEED

MAX_SOURCE_CHARS = 64 * 1024  # the longest community reward functions (pasted racing lines) are ~20 kB
SOURCE_TOO_LARGE = "too_large"  # the RuleViolation code of an oversize source (HTTP 413)
CHECKS_PER_MINUTE = 20  # per racer: each check starts a sandbox
MAX_MESSAGE_CHARS = 2000
CHECK_LIMITS = SandboxLimits(
    wall_seconds=40.0,  # the check itself gives each call 5 s (sim.world.reward_function)
    cpu_seconds=40,
    memory_bytes=2 * 1024**3,
    processes=16,  # the check forks one child per run
    file_bytes=1024**2,
    output_bytes=256 * 1024,
    scratch_bytes=8 * 1024**2,
)


@dataclass(frozen=True)
class RewardCheck:
    """The outcome shown beside the editor: valid with each synthetic car's reward, or the error and its line."""

    valid: bool
    message: str = ""
    line: int | None = None
    car: str | None = None
    samples: tuple[tuple[str, float], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "message": self.message, "line": self.line, "car": self.car,
                "samples": [{"car": car, "reward": reward} for car, reward in self.samples]}


def reward_function_examples() -> list[dict[str, Any]]:
    """The reward-function examples the editor offers: the console lab's three, then the community ones.
    ``per_track``: the example holds a track's racing line, so the editor asks ``reward_function_racing_line`` for
    the chosen track and car instead of pasting ``source`` (the line of pitlane_technical at 3 m/s)."""
    return [{"name": name, "label": label, "source": EXAMPLES[name], "per_track": name == RACING_LINE_EXAMPLE}
            for name, label in EXAMPLE_FILES.items()]


def reward_function_racing_line(track: Track, direction: str, max_speed: float) -> str:
    """The community racing-line example with ``track``'s racing line, driven in ``direction``, and its speed
    profile for a car whose top speed is ``max_speed`` (what ``python -m sim train --reward-example
    community_racing_line`` pastes). Our own code on our own track data: it runs in the web process."""
    if isinstance(max_speed, bool) or not isinstance(max_speed, int | float) or not math.isfinite(max_speed) \
            or not MIN_SPEED <= max_speed <= MAX_SPEED:
        raise RuleViolation(f"A top speed is {MIN_SPEED:g} to {MAX_SPEED:g} m/s.", field="max_speed")
    if not track.supports(direction):
        raise RuleViolation(f"{track.title} is driven {track.get_directions_display().lower()}.", field="direction")
    key = f"racing-line-reward:{track.slug}:{track.route_file.name or ''}:{direction}:{max_speed:.2f}"
    source = cache.get(key)
    if source is None:  # ~0.4 s for a built-in track: the minimum-curvature line is solved each time
        source = racing_line_reward_source(track_sim(track, direction), round(float(max_speed), 2))
        cache.set(key, source, timeout=24 * 3600)
    return source


def reward_function_check_source(source: Any) -> str:
    """The source as text within the size limit, or a ``RuleViolation`` on the ``reward_function`` field."""
    if not isinstance(source, str) or not source.strip():
        raise RuleViolation("Write a reward function first.", field="reward_function")
    if len(source) > MAX_SOURCE_CHARS:
        raise RuleViolation(f"The reward function is {len(source) // 1024} kB; the limit is "
                            f"{MAX_SOURCE_CHARS // 1024} kB.", code=SOURCE_TOO_LARGE, field="reward_function")
    return source


def reward_function_throttle(user) -> None:
    """At most ``CHECKS_PER_MINUTE`` checks per racer per minute (each one starts a sandbox)."""
    key = f"reward-checks:{user.pk}"
    cache.add(key, 0, timeout=60)
    try:
        count = cache.incr(key)
    except ValueError:  # the entry expired between add and incr
        cache.set(key, 1, timeout=60)
        count = 1
    if count > CHECKS_PER_MINUTE:
        raise RuleViolation(f"That is {CHECKS_PER_MINUTE} checks in a minute: wait a moment and validate again.",
                            code="throttled")


def reward_function_validate(source: str, track: Track, direction: str) -> RewardCheck:
    """Check ``source`` on ``track`` driven in ``direction``, as ``python -m sim validate-reward`` does."""
    source = reward_function_check_source(source)
    if not track.supports(direction):
        raise RuleViolation(f"{track.title} is not raced {direction}.", field="direction")
    try:
        check_source(source, DEFAULT_FILENAME)  # parsing only: answers syntax errors and imports at once
    except RewardFunctionError as error:
        return RewardCheck(False, str(error), error.line)
    request = {"source": source, "filename": DEFAULT_FILENAME, "direction": direction,
               "track": {"name": track.slug, "rows": track_sim(track).waypoints.tolist()}}  # file order
    try:
        outcome = sandbox_run(["-m", "sim.world.reward_check"], json.dumps(request).encode(), CHECK_LIMITS)
    except SandboxUnavailable:
        raise RuleViolation("Reward functions cannot be run safely on this server right now (no sandbox), so only "
                            "the syntax was checked. Ask the league's admin to install bubblewrap.",
                            code="unavailable", field="reward_function") from None
    if outcome.timed_out:
        return RewardCheck(False, f"The reward function did not finish within {CHECK_LIMITS.wall_seconds:g} s "
                                  f"on the synthetic cars.")
    report = _report(outcome.stdout)
    if report is None:
        return RewardCheck(False, "The reward function ended the check without an answer (it may have used too "
                                  f"much memory or CPU; exit code {outcome.returncode}).")
    return report


def _report(stdout: bytes) -> RewardCheck | None:
    """The sandbox's report, read strictly (untrusted output); None when there is none of the right shape."""
    text = stdout.decode("utf-8", "replace")
    found = text.rfind(REPORT_MARKER)
    if found < 0:
        return None
    try:
        document = json.loads(text[found + len(REPORT_MARKER):].strip().splitlines()[0])
    except (ValueError, IndexError, RecursionError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("valid"), bool):
        return None
    if not document["valid"]:
        line, car = document.get("line"), document.get("car")
        message = str(document.get("message") or "The reward function is not valid.")[:MAX_MESSAGE_CHARS]
        return RewardCheck(False, message,
                           line if isinstance(line, int) and not isinstance(line, bool) and line > 0 else None,
                           str(car)[:80] if isinstance(car, str) else None)
    samples = document.get("samples")
    if not isinstance(samples, list) or len(samples) > 20:
        return None
    parsed = []
    for sample in samples:
        if not isinstance(sample, dict) or not isinstance(sample.get("car"), str):
            return None
        reward = sample.get("reward")
        if isinstance(reward, bool) or not isinstance(reward, int | float) or not math.isfinite(reward):
            return None
        parsed.append((sample["car"][:80], float(reward)))
    return RewardCheck(True, "The reward function is valid.", samples=tuple(parsed))
