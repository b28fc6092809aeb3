"""A race's settings: the cross-field rules of SPEC §8, each race type's defaults, custom box positions
(parsed from the API and the web form, written back for the form) and where the race's boxes or bots start."""

from __future__ import annotations

import contextlib
import math
import random
from typing import Any

import numpy as np

from races.models import Race
from races.services.errors import RuleViolation
from races.services.tracks import track_sim
from sim.race.scoring import RankingMethod
from sim.world.objects import LANES, MAX_BOT_SPEED, MAX_BOTS, MAX_BOXES, objects_from_spec

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
# League dates (races, seasons): a year 56 or 20256 is a typo, not a schedule. The API's schema states the same range.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
DATE_OUT_OF_RANGE = f"Give a date between the years {EARLIEST_YEAR} and {LATEST_YEAR}."


def league_date_check(values: dict, *fields: str) -> None:
    """Every given date among ``fields`` lies in the league's years (the admin, the forms and the API alike)."""
    for field in fields:
        moment = values.get(field)
        if moment is not None and not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
            raise RuleViolation(DATE_OUT_OF_RANGE, field=field)


def race_validate_settings(values: dict) -> None:
    """Cross-field rules of SPEC §8, shared by the admin, the web forms and the API.

    Give it ``race_with_type_defaults(values)``: the race type's own settings must be filled, every other
    type's settings empty."""
    total, minimum = values.get("total_laps"), values.get("minimum_laps")
    if total is not None and not 1 <= total <= 10:
        raise RuleViolation("Total laps must be between 1 and 10.", field="total_laps")
    if minimum is not None and total is not None and not 1 <= minimum <= total:
        raise RuleViolation("Minimum laps must be between 1 and the total laps.", field="minimum_laps")
    if values.get("ranking_method") == RankingMethod.TOTAL_TIME and minimum != total:
        raise RuleViolation("Total-time races count every lap: minimum laps must equal total laps.",
                            field="minimum_laps")
    _validate_race_type_settings(values)
    track, direction = values.get("track"), values.get("direction")
    if track is not None and direction and not track.supports(direction):
        raise RuleViolation(f"{track.title} is raced {track.get_directions_display().lower()}.", field="direction")
    league_date_check(values, "opens_at", "closes_at")
    opens, closes = values.get("opens_at"), values.get("closes_at")
    if opens and closes and closes <= opens:
        raise RuleViolation("The race must close after it opens.", field="closes_at")
    for field in ("off_track_penalty_s", "collision_penalty_s"):
        if values.get(field) is not None and not 0 <= values[field] <= 60:
            raise RuleViolation("Penalties must be between 0 and 60 seconds.", field=field)
    if values.get("time_cap_s") is not None and not 30 <= values["time_cap_s"] <= 1200:
        raise RuleViolation("The run time cap must be between 30 seconds and 20 minutes.", field="time_cap_s")


def _validate_race_type_settings(values: dict) -> None:
    race_type = values.get("race_type") or RaceType.TIME_TRIAL
    if race_type not in RaceType.values:
        raise RuleViolation(f"Race type must be one of {', '.join(RaceType.values)}.")
    for other, fields in TYPE_SETTINGS.items():
        given = [field for field in fields if _is_set(values.get(field))]
        if other != race_type and given:
            names = ", ".join(str(Race._meta.get_field(field).verbose_name) for field in given)
            raise RuleViolation(f"{names.capitalize()}: only for {RaceType(other).label.lower()} races; "
                                f"leave empty for a {RaceType(race_type).label.lower()}.", field=given[0])
    if race_type == RaceType.OBJECT_AVOIDANCE:
        _validate_boxes(values)
    elif race_type == RaceType.HEAD_TO_BOT:
        _validate_bots(values)
    elif race_type == RaceType.HEAD_TO_HEAD:
        size = values.get("bracket_size")
        if not _is_int(size) or size not in BRACKET_SIZES:
            raise RuleViolation(f"The bracket size must be one of {', '.join(map(str, BRACKET_SIZES))} racers.",
                                field="bracket_size")


def _validate_boxes(values: dict) -> None:
    count, placement = values.get("box_count"), values.get("box_placement")
    if not _is_int(count) or not 1 <= count <= MAX_BOXES:
        raise RuleViolation(f"The number of boxes must be between 1 and {MAX_BOXES}.", field="box_count")
    if placement not in Race.BoxPlacement.values:
        raise RuleViolation(f"Box placement must be one of {', '.join(Race.BoxPlacement.values)}.",
                            field="box_placement")
    positions = values.get("box_positions")
    if placement != Race.BoxPlacement.CUSTOM:
        if _is_set(positions):
            raise RuleViolation("Box positions are only used with the custom placement: leave them empty.",
                                field="box_positions")
        return
    positions = race_parse_box_positions(positions)
    if len(positions) != count:
        raise RuleViolation(f"Give one position per box: {count} boxes, {len(positions)} positions.",
                            field="box_positions")
    track = values.get("track")
    if track is not None:
        _check_box_gaps([p["progress"] / 100 for p in positions], track.length_m)


def _check_box_gaps(ndists: list[float], length_m: float) -> None:
    """Chosen positions too close together (or to the start line, where every run begins) wall the road off."""
    marks = sorted(ndists)
    gaps = [b - a for a, b in zip([0.0, *marks], [*marks, 1.0], strict=True)]
    if min(gaps) * length_m < BOX_MIN_GAP_M:
        raise RuleViolation(f"Boxes must be at least {BOX_MIN_GAP_M:g} m apart and from the start line "
                            f"(1 % of this track is {length_m / 100:.2f} m).", field="box_positions")


def _validate_bots(values: dict) -> None:
    count, speed, every = values.get("bot_count"), values.get("bot_speed_mps"), values.get("bot_lane_change_s")
    if not _is_int(count) or not 1 <= count <= MAX_BOTS:
        raise RuleViolation(f"The number of bot cars must be between 1 and {MAX_BOTS}.", field="bot_count")
    low, high = BOT_SPEED_RANGE
    if not _is_number(speed) or not low <= speed <= high:
        raise RuleViolation(f"The bot speed must be between {low:g} and {high:g} m/s.", field="bot_speed_mps")
    low, high = BOT_LANE_CHANGE_RANGE
    if every is not None and (not _is_number(every) or not low <= every <= high):
        raise RuleViolation(f"Bots change lanes every {low:g} to {high:g} s (leave empty: they keep their lane).",
                            field="bot_lane_change_s")


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


def race_type_objects_spec(race_type: str) -> dict | None:
    """The obstacles a race of ``race_type`` has with the type's default settings (none for a time trial)."""
    return race_objects_spec(Race(**race_with_type_defaults({"race_type": race_type})))


def race_box_corners(race: Race) -> list[np.ndarray]:
    """Corners (4, 2) of the race's obstacle boxes, as every run meets them (none for other race types).
    Bot cars move, and the trace does not record them: they are not drawn."""
    spec = race_objects_spec(race)
    if spec is None or spec["kind"] != "boxes":
        return []
    return objects_from_spec(track_sim(race.track, race.direction), spec).rectangles()


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
