"""The league admins' schedule: repeating a virtual-circuit race into the next period or month after month, and
the evaluation queue at a glance. Creating, opening and closing races stays in ``races.services.races``."""

from __future__ import annotations

import calendar
from datetime import date, datetime

from django.db import transaction
from django.utils import timezone

from evaluator.engine import EvaluationAttempt, pending_in_fair_order, target_for
from races.models import Race
from races.services.errors import RuleViolation
from races.services.races import race_clone

MAX_MONTHLY_REPEATS = 12


def race_require_scheduler(race: Race, by) -> None:
    """Virtual-circuit races are scheduled by staff only."""
    if race.kind != Race.Kind.VIRTUAL_CIRCUIT or not getattr(by, "is_staff", False):
        raise RuleViolation("Only the league admins schedule virtual-circuit races.", "forbidden")


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months later (the 31st becomes the month's last day)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def race_clone_next(race: Race, by) -> Race:
    """The same race again in the next period: it opens when this one closes (or now, if that has passed), for
    the same length of time. It stays in the race's season when it still fits the season's dates."""
    race_require_scheduler(race, by)
    opens = max(timezone.now().replace(microsecond=0), race.effective_close)
    return _clone(race, f"{race.name} (next round)", opens, opens + (race.closes_at - race.opens_at))


def race_repeat_monthly(race: Race, months: int, by) -> list[Race]:
    """``months`` copies of the race, each one calendar month after the one before ("repeat monthly"), named
    after their month. Each stays in the race's season when it fits the season's dates."""
    race_require_scheduler(race, by)
    if not 1 <= months <= MAX_MONTHLY_REPEATS:
        raise RuleViolation(f"Repeat for 1 to {MAX_MONTHLY_REPEATS} months.")
    with transaction.atomic():
        clones = []
        for n in range(1, months + 1):
            opens, closes = add_months(race.opens_at, n), add_months(race.closes_at, n)
            name = f"{race.name[:60]} ({timezone.localtime(opens):%B %Y})"
            clones.append(_clone(race, name, opens, closes))
    return clones


def _clone(race: Race, name: str, opens_at: datetime, closes_at: datetime) -> Race:
    clone = race_clone(race, name, opens_at, closes_at)
    season = race.season
    if season is not None and season.finished_at is None and season.starts_at <= opens_at and \
            closes_at <= season.ends_at:
        clone.season = season
        clone.save(update_fields=["season"])
    return clone


def evaluation_queue_glance(limit: int = 8) -> dict:
    """What the evaluators are doing: the runs in progress and the next ``limit`` waiting, in the order the
    workers will take them, each with the label its app gives it."""
    running = list(EvaluationAttempt.objects.filter(status=EvaluationAttempt.Status.RUNNING)
                   .order_by("started_at", "pk"))
    waiting = pending_in_fair_order()
    labels = _labels(running + waiting[:limit])
    now = timezone.now()
    return {
        "running": [{"label": labels.get((a.target_kind, a.target_id), f"{a.target_kind} {a.target_id}"),
                     "since_s": int((now - a.started_at).total_seconds()) if a.started_at else None}
                    for a in running],
        "waiting_count": len(waiting),
        "next": [{"position": position, "label": labels.get((a.target_kind, a.target_id),
                                                            f"{a.target_kind} {a.target_id}"),
                  "waiting_s": int((now - a.created_at).total_seconds())}
                 for position, a in enumerate(waiting[:limit], start=1)],
        "oldest_wait_s": max((int((now - a.created_at).total_seconds()) for a in waiting), default=None),
    }


def _labels(attempts: list[EvaluationAttempt]) -> dict[tuple[str, int], str]:
    ids: dict[str, set[int]] = {}
    for attempt in attempts:
        ids.setdefault(attempt.target_kind, set()).add(attempt.target_id)
    labels = {}
    for kind, target_ids in ids.items():
        try:
            described = target_for(kind).describe(target_ids)
        except LookupError:  # a kind no app registers any more
            continue
        labels |= {(kind, pk): label.text for pk, label in described.items()}
    return labels


CALENDAR_RACES_PER_DAY = 3


def schedule_calendar(races: list[Race], today: date, months: int = 2) -> list[dict]:
    """Month grids from ``today``'s month (weeks Monday first), each day with the races open on it (in the current
    time zone): what the schedule page draws above its lists. Show it the races that overlap those months."""
    grids = []
    for n in range(months):
        first = add_months(datetime(today.year, today.month, 1), n).date()
        weeks = []
        for week in calendar.Calendar(firstweekday=0).monthdatescalendar(first.year, first.month):
            days = []
            for day in week:
                running = [race for race in races
                           if timezone.localtime(race.opens_at).date() <= day
                           <= timezone.localtime(race.effective_close).date()] if day.month == first.month else []
                days.append({"day": day, "in_month": day.month == first.month, "today": day == today,
                             "races": running[:CALENDAR_RACES_PER_DAY],
                             "more": max(0, len(running) - CALENDAR_RACES_PER_DAY)})
            weeks.append(days)
        grids.append({"title": f"{first:%B %Y}", "weeks": weeks})
    return grids
