"""DICOM Part 10 files under the paths a user gave: what ``db import`` and ``push`` read.

Folders are searched recursively (symlinks only inside the folder given, FIFOs and devices
refused in words); a file is DICOM when it has the ``DICM`` preamble.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from AdaptiveBrushDicomLib.errors import UserError


def iter_files(paths: Iterable[str | Path]) -> Iterable[Path]:
    """Regular files under ``paths`` (files as given; folders recursively, sorted, hidden included).

    Raises
    ------
    UserError
        A path does not exist.
    """
    from AdaptiveBrushDicomLib.io.limits import check_file

    for p in paths:
        p = Path(p)
        if p.is_file():
            yield p
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    check_file(f, root=p, what="file")  # no symlink out of the folder given
                    yield f
        elif p.exists():
            check_file(p, what="file")  # a FIFO or device: refused in words
        else:
            raise UserError("no such file or folder; check the path", p)


def looks_like_dicom(path: Path, head: bytes | None = None) -> bool:
    """True if the file has the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    if head is None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(132)
        except OSError:
            return False
    return len(head) >= 132 and head[128:132] == b"DICM"
