"""The camera film: what the first evaluation car saw, recorded by the trainer, saved by the sandboxed runner and
checked before the web side turns it into a GIF (the file is written by a process running the racer's code)."""

import io

import numpy as np
import pytest
from PIL import Image

from sim.io.camera_film import (
    FILM_EVERY_STEPS,
    MAX_FILM_FRAMES,
    FilmError,
    FilmRecorder,
    camera_frames,
    film_gif,
    load_film,
    save_film,
)
from sim.learn.config import TrainingConfig
from sim.learn.hyperparameters import Hyperparameters
from sim.learn.training import start_training
from sim.world.reward_examples import example_source
from sim.world.vehicle import DiscreteActionSpace, Vehicle


def test_a_stereo_cars_lenses_are_shown_side_by_side_and_a_lidar_is_not_filmed():
    stereo = np.zeros((3, 120, 160, 2), np.uint8)
    stereo[..., 0], stereo[..., 1] = 10, 200  # left lens dark, right lens bright
    frames = camera_frames({"STEREO_CAMERAS": stereo, "LIDAR": np.ones((3, 64), np.float32)})
    assert frames.shape == (3, 120, 320)
    assert (frames[:, :, :160] == 10).all() and (frames[:, :, 160:] == 200).all()
    assert camera_frames(np.full((2, 120, 160, 1), 7, np.uint8)).shape == (2, 120, 160)
    assert camera_frames(np.ones((2, 64), np.float32)) is None
    assert camera_frames({"LIDAR": np.ones((2, 64), np.float32)}) is None


def test_the_recorder_keeps_every_other_frame_of_its_car_up_to_the_limit():
    recorder = FilmRecorder(car=1)
    for step in range(2 * MAX_FILM_FRAMES + 10):
        batch = np.zeros((2, 120, 160, 1), np.uint8)
        batch[1] = step % 256
        recorder.observe(batch)
    film = recorder.film()
    assert film.shape == (MAX_FILM_FRAMES, 120, 160)
    assert [int(frame[0, 0]) for frame in film[:3]] == [0, FILM_EVERY_STEPS, 2 * FILM_EVERY_STEPS]
    recorder.reset()
    assert recorder.film() is None


def test_a_saved_film_loads_back_and_plays_as_a_gif_at_driving_speed(tmp_path):
    film = np.random.default_rng(0).integers(0, 256, (12, 120, 160), dtype=np.uint8)
    save_film(film, tmp_path / "camera-00001.npy")
    assert [p.name for p in tmp_path.iterdir()] == ["camera-00001.npy"]  # no partial file left behind
    loaded = load_film((tmp_path / "camera-00001.npy").read_bytes())
    np.testing.assert_array_equal(loaded, film)
    gif = Image.open(io.BytesIO(film_gif(loaded)))
    assert gif.format == "GIF" and gif.size == (160, 120) and gif.n_frames == 12
    # 133 ms a frame (the camera's 15 Hz, every 2nd frame), to the hundredth of a second a GIF keeps
    assert abs(gif.info["duration"] - 1000 * FILM_EVERY_STEPS / 15) <= 5


def _npy(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


@pytest.mark.parametrize("data, words", [
    (b"GIF89a not a film", "not a film"),
    (_npy(np.array([{"x": 1}], dtype=object)), "not a film"),  # a pickle is never unpickled
    (_npy(np.zeros((4, 120, 160), np.float32)), "uint8"),
    (_npy(np.zeros((4, 120), np.uint8)), "uint8"),
    (_npy(np.zeros((MAX_FILM_FRAMES + 1, 120, 160), np.uint8)), "not 151 of 160x120"),
    (_npy(np.zeros((4, 480, 640), np.uint8)), "not 4 of 640x480"),
    (_npy(np.zeros((0, 120, 160), np.uint8)), "not 0 of"),
])
def test_a_film_that_is_not_a_cameras_frames_is_refused(data, words):
    with pytest.raises(FilmError, match=words):
        load_film(data)


def test_pickles_inside_a_film_are_not_run(tmp_path):
    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    with pytest.raises(FilmError):
        load_film(_npy(np.array([Boom()], dtype=object)))
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("sensor, width", [("FRONT_FACING_CAMERA", 160), ("STEREO_CAMERAS", 320)])
def test_the_trainer_films_the_first_evaluation_car_until_its_episode_ends(tmp_path, sensor, width):
    vehicle = Vehicle(sensors=(sensor,), neural_network="DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
                      action_space=DiscreteActionSpace.from_granularity(30, 3, 1, 1))
    config = TrainingConfig(track="pitlane_oval", vehicle=vehicle,
                            reward_function_source=example_source("example_1_follow_center_line"),
                            hyperparameters=Hyperparameters(episodes_between_training=5), evaluation_episodes=2,
                            max_episode_steps=40, record_simtrace=False)
    trainer = start_training(tmp_path / "model", config)
    trainer.film = FilmRecorder()
    episodes = trainer.evaluate()
    film = trainer.film.film()
    first = episodes[0]
    assert film.shape == (-(-first["steps"] // FILM_EVERY_STEPS), 120, width), first
    assert film.std() > 0  # the track, not a blank frame


def test_a_films_file_name_names_its_iteration_and_nothing_else_does():
    from sim.io.camera_film import film_file_name, film_iteration

    assert film_file_name(12) == "camera-00012.npy" and film_iteration("camera-00012.npy") == 12
    for other in ("camera-12.npy", "camera-00012.npy.partial", ".camera-00012.npy.partial", "log.txt",
                  "camera-abcde.npy", "trajectories.json"):
        assert film_iteration(other) is None, other
