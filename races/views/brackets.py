"""Head-to-head matches on the web: the match page (both lap tables, trajectories, replay) and its data."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render

from races.models import BracketMatch
from races.services import race_visible_to
from races.services.pictures import bracket_match_trajectory_png
from races.services.presenters import bracket_match_detail
from races.views.common import png_response


def visible_match(request, pk: int) -> BracketMatch:
    """Matches are as public as their race (a private race's matches are 404s for everyone else)."""
    return get_object_or_404(
        BracketMatch.objects.select_related("race__track", "racer_a__racer", "racer_b__racer", "winner__racer")
        .filter(race__in=race_visible_to(request.user)),
        pk=pk,
    )


def match_detail(request, pk: int):
    match = visible_match(request, pk)
    return render(request, "races/match_detail.html", {
        "match": match, "race": match.race, "detail": bracket_match_detail(match, include_trace=False),
    })


def match_json(request, pk: int):
    """The match with both cars' traces: what the replay draws."""
    return JsonResponse(bracket_match_detail(visible_match(request, pk)))


def match_trajectory_png(request, pk: int):
    return png_response(bracket_match_trajectory_png(visible_match(request, pk)), "This match has not been raced yet.")
