"""Deterministic benchmark workloads: reference DICOM series, labelmaps, dcmqi inputs.

Everything is generated from fixed seeds, so two runs of ``make bench`` measure the same
bytes. Files are cached in a work folder (``--work``), keyed by the workload's name.

* blobs: non-overlapping ellipsoids, one per segment, computed inside each blob's
  bounding box (cost ~ blob volume, not volume x segments); slices 0, 1 and the last
  are left empty so the writers' "omit empty frames" paths are exercised.
* reference image: MR-like (W1, scaling) or CT-like (W2) int16 noise + a smooth body.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "AdaptiveBrushDicom"))
sys.path.insert(0, str(REPO / "testkit"))

from AdaptiveBrushDicomLib.core.geometry import Grid  # noqa: E402
from AdaptiveBrushDicomLib.core.labelmap import LabelMap  # noqa: E402
from AdaptiveBrushDicomLib.core.segment import Code, Segment, Terminology  # noqa: E402


def blob_labels(shape: tuple[int, int, int], n_segments: int, seed: int = 0,
                empty_slices: tuple[int, ...] | None = None) -> np.ndarray:
    """Non-overlapping ellipsoid blobs with labels 1..n (uint8 if n < 256 else uint16)."""
    rng = np.random.default_rng(seed)
    nk, nj, ni = shape
    dtype = np.uint8 if n_segments < 256 else np.uint16
    labels = np.zeros(shape, dtype=dtype)
    size = np.array(shape, dtype=float)
    # keep total blob volume roughly constant as the count grows
    scale = min(1.0, (10.0 / max(n_segments, 1)) ** (1.0 / 3.0))
    for v in range(1, n_segments + 1):
        c = rng.uniform(0.15, 0.85, 3) * size
        r = (rng.uniform(0.05, 0.15, 3) * scale) * size + 1.0
        lo = np.maximum(np.floor(c - r).astype(int), 0)
        hi = np.minimum(np.ceil(c + r).astype(int) + 1, shape)
        k, j, i = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        inside = ((k - c[0]) / r[0]) ** 2 + ((j - c[1]) / r[1]) ** 2 + ((i - c[2]) / r[2]) ** 2 <= 1
        box = labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        box[inside & (box == 0)] = v
    if empty_slices is None:
        empty_slices = (0, 1, nk - 1) if nk > 3 else ()
    for s in empty_slices:
        labels[s] = 0
    return labels


_TYPES = [
    Code("10200004", "SCT", "Liver"), Code("12738006", "SCT", "Brain"), Code("78961009", "SCT", "Spleen"),
    Code("64033007", "SCT", "Kidney"), Code("80891009", "SCT", "Heart"), Code("39607008", "SCT", "Lung"),
    Code("15776009", "SCT", "Pancreas"), Code("272673000", "SCT", "Bone"), Code("71616004", "SCT", "Muscle"),
    Code("4147007", "SCT", "Mass"),
]
_TISSUE = Code("85756007", "SCT", "Tissue")


def segments_for(n: int, algorithm: str | None = "watershed", params: dict | None = None) -> list[Segment]:
    out = []
    for v in range(1, n + 1):
        t = _TYPES[(v - 1) % len(_TYPES)]
        out.append(Segment(
            label=v, name=f"{t.meaning} {v}", color=((37 * v) % 256, (91 * v) % 256, (53 * v + 80) % 256),
            terminology=Terminology(category=_TISSUE, type=t),
            algorithm_name=algorithm, algorithm_parameters=params,
            segment_id=f"Segment_{v}",
        ) if algorithm else Segment(label=v, name=f"{t.meaning} {v}", color=((37 * v) % 256, 80, 200),
                                    terminology=Terminology(category=_TISSUE, type=t)))
    return out


def dcmqi_metadata(segments: list[Segment], series_description: str = "Segmentation") -> dict:
    """dcmqi seg-schema JSON for a label image with these segments (one group: a labelmap)."""
    attrs = []
    for s in segments:
        t = s.terminology
        attrs.append({
            "labelID": int(s.label),
            "SegmentLabel": s.name,
            "SegmentDescription": s.name,
            "SegmentAlgorithmType": "SEMIAUTOMATIC",
            "SegmentAlgorithmName": "watershed",
            "SegmentedPropertyCategoryCodeSequence": {
                "CodeValue": t.category.value, "CodingSchemeDesignator": t.category.scheme,
                "CodeMeaning": t.category.meaning},
            "SegmentedPropertyTypeCodeSequence": {
                "CodeValue": t.type.value, "CodingSchemeDesignator": t.type.scheme, "CodeMeaning": t.type.meaning},
            "recommendedDisplayRGBValue": [int(c) for c in s.color],
        })
    return {"ContentCreatorName": "Bench^Mark", "ClinicalTrialSeriesID": "1", "ClinicalTrialTimePointID": "1",
            "SeriesDescription": series_description, "SeriesNumber": "300", "InstanceNumber": "1",
            "segmentAttributes": [attrs]}


@dataclass
class Workload:
    """One generated case on disk."""

    name: str
    folder: Path
    shape: tuple[int, int, int]
    n_segments: int

    @property
    def ref_dir(self) -> Path:
        return self.folder / "ref"

    @property
    def seg_nrrd(self) -> Path:
        return self.folder / "labels.seg.nrrd"

    @property
    def label_nrrd(self) -> Path:
        """Plain label image (what dcmqi reads)."""
        return self.folder / "labels.nrrd"

    @property
    def dcmqi_json(self) -> Path:
        return self.folder / "dcmqi-meta.json"

    @property
    def labels_npy(self) -> Path:
        return self.folder / "labels.npy"

    @property
    def voxels(self) -> int:
        return int(np.prod(self.shape))


def _grid(shape, ct: bool) -> Grid:
    spacing = (0.75, 0.75, 1.0) if ct else (0.9375, 0.9375, 1.4)
    origin = (-shape[2] * spacing[0] / 2, -shape[1] * spacing[1] / 2, -shape[0] * spacing[2] / 2)
    return Grid(shape, spacing, origin)


def _image(shape, ct: bool, seed: int) -> np.ndarray:
    """int16 image, written slice by slice to keep memory low."""
    rng = np.random.default_rng(seed)
    nk, nj, ni = shape
    j, i = np.ogrid[:nj, :ni]
    body = (((j - nj / 2) / (0.42 * nj)) ** 2 + ((i - ni / 2) / (0.45 * ni)) ** 2) <= 1
    out = np.empty(shape, dtype=np.int16)
    for k in range(nk):
        noise = rng.integers(-40, 40, size=(nj, ni), dtype=np.int16)
        base = np.where(body, 40 if ct else 600, -1000 if ct else 0).astype(np.int16)
        out[k] = base + noise
    return out


def build(work: Path, name: str, shape: tuple[int, int, int], n_segments: int, *, ct: bool = False,
          seed: int = 0, reference_from: Workload | None = None) -> Workload:
    """Create (or reuse) workload ``name`` under ``work``. ``reference_from`` shares a
    reference series (same geometry) instead of writing a new one."""
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    folder = work / name
    wl = Workload(name, folder, tuple(shape), n_segments)
    stamp = folder / ".complete"
    if stamp.exists():
        return wl
    folder.mkdir(parents=True, exist_ok=True)
    grid = _grid(shape, ct)
    if reference_from is not None:
        if wl.ref_dir.exists() or wl.ref_dir.is_symlink():
            wl.ref_dir.unlink()
        wl.ref_dir.symlink_to(reference_from.ref_dir.resolve(), target_is_directory=True)
    else:
        create_synthetic_series(_image(shape, ct, seed + 1000), grid, wl.ref_dir,
                                patient_id=f"AdaptiveBrush_bench_{name}", modality="CT" if ct else "MR",
                                study_description=f"bench {name}", series_description=f"bench {name} image",
                                force=True)
    labels = blob_labels(shape, n_segments, seed=seed)
    segs = segments_for(n_segments)
    np.save(wl.labels_npy, labels)
    write_seg_nrrd(LabelMap(labels, grid, segs), wl.seg_nrrd)
    write_label_nrrd(labels, grid, wl.label_nrrd)
    wl.dcmqi_json.write_text(json.dumps(dcmqi_metadata(segs)))
    stamp.write_text("ok\n")
    return wl


def write_label_nrrd(labels: np.ndarray, grid: Grid, path: Path) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(labels)
    grid.apply_to_sitk(img)
    sitk.WriteImage(img, str(path), useCompression=True)


def trial_labels(shape, n_segments: int, trial: int) -> np.ndarray:
    """A trial's segmentation: the same structures, each blob slightly different per trial."""
    return blob_labels(shape, n_segments, seed=10_000 + trial)
