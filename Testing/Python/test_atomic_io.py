"""io/atomic.py (the one temp-file + fsync + rename helper) and io/digest.py (SHA-256 of files)."""

from __future__ import annotations

import hashlib
import os

import pytest

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.io import atomic
from AdaptiveBrushDicomLib.io.atomic import atomic_output, atomic_write_bytes, temporary_sibling
from AdaptiveBrushDicomLib.io.digest import CHUNK_BYTES, sha256_file


def test_atomic_output_fsyncs_the_temporary_file_before_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else fd))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    with atomic_output(target) as tmp:
        assert tmp.name.startswith(".out.bin.tmp-") and tmp.parent == tmp_path
        tmp.write_bytes(b"payload")
    assert target.read_bytes() == b"payload"
    assert [e[0] for e in events] == ["fsync", "replace"]
    if os.path.exists("/proc/self/fd"):
        assert events[0][1] == str(temporary_sibling(target))
    assert events[1][1:] == (str(temporary_sibling(target)), str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "keep.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json"]


def test_os_errors_become_one_line_user_errors_naming_the_file(tmp_path):
    target = tmp_path / "missing_folder" / "x.dcm"
    with pytest.raises(UserError) as info:
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"x")
    assert str(target) in str(info.value) and "cannot write" in str(info.value)
    assert "\n" not in str(info.value)
    # the plain variant keeps the OSError for callers that word it themselves
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(target, b"x")


def test_atomic_write_bytes_replaces_content(tmp_path):
    target = tmp_path / "r.json"
    atomic_write_bytes(target, b"1")
    atomic_write_bytes(target, b"22")
    assert target.read_bytes() == b"22" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_sha256_file_matches_hashlib_across_chunks(tmp_path):
    data = os.urandom(2 * CHUNK_BYTES + 12345)
    p = tmp_path / "big.bin"
    p.write_bytes(data)
    assert sha256_file(p) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()
