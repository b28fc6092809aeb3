"""The league admins' scheduling page: virtual-circuit races by phase with their season, the evaluation queue at a
glance, creating a race with the friendly form, opening/closing now, repeating a race. Staff only."""

from __future__ import annotations

from datetime import datetime
from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from races.forms import RepeatForm, ScheduleRaceForm
from races.models import Race, Season, Track
from races.services import RuleViolation, race_create, races_by_phase, races_close_now, races_open_now
from races.services.race_settings import SETTINGS_FIELDS
from races.services.schedule import (
    add_months,
    evaluation_queue_glance,
    race_clone_next,
    race_repeat_monthly,
    schedule_calendar,
)
from races.services.seasons import season_attach_race, season_detach_race

CLOSED_SHOWN = 20
CALENDAR_MONTHS = 2  # this month and the next


def staff_required(view):
    """Anonymous visitors are sent to sign in; signed-in racers who are not staff get a 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("Only the league admins schedule races.")
        return view(request, *args, **kwargs)

    return wrapper


@staff_required
def schedule(request):
    races = Race.objects.filter(kind=Race.Kind.VIRTUAL_CIRCUIT).select_related("track", "season")
    today = timezone.localdate()
    shown_from = timezone.make_aware(datetime(today.year, today.month, 1))
    shown = list(races.filter(opens_at__lt=add_months(shown_from, CALENDAR_MONTHS), closes_at__gte=shown_from)
                 .order_by("opens_at", "pk"))
    seasons = Season.objects.filter(kind=Race.Kind.VIRTUAL_CIRCUIT, finished_at__isnull=True).order_by("starts_at")
    return render(request, "races/schedule.html", {
        "phases": races_by_phase(races, CLOSED_SHOWN), "queue": evaluation_queue_glance(),
        "calendar": schedule_calendar(shown, today, CALENDAR_MONTHS),
        "seasons": list(seasons), "now": timezone.now(),
        "zone_name": timezone.get_current_timezone_name(),
    })


@staff_required
def schedule_create(request):
    form = ScheduleRaceForm(request.POST or None, initial={"season": request.GET.get("season") or None})
    if request.method == "POST" and form.is_valid():
        values = {f: form.cleaned_data[f] for f in SETTINGS_FIELDS if f in form.cleaned_data}
        try:
            race = race_create(Race.Kind.VIRTUAL_CIRCUIT, **values)
            if form.cleaned_data.get("season") is not None:
                try:
                    season_attach_race(form.cleaned_data["season"], race, request.user)
                except RuleViolation as error:
                    messages.warning(request, f"The race was scheduled but not added to the season: {error.message}")
        except RuleViolation as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, f"Scheduled {race.name}.")
            return redirect("races:schedule")
    previews = {str(track.pk): reverse("races:track_preview", args=[track.slug]) for track in Track.objects.all()}
    return render(request, "races/schedule_form.html", {"form": form, "track_previews": previews})


@staff_required
@require_POST
def schedule_action(request, slug: str, action: str):
    race = get_object_or_404(Race.objects.filter(kind=Race.Kind.VIRTUAL_CIRCUIT), slug=slug)
    one = Race.objects.filter(pk=race.pk)
    try:
        if action == "open-now":
            opened = races_open_now(one)
            messages.success(request, f"{race.name} is open." if opened else f"{race.name} was not upcoming.")
        elif action == "close-now":
            closed = races_close_now(one)
            messages.success(request, f"{race.name} is closed." if closed else f"{race.name} was closed already.")
        elif action == "clone-next":
            clone = race_clone_next(race, request.user)
            messages.success(request, f"Scheduled {clone.name} from {timezone.localtime(clone.opens_at):%b %d %H:%M}.")
        elif action == "repeat-monthly":
            form = RepeatForm(request.POST)
            if not form.is_valid():
                raise RuleViolation("Repeat for 1 to 12 months.")
            clones = race_repeat_monthly(race, form.cleaned_data["months"], request.user)
            messages.success(request, f"Scheduled {len(clones)} monthly race(s): {', '.join(c.name for c in clones)}.")
        elif action == "season":
            pk = request.POST.get("season", "")
            if pk:
                season = get_object_or_404(Season, pk=int(pk) if pk.isdigit() else 0)
                season_attach_race(season, race, request.user)
                messages.success(request, f"{race.name} counts for {season.name}.")
            else:
                season_detach_race(race, request.user)
                messages.success(request, f"{race.name} counts for no season.")
        else:
            messages.error(request, "Unknown action.")
    except RuleViolation as error:
        messages.error(request, error.message)
    return redirect("races:schedule")
