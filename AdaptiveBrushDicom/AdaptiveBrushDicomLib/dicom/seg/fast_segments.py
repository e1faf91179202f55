"""SegmentSequence items of the fast SEG writer (:mod:`.fast`), pre-encoded and cached.

A segment item is what :func:`~AdaptiveBrushDicomLib.dicom.segment_item.to_segment_description`
+ ``finalize_dataset`` + ``write_segment_private`` make of a :class:`~.segment.Segment`; it is
encoded once and cached, split around its AlgorithmParameters so that trials differing only
in their parameters re-encode just that element. The LABELMAP Background item (segment 0)
is made the way the installed highdicom makes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from AdaptiveBrushDicomLib.dicom.seg.fast_encoding import (
    NotSupported, _encode_text, _encoder, _item, _sequence,
)

_ALG_SEQ_TAG = 0x00620007
_ALG_PARAMS_TAG = 0x00660032


@dataclass
class _EncodedSegment:
    """One SegmentSequence item, pre-encoded around its AlgorithmParameters."""

    before: bytes  # item elements with tags < SegmentationAlgorithmIdentificationSequence
    alg_before: bytes  # elements of the algorithm item before AlgorithmParameters
    alg_after: bytes  # ... and after it
    after: bytes  # item elements after the algorithm sequence
    has_alg: bool
    full: bytes  # the whole item (item header included) when there are no parameters
    first_item: Any  # the Dataset (for the Background item, built from segment 1)
    warnings: list[str]
    non_ascii: bool = False  # finalize_dataset asked for UTF-8: the highdicom path writes it


#: (study, charset, repr(segment with a parameter stand-in), number) -> _EncodedSegment
_SEGMENT_CACHE: dict[tuple, _EncodedSegment] = {}
_BACKGROUND_CACHE: dict[tuple, _EncodedSegment] = {}


def _segment_item(segment, number: int, study: str, encodings: list[str]) -> tuple[bytes, Any, list[str]]:
    """Encoded SegmentSequence item of one segment, as ``to_segment_description`` +
    ``finalize_dataset`` + ``write_segment_private`` make it. Cached; a segment that
    differs only in its algorithm parameters re-encodes just AlgorithmParameters."""
    from dataclasses import replace

    from pydicom.dataset import Dataset

    from AdaptiveBrushDicomLib.dicom.private_tags import write_segment_private
    from AdaptiveBrushDicomLib.dicom.segment_item import finalize_dataset, format_parameters, to_segment_description

    params = segment.algorithm_parameters
    text = None if params is None else format_parameters(params, segment.name)
    # a stand-in for the parameters (truthy, like any real parameter set) so that
    # segments differing only in parameters share one cache entry
    proto = replace(segment, algorithm_parameters=None if params is None else {"_": 0})
    key = (study, tuple(encodings), repr(proto), number)
    enc = _SEGMENT_CACHE.get(key)
    if enc is None:
        desc, msgs = to_segment_description(proto, number)
        holder = Dataset()
        holder.StudyInstanceUID = study
        holder.SegmentSequence = [desc]
        padded = [None] * (number - 1) + [proto]
        finalize_dataset(holder, padded)
        write_segment_private(holder, padded)
        item = holder.SegmentSequence[0]
        enc = _split_encoded(item, encodings, list(msgs), "SpecificCharacterSet" in holder)
        if len(_SEGMENT_CACHE) > 4096:
            _SEGMENT_CACHE.clear()
        _SEGMENT_CACHE[key] = enc
    return _assemble(enc, text), enc.first_item, list(enc.warnings)



def _split_encoded(item, encodings: list[str], warnings: list[str], non_ascii: bool = False) -> _EncodedSegment:
    """Pre-encode an item around its AlgorithmParameters (see _EncodedSegment)."""
    enc_element, enc_dataset = _encoder(encodings)
    before = b"".join(enc_element(item[t]) for t in item.keys() if int(t) < _ALG_SEQ_TAG)
    after = b"".join(enc_element(item[t]) for t in item.keys() if int(t) > _ALG_SEQ_TAG)
    alg = item.get("SegmentationAlgorithmIdentificationSequence")
    alg_before = alg_after = b""
    has_params = bool(alg) and "AlgorithmParameters" in alg[0]
    if has_params:
        a = alg[0]
        alg_before = b"".join(enc_element(a[t]) for t in a.keys() if int(t) < _ALG_PARAMS_TAG)
        alg_after = b"".join(enc_element(a[t]) for t in a.keys() if int(t) > _ALG_PARAMS_TAG)
    if non_ascii:  # never encode it with the template's character set
        return _EncodedSegment(b"", b"", b"", b"", False, b"", item, list(warnings), True)
    return _EncodedSegment(before, alg_before, alg_after, after, has_params, _item(enc_dataset(item)), item,
                           list(warnings))


def _assemble(enc: _EncodedSegment, text: str | None) -> bytes:
    if enc.non_ascii:
        raise NotSupported("non-ASCII segment text")
    if text is None or not enc.has_alg:
        return enc.full
    alg_item = _item(enc.alg_before + _encode_text(_ALG_PARAMS_TAG, "LT", text) + enc.alg_after)
    return _item(enc.before + _sequence(_ALG_SEQ_TAG, [alg_item]) + enc.after)


def _background_item(first_segment, study: str, encodings: list[str]) -> bytes:
    """LABELMAP segment 0 exactly as the installed highdicom adds it.

    highdicom derives it from segment 1's description (algorithm type, and in 0.27 the
    whole algorithm identification, which ``finalize_dataset`` then edits through the
    shared sequence), so it is built the same way: highdicom's own
    ``Segmentation._add_segment_descriptions`` on segment 1, then our post-processing.
    Cached like the segment items: segment 1's parameters only change AlgorithmParameters."""
    from dataclasses import replace

    import highdicom as hd
    from pydicom.dataset import Dataset

    from AdaptiveBrushDicomLib.dicom.private_tags import write_segment_private
    from AdaptiveBrushDicomLib.dicom.segment_item import finalize_dataset, format_parameters, to_segment_description

    params = first_segment.algorithm_parameters
    text = None if params is None else format_parameters(params, first_segment.name)
    proto = replace(first_segment, algorithm_parameters=None if params is None else {"_": 0})
    key = (study, tuple(encodings), repr(proto))
    enc = _BACKGROUND_CACHE.get(key)
    if enc is None:
        desc, _ = to_segment_description(proto, 1)
        holder = Dataset()
        holder.StudyInstanceUID = study
        hd.seg.Segmentation._add_segment_descriptions(
            holder, [desc], hd.seg.SegmentationTypeValues.LABELMAP)  # type: ignore[arg-type]  # private API, plain Dataset
        finalize_dataset(holder, [proto])
        write_segment_private(holder, [proto])
        bg = holder.SegmentSequence[0]
        if int(bg.SegmentNumber) != 0:
            raise RuntimeError("highdicom did not add a background segment 0")
        enc = _split_encoded(bg, encodings, [], "SpecificCharacterSet" in holder)
        if len(_BACKGROUND_CACHE) > 1024:
            _BACKGROUND_CACHE.clear()
        _BACKGROUND_CACHE[key] = enc
    return _assemble(enc, text)
