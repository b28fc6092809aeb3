"""Settings of the worker processes that the evaluator's process tests start: the league's, with a fast reaper."""

from league.settings import *  # noqa: F403

PITLANE_EVAL_REAP_EVERY_S = 1
