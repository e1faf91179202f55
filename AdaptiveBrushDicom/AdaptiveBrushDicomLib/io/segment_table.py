"""Segment tables (CSV or TSV with the header ``label,name,color,terminology``) -> segments.

:func:`read_segment_table` gives ``list[Segment]``; :func:`apply_segment_table` puts
names, colours and terminology on a labelmap's segments by label value. Every error names
the file, the line and the column.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from AdaptiveBrushDicomLib.core.colors import parse_color
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.core.terminology import parse_terminology_text
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.io.segment_metadata import MetadataError, check_matched, merge_segments

_TABLE_COLUMNS = ("label", "name", "color", "terminology")


def read_segment_table(path: str | Path) -> list[Segment]:
    """Read a CSV / TSV segment table.

    The first line is a header naming at least ``label`` and ``name``; ``color`` and
    ``terminology`` are optional columns (any order, case-insensitive). The delimiter is
    a tab if the header contains one, else a comma (fields with commas are quoted, e.g.
    ``"221,130,101"``). ``color`` is ``#rrggbb`` or ``r,g,b``; ``terminology`` is a Slicer
    TerminologyEntry string or a short code (``SCT^52988006^Lesion``, see
    :func:`~.terminology.parse_terminology_text`). Empty cells mean "not given"; empty
    lines and lines starting with ``#`` are skipped.

    Raises
    ------
    MetadataError
        Naming the file, the line number and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise MetadataError("no such file; check the path", path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MetadataError(f"cannot read ({exc})", path) from None
    lines = text.splitlines()
    header_index = next((i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")), None)
    if header_index is None:
        raise MetadataError("empty segment table; expected a header 'label,name,color,terminology'", path)
    delimiter = "\t" if "\t" in lines[header_index] else ","
    reader = csv.reader(io.StringIO("\n".join(lines[header_index:])), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    unknown = [h for h in header if h not in _TABLE_COLUMNS]
    if unknown or "label" not in header or "name" not in header or len(set(header)) != len(header):
        raise MetadataError(
            f"line {header_index + 1}: header must name columns from {', '.join(_TABLE_COLUMNS)} "
            f"(label and name required, each once), got {', '.join(header)}",
            path,
        )
    segments: list[Segment] = []
    seen: dict[int, int] = {}
    for offset, row in enumerate(reader, start=header_index + 2):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) > len(header):
            raise MetadataError(
                f"line {offset}: {len(row)} fields but the header has {len(header)}; quote values that contain "
                f"'{delimiter}' (e.g. \"221,130,101\")",
                path,
            )
        cells = dict(zip(header, [c.strip() for c in row] + [""] * (len(header) - len(row))))
        segments.append(_segment_from_row(cells, offset, path, seen))
    if not segments:
        raise MetadataError("segment table has a header but no rows", path)
    return segments


def _segment_from_row(cells: dict[str, str], offset: int, path: Path, seen: dict[int, int]) -> Segment:
    """The segment of one table row (``cells``: column -> stripped text; ``offset``: line number;
    ``seen``: label -> line of the rows before, updated).

    Raises
    ------
    MetadataError
        The label is not a positive integer or already given, the name is empty, or the
        colour or terminology cannot be read.
    """
    try:
        label = int(cells["label"])
    except ValueError:
        label = 0
    if label < 1:
        raise MetadataError(f"line {offset}, column 'label': {cells['label']!r} is not a positive integer", path)
    if label in seen:
        raise MetadataError(f"line {offset}, column 'label': label {label} already given on line {seen[label]}", path)
    seen[label] = offset
    name = cells["name"]
    if not name:
        raise MetadataError(f"line {offset}, column 'name': empty", path)
    color = None
    if cells.get("color"):
        try:
            color = parse_color(cells["color"], f"line {offset}, column 'color'")
        except UserError as exc:
            raise MetadataError(str(exc), path) from None
    terminology = None
    if cells.get("terminology"):
        try:
            terminology = parse_terminology_text(cells["terminology"])
        except UserError as exc:
            raise MetadataError(f"line {offset}, column 'terminology': {exc}", path) from None
    return Segment(label=label, name=name, color=color, terminology=terminology)


def apply_segment_table(
    labelmap: LabelMap,
    path: str | Path,
    *,
    allow_unmatched: bool = False,
    warnings: list[str] | None = None,
) -> LabelMap:
    """Describe ``labelmap``'s segments with a segment table (matched by label value;
    unmatched labels as in :func:`~.segment_metadata.check_matched`).

    Raises
    ------
    MetadataError
        The table is malformed, or does not match the segmentation (without ``allow_unmatched``).
    """
    described = read_segment_table(path)
    check_matched(labelmap, described, path, allow_unmatched=allow_unmatched, warnings=warnings)
    segments = merge_segments(labelmap.segments, described, keep_layers=False, fields=("name", "color", "terminology"))
    return LabelMap(labelmap.array, labelmap.grid, segments)
