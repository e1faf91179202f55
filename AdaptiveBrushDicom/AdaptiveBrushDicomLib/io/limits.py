"""Reading user files with limits: what a hostile or broken file may cost.

Every file the user hands us (SEGs, image series, ``.seg.nrrd``, run folders with
``results.json`` and ``config.yaml``, metadata tables) goes through one of these helpers
before a library parses it:

* only regular files are read (a FIFO would block, ``/dev/zero`` never ends); files are
  opened with ``O_NONBLOCK`` so even the check cannot hang;
* a symlink is followed only when it stays inside the folder the user gave (``root=``);
* each kind of file has a size cap (:data:`MAX_BYTES`): JSON and YAML metadata in
  megabytes, not gigabytes;
* JSON is parsed with a nesting-depth and a number-length limit; YAML with a loader that
  refuses aliases (the "billion laughs" bomb needs them, a run configuration does not);
* every inflate is capped by the size its header implies (:func:`inflate_capped`), and
  that implied size by :func:`max_voxels` (``--max-voxels``, default
  :data:`DEFAULT_MAX_VOXELS`); image and NRRD headers are checked against these limits
  by :mod:`.image_limits`.

All refusals are :class:`LimitError` (an :class:`~.errors.InputFileError`): one line naming
the file and what to do.
"""

from __future__ import annotations

import enum
import json
import os
import stat
from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib.errors import InputFileError

#: Default ``--max-voxels``: 2**31 voxels, i.e. 2 GiB of 8-bit or 4 GiB of 16-bit output
#: (a 1024 x 1024 x 2048 volume). Far above any CT/MR series (a 512 x 512 x 2000 CT is
#: 0.5 G voxels), far below what takes a 24 GiB machine down.
DEFAULT_MAX_VOXELS = 2**31

#: Deepest JSON nesting accepted (results.json is 4 levels deep; dcmqi metadata 6).
MAX_JSON_DEPTH = 64
#: Longest JSON integer literal accepted (digits); Python refuses > 4300 with a ValueError.
MAX_JSON_INT_DIGITS = 64
#: Deepest DICOM sequence nesting the raw walker follows (SEGs need 3-4 levels).
MAX_SEQUENCE_DEPTH = 32


class FileKind(enum.Enum):
    """Kinds of user files, each with its own size cap (:data:`MAX_BYTES`)."""

    JSON = "JSON file"
    YAML = "YAML file"
    TABLE = "metadata table"
    DICOM_HEADER = "DICOM header"


#: Size caps per kind (bytes). results.json of a 10,000-trial run is ~5 MB.
MAX_BYTES: dict[FileKind, int] = {
    FileKind.JSON: 64 * 2**20,
    FileKind.YAML: 4 * 2**20,
    FileKind.TABLE: 16 * 2**20,
    FileKind.DICOM_HEADER: 256 * 2**20,
}

_max_voxels = DEFAULT_MAX_VOXELS


class LimitError(InputFileError):
    """A file is refused because reading it would exceed a limit (or it is not a file)."""


def max_voxels() -> int:
    """The current voxel limit (``--max-voxels``) for any image or SEG decoded."""
    return _max_voxels


def set_max_voxels(n: int | None) -> None:
    """Set :func:`max_voxels` (``None``: back to :data:`DEFAULT_MAX_VOXELS`).

    Raises
    ------
    ValueError
        ``n`` is not positive.
    """
    global _max_voxels
    if n is not None and n <= 0:
        raise ValueError("--max-voxels must be positive")
    _max_voxels = DEFAULT_MAX_VOXELS if n is None else int(n)


def check_voxels(count: int, what: str, path: str | Path | None) -> None:
    """Refuse an image/SEG whose header implies more than :func:`max_voxels` voxels.

    Parameters
    ----------
    count : voxels the header implies (rows x columns x frames, or the NRRD sizes)
    what : how the count came about, for the message (e.g. ``"Rows x Columns x NumberOfFrames"``)

    Raises
    ------
    LimitError
        ``count`` is over the limit; the message says how to raise it (``--max-voxels``).
    """
    if count > _max_voxels:
        raise LimitError(
            f"{what} = {count:,} voxels, more than the limit of {_max_voxels:,}; "
            "if the file is genuine, raise it with --max-voxels",
            path,
        )


# ----------------------------------------------------------------------- files
def check_file(path: str | Path, *, root: str | Path | None = None, what: str = "file") -> os.stat_result:
    """Refuse anything but a regular file (and symlinks out of ``root``); never blocks.

    Parameters
    ----------
    path : the file
    root : the folder the user gave; a symlink may only point inside it (None: any target)
    what : the file's role, for messages

    Returns
    -------
    os.stat_result of the target

    Raises
    ------
    LimitError
        Missing, a FIFO/device/folder, or a symlink leading out of ``root``.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise LimitError("no such file; check the path", path) from None
    except (OSError, ValueError) as exc:  # ValueError: embedded NUL byte
        raise LimitError(f"cannot read {what} ({exc})", path) from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise LimitError(f"{what} is {kind}; give a regular file", path)
    if root is not None and _leaves(path, root):
        raise LimitError(f"{what} leads to {os.path.realpath(path)}, outside {root} (a symlink?); "
                         "copy the file into the folder", path)
    return st


def _leaves(path: str | Path, root: str | Path) -> bool:
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep)


def read_bytes(path: str | Path, kind: FileKind, *, root: str | Path | None = None,
               max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file no larger than the cap of ``kind``.

    Opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor, so a FIFO
    swapped in after :func:`check_file` cannot block either; at most cap + 1 bytes are read
    (files such as ``/proc`` entries report size 0).

    Raises
    ------
    LimitError
        Not a regular file, a symlink out of ``root``, or larger than the cap.
    """
    path = Path(path)
    check_file(path, root=root, what=kind.value)
    cap = MAX_BYTES[kind] if max_bytes is None else max_bytes
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise LimitError(f"cannot open {kind.value} ({exc.strerror or exc})", path) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LimitError(f"{kind.value} is not a regular file; give a regular file", path)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(cap + 1)
    except OSError as exc:
        raise LimitError(f"cannot read {kind.value} ({exc.strerror or exc})", path) from None
    finally:
        os.close(fd)
    if len(data) > cap:
        raise LimitError(f"{kind.value} is larger than {cap // 2**20} MiB; this is not a file we wrote", path)
    return data


def read_text(path: str | Path, kind: FileKind, *, root: str | Path | None = None) -> str:
    """:func:`read_bytes` decoded as UTF-8 (BOM accepted); NUL bytes refused.

    Raises
    ------
    LimitError
        Refused by :func:`read_bytes`, not UTF-8, or holding a NUL byte.
    """
    data = read_bytes(path, kind, root=root)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LimitError(f"{kind.value} is not UTF-8 text (byte {exc.start}); save it as UTF-8", path) from None
    if "\x00" in text:
        raise LimitError(f"{kind.value} contains a NUL byte (offset {text.index(chr(0))}); it is not text", path)
    return text


# ------------------------------------------------------------------------ JSON
def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_INT_DIGITS:
        raise _JsonLimit(f"a {digits}-digit number (more than {MAX_JSON_INT_DIGITS} digits)")
    return int(text)


class _JsonLimit(ValueError):
    pass


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (iterative: no recursion limit)."""
    depth, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            depth = max(depth, d)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return depth


def loads_json(text: str, path: str | Path | None) -> Any:
    """``json.loads`` with :data:`MAX_JSON_DEPTH` and :data:`MAX_JSON_INT_DIGITS`.

    Raises
    ------
    LimitError
        Too deep or a too long number.
    json.JSONDecodeError
        Not JSON (the caller words the message, e.g. with line and column).
    """
    try:
        data = json.loads(text, parse_int=_parse_int)
    except _JsonLimit as exc:
        raise LimitError(f"JSON holds {exc}; this is not a file we wrote", path) from None
    except RecursionError:
        raise LimitError(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels; this is not a file we wrote",
                         path) from None
    if json_depth(data) > MAX_JSON_DEPTH:
        raise LimitError(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels; this is not a file we wrote", path)
    return data


def read_json_file(path: str | Path, *, root: str | Path | None = None) -> Any:
    """Read and parse a JSON file with all limits (size, regular file, depth, numbers).

    Raises
    ------
    LimitError
        Refused by :func:`read_text` or :func:`loads_json` (size, not a regular file,
        nesting, numbers).
    InputFileError
        Not valid JSON (the message names line and column).
    """
    text = read_text(path, FileKind.JSON, root=root)
    try:
        return loads_json(text, path)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); repair the file",
                             path) from None


# ------------------------------------------------------------------------ YAML
def _no_alias_loader() -> type:
    import yaml

    # PyYAML ships no type annotations: yaml.SafeLoader is Any, which mypy --strict refuses
    # as a base (misc)
    class NoAliasSafeLoader(yaml.SafeLoader):  # type: ignore[misc]
        """SafeLoader that refuses aliases (``*name``): no billion-laughs expansion."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.YAMLError(
                    f"uses the YAML alias *{event.anchor} (line {event.start_mark.line + 1}); "
                    "aliases are not accepted, write the values out"
                )
            return super().compose_node(parent, index)

    return NoAliasSafeLoader


def loads_yaml(text: str, path: str | Path | None) -> Any:
    """``yaml.safe_load`` without aliases; any YAML error becomes one line.

    Raises
    ------
    InputFileError
        Not valid YAML, or uses an alias.
    LimitError
        Nested too deeply for the parser.
    """
    import yaml

    try:
        return yaml.load(text, Loader=_no_alias_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"not valid YAML ({first}); repair the file", path) from None
    except RecursionError:
        raise LimitError("YAML is nested too deeply; this is not a file we wrote", path) from None


# --------------------------------------------------------------------- inflate
def inflate_capped(data: bytes, limit: int, path: str | Path | None, *, what: str = "Deflated data",
                   wbits: int = -15) -> bytes:
    """Inflate ``data``, refusing output longer than ``limit`` bytes (a deflate bomb).

    Parameters
    ----------
    data : the compressed bytes
    limit : most output bytes accepted (what the header implies, plus slack)
    wbits : zlib window bits (-15 raw deflate as in DICOM, 31 gzip)

    Raises
    ------
    LimitError
        More output than ``limit``.
    InputFileError
        Corrupt or truncated stream.
    """
    import zlib

    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InputFileError(f"{what} is corrupt ({exc}); copy the file again from its source", path) from None
    if len(out) > limit:
        raise LimitError(f"{what} inflates to more than {limit:,} bytes, more than its header implies "
                         "(a deflate bomb?)", path)
    return out


def gzip_size_at_most(fh: Any, limit: int, path: str | Path | None, *, what: str = "gzip data") -> int:
    """Stream-inflate a gzip stream from ``fh``, discarding output; refuse past ``limit`` bytes.

    Returns the inflated size (at most ``limit``). Memory stays at a few MB whatever the
    stream holds. Concatenated gzip members are followed.

    Raises
    ------
    LimitError
        The stream inflates to more than ``limit`` bytes.
    InputFileError
        Corrupt stream.
    """
    import zlib

    d = zlib.decompressobj(31)
    total = 0
    pending = b""
    while True:
        chunk = pending or fh.read(1 << 20)
        pending = b""
        if not chunk:
            break
        try:
            out = d.decompress(chunk, 1 << 22)
            total += len(out)
            while d.unconsumed_tail and total <= limit and not d.eof:
                out = d.decompress(d.unconsumed_tail, 1 << 22)
                total += len(out)
                if not out:
                    break
        except zlib.error as exc:
            raise InputFileError(f"{what} is corrupt ({exc})", path) from None
        if total > limit:
            raise LimitError(f"{what} inflates to more than {limit:,} bytes, more than its header implies "
                             "(a gzip bomb?)", path)
        if d.eof:
            pending = d.unused_data
            if not pending.strip(b"\x00\r\n\t "):
                break
            d = zlib.decompressobj(31)
    return total
