"""Scoring rules of SPEC §8: qualification by consecutive completed laps, and each ranking method."""

import pytest

from sim.race.scoring import (
    LapMetrics,
    RankingMethod,
    RunScore,
    ScoringError,
    format_lap_time,
    is_better,
    ranking_key,
    score_run,
)


def lap(trial: int, seconds: float, completion: float = 100.0, off_track: int = 0, resets: int = 0,
        crashes: int = 0) -> LapMetrics:
    return LapMetrics(
        trial=trial,
        elapsed_time_in_milliseconds=round(seconds * 1000),
        completion_percentage=completion,
        off_track_count=off_track,
        crash_count=crashes,
        reset_count=resets,
        episode_status="Lap complete" if completion >= 100 else "Off track",
    )


# Laps 1-2 complete, lap 3 fails at 40 %, laps 4-6 complete.
RUN = [lap(1, 12.0), lap(2, 11.0), lap(3, 9.0, completion=40.0), lap(4, 10.5), lap(5, 10.0, off_track=1), lap(6, 13.0)]


def test_a_failed_lap_breaks_the_streak_and_the_longest_streak_decides_qualification():
    assert score_run(RUN, "BEST_LAP_TIME", minimum_laps=3).qualified
    score = score_run(RUN, "BEST_LAP_TIME", minimum_laps=4)  # 5 completed laps, but never 4 in a row
    assert not score.qualified and score.ranking_score_ms is None and score.window_start is None
    assert score.consecutive_completed_laps == 3 and score.completed_laps == 5 and score.laps == 6


def test_a_lap_at_99_99_percent_is_not_completed():
    score = score_run([lap(1, 10.0), lap(2, 10.0, completion=99.99), lap(3, 10.0)], "BEST_LAP_TIME", 2)
    assert not score.qualified and score.consecutive_completed_laps == 1 and score.completed_laps == 2


def test_best_lap_counts_only_completed_laps():
    score = score_run(RUN, RankingMethod.BEST_LAP_TIME, minimum_laps=1)
    # The failed lap 3 took 9.0 s but did not complete: it never counts.
    assert score.best_lap_ms == 10_000 and score.ranking_score_ms == 10_000 and score.window_start == 5
    assert score.scored_off_track_count == 1  # the off-track of the best lap itself


def test_best_lap_with_minimum_laps_is_the_fastest_completed_lap_of_a_qualifying_run():
    # Qualifies through laps 4-6; the fastest lap may lie outside that streak (lap 5 here, but also lap 2 below).
    run = [lap(1, 12.0), lap(2, 8.0), lap(3, 9.0, completion=40.0), lap(4, 10.5), lap(5, 10.0), lap(6, 13.0)]
    score = score_run(run, RankingMethod.BEST_LAP_TIME, minimum_laps=3)
    assert score.qualified and score.ranking_score_ms == 8_000 and score.window_start == 2


def test_average_is_the_best_window_of_consecutive_completed_laps():
    score = score_run(RUN, RankingMethod.AVG_LAP_TIME, minimum_laps=2)
    # Windows: (1,2)=23.0 (4,5)=20.5 (5,6)=23.0 — a window may not span the failed lap 3.
    assert score.average_lap_ms == 10_250 and score.ranking_score_ms == 10_250 and score.window_start == 4
    assert score.scored_off_track_count == 1


def test_average_rounds_to_the_millisecond_and_the_earliest_window_wins_ties():
    run = [lap(1, 10.001), lap(2, 10.0), lap(3, 10.0), lap(4, 10.001)]
    score = score_run(run, "AVG_LAP_TIME", minimum_laps=3)
    assert score.average_lap_ms == 10_000 and score.window_start == 1  # 30.001 s / 3 twice


def test_average_of_a_run_with_no_long_enough_window_is_absent():
    score = score_run([lap(1, 10.0), lap(2, 10.0, completion=50.0), lap(3, 10.0)], "AVG_LAP_TIME", 2)
    assert not score.qualified and score.average_lap_ms is None and score.best_lap_ms == 10_000


def test_total_time_sums_all_laps_of_a_fully_completed_run():
    run = [lap(1, 12.0), lap(2, 11.0, off_track=1), lap(3, 10.0)]
    score = score_run(run, RankingMethod.TOTAL_TIME, minimum_laps=3)
    assert score.ranking_score_ms == 33_000 and score.total_time_ms == 33_000 and score.window_start == 1
    assert score.off_track_count == score.scored_off_track_count == 1
    unfinished = score_run([*run[:2], lap(3, 5.0, completion=99.9)], "TOTAL_TIME", minimum_laps=3)
    assert not unfinished.qualified and unfinished.ranking_score_ms is None
    assert unfinished.total_time_ms == 23_000  # shown in the lap table, never ranked


def test_penalties_are_already_in_the_lap_times_and_counts_are_summed_over_the_run():
    # Lap 1: 11 s of driving + a 2 s off-track penalty + a 5 s collision penalty, recorded as 18 s.
    run = [lap(1, 18.0, off_track=1, crashes=1, resets=2), lap(2, 10.0, completion=30.0, resets=1), lap(3, 12.0)]
    score = score_run(run, "BEST_LAP_TIME", minimum_laps=1)
    assert score.best_lap_ms == 12_000 and score.ranking_score_ms == 12_000
    assert (score.off_track_count, score.crash_count, score.reset_count) == (1, 1, 3)
    assert score_run(run, "TOTAL_TIME", minimum_laps=1).total_time_ms == 30_000  # 18 + 12, the failed lap excluded


@pytest.mark.parametrize("method", list(RankingMethod))
def test_an_empty_run_does_not_qualify(method):
    score = score_run([], method, minimum_laps=1)
    assert not score.qualified and score.laps == score.completed_laps == score.consecutive_completed_laps == 0
    assert score.best_lap_ms is None and score.average_lap_ms is None and score.total_time_ms is None
    assert score.ranking_score_ms is None and score.scored_off_track_count is None


def test_a_run_without_any_completed_lap_does_not_qualify():
    score = score_run([lap(1, 30.0, completion=62.5, resets=4)], "BEST_LAP_TIME", 1)
    assert not score.qualified and score.best_lap_ms is None and score.reset_count == 4


def test_only_a_strictly_better_score_replaces_a_leaderboard_row():
    fast = score_run([lap(1, 10.0)], "BEST_LAP_TIME", 1)
    same = score_run([lap(1, 10.0)], "BEST_LAP_TIME", 1)
    slow = score_run([lap(1, 11.0)], "BEST_LAP_TIME", 1)
    failed = score_run([lap(1, 8.0, completion=50)], "BEST_LAP_TIME", 1)
    assert is_better(fast, None) and is_better(fast, slow) and is_better(slow, failed)
    assert not is_better(same, fast) and not is_better(slow, fast) and not is_better(failed, None)


def test_leaderboards_sort_qualified_runs_by_score_then_the_rest():
    runs = {name: score_run([lap(1, seconds, completion)], "BEST_LAP_TIME", 1)
            for name, seconds, completion in [("slow", 12.0, 100), ("dnf", 5.0, 80), ("fast", 9.0, 100)]}
    assert sorted(runs, key=lambda name: ranking_key(runs[name])) == ["fast", "slow", "dnf"]


def test_dict_round_trips_keep_every_field():
    score = score_run(RUN, "AVG_LAP_TIME", 2)
    assert RunScore.from_dict(score.to_dict()) == score
    assert score.to_dict()["ranking_method"] == "AVG_LAP_TIME"
    assert LapMetrics.from_dict(RUN[2].to_dict()) == RUN[2]


def test_lap_records_from_the_simapp_metrics_file_are_accepted():
    record = {"trial": 1, "elapsed_time_in_milliseconds": 15_367, "completion_percentage": 100, "crash_count": 0,
              "immobilized_count": 0, "off_track_count": 1, "reversed_count": 0, "reset_count": 1,
              "episode_status": "Lap complete", "metric_time": 1_700_000_000_000, "start_time": 1_699_999_984_000}
    assert score_run([record], "BEST_LAP_TIME", 1).ranking_score_ms == 15_367


def test_stored_scores_without_later_fields_still_load():
    stored = score_run(RUN, "BEST_LAP_TIME", 1).to_dict()
    del stored["scored_off_track_count"]
    assert RunScore.from_dict(stored).scored_off_track_count is None


@pytest.mark.parametrize(
    ("laps", "method", "minimum", "message"),
    [
        ([], "FASTEST", 1, "unknown ranking method 'FASTEST'"),
        ([], "BEST_LAP_TIME", 0, "minimum_laps must be a positive integer, got 0"),
        ([], "BEST_LAP_TIME", 2.0, "minimum_laps must be a positive integer, got 2.0"),
        ([], "BEST_LAP_TIME", True, "minimum_laps must be a positive integer, got True"),
        ([{"trial": 1}], "BEST_LAP_TIME", 1, "lap record is missing completion_percentage, elapsed_time"),
        ([{"trial": 1, "elapsed_time_in_milliseconds": -1, "completion_percentage": 100}], "BEST_LAP_TIME", 1,
         "lap 1: elapsed_time_in_milliseconds must be a non-negative integer, got -1"),
        ([{"trial": 1, "elapsed_time_in_milliseconds": 9.5, "completion_percentage": 100}], "BEST_LAP_TIME", 1,
         "lap 1: elapsed_time_in_milliseconds must be a non-negative integer, got 9.5"),
        ([{"trial": 1, "elapsed_time_in_milliseconds": 9, "completion_percentage": 101}], "BEST_LAP_TIME", 1,
         "lap 1: completion_percentage must be within 0..100, got 101"),
        ([{"trial": 1, "elapsed_time_in_milliseconds": 9, "completion_percentage": float("nan")}], "TOTAL_TIME", 1,
         "lap 1: completion_percentage must be within 0..100, got nan"),
        ([{"trial": 0, "elapsed_time_in_milliseconds": 9, "completion_percentage": 100}], "BEST_LAP_TIME", 1,
         "lap trial numbers start at 1, got 0"),
        ([{"trial": 1, "elapsed_time_in_milliseconds": 9, "completion_percentage": 100, "reset_count": -2}],
         "BEST_LAP_TIME", 1, "lap 1: reset_count must be a non-negative integer, got -2"),
        ([lap(1, 10.0), lap(3, 10.0)], "BEST_LAP_TIME", 1,
         r"laps must be numbered 1..n in order \(lap 2 says trial 3\)"),
    ],
)
def test_unscorable_inputs_are_refused_with_a_clear_message(laps, method, minimum, message):
    with pytest.raises(ScoringError, match=message):
        score_run(laps, method, minimum)


def test_lap_times_are_formatted_like_the_console():
    assert format_lap_time(83_456) == "01:23.456" and format_lap_time(None) == "—"
    assert RankingMethod("AVG_LAP_TIME").label == "Average lap time"
