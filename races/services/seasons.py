"""Seasons: races grouped into a championship, points by finishing position, standings, and the final.

Standings are derived, never stored: they are computed from the races' leaderboards (the one record of who
finished where), so a result disqualified after a race changes the standings at once, and an open race's
current board counts as provisional. Rules:

- Position in a race: the leaderboard's order, except that equal times share a position, and share the points
  of the places they occupy equally (two racers tied for 2nd with 18, 15 for 2nd and 3rd get 16.5 each).
- Points: ``season.points_table`` by position (places beyond it score 0); only each racer's best
  ``season.best_results`` results count when set.
- Order: points, then count-back (more 1st places, then more 2nd places...), then whoever posted their counted
  results earlier (the leaderboards' own tie rule).
- The final: when the season has ended and every race's results are final, the top ``final_size`` racers of
  the standings are seeded, in standings order, into a head-to-head knockout race (``bracket_seed``). Each
  finalist races with the model of their best season result. Created once (``season_finish``, run by the
  worker's periodic tick through ``seasons_finish_due``, or by staff/the organiser from the season page).
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import pairwise

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.text import slugify

from races.models import LeaderboardEntry, Race, RaceParticipant, RacePhase, RacerModel, Season, Submission
from races.services.brackets import UNFINISHED_SUBMISSIONS, bracket_seed
from races.services.errors import RuleViolation
from races.services.presenters import racer_name
from races.services.race_settings import BRACKET_SIZES, league_date_check
from races.services.races import race_create
from sim.race.scoring import format_lap_time

log = logging.getLogger(__name__)

SEASON_FIELDS = ("name", "description", "starts_at", "ends_at", "points_table", "best_results", "final_size",
                 "final_track")
MAX_POINTS_PLACES = 100
MAX_POINTS = 10_000
FINAL_WINDOW = timedelta(minutes=1)  # the final's own schedule: it is closed at once, only its bracket races


# --- who sees and who manages a season ---------------------------------------------------------------------------
def season_visible_to(user) -> QuerySet[Season]:
    """Every season ``user`` may see: virtual-circuit seasons, and community seasons they organise or whose
    races they are a member of (the same rule as ``race_visible_to``). Staff see everything."""
    seasons = Season.objects.select_related("organiser", "final_race")
    if getattr(user, "is_staff", False):
        return seasons
    public = Q(kind=Race.Kind.VIRTUAL_CIRCUIT)
    if not getattr(user, "is_authenticated", False):
        return seasons.filter(public)
    member = RaceParticipant.objects.filter(race__season=OuterRef("pk"), user=user, removed_at__isnull=True)
    return seasons.filter(public | Q(organiser=user) | Q(Exists(member)))


def season_can_manage(season: Season, user) -> bool:
    """Staff manage every season; organisers their own community seasons."""
    if getattr(user, "is_staff", False):
        return True
    return season.is_community and season.organiser_id is not None and season.organiser_id == getattr(user, "pk", None)


def season_require_manager(season: Season, user) -> None:
    if not season_can_manage(season, user):
        raise RuleViolation("Only the league admins (or a community season's organiser) can manage this season.",
                            "forbidden")


# --- creating and editing ------------------------------------------------------------------------------------------
def season_validate_settings(values: dict) -> None:
    """The rules of a season's settings, shared by the web forms, the admin and the services."""
    league_date_check(values, "starts_at", "ends_at")
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts and ends and ends <= starts:
        raise RuleViolation("The season must end after it starts.")
    table = values.get("points_table")
    if table is not None:
        if (not isinstance(table, list) or not table
                or not all(isinstance(p, int) and not isinstance(p, bool) for p in table)):
            raise RuleViolation("The points table is a list of whole numbers of points: 1st place first.")
        if len(table) > MAX_POINTS_PLACES:
            raise RuleViolation(f"The points table lists at most {MAX_POINTS_PLACES} places.")
        if any(not 0 <= p <= MAX_POINTS for p in table):
            raise RuleViolation(f"Points per place are between 0 and {MAX_POINTS}.")
        if any(later > earlier for earlier, later in pairwise(table)):
            raise RuleViolation("A place never scores more than the place before it: give the points in "
                                "decreasing order.")
    best = values.get("best_results")
    if best is not None and not 1 <= best <= 100:
        raise RuleViolation("Results that count: between 1 and 100, or empty for all of them.")
    size = values.get("final_size")
    if size is not None and size not in BRACKET_SIZES:
        raise RuleViolation(f"The final takes the top {', '.join(map(str, BRACKET_SIZES))} racers, or none.")


def season_parse_points(text: str) -> list[int]:
    """``"25, 18, 15"`` -> ``[25, 18, 15]`` (the web form's points table), or RuleViolation saying what is wrong."""
    parts = [part for part in text.replace(";", ",").replace(" ", ",").split(",") if part]
    if not parts:
        raise RuleViolation("Give the points of at least 1st place, e.g. “25, 18, 15, 12, 10”.")
    try:
        table = [int(part) for part in parts]
    except ValueError:
        raise RuleViolation("Points are whole numbers separated by commas, e.g. “25, 18, 15, 12, 10”.") from None
    season_validate_settings({"points_table": table})
    return table


def season_create(kind: str, by, **values) -> Season:
    """Staff create virtual-circuit seasons; any racer a community season over their own private races."""
    if kind not in Race.Kind.values:
        raise RuleViolation(f"Unknown season kind '{kind}'.")
    if kind == Race.Kind.VIRTUAL_CIRCUIT and not getattr(by, "is_staff", False):
        raise RuleViolation("Virtual-circuit seasons are run by the league admins.", "forbidden")
    unknown = set(values) - set(SEASON_FIELDS)
    if unknown:
        raise RuleViolation(f"Unknown season settings: {', '.join(sorted(unknown))}.")
    if not (values.get("name") or "").strip():
        raise RuleViolation("Give the season a name.")
    season_validate_settings(values)
    season = Season(kind=kind, organiser=by if kind == Race.Kind.COMMUNITY else None,
                    slug=_unique_slug(values["name"], private=kind == Race.Kind.COMMUNITY), **values)
    season.save()
    return season


def season_update(season: Season, by, **values) -> Season:
    """Change a season's settings until it has finished (its races' windows must still fit)."""
    season_require_manager(season, by)
    unknown = set(values) - set(SEASON_FIELDS)
    if unknown:
        raise RuleViolation(f"These settings cannot be changed: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        stored = Season.objects.select_for_update().get(pk=season.pk)
        if stored.finished_at is not None:
            raise RuleViolation("The season has finished: its settings are final.", "finished")
        merged = {name: getattr(stored, name) for name in SEASON_FIELDS} | values
        season_validate_settings(merged)
        for race in stored.races.all():
            _require_within(race, merged["starts_at"], merged["ends_at"])
        for name, value in values.items():
            setattr(stored, name, value)
        stored.save()
    return stored


def season_attach_race(season: Season, race: Race, by) -> Race:
    """Count ``race`` in ``season``: same kind (a community season takes its organiser's races only), within
    the season's dates, not a season's final, and only until the season has finished."""
    season_require_manager(season, by)
    with transaction.atomic():
        season = Season.objects.select_for_update().get(pk=season.pk)
        race = Race.objects.select_for_update().get(pk=race.pk)
        if season.finished_at is not None:
            raise RuleViolation("The season has finished: its races are final.", "finished")
        if race.kind != season.kind:
            kind = "community" if season.is_community else "virtual-circuit"
            raise RuleViolation(f"A {kind} season counts {kind} races only.")
        if season.is_community and race.organiser_id != season.organiser_id:
            raise RuleViolation("A community season counts its organiser's own races only.", "forbidden")
        if Season.objects.filter(final_race=race).exists():
            raise RuleViolation("A season's final does not count for points.")
        if race.season_id not in (None, season.pk):
            raise RuleViolation(f"{race.name} already counts for another season ({race.season}).")
        _require_within(race, season.starts_at, season.ends_at)
        race.season = season
        race.save(update_fields=["season"])
    return race


def season_detach_race(race: Race, by) -> Race:
    """Stop counting ``race`` for its season (before the season has finished)."""
    if race.season_id is None:
        return race
    season = race.season
    season_require_manager(season, by)
    if season.finished_at is not None:
        raise RuleViolation("The season has finished: its races are final.", "finished")
    Race.objects.filter(pk=race.pk).update(season=None)
    race.season = None
    return race


def season_races(season: Season) -> QuerySet[Race]:
    """The races that count for ``season``, in calendar order."""
    return season.races.select_related("track").order_by("opens_at", "pk")


def _require_within(race: Race, starts_at: datetime, ends_at: datetime) -> None:
    if race.opens_at < starts_at or race.effective_close > ends_at:
        raise RuleViolation(f"{race.name} runs {race.opens_at:%b %d %H:%M} to {race.effective_close:%b %d %H:%M} "
                            f"(UTC): a season's races run within its dates ({starts_at:%b %d} to {ends_at:%b %d}).")


# --- standings -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RaceFinish:
    """Where a racer finished in one race of the season and what it earned."""

    race_id: int
    position: int  # equal times share the position
    points: float
    time_ms: int  # the race's ranking score
    best_lap_ms: int | None
    submission_id: int
    submitted_at: datetime
    provisional: bool  # the race is still open (or results are still being evaluated)
    counted: bool = True  # False: beyond the season's best results


@dataclass
class StandingsRow:
    rank: int
    user_id: int
    racer: str
    points: float
    races_entered: int
    finishes: dict[int, RaceFinish] = field(default_factory=dict)  # by race id

    @property
    def best_finish(self) -> int | None:
        return min((f.position for f in self.finishes.values()), default=None)

    def finish_counts(self) -> Counter:
        return Counter(f.position for f in self.finishes.values())


@dataclass
class Standings:
    season: Season
    races: list[Race]
    rows: list[StandingsRow]
    provisional_races: set[int]  # ids of the races whose results may still change

    @property
    def provisional(self) -> bool:
        return bool(self.provisional_races) or self.season.finished_at is None

    def row_of(self, user_id: int) -> StandingsRow | None:
        return next((row for row in self.rows if row.user_id == user_id), None)


def points_for(table: list[int], position: int, tied: int = 1) -> float:
    """Points of ``tied`` racers sharing ``position``: the points of the places they occupy, shared equally."""
    places = [table[p - 1] if p <= len(table) else 0 for p in range(position, position + tied)]
    return round(sum(places) / tied, 2)


def season_standings(season: Season, now: datetime | None = None) -> Standings:
    """The season's standings now: every racer with a ranked result in one of its races, best first."""
    now = now or timezone.now()
    races = list(season_races(season))
    live = [race for race in races if race.phase(now) != RacePhase.UPCOMING]
    unsettled = set(Submission.objects.filter(race__in=live, status__in=UNFINISHED_SUBMISSIONS)
                    .values_list("race_id", flat=True).distinct())
    provisional = {race.pk for race in live if race.phase(now) == RacePhase.OPEN} | unsettled
    entries = (LeaderboardEntry.objects.filter(race__in=live).select_related("user__racer")
               .order_by("race_id", "ranking_score_ms", "submitted_at", "pk"))
    by_race: dict[int, list[LeaderboardEntry]] = defaultdict(list)
    users = {}
    for entry in entries:
        by_race[entry.race_id].append(entry)
        users[entry.user_id] = entry.user
    finishes: dict[int, dict[int, RaceFinish]] = defaultdict(dict)
    for race_id, rows in by_race.items():
        position = 1
        for i, entry in enumerate(rows):
            if i and entry.ranking_score_ms != rows[i - 1].ranking_score_ms:
                position = i + 1
            tied = sum(1 for other in rows if other.ranking_score_ms == entry.ranking_score_ms)
            finishes[entry.user_id][race_id] = RaceFinish(
                race_id=race_id, position=position, points=points_for(season.points_table, position, tied),
                time_ms=entry.ranking_score_ms, best_lap_ms=entry.best_lap_ms, submission_id=entry.submission_id,
                submitted_at=entry.submitted_at, provisional=race_id in provisional)
    entered = Counter(user_id for user_id, _ in set(
        Submission.objects.filter(race__in=live, user_id__in=finishes.keys()).values_list("user_id", "race_id")))
    rows: list[StandingsRow] = []
    order = {race.pk: i for i, race in enumerate(races)}
    for user_id, by_race_finish in finishes.items():
        ranked = sorted(by_race_finish.values(), key=lambda f: (-f.points, order[f.race_id]))
        counted_ids = {f.race_id for f in ranked[: season.best_results or len(ranked)]}
        marked = {f.race_id: replace(f, counted=f.race_id in counted_ids) for f in by_race_finish.values()}
        points = round(sum(f.points for f in marked.values() if f.counted), 2)
        rows.append(StandingsRow(rank=0, user_id=user_id, racer=racer_name(users[user_id]), points=points,
                                 races_entered=entered.get(user_id, len(marked)), finishes=marked))
    worst = max((f.position for row in rows for f in row.finishes.values()), default=0)

    def key(row: StandingsRow):
        counts = row.finish_counts()
        posted = max(f.submitted_at for f in row.finishes.values() if f.counted)
        return (-row.points, tuple(-counts[p] for p in range(1, worst + 1)), posted, row.racer.lower())

    rows.sort(key=key)
    for rank, row in enumerate(rows, start=1):
        row.rank = rank
    return Standings(season=season, races=races, rows=rows, provisional_races=provisional)


def points_text(points: float) -> str:
    return f"{points:g}"


def season_standings_table(standings: Standings) -> list[dict]:
    """Rows as plain dicts for the API, the page and CSV (races in calendar order)."""
    table = []
    for row in standings.rows:
        table.append({
            "rank": row.rank,
            "racer": row.racer,
            "points": row.points,
            "races_entered": row.races_entered,
            "best_finish": row.best_finish,
            "provisional": any(f.provisional for f in row.finishes.values()),
            "results": [
                {"race": race.slug, "position": f.position, "points": f.points, "counted": f.counted,
                 "time": format_lap_time(f.time_ms), "time_ms": f.time_ms, "provisional": f.provisional}
                if (f := row.finishes.get(race.pk)) else None
                for race in standings.races
            ],
        })
    return table


def season_standings_csv(standings: Standings) -> str:
    """One line per racer: rank, racer, points, races entered, best finish, then each race's position and points
    (``*`` after points that do not count)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["rank", "racer", "points", "races_entered", "best_finish",
                     *[f"{race.slug} {what}" for race in standings.races for what in ("position", "points")]])
    for row in season_standings_table(standings):
        cells = []
        for result in row["results"]:
            if result is None:
                cells += ["", ""]
            else:
                cells += [result["position"], points_text(result["points"]) + ("" if result["counted"] else "*")]
        writer.writerow([row["rank"], row["racer"], points_text(row["points"]), row["races_entered"],
                         row["best_finish"] or "", *cells])
    return buffer.getvalue()


# --- the end of the season and its final -----------------------------------------------------------------------------
def season_finish(season: Season, by=None, now: datetime | None = None) -> Race | None:
    """Close the season's books and create its final (once): the top ``final_size`` racers of the standings,
    seeded in standings order, race a head-to-head knockout. Refused while a race of the season is open or still
    has runs being evaluated (the worker's tick tries again), and, for the tick (``by`` None), before the season
    ends; its manager (``by``) may finish it early. Returns the final, or None when the season has no final (the
    reason is kept in ``final_note``)."""
    if by is not None:
        season_require_manager(season, by)
    now = now or timezone.now()
    with transaction.atomic():
        season = Season.objects.select_for_update().get(pk=season.pk)
        if season.finished_at is not None:
            return season.final_race
        if now < season.ends_at and by is None:  # staff or the organiser may close the books early
            raise RuleViolation(f"The season ends {season.ends_at:%b %d, %Y %H:%M} UTC: the final is created then.",
                                "not_ended")
        races = list(season_races(season))
        still_open = [race.name for race in races if race.phase(now) != RacePhase.CLOSED]
        if still_open:
            raise RuleViolation(f"Still open: {', '.join(still_open)}. The final is created once every race of the "
                                "season has closed.", "races_open")
        waiting = Submission.objects.filter(race__in=races, status__in=UNFINISHED_SUBMISSIONS).count()
        if waiting:
            raise RuleViolation(f"{waiting} run(s) of the season are still being evaluated: the final is created "
                                "when they are done.", "evaluating")
        standings = season_standings(season, now)
        final = None
        if not season.final_size:
            season.final_note = "This season has no final."
        else:
            finalists = _finalists(season, standings)
            if len(finalists) < 2:
                season.final_note = (f"No final: it needs at least 2 racers with a season result; this season has "
                                     f"{len(finalists)}.")
            else:
                final = _final_race_create(season, races, finalists, now)
                bracket_seed(Race.objects.select_for_update().get(pk=final.pk), finalists)
                season.final_note = ""
        season.final_race, season.finished_at = final, now
        season.save(update_fields=["final_race", "finished_at", "final_note"])
    return final


def seasons_finish_due(now: datetime | None = None) -> int:
    """Finish every season that has ended (the worker's periodic tick; idempotent: a finished season is never
    finished twice). Returns how many finished now."""
    now = now or timezone.now()
    finished = 0
    for season in Season.objects.filter(finished_at__isnull=True, ends_at__lte=now):
        try:
            season_finish(season, now=now)
            finished += 1
        except RuleViolation as error:  # races still open or being evaluated: next tick
            log.info("Season %s not finished yet: %s", season.pk, error.message)
    return finished


def _finalists(season: Season, standings: Standings) -> list[tuple]:
    """The top ``final_size`` racers of the standings, each with the submission of their best season result
    (most points, then the later race: a racer's newest model) whose model is still theirs to race."""
    users = get_user_model().objects.in_bulk([row.user_id for row in standings.rows])
    order = {race.pk: i for i, race in enumerate(standings.races)}
    finalists = []
    for row in standings.rows:
        ranked = sorted(row.finishes.values(), key=lambda f: (-f.points, -order[f.race_id]))
        submissions = Submission.objects.select_related("model").in_bulk([f.submission_id for f in ranked])
        for finish in ranked:
            submission = submissions.get(finish.submission_id)
            if submission is not None and submission.model.status == RacerModel.Status.VALID:
                finalists.append((users[row.user_id], submission))
                break
        if len(finalists) == season.final_size:
            break
    return finalists


def _final_race_create(season: Season, races: list[Race], finalists: list[tuple], now: datetime) -> Race:
    """The final: a head-to-head race with the last race's rules, on the season's final track (or the last
    race's), closed at once so only its bracket races. A community final admits the season's members."""
    last = races[-1] if races else None
    track = season.final_track or (last.track if last else None)
    if track is None:
        raise RuleViolation("The season has no race and no final track: choose a track for the final.", "no_track")
    direction = last.direction if last and track.supports(last.direction) else (
        Race.Direction.CLOCKWISE if track.directions == track.Directions.CLOCKWISE else Race.Direction.COUNTERCLOCKWISE)
    rules = {name: getattr(last, name) for name in ("ranking_method", "total_laps", "minimum_laps",
                                                    "off_track_penalty_s", "collision_penalty_s", "max_resets",
                                                    "time_cap_s")} if last else {}
    final = race_create(
        season.kind, organiser=season.organiser, name=f"{season.name} final"[:80],
        description=f"The final of {season.name}: its top {len(finalists)} racers, seeded from the standings, "
                    "race head to head in a knockout bracket.",
        race_type=Race.RaceType.HEAD_TO_HEAD, bracket_size=season.final_size, track=track, direction=direction,
        opens_at=now, closes_at=now + FINAL_WINDOW, **rules,
    )
    final.closed_early_at = now
    final.save(update_fields=["closed_early_at"])
    if final.is_community:
        members = set(RaceParticipant.objects.filter(race__in=races, removed_at__isnull=True)
                      .values_list("user_id", flat=True)) | {user.pk for user, _ in finalists}
        members.discard(final.organiser_id)
        RaceParticipant.objects.bulk_create([RaceParticipant(race=final, user_id=pk) for pk in sorted(members)])
    return final


def _unique_slug(name: str, private: bool) -> str:
    """As for races: a private (community) season's address cannot be guessed."""
    base = slugify(name)[:80] or "season"
    if private:
        while True:
            slug = f"{base}-{secrets.token_hex(3)}"
            if not Season.objects.filter(slug=slug).exists():
                return slug
    slug, n = base, 2
    while Season.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug
