"""SegmentSequence items of the fast SEG writer (:mod:`.fast`), pre-encoded and cached.

A segment item is what :func:`~AdaptiveBrushDicomLib.dicom.segment_item.to_segment_description`
+ ``finalize_dataset`` + ``write_segment_private`` make of a :class:`~.segment.Segment`,
built here with pydicom alone (:mod:`~AdaptiveBrushDicomLib.dicom.segment_dataset`: no
highdicom import). It is encoded once and cached, split around its AlgorithmParameters so
that trials differing only in their parameters re-encode just that element. The LABELMAP
Background item (segment 0) is made the way the installed highdicom makes it.

The cache key is a tuple of the segment's fields (not its ``repr``, which cost ~0.13 ms
per segment and made 255 segments 3x slower to write than 10).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

from AdaptiveBrushDicomLib.core.segment import Segment
from AdaptiveBrushDicomLib.dicom.seg.fast_encoding import (
    NotSupported, _encode_text, _encoder, _item, _sequence, encode_small_dataset, encode_small_element,
)

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataset import Dataset

_ALG_SEQ_TAG = 0x00620007
_ALG_PARAMS_TAG = 0x00660032
#: The parameters of a cached item: a stand-in (truthy, like any real parameter set) so
#: that segments differing only in their parameters share one cache entry.
_PARAMS_STAND_IN: dict[str, Any] = {"_": 0}
_MAX_SEGMENTS = 4096
_MAX_BACKGROUNDS = 1024


@dataclass(frozen=True)
class _EncodedSegment:
    """One SegmentSequence item, pre-encoded around its AlgorithmParameters."""

    before: bytes  # item elements with tags < SegmentationAlgorithmIdentificationSequence
    alg_before: bytes  # elements of the algorithm item before AlgorithmParameters
    alg_after: bytes  # ... and after it
    after: bytes  # item elements after the algorithm sequence
    has_alg: bool
    full: bytes  # the whole item (item header included) when there are no parameters
    warnings: tuple[str, ...]
    non_ascii: bool = False  # finalize_dataset asked for UTF-8: the highdicom path writes it


#: (study, charset, segment fields with a parameter stand-in, number) -> _EncodedSegment
_SEGMENT_CACHE: dict[tuple[Any, ...], _EncodedSegment] = {}
_BACKGROUND_CACHE: dict[tuple[Any, ...], _EncodedSegment] = {}


def _key(segment: Segment) -> tuple[Any, ...]:
    """Everything of ``segment`` its item depends on, except the parameters' values."""
    return (segment.label, segment.name, repr(segment.color), segment.terminology, segment.description,
            segment.algorithm_type, segment.algorithm_name, segment.algorithm_version,
            segment.algorithm_parameters is None, segment.segment_id, segment.layer,
            repr(segment.extra) if segment.extra else "")


def _parameters_text(segment: Segment) -> str | None:
    from AdaptiveBrushDicomLib.dicom.segment_text import format_parameters

    params = segment.algorithm_parameters
    return None if params is None else format_parameters(params, segment.name)


def _stand_in(segment: Segment) -> Segment:
    return replace(segment, algorithm_parameters=None if segment.algorithm_parameters is None else _PARAMS_STAND_IN)


def _post_process(items: list["Dataset"], study: str, segments: list[Segment]) -> "Dataset":
    """What the highdicom path does to a built SEG's items: ``finalize_dataset`` and our
    private block, on a holder dataset with ``study`` as its StudyInstanceUID."""
    from pydicom.dataset import Dataset

    from AdaptiveBrushDicomLib.dicom.private_tags import write_segment_private
    from AdaptiveBrushDicomLib.dicom.segment_item import finalize_dataset

    holder = Dataset()
    holder.StudyInstanceUID = study
    holder.SegmentSequence = items
    finalize_dataset(holder, segments)
    write_segment_private(holder, segments)
    return holder


def _segment_item(segment: Segment, number: int, study: str, encodings: list[str]) -> tuple[bytes, list[str]]:
    """Encoded SegmentSequence item of one segment and its warnings, as
    ``to_segment_description`` + ``finalize_dataset`` + ``write_segment_private`` make it.
    Cached; a segment that differs only in its algorithm parameters re-encodes just
    AlgorithmParameters.

    Raises
    ------
    SegmentMetadataError
        A value of the segment cannot be written (:func:`~.segment_values.item_values`).
    NotSupported
        Non-ASCII segment text (the highdicom path sets the dataset's character set).
    """
    text = _parameters_text(segment)
    key = (study, tuple(encodings), _key(segment), number)
    enc = _SEGMENT_CACHE.get(key)
    if enc is None:
        from AdaptiveBrushDicomLib.dicom.segment_dataset import segment_dataset
        from AdaptiveBrushDicomLib.dicom.segment_values import item_values

        proto = _stand_in(segment)
        values, msgs = item_values(proto, number)
        # segments[number - 1] is the only one the post-processing looks up for this item
        holder = _post_process([segment_dataset(values)], study, [proto] * number)
        enc = _split_encoded(holder.SegmentSequence[0], encodings, msgs, "SpecificCharacterSet" in holder)
        if len(_SEGMENT_CACHE) > _MAX_SEGMENTS:
            _SEGMENT_CACHE.clear()
        _SEGMENT_CACHE[key] = enc
    return _assemble(enc, text), list(enc.warnings)


def _split_encoded(item: "Dataset", encodings: list[str], warnings: list[str], non_ascii: bool = False) -> _EncodedSegment:
    """Pre-encode an item around its AlgorithmParameters (see _EncodedSegment)."""
    if non_ascii:  # never encode it with the template's character set
        return _EncodedSegment(b"", b"", b"", b"", False, b"", tuple(warnings), True)
    try:
        return _split(item, encode_small_element, encode_small_dataset, warnings)
    except NotSupported:  # something only pydicom encodes: let it encode everything
        element, dataset = _encoder(encodings)
        return _split(item, element, dataset, warnings)


def _split(item: "Dataset", enc_element: Callable[[Any], bytes], enc_dataset: Callable[[Any], bytes],
           warnings: list[str]) -> _EncodedSegment:
    """:func:`_split_encoded` with the given element and dataset encoders."""
    tags = sorted(int(t) for t in item.keys())  # keys() is insertion order; files are ascending
    before = b"".join(enc_element(item[t]) for t in tags if t < _ALG_SEQ_TAG)
    after = b"".join(enc_element(item[t]) for t in tags if t > _ALG_SEQ_TAG)
    alg = item.get("SegmentationAlgorithmIdentificationSequence")
    alg_before = alg_after = b""
    has_params = bool(alg) and "AlgorithmParameters" in alg[0]
    if has_params:
        a = alg[0]
        alg_tags = sorted(int(t) for t in a.keys())
        alg_before = b"".join(enc_element(a[t]) for t in alg_tags if t < _ALG_PARAMS_TAG)
        alg_after = b"".join(enc_element(a[t]) for t in alg_tags if t > _ALG_PARAMS_TAG)
    return _EncodedSegment(before, alg_before, alg_after, after, has_params, _item(enc_dataset(item)),
                           tuple(warnings))


def _assemble(enc: _EncodedSegment, text: str | None) -> bytes:
    """The item's bytes with ``text`` as its AlgorithmParameters.

    Raises
    ------
    NotSupported
        The item has non-ASCII text.
    """
    if enc.non_ascii:
        raise NotSupported("non-ASCII segment text")
    if text is None or not enc.has_alg:
        return enc.full
    alg_item = _item(enc.alg_before + _encode_text(_ALG_PARAMS_TAG, "LT", text) + enc.alg_after)
    return _item(enc.before + _sequence(_ALG_SEQ_TAG, [alg_item]) + enc.after)


def _background_item(first_segment: Segment, study: str, encodings: list[str]) -> bytes:
    """LABELMAP segment 0 exactly as the installed highdicom adds it.

    highdicom derives it from segment 1's description (algorithm type and name, and in
    0.27 the whole algorithm identification, which ``finalize_dataset`` then edits through
    the shared sequence); :func:`~.segment_dataset.background_dataset` does the same, then
    our post-processing. Cached like the segment items: segment 1's parameters only change
    AlgorithmParameters.

    Raises
    ------
    SegmentMetadataError
        A value of segment 1 cannot be written.
    NotSupported
        Non-ASCII text, or the installed highdicom's version cannot be read.
    """
    from AdaptiveBrushDicomLib.dicom.segment_dataset import background_keeps_algorithm

    try:
        keep = background_keeps_algorithm()
    except LookupError as exc:
        raise NotSupported(str(exc)) from None
    text = _parameters_text(first_segment)
    key = (study, tuple(encodings), _key(first_segment), keep)
    enc = _BACKGROUND_CACHE.get(key)
    if enc is None:
        from AdaptiveBrushDicomLib.dicom.segment_dataset import background_dataset, segment_dataset
        from AdaptiveBrushDicomLib.dicom.segment_values import item_values

        proto = _stand_in(first_segment)
        first = segment_dataset(item_values(proto, 1)[0])
        holder = _post_process([background_dataset(first, keep), first], study, [proto])
        bg = holder.SegmentSequence[0]
        enc = _split_encoded(bg, encodings, [], "SpecificCharacterSet" in holder)
        if len(_BACKGROUND_CACHE) > _MAX_BACKGROUNDS:
            _BACKGROUND_CACHE.clear()
        _BACKGROUND_CACHE[key] = enc
    return _assemble(enc, text)
