"""Header summary of a SEG file (``abdicom info``), read without decoding pixels.

Start-up is the cost of this command: ``import pydicom`` alone takes ~0.3-0.7 s (it
imports numpy and its pixel handlers, ``requests`` for its data manager, ...). So the
header is first read by a small pure-Python parser of Explicit VR Little Endian (plain or
Deflated, which is what we and dcmqi write) that imports neither pydicom nor numpy;
anything it does not handle (implicit VR, big endian, a character set other than the
default, a parse error) goes to the pydicom reader, which gives the same result.
"""

from __future__ import annotations


from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from AdaptiveBrushDicomLib.dicom.compression import Compression, ReadOnlySyntax, transfer_syntax_name
from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS, SegSopClass
from AdaptiveBrushDicomLib.errors import InputFileError



def _code(seq) -> str | None:
    if not seq:
        return None
    c = seq[0]
    return f"{c.CodingSchemeDesignator}:{c.CodeValue} {c.CodeMeaning}"


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

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
            f"  segments          {len(self.segments)}",
        ]
        for s in self.segments:
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


# ---------------------------------------------------------------- pure-Python reader
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_TEXT_VRS = {"LT", "ST", "UT"}  # one value, backslash allowed
_DEFLATED = Compression.DEFLATE.uid
#: transfer syntaxes whose dataset (outside Pixel Data) is Explicit VR Little Endian
_EXPLICIT_LE = tuple(m.uid for m in Compression) + tuple(
    m.uid for m in ReadOnlySyntax if m is not ReadOnlySyntax.IMPLICIT)


class _Unsupported(Exception):
    """The pure reader cannot read this file; use pydicom."""


class _Buffer:
    """Bytes of the dataset after the file meta, inflated on demand for Deflated files."""

    def __init__(self, fh, deflated: bool):
        import zlib

        self.fh, self.data = fh, b""
        self.inflate = zlib.decompressobj(-15) if deflated else None

    def need(self, end: int) -> None:
        while len(self.data) < end:
            chunk = self.fh.read(1 << 16)
            if not chunk:
                if self.inflate is not None and self.inflate.unconsumed_tail:
                    chunk = b""
                else:
                    raise _Unsupported("truncated")
            if self.inflate is not None:
                more = self.inflate.decompress(self.inflate.unconsumed_tail + chunk, 1 << 20)
                if not more and not chunk:
                    raise _Unsupported("truncated")
                self.data += more
            else:
                self.data += chunk


def _parse(buf: _Buffer, pos: int, end: int | None, top: bool) -> tuple[dict, int]:
    """{tag: (vr, value)} of one dataset level; SQ values are lists of such dicts."""
    import struct

    out: dict[int, tuple[str, object]] = {}
    while end is None or pos < end:
        try:
            buf.need(pos + 8)
        except _Unsupported:
            if top and end is None:
                return out, pos  # end of file
            raise
        group, elem = struct.unpack_from("<HH", buf.data, pos)
        tag = group << 16 | elem
        if tag == 0xFFFEE00D:
            return out, pos + 8
        if top and tag >= 0x7FE00010:
            return out, pos  # stop before pixels
        vr = bytes(buf.data[pos + 4:pos + 6])
        if vr in _LONG_VRS:
            buf.need(pos + 12)
            length = struct.unpack_from("<I", buf.data, pos + 8)[0]
            start = pos + 12
        elif vr.isalpha() and vr.isupper():
            length = struct.unpack_from("<H", buf.data, pos + 6)[0]
            start = pos + 8
        else:
            raise _Unsupported("not explicit VR")
        v = vr.decode()
        if v == "SQ":
            items, after = _parse_items(buf, start, None if length == 0xFFFFFFFF else start + length)
            out[tag] = ("SQ", items)
            pos = after
            continue
        if length == 0xFFFFFFFF:
            raise _Unsupported("undefined length")
        buf.need(start + length)
        out[tag] = (v, bytes(buf.data[start:start + length]))
        pos = start + length
    return out, pos


def _parse_items(buf: _Buffer, pos: int, end: int | None) -> tuple[list, int]:
    import struct

    items: list[Any] = []
    while end is None or pos < end:
        buf.need(pos + 8)
        group, elem, length = struct.unpack_from("<HHI", buf.data, pos)
        tag = group << 16 | elem
        if tag == 0xFFFEE0DD:
            return items, pos + 8
        if tag != 0xFFFEE000:
            raise _Unsupported("expected an item")
        if length == 0xFFFFFFFF:
            item, pos = _parse(buf, pos + 8, None, False)
        else:
            item, _ = _parse(buf, pos + 8, pos + 8 + length, False)
            pos = pos + 8 + length
        items.append(item)
    return items, pos


def _value(ds: dict, tag: int, default=None):
    """Element value as pydicom would give it (str / int / float / list / None)."""
    import struct

    if tag not in ds:
        return default
    vr, raw = ds[tag]
    if vr == "SQ":
        return raw
    if vr in ("US", "SS", "UL", "SL"):
        fmt = {"US": "H", "SS": "h", "UL": "I", "SL": "i"}[vr]
        n = len(raw) // struct.calcsize(fmt)
        vals = list(struct.unpack(f"<{n}{fmt}", raw))
        return None if n == 0 else vals[0] if n == 1 else vals
    if vr in ("OB", "OW", "UN", "OF", "OD", "OL", "FL", "FD", "AT"):
        raise _Unsupported(f"VR {vr}")
    text = raw.decode("ascii")  # raises for non-ASCII: pydicom decides the charset then
    if vr == "UI":
        text = text.rstrip("\x00")
    elif vr in _TEXT_VRS:
        text = text.rstrip(" \x00")
    else:
        text = text.strip(" \x00") if vr in ("IS", "DS", "DA", "TM", "DT", "CS", "AS") else text.rstrip(" \x00")
    if vr not in _TEXT_VRS and "\\" in text:
        raise _Unsupported("multi-valued")
    if vr == "IS":
        return int(text) if text else None
    if vr == "DS":
        return float(text) if text else None
    return text


def _lab_to_rgb(lab16) -> list[int]:
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


def _code_pure(seq) -> str | None:
    if not seq:
        return None
    c = seq[0]
    return f"{_value(c, 0x00080102)}:{_value(c, 0x00080100)} {_value(c, 0x00080104)}"


def _seg_info_pure(path: Path) -> SegInfo:
    import struct

    with open(path, "rb") as fh:
        head = fh.read(132)
        if len(head) < 132 or head[128:132] != b"DICM":
            raise _Unsupported("no preamble")
        meta_buf = _Buffer(fh, False)
        meta_buf.need(12)
        if meta_buf.data[:4] != b"\x02\x00\x00\x00":
            raise _Unsupported("no group length")
        meta, pos = _parse(meta_buf, 0, 12 + struct.unpack_from("<I", meta_buf.data, 8)[0], False)
        ts = _value(meta, 0x00020010, "")
        if ts not in _EXPLICIT_LE:
            raise _Unsupported(f"transfer syntax {ts}")
        rest = meta_buf.data[pos:]
        buf = _Buffer(fh, ts == _DEFLATED)
        if buf.inflate is not None:
            buf.data = buf.inflate.decompress(rest, 1 << 20)
        else:
            buf.data = rest
        ds, _ = _parse(buf, 0, None, True)
    if _value(ds, 0x00080005):
        raise _Unsupported("specific character set")
    sop = _value(ds, 0x00080016, "")
    if sop not in SEG_SOP_CLASS_UIDS:
        raise InputFileError(f"SOPClassUID (0008,0016) {sop or 'missing'} is not a Segmentation", path)
    segments = []
    for item in _value(ds, 0x00620002, []) or []:
        lab = _value(item, 0x0062000D)
        rgb = None if lab is None else _lab_to_rgb(lab if isinstance(lab, list) else [lab])
        alg = _value(item, 0x00620007)
        params = str(_value(alg[0], 0x00660032)) if alg and 0x00660032 in alg[0] else None
        type_seq = _value(item, 0x0062000F)
        region = _value(item, 0x00082218)
        modifier = None
        if type_seq and 0x00620011 in type_seq[0]:
            modifier = _code_pure(_value(type_seq[0], 0x00620011))
        segments.append(SegmentInfo(
            number=int(_value(item, 0x00620004)),
            label=str(_value(item, 0x00620005, "")),
            category=_code_pure(_value(item, 0x00620003)),
            type=_code_pure(type_seq),
            type_modifier=modifier,
            anatomic_region=_code_pure(_value(item, 0x00082218)),
            algorithm_type=str(_value(item, 0x00620008, "")) or None,
            algorithm_name=str(_value(item, 0x00620009, "")) or None,
            algorithm_parameters=params,
            color_rgb=rgb,
            description=str(_value(item, 0x00620006, "")) or None,
            tracking_id=str(_value(item, 0x00620020, "")) or None,
            anatomic_region_modifier=_code_pure(_value(region[0], 0x00082220)) if region else None,
        ))
    ref = _value(ds, 0x00081115)
    ref_uid = str(_value(ref[0], 0x0020000E)) if ref else None
    n_ref = len(_value(ref[0], 0x0008114A) or []) if ref and 0x0008114A in ref[0] else 0
    frames = _value(ds, 0x00280008)
    return SegInfo(
        path=str(path),
        sop_class_uid=sop,
        sop_class=SegSopClass(sop).long_name,
        transfer_syntax_uid=ts,
        transfer_syntax=transfer_syntax_name(ts),
        segmentation_type=str(_value(ds, 0x00620001, "")),
        frames=int(frames) if frames is not None else 1,
        rows=int(_value(ds, 0x00280010)), columns=int(_value(ds, 0x00280011)),
        patient_id=str(_value(ds, 0x00100020, "")),
        study_instance_uid=str(_value(ds, 0x0020000D, "")),
        study_description=str(_value(ds, 0x00081030, "")),
        series_instance_uid=str(_value(ds, 0x0020000E, "")),
        series_description=str(_value(ds, 0x0008103E, "")),
        series_number=str(_value(ds, 0x00200011, "")),
        referenced_series_uid=ref_uid,
        referenced_instances=n_ref,
        frame_of_reference_uid=str(_value(ds, 0x00200052, "")),
        content_label=str(_value(ds, 0x00700080, "")),
        manufacturer=str(_value(ds, 0x00080070, "")),
        software_versions=str(_value(ds, 0x00181020, "")),
        size_bytes=path.stat().st_size,
        segments=segments,
    )


def seg_info(path: str | Path) -> SegInfo:
    """Summary of the SEG at ``path`` (pure-Python reader, pydicom when it cannot)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError("no such file; check the path", path)
    try:
        return _seg_info_pure(path)
    except InputFileError:
        raise
    except Exception:  # _Unsupported, or anything unexpected: pydicom reads it
        return _seg_info_pydicom(path)


def _seg_info_pydicom(path: str | Path) -> SegInfo:
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    if not path.is_file():
        raise InputFileError("no such file; check the path", path)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise InputFileError(f"not a readable DICOM file ({exc})", path) from None
    sop = str(getattr(ds, "SOPClassUID", ""))
    if sop not in SEG_SOP_CLASS_UIDS:
        raise InputFileError(f"SOPClassUID (0008,0016) {sop or 'missing'} is not a Segmentation", path)
    from AdaptiveBrushDicomLib.core.colors import dicom_lab_to_rgb

    segments = []
    for item in getattr(ds, "SegmentSequence", []):
        lab = getattr(item, "RecommendedDisplayCIELabValue", None)
        rgb = None if lab is None else [int(v) for v in dicom_lab_to_rgb([int(v) for v in lab])]
        alg = getattr(item, "SegmentationAlgorithmIdentificationSequence", None)
        params = str(alg[0].AlgorithmParameters) if alg and "AlgorithmParameters" in alg[0] else None
        type_seq = getattr(item, "SegmentedPropertyTypeCodeSequence", None)
        region = getattr(item, "AnatomicRegionSequence", None)
        modifier = None
        if type_seq and "SegmentedPropertyTypeModifierCodeSequence" in type_seq[0]:
            modifier = _code(type_seq[0].SegmentedPropertyTypeModifierCodeSequence)
        segments.append(SegmentInfo(
            number=int(item.SegmentNumber),
            label=str(getattr(item, "SegmentLabel", "")),
            category=_code(getattr(item, "SegmentedPropertyCategoryCodeSequence", None)),
            type=_code(type_seq),
            type_modifier=modifier,
            anatomic_region=_code(getattr(item, "AnatomicRegionSequence", None)),
            algorithm_type=str(getattr(item, "SegmentAlgorithmType", "")) or None,
            algorithm_name=str(getattr(item, "SegmentAlgorithmName", "")) or None,
            algorithm_parameters=params,
            color_rgb=rgb,
            description=str(getattr(item, "SegmentDescription", "")) or None,
            tracking_id=str(getattr(item, "TrackingID", "")) or None,
            anatomic_region_modifier=_code(getattr(region[0], "AnatomicRegionModifierSequence", None))
            if region else None,
        ))
    ref = getattr(ds, "ReferencedSeriesSequence", None)
    ref_uid = str(ref[0].SeriesInstanceUID) if ref else None
    n_ref = len(ref[0].ReferencedInstanceSequence) if ref and "ReferencedInstanceSequence" in ref[0] else 0
    ts = str(ds.file_meta.TransferSyntaxUID)
    return SegInfo(
        path=str(path),
        sop_class_uid=sop,
        sop_class=SegSopClass(sop).long_name,
        transfer_syntax_uid=ts,
        transfer_syntax=transfer_syntax_name(ts),
        segmentation_type=str(getattr(ds, "SegmentationType", "")),
        frames=int(getattr(ds, "NumberOfFrames", 1)),
        rows=int(ds.Rows), columns=int(ds.Columns),
        patient_id=str(getattr(ds, "PatientID", "")),
        study_instance_uid=str(getattr(ds, "StudyInstanceUID", "")),
        study_description=str(getattr(ds, "StudyDescription", "")),
        series_instance_uid=str(getattr(ds, "SeriesInstanceUID", "")),
        series_description=str(getattr(ds, "SeriesDescription", "")),
        series_number=str(getattr(ds, "SeriesNumber", "")),
        referenced_series_uid=ref_uid,
        referenced_instances=n_ref,
        frame_of_reference_uid=str(getattr(ds, "FrameOfReferenceUID", "")),
        content_label=str(getattr(ds, "ContentLabel", "")),
        manufacturer=str(getattr(ds, "Manufacturer", "")),
        software_versions=str(getattr(ds, "SoftwareVersions", "")),
        size_bytes=path.stat().st_size,
        segments=segments,
    )


__all__ = ["seg_info", "SegInfo", "SegmentInfo"]
