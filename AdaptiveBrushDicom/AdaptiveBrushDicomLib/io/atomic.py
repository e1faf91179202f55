"""Atomic file output: write to a hidden temporary sibling, fsync it, rename over the target.

The one temp-file-and-rename helper of the package (SEG, DICOM series, .seg.nrrd, label
images, JSON / Markdown reports, DICOMweb downloads). A reader, or a process killed
halfway, never sees a half-written file: the target either does not exist yet or is
complete. The temporary file is fsynced before the rename, so after a crash the renamed
file holds its data (rename without fsync can leave an empty file on some file systems).
The temporary name ``.<name>.tmp-<pid>`` is hidden, so folder scans (``ReferenceSeries``,
the index) skip it, and ``runs.migrate`` can clean up the ones a kill left behind.

Many files at once (a volume series, a batch of SEGs): :class:`AtomicBatch` keeps the
same guarantee per file, but syncs the whole batch together (:func:`sync_files`: one
fsync per file issued from parallel threads, which the file system commits in one
journal transaction instead of one each), then renames every file, then syncs the
folders that hold them. On a busy disk that is one flush instead of one per file.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Iterable, Iterator

from AdaptiveBrushDicomLib.errors import UserError

#: Threads issuing fsync calls together in :func:`sync_files` (they wait on the disk, not the CPU).
SYNC_THREADS = 16

#: True inside :func:`deferred_sync`: :func:`atomic_replace` leaves syncing to the caller.
_DEFERRED: ContextVar[bool] = ContextVar("abdicom_deferred_sync", default=False)


def temporary_sibling(path: Path) -> Path:
    """The hidden temporary name used for ``path`` by this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make the names in folder ``path`` durable (POSIX; a no-op where folders cannot be opened)."""
    if os.name == "nt":  # Windows has no directory fsync; NTFS journals the rename itself
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_files(paths: Iterable[str | Path], dirs: Iterable[str | Path] = ()) -> None:
    """fsync every file of ``paths`` (from parallel threads), then every folder of ``dirs``.

    Raises
    ------
    OSError
        When a file or folder cannot be opened or synced (the first such error).
    """
    files = [Path(p) for p in paths]
    if len(files) == 1:
        _fsync_file(files[0])
    elif files:
        with ThreadPoolExecutor(min(SYNC_THREADS, len(files)), thread_name_prefix="abdicom-fsync") as pool:
            for _ in pool.map(_fsync_file, files):
                pass
    for d in dict.fromkeys(Path(d) for d in dirs):
        _fsync_dir(d)


@contextmanager
def deferred_sync() -> Iterator[None]:
    """Inside this block :func:`atomic_replace` renames without syncing first.

    For a caller that syncs the files itself, in a batch, before anyone relies on them
    (``runs.worker`` writes a SEG to a temporary name this way, verifies it, and the
    migration syncs and renames a batch of them with :class:`AtomicBatch`). Only this
    thread / task is affected.
    """
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


@contextmanager
def atomic_replace(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on normal exit it is fsynced and renamed to ``path``.

    On any exception the temporary file is removed and the exception propagates unchanged
    (use :func:`atomic_output` to turn ``OSError`` into a one-line user error). Inside
    :func:`deferred_sync` the fsync is left to the caller.

    Raises
    ------
    OSError
        When the temporary file cannot be written, synced or renamed.
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if not _DEFERRED.get():
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """:func:`atomic_replace` for user-facing outputs.

    Raises
    ------
    UserError
        When writing fails with an ``OSError`` (disk full, permission denied, ...): one line
        naming ``path``. The temporary file is removed; ``path`` is left as it was.
    """
    path = Path(path)
    try:
        with atomic_replace(path) as tmp:
            yield tmp
    except OSError as exc:
        raise UserError(f"cannot write: {exc.strerror or exc}", path) from None


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).

    Raises
    ------
    OSError
        When the file cannot be written (the caller words the message).
    """
    with atomic_replace(path) as tmp:
        tmp.write_bytes(data)


class AtomicBatch:
    """Many files written atomically, synced together.

    ``temporary(target)`` names the hidden file to write for ``target`` (or ``adopt``
    takes a file already written under a temporary name); :meth:`commit` fsyncs all of
    them at once (:func:`sync_files`), renames each onto its target, and fsyncs the
    folders. So every target, once it has its final name, is complete and on disk, as
    with :func:`atomic_replace`. Used as a context manager, a normal exit commits and an
    exception removes the temporary files (targets keep what they had).
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def temporary(self, target: str | Path) -> Path:
        """The temporary path to write ``target``'s content to (renamed on commit)."""
        target = Path(target)
        tmp = temporary_sibling(target)
        self._pending.append((tmp, target))
        return tmp

    def adopt(self, written: str | Path, target: str | Path) -> None:
        """Commit the already written file ``written`` (a hidden name next to ``target``) as ``target``."""
        self._pending.append((Path(written), Path(target)))

    def commit(self) -> list[Path]:
        """Sync every pending file, rename each onto its target, sync their folders.

        Returns
        -------
        list of Path
            The targets, in the order they were added.

        Raises
        ------
        OSError
            When a file cannot be synced or renamed; the files not yet renamed are removed.
        """
        pending, self._pending = self._pending, []
        done = 0
        try:
            sync_files(tmp for tmp, _ in pending)
            for tmp, target in pending:
                os.replace(tmp, target)
                done += 1
            sync_files((), (target.parent for _, target in pending))
        except BaseException:
            for tmp, _ in pending[done:]:
                tmp.unlink(missing_ok=True)
            raise
        return [target for _, target in pending]

    def discard(self) -> None:
        """Remove every pending temporary file (nothing is renamed)."""
        pending, self._pending = self._pending, []
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)

    def __enter__(self) -> "AtomicBatch":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
