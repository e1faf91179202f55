"""Atomic file output: write to a hidden temporary sibling, then rename over the target.

A reader (or a process killed halfway) never sees a half-written file: the target either
does not exist yet or is complete. The temporary name ``.<name>.tmp-<pid>`` is hidden, so
folder scans (``ReferenceSeries``, the index) skip it.
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


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on normal exit it is renamed to ``path``.

    On any exception the temporary file is removed; an ``OSError`` (disk full, permission
    denied, ...) becomes a one-line :class:`~.errors.UserError` naming ``path``.
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write: {exc.strerror or exc}", path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
