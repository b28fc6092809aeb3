"""The services behind the admin's race actions and track edits: open now, close now, track_update."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from races.models import Race, RacePhase, Track
from races.services import RuleViolation, races_close_now, races_open_now, track_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule(make_race):
    """One race in each state the actions distinguish, created relative to now."""
    now = timezone.now()
    return {
        "open": make_race(name="Open"),
        "upcoming": make_race(name="Upcoming", opens_at=now + timedelta(days=1), closes_at=now + timedelta(days=2)),
        "closed": make_race(name="Closed", opens_at=now - timedelta(days=3), closes_at=now - timedelta(days=1)),
        "closed_early": make_race(name="Closed early", opens_at=now + timedelta(days=1),
                                  closes_at=now + timedelta(days=2), closed_early_at=now - timedelta(minutes=1)),
    }


def stored(race: Race) -> Race:
    return Race.objects.get(pk=race.pk)


def test_open_now_opens_only_the_upcoming_races(schedule):
    before = {name: stored(race) for name, race in schedule.items()}
    assert races_open_now(Race.objects.all()) == 1
    after = {name: stored(race) for name, race in schedule.items()}
    assert after["upcoming"].phase() == RacePhase.OPEN and after["upcoming"].opens_at <= timezone.now()
    assert after["upcoming"].closes_at == before["upcoming"].closes_at
    for name in ("open", "closed", "closed_early"):  # untouched: an early close is never undone
        assert (after[name].opens_at, after[name].closes_at, after[name].closed_early_at) == (
            before[name].opens_at, before[name].closes_at, before[name].closed_early_at), name
    assert races_open_now(Race.objects.all()) == 0


def test_open_now_acts_only_on_the_races_given(schedule):
    assert races_open_now(Race.objects.filter(pk=schedule["open"].pk)) == 0
    assert stored(schedule["upcoming"]).phase() == RacePhase.UPCOMING


def test_close_now_closes_open_and_upcoming_races_early_and_leaves_closed_ones(schedule):
    closed_early_at = stored(schedule["closed_early"]).closed_early_at
    assert races_close_now(Race.objects.all()) == 2
    for name in ("open", "upcoming"):
        race = stored(schedule[name])
        assert race.phase() == RacePhase.CLOSED and race.closed_early_at is not None, name
    assert stored(schedule["closed"]).closed_early_at is None  # it closed on time
    assert stored(schedule["closed_early"]).closed_early_at == closed_early_at
    assert races_close_now(Race.objects.all()) == 0


def test_track_update_saves_an_admin_edit_and_refuses_unknown_directions(technical_track):
    technical_track.title, technical_track.directions = "Technical Loop", Track.Directions.CLOCKWISE
    track_update(technical_track)
    saved = Track.objects.get(pk=technical_track.pk)
    assert (saved.title, saved.directions) == ("Technical Loop", "clockwise")
    assert saved.supports("clockwise") and not saved.supports("counterclockwise")
    technical_track.directions = "sideways"
    with pytest.raises(RuleViolation, match="Directions must be both, counterclockwise or clockwise"):
        track_update(technical_track)
    assert Track.objects.get(pk=technical_track.pk).directions == "clockwise"
