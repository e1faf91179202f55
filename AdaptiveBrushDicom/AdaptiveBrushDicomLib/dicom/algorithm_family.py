"""The AlgorithmFamilyCodeSequence code (DICOM CID 7162) of an algorithm name.

The codes are those of DICOM PS3.16 CID 7162 "Segmentation Algorithm Families" (the
values pydicom's ``codes.cid7162`` holds), kept here as plain :class:`~.segment.Code`
values so that writing a SEG does not import pydicom's 0.1 s code dictionary.
"""

from __future__ import annotations

import re

from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code

__all__ = ["FAMILY_CODES", "algorithm_family"]

#: CID 7162 codes by pydicom's ``codes.cid7162`` attribute name.
FAMILY_CODES: dict[str, Code] = {
    "EdgeDetection": Code("123103", "DCM", "Edge Detection"),
    "NeighborhoodAnalysis": Code("123101", "DCM", "Neighborhood Analysis"),
    "MorphologicalOperations": Code("123104", "DCM", "Morphological Operations"),
    "HistogramAnalysis": Code("123105", "DCM", "Histogram Analysis"),
    "ClusterAnalysis": Code("123107", "DCM", "Cluster Analysis"),
    "ManualProcessing": Code("123109", "DCM", "Manual Processing"),
    "ArtificialIntelligence": Code("123110", "DCM", "Artificial Intelligence"),
    "DeformableModels": Code("123111", "DCM", "Deformable Models"),
}

#: (substrings of the normalised name, whole tokens, CID 7162 attribute), first match wins.
_FAMILY_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], str], ...] = (
    (("manual", "paint", "draw", "eras", "scissor"), (), "ManualProcessing"),
    (("level_set", "levelset", "geodesic", "snake", "active_contour", "deformable", "chan_vese"), (),
     "DeformableModels"),
    (("nnunet", "unet", "monai", "totalseg", "deep", "neural", "segment_anything", "medsam"),
     ("sam", "ai", "cnn", "dl"), "ArtificialIntelligence"),
    (("watershed", "morpholog", "dilat", "erosion", "erode"), ("opening", "closing"), "MorphologicalOperations"),
    (("threshold", "otsu", "histogram"), (), "HistogramAnalysis"),
    (("kmeans", "k_means", "cluster", "fuzzy_c"), ("gmm",), "ClusterAnalysis"),
    (("edge", "canny", "sobel", "gradient"), (), "EdgeDetection"),
    (("region_grow", "regiongrow", "connected", "flood", "grow", "random_walk", "graph_cut", "graphcut",
      "fast_march", "brush", "neighbo"), (), "NeighborhoodAnalysis"),
)


def algorithm_family(name: str | None, algorithm_type: AlgorithmType) -> Code:
    """AlgorithmFamilyCodeSequence code (DICOM CID 7162) for an algorithm name.

    Chosen by keywords in the name, lower-cased with runs of other characters turned into
    ``_`` (e.g. ``watershed`` -> Morphological Operations, ``level_set`` / ``geodesic`` ->
    Deformable Models, ``region_growing`` / ``brush`` -> Neighborhood Analysis,
    ``threshold`` -> Histogram Analysis, ``nnUNet`` / token ``sam`` -> Artificial
    Intelligence, ``manual...`` -> Manual Processing); a MANUAL segment without a
    recognised name -> Manual Processing; anything else -> Neighborhood Analysis (what an
    adaptive brush does: classify voxels around a click).

    Returns
    -------
    Code
        A :data:`FAMILY_CODES` value (scheme DCM).
    """
    tokens = [t for t in re.split(r"[^a-z0-9]+", (name or "").lower()) if t]
    key = "_".join(tokens)
    for substrings, whole, attr in _FAMILY_RULES:
        if any(sub in key for sub in substrings) or any(t in whole for t in tokens):
            return FAMILY_CODES[attr]
    if algorithm_type is AlgorithmType.MANUAL:
        return FAMILY_CODES["ManualProcessing"]
    return FAMILY_CODES["NeighborhoodAnalysis"]
