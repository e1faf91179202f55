"""Header summary of a SEG file (``abdicom info``), read without decoding pixels.

Start-up is the cost of this command: ``import pydicom`` alone takes ~0.3-0.7 s. So the
header is read by the raw walker (:mod:`~.dicom.walker`, Explicit VR Little Endian, plain
or Deflated with a capped inflate), which imports neither pydicom nor numpy. Only when
the walker signals :class:`~.walker.NotSupported` (implicit VR, big endian, a character
set, a VR it does not convert) does pydicom read it; the summary is built by one function
from either source, and a broken file is an error from either, never a silent fallback.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from AdaptiveBrushDicomLib.dicom.compression import transfer_syntax_name
from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS, SegSopClass
from AdaptiveBrushDicomLib.errors import InputFileError

if TYPE_CHECKING:
    from AdaptiveBrushDicomLib.dicom.walker import RawDataset


@dataclass
class SegmentInfo:
    number: int
    label: str
    category: str | None
    type: str | None
    type_modifier: str | None
    anatomic_region: str | None
    algorithm_type: str | None
    algorithm_name: str | None
    algorithm_parameters: str | None
    color_rgb: list[int] | None
    description: str | None
    tracking_id: str | None = None
    anatomic_region_modifier: str | None = None
    #: labelled voxels and their volume (mL); filled by ``abdicom info`` (analysis.volumes), None if not measured
    voxels: int | None = None
    volume_ml: float | None = None


@dataclass
class SegInfo:
    path: str
    sop_class_uid: str
    sop_class: str
    transfer_syntax_uid: str
    transfer_syntax: str
    segmentation_type: str
    frames: int
    rows: int
    columns: int
    patient_id: str
    study_instance_uid: str
    study_description: str
    series_instance_uid: str
    series_description: str
    series_number: str
    referenced_series_uid: str | None
    referenced_instances: int
    frame_of_reference_uid: str
    content_label: str
    manufacturer: str
    software_versions: str
    size_bytes: int
    segments: list[SegmentInfo] = field(default_factory=list)

    @property
    def user_segment_count(self) -> int:
        """Segments a user made: SegmentNumber 0 (a LABELMAP's Background) is not counted,
        as ``abdicom export`` does not count it."""
        return sum(1 for s in self.segments if s.number != 0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["segment_count"] = self.user_segment_count
        return d

    def to_text(self) -> str:
        lines = [
            f"{self.path} ({self.size_bytes:,} bytes)",
            f"  SOP class         {self.sop_class} ({self.sop_class_uid})",
            f"  transfer syntax   {self.transfer_syntax} ({self.transfer_syntax_uid})",
            f"  type              {self.segmentation_type}, {self.frames} frames of {self.rows}x{self.columns}",
            f"  patient / study   {self.patient_id} / {self.study_description} ({self.study_instance_uid})",
            f"  series            {self.series_number}: {self.series_description} ({self.series_instance_uid})",
            f"  references series {self.referenced_series_uid} ({self.referenced_instances} instances)",
            f"  written by        {self.manufacturer} {self.software_versions}",
            f"  segments          {self.user_segment_count}" + (
                "  (plus Background, SegmentNumber 0)" if self.user_segment_count < len(self.segments) else ""),
        ]
        for s in sorted(self.segments, key=lambda s: (s.number == 0, s.number)):  # Background listed last
            if s.number == 0:
                lines.append(f"   background: {s.number:>4}  {s.label} (voxels not in any segment)")
                continue
            rgb = "" if s.color_rgb is None else " rgb(%d,%d,%d)" % tuple(s.color_rgb)
            size = "" if s.voxels is None else f"  {s.voxels:,} voxels, {s.volume_ml or 0.0:.3f} mL"
            lines.append(f"   {s.number:>4}  {s.label}{rgb}{size}")
            lines.append(f"         category {s.category}; type {s.type}"
                         + (f" ({s.type_modifier})" if s.type_modifier else ""))
            if s.anatomic_region:
                mod = f" ({s.anatomic_region_modifier})" if s.anatomic_region_modifier else ""
                lines.append(f"         region   {s.anatomic_region}{mod}")
            if s.tracking_id:
                lines.append(f"         tracking {s.tracking_id}")
            alg = s.algorithm_type or ""
            if s.algorithm_name:
                alg += f" {s.algorithm_name}"
            lines.append(f"         algorithm {alg.strip()}")
            if s.algorithm_parameters:
                lines.append(f"         parameters {s.algorithm_parameters}")
            if s.description:
                lines.append(f"         description {s.description}")
        return "\n".join(lines)


# ---------------------------------------------------------------- one summary, two sources
# The summary is built once (:func:`_summary`) from an accessor over either source: the
# raw walker's datasets (fast, no pydicom import) or pydicom's. The walker's own
# NotSupported signal (implicit VR, big endian, a character set, a VR it does not convert)
# is the only reason to use pydicom; a broken file is an InputFileError from either.


class _Walked:
    """Accessor over a walker :data:`~.walker.RawDataset`."""

    def __init__(self, ds: RawDataset) -> None:
        self.ds = ds

    def get(self, tag: int, default: Any = None) -> Any:
        from AdaptiveBrushDicomLib.dicom import walker

        return walker.value(self.ds, tag, default)

    def seq(self, tag: int) -> list["_Walked"]:
        from AdaptiveBrushDicomLib.dicom import walker

        items = walker.value(self.ds, tag) or []
        if not isinstance(items, list):
            raise walker.Malformed(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) should be a sequence")
        return [_Walked(i) for i in items]

    def has(self, tag: int) -> bool:
        return tag in self.ds


class _Pydicom:
    """Accessor over a pydicom Dataset (values converted to plain str / int / float / list)."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds

    def get(self, tag: int, default: Any = None) -> Any:
        elem = self.ds.get(tag)
        if elem is None or elem.value is None or elem.value == "":
            return default
        v = elem.value
        if elem.VR == "SQ":
            return v
        if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
            return [_plain(x) for x in v]
        return _plain(v)

    def seq(self, tag: int) -> list["_Pydicom"]:
        elem = self.ds.get(tag)
        if elem is None or elem.value is None:
            return []
        if elem.VR != "SQ":
            raise ValueError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) should be a sequence")
        return [_Pydicom(i) for i in elem.value]

    def has(self, tag: int) -> bool:
        return tag in self.ds


def _plain(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, bytes):
        return v
    return str(v)


def _lab_to_rgb(lab16: Sequence[int]) -> list[int]:
    """``colors.dicom_lab_to_rgb`` for one triple, in plain Python (same formulas, same
    constants; ``Testing/Python/test_fast_path.py`` checks equality on many colours)."""
    L = lab16[0] * 100.0 / 65535.0
    a = lab16[1] * 255.0 / 65535.0 - 128.0
    b = lab16[2] * 255.0 / 65535.0 - 128.0
    fy = (L + 16.0) / 116.0
    f = (fy + a / 500.0, fy, fy - b / 200.0)
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    xyz = [(v ** 3 if v ** 3 > eps else (116.0 * v - 16.0) / kappa) * w for v, w in zip(f, _D65_WHITE)]
    out = []
    for row in _XYZ_TO_RGB:
        lin = min(max(xyz[0] * row[0] + xyz[1] * row[1] + xyz[2] * row[2], 0.0), 1.0)
        c = 12.92 * lin if lin <= 0.0031308 else 1.055 * lin ** (1.0 / 2.4) - 0.055
        out.append(int(min(max(round(c * 255.0), 0), 255)))
    return out


#: colors._XYZ_TO_RGB and colors.D65_WHITE, as numpy computes them (repr round-trips).
_XYZ_TO_RGB = ((3.2404548360214087, -1.5371388501025751, -0.498531546868481),
               (-0.9692663898756538, 1.876010928842491, 0.041556082346673545),
               (0.05564341960421367, -0.20402585426769818, 1.057225162457929))
_D65_WHITE = (0.95047, 1.0000001, 1.08883)


def _code(items: Sequence[Any]) -> str | None:
    if not items:
        return None
    c = items[0]
    return f"{c.get(0x00080102)}:{c.get(0x00080100)} {c.get(0x00080104)}"


def _int(acc: Any, tag: int, name: str, path: Path, default: int | None = None) -> int:
    v = acc.get(tag, default)
    if isinstance(v, list):
        v = v[0] if v else None
    if v is None:
        raise InputFileError(f"{name} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is missing", path)
    try:
        return int(v)
    except (TypeError, ValueError):
        raise InputFileError(f"{name} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is not a number ({v!r})", path) from None


def _text(acc: Any, tag: int) -> str:
    v = acc.get(tag, "")
    if isinstance(v, list):
        return "\\".join(str(x) for x in v)
    return "" if v is None else str(v)


def _segment(item: Any, index: int, path: Path) -> SegmentInfo:
    lab = item.get(0x0062000D)
    rgb = None
    if lab is not None:
        lab = lab if isinstance(lab, list) else [lab]
        if len(lab) != 3:
            raise InputFileError(f"segment item {index + 1}: RecommendedDisplayCIELabValue (0062,000D) "
                                 f"has {len(lab)} values, not 3", path)
        rgb = _lab_to_rgb([int(v) for v in lab])
    alg = item.seq(0x00620007)
    params = _text(alg[0], 0x00660032) if alg and alg[0].has(0x00660032) else None
    type_seq = item.seq(0x0062000F)
    region = item.seq(0x00082218)
    modifier = _code(type_seq[0].seq(0x00620011)) if type_seq and type_seq[0].has(0x00620011) else None
    return SegmentInfo(
        number=_int(item, 0x00620004, f"segment item {index + 1}: SegmentNumber", path),
        label=_text(item, 0x00620005),
        category=_code(item.seq(0x00620003)),
        type=_code(type_seq),
        type_modifier=modifier,
        anatomic_region=_code(region),
        algorithm_type=_text(item, 0x00620008) or None,
        algorithm_name=_text(item, 0x00620009) or None,
        algorithm_parameters=params,
        color_rgb=rgb,
        description=_text(item, 0x00620006) or None,
        tracking_id=_text(item, 0x00620020) or None,
        anatomic_region_modifier=_code(region[0].seq(0x00082220)) if region else None,
    )


def _summary(acc: Any, ts: str, path: Path) -> SegInfo:
    """The summary, from either accessor (:class:`_Walked` or :class:`_Pydicom`).

    Raises
    ------
    InputFileError
        SOPClassUID is not a Segmentation, or a value the summary needs is broken (naming
        the tag).
    """
    sop = _text(acc, 0x00080016)
    if sop not in SEG_SOP_CLASS_UIDS:
        raise InputFileError(f"SOPClassUID (0008,0016) {sop or 'missing'} is not a Segmentation", path)
    segments = [_segment(item, i, path) for i, item in enumerate(acc.seq(0x00620002))]
    ref = acc.seq(0x00081115)
    ref_uid = _text(ref[0], 0x0020000E) if ref else None
    n_ref = len(ref[0].seq(0x0008114A)) if ref and ref[0].has(0x0008114A) else 0
    return SegInfo(
        path=str(path),
        sop_class_uid=sop,
        sop_class=SegSopClass(sop).long_name,
        transfer_syntax_uid=ts,
        transfer_syntax=transfer_syntax_name(ts),
        segmentation_type=_text(acc, 0x00620001),
        frames=_int(acc, 0x00280008, "NumberOfFrames", path, 1),
        rows=_int(acc, 0x00280010, "Rows", path), columns=_int(acc, 0x00280011, "Columns", path),
        patient_id=_text(acc, 0x00100020),
        study_instance_uid=_text(acc, 0x0020000D),
        study_description=_text(acc, 0x00081030),
        series_instance_uid=_text(acc, 0x0020000E),
        series_description=_text(acc, 0x0008103E),
        series_number=_text(acc, 0x00200011),
        referenced_series_uid=ref_uid,
        referenced_instances=n_ref,
        frame_of_reference_uid=_text(acc, 0x00200052),
        content_label=_text(acc, 0x00700080),
        manufacturer=_text(acc, 0x00080070),
        software_versions=_text(acc, 0x00181020),
        size_bytes=path.stat().st_size,
        segments=segments,
    )


def seg_info(path: str | Path) -> SegInfo:
    """Summary of the SEG at ``path``, read without decoding pixels.

    The raw walker reads it; pydicom only when the walker says :class:`~.walker.NotSupported`.

    Raises
    ------
    InputFileError
        Not a regular file, not DICOM, truncated or corrupt, not a Segmentation.
    """
    from AdaptiveBrushDicomLib.dicom import walker

    path = Path(path)
    walker.check_part10(path, what="SEG file")  # empty / not DICOM: our words, not pydicom's
    try:
        return _seg_info_pure(path)
    except walker.NotSupported:
        return _seg_info_pydicom(path)


def _seg_info_pure(path: Path) -> SegInfo:
    """The summary from the raw walker alone.

    Raises
    ------
    walker.NotSupported
        Not something the walker reads (the caller then uses pydicom).
    InputFileError
        A broken file.
    """
    from AdaptiveBrushDicomLib.dicom import walker

    header = walker.read_header(path)
    try:
        if walker.value(header.dataset, 0x00080005):
            raise walker.NotSupported("specific character set")
        return _summary(_Walked(header.dataset), header.transfer_syntax_uid, path)
    except walker.Malformed as exc:
        raise InputFileError(f"not a readable SEG: {exc}", path) from None


def _seg_info_pydicom(path: Path) -> SegInfo:
    from pydicom.errors import InvalidDicomError

    from AdaptiveBrushDicomLib.dicom import walker

    try:
        ds = walker.dcmread(path, stop_before_pixels=True)
        ts = str(ds.file_meta.TransferSyntaxUID)
        return _summary(_Pydicom(ds), ts, path)
    except InputFileError:
        raise
    except (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError, AttributeError, IndexError,
            RecursionError, UnicodeError, OverflowError) as exc:
        # pydicom converts lazily: a broken element surfaces while the summary reads it
        raise InputFileError(f"not a readable DICOM file ({type(exc).__name__}: {str(exc)[:200]})", path) from None


__all__ = ["seg_info", "SegInfo", "SegmentInfo"]
