"""Lookups shared by the web views: every race goes through ``race_visible_to`` (private races are 404s); the
response of a picture that may not exist yet."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse

from races.models import Race, Submission
from races.services import RuleViolation, race_removal, race_visible_to
from races.services.presenters import racer_name

# Race lists show every open and upcoming race but only the most recent closed ones (the API pages them all).
CLOSED_SHOWN = 30


def png_response(png: bytes | None, missing: str, headers: dict[str, str] | None = None) -> HttpResponse:
    """A PNG picture, or a 404 saying why there is none yet (a run not raced, a job with no iteration...)."""
    if png is None:
        raise Http404(missing)
    return HttpResponse(png, content_type="image/png", headers=headers)


def visible_race(request, slug: str) -> Race:
    race = race_visible_to(request.user).filter(slug=slug).first()
    if race is None:
        refuse_if_removed(request.user, Race.objects.filter(slug=slug))
        raise Http404("No such race.")
    return race


def visible_submission(request, pk: int) -> Submission:
    """Runs are public to everyone who can see the race (leaderboards link to them)."""
    submission = Submission.objects.select_related("race__track", "model", "user__racer").filter(
        race__in=race_visible_to(request.user), pk=pk
    ).first()
    if submission is None:
        # Only the racer's own runs say why they are gone; anyone else's stay a plain 404.
        refuse_if_removed(request.user, Race.objects.filter(submissions__pk=pk, submissions__user=request.user.pk))
        raise Http404("No such run.")
    return submission


def refuse_if_removed(user, races) -> None:
    """A racer removed from one of ``races`` gets a page saying so (403), not a 404 for a race they were in."""
    removal = race_removal(user, races)
    if removal is not None:
        organiser = removal.race.organiser
        by = f" by its organiser {racer_name(organiser)}" if organiser is not None else ""
        raise PermissionDenied(f"You were removed from the community race “{removal.race.name}”{by}, so its "
                               "pages and your runs in it are hidden from you. Ask the organiser to re-admit you.")


def form_add_rule_error(form: forms.BaseForm, error: RuleViolation) -> None:
    """Show a refused rule beside the field it is about (e.g. minimum laps), else at the top of the form."""
    form.add_error(error.field if error.field in form.fields else None, error.message)
