"""Races: visibility (the one place private races are hidden), scheduling rules and community races."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from races.models import Race, RaceParticipant
from races.services.errors import RuleViolation
from sim.scoring import RankingMethod

EVALUABLE_RACE_TYPES = {Race.RaceType.TIME_TRIAL}
SETTINGS_FIELDS = (
    "name", "description", "race_type", "track", "direction", "ranking_method", "total_laps", "minimum_laps",
    "off_track_penalty_s", "collision_penalty_s", "max_resets", "time_cap_s", "opens_at", "closes_at",
    "max_submissions_per_racer", "submission_cooldown_s",
)


def race_visible_to(user) -> QuerySet[Race]:
    """Every race ``user`` may see: all virtual-circuit races, and community races they organise or joined.

    Every web page and API endpoint looks races up through this queryset, so a private race is a 404
    for everyone else, with no hint that it exists. Staff see everything.
    """
    races = Race.objects.select_related("track", "organiser")
    if getattr(user, "is_staff", False):
        return races
    public = Q(kind=Race.Kind.VIRTUAL_CIRCUIT)
    if not getattr(user, "is_authenticated", False):
        return races.filter(public)
    member = RaceParticipant.objects.filter(race=OuterRef("pk"), user=user, removed_at__isnull=True)
    return races.filter(public | Q(organiser=user) | Q(Exists(member)))


def race_is_member(race: Race, user) -> bool:
    if not race.is_community:
        return True
    if race.organiser_id == getattr(user, "pk", None):
        return True
    return RaceParticipant.objects.filter(race=race, user=user, removed_at__isnull=True).exists()


def race_validate_settings(values: dict) -> None:
    """Cross-field rules of SPEC §8, shared by the admin, the web forms and the API."""
    total, minimum = values.get("total_laps"), values.get("minimum_laps")
    if total is not None and not 1 <= total <= 10:
        raise RuleViolation("Total laps must be between 1 and 10.")
    if minimum is not None and total is not None and not 1 <= minimum <= total:
        raise RuleViolation("Minimum laps must be between 1 and the total laps.")
    if values.get("ranking_method") == RankingMethod.TOTAL_TIME and minimum != total:
        raise RuleViolation("Total-time races count every lap: minimum laps must equal total laps.")
    if values.get("race_type", Race.RaceType.TIME_TRIAL) not in EVALUABLE_RACE_TYPES:
        raise RuleViolation(
            "Only time-trial races can be evaluated so far; object avoidance and head-to-bot come later."
        )
    track, direction = values.get("track"), values.get("direction")
    if track is not None and direction and not track.supports(direction):
        raise RuleViolation(f"{track.title} is raced {track.get_directions_display().lower()}.")
    opens, closes = values.get("opens_at"), values.get("closes_at")
    if opens and closes and closes <= opens:
        raise RuleViolation("The race must close after it opens.")
    for field in ("off_track_penalty_s", "collision_penalty_s"):
        if values.get(field) is not None and not 0 <= values[field] <= 60:
            raise RuleViolation("Penalties must be between 0 and 60 seconds.")
    if values.get("time_cap_s") is not None and not 30 <= values["time_cap_s"] <= 1200:
        raise RuleViolation("The run time cap must be between 30 seconds and 20 minutes.")


def race_create(kind: str, organiser=None, **values) -> Race:
    """Schedule a race (admins: virtual circuit) or create a private community race with a fresh invite code."""
    if kind not in Race.Kind.values:
        raise RuleViolation(f"Unknown race kind '{kind}'.")
    race_validate_settings(values)
    slug = _unique_slug(values.get("name") or "", private=kind == Race.Kind.COMMUNITY)
    race = Race(kind=kind, organiser=organiser, slug=slug, **values)
    if kind == Race.Kind.COMMUNITY:
        _set_invite_code(race)
    _full_clean(race)
    race.save()
    return race


def race_update(race: Race, by, **values) -> Race:
    """Organisers edit a community race only before it opens (checked on the stored row, under its lock,
    so a form that already changed ``race`` in memory cannot open the door)."""
    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise RuleViolation(f"These settings cannot be changed: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        stored = Race.objects.select_for_update().get(pk=race.pk)
        _require_organiser(stored, by)
        if stored.phase() != "upcoming":
            raise RuleViolation("A race can only be edited before it opens.")
        merged = {field: getattr(stored, field) for field in SETTINGS_FIELDS} | values
        race_validate_settings(merged)
        for field, value in values.items():
            setattr(stored, field, value)
        _full_clean(stored)
        stored.save()
    return stored


def race_clone(race: Race, name: str, opens_at, closes_at) -> Race:
    values = {field: getattr(race, field) for field in SETTINGS_FIELDS} | {
        "name": name, "opens_at": opens_at, "closes_at": closes_at,
    }
    return race_create(race.kind, organiser=race.organiser, **values)


INVITE_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")  # what secrets.token_urlsafe produces


def race_by_invite_code(code: str) -> Race | None:
    """The community race a still-valid invite code opens (None for unknown, reset or expired codes)."""
    code = (code or "").strip()
    if not INVITE_CODE.fullmatch(code):
        return None
    race = Race.objects.select_related("track", "organiser__racer").filter(
        kind=Race.Kind.COMMUNITY, invite_code=code
    ).first()
    return race if race is not None and race.phase() != "closed" else None


def race_join(code: str, user) -> Race:
    """Join a community race with its invite code; refused once the code was reset or the race closed."""
    code = (code or "").strip()
    race = None
    if INVITE_CODE.fullmatch(code):
        race = Race.objects.filter(kind=Race.Kind.COMMUNITY, invite_code=code).first()
    if race is None:
        raise RuleViolation("This invite code is not valid: it may have been reset by the organiser.", "bad_code")
    if race.phase() == "closed":
        raise RuleViolation("This race has closed, so its invite code has expired.", "expired_code")
    membership, created = RaceParticipant.objects.get_or_create(race=race, user=user)
    if not created and membership.removed_at is not None:
        raise RuleViolation("The organiser removed you from this race.", "removed")
    return race


def race_reset_invite_code(race: Race, by) -> str:
    """A new code (and link) for the race: the old one stops working at once; members stay members."""
    _require_organiser(race, by)
    _set_invite_code(race)
    race.save(update_fields=["invite_code", "invite_code_version", "invite_code_created_at"])
    return race.invite_code


def race_invite_path(race: Race) -> str:
    """The join link to share (relative; pages make it absolute)."""
    from django.urls import reverse

    return reverse("races:race_join_code", kwargs={"code": race.invite_code})


def race_close_early(race: Race, by) -> None:
    _require_organiser(race, by)
    if race.phase() == "closed":
        raise RuleViolation("The race is closed already.")
    race.closed_early_at = timezone.now()
    race.save(update_fields=["closed_early_at"])


def race_delete(race: Race, by) -> None:
    """Delete a community race with its submissions, runs and their files (organiser or staff)."""
    from races.services.runs import run_discard

    _require_organiser(race, by)
    with transaction.atomic():
        for submission in race.submissions.filter(run__isnull=False):
            run_discard(submission)
        race.delete()


def participant_remove(race: Race, by, user) -> None:
    _require_organiser(race, by)
    if user.pk == race.organiser_id:
        raise RuleViolation("The organiser cannot be removed.")
    updated = RaceParticipant.objects.filter(race=race, user=user, removed_at__isnull=True).update(
        removed_at=timezone.now()
    )
    if not updated:
        raise RuleViolation("This racer is not a participant.")


PHASES = ("open", "upcoming", "closed")


def races_in_phase(races: QuerySet[Race], phase: str, now=None) -> QuerySet[Race]:
    """The races of ``races`` that are ``open``, ``upcoming`` or ``closed`` (same rule as ``Race.phase``),
    in the order a racer wants them: closing soonest, opening soonest, most recently closed."""
    now = now or timezone.now()
    closed = Q(closes_at__lte=now) | Q(closed_early_at__lte=now)
    if phase == "upcoming":
        return races.filter(opens_at__gt=now).exclude(closed).order_by("opens_at", "pk")
    if phase == "open":
        return races.filter(opens_at__lte=now).exclude(closed).order_by("closes_at", "pk")
    if phase == "closed":
        return races.filter(closed).order_by("-closes_at", "-pk")
    raise RuleViolation(f"The phase must be one of {', '.join(PHASES)}.")


def races_by_phase(races: QuerySet[Race], closed_limit: int | None = None) -> dict[str, list[Race]]:
    """Open, upcoming and closed races, each list in ``races_in_phase`` order (the most recent
    ``closed_limit`` closed races only, when given: that list grows forever)."""
    now = timezone.now()
    grouped = {phase: races_in_phase(races, phase, now) for phase in PHASES}
    if closed_limit is not None:
        grouped["closed"] = grouped["closed"][:closed_limit]
    return {phase: list(queryset) for phase, queryset in grouped.items()}


def _require_organiser(race: Race, user) -> None:
    if not race.is_community:
        raise RuleViolation("Virtual-circuit races are managed by the league admins.", "forbidden")
    if race.organiser_id != getattr(user, "pk", None) and not getattr(user, "is_staff", False):
        raise RuleViolation("Only the organiser can manage this race.", "forbidden")


def _set_invite_code(race: Race) -> None:
    # 96 random bits: unguessable, and short enough to read out or paste.
    race.invite_code = secrets.token_urlsafe(12)
    race.invite_code_version += 1
    race.invite_code_created_at = timezone.now()


def _full_clean(race: Race) -> None:
    """Model constraints as a RuleViolation with the field names a racer recognises (never a server error)."""
    try:
        race.full_clean(exclude=["slug", "invite_code", "organiser"])
    except ValidationError as error:
        problems = [
            f"{Race._meta.get_field(field).verbose_name.capitalize() if field != '__all__' else 'Race'}: {msg}"
            for field, messages in error.message_dict.items()
            for msg in messages
        ]
        raise RuleViolation(" ".join(problems)) from None


def _unique_slug(name: str, private: bool = False) -> str:
    """A URL name from the race name. Private races get a random suffix: their addresses cannot be guessed,
    and a taken name never tells anyone that a private race of that name exists."""
    base = slugify(name)[:80] or "race"
    if private:
        while True:
            slug = f"{base}-{secrets.token_hex(3)}"
            if not Race.objects.filter(slug=slug).exists():
                return slug
    slug, n = base, 2
    while Race.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def default_window(days: int = 30):
    now = timezone.now()
    return now, now + timedelta(days=days)


