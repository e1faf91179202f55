"""The DICOM SOP classes this package reads and writes: one enum, one tuple.

Imports nothing but the standard library (and core.value_enum), so the fast header reader
(:mod:`AdaptiveBrushDicomLib.dicom.seg.info`) can use it without pydicom.
"""

from __future__ import annotations

from AdaptiveBrushDicomLib.core.value_enum import ValueEnum


class SegSopClass(ValueEnum):
    """Segmentation SOP classes (value = SOP Class UID).

    ``str`` subclass: members compare equal to their UID strings, so
    ``ds.SOPClassUID == SegSopClass.LABELMAP`` and ``uid in SEG_SOP_CLASS_UIDS`` work,
    and ``str()`` / f-strings give the UID.
    """

    #: Label Map Segmentation Storage (Supplement 243): what we write.
    LABELMAP = "1.2.840.10008.5.1.4.1.1.66.7"
    #: Segmentation Storage (BINARY / FRACTIONAL): read, and written only with ``allow_binary``.
    SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"

    @property
    def uid(self) -> str:
        """The SOP Class UID as a plain string."""
        return str(self.value)

    @property
    def long_name(self) -> str:
        """The name PS3.4 gives the SOP class (e.g. ``"Label Map Segmentation Storage"``)."""
        return _TITLES[self]


_TITLES = {
    SegSopClass.LABELMAP: "Label Map Segmentation Storage",
    SegSopClass.SEGMENTATION: "Segmentation Storage",
}

#: Both segmentation SOP class UIDs (plain strings), for ``uid in SEG_SOP_CLASS_UIDS``.
SEG_SOP_CLASS_UIDS: tuple[str, ...] = tuple(m.value for m in SegSopClass)
