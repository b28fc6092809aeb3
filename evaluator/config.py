"""The evaluator's settings, typed, with their one set of defaults.

The project's settings module only parses the environment when a variable is set (``league/settings.py``); every
default lives here. Read through ``evaluator_settings()`` at the moment of use, so a changed setting (a test's
``settings`` fixture, a worker's environment) takes effect without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.conf import settings


@dataclass(frozen=True)
class EvaluatorSettings:
    lease_s: float = 60.0  # PITLANE_EVAL_LEASE_S: a worker's claim lapses unless heartbeats extend it
    max_attempts: int = 3  # PITLANE_EVAL_MAX_ATTEMPTS: tries per target before it fails for good
    max_concurrent_per_racer: int = 1  # PITLANE_EVAL_MAX_CONCURRENT_PER_RACER: running evaluations per owner
    stale_pending_s: float = 120.0  # PITLANE_EVAL_STALE_PENDING_S: a pending attempt is re-nudged after this
    reap_every_s: float = 15.0  # PITLANE_EVAL_REAP_EVERY_S: the reaper's period in every worker process
    sandbox_allow_fallback: bool = False  # PITLANE_SANDBOX_ALLOW_FALLBACK: accept the rlimits-only sandbox


SETTING_NAMES = {
    "lease_s": "PITLANE_EVAL_LEASE_S",
    "max_attempts": "PITLANE_EVAL_MAX_ATTEMPTS",
    "max_concurrent_per_racer": "PITLANE_EVAL_MAX_CONCURRENT_PER_RACER",
    "stale_pending_s": "PITLANE_EVAL_STALE_PENDING_S",
    "reap_every_s": "PITLANE_EVAL_REAP_EVERY_S",
    "sandbox_allow_fallback": "PITLANE_SANDBOX_ALLOW_FALLBACK",
}


def evaluator_settings() -> EvaluatorSettings:
    """The current settings: each ``PITLANE_*`` Django setting that is defined, else the default above."""
    values = {}
    for item in fields(EvaluatorSettings):
        name = SETTING_NAMES[item.name]
        if hasattr(settings, name):
            kind = {"float": float, "int": int, "bool": bool}[item.type]
            values[item.name] = kind(getattr(settings, name))
    return EvaluatorSettings(**values)
