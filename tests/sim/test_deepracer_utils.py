"""Our model folders and evaluation traces, read through deepracer-utils' own APIs (the community's log analysis).

``DeepRacerLog`` (training and evaluation simtraces), ``SimulationLogsIO`` (SIM_TRACE_LOG lines),
``AnalysisUtils.simulation_agg`` (per-episode / per-lap aggregates) and ``TrainingMetrics``
(``metrics/TrainingMetrics.json``) must find DeepRacer's episode counts, iteration numbers, lap counts and
completion percentages in what we write, not merely load it.
"""

import json
from datetime import datetime

import numpy as np
import pytest
from deepracer.logs import AnalysisUtils, DeepRacerLog, SimulationLogsIO, TrainingMetrics

from sim.io.archive import inspect_archive
from sim.io.model_folder import ModelFolder, console_training_metrics
from sim.io.simtrace import (
    evaluation_simtrace_path,
    model_metadata_path,
    simtrace_csv_text,
    write_sim_trace_log,
    write_simtrace_csv,
)
from sim.learn.config import TrainingConfig
from sim.learn.hyperparameters import Hyperparameters
from sim.learn.trainer import StopConditions
from sim.learn.training import resume_training, start_training
from sim.race.drivers import PurePursuitDriver
from sim.race.evaluation import run_driver_race
from sim.world.builtin_tracks import build_builtin_track
from sim.world.reward_examples import example_source
from sim.world.rules import RaceRules
from sim.world.vehicle import get_vehicle

EPISODES_PER_ITERATION = 5
EVALUATION_EPISODES = 2


def _training_metrics(path) -> TrainingMetrics:
    # fname: read the local file (the S3 resource it also builds is never used, so no credentials are read).
    return TrainingMetrics(None, fname=str(path), region="us-east-1")


def _json(path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory):
    """5 episodes (iteration 1), then resumed for 2 more (iteration 2, a partial one): 7 training episodes."""
    folder = tmp_path_factory.mktemp("drutils") / "model"
    config = TrainingConfig(
        track="pitlane_oval", vehicle=get_vehicle("original_deepracer"),
        reward_function_source=example_source("example_1_follow_center_line"),
        hyperparameters=Hyperparameters(batch_size=128, num_epochs=3, learning_rate=1e-3,
                                        episodes_between_training=EPISODES_PER_ITERATION),
        evaluation_episodes=EVALUATION_EPISODES, max_episode_steps=30,
    )
    start_training(folder, config).run(StopConditions(max_episodes=5), progress=False)
    resume_training(folder).run(StopConditions(max_episodes=7), progress=False)
    return folder


@pytest.mark.slow
def test_training_simtraces_are_numbered_from_zero_and_deepracer_log_counts_every_episode(trained_folder):
    assert sorted(p.name for p in (trained_folder / "training-simtrace").iterdir()) == [
        "0-iteration.csv", "1-iteration.csv"]
    log = DeepRacerLog(model_folder=str(trained_folder))
    log.load_training_trace()
    trace = log.dataframe()
    assert sorted(trace["iteration"].unique()) == [0, 1]
    # The library numbers episodes from iteration 0's file: every row gets one, 5 in iteration 0, 2 in iteration 1.
    assert trace["unique_episode"].notna().all()
    assert sorted(trace["unique_episode"].unique()) == list(range(7))
    per_iteration = trace.groupby("iteration")["unique_episode"].unique()
    assert [sorted(episodes) for episodes in per_iteration] == [[0, 1, 2, 3, 4], [5, 6]]

    aggregates = AnalysisUtils.simulation_agg(trace, secondgroup="unique_episode")
    ours = [e for e in _json(trained_folder / "metrics" / "episodes.json")["episodes"] if e["phase"] == "training"]
    assert len(aggregates) == len(ours) == 7
    assert list(aggregates["iteration"]) == [0] * 5 + [1] * 2
    assert aggregates["progress"].to_numpy() == pytest.approx([e["progress"] for e in ours], abs=1e-4)
    assert list(aggregates["steps"]) == [e["steps"] for e in ours]
    laps = [row["laps_completed"] for row in _json(trained_folder / "metrics" / "iterations.json")["iterations"]]
    assert aggregates["complete"].sum() == sum(laps) == sum(e["lap_complete"] for e in ours)


@pytest.mark.slow
def test_simulation_logs_io_reads_the_training_log_lines_of_both_sessions(trained_folder):
    lines: list[str] = []
    for log_file in sorted((trained_folder / "logs" / "training").glob("*-robomaker.log")):
        SimulationLogsIO.load_single_file(str(log_file), lines)
    frame = SimulationLogsIO.convert_to_pandas(lines, episodes_per_iteration=EPISODES_PER_ITERATION)
    assert sorted(frame["episode"].unique()) == list(range(7))
    assert list(frame.groupby("episode")["iteration"].first()) == [0] * 5 + [1] * 2
    aggregates = AnalysisUtils.simulation_agg(frame)
    ours = [e for e in _json(trained_folder / "metrics" / "episodes.json")["episodes"] if e["phase"] == "training"]
    assert list(aggregates["episode"]) == list(range(7))
    assert aggregates["progress"].to_numpy() == pytest.approx([e["progress"] for e in ours], abs=1e-4)
    assert list(aggregates["steps"]) == [e["steps"] for e in ours]


@pytest.mark.slow
def test_training_metrics_json_is_read_by_deepracer_utils_training_metrics(trained_folder):
    path = trained_folder / "metrics" / "TrainingMetrics.json"
    document = _json(path)
    assert document["version"] == 2.0 and document["best_model_metric"] == "progress"
    metrics = _training_metrics(path)
    training, evaluation = metrics.getTraining(), metrics.getEvaluation()
    assert list(training["episode"]) == list(range(1, 8))
    assert list(training["trial"]) == [1, 2, 3, 4, 5, 1, 2]
    assert list(training["iteration"]) == [0] * 5 + [1] * 2  # the simtrace files' numbers
    assert list(evaluation["iteration"]) == [0] * EVALUATION_EPISODES + [1] * EVALUATION_EPISODES
    assert list(evaluation["episode"]) == [5, 5, 7, 7]

    ours = _json(trained_folder / "metrics" / "episodes.json")["episodes"]
    for phase, frame in (("training", training), ("evaluation", evaluation)):
        rows = [e for e in ours if e["phase"] == phase]
        assert list(frame["completion"]) == [int(e["progress"]) for e in rows]
        assert list(frame["reward"]) == [round(e["reward"]) for e in rows]
        assert list(frame["time"]) == pytest.approx([e["steps"] / 15 for e in rows], abs=1e-3)
        assert list(frame["complete"]) == [int(e["lap_complete"]) for e in rows]
    statuses = {row["episode_status"] for row in document["metrics"]}
    assert statuses <= {"Lap complete", "Off track", "Crashed", "Immobilized", "Reversed", "Time up"}
    assert all(row["metric_time"] >= row["start_time"] > 1.7e12 for row in document["metrics"])

    summary = metrics.getSummary()
    assert [index[1] for index in summary.index] == [0, 1]
    assert list(summary["train_episodes"]) == [5, 2] and list(summary["eval_episodes"]) == [2, 2]
    assert "metrics/TrainingMetrics.json" in inspect_archive(trained_folder / "model.tar.gz").members


def test_console_metrics_number_episodes_and_trials_like_the_simapp(tmp_path):
    def row(iteration, episode, phase, progress=12.5, status="off_track"):
        return {"iteration": iteration, "episode": episode, "phase": phase, "reward": 3.6, "progress": progress,
                "steps": 45, "status": status, "start_time": 1_800_000_000_000, "metric_time": 1_800_000_003_000}

    episodes = [row(1, e, "training") for e in range(3)] + [row(1, 0, "evaluation", 100.0, "lap_complete")]
    episodes += [row(2, e, "training") for e in range(3, 6)] + [row(2, 0, "evaluation"), row(2, 1, "evaluation")]
    document = console_training_metrics(episodes)
    assert [(m["phase"], m["episode"], m["trial"]) for m in document["metrics"]] == [
        ("training", 1, 1), ("training", 2, 2), ("training", 3, 3), ("evaluation", 3, 3),
        ("training", 4, 1), ("training", 5, 2), ("training", 6, 3), ("evaluation", 6, 3), ("evaluation", 6, 3)]
    first = document["metrics"][0]
    assert first == {"reward_score": 4, "metric_time": 1_800_000_003_000, "start_time": 1_800_000_000_000,
                     "elapsed_time_in_milliseconds": 3000, "episode": 1, "trial": 1, "phase": "training",
                     "completion_percentage": 12, "episode_status": "Off track"}
    assert document["metrics"][3]["episode_status"] == "Lap complete"

    path = tmp_path / "TrainingMetrics.json"
    path.write_text(json.dumps(document))
    metrics = _training_metrics(path)
    assert list(metrics.getTraining()["iteration"]) == [0, 0, 0, 1, 1, 1]
    assert list(metrics.getEvaluation()["iteration"]) == [0, 1, 1]
    assert list(metrics.getEvaluation()["complete"]) == [1, 0, 0]


def test_a_folder_from_before_zero_based_simtraces_is_renumbered_once(tmp_path):
    folder = ModelFolder(tmp_path)
    assert folder.training_simtrace(1).relative_to(tmp_path).as_posix() == "training-simtrace/0-iteration.csv"
    with pytest.raises(ValueError, match="count from 1"):
        folder.training_simtrace(0)
    assert folder.renumber_legacy_training_simtraces() == 0  # no simtraces at all
    legacy = tmp_path / "training-simtrace"
    legacy.mkdir()
    for number in (1, 2, 3):
        (legacy / f"{number}-iteration.csv").write_text(f"iteration {number}\n")
    assert folder.renumber_legacy_training_simtraces() == 3
    assert sorted(p.name for p in legacy.iterdir()) == ["0-iteration.csv", "1-iteration.csv", "2-iteration.csv"]
    assert [(legacy / f"{n}-iteration.csv").read_text() for n in range(3)] == [f"iteration {n}\n" for n in (1, 2, 3)]
    assert folder.renumber_legacy_training_simtraces() == 0  # already numbered from 0: untouched


@pytest.fixture(scope="module")
def three_laps():
    track, vehicle = build_builtin_track("pitlane_oval"), get_vehicle("original_deepracer")
    run = run_driver_race(PurePursuitDriver(track, max_speed=1.5), vehicle, RaceRules(total_laps=3),
                          record_simtrace=True)
    assert [lap.episode_status for lap in run.laps] == ["Lap complete"] * 3
    return vehicle, run


def test_an_evaluation_of_three_laps_aggregates_as_three_complete_laps(tmp_path, three_laps):
    vehicle, run = three_laps
    model_metadata_path(tmp_path).parent.mkdir(parents=True)
    model_metadata_path(tmp_path).write_text(json.dumps(vehicle.to_model_metadata()))
    path = write_simtrace_csv(evaluation_simtrace_path(tmp_path, datetime(2026, 12, 1, 10, 0, 0)), run.simtrace)
    assert path.read_text() == simtrace_csv_text(run.simtrace)  # what the evaluator's runner ships is the same

    log = DeepRacerLog(model_folder=str(tmp_path))
    log.load_evaluation_trace()
    trace = log.dataframe()
    # The lap_complete row belongs to the lap it completes (the simapp writes it before counting the lap).
    assert list(trace.loc[trace["episode_status"] == "lap_complete", "episode"]) == [0, 1, 2]
    laps = AnalysisUtils.simulation_agg(trace, "stream", "episode", is_eval=True)
    assert list(laps["episode"]) == [0, 1, 2]
    assert list(laps["progress"]) == [100.0, 100.0, 100.0]
    assert list(laps["complete"]) == [1, 1, 1]
    assert list(laps["crashed"]) == [0, 0, 0] and list(laps["off_track"]) == [0, 0, 0]
    lap_seconds = [lap.elapsed_time_in_milliseconds / 1000 for lap in run.laps]
    assert list(laps["time"]) == pytest.approx(lap_seconds, abs=1 / 15 + 1e-3)


def test_simulation_logs_io_sees_three_complete_laps_in_the_evaluation_log(tmp_path, three_laps):
    _, run = three_laps
    log = tmp_path / "evaluation-robomaker.log"
    with log.open("w") as stream:
        write_sim_trace_log(stream, run.simtrace)
    frame = SimulationLogsIO.convert_to_pandas(SimulationLogsIO.load_single_file(str(log)), stream="local")
    laps = AnalysisUtils.simulation_agg(frame, "stream", "episode", is_eval=True)
    assert list(laps["episode"]) == [0, 1, 2]
    assert list(laps["complete"]) == [1, 1, 1]
    assert np.all(laps["progress"].to_numpy() == 100.0)
