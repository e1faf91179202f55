"""A SEG's SegmentSequence (0062,0002) -> segments by SegmentNumber, checked item by item.

Items are read with :func:`~.segment_item.from_segment_item` from pydicom items or from
walked ones (:mod:`~.seg.walked_item`); both go through :class:`SegmentCollector`,
which refuses duplicate SegmentNumbers and leaves the LABELMAP Background item out.

For pydicom datasets, items already seen are cached by their raw bytes (re-verification
and gold standards skip pydicom's conversion), and by their bytes without
AlgorithmParameters (trials of one run differ only in parameters, so only those are
parsed per trial).
"""

from __future__ import annotations

import copy
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.private_tags import read_segment_private, written_by_us
from AdaptiveBrushDicomLib.dicom.segment_item import from_segment_item
from AdaptiveBrushDicomLib.dicom.segment_text import parse_parameters
from AdaptiveBrushDicomLib.errors import InputFileError

_RawError = (walker.Malformed, walker.NotSupported, struct.error)

#: raw SegmentSequence item bytes -> (number, Segment)
_SEGMENT_CACHE: dict[bytes, tuple[int, Segment]] = {}
#: the same item without its AlgorithmParameters -> (number, Segment without parameters)
_PARAMLESS_CACHE: dict[bytes, tuple[int, Segment]] = {}
_ALG_SEQ, _ALG_PARAMS, _PARAMS_TEXT = 0x00620007, 0x00660032, "algorithm_parameters_text"
_SEGMENT_SEQUENCE = 0x00620002


class SegmentCollector:
    """Segments by SegmentNumber, in item order; duplicates refused as they come."""

    def __init__(self, seg_type: str, path: Path) -> None:
        self.seg_type, self.path = seg_type, path
        self.segments: dict[int, Segment] = {}
        self._item_of: dict[int, int] = {}

    def add(self, index: int, number: int, segment: Segment) -> None:
        """Item ``index`` (0-based) with its SegmentNumber.

        Raises
        ------
        InputFileError
            Another item has this SegmentNumber.
        """
        if number in self._item_of:
            first = self.segments[number].name if number in self.segments else "Background"
            raise InputFileError(
                f"SegmentSequence (0062,0002) items {self._item_of[number]} and {index + 1} both have SegmentNumber "
                f"{number} ('{first}' and '{segment.name}'); "
                "one description would be lost: ask the producer to number segments uniquely", self.path)
        self._item_of[number] = index + 1
        if self.seg_type == "LABELMAP" and number == 0:
            return  # the Background item highdicom / dcmqi add
        # callers own their records; the caches keep their own (Code/Terminology are frozen)
        self.segments[number] = replace(segment, algorithm_parameters=copy.deepcopy(segment.algorithm_parameters),
                                        extra=copy.deepcopy(segment.extra))


def _raw_sequence(ds: Any, tag: int) -> bytes | None:
    """Raw value of a sequence element that pydicom has not converted yet (else None)."""
    elem = ds.get_item(tag)
    if elem is None or not getattr(elem, "is_raw", False):
        return None
    if elem.is_implicit_VR or not elem.is_little_endian or not isinstance(elem.value, bytes):
        return None
    return elem.value


def _split_parameters(body: bytes) -> tuple[bytes, bytes] | None:
    """(item bytes without the AlgorithmParameters element, its raw value) or None."""
    hit = walker.find_element(body, 0, len(body), _ALG_SEQ)
    if hit is None:
        return None
    items = list(walker.iter_items(body, hit[1], hit[2]))
    if len(items) != 1:
        return None
    s, e, _ = items[0]
    for tag, _vr, vs, ve, es in walker.iter_elements(body, s, e):
        if tag == _ALG_PARAMS:
            return body[:es] + body[ve:], body[vs:ve]
        if tag > _ALG_PARAMS:
            return None
    return None


def _with_parameters(base: Segment, raw_value: bytes) -> Segment:
    """What ``from_segment_item`` makes of AlgorithmParameters (see segment_item)."""
    from pydicom.values import convert_single_string

    parameters, raw = parse_parameters(str(convert_single_string(raw_value, ["iso8859"], "LT")))
    extra = dict(base.extra)
    if raw is not None:
        extra[_PARAMS_TEXT] = raw
    return replace(base, algorithm_parameters=parameters, extra=extra)


def check_segment_item(item: Any, index: int, seg_type: str, path: Path) -> int:
    """SegmentNumber of SegmentSequence item ``index`` (1-based) after checking that the
    item is whole: a SegmentNumber, a SegmentLabel (both Type 1), a three-value colour
    if any, and no unknown standard element (what a damaged tag turns into).

    Raises
    ------
    InputFileError
        Naming the item and the attribute.
    """
    from pydicom.datadict import dictionary_has_tag
    from pydicom.multival import MultiValue

    where = f"SegmentSequence (0062,0002) item {index}"
    try:
        number = int(item.SegmentNumber)
    except (AttributeError, TypeError, ValueError) as exc:
        raise InputFileError(f"{where}: SegmentNumber (0062,0004) is missing or not a number ({exc}); "
                             "the item is damaged", path) from None
    if not 0 <= number <= 0xFFFF:
        raise InputFileError(f"{where}: SegmentNumber (0062,0004) {number} is out of range 0..65535", path)
    where += f" (SegmentNumber {number})"
    for elem in item:
        tag = elem.tag
        if tag.group % 2 == 0 and tag.element != 0 and not dictionary_has_tag(tag):
            raise InputFileError(f"{where}: unknown element {tag} (a damaged tag?); the item is corrupt", path)
    if not (seg_type == "LABELMAP" and number == 0):
        label = item.get("SegmentLabel")
        if label is None or not str(label).strip():
            raise InputFileError(f"{where}: SegmentLabel (0062,0005), a required attribute, is missing or "
                                 "empty; the item is damaged", path)
    lab = item.get("RecommendedDisplayCIELabValue")
    if lab is not None:
        values = list(lab) if isinstance(lab, (list, tuple, MultiValue)) else [lab]
        if len(values) != 3 or not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in values):
            raise InputFileError(f"{where}: RecommendedDisplayCIELabValue (0062,000D) must be three values "
                                 f"0..65535, got {lab!r}", path)
    return number


def segment_of_item(item: Any, index: int, ours: bool, path: Path) -> tuple[int, Segment]:
    """(SegmentNumber, Segment) of one (checked) item, our private values restored.

    Raises
    ------
    InputFileError
        A value the item reader cannot use (the item is damaged).
    """
    try:
        number, segment = from_segment_item(item, written_by_us=ours)
        return number, read_segment_private(item, segment)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
        raise InputFileError(f"SegmentSequence (0062,0002) item {index + 1}: cannot be read ({exc}); "
                             "the item is damaged", path) from None


class _Cache:
    """The two item caches, as seen by one dataset (its character set and our marking)."""

    def __init__(self, ds: Any) -> None:
        charset = ds.get("SpecificCharacterSet")
        # the cache key says how the bytes are read: character set, and whether TrackingIDs are ours
        self.prefix = (repr(charset) + ("|ours" if written_by_us(ds) else "")).encode() + b"|"
        self.default_charset = not charset or str(charset) in ("ISO_IR 6", "ISO_IR 100")

    def get(self, body: bytes) -> tuple[tuple[int, Segment] | None, tuple[bytes, bytes] | None]:
        """(cached (number, Segment) or None, the item split at its parameters or None)."""
        hit = _SEGMENT_CACHE.get(self.prefix + body)
        if hit is not None or not self.default_charset:
            return hit, None
        try:
            split = _split_parameters(body)
        except _RawError:
            return None, None
        base = _PARAMLESS_CACHE.get(self.prefix + split[0]) if split is not None else None
        if base is not None and split is not None:
            return (base[0], _with_parameters(base[1], split[1])), split
        return None, split

    def put(self, body: bytes, split: tuple[bytes, bytes] | None, hit: tuple[int, Segment]) -> None:
        """Remember an item read with pydicom (both caches; bounded)."""
        if len(_SEGMENT_CACHE) > 8192:
            _SEGMENT_CACHE.clear()
            _PARAMLESS_CACHE.clear()
        _SEGMENT_CACHE[self.prefix + body] = hit
        if split is not None:
            number, segment = hit
            extra = {k: v for k, v in segment.extra.items() if k != _PARAMS_TEXT}
            _PARAMLESS_CACHE[self.prefix + split[0]] = (number, replace(segment, algorithm_parameters=None,
                                                                         extra=extra))


def _item_bodies(ds: Any) -> list[bytes] | None:
    """Raw bytes of each SegmentSequence item while pydicom has not converted it (else None)."""
    buf = _raw_sequence(ds, _SEGMENT_SEQUENCE)
    if buf is None:
        return None
    try:
        return [buf[s:e] for s, e, _ in walker.iter_items(buf, 0, len(buf))]
    except _RawError:
        return None


def read_segments(ds: Any, seg_type: str, path: Path | None = None) -> dict[int, Segment]:
    """Segments of a pydicom SEG dataset by SegmentNumber (the LABELMAP Background item 0
    left out).

    Raises
    ------
    InputFileError
        The sequence cannot be read, a damaged item (:func:`check_segment_item`), or two
        items with one SegmentNumber.
    """
    path = path or Path(str(getattr(ds, "filename", "") or "SEG"))
    bodies = _item_bodies(ds)
    cache = _Cache(ds)
    ours = written_by_us(ds)
    try:
        count = len(bodies) if bodies is not None else len(getattr(ds, "SegmentSequence", []))
    except Exception as exc:  # pydicom raises many types for damaged sequences
        raise InputFileError(f"SegmentSequence (0062,0002) cannot be read ({exc})", path) from None
    collector = SegmentCollector(seg_type, path)
    items = None
    for i in range(count):
        hit, split = cache.get(bodies[i]) if bodies is not None else (None, None)
        if hit is None:
            items = items if items is not None else getattr(ds, "SegmentSequence", [])
            check_segment_item(items[i], i + 1, seg_type, path)
            hit = segment_of_item(items[i], i, ours, path)
            if bodies is not None:
                cache.put(bodies[i], split, hit)
        collector.add(i, *hit)
    return collector.segments


__all__ = ["SegmentCollector", "check_segment_item", "read_segments", "segment_of_item"]
