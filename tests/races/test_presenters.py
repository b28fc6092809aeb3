"""What the pages and the API show, made in one place: lap tables, times, gaps, names, phases and bracket states;
and the leaderboard's in-process table cache (a bounded LRU)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from races.models import Race, RacePhase, Run
from races.services import leaderboard_table, submission_create, submission_summary
from races.services import leaderboards as leaderboard_module
from races.services.phases import PHASES, races_by_phase
from races.services.presenters import (
    BracketState,
    bracket_round_name,
    bracket_summary,
    gap_text,
    lap_rows,
    qualified_score,
    racer_name,
)
from tests.races.test_services import laps, score

pytestmark = pytest.mark.django_db


def test_a_lap_table_writes_each_time_and_charges_the_races_penalties(make_race):
    race = make_race(off_track_penalty_s=2.0, collision_penalty_s=5.0)
    stored = laps(10.5, 11.25)
    stored[0] |= {"off_track_count": 2, "crash_count": 1}
    rows = lap_rows(stored, race)
    assert [(row["time"], row["penalty_s"]) for row in rows] == [("00:10.500", 9.0), ("00:11.250", 0.0)]
    assert all(row.items() >= lap.items() for row, lap in zip(rows, stored, strict=True))  # nothing dropped


def test_the_run_summary_shows_the_same_lap_table(make_racer, make_race, make_model):
    race = make_race()
    racer = make_racer("Laps")
    submission = submission_create(racer, race, make_model(racer))
    run = score(submission, 10.0, 12.0)
    summary = submission_summary(submission, include_trace=False)
    assert summary["racer"] == "Laps" and summary["run"]["laps"] == lap_rows(run.laps, race)
    assert summary["run"]["ranking_score"] == qualified_score(run) == "00:10.000"


def test_scores_gaps_and_names_as_the_pages_write_them(make_racer):
    assert qualified_score(None) is None
    assert qualified_score(Run(qualified=False, ranking_score_ms=None)) is None
    assert qualified_score(Run(qualified=True, ranking_score_ms=61_234)) == "01:01.234"
    assert gap_text(0, 1) == "" and gap_text(412, 2) == "+0.412" and gap_text(0, 2) == "+0.000"
    assert racer_name(make_racer("Alias")) == "Alias"
    assert racer_name(get_user_model().objects.create_user("no-alias-yet")) == "no-alias-yet"
    assert [bracket_round_name(n, 4) for n in range(1, 5)] == ["Round 1", "Quarter-finals", "Semi-finals", "Final"]


def test_phases_are_an_enum_that_still_reads_and_compares_as_text(make_race):
    now = timezone.now()
    race = make_race(opens_at=now + timedelta(hours=1), closes_at=now + timedelta(days=1))
    assert race.phase() is RacePhase.UPCOMING and race.phase() == "upcoming" and f"{race.phase()}" == "upcoming"
    assert PHASES == ("open", "upcoming", "closed")
    assert races_by_phase(Race.objects.all())["upcoming"] == [race]


def test_a_race_without_a_bracket_says_so(make_race):
    summary = bracket_summary(make_race())
    assert summary["state"] is BracketState.NONE and summary["state"] == "none" and summary["rounds"] == []


def test_the_table_cache_keeps_the_recently_read_tables(make_racer, make_race, make_model):
    race = make_race()
    racer = make_racer("Cached")
    score(submission_create(racer, race, make_model(racer)), 10.0)
    recent = leaderboard_module._recent_tables
    recent.clear()
    keys = [f"leaderboard:other:{n}" for n in range(leaderboard_module.RECENT_TABLES_KEPT)]
    for key in keys:
        recent[key] = []
    recent.get(keys[0])  # read lately: the second-oldest is now the least recently used
    assert [row["racer"] for row in leaderboard_table(race)] == ["Cached"]
    assert len(recent) == leaderboard_module.RECENT_TABLES_KEPT
    assert keys[0] in recent and keys[1] not in recent
    assert leaderboard_table(race) is leaderboard_table(race)  # a hit is the same table, not a copy
