"""Our simtrace files and log lines are read by the real deepracer-utils package (PyPI)."""

import json
from datetime import datetime

import pytest
from deepracer.logs import DeepRacerLog, SimulationLogsIO

from sim.simtrace import (
    SIM_TRACE_FIELDS,
    SimTraceRow,
    evaluation_simtrace_path,
    format_sim_trace_line,
    hyperparameters_path,
    model_metadata_path,
    read_simtrace_csv,
    simtrace_csv_text,
    training_simtrace_path,
    write_sim_trace_log,
    write_simtrace_csv,
)

TRACK_LENGTH = 17.709159380834848


def episode_rows(episode: int, steps: int = 6, action="3", final_status: str = "off_track") -> list[SimTraceRow]:
    rows = []
    for step in range(1, steps + 1):
        status = "prepare" if step == 1 else final_status if step == steps else "in_progress"
        rows.append(
            SimTraceRow(
                episode=episode,
                steps=float(step),
                X=3.2 + 0.05 * step,
                Y=0.68 + 0.01 * episode,
                yaw=0.1858,
                steer=-15.0,
                throttle=1.0,
                action=int(action) if action.isdigit() else action,
                reward=0.0 if step == 1 else 1.0,
                done=step == steps,
                all_wheels_on_track=status != "off_track",
                progress=0.79 + step,
                closest_waypoint=1 + step // 3,
                track_len=TRACK_LENGTH,
                tstamp=6.211 + step / 15,
                episode_status=status,
                pause_duration=0.0,
            )
        )
    return rows


def test_log_line_matches_the_simapp_format_field_by_field():
    row = SimTraceRow(0, 1.0, 3.1999, 0.6831, 0.1858, -30.0, 1.0, 0, 0.0, False, True, 0.7913, 1, 17.709, 6.211,
                      "prepare", 0.0, 0)
    assert format_sim_trace_line(row) == (
        "SIM_TRACE_LOG:0,1,3.1999,0.6831,0.1858,-30.00,1.00,0,0.0000,False,True,0.7913,1,17.71,6.211,prepare,0.00,0"
    )
    assert len(format_sim_trace_line(row).split(":", 1)[1].split(",")) == len(SIM_TRACE_FIELDS) == 18


def test_deepracer_utils_parses_our_log_lines(tmp_path):
    log = tmp_path / "robomaker.log"
    with log.open("w") as stream:
        stream.write("some other simulator output\n")
        for episode in range(3):
            write_sim_trace_log(stream, episode_rows(episode))
    data = SimulationLogsIO.load_single_file(str(log))
    df = SimulationLogsIO.convert_to_pandas(data, episodes_per_iteration=3)
    assert len(df) == 18
    first = df.iloc[0]
    assert first["episode"] == 0 and first["steps"] == 1 and first["x"] == pytest.approx(3.25)
    assert list(df["episode_status"].iloc[:6]) == ["prepare", *["in_progress"] * 4, "off_track"]
    assert df["progress"].iloc[5] == pytest.approx(6.79)
    assert bool(df["done"].iloc[5]) and not bool(df["done"].iloc[4])


def _drfc_model_folder(root):
    model_metadata_path(root).parent.mkdir(parents=True)
    model_metadata_path(root).write_text(json.dumps({
        "action_space": [{"steering_angle": a, "speed": 1.0} for a in (-30, -15, 0, 15, 30)],
        "sensor": ["FRONT_FACING_CAMERA"], "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo", "action_space_type": "discrete", "version": "5",
    }))
    hyperparameters_path(root).parent.mkdir(parents=True)
    hyperparameters_path(root).write_text(json.dumps({"batch_size": 64, "num_episodes_between_training": 2}))


def test_deepracer_utils_reads_our_training_simtrace_folder(tmp_path):
    _drfc_model_folder(tmp_path)
    for iteration in range(2):
        rows = [r for e in (2 * iteration, 2 * iteration + 1) for r in episode_rows(e, final_status="lap_complete")]
        write_simtrace_csv(training_simtrace_path(tmp_path, iteration), rows)
    log = DeepRacerLog(model_folder=str(tmp_path))
    log.load_training_trace()
    df = log.dataframe()
    assert len(df) == 24 and sorted(df["iteration"].unique()) == [0, 1]
    assert df["unique_episode"].nunique() == 4
    assert set(df["episode_status"]) == {"prepare", "in_progress", "lap_complete"}
    assert df["x"].iloc[1] == pytest.approx(3.3) and df["steps"].iloc[1] == 2.0
    assert (df["action"] == 3).all()
    assert log.action_space() is not None


def test_deepracer_utils_reads_our_evaluation_simtrace_with_continuous_actions(tmp_path):
    _drfc_model_folder(tmp_path)
    rows = episode_rows(0, action="[-12.5 1.7]", final_status="lap_complete")
    rows[3] = rows[3]._replace(episode_status="pause", pause_duration=1.93)
    write_simtrace_csv(evaluation_simtrace_path(tmp_path, datetime(2026, 11, 23, 12, 0, 0)), rows)
    log = DeepRacerLog(model_folder=str(tmp_path))
    log.load_evaluation_trace()
    df = log.dataframe()
    assert len(df) == 6
    assert (df["action"] == -1).all()  # deepracer-utils marks non-numeric (continuous) actions as -1
    assert df["pause_duration"].iloc[3] == pytest.approx(1.93) and df["episode_status"].iloc[3] == "pause"


def test_csv_round_trips_through_our_reader(tmp_path):
    rows = episode_rows(4, action="[-12.5 1.7]")
    assert list(read_simtrace_csv(simtrace_csv_text(rows))) == rows
    path = write_simtrace_csv(tmp_path / "0-iteration.csv", rows)
    assert path.read_text().splitlines()[0] == ",".join(SIM_TRACE_FIELDS)
    assert path.read_text().splitlines()[1].split(",")[1] == "1.0"  # steps as a float, like the simapp
