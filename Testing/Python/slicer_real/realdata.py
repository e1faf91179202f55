"""DICOM test data for the real-Slicer suite, written by the core (series, SEGs) and by
highdicom directly, plus helpers to index and load them through Slicer's own code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from AdaptiveBrushDicomLib.core.geometry import Grid
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code, Segment, Terminology

LIVER = Terminology(category=Code("123037004", "SCT", "Anatomical Structure"), type=Code("10200004", "SCT", "Liver"))
TUMOUR = Terminology(category=Code("49755003", "SCT", "Morphologically Altered Structure"),
                     type=Code("108369006", "SCT", "Neoplasm"))
#: Structures of the comparison case (no terminology: CSE must match them by name)
STRUCTURES = ("liver", "tumour", "vessel")


@dataclass
class Case:
    root: Path
    grid: Grid
    image: np.ndarray
    series: object  # SyntheticSeries
    reference: object  # ReferenceSeries
    segs: dict[str, Path] = field(default_factory=dict)  # description -> SEG file
    labelmaps: dict[str, LabelMap] = field(default_factory=dict)

    def all_files(self):
        return [Path(p) for p in self.series.paths] + list(self.segs.values())


def series_uid(path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def make_case(root: Path, direction=None, *, study="run A") -> Case:
    """An MR series (left-handed slice stacking by default: Slicer reverses its slices on
    load), a gold standard and three multi-segment trials without terminology, one trial
    with terminology and an empty segment, label 300."""
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series

    root.mkdir(parents=True, exist_ok=True)
    if direction is None:
        direction = np.diag([1.0, 1.0, -1.0])
    grid = Grid((8, 20, 24), (0.9, 0.8, 2.5), (-20.0, 15.0, 40.0), direction)
    image = (np.arange(np.prod(grid.shape_kji)).reshape(grid.shape_kji) % 97).astype(np.int16)
    series = create_synthetic_series(image, grid, root / "mr", patient_id="ABD_REAL", study_description=study,
                                     series_description="T1")
    reference = ReferenceSeries.from_folder(root / "mr")
    case = Case(root, grid, image, series, reference)

    def labels(shift):
        a = np.zeros(grid.shape_kji, np.int16)
        a[1:5, 3 + shift:10 + shift, 4:12] = 1          # liver
        a[5, 11:15, 14 + shift:20] = 2                   # tumour
        a[2:7, 16:18, 2 + shift:5 + shift] = 3           # vessel
        return a

    colors = [(200, 100, 50), (10, 220, 40), (30, 30, 220)]
    for n, (desc, shift) in enumerate((("gold_standard", 0), ("trial_001_watershed", 1),
                                       ("trial_002_watershed", 0), ("trial_003_levelset", 2))):
        segments = [Segment(v, STRUCTURES[v - 1], colors[v - 1], None, algorithm_type=AlgorithmType.AUTOMATIC,
                            algorithm_name=desc.split("_")[-1]) for v in (1, 2, 3)]
        case.labelmaps[desc] = LabelMap(labels(shift), grid, segments)
        out = write_seg(case.labelmaps[desc], reference, root / f"{desc}.dcm", series_description=desc,
                        series_number=1000 + n)
        case.segs[desc] = Path(out.path)
    a = np.zeros(grid.shape_kji, np.int32)
    a[1:4, 2:6, 3:8] = 1
    a[6, 5:8, 6:10] = 300
    coded = [Segment(1, "liver", (200, 100, 50), LIVER, algorithm_type=AlgorithmType.AUTOMATIC,
                     algorithm_name="watershed", algorithm_parameters={"level": 3}),
             Segment(300, "tumour", (10, 220, 40), TUMOUR, algorithm_type=AlgorithmType.AUTOMATIC),
             Segment(7, "nothing yet", (1, 2, 3), LIVER, algorithm_type=AlgorithmType.MANUAL)]  # empty
    case.labelmaps["coded"] = LabelMap(a, grid, coded)
    case.segs["coded"] = Path(write_seg(case.labelmaps["coded"], reference, root / "coded.dcm",
                                        series_description="trial_004_coded", series_number=1004).path)
    return case


def write_irregular_series(root: Path) -> tuple[list[Path], Grid]:
    """An axial CT-like series whose slice gaps are 2.5 mm except one 5 mm gap (a missing
    slice): clinical data Slicer loads with an acquisition transform."""
    import pydicom

    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series

    grid = Grid((6, 16, 16), (1.0, 1.0, 2.5), (0.0, 0.0, 0.0), np.eye(3))
    image = (np.arange(np.prod(grid.shape_kji)).reshape(grid.shape_kji) % 50).astype(np.int16)
    series = create_synthetic_series(image, grid, root, patient_id="ABD_IRREGULAR", modality="CT",
                                     series_description="irregular CT")
    paths = [Path(p) for p in series.paths]
    for k, p in enumerate(paths):
        if k >= 3:
            ds = pydicom.dcmread(p)
            pos = [float(v) for v in ds.ImagePositionPatient]
            pos[2] += 2.5
            ds.ImagePositionPatient = pos
            ds.save_as(p)
    return paths, grid
