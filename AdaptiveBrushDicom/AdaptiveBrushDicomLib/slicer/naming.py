"""Names and IDs the Slicer glue gives to nodes and segments.

Rules (decided here, applied by ``DICOMLabelMapSegPlugin.py`` and ``AdaptiveBrushDicom.py``):

* A loaded SEG's node name is its SeriesDescription, sanitized (:func:`sanitize_node_name`)
  and made unique in the scene (:func:`unique_name`). The SeriesNumber is not part of the
  name: node names are pasted into CrossSegmentationExplorer's layout XML, joined with
  ``;`` / ``,`` in its parameter node and de-duplicated by name, and a re-export must not
  turn ``"1001: trial_001"`` into the next SeriesDescription.
* The SeriesDescription of a re-export comes from the subject hierarchy attribute
  ``DICOM.SeriesDescription`` of the loaded node (:func:`export_series_description`),
  never from the node name.
* Segment IDs are unique across nodes (CSE keys segment bounding boxes by segment ID):
  ``<prefix>_<label>`` with a prefix derived from the SEG's SOPInstanceUID
  (:func:`segment_id_prefix`).
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable, Mapping

#: Characters kept in node names; everything else becomes "_". No XML specials (<>&"'),
#: no CSE separators (;,), no "~" / "^" (terminology separators), no "|" / ":" / "*".
_UNSAFE = re.compile(r"[^A-Za-z0-9 _\-.()+\[\]=#%@]")
MAX_NAME = 64  # SeriesDescription is LO (64 characters)

#: Subject hierarchy attribute holding a loaded series' SeriesDescription
#: (DICOMPlugin.addSeriesInSubjectHierarchy: GetDICOMAttributePrefix() + "SeriesDescription").
SH_SERIES_DESCRIPTION = "DICOM.SeriesDescription"


def sanitize_node_name(text: str | None, default: str = "Segmentation") -> str:
    """A node name safe for CrossSegmentationExplorer (XML, ``;``/``,`` lists) and Slicer.

    Unsafe characters become ``_``, runs of ``_``/spaces collapse, the result is at most
    :data:`MAX_NAME` characters; an empty result gives ``default``.
    """
    cleaned = _UNSAFE.sub("_", str(text or ""))
    cleaned = re.sub(r"_{2,}", "_", re.sub(r"\s+", " ", cleaned)).strip(" _")
    return cleaned[:MAX_NAME].rstrip(" _") or default


def unique_name(base: str, existing: Iterable[str]) -> str:
    """``base``, or ``base_2``, ``base_3``, ... whichever is not in ``existing``."""
    taken = set(existing)
    if base not in taken:
        return base
    n = 2
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


def loaded_node_name(series_description: str | None, existing: Iterable[str]) -> str:
    """Name of the segmentation node of a loaded SEG (sanitized, unique in ``existing``)."""
    return unique_name(sanitize_node_name(series_description), existing)


def export_series_description(sh_attributes: Mapping[str, str], node_name: str) -> str:
    """SeriesDescription for exporting a node: the one it was loaded with (subject
    hierarchy ``DICOM.SeriesDescription``), else the node name (a segmentation made in
    Slicer), sanitized either way."""
    loaded = (sh_attributes.get(SH_SERIES_DESCRIPTION) or "").strip()
    return sanitize_node_name(loaded or node_name)


def segment_id_prefix(sop_instance_uid: str) -> str:
    """Short stable prefix for the segment IDs of one SEG (8 hex digits of its UID's hash)."""
    return "seg" + hashlib.sha1(str(sop_instance_uid).encode()).hexdigest()[:8]


def safe_file_name(text: str, default: str = "segmentation", max_length: int = 60) -> str:
    """File-name part: letters, digits, ``-_.``; everything else ``_``."""
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text)).strip("_.")
    return keep[:max_length] or default
