"""Scoring rules of SPEC §8: qualification by consecutive completed laps, and each ranking method."""

import pytest

from sim.scoring import LapMetrics, RankingMethod, RunScore, ScoringError, format_lap_time, is_better, score_run


def lap(trial: int, seconds: float, completion: float = 100.0, off_track: int = 0, resets: int = 0) -> LapMetrics:
    return LapMetrics(
        trial=trial,
        elapsed_time_in_milliseconds=round(seconds * 1000),
        completion_percentage=completion,
        off_track_count=off_track,
        reset_count=resets,
        episode_status="Lap complete" if completion >= 100 else "Off track",
    )


# Laps 1-2 complete, lap 3 fails at 40 %, laps 4-6 complete.
RUN = [lap(1, 12.0), lap(2, 11.0), lap(3, 9.0, completion=40.0), lap(4, 10.5), lap(5, 10.0, off_track=1), lap(6, 13.0)]


def test_longest_streak_of_completed_laps_decides_qualification():
    assert score_run(RUN, "BEST_LAP_TIME", minimum_laps=3).qualified
    score = score_run(RUN, "BEST_LAP_TIME", minimum_laps=4)
    assert not score.qualified and score.ranking_score_ms is None
    assert score.consecutive_completed_laps == 3 and score.completed_laps == 5


def test_best_lap_counts_only_completed_laps():
    score = score_run(RUN, RankingMethod.BEST_LAP_TIME, minimum_laps=1)
    # The failed lap 3 took 9.0 s but did not complete: it never counts.
    assert score.best_lap_ms == 10_000 and score.ranking_score_ms == 10_000 and score.window_start == 5


def test_average_is_the_best_window_of_consecutive_completed_laps():
    score = score_run(RUN, RankingMethod.AVG_LAP_TIME, minimum_laps=2)
    # Windows: (1,2)=23.0 (4,5)=20.5 (5,6)=23.0 — a window may not span the failed lap 3.
    assert score.average_lap_ms == 10_250 and score.ranking_score_ms == 10_250 and score.window_start == 4


def test_total_time_sums_all_laps_of_a_fully_completed_run():
    run = [lap(1, 12.0), lap(2, 11.0, off_track=1), lap(3, 10.0)]
    score = score_run(run, RankingMethod.TOTAL_TIME, minimum_laps=3)
    assert score.ranking_score_ms == 33_000 and score.total_time_ms == 33_000 and score.off_track_count == 1
    assert not score_run([*run[:2], lap(3, 5.0, completion=99.9)], "TOTAL_TIME", minimum_laps=3).qualified


def test_penalties_are_already_in_the_lap_times_and_counts_are_summed():
    score = score_run([lap(1, 15.0, off_track=1, resets=1), lap(2, 10.0)], "BEST_LAP_TIME", minimum_laps=1)
    assert score.best_lap_ms == 10_000 and score.off_track_count == 1 and score.reset_count == 1


def test_an_empty_run_does_not_qualify():
    score = score_run([], "AVG_LAP_TIME", minimum_laps=1)
    assert not score.qualified and score.best_lap_ms is None and score.average_lap_ms is None and score.laps == 0


def test_only_a_strictly_better_score_replaces_a_leaderboard_row():
    fast = score_run([lap(1, 10.0)], "BEST_LAP_TIME", 1)
    same = score_run([lap(1, 10.0)], "BEST_LAP_TIME", 1)
    slow = score_run([lap(1, 11.0)], "BEST_LAP_TIME", 1)
    failed = score_run([lap(1, 8.0, completion=50)], "BEST_LAP_TIME", 1)
    assert is_better(fast, None) and is_better(fast, slow)
    assert not is_better(same, fast) and not is_better(slow, fast) and not is_better(failed, None)


def test_dict_round_trips_keep_every_field():
    score = score_run(RUN, "AVG_LAP_TIME", 2)
    assert RunScore.from_dict(score.to_dict()) == score
    assert LapMetrics.from_dict(RUN[2].to_dict()) == RUN[2]


@pytest.mark.parametrize(
    ("laps", "method", "minimum", "message"),
    [
        ([], "FASTEST", 1, "unknown ranking method 'FASTEST'"),
        ([], "BEST_LAP_TIME", 0, "minimum_laps must be a positive integer"),
        ([{"trial": 1}], "BEST_LAP_TIME", 1, "lap record is missing completion_percentage, elapsed_time"),
        ([lap(1, -1.0)], "BEST_LAP_TIME", 1, "lap 1 has a negative elapsed time"),
    ],
)
def test_unscorable_inputs_are_refused_with_a_clear_message(laps, method, minimum, message):
    with pytest.raises(ScoringError, match=message):
        score_run(laps, method, minimum)


def test_lap_times_are_formatted_like_the_console():
    assert format_lap_time(83_456) == "01:23.456" and format_lap_time(None) == "—"
