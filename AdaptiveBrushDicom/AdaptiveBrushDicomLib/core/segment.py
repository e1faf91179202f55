"""Segment records: what one label of a labelmap means.

A :class:`Segment` is independent of DICOM and of Slicer. ``seg_write`` turns it into a
SegmentSequence item, ``seg_read`` back, and ``terminology`` converts its codes to and
from Slicer's ``TerminologyEntry`` strings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any


class AlgorithmType(str, enum.Enum):
    """DICOM SegmentAlgorithmType (0062,0008)."""

    AUTOMATIC = "AUTOMATIC"
    SEMIAUTOMATIC = "SEMIAUTOMATIC"
    MANUAL = "MANUAL"


@dataclass(frozen=True)
class Code:
    """A coded concept: (CodeValue, CodingSchemeDesignator, CodeMeaning)."""

    value: str
    scheme: str
    meaning: str

    def __str__(self) -> str:
        return f"({self.value}, {self.scheme}, \"{self.meaning}\")"


#: SCT 85756007 "Tissue": the default category and type when nothing else is known.
TISSUE = Code("85756007", "SCT", "Tissue")

#: Slicer's default terminology context names.
DEFAULT_CATEGORY_CONTEXT = "Segmentation category and type - DICOM master list"
DEFAULT_ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"


@dataclass(frozen=True)
class Terminology:
    """Coded meaning of a segment (the fields of Slicer's TerminologyEntry)."""

    category: Code = TISSUE
    type: Code = TISSUE
    type_modifier: Code | None = None
    anatomic_region: Code | None = None
    anatomic_region_modifier: Code | None = None
    context_name: str = DEFAULT_CATEGORY_CONTEXT
    anatomic_context_name: str = DEFAULT_ANATOMIC_CONTEXT


@dataclass
class Segment:
    """One segment of a labelmap.

    Attributes
    ----------
    label : int
        Value of this segment's voxels in the labelmap array (Slicer's label value; any
        positive integer, not necessarily the DICOM SegmentNumber).
    name : str
        Human readable name (DICOM SegmentLabel, LO, <= 64 chars).
    color : (r, g, b) 0..255 or None
        Display colour, 8-bit sRGB.
    terminology : Terminology or None
        Coded category/type/region. None means "not specified" (writers use Tissue).
    description : str or None
        Free text (DICOM SegmentDescription, ST, <= 1024 chars).
    algorithm_type : AlgorithmType
    algorithm_name, algorithm_version : str or None
    algorithm_parameters : dict or None
        Parameters of the algorithm that produced this segment (JSON-serialisable).
    segment_id : str or None
        Slicer segment ID (e.g. ``Segment_1``); kept for round trips.
    layer : int
        Layer index in a multi-layer (overlapping) segmentation; 0 for plain labelmaps.
    extra : dict
        Other Slicer segment attributes (e.g. ``status``) carried through unchanged.
    """

    label: int
    name: str
    color: tuple[int, int, int] | None = None
    terminology: Terminology | None = None
    description: str | None = None
    algorithm_type: AlgorithmType = AlgorithmType.SEMIAUTOMATIC
    algorithm_name: str | None = None
    algorithm_version: str | None = None
    algorithm_parameters: dict[str, Any] | None = None
    segment_id: str | None = None
    layer: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def with_label(self, label: int) -> "Segment":
        return replace(self, label=int(label))
