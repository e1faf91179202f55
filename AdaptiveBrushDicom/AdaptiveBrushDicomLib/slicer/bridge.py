"""Pure logic behind the two Slicer files (``AdaptiveBrushDicom.py`` and
``DICOMLabelMapSegPlugin.py``).

Everything the Slicer glue has to *decide* lives here, on plain Python values and numpy
arrays, so it is tested without Slicer. This module never imports slicer, vtk, qt or ctk.

Coordinate conventions (see :mod:`.geometry`)
---------------------------------------------
* Slicer world coordinates are **RAS**; DICOM / ITK / :class:`~.geometry.Grid` use **LPS**;
  ``RAS = diag(-1, -1, 1) @ LPS``.
* Slicer's ``vtkMRMLVolumeNode.GetIJKToRASMatrix`` maps homogeneous ``(i, j, k, 1)`` to RAS.
* ``slicer.util.arrayFromVolume`` returns arrays indexed ``[k, j, i]`` (reversed VTK
  dimensions), which is also our array order, so no transpose is ever needed.

Contents
--------
(plugin decisions are in :mod:`.plugin_rules`, pip dependencies in :mod:`.dependencies`,
names in :mod:`.naming`, the CrossSegmentationExplorer hand-off in :mod:`.cse`)

* geometry: :func:`grid_from_ijk_to_ras`, :func:`ijk_to_ras_from_grid`, :func:`conform_array`
* segment metadata: :class:`SlicerSegmentRecord`, :func:`segment_to_record`,
  :func:`segment_from_record`
* labelmap -> segmentation node: :func:`plan_labelmap_import`
* segmentation node -> labelmap: :class:`OverlapChecker`, :func:`labelmap_from_export`
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from AdaptiveBrushDicomLib.errors import OverlapError, UserError
from AdaptiveBrushDicomLib.core.geometry import Grid, GeometryError
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Segment

# --------------------------------------------------------------------------------------
# Slicer names
# --------------------------------------------------------------------------------------

#: Slicer segment tag names (vtkSegment::GetTerminologyEntryTagName() is "TerminologyEntry";
#: "Description" and "DICOM.SegmentAlgorithm*" are the tags Slicer's dcmqi plugin uses).
TAG_TERMINOLOGY = "TerminologyEntry"
TAG_DESCRIPTION = "Description"
TAG_ALGORITHM_TYPE = "DICOM.SegmentAlgorithmType"
TAG_ALGORITHM_NAME = "DICOM.SegmentAlgorithmName"
TAG_ALGORITHM_VERSION = "AdaptiveBrushDicom.AlgorithmVersion"
TAG_ALGORITHM_PARAMETERS = "AdaptiveBrushDicom.AlgorithmParameters"
#: Original label value of a segment, so labels survive Slicer (which renumbers on export).
TAG_LABEL_VALUE = "AdaptiveBrushDicom.LabelValue"
_KNOWN_TAGS = {
    TAG_TERMINOLOGY,
    TAG_DESCRIPTION,
    TAG_ALGORITHM_TYPE,
    TAG_ALGORITHM_NAME,
    TAG_ALGORITHM_VERSION,
    TAG_ALGORITHM_PARAMETERS,
    TAG_LABEL_VALUE,
}

#: Node attribute Slicer uses for the SOP Instance UIDs of a loaded DICOM object.
ATTR_INSTANCE_UIDS = "DICOM.instanceUIDs"


# --------------------------------------------------------------------------------------
# Geometry: Slicer IJKToRAS <-> Grid (LPS)
# --------------------------------------------------------------------------------------


def grid_from_ijk_to_ras(ijk_to_ras: np.ndarray, array_shape_kji: Sequence[int]) -> Grid:
    """Grid (LPS) of a Slicer volume.

    Parameters
    ----------
    ijk_to_ras : (4, 4) array
        ``vtkMRMLVolumeNode.GetIJKToRASMatrix`` as numpy (``slicer.util.arrayFromVTKMatrix``);
        maps homogeneous (i, j, k, 1) to RAS mm.
    array_shape_kji : (nk, nj, ni)
        Shape of ``slicer.util.arrayFromVolume(node)`` (k, j, i order).
    """
    m = np.asarray(ijk_to_ras, dtype=float)
    if m.shape != (4, 4):
        raise GeometryError(f"IJKToRAS must be a 4x4 matrix, got shape {m.shape}")
    shape = tuple(int(v) for v in array_shape_kji)
    if len(shape) != 3:
        raise GeometryError(f"volume array must be 3D (k, j, i), got shape {shape}")
    return Grid.from_ijk_to_ras(m, shape)


def ijk_to_ras_from_grid(grid: Grid) -> np.ndarray:
    """4x4 IJKToRAS matrix for ``slicer.util.addVolumeFromArray`` / ``SetIJKToRASMatrix``."""
    return np.array(grid.ijk_to_ras, dtype=float)


def conform_array(array: np.ndarray, source: Grid, target: Grid, *, what: str = "segmentation") -> np.ndarray:
    """Move a (k, j, i) [or (layer, k, j, i)] label array from ``source`` onto ``target``
    without interpolation (e.g. a SEG decoded on the DICOM series' slice order onto a Slicer
    volume whose slice order was reversed, or a cropped extent onto the full grid).

    Thin wrapper over :func:`.align.align_to_grid` (exact re-indexing only): raises
    :class:`~.errors.ReferenceMismatchError` when resampling would be needed or labelled
    voxels would be cut off.
    """
    from AdaptiveBrushDicomLib.core.align import align_to_grid

    return align_to_grid(np.asarray(array), source, target, what=what)


def _slice_stack_match(volume: Grid, series: Grid) -> bool | None:
    """Whether the regular ``volume`` grid is how Slicer loaded the irregularly spaced
    ``series``: same shape and in-plane geometry, first (or, reversed, last) slice at the
    series' first slice, k along the series normal. Returns False for "same order", True for
    "reversed", None for "no"."""
    if tuple(volume.shape_kji) != tuple(series.shape_kji):
        return None
    if not (np.allclose(volume.spacing_ijk[:2], series.spacing_ijk[:2], atol=1e-3)
            and np.allclose(volume.direction[:, :2], series.direction[:, :2], atol=1e-3)):
        return None
    vol_k = np.asarray(volume.direction[:, 2]) @ np.asarray(series.direction[:, 2])
    if abs(abs(vol_k) - 1.0) > 1e-3:
        return None
    first = np.asarray(series.slice_origins())
    vol_first = np.asarray(volume.origin)
    if vol_k > 0 and np.allclose(vol_first, first[0], atol=1e-2):
        return False
    if vol_k < 0 and np.allclose(vol_first, first[-1], atol=1e-2):
        return True
    return None


def to_series_slices(labelmap: LabelMap, series: Grid) -> LabelMap:
    """A labelmap on the regular grid Slicer loads an irregularly spaced series onto (slice
    k = the k-th file of ``DICOM.instanceUIDs``; Slicer shows the true positions through an
    acquisition transform) -> the same voxels on the series' own slices (``series`` has
    ``slice_positions_mm``). Exact: slices are matched by index, nothing is resampled.

    Raises
    ------
    ReferenceMismatchError
        ``labelmap.grid`` is not that stand-in grid of ``series``.
    """
    from AdaptiveBrushDicomLib.errors import ReferenceMismatchError

    reverse = _slice_stack_match(labelmap.grid, series)
    if reverse is None:
        raise ReferenceMismatchError(
            f"the segmentation's grid ({labelmap.grid.describe()}) is not the volume Slicer loaded for the "
            f"irregularly spaced series ({series.describe()})")
    array = labelmap.array[..., ::-1, :, :] if reverse else labelmap.array
    return LabelMap(np.ascontiguousarray(array), series, labelmap.segments)


def from_series_slices(labelmap: LabelMap, volume: Grid) -> LabelMap:
    """Inverse of :func:`to_series_slices`: a labelmap decoded on the irregular series'
    own slices (``read_seg(..., keep_irregular=True)``) -> the loaded volume's regular grid."""
    from AdaptiveBrushDicomLib.errors import ReferenceMismatchError

    reverse = _slice_stack_match(volume, labelmap.grid)
    if reverse is None:
        raise ReferenceMismatchError(
            f"the loaded volume ({volume.describe()}) is not Slicer's grid for the irregularly spaced "
            f"series ({labelmap.grid.describe()})")
    array = labelmap.array[..., ::-1, :, :] if reverse else labelmap.array
    return LabelMap(np.ascontiguousarray(array), volume, labelmap.segments)


# --------------------------------------------------------------------------------------
# Segment metadata: core Segment <-> what a vtkSegment holds
# --------------------------------------------------------------------------------------


@dataclass
class SlicerSegmentRecord:
    """The parts of a Slicer ``vtkSegment`` the glue reads or writes.

    Attributes
    ----------
    segment_id : str
        Segment ID in the segmentation (``GetSegmentIDs``).
    name : str
        ``vtkSegment.GetName``.
    color : (r, g, b) floats 0..1 or None
        ``vtkSegment.GetColor`` (Slicer colours are 0..1 floats, DICOM/core 0..255).
    tags : dict
        ``vtkSegment.SetTag(key, value)`` string tags: terminology, description, algorithm,
        original label value, plus the core segment's ``extra["tags"]``.
    remove_tags : list
        Tags to remove after creation (e.g. the default "Tissue" TerminologyEntry that
        Slicer puts on every new segment, when the core segment has no terminology).
    """

    segment_id: str
    name: str
    color: tuple[float, float, float] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    remove_tags: list[str] = field(default_factory=list)


def _terminology_module():
    """``terminology.py`` (written separately); imported lazily."""
    from AdaptiveBrushDicomLib.core import terminology  # noqa: PLC0415

    return terminology


def color_to_slicer(color: Sequence[int] | None) -> tuple[float, float, float] | None:
    """8-bit RGB -> Slicer 0..1 floats."""
    if color is None:
        return None
    return tuple(float(c) / 255.0 for c in color)  # type: ignore[return-value]


def color_from_slicer(color: Sequence[float] | None) -> tuple[int, int, int] | None:
    """Slicer 0..1 floats -> 8-bit RGB (rounded, clipped)."""
    if color is None:
        return None
    return tuple(int(min(255, max(0, round(float(c) * 255.0)))) for c in color)  # type: ignore[return-value]


def segment_to_record(segment: Segment, segment_id: str | None = None) -> SlicerSegmentRecord:
    """Core :class:`Segment` -> Slicer name, colour and tags."""
    sid = segment_id or segment.segment_id or f"Segment_{segment.label}"
    tags: dict[str, str] = {}
    remove: list[str] = []
    if segment.terminology is not None:
        tags[TAG_TERMINOLOGY] = _terminology_module().format_terminology_entry(segment.terminology)
    else:
        remove.append(TAG_TERMINOLOGY)
    if segment.description:
        tags[TAG_DESCRIPTION] = segment.description
    if segment.algorithm_type is not None:
        tags[TAG_ALGORITHM_TYPE] = AlgorithmType(segment.algorithm_type).value
    if segment.algorithm_name:
        tags[TAG_ALGORITHM_NAME] = segment.algorithm_name
    if segment.algorithm_version:
        tags[TAG_ALGORITHM_VERSION] = segment.algorithm_version
    if segment.algorithm_parameters is not None:
        tags[TAG_ALGORITHM_PARAMETERS] = json.dumps(segment.algorithm_parameters, sort_keys=True)
    tags[TAG_LABEL_VALUE] = str(int(segment.label))
    # Slicer segment tags travel in extra["tags"] (the convention of volume_io / slicerio);
    # other extra keys are core-internal (e.g. a foreign TrackingID) and stay out of Slicer.
    for key, value in dict((segment.extra or {}).get("tags") or {}).items():
        if key in _KNOWN_TAGS:
            continue
        tags[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return SlicerSegmentRecord(sid, segment.name, color_to_slicer(segment.color), tags, remove)


def is_placeholder_terminology(terminology) -> bool:
    """True for Tissue / Tissue without modifier or region: what Slicer puts on every new
    segment (vtkSegment constructor) and what a SEG without terminology holds because the
    standard requires a category and type. It is treated as "no terminology": exported with
    the unset flag, loaded without a TerminologyEntry (so CrossSegmentationExplorer matches
    such segments by name instead of merging them into one "Tissue" row)."""
    from AdaptiveBrushDicomLib.core.segment import TISSUE

    def same(a, b) -> bool:
        return a is not None and (a.value, a.scheme) == (b.value, b.scheme)

    return (terminology is not None and same(terminology.category, TISSUE) and same(terminology.type, TISSUE)
            and terminology.type_modifier is None and terminology.anatomic_region is None)


def segment_from_record(record: SlicerSegmentRecord, label: int, layer: int = 0) -> Segment:
    """Slicer name, colour and tags -> core :class:`Segment` with ``label``."""
    tags = dict(record.tags)
    terminology = None
    entry = tags.get(TAG_TERMINOLOGY, "")
    if entry:
        try:
            terminology = _terminology_module().parse_terminology_entry(entry)
        except UserError as exc:
            raise UserError(f"segment {record.name!r}: {exc}; fix it in the Segment Editor's terminology dialog") from None
        if is_placeholder_terminology(terminology):
            terminology = None  # Slicer's default for every new segment, not the user's choice
    algorithm_type = AlgorithmType.SEMIAUTOMATIC
    raw_type = tags.get(TAG_ALGORITHM_TYPE, "").strip().upper()
    if raw_type:
        try:
            algorithm_type = AlgorithmType(raw_type)
        except ValueError:
            raise UserError(
                f"segment {record.name!r}: tag {TAG_ALGORITHM_TYPE} is {raw_type!r}; "
                "use MANUAL, SEMIAUTOMATIC or AUTOMATIC"
            ) from None
    parameters = None
    if tags.get(TAG_ALGORITHM_PARAMETERS):
        try:
            parameters = json.loads(tags[TAG_ALGORITHM_PARAMETERS])
        except json.JSONDecodeError:
            parameters = {"value": tags[TAG_ALGORITHM_PARAMETERS]}
    other_tags = {k: v for k, v in tags.items() if k not in _KNOWN_TAGS}
    extra: dict = {"tags": other_tags} if other_tags else {}
    return Segment(
        label=int(label),
        name=record.name,
        color=color_from_slicer(record.color),
        terminology=terminology,
        description=tags.get(TAG_DESCRIPTION) or None,
        algorithm_type=algorithm_type,
        algorithm_name=tags.get(TAG_ALGORITHM_NAME) or None,
        algorithm_version=tags.get(TAG_ALGORITHM_VERSION) or None,
        algorithm_parameters=parameters,
        segment_id=record.segment_id,
        layer=layer,
        extra=extra,
    )


# --------------------------------------------------------------------------------------
# LabelMap -> segmentation node (ImportLabelmapToSegmentationNode with segment IDs)
# --------------------------------------------------------------------------------------


@dataclass
class LayerImport:
    """One ``ImportLabelmapToSegmentationNode(labelNode, segNode, ids)`` call.

    ``array`` (k, j, i) holds value ``n + 1`` where segment ``segment_ids[n]`` is; entries
    ``""`` are skipped by Slicer. Every non-empty ID becomes a segment even if no voxel has
    its value, so empty segments are kept (vtkSlicerSegmentationsModuleLogic.cxx).
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
        return [r for layer in self.layers for r in layer.records]


def _smallest_label_dtype(max_value: int) -> np.dtype:
    # VTK "long long" is refused by slicer.util.updateVolumeFromArray
    if max_value < 2**8:
        return np.dtype(np.uint8)
    if max_value < 2**16:
        return np.dtype(np.uint16)
    if max_value < 2**31:
        return np.dtype(np.int32)
    raise UserError(f"label value {max_value} is too large for a Slicer labelmap (max 2**31-1)")


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


def plan_labelmap_import(labelmap: LabelMap, *, keep_values: bool = False, id_prefix: str | None = None) -> ImportPlan:
    """Plan the import of a core :class:`LabelMap` into a Slicer segmentation node.

    Label values are renumbered to ``1..N`` per layer (segment order), so the ID list is
    short even for labels like 300. With ``keep_values=True`` the voxel values stay as they
    are and the ID list has ``""`` for values without a segment (only sensible for small
    values). Either way every segment, including empty ones, gets an ID, and the original
    label is kept in the :data:`TAG_LABEL_VALUE` tag.

    Voxel values without a :class:`Segment` record become segments named ``Label <v>``
    (nothing is silently dropped).

    Segment IDs are ``<id_prefix>_<label>`` when ``id_prefix`` is given (a loaded SEG:
    :func:`.naming.segment_id_prefix`, so IDs are unique across the trial nodes of one
    scene), else the segment's own ID or ``Segment_<label>``.
    """
    grid = labelmap.grid
    segments = list(labelmap.segments)
    # labels present in the array but undescribed -> auto segments
    for layer_index in range(labelmap.n_layers):
        present = np.unique(labelmap.layer(layer_index))
        described = {s.label for s in segments if s.layer == layer_index}
        for v in present:
            v = int(v)
            if v != 0 and v not in described:
                segments.append(Segment(label=v, name=f"Label {v}", layer=layer_index))
    ids = _unique_ids(segments, id_prefix)
    layers: list[LayerImport] = []
    for layer_index in range(labelmap.n_layers):
        src = labelmap.layer(layer_index)
        members = [(s, sid) for s, sid in zip(segments, ids) if s.layer == layer_index]
        if not members:
            continue
        if keep_values:
            max_value = max(s.label for s, _ in members)
            id_list = [""] * max_value
            for s, sid in members:
                id_list[s.label - 1] = sid
            out = src.astype(_smallest_label_dtype(max_value), copy=True)
        else:
            id_list = [sid for _, sid in members]
            dtype = _smallest_label_dtype(len(members))
            out = np.zeros(src.shape, dtype=dtype)
            for n, (s, _) in enumerate(members, start=1):
                out[src == s.label] = n
        records = [segment_to_record(s, sid) for s, sid in members]
        layers.append(LayerImport(out, id_list, records))
    return ImportPlan(grid, ijk_to_ras_from_grid(grid), layers)


# --------------------------------------------------------------------------------------
# Segmentation node -> LabelMap (overlap check, then ExportSegmentsToLabelmapNode)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlap:
    first: str
    second: str
    voxels: int


class OverlapChecker:
    """Accumulates per-segment masks (``arrayFromSegmentBinaryLabelmap``, all in the
    reference volume's (k, j, i) grid) and reports shared voxels.

    Memory: one int32 array of the grid, not one mask per segment. A voxel shared by three
    segments is reported against the first segment that claimed it.
    """

    def __init__(self) -> None:
        self._owner: np.ndarray | None = None
        self._names: list[str] = []
        self._counts: dict[tuple[int, int], int] = {}
        self.voxel_counts: dict[str, int] = {}

    def add(self, name: str, mask: np.ndarray) -> None:
        m = np.asarray(mask) != 0
        if self._owner is None:
            self._owner = np.zeros(m.shape, dtype=np.int32)
        elif m.shape != self._owner.shape:
            raise GeometryError(f"segment {name!r}: mask shape {m.shape} differs from {self._owner.shape}")
        index = len(self._names) + 1
        self._names.append(name)
        self.voxel_counts[name] = int(m.sum())
        owners = self._owner[m]
        taken = owners[owners != 0]
        if taken.size:
            for other, count in zip(*np.unique(taken, return_counts=True)):
                self._counts[(int(other), index)] = int(count)
        free = m & (self._owner == 0)
        self._owner[free] = index

    @property
    def overlaps(self) -> list[Overlap]:
        return [Overlap(self._names[a - 1], self._names[b - 1], c) for (a, b), c in sorted(self._counts.items())]

    def message(self) -> str:
        parts = [f"{o.first!r} and {o.second!r} share {o.voxels} voxels" for o in self.overlaps]
        return (
            "segments overlap, so they cannot be stored as one LABELMAP: "
            + "; ".join(parts)
            + ". Remove the overlap (Segment Editor: Logical operators / masking) or export as BINARY SEG."
        )

    def raise_if_overlap(self) -> None:
        if self._counts:
            raise OverlapError(self.message())


def export_labels(records: Sequence[SlicerSegmentRecord]) -> list[int]:
    """Label value for each exported segment: its :data:`TAG_LABEL_VALUE` when all such tags
    are valid and distinct, else ``n + 1`` (what ``ExportSegmentsToLabelmapNode`` writes)."""
    wanted: list[int | None] = []
    for r in records:
        raw = r.tags.get(TAG_LABEL_VALUE, "")
        wanted.append(int(raw) if re.fullmatch(r"\s*\d+\s*", raw or "") and int(raw) > 0 else None)
    if all(w is not None for w in wanted) and len(set(wanted)) == len(wanted):
        return [int(w) for w in wanted]  # type: ignore[arg-type]
    return list(range(1, len(records) + 1))


def labelmap_from_export(
    exported: np.ndarray,
    ijk_to_ras: np.ndarray,
    records: Sequence[SlicerSegmentRecord],
) -> LabelMap:
    """Core :class:`LabelMap` from ``ExportSegmentsToLabelmapNode`` output.

    Parameters
    ----------
    exported : (k, j, i) int array
        ``arrayFromVolume`` of the exported labelmap node: segment ``records[n]`` has value
        ``n + 1`` (no colour table given), in the reference volume's grid.
    ijk_to_ras : (4, 4)
        IJKToRAS of the exported labelmap node (= reference volume).
    records : segment metadata in export order.
    """
    grid = grid_from_ijk_to_ras(ijk_to_ras, exported.shape)
    labels = export_labels(records)
    lut_dtype = np.int32 if max(labels, default=0) >= 2**15 else np.int16
    present = int(exported.max()) if exported.size else 0
    if present > len(records):
        raise UserError(f"exported labelmap has value {present} but only {len(records)} segments were exported")
    lut = np.zeros(len(records) + 1, dtype=lut_dtype)
    lut[1:] = labels
    array = lut[np.asarray(exported, dtype=np.int64)]
    segments = [segment_from_record(r, label) for r, label in zip(records, labels)]
    return LabelMap(array, grid, segments)


#: Segment tags read back from Slicer on export (vtkSegment::GetTags takes a std::map and is
#: not available from Python, so tags are read by name).
TAGS_TO_READ: tuple[str, ...] = tuple(sorted(_KNOWN_TAGS)) + ("Segmentation.Status",)


def split_uids(value: str | None) -> list[str]:
    """Space separated UID list (Slicer node attribute / SH UID) -> list."""
    return [u for u in (value or "").split() if u]


def order_series_files(files_by_uid: Mapping[str, str], uids_in_k_order: Sequence[str]) -> list[str]:
    """Files of a loaded volume in its k order (``DICOM.instanceUIDs`` order).

    Raises a :class:`UserError` naming the first UID the database does not know.
    """
    out = []
    for uid in uids_in_k_order:
        path = files_by_uid.get(uid) or ""
        if not path:
            raise UserError(f"instance {uid} of the reference volume is not in the DICOM database; re-import the series")
        out.append(path)
    return out
