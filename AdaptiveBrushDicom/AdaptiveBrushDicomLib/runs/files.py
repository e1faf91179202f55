"""File helpers of the migration: stale temporaries, write checks, JSON text (hashing and
atomic writes are the package's ``io.digest`` / ``io.atomic``, re-exported here)."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.io.atomic import atomic_write_bytes
from AdaptiveBrushDicomLib.io.digest import sha256_file
from AdaptiveBrushDicomLib.runs.layout import (
    GOLD_LEGACY_METADATA_NAME, GOLD_METADATA_NAME, LEGACY_RESULTS_NAME, REPORT_JSON_NAME, REPORT_MD_NAME,
    RESULTS_NAME, SEG_DIR, VOLUME_DIR,
)

#: Names of our temporary files; stale ones (left by a kill) are removed on the next run.
TEMP_RE = re.compile(r"^\..+\.(tmp|partial)-\d+$")
#: Files we write directly into a run / gold folder (their temporary names are cleaned up).
OWN_TOP_LEVEL = (RESULTS_NAME, LEGACY_RESULTS_NAME, GOLD_METADATA_NAME, GOLD_LEGACY_METADATA_NAME,
                 REPORT_JSON_NAME, REPORT_MD_NAME, "abdicom-write-test")


def describe_oserror(exc: OSError) -> str:
    """What went wrong and what to do, for a report line."""
    if exc.errno == errno.ENOSPC:
        return "disk full (ENOSPC); free space and re-run"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{exc.strerror or 'permission denied'}; make the folder writable (e.g. chmod u+w) and re-run"
    return f"{exc.strerror or exc}"


def json_bytes(data: Any) -> bytes:
    """The JSON text we write (indent 2, UTF-8, trailing newline)."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def clean_stale_temps(folder: Path) -> list[str]:
    """Remove our temporary files (``.name.tmp-PID`` / ``.name.partial-PID``) left by a kill.

    In the folder itself only temporary names of the files we write are touched; in
    ``dicom/`` (ours) any name of that pattern."""
    removed = []
    for sub in (folder, folder / "dicom", folder / VOLUME_DIR, folder / SEG_DIR):
        if not sub.is_dir():
            continue
        for p in sub.iterdir():
            if sub == folder and not any(p.name.startswith(f".{own}.tmp-") for own in OWN_TOP_LEVEL):
                continue
            if p.is_file() and TEMP_RE.match(p.name):
                try:
                    p.unlink()
                    removed.append(str(p.relative_to(folder)))
                except OSError:
                    pass
    return removed


def check_writable(folder: Path) -> None:
    """Refuse a folder we cannot write into (read-only mount, permissions), or whose
    ``dicom/`` folders are symlinks leading out of it.

    Raises
    ------
    UserError
        Naming the folder and what to do.
    """
    root = Path(os.path.realpath(folder))
    for rel in ("dicom", VOLUME_DIR, SEG_DIR):
        real = Path(os.path.realpath(folder / rel))
        if root not in real.parents:
            raise UserError(f"{rel} leads outside the folder (symlink to {real}); remove the symlink", folder)
    probe = folder / f".abdicom-write-test.tmp-{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"")
        probe.unlink()
    except OSError as exc:
        raise UserError(
            f"folder is not writable ({exc.strerror or exc}); make it writable (chmod u+w) or copy it to a writable "
            "place and migrate the copy", folder) from None


__all__ = ["sha256_file", "describe_oserror", "atomic_write_bytes", "json_bytes", "clean_stale_temps",
           "check_writable"]
