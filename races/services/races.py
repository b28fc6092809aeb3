"""Races: create (with a unique slug and, for community races, an invite code), edit before opening, clone,
open or close now, delete. Settings rules live in ``race_settings``, membership in ``invites``."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify

from races.models import Race, RacePhase
from races.services.errors import RuleViolation
from races.services.invites import race_new_invite_code
from races.services.race_settings import (
    SETTINGS_FIELDS,
    TYPE_SETTINGS,
    race_validate_settings,
    race_with_type_defaults,
)
from races.services.runs import run_discard
from races.services.visibility import race_require_organiser


def race_create(kind: str, organiser=None, **values) -> Race:
    """Schedule a race (admins: virtual circuit) or create a private community race with a fresh invite code."""
    if kind not in Race.Kind.values:
        raise RuleViolation(f"Unknown race kind '{kind}'.")
    values = race_with_type_defaults(values)
    race_validate_settings(values)
    slug = _unique_slug(values.get("name") or "", private=kind == Race.Kind.COMMUNITY)
    race = Race(kind=kind, organiser=organiser, slug=slug, **values)
    if kind == Race.Kind.COMMUNITY:
        race_new_invite_code(race)
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
        race_require_organiser(stored, by)
        if stored.phase() != RacePhase.UPCOMING:
            raise RuleViolation("A race can only be edited before it opens.")
        merged = {field: getattr(stored, field) for field in SETTINGS_FIELDS} | values
        if merged["race_type"] != stored.race_type:  # the old type's stored settings go with it
            for field in TYPE_SETTINGS.get(stored.race_type, ()):
                if field not in values:
                    merged[field] = "" if field == "box_placement" else None
        merged = race_with_type_defaults(merged)
        race_validate_settings(merged)
        for field in SETTINGS_FIELDS:
            setattr(stored, field, merged[field])
        _full_clean(stored)
        stored.save()
    return stored


def race_clone(race: Race, name: str, opens_at, closes_at) -> Race:
    """A new race with ``race``'s settings under another name and schedule (e.g. the next round)."""
    values = {field: getattr(race, field) for field in SETTINGS_FIELDS} | {
        "name": name, "opens_at": opens_at, "closes_at": closes_at,
    }
    return race_create(race.kind, organiser=race.organiser, **values)


def races_open_now(races: QuerySet[Race]) -> int:
    """Open the upcoming races of ``races`` at once (admin); returns how many opened. Races that are open,
    closed or closed early are left as they are."""
    now = timezone.now()
    return races.filter(opens_at__gt=now, closes_at__gt=now, closed_early_at__isnull=True).update(opens_at=now)


def races_close_now(races: QuerySet[Race]) -> int:
    """Close the races of ``races`` that are not closed yet, as an early close (admin); returns how many closed."""
    now = timezone.now()
    return races.filter(closes_at__gt=now, closed_early_at__isnull=True).update(closed_early_at=now)


def race_close_early(race: Race, by) -> None:
    """The organiser closes their community race now: no more submissions, the invite code expires."""
    race_require_organiser(race, by)
    if race.phase() == RacePhase.CLOSED:
        raise RuleViolation("The race is closed already.")
    race.closed_early_at = timezone.now()
    race.save(update_fields=["closed_early_at"])


def race_delete(race: Race, by) -> None:
    """Delete a community race with its submissions, runs and their files (organiser or staff)."""
    race_require_organiser(race, by)
    with transaction.atomic():
        for submission in race.submissions.filter(run__isnull=False):
            run_discard(submission)
        race.delete()


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
