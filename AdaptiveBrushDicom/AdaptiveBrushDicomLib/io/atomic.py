"""Atomic file output: write to a hidden temporary sibling, fsync it, rename over the target.

The one temp-file-and-rename helper of the package (SEG, DICOM series, .seg.nrrd, label
images, JSON / Markdown reports, DICOMweb downloads). A reader, or a process killed
halfway, never sees a half-written file: the target either does not exist yet or is
complete. The temporary file is fsynced before the rename, so after a crash the renamed
file holds its data (rename without fsync can leave an empty file on some file systems).
The temporary name ``.<name>.tmp-<pid>`` is hidden, so folder scans (``ReferenceSeries``,
the index) skip it, and ``runs.migrate`` can clean up the ones a kill left behind.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from AdaptiveBrushDicomLib.errors import UserError


def temporary_sibling(path: Path) -> Path:
    """The hidden temporary name used for ``path`` by this process."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_replace(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on normal exit it is fsynced and renamed to ``path``.

    On any exception the temporary file is removed and the exception propagates unchanged
    (use :func:`atomic_output` to turn ``OSError`` into a one-line user error).

    Raises
    ------
    OSError
        When the temporary file cannot be written, synced or renamed.
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
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
