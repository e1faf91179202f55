"""SHA-256 of files: the one chunked hashing loop of the package.

Used for source/output checksums in migration reports and results.json and for the
index's change detection. Reads 1 MiB at a time, so memory stays flat for any file size.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

#: Bytes read per chunk.
CHUNK_BYTES = 1 << 20


def sha256_stream(fh: BinaryIO) -> str:
    """Hex SHA-256 of everything ``fh`` yields from its current position to its end."""
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
        h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of the file at ``path``.

    Raises
    ------
    OSError
        When the file cannot be opened or read.
    """
    with open(path, "rb") as fh:
        return sha256_stream(fh)
