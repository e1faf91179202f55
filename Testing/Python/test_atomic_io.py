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


def test_atomic_batch_syncs_every_file_before_any_rename_then_the_folders(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
                       if os.path.exists("/proc/self/fd") else "?"))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.basename(str(dst))))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    targets = [tmp_path / f"{k:04d}.dcm" for k in range(20)]
    with atomic.AtomicBatch() as batch:
        for k, target in enumerate(targets):
            batch.temporary(target).write_bytes(bytes([k]) * 100)
        assert not any(t.exists() for t in targets)  # nothing has its final name before the commit
    assert [t.read_bytes() for t in targets] == [bytes([k]) * 100 for k in range(20)]
    kinds = [e[0] for e in events]
    assert kinds == ["fsync"] * 20 + ["replace"] * 20 + ["fsync"]  # files, renames, then the folder once
    if os.path.exists("/proc/self/fd"):
        assert sorted(e[1] for e in events[:20]) == sorted(temporary_sibling(t).name for t in targets)
        assert events[-1][1] == tmp_path.name
    assert sorted(p.name for p in tmp_path.iterdir()) == [t.name for t in targets]


def test_atomic_batch_discards_everything_on_an_exception(tmp_path):
    old = tmp_path / "0001.dcm"
    old.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.AtomicBatch() as batch:
            batch.temporary(old).write_bytes(b"new")
            batch.temporary(tmp_path / "0002.dcm").write_bytes(b"new")
            raise RuntimeError("killed halfway")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0001.dcm"] and old.read_bytes() == b"old"


def test_deferred_sync_renames_without_fsync_and_sync_files_syncs_later(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    target = tmp_path / ".trial_000.dcm.partial-1"
    with atomic.deferred_sync():
        atomic_write_bytes(target, b"seg")
    assert target.read_bytes() == b"seg" and synced == []
    atomic_write_bytes(tmp_path / "report.json", b"{}")  # outside the block: synced as always
    assert len(synced) == 1
    atomic.sync_files([target], [tmp_path])
    assert len(synced) == 3
