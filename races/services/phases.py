"""Races by phase (open, upcoming, closed): the queries behind race lists, with the order a racer wants."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from races.models import Race, RacePhase
from races.services.errors import RuleViolation

PHASES: tuple[str, ...] = tuple(RacePhase.values)  # ("open", "upcoming", "closed"): the lists' order


def races_in_phase(races: QuerySet[Race], phase: str, now=None) -> QuerySet[Race]:
    """The races of ``races`` that are ``open``, ``upcoming`` or ``closed`` (same rule as ``Race.phase``),
    in the order a racer wants them: closing soonest, opening soonest, most recently closed."""
    now = now or timezone.now()
    closed = Q(closes_at__lte=now) | Q(closed_early_at__lte=now)
    if phase == RacePhase.UPCOMING:
        return races.filter(opens_at__gt=now).exclude(closed).order_by("opens_at", "pk")
    if phase == RacePhase.OPEN:
        return races.filter(opens_at__lte=now).exclude(closed).order_by("closes_at", "pk")
    if phase == RacePhase.CLOSED:
        return races.filter(closed).order_by("-closes_at", "-pk")
    raise RuleViolation(f"The phase must be one of {', '.join(PHASES)}.")


def races_by_phase(races: QuerySet[Race], closed_limit: int | None = None) -> dict[RacePhase, list[Race]]:
    """Open, upcoming and closed races, each list in ``races_in_phase`` order (the most recent
    ``closed_limit`` closed races only, when given: that list grows forever)."""
    now = timezone.now()
    grouped = {phase: races_in_phase(races, phase, now) for phase in RacePhase}
    if closed_limit is not None:
        grouped[RacePhase.CLOSED] = grouped[RacePhase.CLOSED][:closed_limit]
    return {phase: list(queryset) for phase, queryset in grouped.items()}
