"""Builds the corpus of hostile and broken ``model.tar.gz`` files from code (never committed as binaries).

Each entry says which ``ArchiveError`` subclass must reject it and a fragment of the message the racer sees.
Weights use the smallest network (camera + DEEP_CONVOLUTIONAL_NETWORK_DEEP, 2.2 M parameters) so the corpus
builds in about a second.
"""

from __future__ import annotations

import base64
import functools
import gzip
import io
import json
import os
import pickle
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch

from sim.io import archive
from sim.learn.networks import build_actor_critic
from sim.world.vehicle import DEEP_CONVOLUTIONAL_NETWORK_DEEP, FRONT_FACING_CAMERA, DiscreteActionSpace, Vehicle

SMALL_VEHICLE = Vehicle(
    (FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_DEEP, DiscreteActionSpace.from_granularity(30, 5, 1, 3)
)
FIVE_ACTIONS = Vehicle(
    (FRONT_FACING_CAMERA,), DEEP_CONVOLUTIONAL_NETWORK_DEEP, DiscreteActionSpace.from_granularity(30, 5, 1, 1)
)


@dataclass(frozen=True)
class HostileArchive:
    path: Path
    error: type[archive.ArchiveError]
    message: str  # a fragment of the expected error message


@dataclass
class Member:
    """One tar entry to write as given (no normalisation, any type)."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    size: int | None = None  # header size when it must lie about the data


def write_tar_gz(path: Path, members: list[Member], *, compresslevel: int = 0) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type, info.linkname, info.mode = member.type, member.linkname, 0o644
            if member.type == tarfile.CHRTYPE:
                info.devmajor, info.devminor = 1, 3  # /dev/null
            if member.size is not None:  # a header that lies: write it without its data
                info.size = member.size
                tar.fileobj.write(info.tobuf(tar.format, tar.encoding, tar.errors))
                continue
            info.size = len(member.data) if member.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
            tar.addfile(info, io.BytesIO(member.data) if info.size else None)
    path.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=compresslevel, mtime=0))
    return path


def metadata_bytes(vehicle: Vehicle = SMALL_VEHICLE, **changes: object) -> bytes:
    document = vehicle.to_model_metadata()
    document.update(changes)
    return json.dumps(document).encode()


@functools.cache
def _initial_weights(vehicle: Vehicle) -> dict[str, torch.Tensor]:
    return build_actor_critic(vehicle, seed=0).state_dict()


def weights_bytes(vehicle: Vehicle = SMALL_VEHICLE, edit: Callable[[dict], None] | None = None) -> bytes:
    state_dict = {name: tensor.clone() for name, tensor in _initial_weights(vehicle).items()}
    if edit is not None:
        edit(state_dict)
    return safetensors.torch.save(state_dict)


def valid_members(**replacements: bytes) -> list[Member]:
    files = {archive.METADATA_FILE: metadata_bytes(), archive.WEIGHTS_FILE: weights_bytes()}
    files.update(replacements)
    return [Member(name, data) for name, data in files.items()]


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def _tar_bomb(path: Path, size: int) -> Path:
    """``size`` bytes of zeros as model.safetensors: about 1000x compression."""
    with (
        gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w") as tar,
    ):
        tar.addfile(tarfile.TarInfo(archive.METADATA_FILE), None)
        info = tarfile.TarInfo(archive.WEIGHTS_FILE)
        info.size = size
        tar.addfile(info, io.BufferedReader(_Zeros(size)))
    return path


def build_hostile_corpus(directory: Path, escape_dir: Path) -> dict[str, HostileArchive]:
    """Write every hostile archive into ``directory``; ``escape_dir`` is where an unsafe extractor would write."""
    directory.mkdir(parents=True, exist_ok=True)
    good = valid_members()
    corpus: dict[str, HostileArchive] = {}

    def add(
        name: str, members: list[Member], error: type[archive.ArchiveError], message: str, compresslevel: int = 0
    ) -> None:
        path = write_tar_gz(directory / f"{name}.tar.gz", members, compresslevel=compresslevel)
        corpus[name] = HostileArchive(path, error, message)

    # --- where members would land ---
    add("path_traversal", [*good, Member("../escaped.txt", b"owned")], archive.PathTraversalError, "'..'")
    add(
        "nested_traversal",
        [*good, Member("metrics/../../escaped.txt", b"owned")],
        archive.PathTraversalError,
        "'..'",
    )
    add(
        "absolute_path",
        [*good, Member(str(escape_dir / "absolute.txt"), b"owned")],
        archive.AbsolutePathError,
        "absolute path",
    )
    add(
        "symlink",
        [
            Member(archive.METADATA_FILE, metadata_bytes()),
            Member(archive.WEIGHTS_FILE, type=tarfile.SYMTYPE, linkname="/etc/passwd"),
        ],
        archive.SymlinkMemberError,
        "symbolic link",
    )
    add(
        "hardlink",
        [*good, Member(archive.REWARD_FUNCTION_FILE, type=tarfile.LNKTYPE, linkname="/etc/passwd")],
        archive.HardlinkMemberError,
        "hard link",
    )
    add(
        "char_device",
        [Member(archive.METADATA_FILE, metadata_bytes()), Member(archive.WEIGHTS_FILE, type=tarfile.CHRTYPE)],
        archive.SpecialFileMemberError,
        "character device",
    )
    add("fifo", [*good, Member("metrics/pipe.csv", type=tarfile.FIFOTYPE)], archive.SpecialFileMemberError, "FIFO")
    add("executable", [*good, Member("run.sh", b"#!/bin/sh\nrm -rf /\n")], archive.UnexpectedMemberError, "run.sh")
    add(
        "duplicate",
        [*good, Member(archive.METADATA_FILE, metadata_bytes(FIVE_ACTIONS))],
        archive.DuplicateMemberError,
        "twice",
    )

    # --- sizes ---
    corpus["tar_bomb"] = HostileArchive(
        _tar_bomb(directory / "tar_bomb.tar.gz", 16 * archive.MiB), archive.CompressionRatioError, "bomb"
    )
    add(  # 8.8 MB of real weights first, then zeros: a whole-stream ratio alone would stay near 2
        "bomb_behind_weights",
        [Member(archive.WEIGHTS_FILE, weights_bytes()), Member(archive.REWARD_FUNCTION_FILE, bytes(16 * archive.MiB))],
        archive.CompressionRatioError,
        "decompression bomb",
        compresslevel=1,
    )
    add(
        "huge_member",
        [Member(archive.METADATA_FILE, metadata_bytes()), Member(archive.WEIGHTS_FILE, size=4 * 1024 * archive.MiB)],
        archive.MemberTooLargeError,
        "model.safetensors is 4096.0 MiB",
    )
    add(
        "many_members",
        [*good, *(Member(f"metrics/m{index}.json", b"{}") for index in range(100))],
        archive.TooManyMembersError,
        "more than 64 entries",
    )

    trailing = io.BytesIO()
    with tarfile.open(fileobj=trailing, mode="w") as tar:
        for member in good:
            info = tarfile.TarInfo(member.name)
            info.size = len(member.data)
            tar.addfile(info, io.BytesIO(member.data))
    (directory / "trailing_bomb.tar.gz").write_bytes(
        gzip.compress(trailing.getvalue() + bytes(64 * archive.MiB), compresslevel=1, mtime=0)
    )
    corpus["trailing_bomb"] = HostileArchive(  # zeros after the tar end marker, where tarfile never looks
        directory / "trailing_bomb.tar.gz", archive.CorruptArchiveError, "follows the end of the tar archive"
    )
    header = io.BytesIO()
    with tarfile.open(fileobj=header, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(archive.METADATA_FILE)
        info.pax_headers = {"comment": base64.b64encode(os.urandom(2 * archive.MiB)).decode()}
        tar.addfile(info, None)
    (directory / "huge_header.tar.gz").write_bytes(gzip.compress(header.getvalue(), compresslevel=1, mtime=0))
    corpus["huge_header"] = HostileArchive(
        directory / "huge_header.tar.gz", archive.CorruptArchiveError, "header record is larger than 1 MiB"
    )

    # --- not an archive ---
    (directory / "not_gzip.tar.gz").write_bytes(b"PK\x03\x04 this is a zip file, not a tar.gz")
    corpus["not_gzip"] = HostileArchive(directory / "not_gzip.tar.gz", archive.NotGzipError, "not a gzip")
    (directory / "gzip_not_tar.tar.gz").write_bytes(gzip.compress(b"just some text, not a tar " * 100))
    corpus["gzip_not_tar"] = HostileArchive(directory / "gzip_not_tar.tar.gz", archive.NotTarError, "not a valid tar")
    whole = write_tar_gz(directory / "whole.tar.gz", good).read_bytes()
    (directory / "truncated.tar.gz").write_bytes(whole[: len(whole) // 2])
    (directory / "whole.tar.gz").unlink()
    corpus["truncated"] = HostileArchive(directory / "truncated.tar.gz", archive.CorruptArchiveError, "truncated")
    add(
        "short_member",  # a well-formed gzip whose tar member has less data than its header says
        [Member(archive.METADATA_FILE, metadata_bytes()), Member(archive.WEIGHTS_FILE, size=100_000)],
        archive.CorruptArchiveError,
        "damaged or cut short",
    )

    # --- contents ---
    add(
        "pickle_weights",
        valid_members(**{archive.WEIGHTS_FILE: pickle.dumps({"weights": [1.0, 2.0, 3.0]})}),
        archive.WeightsFormatError,
        "pickle",
    )
    add(
        "torch_save_weights",
        valid_members(**{archive.WEIGHTS_FILE: _torch_save_bytes()}),
        archive.WeightsFormatError,
        "torch.save",
    )
    add(
        "missing_metadata",
        [Member(archive.WEIGHTS_FILE, weights_bytes())],
        archive.MissingMemberError,
        "no model_metadata.json",
    )
    add(
        "missing_weights",
        [Member(archive.METADATA_FILE, metadata_bytes())],
        archive.MissingMemberError,
        "no model.safetensors",
    )
    add(
        "garbled_metadata",
        valid_members(**{archive.METADATA_FILE: b'{"action_space": [ {"steering_angle": -30,'}),
        archive.MetadataError,
        "not valid JSON",
    )
    add(
        "unknown_network",
        valid_members(**{archive.METADATA_FILE: metadata_bytes(neural_network="RESNET_152")}),
        archive.MetadataError,
        "unknown neural network 'RESNET_152'",
    )
    add(
        "unknown_sensor",
        valid_members(**{archive.METADATA_FILE: metadata_bytes(sensor=["LEFT_CAMERA"])}),
        archive.MetadataError,
        "unknown sensor 'LEFT_CAMERA'",
    )
    add(
        "sac_metadata",
        valid_members(**{archive.METADATA_FILE: metadata_bytes(training_algorithm="sac")}),
        archive.MetadataError,
        "'sac' is not supported",
    )
    add(
        "mismatched_action_space",
        valid_members(**{archive.METADATA_FILE: metadata_bytes(FIVE_ACTIONS)}),
        archive.ActionSpaceMismatchError,
        "declares 5 discrete actions but the policy head outputs 15 actions",
    )
    add(
        "wrong_shapes",
        valid_members(**{archive.WEIGHTS_FILE: weights_bytes(edit=_shrink_conv1)}),
        archive.WeightsLayoutError,
        "policy_net.camera.conv1.weight has shape [16, 1, 8, 8], expected [32, 1, 8, 8]",
    )
    add(
        "wrong_dtype",
        valid_members(**{archive.WEIGHTS_FILE: weights_bytes(edit=_half_precision_value_head)}),
        archive.WeightsLayoutError,
        "value_net.head.value.weight has dtype float16, expected float32",
    )
    add(
        "unexpected_tensor",
        valid_members(**{archive.WEIGHTS_FILE: weights_bytes(edit=_extra_tensor)}),
        archive.WeightsLayoutError,
        "unexpected tensor(s): backdoor.weight",
    )
    # --- JSON that crashed the validator instead of being refused (issue "Hardening", item 4) ---
    add(
        "deep_metadata",
        valid_members(**{archive.METADATA_FILE: b"[" * 100_000 + b"]" * 100_000}),
        archive.MetadataError,
        "model_metadata.json is nested too deeply",
    )
    add(
        "deep_hyperparameters",
        [*good, Member(archive.HYPERPARAMETERS_FILE, b'{"a":' * 100_000 + b"1" + b"}" * 100_000)],
        archive.ProvenanceError,
        "hyperparameters.json is nested too deeply",
    )
    add(
        "deep_inside_a_string",  # brackets inside strings are text: the depth is 2, the metadata is refused later
        valid_members(**{archive.METADATA_FILE: metadata_bytes(neural_network="[" * 100_000)}),
        archive.MetadataError,
        "unknown neural network '[[[[",
    )
    add(
        "huge_int_version",
        valid_members(**{archive.METADATA_FILE: _metadata_with_raw(version="9" * 400)}),
        archive.MetadataError,
        "model_metadata.json: version is out of range",
    )
    add(
        "huge_int_speed",
        valid_members(**{archive.METADATA_FILE: _metadata_with_raw(speed="1" + "0" * 400)}),
        archive.MetadataError,
        "model_metadata.json: action_space[0].speed is out of range",
    )
    add(
        "overlong_int",  # beyond Python's own int/str limit (4300 digits)
        valid_members(**{archive.METADATA_FILE: _metadata_with_raw(speed="7" * 5000)}),
        archive.MetadataError,
        "an integer of 5000 digits is out of range",
    )
    add(
        "infinite_float_metadata",  # 1e400 parses as inf without going through parse_constant
        valid_members(**{archive.METADATA_FILE: _metadata_with_raw(steering_angle="-1e400")}),
        archive.MetadataError,
        "model_metadata.json: action_space[0].steering_angle is out of range",
    )
    add(
        "nan_hyperparameters",
        [*good, Member(archive.HYPERPARAMETERS_FILE, b'{"lr": NaN, "batch_size": 64}')],
        archive.ProvenanceError,
        "NaN is not a JSON number",
    )
    add(
        "infinity_hyperparameters",
        [*good, Member(archive.HYPERPARAMETERS_FILE, b'{"lr": -Infinity}')],
        archive.ProvenanceError,
        "-Infinity is not a JSON number",
    )
    add(
        "overflowing_hyperparameters",
        [*good, Member(archive.HYPERPARAMETERS_FILE, b'{"schedule": {"lr": [0.1, 2e999]}}')],
        archive.ProvenanceError,
        "hyperparameters.json: schedule.lr[1] is out of range",
    )
    add(
        "nan_weights",
        valid_members(**{archive.WEIGHTS_FILE: weights_bytes(edit=_poison_with_nan)}),
        archive.NonFiniteWeightsError,
        "value_net.middleware.fc1.bias holds 1 NaN",
    )
    return corpus


def _metadata_with_raw(**raw_numbers: str) -> bytes:
    """Metadata whose ``version`` or first action's ``speed`` / ``steering_angle`` is the raw JSON number given."""
    document = json.loads(metadata_bytes())
    for key in raw_numbers:
        where = document if key == "version" else document["action_space"][0]
        where[key] = f"@{key}@"
    text = json.dumps(document)
    for key, raw in raw_numbers.items():
        text = text.replace(f'"@{key}@"', raw)
    return text.encode()


def _torch_save_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2)}, buffer)  # zip container holding a pickle
    return buffer.getvalue()


def _shrink_conv1(state_dict: dict) -> None:
    state_dict["policy_net.camera.conv1.weight"] = torch.zeros(16, 1, 8, 8)


def _half_precision_value_head(state_dict: dict) -> None:
    state_dict["value_net.head.value.weight"] = state_dict["value_net.head.value.weight"].half()


def _extra_tensor(state_dict: dict) -> None:
    state_dict["backdoor.weight"] = torch.zeros(3)


def _poison_with_nan(state_dict: dict) -> None:
    state_dict["value_net.middleware.fc1.bias"][7] = float("nan")
