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
    "unexpected_tensor", "nan_weights",
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
