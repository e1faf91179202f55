"""SegmentSequence items built with pydicom alone, as highdicom builds them.

:func:`segment_dataset` makes the item that
:func:`~.segment_item.to_segment_description` makes through highdicom's
``SegmentDescription`` (and ``CodedConcept`` / ``AlgorithmIdentificationSequence``), from
the same :class:`~.segment_values.ItemValues`; :func:`background_dataset` makes the
LABELMAP Background item (segment 0) the way the installed highdicom's ``Segmentation``
adds it. The fast writer uses these so that an export never imports highdicom (0.25 s of
a command's start-up). ``Testing/Python/test_fast_path.py`` compares the files of both
paths element by element, with highdicom 0.27 and 0.28.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from AdaptiveBrushDicomLib.core.segment import Code
from AdaptiveBrushDicomLib.dicom.segment_values import ItemValues

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataset import Dataset

__all__ = ["BACKGROUND", "BACKGROUND_LAB", "background_dataset", "background_keeps_algorithm", "code_dataset",
           "segment_dataset"]

#: DCM 125040 "Background": category and type of highdicom's LABELMAP segment 0.
BACKGROUND = Code("125040", "DCM", "Background")
#: ``highdicom.color.CIELabColor(0.0, 0.0, 0.0).value``: black, as highdicom encodes it.
BACKGROUND_LAB = (0, 32896, 32896)


def code_dataset(code: Code) -> "Dataset":
    """A code sequence item as ``highdicom.sr.CodedConcept`` makes it: CodeValue, or
    LongCodeValue for values over 16 characters (URNCodeValue for URNs and URLs)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    value = str(code.value)
    if len(value) > 16:
        if value.startswith("urn") or "://" in value:
            ds.URNCodeValue = value
        else:
            ds.LongCodeValue = value
    else:
        ds.CodeValue = value
    ds.CodeMeaning = str(code.meaning)
    ds.CodingSchemeDesignator = str(code.scheme)
    return ds


def segment_dataset(values: ItemValues) -> "Dataset":
    """The SegmentSequence item of ``values``, element by element what
    :func:`~.segment_item.to_segment_description` builds with highdicom."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SegmentNumber = values.number
    ds.SegmentLabel = values.label
    ds.SegmentedPropertyCategoryCodeSequence = [code_dataset(values.category)]
    type_item = code_dataset(values.type)
    if values.type_modifier is not None:
        type_item.SegmentedPropertyTypeModifierCodeSequence = [code_dataset(values.type_modifier)]
    ds.SegmentedPropertyTypeCodeSequence = [type_item]
    ds.SegmentAlgorithmType = values.algorithm_type.value
    if values.algorithm is not None:
        alg = Dataset()
        alg.AlgorithmName = values.algorithm.name
        alg.AlgorithmVersion = values.algorithm.version
        alg.AlgorithmFamilyCodeSequence = [code_dataset(values.algorithm.family)]
        if values.algorithm.parameters is not None:
            alg.AlgorithmParameters = values.algorithm.parameters
        ds.SegmentAlgorithmName = values.algorithm.name
        ds.SegmentationAlgorithmIdentificationSequence = [alg]
    ds.TrackingID = values.tracking_id
    ds.TrackingUID = values.tracking_uid
    if values.anatomic_region is not None:
        region = code_dataset(values.anatomic_region)
        if values.anatomic_region_modifier is not None:
            region.AnatomicRegionModifierSequence = [code_dataset(values.anatomic_region_modifier)]
        ds.AnatomicRegionSequence = [region]
    if values.description is not None:
        ds.SegmentDescription = values.description
    ds.RecommendedDisplayCIELabValue = list(values.lab)
    return ds


@functools.lru_cache(maxsize=1)
def background_keeps_algorithm() -> bool:
    """True when the installed highdicom (< 0.28) keeps segment 1's algorithm
    identification on the Background item; 0.28 removes it (and keeps SegmentAlgorithmName).

    Raises
    ------
    LookupError
        The highdicom version cannot be read (``importlib.metadata``).
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("highdicom")
        major, minor = (int(part) for part in text.split(".")[:2])
    except (PackageNotFoundError, ValueError) as exc:
        raise LookupError(f"cannot read the highdicom version ({exc})") from None
    return (major, minor) < (0, 28)


def background_dataset(first: "Dataset", keep_algorithm: bool) -> "Dataset":
    """The LABELMAP Background item (SegmentNumber 0) that highdicom's ``Segmentation``
    adds in front of ``first`` (segment 1's item): label "Background", DCM Background
    codes, segment 1's algorithm type and name, black when segment 1 has a colour.

    ``keep_algorithm`` (:func:`background_keeps_algorithm`) shares segment 1's
    SegmentationAlgorithmIdentificationSequence, as highdicom 0.27 does, so later edits of
    segment 1's item (``finalize_dataset``) show on both.
    """
    from pydicom.dataset import Dataset

    bg = Dataset()
    bg.SegmentNumber = 0
    bg.SegmentLabel = "Background"
    bg.SegmentedPropertyCategoryCodeSequence = [code_dataset(BACKGROUND)]
    bg.SegmentedPropertyTypeCodeSequence = [code_dataset(BACKGROUND)]
    bg.SegmentAlgorithmType = first.SegmentAlgorithmType
    alg = first.get("SegmentationAlgorithmIdentificationSequence")
    if alg is not None:
        bg.SegmentAlgorithmName = alg[0].AlgorithmName
        if keep_algorithm:
            bg["SegmentationAlgorithmIdentificationSequence"] = first["SegmentationAlgorithmIdentificationSequence"]
    if "RecommendedDisplayCIELabValue" in first:
        bg.RecommendedDisplayCIELabValue = list(BACKGROUND_LAB)
    return bg
