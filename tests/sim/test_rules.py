"""The race-rule state machine of sim.world.rules, on a batch of cars without an env."""

import numpy as np
import pytest

from sim.world.rules import (
    STATUS_LABELS,
    CarPhase,
    EpisodeStatus,
    RaceRules,
    RuleState,
    apply_race_rules,
    apply_time_cap,
    classify_step,
    count_down_holds,
    count_step,
    restart,
)

DT = 1 / 15


def test_statuses_keep_the_simapps_codes_and_spellings():
    assert [int(status) for status in EpisodeStatus] == list(range(9))
    assert [status.slug for status in EpisodeStatus] == [
        "prepare", "in_progress", "lap_complete", "crashed", "off_track", "immobilized", "reversed", "pause",
        "time_up"]
    assert STATUS_LABELS == ("Prepare", "In progress", "Lap complete", "Crashed", "Off track", "Immobilized",
                             "Reversed", "Pause", "Time up")
    assert np.full(2, EpisodeStatus.PAUSE).dtype == np.int64  # they live in integer arrays


def _running_cars(n: int) -> RuleState:
    state = RuleState.zeros(n)
    restart(state, np.arange(n), prepare_s=DT)
    live = np.ones(n, dtype=bool)
    count_step(state, live, DT)  # the prepare step
    prepare = classify_step(state, live, np.zeros(n), np.ones(n), np.zeros(n, bool), np.zeros(n, bool))
    assert (prepare.status == EpisodeStatus.PREPARE).all() and prepare.held.all()
    count_down_holds(state, prepare.held, DT)
    assert (state.phase == CarPhase.RUNNING).all()
    return state


def test_one_race_step_closes_laps_spends_resets_and_ends_runs_per_car():
    state = _running_cars(4)
    rules = RaceRules(total_laps=1, off_track_penalty_s=2.0, collision_penalty_s=5.0, max_resets=1)
    state.resets_used[3] = 1  # car 3 has spent its budget
    live = np.ones(4, dtype=bool)
    count_step(state, live, DT)
    progress_now = np.array([100.0, 40.0, 30.0, 20.0])
    step = classify_step(state, live, progress_now, np.ones(4), np.array([False, True, False, False]),
                         np.array([False, False, True, True]))
    assert step.status.tolist() == [EpisodeStatus.LAP_COMPLETE, EpisodeStatus.CRASHED, EpisodeStatus.OFF_TRACK,
                                    EpisodeStatus.OFF_TRACK]
    state.progress = progress_now
    decided = apply_race_rules(state, rules, step)
    assert decided.ended.tolist() == [True, False, False, True]
    assert decided.resets == [1, 2]
    assert [(lap.car, lap.status.label, lap.completion_percentage) for lap in decided.closed_laps] == [
        (0, "Lap complete", 100.0), (3, "Off track", 20.0)]
    assert decided.closed_laps[1].off_track_count == 1 and state.counters.off_track[3] == 0  # cleared on close
    assert state.hold_s[1:3].tolist() == [5.0, 2.0] and (state.phase[1:3] == CarPhase.HELD).all()
    assert state.counters.crash[1] == state.counters.resets[1] == 1 and state.laps_done[0] == 1


def test_the_time_cap_ends_the_runs_that_reached_it():
    state = _running_cars(2)
    state.clock[:] = [179.99, 180.0]
    state.progress[:] = [10.0, -3.0]
    ended, status, closed = apply_time_cap(state, RaceRules(), np.ones(2, dtype=bool),
                                           np.full(2, EpisodeStatus.IN_PROGRESS))
    assert ended.tolist() == [False, True] and status.tolist() == [EpisodeStatus.IN_PROGRESS, EpisodeStatus.TIME_UP]
    assert [(lap.car, lap.status, lap.completion_percentage) for lap in closed] == [(1, EpisodeStatus.TIME_UP, 0.0)]
    assert closed[0].elapsed_time_in_milliseconds == pytest.approx(180_000)
