"""bench.atomic: a folder written by two processes at once ends as one complete copy, never an error."""

from __future__ import annotations

import pytest

from bench.atomic import atomic_dir


def test_atomic_dir_renames_the_filled_folder(tmp_path):
    out = tmp_path / "model"
    with atomic_dir(out) as tmp:
        (tmp / "config.json").write_text("{}")
    assert (out / "config.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder left behind


def test_two_writers_of_one_folder_keep_the_copy_renamed_first(tmp_path):
    """Two grid workers converting SmolLM2 on first use both reach the rename; the later one must not fail its
    run (it did: 'Directory not empty' on the second worker's first SmolLM2 run)."""
    out = tmp_path / "model"
    with atomic_dir(out) as first, atomic_dir(out) as second:
        (first / "weights").write_text("first")
        (second / "weights").write_text("second")
    assert (out / "weights").read_text() == "second"  # the inner block exits first: its rename won
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_fill_leaves_nothing(tmp_path):
    out = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("killed mid-conversion")
    assert list(tmp_path.iterdir()) == []
