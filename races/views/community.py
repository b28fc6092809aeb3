from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from races.forms import CommunityRaceForm, JoinForm
from races.models import Race
from races.services import (
    RuleViolation,
    bracket_start,
    participant_readmit,
    participant_remove,
    race_by_invite_code,
    race_close_early,
    race_create,
    race_delete,
    race_invite_path,
    race_invite_problem,
    race_join,
    race_reset_invite_code,
    race_update,
    race_visible_to,
    races_by_phase,
)
from races.services.race_settings import SETTINGS_FIELDS
from races.views.common import CLOSED_SHOWN, form_add_rule_error, visible_race


@login_required
def community_list(request):
    races = race_visible_to(request.user).filter(kind=Race.Kind.COMMUNITY)
    return render(request, "races/race_list.html",
                  {"phases": races_by_phase(races, CLOSED_SHOWN), "kind": "community", "join_form": JoinForm()})


@login_required
def community_create(request):
    form = CommunityRaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            race = race_create(Race.Kind.COMMUNITY, organiser=request.user,
                               **{f: form.cleaned_data[f] for f in SETTINGS_FIELDS if f in form.cleaned_data})
        except RuleViolation as error:
            form_add_rule_error(form, error)
        else:
            messages.success(request, "Race created: share its invite link with your friends.")
            return redirect("races:race_manage", slug=race.slug)
    return render(request, "races/community_form.html", {"form": form})


@login_required
def race_join_page(request, code: str = ""):
    # A reset or expired link says so, and leaves the field empty for the new code rather than the dead one.
    problem = race_invite_problem(code) if code and request.method != "POST" else None
    form = JoinForm(request.POST or None, initial={"code": "" if problem else code})
    if request.method == "POST" and form.is_valid():
        try:
            race = race_join(form.cleaned_data["code"], request.user)
        except RuleViolation as error:
            form.add_error("code", error.message)
        else:
            messages.success(request, f"You joined {race.name}.")
            return redirect("races:race_detail", slug=race.slug)
    return render(request, "races/join.html", {
        "form": form, "problem": problem, "race": race_by_invite_code(code) if code and not problem else None,
    })


@login_required
def race_manage(request, slug: str):
    """The organiser's page: invite link, participants, settings (before opening), close and delete."""
    race = visible_race(request, slug)
    if race.organiser_id != request.user.pk and not request.user.is_staff:
        return redirect("races:race_detail", slug=slug)
    # The form edits its own copy: `race` keeps the stored settings for the rest of the page.
    form = CommunityRaceForm(request.POST or None, instance=Race.objects.get(pk=race.pk))
    if request.method == "POST" and form.is_valid():
        values = {f: form.cleaned_data[f] for f in SETTINGS_FIELDS if f in form.cleaned_data}
        try:
            race_update(race, request.user, **values)
        except RuleViolation as error:
            form_add_rule_error(form, error)
        else:
            messages.success(request, "Race settings saved.")
            return redirect("races:race_manage", slug=slug)
    members = race.participants.select_related("user__racer").order_by("joined_at")
    return render(request, "races/race_manage.html", {
        "race": race, "phase": race.phase(), "form": form,
        "participants": members.filter(removed_at__isnull=True), "removed": members.filter(removed_at__isnull=False),
        "bracket_started": race.bracket_matches.exists(),
        "invite_url": request.build_absolute_uri(race_invite_path(race)),
    })


@login_required
@require_POST
def race_action(request, slug: str, action: str):
    race = visible_race(request, slug)
    try:
        if action == "reset-code":
            race_reset_invite_code(race, request.user)
            messages.success(request, "New invite code created; the old one no longer works.")
        elif action == "close":
            race_close_early(race, request.user)
            messages.success(request, "The race is closed.")
        elif action == "start-bracket":
            matches = bracket_start(race, by=request.user)
            messages.success(request, f"The bracket has started: {len(matches)} first-round match(es).")
        elif action == "delete":
            race_delete(race, request.user)
            messages.success(request, "The race was deleted.")
            return redirect("races:community_list")
        elif action == "remove":
            user_id = request.POST.get("user", "")
            user = get_object_or_404(get_user_model(), pk=int(user_id) if user_id.isdigit() else 0)
            participant_remove(race, request.user, user)
            messages.success(request, "Participant removed.")
        elif action == "readmit":
            user_id = request.POST.get("user", "")
            user = get_object_or_404(get_user_model(), pk=int(user_id) if user_id.isdigit() else 0)
            participant_readmit(race, request.user, user)
            messages.success(request, "Participant re-admitted: the race is theirs to see and enter again.")
        else:
            messages.error(request, "Unknown action.")
    except RuleViolation as error:
        messages.error(request, error.message)
    return redirect("races:race_manage", slug=slug)
