"""Every hostile or broken archive is refused with its own error and message, and nothing escapes the scratch."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.io import archive
from tests.sim.hostile_archives import build_hostile_corpus


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A parent folder holding the corpus and the scratch folders; an escape would land here."""
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def corpus(sandbox: Path) -> dict:
    return build_hostile_corpus(sandbox / "corpus", escape_dir=sandbox)


def _listing(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


CASES = [
    "path_traversal", "nested_traversal", "absolute_path", "symlink", "hardlink", "char_device", "fifo",
    "executable", "duplicate", "tar_bomb", "bomb_behind_weights", "trailing_bomb", "huge_header",
    "huge_member", "many_members", "not_gzip", "gzip_not_tar", "truncated", "short_member", "pickle_weights",
    "torch_save_weights", "missing_metadata", "missing_weights", "garbled_metadata", "unknown_network",
    "unknown_sensor", "sac_metadata", "mismatched_action_space", "wrong_shapes", "wrong_dtype",
    "unexpected_tensor", "nan_weights", "deep_metadata", "deep_hyperparameters", "deep_inside_a_string",
    "huge_int_version", "huge_int_speed", "overlong_int", "infinite_float_metadata", "nan_hyperparameters",
    "infinity_hyperparameters", "overflowing_hyperparameters",
]  # fmt: skip


def test_corpus_covers_every_case(corpus: dict) -> None:
    assert sorted(corpus) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_inspect_refuses(corpus: dict, sandbox: Path, case: str) -> None:
    hostile = corpus[case]
    scratch = sandbox / f"inspect-{case}"
    scratch.mkdir()
    with pytest.raises(archive.ArchiveError) as caught:
        archive.inspect_archive(hostile.path, scratch_dir=scratch)
    assert type(caught.value) is hostile.error, str(caught.value)
    assert hostile.message in str(caught.value)
    assert list(scratch.iterdir()) == []  # the private folder is gone


@pytest.mark.parametrize("case", CASES)
def test_extract_refuses_and_writes_nothing_outside_its_folder(corpus: dict, sandbox: Path, case: str) -> None:
    hostile = corpus[case]
    before = _listing(sandbox)
    dest = sandbox / f"extract-{case}"
    with pytest.raises(hostile.error):
        archive.extract_archive(hostile.path, dest)
    assert list(dest.iterdir()) == []
    assert _listing(sandbox) - before == {dest.name}
    assert not (sandbox / "escaped.txt").exists() and not (sandbox / "absolute.txt").exists()


def test_every_case_has_its_own_message(corpus: dict, sandbox: Path) -> None:
    messages = set()
    for hostile in corpus.values():
        with pytest.raises(archive.ArchiveError) as caught:
            archive.inspect_archive(hostile.path, scratch_dir=sandbox)
        messages.add(str(caught.value))
    assert len(messages) == len(corpus)


def test_file_objects_are_checked_like_paths(corpus: dict) -> None:
    hostile = corpus["symlink"]
    with open(hostile.path, "rb") as upload, pytest.raises(archive.SymlinkMemberError):
        archive.inspect_archive(upload)


@pytest.mark.parametrize("case", ["pickle_weights", "nan_weights", "mismatched_action_space"])
def test_load_model_refuses(corpus: dict, case: str) -> None:
    hostile = corpus[case]
    with pytest.raises(hostile.error, match=hostile.message.split("'")[0]):
        archive.load_model(hostile.path)


# --- totality: whatever the bytes, an ArchiveError (issue "Hardening", item 4) -----------------------------------


def test_an_unforeseen_error_is_logged_and_refused_as_unreadable(
    corpus: dict, sandbox: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.sim.hostile_archives import valid_members, write_tar_gz

    good = write_tar_gz(sandbox / "good-for-unforeseen.tar.gz", valid_members())
    archive.inspect_archive(good)  # valid as it is

    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("a bug nobody foresaw")

    monkeypatch.setattr(archive.Vehicle, "from_model_metadata", broken)
    with caplog.at_level("ERROR", logger="sim.io.archive"), pytest.raises(archive.UnreadableArchiveError) as caught:
        archive.inspect_archive(good)
    assert str(caught.value) == "the archive could not be read"
    assert caught.value.code == "unreadable_archive"
    assert isinstance(caught.value.__cause__, TypeError)  # kept for the log's traceback
    assert "unexpected error while validating a model archive" in caplog.text
    assert "a bug nobody foresaw" in caplog.text  # the traceback is in the log
    dest = sandbox / "extract-unforeseen"
    with pytest.raises(archive.UnreadableArchiveError):
        archive.extract_archive(good, dest)
    assert list(dest.iterdir()) == []


def test_the_machine_s_own_failures_are_not_blamed_on_the_archive(sandbox: Path) -> None:
    with pytest.raises(FileNotFoundError):
        archive.inspect_archive(sandbox / "no-such-file.tar.gz")


def test_vehicle_and_hyperparameter_checks_refuse_numbers_floats_cannot_hold() -> None:
    from sim.learn.hyperparameters import HyperparameterError, Hyperparameters
    from sim.world.vehicle import Vehicle, VehicleError
    from tests.sim.hostile_archives import SMALL_VEHICLE

    metadata = SMALL_VEHICLE.to_model_metadata()
    metadata["action_space"][0]["speed"] = 10**400
    with pytest.raises(VehicleError, match=r"action_space\[0\]\.speed: 1000.*… is out of range"):
        Vehicle.from_model_metadata(metadata)
    metadata = SMALL_VEHICLE.to_model_metadata() | {"version": 10**400}
    with pytest.raises(VehicleError, match=r"version: .* is out of range"):
        Vehicle.from_model_metadata(metadata)
    metadata = SMALL_VEHICLE.to_model_metadata() | {"neural_network": "x" * 10_000}
    with pytest.raises(VehicleError) as caught:
        Vehicle.from_model_metadata(metadata)
    assert len(str(caught.value)) < 300  # the uploaded value is quoted, cut short
    with pytest.raises(HyperparameterError, match="learning_rate is out of range"):
        Hyperparameters(learning_rate=10**400)
    with pytest.raises(HyperparameterError, match="learning_rate must be a finite number, got nan"):
        Hyperparameters(learning_rate=float("nan"))
    with pytest.raises(HyperparameterError, match="between 32 and 512, got a number too long to print"):
        Hyperparameters(batch_size=10**5000)
