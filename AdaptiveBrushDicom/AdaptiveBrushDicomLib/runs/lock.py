"""One migration per folder at a time: a ``filelock`` lock beside ``dicom/``, never in it.

``dicom/`` is what users hand to viewers and PACS, so it holds DICOM files only; the lock
is ``<folder>/.abdicom-migrate.lock``. ``filelock`` uses ``fcntl.flock`` on POSIX and
``msvcrt.locking`` on Windows; the operating system releases the lock when the holder
dies (also on kill -9), so a stale lock file never blocks a re-run. The (empty) file may
stay behind after the migration; it is not part of the DICOM data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib.errors import UserError

#: Name of the lock file, directly in the run / gold standard folder.
LOCK_NAME = ".abdicom-migrate.lock"


class FolderBusyError(UserError):
    """Another migration holds the folder's lock."""


def lock_path(folder: Path) -> Path:
    """Where the lock of ``folder`` lives (outside ``dicom/``)."""
    return Path(folder) / LOCK_NAME


class FolderLock:
    """Exclusive, non-blocking lock of one folder (a context manager).

    Raises
    ------
    FolderBusyError
        On :meth:`acquire` when another process holds it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = lock_path(self.folder)
        self._lock: Any = None

    def acquire(self) -> None:
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise FolderBusyError(f"another migration is working on this folder ({LOCK_NAME} is locked); "
                                  "wait for it to finish and re-run", self.folder) from None
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


__all__ = ["LOCK_NAME", "FolderBusyError", "FolderLock", "lock_path"]
