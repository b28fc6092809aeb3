"""model.tar.gz round trip: what is written is read back exactly, deterministically, and loads into a network."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sim.io import archive
from sim.learn.networks import build_actor_critic, expected_state_dict_layout
from sim.world.vehicle import (
    DEEP_CONVOLUTIONAL_NETWORK_DEEP,
    DEEP_CONVOLUTIONAL_NETWORK_SHALLOW,
    FRONT_FACING_CAMERA,
    SECTOR_LIDAR,
    STEREO_CAMERAS,
    ContinuousActionSpace,
    DiscreteActionSpace,
    Vehicle,
    get_vehicle,
)
from tests.sim.hostile_archives import Member, metadata_bytes, weights_bytes, write_tar_gz

REWARD = "def reward_function(params):\n    return 1.0 if params['all_wheels_on_track'] else 1e-3\n"
HYPERPARAMETERS = {"batch_size": 64, "beta_entropy": 0.01, "lr": 0.0003}
SMALL = Vehicle((FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_DEEP, DiscreteActionSpace.from_granularity())


def _write(path: Path, vehicle: Vehicle, seed: int = 0, **provenance) -> dict[str, torch.Tensor]:
    state_dict = build_actor_critic(vehicle, seed=seed).state_dict()
    archive.write_model_archive(path, vehicle, state_dict, **provenance)
    return state_dict


def test_round_trip_is_exact(tmp_path: Path) -> None:
    vehicle = get_vehicle("original_deepracer")
    written = _write(
        tmp_path / "model.tar.gz",
        vehicle,
        reward_function_source=REWARD,
        hyperparameters=HYPERPARAMETERS,
        training_metrics={"training_metrics.json": '{"metrics": []}', "reward.png": b"\x89PNG fake"},
    )
    loaded_vehicle, state_dict = archive.load_model(tmp_path / "model.tar.gz")
    assert loaded_vehicle == vehicle
    assert list(state_dict) == sorted(written)
    for name, tensor in written.items():
        assert state_dict[name].dtype == torch.float32
        assert torch.equal(state_dict[name], tensor)  # bit-exact

    info = archive.inspect_archive(tmp_path / "model.tar.gz")
    assert info.metadata == vehicle.to_model_metadata()
    assert info.reward_function_source == REWARD
    assert info.hyperparameters == HYPERPARAMETERS
    assert info.metrics_files == ("metrics/reward.png", "metrics/training_metrics.json")
    assert info.parameter_count == sum(t.numel() for t in written.values())
    with tarfile.open(tmp_path / "model.tar.gz") as tar:  # the DeepRacer document, as any tool reads it
        metadata = json.load(tar.extractfile("model_metadata.json"))
    assert metadata == {
        "action_space": vehicle.action_space.to_metadata(),
        "sensor": ["FRONT_FACING_CAMERA"],
        "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "training_algorithm": "clipped_ppo",
        "action_space_type": "discrete",
        "version": "5",
    }
    assert len(metadata["action_space"]) == 15
    assert set(info.members) == {
        "hyperparameters.json",
        "metrics/reward.png",
        "metrics/training_metrics.json",
        "model.safetensors",
        "model_metadata.json",
        "reward_function.py",
    }


def test_same_weights_give_the_same_bytes(tmp_path: Path) -> None:
    _write(tmp_path / "a.tar.gz", SMALL, seed=3, reward_function_source=REWARD)
    _write(tmp_path / "b.tar.gz", SMALL, seed=3, reward_function_source=REWARD)
    _write(tmp_path / "c.tar.gz", SMALL, seed=4, reward_function_source=REWARD)
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert (tmp_path / "a.tar.gz").read_bytes() != (tmp_path / "c.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        assert tar.getnames() == sorted(tar.getnames())
        assert {(m.mtime, m.uid, m.gid, m.mode) for m in tar.getmembers()} == {(0, 0, 0, 0o644)}


@pytest.mark.parametrize(
    "vehicle",
    [
        Vehicle((FRONT_FACING_CAMERA, SECTOR_LIDAR), DEEP_CONVOLUTIONAL_NETWORK_DEEP, ContinuousActionSpace()),
        Vehicle(
            (STEREO_CAMERAS,), DEEP_CONVOLUTIONAL_NETWORK_SHALLOW, DiscreteActionSpace.from_granularity(20, 3, 2, 2)
        ),
    ],
    ids=["continuous-sector-lidar", "stereo"],
)
def test_round_trip_other_vehicles_and_act_identically(tmp_path: Path, vehicle: Vehicle) -> None:
    original = build_actor_critic(vehicle, seed=1)
    archive.write_model_archive(tmp_path / "model.tar.gz", vehicle, original.state_dict())
    loaded_vehicle, network = archive.load_actor_critic(tmp_path / "model.tar.gz")
    assert loaded_vehicle == vehicle
    rng = np.random.default_rng(0)
    channels = 2 if vehicle.camera == STEREO_CAMERAS else 1
    images = rng.integers(0, 256, (4, 120, 160, channels), dtype=np.uint8)
    observations = {vehicle.camera: images}
    if vehicle.lidar:
        observations[vehicle.lidar] = rng.integers(0, 2, (4, 8)).astype(np.float32)
    with torch.no_grad():
        for expected, actual in zip(original(observations), network(observations), strict=True):
            assert torch.equal(expected, actual)


def test_extract_places_only_validated_files(tmp_path: Path) -> None:
    _write(tmp_path / "model.tar.gz", SMALL, reward_function_source=REWARD, training_metrics={"m.csv": "a,b\n"})
    info = archive.extract_archive(tmp_path / "model.tar.gz", tmp_path / "out")
    files = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == sorted(info.members) == [
        "metrics/m.csv", "model.safetensors", "model_metadata.json", "reward_function.py",
    ]  # fmt: skip
    vehicle, state_dict = archive.load_model(tmp_path / "out")  # a model folder loads like the archive
    assert vehicle == SMALL
    assert set(state_dict) == set(build_actor_critic(SMALL).state_dict())
    with pytest.raises(ValueError, match="not empty"):
        archive.extract_archive(tmp_path / "model.tar.gz", tmp_path / "out")


def test_archives_made_with_tar_dot_prefix_and_directories_are_accepted(tmp_path: Path) -> None:
    """`tar czf model.tar.gz -C folder .` writes './' entries; that is how people repack models."""
    members = [
        Member("./", type=tarfile.DIRTYPE),
        Member("./model_metadata.json", metadata_bytes()),
        Member("./model.safetensors", weights_bytes()),
        Member("./metrics", type=tarfile.DIRTYPE),
    ]
    info = archive.inspect_archive(write_tar_gz(tmp_path / "model.tar.gz", members))
    assert set(info.members) == {"model_metadata.json", "model.safetensors"}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_single_non_finite_weight_is_found_and_huge_finite_weights_are_not_mistaken_for_one(bad) -> None:
    weights = torch.zeros(1000)
    weights[617] = bad
    with pytest.raises(archive.NonFiniteWeightsError, match="holds 1 NaN or infinite"):
        archive._check_finite("w", weights)
    huge = torch.full((4,), 3e38)  # their float32 sum overflows to inf, yet every weight is finite
    archive._check_finite("w", huge)


def test_writer_refuses_weights_the_reader_would_refuse(tmp_path: Path) -> None:
    state_dict = build_actor_critic(SMALL, seed=0).state_dict()
    state_dict["value_net.head.value.bias"] = torch.tensor([float("inf")])
    with pytest.raises(archive.NonFiniteWeightsError):
        archive.write_model_archive(tmp_path / "model.tar.gz", SMALL, state_dict)
    five = Vehicle(SMALL.sensors, SMALL.neural_network, DiscreteActionSpace.from_granularity(30, 5, 1, 1))
    with pytest.raises(archive.ActionSpaceMismatchError, match="declares 5 discrete actions"):
        archive.write_model_archive(tmp_path / "model.tar.gz", five, build_actor_critic(SMALL).state_dict())
    with pytest.raises(ValueError, match="metrics file name"):
        archive.write_model_archive(
            tmp_path / "model.tar.gz", SMALL, build_actor_critic(SMALL).state_dict(), training_metrics={"../x.csv": ""}
        )
    assert not (tmp_path / "model.tar.gz").exists()


def test_continuous_metadata_with_discrete_head_is_a_mismatch(tmp_path: Path) -> None:
    continuous = Vehicle(SMALL.sensors, SMALL.neural_network, ContinuousActionSpace())
    members = [Member("model_metadata.json", metadata_bytes(continuous)), Member("model.safetensors", weights_bytes())]
    with pytest.raises(archive.ActionSpaceMismatchError, match="discrete policy head with 15 actions"):
        archive.inspect_archive(write_tar_gz(tmp_path / "model.tar.gz", members))


def test_size_limits_are_arguments(tmp_path: Path) -> None:
    path = tmp_path / "model.tar.gz"
    _write(path, SMALL)
    size = path.stat().st_size
    with pytest.raises(archive.ArchiveTooLargeError, match="more than the limit"):
        archive.inspect_archive(path, archive.ArchiveLimits(max_archive_bytes=size - 1))
    with open(path, "rb") as upload, pytest.raises(archive.ArchiveTooLargeError):  # streamed: no size up front
        archive.inspect_archive(io.BufferedReader(upload), archive.ArchiveLimits(max_archive_bytes=size // 2))
    with pytest.raises(archive.UncompressedSizeError, match="unpacks to more than"):
        archive.inspect_archive(path, archive.ArchiveLimits(max_total_bytes=1024 * 1024))
    with pytest.raises(archive.MemberTooLargeError, match=r"model\.safetensors"):
        archive.inspect_archive(path, archive.ArchiveLimits(max_member_bytes=1024 * 1024))
    assert archive.inspect_archive(path).compressed_bytes == size


def test_garbage_after_the_gzip_stream_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "model.tar.gz"
    _write(path, SMALL)
    path.write_bytes(path.read_bytes() + b"trailing garbage")
    with pytest.raises(archive.CorruptArchiveError):
        archive.inspect_archive(path)


def test_metadata_with_duplicate_keys_or_nan_is_refused(tmp_path: Path) -> None:
    text = metadata_bytes().decode()
    duplicated = text.replace('"version": "5"', '"version": "5", "version": "4"')
    members = [Member("model_metadata.json", duplicated.encode()), Member("model.safetensors", weights_bytes())]
    with pytest.raises(archive.MetadataError, match="duplicate key"):
        archive.inspect_archive(write_tar_gz(tmp_path / "dup.tar.gz", members))
    nan = text.replace('"speed": 1.0', '"speed": NaN', 1)
    members[0] = Member("model_metadata.json", nan.encode())
    with pytest.raises(archive.MetadataError, match="NaN is not a JSON number"):
        archive.inspect_archive(write_tar_gz(tmp_path / "nan.tar.gz", members))


def test_gzip_of_a_real_console_layout_is_named_clearly(tmp_path: Path) -> None:
    """An AWS physical-car archive (TensorFlow graph) has no safetensors: say what is missing and what is odd."""
    members = [Member("model_metadata.json", metadata_bytes()), Member("agent/model.pb", b"tf graph")]
    with pytest.raises(archive.UnexpectedMemberError, match=r"agent/model\.pb"):
        archive.inspect_archive(write_tar_gz(tmp_path / "model.tar.gz", members))


def test_default_limits_admit_the_largest_network() -> None:
    """Stereo cameras + lidar + 5-layer CNN is the heaviest legitimate model (about 463 MB of float32)."""
    largest = max(
        (
            Vehicle((camera, *lidar), network, DiscreteActionSpace.from_granularity(30, 5, 4, 6))
            for camera in (FRONT_FACING_CAMERA, STEREO_CAMERAS)
            for lidar in ((), ("LIDAR",), (SECTOR_LIDAR,))
            for network in (
                "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
                "DEEP_CONVOLUTIONAL_NETWORK",
                DEEP_CONVOLUTIONAL_NETWORK_DEEP,
            )
        ),
        key=lambda vehicle: sum(np.prod(shape) for shape, _ in expected_state_dict_layout(vehicle).values()),
    )
    weights = 4 * sum(int(np.prod(shape)) for shape, _ in expected_state_dict_layout(largest).values())
    limits = archive.ArchiveLimits()
    header_and_tar_overhead = 1024 * 1024
    assert weights + header_and_tar_overhead < limits.max_member_bytes
    assert weights + header_and_tar_overhead < limits.max_archive_bytes  # float weights do not compress
    assert weights + 16 * header_and_tar_overhead < limits.max_total_bytes


def test_loaded_networks_can_be_trained_further(tmp_path: Path) -> None:
    """Clone = new training from a model's weights: the loaded parameters are ordinary trainable tensors."""
    _write(tmp_path / "model.tar.gz", SMALL)
    with open(tmp_path / "model.tar.gz", "rb") as upload:  # file objects work like paths
        assert archive.inspect_archive(upload).vehicle == SMALL
    _, network = archive.load_actor_critic(tmp_path / "model.tar.gz")
    assert all(isinstance(p, torch.nn.Parameter) and p.requires_grad for p in network.parameters())
    images = np.zeros((2, 120, 160, 1), dtype=np.uint8)
    network.value(images).sum().backward()
    assert network.value_net.head.value.weight.grad is not None
