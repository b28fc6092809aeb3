"""The SPEC §4 networks: shapes for every network and sensor combination, parameter counts, act()."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sim.learn.networks import (
    LOG_STD_MAX,
    build_actor_critic,
    expected_state_dict_layout,
    parameter_count,
)
from sim.world.vehicle import (
    DEEP_CONVOLUTIONAL_NETWORK,
    DEEP_CONVOLUTIONAL_NETWORK_DEEP,
    DEEP_CONVOLUTIONAL_NETWORK_SHALLOW,
    FRONT_FACING_CAMERA,
    LIDAR,
    NEURAL_NETWORKS,
    SECTOR_LIDAR,
    STEREO_CAMERAS,
    ContinuousActionSpace,
    DiscreteActionSpace,
    Vehicle,
)

SENSOR_SETS = {
    "camera": (FRONT_FACING_CAMERA,),
    "stereo": (STEREO_CAMERAS,),
    "camera+lidar": (FRONT_FACING_CAMERA, LIDAR),
    "camera+sector_lidar": (FRONT_FACING_CAMERA, SECTOR_LIDAR),
    "stereo+lidar": (STEREO_CAMERAS, LIDAR),
}
LAB_ACTIONS = DiscreteActionSpace.from_granularity(30, 5, 1, 3)


def observations(vehicle: Vehicle, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    channels = 2 if vehicle.camera == STEREO_CAMERAS else 1
    result = {vehicle.camera: rng.integers(0, 256, (batch, 120, 160, channels), dtype=np.uint8)}
    if vehicle.lidar == LIDAR:
        result[LIDAR] = rng.uniform(0.15, 1.0, (batch, 64)).astype(np.float32)
    elif vehicle.lidar == SECTOR_LIDAR:
        result[SECTOR_LIDAR] = rng.integers(0, 2, (batch, 8)).astype(np.float32)
    return result


@pytest.mark.parametrize("network", list(NEURAL_NETWORKS))
@pytest.mark.parametrize("sensors", list(SENSOR_SETS), ids=list(SENSOR_SETS))
def test_output_shapes_for_every_network_and_sensor_combination(network: str, sensors: str) -> None:
    vehicle = Vehicle(SENSOR_SETS[sensors], network, LAB_ACTIONS)
    model = build_actor_critic(vehicle, seed=0)
    with torch.no_grad():
        logits, values = model(observations(vehicle, 3))
    assert logits.shape == (3, 15) and values.shape == (3,)
    assert {name: (tuple(t.shape), t.dtype) for name, t in model.state_dict().items()} == expected_state_dict_layout(
        vehicle
    )


def test_layer_sizes_match_the_simapp() -> None:
    """research/simapp.md §4.2: 29x39x32 -> 13x18x64 -> 11x16x64 = 11264 -> 512 for the 3-layer CNN."""
    shallow = expected_state_dict_layout(
        Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_SHALLOW, LAB_ACTIONS)
    )
    assert shallow["policy_net.camera.conv1.weight"][0] == (32, 1, 8, 8)
    assert shallow["policy_net.camera.conv3.weight"][0] == (64, 64, 3, 3)
    assert shallow["policy_net.middleware.fc1.weight"][0] == (512, 11 * 16 * 64)
    five = expected_state_dict_layout(Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK, LAB_ACTIONS))
    assert five["policy_net.camera.fc1.weight"][0] == (64, 25 * 35 * 64)  # 58x78 -> 56x76 -> 27x37 -> 25x35
    assert five["policy_net.middleware.fc1.weight"][0] == (512, 64)
    deep = expected_state_dict_layout(Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_DEEP, LAB_ACTIONS))
    assert deep["policy_net.camera.fc1.weight"][0] == (512, 3 * 6 * 64)
    assert [deep[f"policy_net.middleware.fc{i}.weight"][0] for i in (1, 2)] == [(256, 512), (128, 256)]
    stereo = expected_state_dict_layout(Vehicle((STEREO_CAMERAS,), DEEP_CONVOLUTIONAL_NETWORK, LAB_ACTIONS))
    assert stereo["policy_net.camera.conv1.weight"][0] == (32, 2, 3, 3)
    assert stereo["policy_net.middleware.fc1.weight"][0] == (512, 25 * 35 * 128)
    lidar = expected_state_dict_layout(
        Vehicle((FRONT_FACING_CAMERA, LIDAR), DEEP_CONVOLUTIONAL_NETWORK_SHALLOW, LAB_ACTIONS)
    )
    assert lidar["policy_net.lidar.fc1.weight"][0] == (256, 64)
    assert lidar["policy_net.middleware.fc1.weight"][0] == (512, 11264 + 256)


def test_parameter_counts() -> None:
    """Two full towers; the 3-layer CNN is dominated by its 11264x512 middleware."""
    tower = (32 * 8 * 8 + 32) + (64 * 32 * 16 + 64) + (64 * 64 * 9 + 64) + (11264 * 512 + 512)
    vehicle = Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_SHALLOW, LAB_ACTIONS)
    assert parameter_count(vehicle) == 2 * tower + (512 * 15 + 15) + (512 + 1)
    assert parameter_count(vehicle) == sum(p.numel() for p in build_actor_critic(vehicle).parameters())
    continuous = Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_SHALLOW, ContinuousActionSpace())
    assert parameter_count(continuous) == 2 * tower + (512 * 2 + 2 + 2) + (512 + 1)  # + log-std


def test_towers_share_nothing() -> None:
    model = build_actor_critic(Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_DEEP, LAB_ACTIONS))
    policy = {id(p) for p in model.policy_net.parameters()}
    value = {id(p) for p in model.value_net.parameters()}
    assert policy and value and not policy & value
    model.value(observations(model.vehicle, 2)).sum().backward()
    assert all(p.grad is None for p in model.policy_net.parameters())


def test_act_deterministic_is_the_argmax_and_sampling_is_seeded() -> None:
    vehicle = Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_DEEP, LAB_ACTIONS)
    model = build_actor_critic(vehicle, seed=0)
    with torch.no_grad():
        model.policy_net.head.logits.bias.copy_(torch.arange(15.0))  # make the argmax unambiguous
    batch = observations(vehicle, 5)
    act = model.act(batch, deterministic=True)
    logits, values = model(batch)
    assert torch.equal(act.action, logits.argmax(-1)) and act.action.dtype == torch.int64
    assert torch.allclose(act.log_prob, torch.log_softmax(logits, -1)[torch.arange(5), act.action])
    assert torch.allclose(act.value, values)
    assert torch.equal(model.predict(batch), act.action)  # race mode: policy tower only
    torch.manual_seed(1)
    first = model.act(batch).action
    torch.manual_seed(1)
    assert torch.equal(model.act(batch).action, first)


def test_initial_policy_is_near_uniform() -> None:
    vehicle = Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_DEEP, LAB_ACTIONS)
    probabilities = build_actor_critic(vehicle, seed=0).policy(observations(vehicle, 4)).probs
    assert torch.allclose(probabilities, torch.full_like(probabilities, 1 / 15), atol=0.01)


def test_continuous_head_is_a_gaussian_with_clipped_state_independent_log_std() -> None:
    vehicle = Vehicle((FRONT_FACING_CAMERA, SECTOR_LIDAR), DEEP_CONVOLUTIONAL_NETWORK_DEEP, ContinuousActionSpace())
    model = build_actor_critic(vehicle, seed=0)
    batch = observations(vehicle, 4)
    distribution = model.distribution(batch)  # the name sim.learn.ppo uses
    assert distribution.mean.shape == (4, 2)
    act = model.act(batch, deterministic=True)
    assert torch.equal(act.action, distribution.mean) and act.log_prob.shape == (4,)
    assert torch.equal(model.predict(batch), distribution.mean)
    with torch.no_grad():
        model.policy_net.head.log_std.fill_(50.0)
    assert torch.allclose(model.policy(batch).stddev, torch.full((4, 2), float(np.exp(LOG_STD_MAX))))


def test_inputs_are_scaled_and_accepted_as_tensors_or_arrays() -> None:
    vehicle = Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_DEEP, LAB_ACTIONS)
    model = build_actor_critic(vehicle, seed=0)
    images = observations(vehicle, 2)[FRONT_FACING_CAMERA]
    camera, lidar = model.prepare(images)
    assert camera.shape == (2, 1, 120, 160) and camera.dtype == torch.float32 and lidar is None
    assert float(camera.max()) <= 1.0 and torch.allclose(camera[:, 0], torch.as_tensor(images[..., 0]) / 255.0)
    with torch.no_grad():
        from_array = model(images)[0]
        from_tensor = model(torch.from_numpy(images))[0]
        from_mapping = model({"camera": images})[0]
    assert torch.equal(from_array, from_tensor) and torch.equal(from_array, from_mapping)


def test_bad_observations_get_clear_errors() -> None:
    camera_only = build_actor_critic(Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_DEEP, LAB_ACTIONS))
    with pytest.raises(ValueError, match=r"must be \(N, 120, 160, 1\), got \(120, 160, 1\)"):
        camera_only(np.zeros((120, 160, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"got \(1, 120, 160, 2\)"):
        camera_only(np.zeros((1, 120, 160, 2), dtype=np.uint8))
    with_lidar = build_actor_critic(Vehicle((FRONT_FACING_CAMERA, LIDAR), DEEP_CONVOLUTIONAL_NETWORK_DEEP, LAB_ACTIONS))
    with pytest.raises(ValueError, match="pass a mapping"):
        with_lidar(np.zeros((1, 120, 160, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="no 'LIDAR'"):
        with_lidar({FRONT_FACING_CAMERA: np.zeros((1, 120, 160, 1), dtype=np.uint8)})
    with pytest.raises(ValueError, match=r"LIDAR observations must be \(N, 64\)"):
        with_lidar({FRONT_FACING_CAMERA: np.zeros((1, 120, 160, 1), dtype=np.uint8), LIDAR: np.zeros((1, 8))})


def test_layout_needs_no_weights() -> None:
    """The 115 M-parameter stereo 5-layer CNN layout is computed on the meta device, instantly."""
    vehicle = Vehicle((STEREO_CAMERAS, LIDAR), DEEP_CONVOLUTIONAL_NETWORK, LAB_ACTIONS)
    layout = expected_state_dict_layout(vehicle)
    assert all(dtype == torch.float32 for _, dtype in layout.values())
    assert parameter_count(vehicle) > 115_000_000


def test_training_uses_bf16_autocast_only_where_the_cpu_computes_bf16_natively():
    # Emulated bf16 (e.g. AVX2-only CPUs) is ~15x slower than fp32: the default must follow the CPU.
    from sim.learn.agent import cpu_has_native_bf16, mixed_precision_autocast

    assert isinstance(cpu_has_native_bf16(), bool)
    with mixed_precision_autocast():
        assert torch.is_autocast_enabled("cpu") is cpu_has_native_bf16()
    with mixed_precision_autocast(False):
        assert not torch.is_autocast_enabled("cpu")
    with mixed_precision_autocast(True):
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize(("omp_num_threads", "asked", "given"), [(None, 2, 2), ("1", 2, 1), ("4", 2, 2), ("3,1", 4, 3),
                                                                 ("nonsense", 2, 2)])
def test_the_trainer_takes_the_threads_it_asks_for_but_never_more_than_omp_num_threads(monkeypatch, omp_num_threads,
                                                                                      asked, given):
    # OMP_NUM_THREADS is how a machine's owner limits OpenMP programs: on a core something else keeps busy, two
    # threads trained ~5x slower than one.
    from sim.learn.agent import use_cores_for_torch

    before = torch.get_num_threads()
    if omp_num_threads is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp_num_threads)
    try:
        assert use_cores_for_torch(asked) == given
        assert torch.get_num_threads() == given
    finally:
        torch.set_num_threads(before)
