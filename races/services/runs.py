"""Runs: forgetting a submission's recorded run (row, simtrace, stored picture) before it is evaluated again
or its race is deleted. What a run looks like is ``presenters``' and ``pictures``'."""

from __future__ import annotations

from races.models import Run, Submission
from races.services.pictures import run_trajectory_png_delete


def run_discard(submission: Submission) -> None:
    """Forget a submission's run before it is evaluated again: the row, its simtrace and the cached picture."""
    run = Run.objects.filter(submission=submission).first()
    if run is None:
        return
    if run.simtrace:
        run.simtrace.delete(save=False)
    run_trajectory_png_delete(submission)
    run.delete()
