"""Runs INSIDE the sandbox: read a job on stdin, drive the model through the race, print one JSON result.

No Django, no settings, no database, no network: only the read-only ``sim`` package, the validated model
folder (``/model``) and a scratch folder. The trusted side validates everything printed here
(``evaluator.results``) before anything reaches the database.

Job: ``{"track": {"name", "rows"}, "direction", "rules": {...RaceRules fields}, "seed"}``.
Result: ``{"ok": true, "laps": [...], "trace": {...}, "simtrace_csv": "...", "duration_s": ...}`` or
``{"ok": false, "kind": "model" | "job", "error": "..."}``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

TRACE_EVERY = 2  # every 2nd step (7.5 Hz) is plenty for the replay and keeps results small


def main() -> int:
    started = time.monotonic()
    try:
        job = json.loads(sys.stdin.read())
    except ValueError as error:
        return _emit({"ok": False, "kind": "job", "error": f"unreadable job: {error}"})
    try:
        import numpy as np
        import torch

        from sim.archive import ArchiveError, load_model
        from sim.evaluation import run_race
        from sim.networks import build_actor_critic
        from sim.rules import RaceRules
        from sim.simtrace import simtrace_csv_text
        from sim.track import Track
    except Exception as error:  # a broken installation is our fault, not the model's
        return _emit({"ok": False, "kind": "job", "error": f"runner import failed: {error!r}"})

    torch.set_num_threads(1)
    try:
        vehicle, state_dict = load_model(job.get("model_dir", "/model"))
        network = build_actor_critic(vehicle)
        network.load_state_dict(state_dict)
        network.eval()
    except (ArchiveError, RuntimeError, ValueError) as error:
        return _emit({"ok": False, "kind": "model", "error": f"the model could not be loaded: {error}"})

    track = Track.from_array(np.asarray(job["track"]["rows"], dtype=np.float64), name=job["track"]["name"])
    track = track.with_direction(job.get("direction", "counterclockwise"))
    rules = RaceRules(**job["rules"])

    def policy(observations: Any) -> np.ndarray:
        with torch.inference_mode():
            return network.predict(observations).numpy()

    try:
        run = run_race(policy, track, vehicle, rules, seed=int(job.get("seed", 0)))
    except (RuntimeError, ValueError) as error:
        return _emit({"ok": False, "kind": "model", "error": f"the model failed while driving: {error}"})
    return _emit({
        "ok": True,
        "laps": [lap.to_dict() for lap in run.laps],
        "trace": _compact_trace(run.trace),
        "simtrace_csv": simtrace_csv_text(run.simtrace),
        "duration_s": round(time.monotonic() - started, 3),
    })


def _compact_trace(trace: dict[str, Any]) -> dict[str, list]:
    compact: dict[str, list] = {}
    for key, values in trace.items():
        sampled = list(values)[::TRACE_EVERY]
        compact[key] = [round(float(v), 3) if isinstance(v, int | float) or hasattr(v, "dtype") else str(v)
                        for v in sampled]
    return compact


def _emit(document: dict[str, Any]) -> int:
    sys.stdout.write(json.dumps(document, allow_nan=False))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
