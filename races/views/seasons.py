"""Season pages: the list, the standings (and CSV), creating and managing a season; racer profiles."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from races.forms import SeasonForm
from races.models import Race, Season
from races.services import RuleViolation, race_visible_to
from races.services.profiles import racer_by_alias, racer_profile
from races.services.seasons import (
    points_text,
    season_attach_race,
    season_can_manage,
    season_create,
    season_detach_race,
    season_finish,
    season_races,
    season_standings,
    season_standings_csv,
    season_update,
    season_visible_to,
)


def visible_season(request, slug: str) -> Season:
    return get_object_or_404(season_visible_to(request.user), slug=slug)


def season_list(request):
    now = timezone.now()
    seasons = list(season_visible_to(request.user).order_by("-starts_at", "pk"))
    over = {s.pk for s in seasons if s.finished_at is not None or s.ends_at <= now}
    groups = [
        ("Running", "No season is running.", [s for s in seasons if s.pk not in over and s.starts_at <= now]),
        ("Coming up", "No season is coming up.", [s for s in seasons if s.pk not in over and now < s.starts_at]),
        ("Finished", "No season has finished yet.", [s for s in seasons if s.pk in over]),
    ]
    return render(request, "races/season_list.html", {"groups": groups})


def season_detail(request, slug: str):
    season = visible_season(request, slug)
    standings = season_standings(season)
    visible = set(race_visible_to(request.user).filter(season=season).values_list("pk", flat=True))
    races = [{"race": race, "phase": race.phase(), "visible": race.pk in visible,
              "provisional": race.pk in standings.provisional_races} for race in standings.races]
    rows = [{"row": row, "points": points_text(row.points),
             "results": [row.finishes.get(race.pk) for race in standings.races]} for row in standings.rows]
    context = {"season": season, "standings": standings, "races": races, "rows": rows,
               "can_manage": season_can_manage(season, request.user),
               "final_size": season.final_size, "points_table": ", ".join(map(str, season.points_table))}
    if context["can_manage"] and season.finished_at is None:
        context["attachable"] = _attachable_races(season, request.user)
    return render(request, "races/season_detail.html", context)


def season_standings_csv_view(request, slug: str):
    season = visible_season(request, slug)
    response = HttpResponse(season_standings_csv(season_standings(season)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{season.slug}-standings.csv"'
    return response


@login_required
def season_create_view(request):
    """Staff create virtual-circuit seasons; racers a community season over their own private races."""
    form = SeasonForm(request.POST or None)
    kind = Race.Kind.VIRTUAL_CIRCUIT if request.user.is_staff else Race.Kind.COMMUNITY
    if request.method == "POST" and form.is_valid():
        try:
            season = season_create(kind, request.user, **form.values())
        except RuleViolation as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Season created: add its races below.")
            return redirect("races:season_detail", slug=season.slug)
    return render(request, "races/season_form.html", {"form": form, "kind": kind, "season": None})


@login_required
def season_edit(request, slug: str):
    season = visible_season(request, slug)
    if not season_can_manage(season, request.user):
        return redirect("races:season_detail", slug=slug)
    form = SeasonForm(request.POST or None, instance=Season.objects.get(pk=season.pk))
    if request.method == "POST" and form.is_valid():
        try:
            season_update(season, request.user, **form.values())
        except RuleViolation as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, "Season settings saved.")
            return redirect("races:season_detail", slug=slug)
    return render(request, "races/season_form.html", {"form": form, "kind": season.kind, "season": season})


@login_required
@require_POST
def season_action(request, slug: str, action: str):
    season = visible_season(request, slug)
    try:
        if action == "attach":
            race = _race_from_post(request)
            season_attach_race(season, race, request.user)
            messages.success(request, f"{race.name} now counts for {season.name}.")
        elif action == "detach":
            race = _race_from_post(request, season_races(season))
            season_detach_race(race, request.user)
            messages.success(request, f"{race.name} no longer counts for {season.name}.")
        elif action == "finish":
            final = season_finish(season, by=request.user)
            messages.success(request, f"The season is finished: {final.name} has started." if final else
                             f"The season is finished. {Season.objects.get(pk=season.pk).final_note}")
        else:
            messages.error(request, "Unknown action.")
    except RuleViolation as error:
        messages.error(request, error.message)
    return redirect("races:season_detail", slug=slug)


def _race_from_post(request, races=None) -> Race:
    pk = request.POST.get("race", "")
    races = races if races is not None else race_visible_to(request.user)
    return get_object_or_404(races, pk=int(pk) if pk.isdigit() else 0)


def _attachable_races(season: Season, user) -> list[Race]:
    """Races the manager could add: same kind, not in a season, not yet closed before the season started."""
    races = race_visible_to(user).filter(kind=season.kind, season__isnull=True, opens_at__gte=season.starts_at,
                                         closes_at__lte=season.ends_at, final_of_season__isnull=True)
    if season.is_community:
        races = races.filter(organiser_id=season.organiser_id)
    return list(races.order_by("opens_at")[:100])


def racer_profile_view(request, alias: str):
    profile = racer_by_alias(alias)
    if profile is None:
        raise Http404("No racer has this alias.")
    return render(request, "races/racer_profile.html", {"profile": racer_profile(profile, request.user)})
