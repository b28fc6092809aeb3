from __future__ import annotations

import hashlib
import time
from functools import lru_cache

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.timezone import get_current_timezone_name
from django.views.decorators.cache import cache_control
from django.views.decorators.http import conditional_page, require_POST

from league.services import racer_alias
from league.templatetags.times import moment_text
from races.forms import SubmitForm
from races.models import Race, RacePhase, Season, Submission
from races.services import (
    RuleViolation,
    leaderboard_cache_key,
    leaderboard_csv,
    leaderboard_top,
    models_of,
    race_is_member,
    race_visible_to,
    races_by_phase,
    races_in_phase,
    submission_allowance,
    submission_create,
)
from races.services.leaderboards import leaderboard_reference_ms
from races.services.pictures import race_track_picture
from races.services.presenters import bracket_summary, leaderboard_reference, qualified_score, submission_badge
from races.services.submissions import submission_queue_positions
from races.views.common import CLOSED_SHOWN, visible_race

# The page shows the top of the board (and your own row); the CSV export and the API have every row.
LEADERBOARD_ROWS_SHOWN = 100


def race_list(request):
    """Virtual-circuit races by phase, and the open community races the racer belongs to."""
    visible = race_visible_to(request.user)
    virtual = visible.filter(kind=Race.Kind.VIRTUAL_CIRCUIT)
    context = {"phases": races_by_phase(virtual, CLOSED_SHOWN), "kind": "virtual"}
    if request.user.is_authenticated:
        context["my_community"] = list(races_in_phase(visible.filter(kind=Race.Kind.COMMUNITY), RacePhase.OPEN))
    return render(request, "races/race_list.html", context)


def race_detail(request, slug: str):
    race = visible_race(request, slug)
    phase = race.phase()
    spectator_key = spectator_page_key(request, race, phase)
    if spectator_key is not None and (page := cache.get(spectator_key)) is not None:
        return HttpResponse(page)
    response = _race_detail(request, race, phase)
    if spectator_key is not None:
        cache.set(spectator_key, response.content, timeout=600)
    return response


def spectator_page_key(request, race: Race, phase: str) -> str | None:
    """The whole page is the same for every anonymous spectator of a race: a key that changes with everything it
    shows (the race's and track's stored values, the board version of the row just loaded, the phase and the
    minute, for the countdown), or None where the page is personal: signed in, or a session or flash message
    waiting. Brackets change without touching the race row, so bracket pages are always rendered."""
    cookies = request.COOKIES
    if (request.user.is_authenticated or settings.SESSION_COOKIE_NAME in cookies
            or CookieStorage.cookie_name in cookies or race.race_type == Race.RaceType.HEAD_TO_HEAD):
        return None
    stored = [getattr(model, field.attname) for model in (race, race.track) for field in model._meta.concrete_fields]
    fingerprint = hashlib.sha256(repr(stored).encode()).hexdigest()[:32]
    return f"race-page:{race.pk}:{fingerprint}:{phase}:{int(time.time() // 60)}"


def _race_detail(request, race: Race, phase: str) -> HttpResponse:
    me = racer_alias(request.user) if request.user.is_authenticated else None
    rows_html, ranked = leaderboard_rows_html(race, me, phase)
    context = {"race": race, "phase": phase, "leaderboard_rows": rows_html, "ranked": ranked, "me": me,
               "rows_shown": LEADERBOARD_ROWS_SHOWN,
               "reference": leaderboard_reference(leaderboard_reference_ms(race), race)}
    if race.race_type == Race.RaceType.HEAD_TO_HEAD:
        context["bracket"] = bracket_summary(race)
        # A season's final has no qualifying and takes no submissions: its seeds come from the standings.
        context["final_of"] = Season.objects.filter(final_race=race).first()
    if request.user.is_authenticated:
        context |= {
            "my_submissions": my_submissions(race, request.user),
            "allowance": submission_allowance(race, request.user),
            "is_member": race_is_member(race, request.user),
            "submit_form": SubmitForm(models=models_of(request.user)),
            "is_organiser": race.organiser_id == request.user.pk,
        }
    return render(request, "races/race_detail.html", context)


def leaderboard_rows_html(race: Race, me: str | None, phase: str) -> tuple[str, int]:
    """The page's rendered rows and the number of ranked racers, rendered once per board version, viewer
    (their row is highlighted or appended) and phase (the empty board's wording)."""
    key = f"{leaderboard_cache_key(race)}:rows-html:{phase}:{me or ''}"
    cached = cache.get(key)
    if cached is None:
        rows, ranked = leaderboard_top(race, me, LEADERBOARD_ROWS_SHOWN)
        html = render_to_string("races/_leaderboard_rows.html", {"rows": rows, "me": me, "phase": phase})
        cached = (html, ranked)  # a SafeString, and still one after the cache's pickling
        cache.set(key, cached, timeout=600)
    return cached


# functools, not cachetools: thread-safe as it is, and a URL of a primary key never goes stale, so a plain
# size bound is all it needs.
@lru_cache(maxsize=65536)
def submission_url(pk: int) -> str:
    """Reversing costs ~50 µs; the poll links up to 100 rows every few seconds."""
    return reverse("races:submission_detail", args=[pk])


@lru_cache(maxsize=65536)
def racer_url(alias: str) -> str:
    """A racer's profile page (a pure function of the alias, so a renamed racer just gets a new entry)."""
    return reverse("races:racer_profile", args=[alias])


def my_submissions(race: Race, user) -> list[dict]:
    """The racer's submissions to ``race`` with status, queue position and score (page and live JSON)."""
    rows = []
    submissions = list(race.submissions.filter(user=user).select_related("model", "run").order_by("-submitted_at")[:50])
    positions = {}
    if any(s.status == Submission.Status.QUEUED for s in submissions):  # one pass over the queue, not one per row
        positions = submission_queue_positions()
    for submission in submissions:
        run = getattr(submission, "run", None)
        rows.append({
            "id": submission.pk,
            "sequence": submission.sequence,
            "model": submission.model.name,
            "status": submission.status,
            "queue_position": positions.get(submission.pk) if submission.status == Submission.Status.QUEUED else None,
            "score": qualified_score(run),
            "qualified": run.qualified if run is not None else None,
            "badge": submission_badge(submission.status, run.qualified if run is not None else None),
            "submitted_at": submission.submitted_at,
        })
    return rows


@login_required
@require_POST
def race_submit(request, slug: str):
    race = visible_race(request, slug)
    form = SubmitForm(request.POST, models=models_of(request.user))
    if not form.is_valid():
        messages.error(request, "Choose one of your models.")
        return redirect("races:race_detail", slug=slug)
    try:
        submission = submission_create(request.user, race, form.cleaned_data["model"])
    except RuleViolation as error:
        messages.error(request, error.message)
        return redirect("races:race_detail", slug=slug)
    messages.success(request, "Submitted: your model is queued for evaluation.")
    return redirect("races:submission_detail", pk=submission.pk)


@cache_control(no_cache=True, private=True)
@conditional_page  # polled every few seconds: an unchanged board is a 304 with no body
def race_leaderboard_json(request, slug: str):
    """What the race page's poll reads: ranked rows, the phase and (signed in) the racer's own submissions."""
    race = visible_race(request, slug)
    me = racer_alias(request.user) if request.user.is_authenticated else None
    top, ranked = leaderboard_top(race, me, LEADERBOARD_ROWS_SHOWN)
    rows = [row | {"url": submission_url(row["submission_id"]), "racer_url": racer_url(row["racer"])} for row in top]
    data = {"race": race.slug, "phase": race.phase(), "rows": rows, "ranked": ranked}
    if request.user.is_authenticated:
        data["me"] = me
        data["time_zone"] = get_current_timezone_name()
        data["mine"] = [
            row | {"submitted_at": moment_text(row["submitted_at"], "M j, H:i"),
                   "submitted_at_iso": row["submitted_at"].isoformat(),
                   "url": reverse("races:submission_detail", args=[row["id"]])}
            for row in my_submissions(race, request.user)
        ]
    return JsonResponse(data)


def race_leaderboard_csv(request, slug: str):
    race = visible_race(request, slug)
    response = HttpResponse(leaderboard_csv(race), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{race.slug}-leaderboard.csv"'
    return response


def race_track_png(request, slug: str):
    race = visible_race(request, slug)
    return HttpResponse(race_track_picture(race), content_type="image/png")
