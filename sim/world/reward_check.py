"""Validating a reward function on a track, as ``python -m sim validate-reward`` does, for people and for programs.

``reward_samples`` is the check itself (``validate_reward_function`` on ``synthetic_params(track)``, then each
synthetic car's reward). ``python -m sim.world.reward_check`` runs it for a program: one JSON request on stdin
(``{"source", "filename", "track": {"name", "rows"}, "direction"}``), one JSON report on stdout
(``{"valid": true, "samples": [{"car", "reward"}, ...]}`` or ``{"valid": false, "message", "line", "car"}``). The
league's web server runs it inside the evaluator's sandbox: the reward function is the racer's code, and this
process runs it. Nothing it prints is trusted by the caller beyond being a report about the racer's own code.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from sim.world.params import synthetic_params
from sim.world.reward_function import DEFAULT_FILENAME, RewardFunctionError, validate_reward_function
from sim.world.track import Track

REPORT_MARKER = "PITLANE-REWARD-CHECK:"  # the report's line; anything else on stdout is the racer's printing


def reward_samples(source: str, track: Track, filename: str = DEFAULT_FILENAME,
                   time_limit_s: float = 5.0) -> list[tuple[str, float]]:
    """Validate ``source`` on ``track``'s synthetic cars; each car's name and reward. Raises ``RewardFunctionError``."""
    names, params = synthetic_params(track)
    reward_function = validate_reward_function(source, params, time_limit_s, names=names, filename=filename)
    return [(name, reward_function(values)) for name, values in zip(names, params, strict=True)]


def check_request(request: dict[str, Any]) -> dict[str, Any]:
    """The report for one request (see the module's docstring)."""
    track = Track.from_array(np.asarray(request["track"]["rows"], dtype=np.float64), name=str(request["track"]["name"]))
    track = track.with_direction(str(request.get("direction") or "counterclockwise"))
    try:
        samples = reward_samples(str(request["source"]), track, str(request.get("filename") or DEFAULT_FILENAME))
    except RewardFunctionError as error:
        return {"valid": False, "message": str(error), "line": error.line, "car": error.car}
    return {"valid": True, "samples": [{"car": name, "reward": reward} for name, reward in samples]}


def main() -> int:
    report = check_request(json.loads(sys.stdin.read()))
    # The racer's code may have printed too (print() is allowed): the report is the marked line, written last.
    sys.stdout.write("\n" + REPORT_MARKER + json.dumps(report, allow_nan=False) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
