"""Lookups shared by the web views: every race goes through ``race_visible_to`` (private races are 404s)."""

from __future__ import annotations

from django import forms
from django.shortcuts import get_object_or_404

from races.models import Race, Submission
from races.services import RuleViolation, race_visible_to

# Race lists show every open and upcoming race but only the most recent closed ones (the API pages them all).
CLOSED_SHOWN = 30


def visible_race(request, slug: str) -> Race:
    return get_object_or_404(race_visible_to(request.user), slug=slug)


def visible_submission(request, pk: int) -> Submission:
    """Runs are public to everyone who can see the race (leaderboards link to them)."""
    return get_object_or_404(
        Submission.objects.select_related("race__track", "model", "user__racer").filter(
            race__in=race_visible_to(request.user)
        ),
        pk=pk,
    )


def form_add_rule_error(form: forms.BaseForm, error: RuleViolation) -> None:
    """Show a refused rule beside the field it is about (e.g. minimum laps), else at the top of the form."""
    form.add_error(error.field if error.field in form.fields else None, error.message)
