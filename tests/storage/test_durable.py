"""The one atomic file write: whole or not at all, and the create-if-absent publish."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ofa_fleet.storage.durable import open_atomic, publish_new, remove_temp_files, write_atomic


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"old")
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # private unless asked otherwise


def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"old")

    def write_and_die() -> None:
        with open_atomic(path) as handle:
            handle.write(b"half of the new")
            raise RuntimeError("writer died")

    with pytest.raises(RuntimeError, match="writer died"):
        write_and_die()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.ckpt"]


def test_a_streamed_write_can_be_made_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "front.png"
    with open_atomic(path, mode=0o644) as handle:
        handle.write(b"\x89PNG")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_first_publisher_wins_and_later_ones_keep_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    assert publish_new(path, b"first key") is True
    assert publish_new(path, b"second key") is False
    assert path.read_bytes() == b"first key"
    assert [p.name for p in tmp_path.iterdir()] == ["signing.key"]


def test_only_the_named_files_temporaries_are_removed(tmp_path: Path) -> None:
    mine = tmp_path / ".state.json.abc123.tmp"
    theirs = tmp_path / ".other.json.def456.tmp"
    kept = tmp_path / "state.json"
    for path in (mine, theirs, kept):
        path.write_bytes(b"x")
    assert remove_temp_files(tmp_path, "state.json") == [mine]
    assert sorted(p.name for p in tmp_path.iterdir()) == [theirs.name, kept.name]
