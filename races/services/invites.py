"""Community-race membership: invite codes (new, reset, looked up), joining with one, removing a participant."""

from __future__ import annotations

import re
import secrets

from django.urls import reverse
from django.utils import timezone

from races.models import Race, RaceParticipant, RacePhase
from races.services.errors import RuleViolation
from races.services.visibility import race_require_organiser

INVITE_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")  # what secrets.token_urlsafe produces


def race_new_invite_code(race: Race) -> None:
    """Give ``race`` a fresh invite code in memory (the caller saves it): the old code stops working."""
    # 96 random bits: unguessable, and short enough to read out or paste.
    race.invite_code = secrets.token_urlsafe(12)
    race.invite_code_version += 1
    race.invite_code_created_at = timezone.now()


def race_by_invite_code(code: str) -> Race | None:
    """The community race a still-valid invite code opens (None for unknown, reset or expired codes)."""
    code = (code or "").strip()
    if not INVITE_CODE.fullmatch(code):
        return None
    race = Race.objects.select_related("track", "organiser__racer").filter(
        kind=Race.Kind.COMMUNITY, invite_code=code
    ).first()
    return race if race is not None and race.phase() != RacePhase.CLOSED else None


def race_invite_problem(code: str) -> RuleViolation | None:
    """Why an invite code opens no race (unknown or reset, or the race closed), or None when it works."""
    try:
        _race_of_valid_code(code)
    except RuleViolation as problem:
        return problem
    return None


def _race_of_valid_code(code: str) -> Race:
    code = (code or "").strip()
    race = None
    if INVITE_CODE.fullmatch(code):
        race = Race.objects.filter(kind=Race.Kind.COMMUNITY, invite_code=code).first()
    if race is None:
        raise RuleViolation("This invite code is not valid: it may have been reset by the organiser. Ask them for "
                            "the new link.", "bad_code")
    if race.phase() == RacePhase.CLOSED:
        raise RuleViolation("This race has closed, so its invite code has expired.", "expired_code")
    return race


def race_join(code: str, user) -> Race:
    """Join a community race with its invite code; refused once the code was reset or the race closed."""
    race = _race_of_valid_code(code)
    membership, created = RaceParticipant.objects.get_or_create(race=race, user=user)
    if not created and membership.removed_at is not None:
        raise RuleViolation("The organiser removed you from this race.", "removed")
    return race


def race_reset_invite_code(race: Race, by) -> str:
    """A new code (and link) for the race: the old one stops working at once; members stay members."""
    race_require_organiser(race, by)
    race_new_invite_code(race)
    race.save(update_fields=["invite_code", "invite_code_version", "invite_code_created_at"])
    return race.invite_code


def race_invite_path(race: Race) -> str:
    """The join link to share (relative; pages make it absolute)."""
    return reverse("races:race_join_code", kwargs={"code": race.invite_code})


def participant_remove(race: Race, by, user) -> None:
    """The organiser removes ``user``: the race disappears for them and their invite code no longer works."""
    race_require_organiser(race, by)
    if user.pk == race.organiser_id:
        raise RuleViolation("The organiser cannot be removed.")
    updated = RaceParticipant.objects.filter(race=race, user=user, removed_at__isnull=True).update(
        removed_at=timezone.now()
    )
    if not updated:
        raise RuleViolation("This racer is not a participant.")


def participant_readmit(race: Race, by, user) -> None:
    """The organiser takes back a racer they removed: the race and their runs in it are theirs to see again."""
    race_require_organiser(race, by)
    updated = RaceParticipant.objects.filter(race=race, user=user, removed_at__isnull=False).update(removed_at=None)
    if not updated:
        raise RuleViolation("This racer was not removed from the race.")
