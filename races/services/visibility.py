"""Who may see a race and who may manage it: the one place private community races are hidden."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from races.models import Race, RaceParticipant
from races.services.errors import RuleViolation


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


def race_removal(user, races: QuerySet[Race]) -> RaceParticipant | None:
    """``user``'s membership of one of ``races`` that its organiser ended, if any: the removed racer is told so
    (and may ask to be re-admitted) rather than shown a "not found" for a race they were in."""
    if not getattr(user, "is_authenticated", False):
        return None
    return (RaceParticipant.objects.select_related("race__organiser__racer")
            .filter(race__in=races, user=user, removed_at__isnull=False).first())


def race_is_member(race: Race, user) -> bool:
    """May ``user`` race in ``race``: everyone in a virtual-circuit race; the organiser and current
    participants in a community race."""
    if not race.is_community:
        return True
    if race.organiser_id == getattr(user, "pk", None):
        return True
    return RaceParticipant.objects.filter(race=race, user=user, removed_at__isnull=True).exists()


def race_require_organiser(race: Race, user) -> None:
    """Refuse (code ``forbidden``) unless ``user`` organises the community race ``race`` or is staff."""
    if not race.is_community:
        raise RuleViolation("Virtual-circuit races are managed by the league admins.", "forbidden")
    if race.organiser_id != getattr(user, "pk", None) and not getattr(user, "is_staff", False):
        raise RuleViolation("Only the organiser can manage this race.", "forbidden")
