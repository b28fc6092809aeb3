"""A racer's public profile: their seasons and standings, the races they entered with their rank and best lap, the
models they raced. Only what the viewer may already see: races through ``race_visible_to`` and seasons through
``season_visible_to``, so a private community race never shows on a stranger's view of the profile."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Max, Q

from league.models import RacerProfile
from races.models import Race, RacerModel, Submission
from races.services.leaderboards import leaderboard_table
from races.services.seasons import season_standings, season_visible_to
from races.services.visibility import race_visible_to
from sim.race.scoring import format_lap_time

MAX_RACES_SHOWN = 100


def racer_by_alias(alias: str) -> RacerProfile | None:
    return RacerProfile.objects.select_related("user").filter(alias__iexact=alias).first()


def racer_profile(profile: RacerProfile, viewer) -> dict:
    """Seasons (rank, points, of how many), races entered (newest first: rank, best lap, submissions) and the
    models raced in those races (name, network, sensors, races), for ``viewer``."""
    user = profile.user
    races = race_visible_to(viewer).filter(submissions__user=user).annotate(
        submitted=Count("submissions", distinct=True), last_submitted=Max("submissions__submitted_at"),
    ).order_by("-last_submitted")[:MAX_RACES_SHOWN]
    entered = []
    for race in races:
        row = next((r for r in leaderboard_table(race) if r["racer"] == profile.alias), None)
        best_lap_ms = row["best_lap_ms"] if row else None
        entered.append({"race": race, "phase": race.phase(), "rank": row["rank"] if row else None,
                        "time": row["time"] if row else None,
                        "best_lap": format_lap_time(best_lap_ms) if best_lap_ms else None,
                        "submissions": race.submitted})
    seasons = []
    for season in season_visible_to(viewer).filter(races__submissions__user=user).distinct():
        standings = season_standings(season)
        row = standings.row_of(user.pk)
        seasons.append({"season": season, "rank": row.rank if row else None, "points": row.points if row else 0,
                        "of": len(standings.rows), "provisional": standings.provisional,
                        "finalist": _is_finalist(season, user)})
    visible = Submission.objects.filter(user=user, race__in=race_visible_to(viewer))
    raced: dict[int, set[int]] = defaultdict(set)
    for model_id, race_id in visible.values_list("model_id", "race_id"):
        raced[model_id].add(race_id)
    models = [{"name": model.name, "network": model.neural_network, "sensors": model.sensors,
               "races": len(raced[model.pk]), "deleted": model.status == RacerModel.Status.DELETED}
              for model in RacerModel.objects.filter(pk__in=raced).order_by("-created_at")]
    return {"alias": profile.alias, "since": profile.created_at, "seasons": seasons, "races": entered,
            "models": models}


def _is_finalist(season, user) -> bool:
    final: Race | None = season.final_race
    return final is not None and final.bracket_matches.filter(Q(racer_a=user) | Q(racer_b=user), round=1).exists()
