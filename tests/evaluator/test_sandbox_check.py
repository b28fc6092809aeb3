"""``manage.py sandbox_check`` tells an operator whether evaluations can run here, and how contained."""

import io

import pytest
from django.core.management import CommandError, call_command

from evaluator import sandbox


@pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine")
def test_the_check_reports_a_contained_sandbox(monkeypatch):
    monkeypatch.setenv("PITLANE_SECRET_KEY", "do-not-leak-this")
    out = io.StringIO()
    call_command("sandbox_check", stdout=out)
    report = out.getvalue()
    assert "network:                   blocked" in report and "PITLANE_SECRET_KEY" not in report
    assert "contained: evaluations run in bubblewrap" in report


def test_the_check_fails_clearly_when_evaluations_would_be_refused(monkeypatch, settings):
    settings.PITLANE_SANDBOX_ALLOW_FALLBACK = False
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    with pytest.raises(CommandError, match="evaluations are refused"):
        call_command("sandbox_check")


def test_the_fallback_is_reported_as_not_contained(monkeypatch, settings):
    settings.PITLANE_SANDBOX_ALLOW_FALLBACK = True
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    out = io.StringIO()
    call_command("sandbox_check", stdout=out)
    assert "sandbox mode:              fallback" in out.getvalue() and "NOT CONTAINED" in out.getvalue()
