"""Our simtrace files and log lines are read by the real deepracer-utils package (PyPI)."""

import json
from datetime import datetime

import pytest
from deepracer.logs import DeepRacerLog, SimulationLogsIO

from sim.io.simtrace import (
    SIM_TRACE_FIELDS,
    SimTraceError,
    SimTraceRow,
    evaluation_simtrace_path,
    format_sim_trace_line,
    hyperparameters_path,
    model_metadata_path,
    parse_simtrace_csv,
    read_simtrace_csv,
    simtrace_csv_text,
    training_simtrace_path,
    write_sim_trace_log,
    write_simtrace_csv,
)

TRACK_LENGTH = 17.709159380834848
STEPS = 8


def episode_rows(episode: int, action: int | str = 3, final_status: str = "off_track") -> list[SimTraceRow]:
    """prepare, in_progress..., a 2-step penalty pause, then ``final_status`` (done) at step 8."""
    rows = []
    for step in range(1, STEPS + 1):
        status = {1: "prepare", 5: "pause", 6: "pause", STEPS: final_status}.get(step, "in_progress")
        rows.append(
            SimTraceRow(
                episode=episode,
                steps=float(step),
                X=3.2 + 0.05 * step,
                Y=0.68 + 0.01 * episode,
                yaw=10.6 + step,
                steer=-15.0,
                throttle=1.5,
                action=action,
                reward=0.0 if status in ("prepare", "pause") else 1.0 / step,
                done=step == STEPS,
                all_wheels_on_track=status != "off_track",
                progress=0.79 + step,
                closest_waypoint=1 + step // 3,
                track_len=TRACK_LENGTH,
                tstamp=6.211 + step / 15,
                episode_status=status,
                pause_duration={5: 1.9333333, 6: 1.8666667}.get(step, 0.0),
                obstacle_crash_counter=0,
            )
        )
    return rows


def test_log_line_matches_a_real_simapp_line_field_by_field():
    # From a console evaluation log (simapp v5.3 prints an 18th field, the obstacle crash counter).
    real = "SIM_TRACE_LOG:0,1,3.1999,0.6831,0.1858,-30.00,1.00,0,0.0000,False,True,0.7913,1,17.71,6.211,prepare,0.00,0"
    row = SimTraceRow(0, 1.0, 3.19994, 0.68311, 0.18577, -30.0, 1.0, 0, 0.0, False, True, 0.79131, 1, TRACK_LENGTH,
                      6.2110000001, "prepare", 0.0, 0)
    assert format_sim_trace_line(row) == real
    assert len(real.removeprefix("SIM_TRACE_LOG:").split(",")) == len(SIM_TRACE_FIELDS) == 18


def test_log_line_of_a_continuous_action_in_a_penalty_pause():
    row = episode_rows(7, action="[-12.50 1.70]")[4]._replace(all_wheels_on_track=False)
    assert format_sim_trace_line(row) == (
        "SIM_TRACE_LOG:7,5,3.4500,0.7500,15.6000,-15.00,1.50,[-12.50 1.70],0.0000,False,False,5.7900,2,17.71,"
        "6.544,pause,1.93,0"
    )


def test_rows_may_be_mappings_and_a_missing_field_is_named():
    row = episode_rows(0)[1]
    assert format_sim_trace_line(row._asdict()) == format_sim_trace_line(row)
    incomplete = {k: v for k, v in row._asdict().items() if k not in ("X", "pause_duration")}
    with pytest.raises(SimTraceError, match=r"simtrace record is missing X$"):
        format_sim_trace_line(incomplete)


def test_deepracer_utils_parses_our_log_lines(tmp_path):
    log = tmp_path / "robomaker.log"
    with log.open("w") as stream:
        stream.write("some other simulator output\n")
        write_sim_trace_log(stream, episode_rows(0))
        write_sim_trace_log(stream, episode_rows(1, action="[-12.50 1.70]", final_status="lap_complete"))
    df = SimulationLogsIO.convert_to_pandas(SimulationLogsIO.load_single_file(str(log)), episodes_per_iteration=2)
    assert len(df) == 2 * STEPS
    assert list(df["steps"].iloc[:STEPS]) == list(range(1, STEPS + 1))
    assert list(df["episode_status"].iloc[:STEPS]) == [
        "prepare", "in_progress", "in_progress", "in_progress", "pause", "pause", "in_progress", "off_track"]
    assert df["x"].iloc[2] == pytest.approx(3.35) and df["y"].iloc[STEPS] == pytest.approx(0.69)
    assert df["progress"].iloc[STEPS - 1] == pytest.approx(8.79) and df["tstamp"].iloc[0] == pytest.approx(6.278)
    assert df["pause_duration"].iloc[4] == pytest.approx(1.93)
    assert list(df["action"]) == [3] * STEPS + [-1] * STEPS  # continuous actions are -1 to deepracer-utils
    assert df["steering_angle"].iloc[STEPS] == -15.0 and df["speed"].iloc[STEPS] == 1.5
    assert bool(df["done"].iloc[STEPS - 1]) and not bool(df["done"].iloc[STEPS - 2])
    assert not bool(df["on_track"].iloc[STEPS - 1]) and bool(df["on_track"].iloc[0])
    assert list(df["iteration"].unique()) == [0]


def _drfc_model_folder(root, action_space_type: str = "discrete"):
    action_space = ([{"steering_angle": a, "speed": 1.5} for a in (-30, -15, 0, 15, 30)]
                    if action_space_type == "discrete"
                    else {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0.5, "high": 3.0}})
    model_metadata_path(root).parent.mkdir(parents=True)
    model_metadata_path(root).write_text(json.dumps({
        "action_space": action_space, "sensor": ["FRONT_FACING_CAMERA"],
        "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "training_algorithm": "clipped_ppo",
        "action_space_type": action_space_type, "version": "5",
    }))
    hyperparameters_path(root).parent.mkdir(parents=True)
    hyperparameters_path(root).write_text(json.dumps({"batch_size": 64, "num_episodes_between_training": 2}))


def test_deepracer_utils_reads_our_training_simtrace_folder(tmp_path):
    _drfc_model_folder(tmp_path)
    for iteration in range(2):
        episodes = (2 * iteration, 2 * iteration + 1)  # the episode counter runs on across iterations
        rows = [r for e in episodes for r in episode_rows(e, final_status="lap_complete" if e % 2 else "off_track")]
        write_simtrace_csv(training_simtrace_path(tmp_path, iteration), rows)
    log = DeepRacerLog(model_folder=str(tmp_path))
    log.load_training_trace()
    df = log.dataframe().sort_values(["episode", "steps"]).reset_index(drop=True)
    assert len(df) == 4 * STEPS and sorted(df["iteration"].unique()) == [0, 1]
    assert sorted(df["unique_episode"].unique()) == [0, 1, 2, 3]
    assert list(df["steps"].iloc[:STEPS]) == [float(s) for s in range(1, STEPS + 1)]
    assert df["x"].iloc[1] == pytest.approx(3.3) and df["y"].iloc[3 * STEPS] == pytest.approx(0.71)
    assert df["progress"].iloc[STEPS - 1] == pytest.approx(8.79)
    assert list(df.groupby("episode")["episode_status"].last()) == ["off_track", "lap_complete"] * 2
    assert (df["episode_status"] == "pause").sum() == 8 and df["pause_duration"].iloc[4] == pytest.approx(1.9333333)
    assert not df["on_track"].iloc[STEPS - 1] and df["on_track"].iloc[2 * STEPS - 1]
    assert (df["action"] == 3).all() and (df["speed"] == 1.5).all() and (df["steering_angle"] == -15.0).all()
    assert df["reward"].iloc[1] == pytest.approx(0.5)
    assert log.action_space()[0] == {"steering_angle": -30, "speed": 1.5}
    assert log.hyperparameters()["batch_size"] == 64


def test_deepracer_utils_reads_our_evaluation_simtrace_with_continuous_actions(tmp_path):
    _drfc_model_folder(tmp_path, action_space_type="continuous")
    rows = episode_rows(0, action="[-12.50 1.70]", final_status="lap_complete")
    write_simtrace_csv(evaluation_simtrace_path(tmp_path, datetime(2026, 11, 23, 12, 0, 0)), rows)
    assert evaluation_simtrace_path(tmp_path, datetime(2026, 11, 23, 12, 0, 0)).relative_to(tmp_path).as_posix() == (
        "evaluation-20261123120000/evaluation-simtrace/0-iteration.csv")
    log = DeepRacerLog(model_folder=str(tmp_path))
    log.load_evaluation_trace()
    df = log.dataframe()
    assert len(df) == STEPS and df["stream"].iloc[0] == "20261123120000"
    assert (df["action"] == -1).all()  # deepracer-utils marks non-numeric (continuous) actions as -1
    assert (df["steering_angle"] == -15.0).all() and (df["speed"] == 1.5).all()
    assert df["x"].iloc[7] == pytest.approx(3.6) and df["progress"].iloc[7] == pytest.approx(8.79)
    assert list(df["episode_status"].iloc[3:6]) == ["in_progress", "pause", "pause"]
    assert df["pause_duration"].iloc[5] == pytest.approx(1.8666667)


def test_csv_is_written_like_the_simapp_and_round_trips_through_our_reader(tmp_path):
    rows = episode_rows(4, action="[-12.50 1.70]")
    path = write_simtrace_csv(tmp_path / "deep" / "0-iteration.csv", rows)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(SIM_TRACE_FIELDS)
    # str() of every value: full precision, steps as 1.0, True/False, tstamp at ms resolution.
    assert lines[1] == ("4,1.0,3.25,0.7200000000000001,11.6,-15.0,1.5,[-12.50 1.70],0.0,False,True,1.79,1,"
                        "17.709159380834848,6.278,prepare,0.0,0")
    expected = [row._replace(tstamp=round(row.tstamp, 3)) for row in rows]  # sim time has ms resolution
    assert read_simtrace_csv(path) == expected and list(parse_simtrace_csv(simtrace_csv_text(rows))) == expected
    assert read_simtrace_csv(str(path)) == expected


def test_simapp_csvs_without_the_crash_counter_are_read_and_garbage_is_refused():
    legacy = simtrace_csv_text(episode_rows(0)).splitlines()
    seventeen = "\n".join(line.rsplit(",", 1)[0] for line in legacy)
    assert [row.obstacle_crash_counter for row in parse_simtrace_csv(seventeen)] == [0] * STEPS
    with pytest.raises(SimTraceError, match="the header lacks"):
        list(parse_simtrace_csv("a,b\n1,2\n"))
    broken = legacy[0] + "\n" + legacy[1].replace("False", "maybe", 1)
    with pytest.raises(SimTraceError, match="simtrace CSV line 2: expected True or False, got 'maybe'"):
        list(parse_simtrace_csv(broken))


@pytest.mark.parametrize("vehicle_name", ["original_deepracer", "continuous_camera"])
def test_deepracer_utils_reads_the_simtrace_of_a_real_race(tmp_path, vehicle_name):
    from sim.race.drivers import PurePursuitDriver
    from sim.race.evaluation import run_driver_race
    from sim.world.builtin_tracks import build_builtin_track
    from sim.world.rules import RaceRules
    from sim.world.vehicle import get_vehicle

    track, vehicle = build_builtin_track("pitlane_oval"), get_vehicle(vehicle_name)
    run = run_driver_race(PurePursuitDriver(track, max_speed=1.0), vehicle, RaceRules(total_laps=1),
                          record_simtrace=True)
    model_metadata_path(tmp_path).parent.mkdir(parents=True)
    model_metadata_path(tmp_path).write_text(json.dumps(vehicle.to_model_metadata()))
    write_simtrace_csv(evaluation_simtrace_path(tmp_path, datetime(2026, 11, 24, 9, 30, 0)), run.simtrace)

    log = DeepRacerLog(model_folder=str(tmp_path))
    log.load_evaluation_trace()
    df = log.dataframe()
    assert len(df) == len(run.simtrace) and list(df["steps"]) == [float(s) for s in range(1, len(df) + 1)]
    assert df["episode_status"].iloc[0] == "prepare" and df["episode_status"].iloc[-1] == "lap_complete"
    assert df["progress"].iloc[-1] == 100.0 and df["done"].iloc[-1]
    assert df["x"].to_numpy() == pytest.approx([row.X for row in run.simtrace])
    assert df["y"].to_numpy() == pytest.approx([row.Y for row in run.simtrace])
    assert df["track_len"].iloc[0] == pytest.approx(track.length)
    expected_actions = [row.action for row in run.simtrace] if vehicle.is_discrete else [-1] * len(df)
    assert list(df["action"]) == expected_actions
