"""A walked dataset seen through the part of pydicom's ``Dataset`` the segment readers use.

:func:`~.segment_item.from_segment_item`, :func:`~.private_tags.read_segment_private`
and :func:`~.private_tags.written_by_us` read keywords (``get``, attributes, ``in``) and
our private block. :class:`WalkedItem` answers those for a :data:`~.walker.RawDataset`
with the values pydicom would give, so one reader serves both sources; a keyword it does
not know is :class:`~.walker.NotSupported` (the decoder then reads the file with pydicom),
never a different answer.
"""

from __future__ import annotations

from typing import Any

from AdaptiveBrushDicomLib.dicom import walker

#: The keywords the segment readers use (Segment Description macro, code items, our
#: top-level identification).
TAGS = {
    "SegmentNumber": 0x00620004, "SegmentLabel": 0x00620005, "SegmentDescription": 0x00620006,
    "SegmentAlgorithmType": 0x00620008, "SegmentAlgorithmName": 0x00620009,
    "SegmentedPropertyCategoryCodeSequence": 0x00620003, "SegmentedPropertyTypeCodeSequence": 0x0062000F,
    "SegmentedPropertyTypeModifierCodeSequence": 0x00620011, "AnatomicRegionSequence": 0x00082218,
    "AnatomicRegionModifierSequence": 0x00082220, "SegmentationAlgorithmIdentificationSequence": 0x00620007,
    "AlgorithmName": 0x00660036, "AlgorithmVersion": 0x00660031, "AlgorithmParameters": 0x00660032,
    "AlgorithmFamilyCodeSequence": 0x0066002F, "RecommendedDisplayCIELabValue": 0x0062000D,
    "TrackingID": 0x00620020, "TrackingUID": 0x00620021, "CodeValue": 0x00080100,
    "CodingSchemeDesignator": 0x00080102, "CodeMeaning": 0x00080104, "LongCodeValue": 0x00080119,
    "URNCodeValue": 0x00080120, "Manufacturer": 0x00080070, "ManufacturerModelName": 0x00081090,
}


class _Value:
    """An element as pydicom's ``DataElement`` shows it: ``.value``."""

    def __init__(self, value: Any) -> None:
        self.value = value


class _PrivateBlock:
    """pydicom's ``PrivateBlock`` for a walked dataset: ``offset in block``, ``block[offset].value``."""

    def __init__(self, item: "WalkedItem", base: int) -> None:
        self.item, self.base = item, base

    def __contains__(self, offset: int) -> bool:
        return (self.base | offset) in self.item.raw

    def __getitem__(self, offset: int) -> _Value:
        tag = self.base | offset
        if tag not in self.item.raw:
            raise KeyError(tag)
        return _Value(self.item.convert(tag))


class WalkedItem:
    """A walked dataset level with ``get(keyword)``, ``keyword in item``, ``item.Keyword``
    and ``private_block``; sequences come back as lists of :class:`WalkedItem`."""

    def __init__(self, raw: walker.RawDataset) -> None:
        self.raw = raw

    @staticmethod
    def tag_of(keyword: str) -> int:
        """The tag of a known keyword.

        Raises
        ------
        NotSupported
            A keyword this view does not know (the caller falls back to pydicom).
        """
        try:
            return TAGS[keyword]
        except KeyError:
            raise walker.NotSupported(f"keyword {keyword} not read by the walker") from None

    def convert(self, tag: int) -> Any:
        """The value of ``tag`` as pydicom gives it (``walker.value``; items wrapped).

        Raises
        ------
        NotSupported
            What the walker does not convert, and numbers it cannot parse (pydicom may
            read those differently).
        """
        try:
            value = walker.value(self.raw, tag)
        except walker.Malformed as exc:
            raise walker.NotSupported(str(exc)) from None
        if self.raw[tag][0] == "SQ":
            return [WalkedItem(item) for item in value]
        return value

    def get(self, keyword: str, default: Any = None) -> Any:
        """The value of ``keyword``, or ``default`` when absent."""
        tag = self.tag_of(keyword)
        return self.convert(tag) if tag in self.raw else default

    def __contains__(self, keyword: str) -> bool:
        return self.tag_of(keyword) in self.raw

    def __getattr__(self, keyword: str) -> Any:
        if keyword.startswith("_") or keyword == "raw":
            raise AttributeError(keyword)
        tag = self.tag_of(keyword)
        if tag not in self.raw:
            raise AttributeError(keyword)
        return self.convert(tag)

    def private_block(self, group: int, creator: str) -> _PrivateBlock:
        """The block of private ``group`` reserved by ``creator`` (as pydicom finds it).

        Raises
        ------
        KeyError
            No such creator in the group (what pydicom raises).
        """
        for element in range(0x10, 0x100):
            tag = group << 16 | element
            if tag in self.raw and walker.value(self.raw, tag) == creator:
                return _PrivateBlock(self, group << 16 | element << 8)
        raise KeyError(f"Private creator '{creator}' not found")


__all__ = ["TAGS", "WalkedItem"]
