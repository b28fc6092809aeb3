from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from evaluator.services import queue_position
from races.forms import SubmitForm
from races.models import Race
from races.services import (
    RuleViolation,
    leaderboard_csv,
    leaderboard_table,
    models_of,
    race_is_member,
    race_visible_to,
    races_by_phase,
    submission_allowance,
    submission_create,
    track_preview,
)
from races.views.common import visible_race


def race_list(request):
    races = race_visible_to(request.user).filter(kind=Race.Kind.VIRTUAL_CIRCUIT)
    return render(request, "races/race_list.html", {"phases": races_by_phase(races), "kind": "virtual"})


def race_detail(request, slug: str):
    race = visible_race(request, slug)
    context = {"race": race, "phase": race.phase(), "rows": leaderboard_table(race)}
    if request.user.is_authenticated:
        mine = race.submissions.filter(user=request.user).select_related("model")[:50]
        context |= {
            "my_submissions": [(s, queue_position(s) if s.status == "queued" else None) for s in mine],
            "allowance": submission_allowance(race, request.user),
            "is_member": race_is_member(race, request.user),
            "submit_form": SubmitForm(models=models_of(request.user)),
            "is_organiser": race.organiser_id == request.user.pk,
        }
    return render(request, "races/race_detail.html", context)


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


def race_leaderboard_json(request, slug: str):
    race = visible_race(request, slug)
    return JsonResponse({"race": race.slug, "phase": race.phase(), "rows": leaderboard_table(race)})


def race_leaderboard_csv(request, slug: str):
    race = visible_race(request, slug)
    response = HttpResponse(leaderboard_csv(race), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{race.slug}-leaderboard.csv"'
    return response


def race_track_png(request, slug: str):
    race = visible_race(request, slug)
    return HttpResponse(track_preview(race.track), content_type="image/png")
