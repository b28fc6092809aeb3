"""Races: visibility (the one place private races are hidden), scheduling rules and community races."""

from __future__ import annotations

import contextlib
import math
import random
import re
import secrets
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from races.models import Race, RaceParticipant
from races.services.errors import RuleViolation
from sim.race.scoring import RankingMethod
from sim.world.objects import LANES, MAX_BOT_SPEED, MAX_BOTS, MAX_BOXES

RaceType = Race.RaceType
BOX_SETTINGS = ("box_count", "box_placement", "box_positions")
BOT_SETTINGS = ("bot_count", "bot_speed_mps", "bot_lane_change_s")
BRACKET_SETTINGS = ("bracket_size",)
# The settings that belong to one race type only: empty for every other type.
TYPE_SETTINGS = {RaceType.OBJECT_AVOIDANCE: BOX_SETTINGS, RaceType.HEAD_TO_BOT: BOT_SETTINGS,
                 RaceType.HEAD_TO_HEAD: BRACKET_SETTINGS}
TYPE_DEFAULTS = {"box_count": 3, "box_placement": Race.BoxPlacement.EVEN, "bot_count": 3, "bot_speed_mps": 1.0,
                 "bracket_size": 8}
BRACKET_SIZES = (2, 4, 8, 16)
SETTINGS_FIELDS = (
    "name", "description", "race_type", "track", "direction", "ranking_method", "total_laps", "minimum_laps",
    "off_track_penalty_s", "collision_penalty_s", "max_resets", "time_cap_s", "opens_at", "closes_at",
    "max_submissions_per_racer", "submission_cooldown_s", *BOX_SETTINGS, *BOT_SETTINGS, *BRACKET_SETTINGS,
)
BOT_SPEED_RANGE = (0.2, MAX_BOT_SPEED)  # m/s: no faster than the racers themselves
BOT_LANE_CHANGE_RANGE = (2.0, 60.0)  # seconds between lane changes
BOX_MIN_GAP_M = 1.0  # along the lap, between chosen box positions and from the start line


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
    """Cross-field rules of SPEC §8, shared by the admin, the web forms and the API.

    Give it ``race_with_type_defaults(values)``: the race type's own settings must be filled, every other
    type's settings empty."""
    total, minimum = values.get("total_laps"), values.get("minimum_laps")
    if total is not None and not 1 <= total <= 10:
        raise RuleViolation("Total laps must be between 1 and 10.")
    if minimum is not None and total is not None and not 1 <= minimum <= total:
        raise RuleViolation("Minimum laps must be between 1 and the total laps.")
    if values.get("ranking_method") == RankingMethod.TOTAL_TIME and minimum != total:
        raise RuleViolation("Total-time races count every lap: minimum laps must equal total laps.")
    _validate_race_type_settings(values)
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


def _validate_race_type_settings(values: dict) -> None:
    race_type = values.get("race_type") or RaceType.TIME_TRIAL
    if race_type not in RaceType.values:
        raise RuleViolation(f"Race type must be one of {', '.join(RaceType.values)}.")
    for other, fields in TYPE_SETTINGS.items():
        given = [field for field in fields if _is_set(values.get(field))]
        if other != race_type and given:
            names = ", ".join(str(Race._meta.get_field(field).verbose_name) for field in given)
            raise RuleViolation(f"{names.capitalize()}: only for {RaceType(other).label.lower()} races; "
                                f"leave empty for a {RaceType(race_type).label.lower()}.")
    if race_type == RaceType.OBJECT_AVOIDANCE:
        _validate_boxes(values)
    elif race_type == RaceType.HEAD_TO_BOT:
        _validate_bots(values)
    elif race_type == RaceType.HEAD_TO_HEAD:
        size = values.get("bracket_size")
        if not _is_int(size) or size not in BRACKET_SIZES:
            raise RuleViolation(f"The bracket size must be one of {', '.join(map(str, BRACKET_SIZES))} racers.")


def _validate_boxes(values: dict) -> None:
    count, placement = values.get("box_count"), values.get("box_placement")
    if not _is_int(count) or not 1 <= count <= MAX_BOXES:
        raise RuleViolation(f"The number of boxes must be between 1 and {MAX_BOXES}.")
    if placement not in Race.BoxPlacement.values:
        raise RuleViolation(f"Box placement must be one of {', '.join(Race.BoxPlacement.values)}.")
    positions = values.get("box_positions")
    if placement != Race.BoxPlacement.CUSTOM:
        if _is_set(positions):
            raise RuleViolation("Box positions are only used with the custom placement: leave them empty.")
        return
    positions = race_parse_box_positions(positions)
    if len(positions) != count:
        raise RuleViolation(f"Give one position per box: {count} boxes, {len(positions)} positions.")
    track = values.get("track")
    if track is not None:
        _check_box_gaps([p["progress"] / 100 for p in positions], track.length_m)


def _check_box_gaps(ndists: list[float], length_m: float) -> None:
    """Chosen positions too close together (or to the start line, where every run begins) wall the road off."""
    marks = sorted(ndists)
    gaps = [b - a for a, b in zip([0.0, *marks], [*marks, 1.0], strict=True)]
    if min(gaps) * length_m < BOX_MIN_GAP_M:
        raise RuleViolation(f"Boxes must be at least {BOX_MIN_GAP_M:g} m apart and from the start line "
                            f"(1 % of this track is {length_m / 100:.2f} m).")


def _validate_bots(values: dict) -> None:
    count, speed, every = values.get("bot_count"), values.get("bot_speed_mps"), values.get("bot_lane_change_s")
    if not _is_int(count) or not 1 <= count <= MAX_BOTS:
        raise RuleViolation(f"The number of bot cars must be between 1 and {MAX_BOTS}.")
    low, high = BOT_SPEED_RANGE
    if not _is_number(speed) or not low <= speed <= high:
        raise RuleViolation(f"The bot speed must be between {low:g} and {high:g} m/s.")
    low, high = BOT_LANE_CHANGE_RANGE
    if every is not None and (not _is_number(every) or not low <= every <= high):
        raise RuleViolation(f"Bots change lanes every {low:g} to {high:g} s (leave empty: they keep their lane).")


def race_parse_box_positions(positions: Any) -> list[dict]:
    """Custom box positions, from the API's list (``[{"progress": 25, "lane": "inner"}, ...]``) or the web form's
    text (``"25 inner, 60 outer"``): progress is the percent of the lap in the direction raced."""
    if isinstance(positions, str):
        items = []
        for part in filter(None, (p.strip() for p in positions.replace(";", ",").split(","))):
            words = part.replace("%", " ").split()
            if len(words) != 2:
                raise RuleViolation(f"Write each box as 'percent lane', e.g. '25 inner' (not '{part[:40]}').")
            try:
                items.append({"progress": float(words[0]), "lane": words[1].lower()})
            except ValueError:
                raise RuleViolation(f"'{words[0][:20]}' is not a percent of the lap.") from None
        positions = items
    if not isinstance(positions, list) or not 1 <= len(positions) <= MAX_BOXES:
        raise RuleViolation(f"Box positions must be a list of 1 to {MAX_BOXES} positions.")
    parsed = []
    for item in positions:
        if not isinstance(item, dict) or set(item) != {"progress", "lane"}:
            raise RuleViolation('Each box position is {"progress": percent of the lap, "lane": "inner" or "outer"}.')
        progress, lane = item["progress"], item["lane"]
        if not _is_number(progress) or not 0 < progress < 100:
            raise RuleViolation("A box position's progress is a percent of the lap, between 0 and 100.")
        if lane not in LANES:
            raise RuleViolation(f"A box's lane is {' or '.join(LANES)}.")
        parsed.append({"progress": round(float(progress), 2), "lane": lane})
    return sorted(parsed, key=lambda p: p["progress"])


def race_format_box_positions(positions: list[dict] | None) -> str:
    """The web form's text for stored custom positions (read back by ``race_parse_box_positions``)."""
    return ", ".join(f"{p['progress']:g} {p['lane']}" for p in positions or [])


def race_with_type_defaults(values: dict) -> dict:
    """``values`` with the chosen race type's empty settings filled with their defaults (custom box positions
    set the number of boxes). Settings of other types are left for ``race_validate_settings`` to refuse."""
    filled = dict(values)
    race_type = filled.get("race_type") or RaceType.TIME_TRIAL
    for field in TYPE_SETTINGS.get(race_type, ()):
        if not _is_set(filled.get(field)) and field in TYPE_DEFAULTS:
            filled[field] = TYPE_DEFAULTS[field]
    if (race_type == RaceType.OBJECT_AVOIDANCE and filled.get("box_placement") == Race.BoxPlacement.CUSTOM
            and values.get("box_count") is None):
        with contextlib.suppress(RuleViolation):  # race_validate_settings reports bad positions
            filled["box_count"] = len(race_parse_box_positions(filled.get("box_positions")))
    return filled


def race_objects_spec(race: Race) -> dict | None:
    """Where the race's boxes or bot cars start, in the evaluator's format (``sim.world.objects.objects_from_spec``).

    Fixed layouts space the objects evenly (start line excluded) on alternating lanes. Random box layouts are
    drawn from the race's own seed with ``random.random``, whose sequence Python keeps stable across versions:
    every evaluation on the race sees the same boxes, so the same archive gets the same result.
    """
    def items(ndists: list[float], lanes: list[str]) -> list[dict]:
        return [{"ndist": round(n, 6), "lane": lane} for n, lane in zip(ndists, lanes, strict=True)]

    def alternating(k: int) -> list[str]:
        return [LANES[i % 2] for i in range(k)]

    def evenly_spaced(k: int) -> list[float]:  # the start line excluded
        return [(i + 1) / (k + 1) for i in range(k)]

    if race.race_type == RaceType.OBJECT_AVOIDANCE:
        k = race.box_count
        if race.box_placement == Race.BoxPlacement.CUSTOM:
            positions = race_parse_box_positions(race.box_positions)
            return {"kind": "boxes", "items": items([p["progress"] / 100 for p in positions],
                                                     [p["lane"] for p in positions])}
        if race.box_placement == Race.BoxPlacement.RANDOM:
            rng = random.Random(race.objects_seed)
            # Each box somewhere in the middle half of its own slot: never on the start line, never stacked.
            ndists = [(i + 1 + 0.5 * (rng.random() - 0.5)) / (k + 1) for i in range(k)]
            lanes = [LANES[0] if rng.random() < 0.5 else LANES[1] for _ in range(k)]
            return {"kind": "boxes", "items": items(ndists, lanes)}
        return {"kind": "boxes", "items": items(evenly_spaced(k), alternating(k))}
    if race.race_type == RaceType.HEAD_TO_BOT:
        k = race.bot_count
        return {"kind": "bots", "items": items(evenly_spaced(k), alternating(k)),
                "speed": float(race.bot_speed_mps), "lane_change_every_s": race.bot_lane_change_s}
    return None


def _is_set(value: Any) -> bool:
    return value not in (None, "")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float (JSON allows any length)
        return False


def race_create(kind: str, organiser=None, **values) -> Race:
    """Schedule a race (admins: virtual circuit) or create a private community race with a fresh invite code."""
    if kind not in Race.Kind.values:
        raise RuleViolation(f"Unknown race kind '{kind}'.")
    values = race_with_type_defaults(values)
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


