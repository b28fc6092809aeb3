"""The league races networks with a fast plan (the sandbox's ONNX plan, ``sim.learn.onnx_plan``; torch's own,
``sim.learn.inference``): proof that it drives like the fp32 network.

The tolerance claimed (sim/learn/inference.py, docs/evaluator.md), checked here on trained models on real tracks:
- open loop, on every frame of the fp32 run, the fast plan picks the fp32 network's action on >= 99 % of the steps;
- closed loop, the race has the same laps with the same statuses and off-track counts, and every lap time is within
  2 % of the fp32 lap's.
Measured on the demo race's car and on the oval's lapping model: every action and every lap identical. The raw
outputs (logits, Gaussian means) of every network the garage builds stay within 2 % of their scale.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sim.io.archive import load_actor_critic
from sim.learn.agent import cpu_has_native_bf16, race_policy
from sim.learn.inference import PRECISIONS, RacePlan, resolve_precision
from sim.learn.networks import build_actor_critic
from sim.learn.onnx_plan import race_plan_bytes
from sim.race.evaluation import run_race
from sim.race.onnx_policy import OnnxRacePolicy
from sim.world.builtin_tracks import build_builtin_track
from sim.world.rules import RaceRules
from sim.world.vehicle import (
    FRONT_FACING_CAMERA,
    LIDAR,
    NEURAL_NETWORKS,
    SECTOR_LIDAR,
    STEREO_CAMERAS,
    ContinuousActionSpace,
    DiscreteActionSpace,
    Vehicle,
    get_vehicle,
)

AGREEMENT_AT_LEAST = 0.99  # share of the fp32 run's steps on which the fast plan picks the same action
LAP_TIME_WITHIN = 0.02  # relative difference of each lap time
OUTPUT_WITHIN = 0.02  # raw outputs: max |fast - fp32| / max |fp32|
# The ONNX plan also quantises the large layer's INPUT (int8 per block of 32): on these untrained networks, whose
# outputs are small sums of large cancelling terms, that moves outputs by up to 8.4 % of their scale (the 3-layer CNN,
# continuous; 0.02-1.2 % for the others). Trained models are what it races: 0.03-0.2 % there, same laps (below).
ONNX_OUTPUT_WITHIN = 0.1
# The demo race's rules (races.setup): 3 laps, 2 s off-track penalty, unlimited resets, 180 s cap.
DEMO_RULES = RaceRules(total_laps=3, off_track_penalty_s=2.0, collision_penalty_s=5.0, max_resets=None,
                       time_cap_s=180)

# bfloat16 where it is emulated is correct but ~15x slower: the races below only use it where it is native.
# "onnx": the sandbox's plan (sim.learn.onnx_plan raced by sim.race.onnx_policy, no torch).
FAST_PLANS = ["onnx", "int8"] + (["int8+bf16"] if cpu_has_native_bf16() else [])


def _fast_policy(vehicle: Vehicle, network, precision: str):
    return OnnxRacePolicy(race_plan_bytes(network), vehicle) if precision == "onnx" else race_policy(network, precision)


def _camera_images(rng: np.random.Generator, count: int, channels: int) -> np.ndarray:
    return rng.integers(0, 256, (count, 120, 160, channels), dtype=np.uint8)


@pytest.mark.parametrize("network", NEURAL_NETWORKS)
@pytest.mark.parametrize("sensors", [(FRONT_FACING_CAMERA,), (STEREO_CAMERAS, LIDAR),
                                     (FRONT_FACING_CAMERA, SECTOR_LIDAR)],
                         ids=["camera", "stereo+lidar", "camera+sector_lidar"])
@pytest.mark.parametrize("discrete", [True, False], ids=["discrete", "continuous"])
def test_every_network_gives_the_fp32_outputs_within_tolerance(network, sensors, discrete):
    space = (DiscreteActionSpace.from_granularity(30, 5, 1, 3) if discrete
             else ContinuousActionSpace(-30.0, 30.0, 0.5, 2.0))
    vehicle = Vehicle(sensors, network, space)
    model = build_actor_critic(vehicle, seed=0).eval()
    head = model.policy_net.head
    with torch.no_grad():  # undo the init's 0.01 head gain: outputs of a trained network's size
        (head.logits if discrete else head.mean).weight.mul_(100)
    rng = np.random.default_rng(1)
    images = _camera_images(rng, 3, 2 if STEREO_CAMERAS in sensors else 1)
    observations = images if len(sensors) == 1 else {
        sensors[0]: images, sensors[1]: rng.random((3, 64 if sensors[1] == LIDAR else 8)).astype(np.float32)}
    with torch.inference_mode():
        reference = model._policy_output(*model.prepare(observations))
        for conv_dtype in (torch.float32, torch.bfloat16):
            plan = RacePlan(model, conv_dtype)
            raw = plan.raw_output(observations)
            assert raw.dtype == torch.float32 and raw.shape == reference.shape
            scale = float(reference.abs().max())
            assert float((raw - reference).abs().max()) <= OUTPUT_WITHIN * scale
            # A batch gives each row's single-car result.
            for row in range(3):
                one = images[row : row + 1] if len(sensors) == 1 else {k: v[row : row + 1] for k, v in
                                                                         observations.items()}
                torch.testing.assert_close(plan.raw_output(one)[0], raw[row], rtol=1e-4, atol=1e-5 * scale)
            actions = plan(observations)
            assert actions.shape == ((3,) if discrete else (3, 2))
            if discrete:
                np.testing.assert_array_equal(actions, raw.argmax(-1).numpy())
    # The sandbox's ONNX plan, one car at a time as races run it (its input quantisation is per call).
    plan = OnnxRacePolicy(race_plan_bytes(model), vehicle)
    for row in range(3):
        one = images[row : row + 1] if len(sensors) == 1 else {k: v[row : row + 1] for k, v in observations.items()}
        raw = plan.raw_output(one)
        assert raw.dtype == np.float32 and raw.shape == (1, reference.shape[1])
        scale = float(reference[row].abs().max())
        assert float(np.abs(raw[0] - reference[row].numpy()).max()) <= ONNX_OUTPUT_WITHIN * scale
        action = plan(one)
        if discrete:
            assert action.shape == (1,) and action[0] == raw[0].argmax()
        else:
            np.testing.assert_array_equal(action, raw)


def test_precisions_and_the_fp32_reference():
    assert resolve_precision("auto") == ("int8+bf16" if cpu_has_native_bf16() else "int8")
    assert {resolve_precision(p) for p in PRECISIONS} <= set(PRECISIONS) - {"auto"}
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16")
    vehicle = get_vehicle("pitlane_racer")
    model = build_actor_critic(vehicle, seed=3).eval()
    images = _camera_images(np.random.default_rng(2), 4, 1)
    # fp32 is the network exactly: the same call the trainer's evaluation makes.
    np.testing.assert_array_equal(race_policy(model, "fp32")(images), model.predict(images).numpy())


def _race_both_ways(vehicle: Vehicle, network, track, precision: str, rules: RaceRules = DEMO_RULES):
    frames: list[np.ndarray] = []
    reference = race_policy(network, "fp32")

    def recording(observations: np.ndarray) -> np.ndarray:
        frames.append(observations.copy())
        return reference(observations)

    exact = run_race(recording, track, vehicle, rules, record_simtrace=False)
    fast = _fast_policy(vehicle, network, precision)
    expected = np.concatenate([reference(frame) for frame in frames])
    chosen = np.concatenate([fast(frame) for frame in frames])
    agreement = float(np.mean(chosen == expected))
    return exact, run_race(fast, track, vehicle, rules, record_simtrace=False), agreement


def _assert_same_race(exact, fast, agreement: float) -> None:
    assert agreement >= AGREEMENT_AT_LEAST
    assert [lap.episode_status for lap in fast.laps] == [lap.episode_status for lap in exact.laps]
    assert [lap.off_track_count for lap in fast.laps] == [lap.off_track_count for lap in exact.laps]
    for lap, reference in zip(fast.laps, exact.laps, strict=True):
        difference = abs(lap.elapsed_time_in_milliseconds - reference.elapsed_time_in_milliseconds)
        assert difference <= LAP_TIME_WITHIN * reference.elapsed_time_in_milliseconds


@pytest.fixture(scope="module")
def demo_car():
    """The demo race's baseline entry, made as races.setup makes it: the garage's pitlane_racer cloned from the
    racing-line driver on the technical loop (~1 min of CPU)."""
    from sim.learn.imitation import clone_racing_line_driver

    track = build_builtin_track("pitlane_technical").with_direction("counterclockwise")
    vehicle = get_vehicle("pitlane_racer")
    network = clone_racing_line_driver(track, vehicle).network.eval()
    return vehicle, network, track


@pytest.mark.slow
@pytest.mark.parametrize("precision", FAST_PLANS)
def test_the_demo_race_is_raced_alike_by_the_fast_plan(demo_car, precision):
    vehicle, network, track = demo_car
    exact, fast, agreement = _race_both_ways(vehicle, network, track, precision)
    assert [lap.episode_status for lap in exact.laps] == ["Lap complete"] * 3  # a model that laps: a real test
    assert all(lap.off_track_count == 0 for lap in exact.laps)
    _assert_same_race(exact, fast, agreement)


@pytest.mark.slow
@pytest.mark.parametrize("precision", FAST_PLANS)
def test_the_lapping_model_is_raced_alike_by_the_fast_plan(lapping_archive, tmp_path, precision):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(lapping_archive)
    vehicle, network = load_actor_critic(archive)
    track = build_builtin_track("pitlane_oval")
    exact, fast, agreement = _race_both_ways(vehicle, network, track, precision)
    assert [lap.episode_status for lap in exact.laps] == ["Lap complete"] * 3
    _assert_same_race(exact, fast, agreement)
