"""Plan of turning a core :class:`~.core.labelmap.LabelMap` into a Slicer segmentation node:
one ``ImportLabelmapToSegmentationNode(labelNode, segNode, ids)`` call per layer.

Plain Python and numpy; never imports slicer, vtk, qt or ctk. Arrays are (k, j, i) (or
(layer, k, j, i)); the IJKToRAS matrix maps to Slicer's RAS.

Cost per layer (a 256x256x100 trial, 10 segments: ~1-2 ms instead of ~75 ms with
``np.unique`` and one comparison pass per segment): the array's min and max (two vectorised
passes, done once) tell whether every voxel value is described; the label -> 1..N renumbering is nothing when the
labels already are 1..N in segment order (the usual case: our SEGs, most trials), else one
pass through a lookup table. ``np.unique`` (it hashes every voxel) is only the fallback for
negative or huge (>= 2**22) values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.slicer.segment_records import SlicerSegmentRecord, segment_to_record

#: Largest value for which a lookup table (bool/label array of max+1 entries) is used.
_LUT_LIMIT = 1 << 22


@dataclass
class LayerImport:
    """One ``ImportLabelmapToSegmentationNode(labelNode, segNode, ids)`` call.

    ``array`` (k, j, i) holds value ``n + 1`` where segment ``segment_ids[n]`` is; entries
    ``""`` are skipped by Slicer. Every non-empty ID becomes a segment even if no voxel has
    its value, so empty segments are kept (vtkSlicerSegmentationsModuleLogic.cxx). The
    array may be the labelmap's own array (no copy; ``slicer.util.addVolumeFromArray``
    deep-copies it): do not modify it.
    """

    array: np.ndarray
    segment_ids: list[str]
    records: list[SlicerSegmentRecord]


@dataclass
class ImportPlan:
    """Everything the glue does to turn a :class:`LabelMap` into a segmentation node."""

    grid: Grid
    ijk_to_ras: np.ndarray
    layers: list[LayerImport]

    @property
    def records(self) -> list[SlicerSegmentRecord]:
        """Segment records of all layers, in import order."""
        return [r for layer in self.layers for r in layer.records]


def smallest_label_dtype(max_value: int) -> np.dtype:
    """Smallest dtype Slicer's ``updateVolumeFromArray`` accepts for values 0..``max_value``
    (it refuses VTK "long long").

    Raises
    ------
    UserError
        ``max_value`` >= 2**31.
    """
    if max_value < 2**8:
        return np.dtype(np.uint8)
    if max_value < 2**16:
        return np.dtype(np.uint16)
    if max_value < 2**31:
        return np.dtype(np.int32)
    raise UserError(f"label value {max_value} is too large for a Slicer labelmap (max 2**31-1)")


def value_range(array: np.ndarray) -> tuple[int, int]:
    """(min, max) of ``array`` (two vectorised passes); (0, 0) when it is empty."""
    return (int(array.min()), int(array.max())) if array.size else (0, 0)


def values_present(array: np.ndarray, described: set[int], lo_hi: tuple[int, int] | None = None) -> list[int]:
    """Non-zero values of ``array`` that are not in ``described``, sorted.

    No pass beyond :func:`value_range` (given as ``lo_hi`` or computed) when the described
    labels cover 1..max; otherwise one pass through a lookup table; ``np.unique`` only for
    negative or huge values.
    """
    if array.size == 0:
        return []
    lo, hi = lo_hi or value_range(array)
    if lo >= 0 and all(v in described for v in range(1, hi + 1)):
        return []
    if lo >= 0 and hi < _LUT_LIMIT:
        seen = np.zeros(hi + 1, dtype=bool)
        seen[array.ravel()] = True
        present = np.flatnonzero(seen)
    else:
        present = np.unique(array)
    return sorted({int(v) for v in present if v != 0} - described)


def renumber(array: np.ndarray, labels: Sequence[int], lo_hi: tuple[int, int] | None = None) -> np.ndarray:
    """``array`` with value ``labels[n]`` -> ``n + 1`` and every other value -> 0, in the
    smallest dtype for ``len(labels)``. A later duplicate label wins. ``lo_hi`` is
    :func:`value_range` of ``array`` when the caller has it.

    No pass when ``labels`` is 1..N and every value of ``array`` is in 0..N (the array is
    returned as it is, or cast once); one lookup-table pass for values in 0..2**22; one
    comparison pass per label otherwise.

    Raises
    ------
    UserError
        More than 2**31-1 labels.
    """
    n = len(labels)
    dtype = smallest_label_dtype(n)
    if array.size == 0:
        return np.zeros(array.shape, dtype=dtype)
    lo, hi = lo_hi or value_range(array)
    if list(labels) == list(range(1, n + 1)) and lo >= 0 and hi <= n:
        return array if array.dtype == dtype else array.astype(dtype)
    if lo >= 0 and hi < _LUT_LIMIT:
        lut = np.zeros(hi + 1, dtype=dtype)
        for number, label in enumerate(labels, start=1):
            if 0 <= label <= hi:
                lut[label] = number
        return np.take(lut, array)
    out = np.zeros(array.shape, dtype=dtype)
    for number, label in enumerate(labels, start=1):
        out[array == label] = number
    return out


def _unique_ids(segments: Sequence[Segment], prefix: str | None = None) -> list[str]:
    used: set[str] = set()
    ids = []
    for s in segments:
        base = f"{prefix}_{s.label}" if prefix else (s.segment_id or f"Segment_{s.label}")
        sid, n = base, 1
        while sid in used:
            n += 1
            sid = f"{base}_{n}"
        used.add(sid)
        ids.append(sid)
    return ids


def _with_undescribed(labelmap: LabelMap, ranges: list[tuple[int, int]]) -> list[Segment]:
    """The labelmap's segments plus a ``Label <v>`` segment for every undescribed value
    (``ranges``: :func:`value_range` of each layer)."""
    segments = list(labelmap.segments)
    for layer_index in range(labelmap.n_layers):
        described = {s.label for s in segments if s.layer == layer_index}
        for v in values_present(labelmap.layer(layer_index), described, ranges[layer_index]):
            segments.append(Segment(label=v, name=f"Label {v}", layer=layer_index))
    return segments


def _keep_values_layer(src: np.ndarray, members: list[tuple[Segment, str]]) -> tuple[np.ndarray, list[str]]:
    """Voxel values unchanged; the ID list has ``""`` for values without a segment."""
    max_value = max(s.label for s, _ in members)
    id_list = [""] * max_value
    for s, sid in members:
        id_list[s.label - 1] = sid
    return src.astype(smallest_label_dtype(max_value), copy=True), id_list


def plan_labelmap_import(labelmap: LabelMap, *, keep_values: bool = False, id_prefix: str | None = None) -> ImportPlan:
    """Plan the import of a core :class:`LabelMap` into a Slicer segmentation node.

    Label values are renumbered to ``1..N`` per layer (segment order), so the ID list is
    short even for labels like 300. With ``keep_values=True`` the voxel values stay as they
    are and the ID list has ``""`` for values without a segment (only sensible for small
    values). Either way every segment, including empty ones, gets an ID, and the original
    label is kept in the :data:`~.segment_records.TAG_LABEL_VALUE` tag.

    Voxel values without a :class:`Segment` record become segments named ``Label <v>``
    (nothing is silently dropped).

    Segment IDs are ``<id_prefix>_<label>`` when ``id_prefix`` is given (a loaded SEG:
    :func:`.naming.segment_id_prefix`, so IDs are unique across the trial nodes of one
    scene), else the segment's own ID or ``Segment_<label>``.

    Raises
    ------
    UserError
        A label value too large for a Slicer labelmap (>= 2**31).
    """
    ranges = [value_range(labelmap.layer(i)) for i in range(labelmap.n_layers)]
    segments = _with_undescribed(labelmap, ranges)
    ids = _unique_ids(segments, id_prefix)
    layers: list[LayerImport] = []
    for layer_index in range(labelmap.n_layers):
        members = [(s, sid) for s, sid in zip(segments, ids) if s.layer == layer_index]
        if not members:
            continue
        src = labelmap.layer(layer_index)
        if keep_values:
            out, id_list = _keep_values_layer(src, members)
        else:
            out, id_list = renumber(src, [s.label for s, _ in members], ranges[layer_index]), [sid for _, sid in members]
        layers.append(LayerImport(out, id_list, [segment_to_record(s, sid) for s, sid in members]))
    return ImportPlan(labelmap.grid, np.array(labelmap.grid.ijk_to_ras, dtype=float), layers)
