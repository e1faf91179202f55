"""Volumes and Slicer ``.seg.nrrd`` files in and out.

Images are read with SimpleITK (any format it reads, or a DICOM folder), segmentations
with slicerio (``.seg.nrrd``, including multi-layer files with overlapping segments) or
SimpleITK (plain label images). Everything returned is in (k, j, i) order with an LPS
:class:`~.geometry.Grid`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputFileError, UserError
from .geometry import Grid
from .labelmap import LabelMap, LabelMapError
from .segment import Segment

#: Keys of a slicerio segment dict that map to named Segment fields.
_SLICERIO_KNOWN = {"id", "name", "color", "labelValue", "layer", "terminology", "tags"}


def _require_exists(path: Path) -> None:
    if not path.exists():
        raise InputFileError("no such file or folder; check the path", path)
    if not os.access(path, os.R_OK):
        raise InputFileError("not readable (permission denied)", path)


def read_volume(path: str | Path) -> tuple[np.ndarray, Grid]:
    """Read a 3D image (any SimpleITK format, or a folder with one DICOM series).

    Returns
    -------
    array : numpy.ndarray, (k, j, i)
    grid : Grid in LPS
    """
    import SimpleITK as sitk

    path = Path(path)
    _require_exists(path)
    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            ids = reader.GetGDCMSeriesIDs(str(path))
            if not ids:
                raise InputFileError("folder contains no DICOM image series", path)
            if len(ids) > 1:
                raise InputFileError(
                    f"folder contains {len(ids)} DICOM series ({', '.join(ids)}); give a folder with one", path
                )
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path), ids[0]))
            image = reader.Execute()
        else:
            image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputFileError(f"cannot read image: {str(exc).strip().splitlines()[-1]}", path) from None
    if image.GetDimension() != 3:
        raise InputFileError(f"expected a 3D image, got {image.GetDimension()}D", path)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputFileError("expected a scalar image (one component per voxel)", path)
    return sitk.GetArrayFromImage(image), Grid.from_sitk(image)


def is_seg_nrrd(path: str | Path) -> bool:
    """True if ``path`` is an NRRD with Slicer segmentation fields in its header."""
    path = Path(path)
    if path.suffix.lower() not in (".nrrd", ".nhdr"):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return False
    return b"Segment0_" in head or b"Segmentation_" in head


def segment_from_slicerio(item: dict[str, Any]) -> Segment:
    """Convert one slicerio segment dict to a :class:`Segment`."""
    color = item.get("color")
    rgb = None if color is None else tuple(int(round(float(c) * 255)) for c in color)
    terminology = None
    if item.get("terminology"):
        from .terminology import terminology_from_slicerio

        terminology = terminology_from_slicerio(item["terminology"])
    extra = {k: v for k, v in item.items() if k not in _SLICERIO_KNOWN}
    if item.get("tags"):
        extra["tags"] = dict(item["tags"])
    return Segment(
        label=int(item.get("labelValue", 1)),
        name=str(item.get("name") or item.get("id") or f"Segment_{item.get('labelValue', 1)}"),
        color=rgb,  # type: ignore[arg-type]
        terminology=terminology,
        segment_id=item.get("id"),
        layer=int(item.get("layer", 0)),
        extra=extra,
    )


def segment_to_slicerio(segment: Segment, shape_ijk: tuple[int, int, int] | None = None) -> dict[str, Any]:
    """Convert a :class:`Segment` to a slicerio segment dict (colour as floats 0..1)."""
    out: dict[str, Any] = {
        "id": segment.segment_id or f"Segment_{segment.label}",
        "name": segment.name,
        "labelValue": int(segment.label),
        "layer": int(segment.layer),
    }
    if segment.color is not None:
        out["color"] = [round(c / 255.0, 6) for c in segment.color]
    if segment.terminology is not None:
        from .terminology import terminology_to_slicerio

        out["terminology"] = terminology_to_slicerio(segment.terminology)
    tags = dict(segment.extra.get("tags", {}))
    if segment.description:
        tags["Description"] = segment.description
    if segment.algorithm_name:
        tags["DICOM.SegmentAlgorithmName"] = segment.algorithm_name
    tags["DICOM.SegmentAlgorithmType"] = segment.algorithm_type.value
    if segment.algorithm_parameters is not None:
        import json

        tags["AdaptiveBrush.AlgorithmParameters"] = json.dumps(
            segment.algorithm_parameters, sort_keys=True, separators=(",", ":")
        )
    if segment.algorithm_version:
        tags["AdaptiveBrush.AlgorithmVersion"] = segment.algorithm_version
    # a '|' or ':' inside a tag value would corrupt the Slicer header field
    out["tags"] = {k: str(v).replace("|", "/") for k, v in tags.items()}
    for key, value in segment.extra.items():
        if key in ("tags",):
            continue
        out[key] = value
    if shape_ijk is not None and "extent" not in out:
        out["extent"] = [0, shape_ijk[0] - 1, 0, shape_ijk[1] - 1, 0, shape_ijk[2] - 1]
    return out


def _segment_metadata_from_tags(segment: Segment) -> Segment:
    """Fill description/algorithm fields from tags written by :func:`segment_to_slicerio`."""
    import json

    from .segment import AlgorithmType

    tags = segment.extra.get("tags", {})
    if not tags:
        return segment
    tags = dict(tags)
    if "Description" in tags:
        segment.description = tags.pop("Description")
    if "DICOM.SegmentAlgorithmName" in tags:
        segment.algorithm_name = tags.pop("DICOM.SegmentAlgorithmName")
    if "DICOM.SegmentAlgorithmType" in tags:
        try:
            segment.algorithm_type = AlgorithmType(tags.pop("DICOM.SegmentAlgorithmType"))
        except ValueError:
            pass
    if "AdaptiveBrush.AlgorithmParameters" in tags:
        try:
            segment.algorithm_parameters = json.loads(tags.pop("AdaptiveBrush.AlgorithmParameters"))
        except ValueError:
            pass
    if "AdaptiveBrush.AlgorithmVersion" in tags:
        segment.algorithm_version = tags.pop("AdaptiveBrush.AlgorithmVersion")
    if tags:
        segment.extra["tags"] = tags
    else:
        segment.extra.pop("tags", None)
    return segment


def read_seg_nrrd(path: str | Path) -> LabelMap:
    """Read a Slicer ``.seg.nrrd`` (one or several layers) into a :class:`LabelMap`."""
    import slicerio

    path = Path(path)
    _require_exists(path)
    try:
        seg = slicerio.read_segmentation(str(path))
    except Exception as exc:  # slicerio/pynrrd raise many types for broken files
        raise InputFileError(f"cannot read segmentation: {exc}", path) from None
    voxels = np.asarray(seg["voxels"])
    # slicerio gives (i, j, k) or (layer, i, j, k); we use (k, j, i) / (layer, k, j, i)
    if voxels.ndim == 3:
        array = np.ascontiguousarray(voxels.transpose(2, 1, 0))
    elif voxels.ndim == 4:
        array = np.ascontiguousarray(voxels.transpose(0, 3, 2, 1))
    else:
        raise InputFileError(f"segmentation must be 3D or 4D (layers), got {voxels.ndim}D", path)
    grid = Grid.from_ijk_to_lps(np.asarray(seg["ijkToLPS"]), array.shape[-3:])
    segments = [_segment_metadata_from_tags(segment_from_slicerio(s)) for s in seg.get("segments", [])]
    try:
        lm = LabelMap(array, grid, segments)
    except LabelMapError as exc:
        raise InputFileError(str(exc), path) from None
    _check_labels(lm, path)
    return lm


def read_label_image(path: str | Path) -> LabelMap:
    """Read a plain label image (NRRD, NIfTI, MHA, ...); one segment per non-zero value."""
    path = Path(path)
    array, grid = read_volume(path)
    if not np.issubdtype(array.dtype, np.integer):
        if np.any(np.mod(array, 1) != 0):
            raise InputFileError(
                f"label image has non-integer values (dtype {array.dtype}); give an integer label image", path
            )
        array = array.astype(np.int64)
    values = np.unique(array)
    segments = [Segment(label=int(v), name=f"Label_{int(v)}") for v in values if v != 0]
    lm = LabelMap(array, grid, segments)
    _check_labels(lm, path)
    return lm


def _check_labels(lm: LabelMap, path: Path) -> None:
    arr = lm.array
    if arr.size and arr.min() < 0:
        raise InputFileError(f"negative label value {int(arr.min())}; labels must be >= 0", path)


def read_segmentation(path: str | Path) -> LabelMap:
    """Read a ``.seg.nrrd`` (via slicerio) or a plain label image."""
    path = Path(path)
    _require_exists(path)
    if path.is_dir():
        raise InputFileError("expected a segmentation file, got a folder", path)
    if is_seg_nrrd(path):
        return read_seg_nrrd(path)
    return read_label_image(path)


def write_seg_nrrd(labelmap: LabelMap, path: str | Path) -> Path:
    """Write a Slicer-loadable ``.seg.nrrd`` (gzip) with names, colours, label values,
    terminology and algorithm tags. Written to a temporary name, then renamed."""
    import slicerio

    path = Path(path)
    arr = labelmap.array
    if arr.ndim == 3:
        voxels = arr.transpose(2, 1, 0)
    else:
        voxels = arr.transpose(0, 3, 2, 1)
    max_label = int(arr.max()) if arr.size else 0
    dtype = np.uint8 if max_label < 256 else (np.uint16 if max_label < 65536 else np.uint32)
    shape_ijk = labelmap.grid.size_ijk
    seg = {
        "voxels": voxels.astype(dtype, copy=False),
        "ijkToLPS": labelmap.grid.ijk_to_lps,
        "encoding": "gzip",
        "masterRepresentation": "Binary labelmap",
        "containedRepresentationNames": ["Binary labelmap"],
        "referenceImageExtentOffset": [0, 0, 0],
        "segments": [segment_to_slicerio(s, shape_ijk) for s in labelmap.segments],
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        slicerio.write_segmentation(str(tmp), seg)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write: {exc.strerror or exc}", path) from None
    return path
