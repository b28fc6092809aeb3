"""The model archive ``model.tar.gz`` (SPEC §6): writing, strict validation, safe extraction, weight loading.

Layout (all members at the root, written in sorted order with fixed metadata so equal weights give equal bytes):

    model_metadata.json      required  DeepRacer schema (parsed strictly by ``Vehicle.from_model_metadata``)
    model.safetensors        required  policy + value state dict, float32, names/shapes from sim.learn.networks
    reward_function.py       optional  provenance (UTF-8 text; never imported or executed)
    hyperparameters.json     optional  provenance (a JSON object)
    metrics/<name>.json|csv|png  optional  provenance (training metrics, reward graph)

Anything else is refused (``UnexpectedMemberError``): an archive holds data only, and a stray executable or
``agent/model.pb`` is more likely a mistake than something to keep. Directory entries (``./``,
``metrics/``) are allowed and ignored.

Reading is a single streaming pass (``tarfile`` ``r|`` mode over our own gzip reader) that counts every byte:
compressed size, decompressed size and their ratio (whole stream and per member) are checked while reading,
so a tar bomb is stopped after about ``ratio_check_floor_bytes`` + one gzip buffer, whatever the headers
claim; headers and whatever follows the tar end marker may use at most 1 MiB each. Members are written into a
private scratch folder under names we choose (the allow-listed names), with ``O_EXCL | O_NOFOLLOW``; links,
devices, FIFOs, absolute paths and ``..`` are refused before any byte is written. Weights are parsed only by
the safetensors library (never ``torch.load``, never ``pickle``). Every rejection is an ``ArchiveError``
subclass with a stable ``code`` and a message meant for the racer who uploaded the file.

Validation is total: the JSON members are parsed without recursion beyond ``MAX_JSON_DEPTH`` levels (their
nesting is measured before ``json.loads`` runs), NaN/Infinity and numbers beyond the float range are refused
with the place they were found, and any other exception raised while reading untrusted bytes is logged with
its traceback and becomes ``UnreadableArchiveError`` ("the archive could not be read"). Only ``OSError`` (the
scratch disk, a missing source file) and ``MemoryError`` pass through: they are the machine's failures.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import math
import os
import re
import shutil
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

import safetensors
import safetensors.torch
import torch

from sim.io.model_files import METADATA_FILE, WEIGHTS_FILE
from sim.learn.networks import CONTINUOUS_HEAD, DISCRETE_HEAD, ActorCritic, expected_state_dict_layout
from sim.world.vehicle import Vehicle, VehicleError

REWARD_FUNCTION_FILE = "reward_function.py"
HYPERPARAMETERS_FILE = "hyperparameters.json"
METRICS_DIR = "metrics"
REQUIRED_FILES = (METADATA_FILE, WEIGHTS_FILE)
OPTIONAL_FILES = (REWARD_FUNCTION_FILE, HYPERPARAMETERS_FILE)
_METRICS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.(json|csv|png)$")

MiB = 1024 * 1024
_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
_SECTION_BUDGET = 1 * MiB  # between two members (headers, pax/long-name records) and after the tar end
_HEADER_TOO_LARGE = "a tar header record is larger than 1 MiB"
_READ_CHUNK = 1 * MiB
# Real metadata nests 3 levels, hyperparameters 1; the bound keeps json.loads' recursion far from Python's limit.
MAX_JSON_DEPTH = 64
# Below Python's int/str conversion limit (4300 digits), so an over-long integer gets our message, not Python's.
_MAX_INT_DIGITS = 4000
_JSON_STRUCTURE = re.compile(r'[][{}"]')
_FLOAT_MAX = sys.float_info.max

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps applied while reading an untrusted archive (the server may pass tighter ones).

    The defaults admit the largest legitimate model: stereo cameras + 5-layer CNN, 115.3 M float32
    parameters = 461 MB of weights (the lab's 3-layer CNN archive is 43 MB).
    """

    max_archive_bytes: int = 512 * MiB  # compressed file
    max_total_bytes: int = 600 * MiB  # decompressed tar stream
    max_member_bytes: int = 512 * MiB  # model.safetensors
    max_small_member_bytes: int = 16 * MiB  # every other file
    max_members: int = 64  # directory entries included
    max_compression_ratio: float = 100.0  # decompressed / compressed bytes so far
    ratio_check_floor_bytes: int = 1 * MiB  # tiny archives are all tar padding: no ratio check below this


# --- errors ---------------------------------------------------------------------------------------------------


class ArchiveError(ValueError):
    """An archive was refused; ``code`` is stable (API/database), the message explains it to a racer."""

    code = "invalid_archive"


class ArchiveTooLargeError(ArchiveError):
    code = "archive_too_large"


class NotGzipError(ArchiveError):
    code = "not_gzip"


class CorruptArchiveError(ArchiveError):
    code = "corrupt_archive"


class NotTarError(ArchiveError):
    code = "not_tar"


class UnsafePathError(ArchiveError):
    code = "unsafe_path"


class AbsolutePathError(UnsafePathError):
    code = "absolute_path"


class PathTraversalError(UnsafePathError):
    code = "path_traversal"


class LinkMemberError(ArchiveError):
    code = "link_member"


class SymlinkMemberError(LinkMemberError):
    code = "symlink"


class HardlinkMemberError(LinkMemberError):
    code = "hardlink"


class SpecialFileMemberError(ArchiveError):
    code = "special_file"


class TooManyMembersError(ArchiveError):
    code = "too_many_members"


class MemberTooLargeError(ArchiveError):
    code = "member_too_large"


class UncompressedSizeError(ArchiveError):
    code = "uncompressed_too_large"


class CompressionRatioError(ArchiveError):
    code = "compression_ratio"


class UnexpectedMemberError(ArchiveError):
    code = "unexpected_member"


class DuplicateMemberError(ArchiveError):
    code = "duplicate_member"


class MissingMemberError(ArchiveError):
    code = "missing_member"


class MetadataError(ArchiveError):
    code = "invalid_metadata"


class ProvenanceError(ArchiveError):
    code = "invalid_provenance"


class WeightsFormatError(ArchiveError):
    code = "weights_not_safetensors"


class WeightsLayoutError(ArchiveError):
    code = "weights_layout"


class ActionSpaceMismatchError(WeightsLayoutError):
    code = "action_space_mismatch"


class NonFiniteWeightsError(ArchiveError):
    code = "non_finite_weights"


class UnreadableArchiveError(ArchiveError):
    """Validation met an error nobody foresaw; the traceback is logged, the racer gets a plain refusal."""

    code = "unreadable_archive"


# --- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveInfo:
    """What a valid archive holds (no weights: see ``load_model``)."""

    vehicle: Vehicle
    metadata: dict[str, Any]
    members: dict[str, int]  # file name -> size in bytes (directories omitted)
    parameter_count: int
    compressed_bytes: int
    uncompressed_bytes: int
    reward_function_source: str | None = None
    hyperparameters: dict[str, Any] | None = None
    metrics_files: tuple[str, ...] = field(default=())


# --- writing --------------------------------------------------------------------------------------------------


def write_model_archive(
    path: str | Path,
    vehicle: Vehicle,
    state_dict: Mapping[str, torch.Tensor],
    *,
    reward_function_source: str | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    training_metrics: Mapping[str, str | bytes] | None = None,
) -> Path:
    """Write ``model.tar.gz`` atomically; refuses weights the reader would refuse.

    ``training_metrics`` maps file names (``*.json``, ``*.csv``, ``*.png``) to their content; they are stored
    under ``metrics/``. The output is deterministic: sorted members, mtime 0, uid/gid 0, no gzip file name.
    """
    tensors = {name: tensor.detach().to("cpu").contiguous() for name, tensor in state_dict.items()}
    _check_layout(vehicle, {name: (tuple(t.shape), t.dtype) for name, t in tensors.items()})
    for name, tensor in tensors.items():
        _check_finite(name, tensor)

    files: dict[str, bytes] = {
        METADATA_FILE: _json_bytes(vehicle.to_model_metadata()),
        WEIGHTS_FILE: safetensors.torch.save(dict(sorted(tensors.items()))),
    }
    if reward_function_source is not None:
        files[REWARD_FUNCTION_FILE] = reward_function_source.encode("utf-8")
    if hyperparameters is not None:
        files[HYPERPARAMETERS_FILE] = _json_bytes(dict(hyperparameters))
    for name, content in (training_metrics or {}).items():
        if not _METRICS_NAME.match(name):
            raise ValueError(f"metrics file name {name!r} must be a plain *.json, *.csv or *.png name")
        files[f"{METRICS_DIR}/{name}"] = content.encode("utf-8") if isinstance(content, str) else bytes(content)

    path = Path(path)
    temporary = path.with_name(f".{path.name}.partial")
    try:
        # compresslevel 1: float weights barely compress (0.93 at any level) and level 1 is the fastest.
        with (
            open(temporary, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as zipped,
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as tar,
        ):
            for name in sorted(files):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(files[name]))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False, allow_nan=False) + "\n").encode("utf-8")


# --- reading --------------------------------------------------------------------------------------------------


def inspect_archive(
    source: str | Path | BinaryIO,
    limits: ArchiveLimits = ArchiveLimits(),
    *,
    scratch_dir: str | Path | None = None,
) -> ArchiveInfo:
    """Validate an archive completely (members, metadata, weights) and describe it.

    Members are unpacked only into a private folder (inside ``scratch_dir`` if given), deleted on return.
    """
    with tempfile.TemporaryDirectory(prefix="pitlane-archive-", dir=scratch_dir) as private:
        return _unpack_and_validate(source, Path(private), limits)


def extract_archive(
    source: str | Path | BinaryIO, dest_dir: str | Path, limits: ArchiveLimits = ArchiveLimits()
) -> ArchiveInfo:
    """Validate, then place the validated files in ``dest_dir`` (created; must be empty).

    Work happens in a private folder inside ``dest_dir``; on any error ``dest_dir`` is left empty.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"extraction folder {dest} is not empty")
    private = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=dest))
    try:
        info = _unpack_and_validate(source, private, limits)
        for name in info.members:
            target = dest / name
            target.parent.mkdir(exist_ok=True)
            os.replace(private / name, target)
        return info
    except BaseException:
        for entry in dest.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        raise
    finally:
        shutil.rmtree(private, ignore_errors=True)


def load_model(
    source: str | Path, limits: ArchiveLimits = ArchiveLimits(), *, scratch_dir: str | Path | None = None
) -> tuple[Vehicle, dict[str, torch.Tensor]]:
    """(vehicle, validated float32 state dict) from a ``model.tar.gz`` or a folder with the two model files."""
    source = Path(source)
    if source.is_dir():
        vehicle, _ = _read_metadata(source / METADATA_FILE)
        return vehicle, _read_weights(source / WEIGHTS_FILE, vehicle)
    with tempfile.TemporaryDirectory(prefix="pitlane-archive-", dir=scratch_dir) as private:
        info = _unpack_and_validate(source, Path(private), limits, check_values=False)
        return info.vehicle, _read_weights(Path(private) / WEIGHTS_FILE, info.vehicle)


def load_actor_critic(
    source: str | Path, limits: ArchiveLimits = ArchiveLimits(), *, scratch_dir: str | Path | None = None
) -> tuple[Vehicle, ActorCritic]:
    """The evaluator's entry point: a ready network (eval mode) from an archive or model folder."""
    vehicle, state_dict = load_model(source, limits, scratch_dir=scratch_dir)
    with torch.device("meta"):  # no throw-away random init: the loaded tensors become the parameters
        network = ActorCritic(vehicle)
    network.load_state_dict(state_dict, strict=True, assign=True)
    return vehicle, network.eval()


# --- streaming pass -------------------------------------------------------------------------------------------


class _CompressedReader(io.RawIOBase):
    """Counts compressed bytes and stops at the archive size cap."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self.raw, self.limit, self.count = raw, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise ArchiveTooLargeError(f"the archive is larger than the limit of {_size(self.limit)}")
        buffer[: len(data)] = data
        return len(data)


class _InflatedReader(io.RawIOBase):
    """Counts decompressed bytes: total cap, ratio cap and the budget of the current section, on every read.

    The ratio is checked for the whole stream and for the current section (one member's data), so zeros
    cannot hide behind a large incompressible member. Sections outside member data (tar headers, bytes after
    the end-of-archive marker) get a small budget: they are tiny in real archives.
    """

    def __init__(self, zipped: gzip.GzipFile, compressed: _CompressedReader, limits: ArchiveLimits) -> None:
        self.zipped, self.compressed, self.limits = zipped, compressed, limits
        self.count = 0
        self.budget: int | None = None  # bytes left in the current section; None while reading member data
        self.over_budget = ""  # the message when the section's budget is exceeded
        self.section_start = (0, 0)  # (compressed, decompressed) counts when the section began

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.zipped.read(len(buffer))
        except EOFError:
            raise CorruptArchiveError(
                "the archive is truncated: the gzip stream ends before its end marker (incomplete upload?)"
            ) from None
        except (gzip.BadGzipFile, zlib.error) as error:
            raise CorruptArchiveError(f"the archive's gzip data is corrupt ({error})") from None
        self._account(len(data))
        buffer[: len(data)] = data
        return len(data)

    def _account(self, size: int) -> None:
        self.count += size
        limits = self.limits
        if self.count > limits.max_total_bytes:
            raise UncompressedSizeError(f"the archive unpacks to more than {_size(limits.max_total_bytes)}")
        if self.budget is not None:
            self.budget -= size
            if self.budget < 0:
                raise CorruptArchiveError(self.over_budget)
        self._check_ratio(self.count, self.compressed.count)
        self._check_ratio(self.count - self.section_start[1], self.compressed.count - self.section_start[0])

    def _check_ratio(self, inflated: int, compressed: int) -> None:
        if inflated > self.limits.ratio_check_floor_bytes:
            ratio = inflated / max(compressed, 1)
            if ratio > self.limits.max_compression_ratio:
                raise CompressionRatioError(
                    f"the archive expands {ratio:.0f}x (more than {self.limits.max_compression_ratio:g}x): "
                    "refused as a possible decompression bomb"
                )

    def section(self, budget: int | None, over_budget: str = "") -> None:
        self.budget, self.over_budget = budget, over_budget
        self.section_start = (self.compressed.count, self.count)


def _unpack_and_validate(
    source: str | Path | BinaryIO, private: Path, limits: ArchiveLimits, *, check_values: bool = True
) -> ArchiveInfo:
    """Every refusal is an ``ArchiveError``: an unforeseen exception is logged and refused as unreadable."""
    try:
        return _validate_stream(source, private, limits, check_values=check_values)
    except (ArchiveError, OSError, MemoryError):
        raise
    except Exception as error:
        logger.exception("unexpected error while validating a model archive (refused as unreadable)")
        raise UnreadableArchiveError("the archive could not be read") from error


def _validate_stream(
    source: str | Path | BinaryIO, private: Path, limits: ArchiveLimits, *, check_values: bool
) -> ArchiveInfo:
    if isinstance(source, str | Path):
        path = Path(source)
        if path.stat().st_size > limits.max_archive_bytes:
            raise ArchiveTooLargeError(
                f"the archive is {_size(path.stat().st_size)}, more than the limit of {_size(limits.max_archive_bytes)}"
            )
        with open(path, "rb") as raw:
            members, compressed, uncompressed = _stream_members(raw, private, limits)
    else:
        members, compressed, uncompressed = _stream_members(source, private, limits)

    missing = [name for name in REQUIRED_FILES if name not in members]
    if missing:
        raise MissingMemberError(
            f"the archive has no {' and no '.join(missing)} at its root "
            f"(found: {', '.join(sorted(members)) or 'nothing'})"
        )
    vehicle, metadata = _read_metadata(private / METADATA_FILE)
    parameters = _check_weights_file(private / WEIGHTS_FILE, vehicle, check_values=check_values)
    return ArchiveInfo(
        vehicle=vehicle,
        metadata=metadata,
        members=dict(sorted(members.items())),
        parameter_count=parameters,
        compressed_bytes=compressed,
        uncompressed_bytes=uncompressed,
        reward_function_source=_read_reward_function(private, members),
        hyperparameters=_read_hyperparameters(private, members),
        metrics_files=tuple(sorted(name for name in members if name.startswith(f"{METRICS_DIR}/"))),
    )


def _stream_members(raw: IO[bytes], private: Path, limits: ArchiveLimits) -> tuple[dict[str, int], int, int]:
    """One pass over the tar stream; returns ({name: size}, compressed bytes, decompressed bytes)."""
    compressed = _CompressedReader(raw, limits.max_archive_bytes)
    buffered = io.BufferedReader(compressed)
    if buffered.peek(2)[:2] != b"\x1f\x8b":
        raise NotGzipError("the file is not a gzip-compressed tar archive (expected a model.tar.gz)")
    zipped = gzip.GzipFile(fileobj=buffered, mode="rb")
    inflated = _InflatedReader(zipped, compressed, limits)
    members: dict[str, int] = {}
    entries = 0
    try:
        inflated.section(_SECTION_BUDGET, _HEADER_TOO_LARGE)
        tar = tarfile.open(fileobj=inflated, mode="r|")  # noqa: SIM115 - nothing to close: we own the streams
        for member in tar:  # tarfile reads the next header here, under the header budget
            entries += 1
            if entries > limits.max_members:
                raise TooManyMembersError(f"the archive has more than {limits.max_members} entries")
            name = _checked_member(member, limits)
            if name is not None:
                if name in members:
                    raise DuplicateMemberError(f"the archive contains {name} twice")
                inflated.section(None)
                members[name] = _copy_member(tar, member, private / name)
            inflated.section(_SECTION_BUDGET, _HEADER_TOO_LARGE)
        # Read to the end of the gzip stream: catches truncation and garbage after the tar end marker.
        inflated.section(_SECTION_BUDGET, "more than 1 MiB of data follows the end of the tar archive")
        while inflated.read(_READ_CHUNK):
            pass
    except tarfile.TarError as error:
        if isinstance(error.__context__, ArchiveError):
            raise error.__context__ from None
        if entries == 0:  # the very first header is not tar
            raise NotTarError(f"the gzip data is not a valid tar archive ({error})") from None
        raise CorruptArchiveError(f"the tar data is damaged or cut short after {entries} entries ({error})") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise CorruptArchiveError(f"the archive's gzip data is corrupt or truncated ({error})") from None
    return members, compressed.count, inflated.count


def _checked_member(member: tarfile.TarInfo, limits: ArchiveLimits) -> str | None:
    """The safe, allow-listed name of a regular file member; None for a directory; raises otherwise."""
    raw_name = member.name
    if raw_name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", raw_name):
        raise AbsolutePathError(f"the archive member {raw_name!r} has an absolute path")
    if "\\" in raw_name or "\x00" in raw_name:
        raise UnsafePathError(f"the archive member name {raw_name!r} contains a backslash or NUL")
    parts = [part for part in raw_name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathTraversalError(f"the archive member {raw_name!r} climbs out of the archive with '..'")
    name = "/".join(parts)
    if member.issym():
        raise SymlinkMemberError(f"the archive member {raw_name!r} is a symbolic link (to {member.linkname!r})")
    if member.islnk():
        raise HardlinkMemberError(f"the archive member {raw_name!r} is a hard link (to {member.linkname!r})")
    if member.ischr() or member.isblk() or member.isfifo():
        kind = "character device" if member.ischr() else "block device" if member.isblk() else "FIFO"
        raise SpecialFileMemberError(f"the archive member {raw_name!r} is a {kind}")
    if member.isdir():
        if name not in ("", METRICS_DIR):
            raise UnexpectedMemberError(f"unexpected folder {raw_name!r} in the archive")
        return None
    if not member.isreg() or member.issparse():
        raise SpecialFileMemberError(
            f"the archive member {raw_name!r} is not a regular file (tar type {member.type!r})"
        )
    if not _is_allowed_name(name):
        raise UnexpectedMemberError(
            f"unexpected file {raw_name!r} in the archive; allowed: {', '.join(REQUIRED_FILES + OPTIONAL_FILES)} "
            f"and {METRICS_DIR}/*.json|csv|png"
        )
    cap = limits.max_member_bytes if name == WEIGHTS_FILE else limits.max_small_member_bytes
    if member.size > cap:
        raise MemberTooLargeError(f"the archive member {name} is {_size(member.size)}, more than {_size(cap)}")
    return name


def _is_allowed_name(name: str) -> bool:
    if name in REQUIRED_FILES or name in OPTIONAL_FILES:
        return True
    folder, _, base = name.partition("/")
    return folder == METRICS_DIR and bool(_METRICS_NAME.match(base))


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> int:
    source = tar.extractfile(member)
    assert source is not None  # regular files always have data
    target.parent.mkdir(exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    written = 0
    with os.fdopen(os.open(target, flags, 0o600), "wb") as out:
        while chunk := source.read(_READ_CHUNK):
            written += len(chunk)
            out.write(chunk)
    if written != member.size:
        raise CorruptArchiveError(f"the archive member {member.name!r} is truncated")
    return written


# --- content validation ---------------------------------------------------------------------------------------


def _read_metadata(path: Path) -> tuple[Vehicle, dict[str, Any]]:
    if not path.is_file() or path.is_symlink():
        raise MissingMemberError(f"no {METADATA_FILE} in {path.parent}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MetadataError(f"{METADATA_FILE} is not UTF-8 text") from None
    metadata = _parse_json(METADATA_FILE, text, MetadataError, unique_keys=True)
    try:
        return Vehicle.from_model_metadata(metadata), metadata
    except VehicleError as error:
        raise MetadataError(f"{METADATA_FILE}: {error}") from None


def _parse_json(file_name: str, text: str, error_class: type[ArchiveError], *, unique_keys: bool = False) -> Any:
    """``json.loads`` made total for untrusted text: every problem is an ``error_class`` naming ``file_name``."""
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise error_class(f"{file_name} is nested too deeply (more than {MAX_JSON_DEPTH} levels of arrays/objects)")
    try:
        document = json.loads(
            text,
            object_pairs_hook=_unique_keys if unique_keys else None,
            parse_constant=_no_constants,
            parse_int=_bounded_int,
        )
    except ValueError as error:  # JSONDecodeError, and the hooks' refusals
        raise error_class(f"{file_name} is not valid JSON: {error}") from None
    where = _out_of_range_number(document)
    if where is not None:
        raise error_class(f"{file_name}: {where} is out of range (numbers must be finite and within ±{_FLOAT_MAX:g})")
    return document


def _json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects, found without recursion (strings skipped with json's own scanner).

    Stops counting past ``MAX_JSON_DEPTH``; text that is not JSON gets whatever depth its valid prefix has, and
    ``json.loads`` reports the error itself (it never gets deeper than that prefix).
    """
    depth = deepest = 0
    position = 0
    while match := _JSON_STRUCTURE.search(text, position):
        character, position = match.group(), match.end()
        if character == '"':
            try:
                position = json.decoder.scanstring(text, position)[1]
            except ValueError:  # an unterminated or invalid string: json.loads stops there too
                break
        elif character in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                break
        else:
            depth -= 1
    return deepest


def _out_of_range_number(document: Any) -> str | None:
    """The path (``action_space[0].speed``) of the first number float() cannot hold, or None."""
    pending: list[tuple[str, Any]] = [("", document)]  # no recursion, although the depth is bounded anyway
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            pending.extend((f"{path}.{key}" if path else str(key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in reversed(list(enumerate(value))))
        elif _beyond_float(value):
            return _shortened(path) if path else "the document"
    return None


def _beyond_float(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)  # 1e400 parses as inf
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) > _FLOAT_MAX


def _shortened(text: str, limit: int = 120) -> str:
    """Untrusted text quoted in a message is cut: a 16 MiB key must not become a 16 MiB error."""
    return text if len(text) <= limit else f"{text[:limit]}…"


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits.lstrip('-'))} digits is out of range")
    return int(digits)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):  # one pass: an object may hold many keys
        seen: set[str] = set()
        duplicates = sorted({key for key, _ in pairs if key in seen or seen.add(key)})
        raise ValueError(f"duplicate key(s) {', '.join(map(repr, duplicates))}")
    return document


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON number")


def _check_layout(vehicle: Vehicle, actual: Mapping[str, tuple[tuple[int, ...], torch.dtype]]) -> None:
    """Names, shapes and dtypes exactly as the network of ``vehicle``; the head is checked first."""
    expected = expected_state_dict_layout(vehicle)
    _check_head(vehicle, expected, actual)
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing tensor(s): {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensor(s): {', '.join(unexpected)}")
    for name in sorted(set(expected) & set(actual)):
        (want_shape, want_dtype), (shape, dtype) = expected[name], actual[name]
        if shape != want_shape:
            problems.append(f"{name} has shape {list(shape)}, expected {list(want_shape)}")
        if dtype != want_dtype:
            problems.append(f"{name} has dtype {_dtype_name(dtype)}, expected {_dtype_name(want_dtype)}")
    if problems:
        raise WeightsLayoutError(
            f"the weights do not fit a {vehicle.neural_network} network for sensors {list(vehicle.sensors)}: "
            + "; ".join(problems)
        )


def _check_head(vehicle: Vehicle, expected: Mapping[str, Any], actual: Mapping[str, Any]) -> None:
    """A clear message for the classic mistake: metadata and policy head disagree on the action space."""
    declared = (
        f"{vehicle.action_space.policy_output_size} discrete actions"
        if vehicle.is_discrete
        else "a continuous action space"
    )
    logits = actual.get(f"{DISCRETE_HEAD}.weight")
    means = actual.get(f"{CONTINUOUS_HEAD}.weight")
    if vehicle.is_discrete and logits is None and means is not None:
        raise ActionSpaceMismatchError(
            f"{METADATA_FILE} declares {declared} but the weights have a continuous policy head"
        )
    if not vehicle.is_discrete and means is None and logits is not None:
        raise ActionSpaceMismatchError(
            f"{METADATA_FILE} declares {declared} but the weights have a discrete policy head "
            f"with {logits[0][0]} actions"
        )
    head = logits if vehicle.is_discrete else means
    name = f"{DISCRETE_HEAD if vehicle.is_discrete else CONTINUOUS_HEAD}.weight"
    if head is not None and len(head[0]) == 2 and head[0][0] != expected[name][0][0]:
        outputs = "actions" if vehicle.is_discrete else "outputs"
        raise ActionSpaceMismatchError(
            f"{METADATA_FILE} declares {declared} but the policy head outputs {head[0][0]} {outputs}"
        )


def _check_weights_file(path: Path, vehicle: Vehicle, *, check_values: bool) -> int:
    """Parse the safetensors header, check the layout and (optionally) that every value is finite."""
    with _open_safetensors(path) as weights:
        actual = {}
        for name in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
            tensor_slice = weights.get_slice(name)
            dtype = tensor_slice.get_dtype()
            actual[name] = (tuple(tensor_slice.get_shape()), _DTYPES.get(dtype, dtype))
        _check_layout(vehicle, actual)
        if check_values:
            for name in actual:
                _check_finite(name, weights.get_tensor(name))
    return sum(math.prod(shape) for shape, _ in actual.values())


def _read_weights(path: Path, vehicle: Vehicle) -> dict[str, torch.Tensor]:
    _check_weights_file(path, vehicle, check_values=False)
    state_dict = {}
    with _open_safetensors(path) as weights:
        for name in weights.keys():  # noqa: SIM118
            tensor = weights.get_tensor(name)
            _check_finite(name, tensor)
            state_dict[name] = tensor
    return state_dict


def _open_safetensors(path: Path) -> Any:
    if not path.is_file() or path.is_symlink():
        raise MissingMemberError(f"no {WEIGHTS_FILE} in {path.parent}")
    try:
        return safetensors.safe_open(str(path), framework="pt")
    except Exception as error:  # SafetensorError and friends: the file is not valid safetensors
        with open(path, "rb") as handle:
            head = handle.read(4)
        if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
            what = "is a pickle, not safetensors"
        elif head.startswith(b"PK\x03\x04"):
            what = "is a zip file (torch.save format), not safetensors"
        else:
            what = f"is not a valid safetensors file ({error})"
        raise WeightsFormatError(
            f"{WEIGHTS_FILE} {what}; Pitlane loads weights only from safetensors and never unpickles. "
            "Save them with safetensors.torch.save_file(state_dict, 'model.safetensors')"
        ) from None


def _check_finite(name: str, tensor: torch.Tensor) -> None:
    # A sum is finite only if every element is (NaN and infinities propagate): one pass with no bool tensor, ~10x
    # faster than isfinite().all() on the 12 M weights of an evaluation. A sum that overflows is checked exactly.
    if not tensor.is_floating_point() or bool(torch.isfinite(tensor.sum())):
        return
    if not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise NonFiniteWeightsError(f"the tensor {name} holds {bad} NaN or infinite value(s)")


def _read_reward_function(private: Path, members: Mapping[str, int]) -> str | None:
    if REWARD_FUNCTION_FILE not in members:
        return None
    try:
        return (private / REWARD_FUNCTION_FILE).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ProvenanceError(f"{REWARD_FUNCTION_FILE} is not UTF-8 text") from None


def _read_hyperparameters(private: Path, members: Mapping[str, int]) -> dict[str, Any] | None:
    if HYPERPARAMETERS_FILE not in members:
        return None
    try:
        text = (private / HYPERPARAMETERS_FILE).read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProvenanceError(f"{HYPERPARAMETERS_FILE} is not valid JSON: {error}") from None
    document = _parse_json(HYPERPARAMETERS_FILE, text, ProvenanceError)
    if not isinstance(document, dict):
        raise ProvenanceError(f"{HYPERPARAMETERS_FILE} must hold a JSON object")
    return document


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _size(count: int) -> str:
    return f"{count / MiB:.1f} MiB" if count >= MiB else f"{count} bytes"
