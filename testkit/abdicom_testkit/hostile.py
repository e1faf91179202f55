"""Hostile and broken inputs for the tests: valid seed SEGs of every writer, seeded mutants, bombs.

Seeds: our writer in all five transfer syntaxes, highdicom (LABELMAP and BINARY), dcmqi's
``itkimage2segimage`` (when installed) and the dcmqi corpus files. Mutants: truncations,
byte flips, element edits (oversize Rows/Columns/NumberOfFrames, broken geometry ...).
Bombs: a Deflated SEG whose pixel data inflates to gigabytes, a gzip ``.seg.nrrd`` bomb,
a JPEG-LS frame that claims 60000 x 60000 pixels.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"


@dataclass
class Seed:
    """A valid SEG: its name, path and the folder of its reference series (or None)."""

    name: str
    path: Path
    reference: Path | None


def phantom_reference(folder: Path, shape: tuple[int, int, int] = (4, 32, 36)):
    """A tiny synthetic series in ``folder`` and a two-segment LabelMap on its grid."""
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.core.segment import Segment
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series
    from abdicom_testkit.phantom import phantom_grid

    grid = phantom_grid(shape=shape)
    rng = np.random.default_rng(3)
    image = rng.integers(0, 500, size=grid.shape_kji).astype(np.int16)
    create_synthetic_series(image, grid, folder, patient_id="AdaptiveBrush_hostile")
    labels = np.zeros(grid.shape_kji, dtype=np.uint16)
    labels[:, 2:8, 3:9] = 1
    labels[1:3, 19:30, 20:33] = 2
    segments = [Segment(label=1, name="Tumor", color=(255, 0, 0)), Segment(label=2, name="Edema", color=(0, 0, 255))]
    ref = ReferenceSeries.from_folder(folder)
    return ref, LabelMap(labels, ref.grid, segments)


def write_seeds(out: Path, *, dcmqi: bool = True) -> list[Seed]:
    """Write valid SEGs of every writer available here into ``out``."""
    from AdaptiveBrushDicomLib.dicom.compression import Compression
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

    out.mkdir(parents=True, exist_ok=True)
    ref_dir = out / "ref"
    ref, lm = phantom_reference(ref_dir)
    seeds = []
    for comp in Compression:
        path = out / f"ours_{comp.cli_name}.dcm"
        write_seg(lm, ref, path, compression=comp)
        seeds.append(Seed(f"ours-{comp.cli_name}", path, ref_dir))
    seeds += _highdicom_seeds(out, ref_dir, lm)
    if dcmqi:
        seeds += _dcmqi_seeds(out)
    for p in sorted((CORPUS / "dcmqi").glob("*.dcm")):
        seeds.append(Seed(f"corpus-{p.stem}", p.resolve(), None))
    return seeds


def _highdicom_seeds(out: Path, ref_dir: Path, lm) -> list[Seed]:
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = sorted((pydicom.dcmread(p) for p in ref_dir.glob("*.dcm")), key=lambda d: float(d.ImagePositionPatient[2]))
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n, segment_label=name, segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for n, name in ((1, "Tumor"), (2, "Edema"))
    ]
    seeds = []
    for kind in (hd.seg.SegmentationTypeValues.LABELMAP, hd.seg.SegmentationTypeValues.BINARY):
        pixel = lm.array.astype(np.uint8)
        if kind == hd.seg.SegmentationTypeValues.BINARY:
            pixel = np.stack([pixel == 1, pixel == 2], axis=-1).astype(np.uint8)
        ds = hd.seg.Segmentation(
            source_images=sources, pixel_array=pixel, segmentation_type=kind, segment_descriptions=descriptions,
            series_instance_uid=hd.UID(), series_number=7, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer="hostile-test", manufacturer_model_name="highdicom", software_versions=hd.__version__,
            device_serial_number="0")
        path = out / f"highdicom_{kind.value.lower()}.dcm"
        ds.save_as(path, enforce_file_format=True)
        seeds.append(Seed(f"highdicom-{kind.value.lower()}", path, ref_dir))
    return seeds


def _dcmqi_seeds(out: Path) -> list[Seed]:
    from abdicom_testkit.peers import dcmqi_encode, find_tool

    ct = CORPUS / "dcmqi" / "ct-3slice"
    meta = CORPUS / "dcmqi" / "seg-example.json"
    label = CORPUS / "dcmqi" / "liver_seg.nrrd"
    if find_tool("itkimage2segimage") is None or not ct.is_dir():
        return []
    seeds = []
    for labelmap in (True, False):
        path = out / f"dcmqi_{'labelmap' if labelmap else 'binary'}.dcm"
        run = dcmqi_encode([label], meta, ct, path, labelmap=labelmap)
        if run.ok and path.is_file():
            seeds.append(Seed(f"dcmqi-{'labelmap' if labelmap else 'binary'}", path, ct.resolve()))
    return seeds


# ------------------------------------------------------------------ mutations
Mutant = tuple[str, bytes]


def _edit(data: bytes, change: Callable) -> bytes | None:
    """Apply ``change(ds)`` to the parsed file and write it back in its own transfer syntax."""
    import pydicom
    from pydicom import config

    mode = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE  # hostile values on purpose
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        change(ds)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=False)
        return buf.getvalue()
    except Exception:  # the edit does not apply to this file (e.g. no such element)
        return None
    finally:
        config.settings.writing_validation_mode = mode


def nested_sequences(data: bytes, depth: int = 5000) -> bytes:
    """``data`` (Explicit VR LE, plain or Deflated) with a ContentSequence nested ``depth``
    levels deep, spliced in as raw bytes (pydicom cannot write it: it recurses)."""
    meta_end = 144 + struct.unpack_from("<I", data, 140)[0]
    deflated = b"1.2.840.10008.1.2.1.99" in data[:meta_end]
    body = zlib.decompress(data[meta_end:], -15) if deflated else data[meta_end:]
    opening = b"\x40\x00\x30\xa7SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    inner = b"\x40\x00\x43\xa0SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    closing = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    nested = opening + inner * depth + closing * (depth + 1)
    from AdaptiveBrushDicomLib.dicom import walker

    at = len(body)
    for tag, _vr, _vs, _ve, start in walker.iter_elements(body, 0, len(body)):
        if tag > 0x0040A730:
            at = start
            break
    body = body[:at] + nested + body[at:]
    if deflated:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = c.compress(body) + c.flush()
    return data[:meta_end] + body


def _first_frame_group(ds, name):
    return getattr(ds.PerFrameFunctionalGroupsSequence[0], name)[0]


def _shared(ds, name):
    """An item of ``name`` in the shared group if there, else in frame 1's group."""
    shared = ds.SharedFunctionalGroupsSequence[0]
    if name in shared:
        return getattr(shared, name)[0]
    return _first_frame_group(ds, name)


def _set(name: str, value):
    def change(ds):
        setattr(ds, name, value)
    return change


def _set_in(group: str, name: str, value):
    def change(ds):
        setattr(_shared(ds, group), name, value)
    return change


def _set_position(value):
    def change(ds):
        from pydicom.dataelem import DataElement

        item = _first_frame_group(ds, "PlanePositionSequence")
        try:
            item.ImagePositionPatient = value
        except ValueError:  # not numbers: stored as text (pydicom will not make a DS of it)
            item[0x00200032] = DataElement(0x00200032, "LO", "\\".join(value))
    return change


def _del_segment_number(ds):
    del ds.SegmentSequence[-1].SegmentNumber


def _latin1_label(ds):
    from pydicom.dataelem import DataElement

    ds.SegmentSequence[-1][0x00620005] = DataElement(0x00620005, "LO", "L\xe4sion".encode("latin-1"))


def _bad_utf8_label(ds):
    from pydicom.dataelem import DataElement

    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SegmentSequence[-1][0x00620005] = DataElement(0x00620005, "LO", b"L\xc3\x28sion\xff")


EDITS: list[tuple[str, Callable]] = [
    ("rows-65535", _set("Rows", 65535)),
    ("columns-65535", _set("Columns", 65535)),
    ("rows-columns-65535", lambda ds: (_set("Rows", 65535)(ds), _set("Columns", 65535)(ds))),
    ("frames-huge", _set("NumberOfFrames", 2_000_000_000)),
    ("rows-0", _set("Rows", 0)),
    ("frames-0", _set("NumberOfFrames", 0)),
    ("bits-1", _set("BitsAllocated", 1)),
    ("pixel-spacing-0", _set_in("PixelMeasuresSequence", "PixelSpacing", [0, 0])),
    ("pixel-spacing-1-value", _set_in("PixelMeasuresSequence", "PixelSpacing", [1.0])),
    ("pixel-spacing-nan", _set_in("PixelMeasuresSequence", "PixelSpacing", ["NaN", "1"])),
    ("slice-spacing-negative", _set_in("PixelMeasuresSequence", "SpacingBetweenSlices", -2.0)),
    ("slice-spacing-tiny", _set_in("PixelMeasuresSequence", "SpacingBetweenSlices", 1e-9)),
    ("orientation-zero", _set_in("PlaneOrientationSequence", "ImageOrientationPatient", [0] * 6)),
    ("orientation-nan", _set_in("PlaneOrientationSequence", "ImageOrientationPatient", ["NaN"] * 6)),
    ("orientation-parallel", _set_in("PlaneOrientationSequence", "ImageOrientationPatient", [1, 0, 0, 1, 0, 0])),
    ("orientation-skewed", _set_in("PlaneOrientationSequence", "ImageOrientationPatient",
                                   [1, 0, 0, 0.5, 0.8660254, 0])),
    ("orientation-5-values", _set_in("PlaneOrientationSequence", "ImageOrientationPatient", [1, 0, 0, 0, 1])),
    ("position-2-values", _set_position([1.0, 2.0])),
    ("position-text", _set_position(["a", "b", "c"])),
    ("position-nan", _set_position(["NaN", "0", "0"])),
    ("position-huge", _set_position(["1e300", "0", "0"])),
    ("segment-number-missing", _del_segment_number),
    ("label-latin1-undeclared", _latin1_label),
    ("label-invalid-utf8", _bad_utf8_label),
    ("no-per-frame", lambda ds: delattr(ds, "PerFrameFunctionalGroupsSequence")),
    ("sop-class-ct", _set("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2")),
]


def mutants(data: bytes, rng: np.random.Generator, *, truncations: int = 6, flips: int = 6,
            edits: bool = True) -> Iterator[Mutant]:
    """Seeded mutants of the file bytes ``data``."""
    n = len(data)
    cuts = sorted(set([8, 131, 140, 200, n // 2, n - 1] + [int(v) for v in rng.integers(132, n, truncations)]))
    for cut in cuts[: truncations + 4]:
        yield f"truncated@{cut}", data[:cut]
    for _ in range(flips):
        pos = int(rng.integers(132, n))
        b = bytearray(data)
        b[pos] ^= 1 << int(rng.integers(0, 8))
        yield f"flip@{pos}", bytes(b)
    burst = bytearray(data)
    start = int(rng.integers(132, max(133, n - 64)))
    burst[start:start + 64] = rng.integers(0, 256, min(64, n - start), dtype=np.uint8).tobytes()
    yield f"burst@{start}", bytes(burst)
    if edits:
        for name, change in EDITS:
            edited = _edit(data, change)
            if edited is not None:
                yield name, edited
        yield "nested-5000", nested_sequences(data)


# ------------------------------------------------------------------ bombs
def _zeros_deflate(n_bytes: int, wbits: int = -15) -> bytes:
    """A deflate (or gzip, ``wbits=31``) stream of ``n_bytes`` zeros, made in milliseconds:
    after a full flush the compressed form of each further 16 MiB block is the same bytes."""
    block = 16 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(block)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    blocks = max(1, n_bytes // block)
    if blocks == 1:
        return first + c.flush()
    tail = c.compress(b"") + c.flush()
    return first + again * (blocks - 1) + tail


def deflate_bomb(explicit_seg: Path, out: Path, inflated_bytes: int = 8 << 30) -> Path:
    """A Deflated SEG, valid up to its pixel data, whose PixelData inflates to ``inflated_bytes``.

    Made from one of our Explicit VR LE SEGs: its meta says Deflated, its body is the
    original header deflated, followed (in the same stream) by a PixelData element of
    declared length ``inflated_bytes`` made of zeros.
    """
    import pydicom

    ds = pydicom.dcmread(explicit_seg)
    data = explicit_seg.read_bytes()
    meta_end = 144 + struct.unpack_from("<I", data, 140)[0]
    body = data[meta_end:]
    pix = body.find(b"\xe0\x7f\x10\x00")
    header = body[:pix]
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    meta = data[:meta_end].replace(b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.1.99")
    # keep the meta group length right (the UID grew by 2 bytes: "\x00" -> ".99")
    meta = meta[:140] + struct.pack("<I", meta_end - 144 + 2) + meta[144:]
    # the UID element's own length field
    ts_at = meta.find(b"1.2.840.10008.1.2.1.99")
    meta = meta[:ts_at - 2] + struct.pack("<H", 22) + meta[ts_at:]
    pixel_element = b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", min(inflated_bytes, 0xFFFFFFFE))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = c.compress(header + pixel_element) + c.flush(zlib.Z_FULL_FLUSH)
    out.write_bytes(meta + start + _zeros_deflate(inflated_bytes))
    return out


def gzip_seg_nrrd_bomb(out: Path, inflated_bytes: int = 8 << 30) -> Path:
    """A ``.seg.nrrd`` whose header says 16 x 16 x 16 voxels and whose gzip data inflates to
    ``inflated_bytes``."""
    header = (
        "NRRD0004\ntype: unsigned char\ndimension: 3\nspace: left-posterior-superior\nsizes: 16 16 16\n"
        "space directions: (1,0,0) (0,1,0) (0,0,1)\nkinds: domain domain domain\nencoding: gzip\n"
        "space origin: (0,0,0)\nSegment0_ID:=Segment_1\nSegment0_LabelValue:=1\nSegment0_Layer:=0\n"
        "Segment0_Name:=Bomb\n\n"
    )
    out.write_bytes(header.encode() + _zeros_deflate(inflated_bytes, wbits=31))
    return out


def nhdr_dev_zero(out: Path) -> Path:
    """A detached NRRD header whose data file is ``/dev/zero`` (sizes 1024^3: 1 GiB, within the default --max-voxels)."""
    out.write_text("NRRD0004\ntype: unsigned char\ndimension: 3\nsizes: 1024 1024 1024\nencoding: raw\n"
                   "space directions: (1,0,0) (0,1,0) (0,0,1)\nspace origin: (0,0,0)\ndata file: /dev/zero\n\n")
    return out


def jpegls_bomb(jpegls_seg: Path, out: Path, size: int = 60000) -> Path:
    """Our JPEG-LS SEG whose every frame is replaced by a tiny codestream of ``size`` x ``size``
    zeros (what the header's Rows x Columns does not say)."""
    import pydicom
    from pydicom.encaps import encapsulate

    from jpeg_ls import encode

    ds = pydicom.dcmread(jpegls_seg)
    n = int(getattr(ds, "NumberOfFrames", 1))
    # a small codestream: encode a small image, then patch its SOF55 height/width
    frame = bytearray(encode(np.zeros((16, 16), dtype=np.uint8)))
    sof = frame.find(b"\xff\xf7")
    struct.pack_into(">HH", frame, sof + 5, size, size)
    ds.PixelData = encapsulate([bytes(frame)] * n)
    ds.save_as(out, enforce_file_format=True)
    return out


def results_json_bombs(folder: Path) -> dict[str, bytes]:
    """results.json contents that must be refused cleanly."""
    deep = "[" * 5000 + "]" * 5000
    base = {"trials": [{"trial_number": 0, "params": {}, "value": 0.5}]}
    big_number = json.dumps(base).replace("0.5", "1" + "0" * 5000)
    nul = dict(base, trials=[dict(base["trials"][0], dicom_seg_path="dicom/a\u0000b.dcm", dicom_status="migrated")])
    return {"deep": deep.encode(), "number": big_number.encode(), "nul": json.dumps(nul).encode()}


YAML_BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
) + "\n"


__all__ = ["CORPUS", "EDITS", "Seed", "YAML_BOMB", "deflate_bomb", "gzip_seg_nrrd_bomb", "jpegls_bomb",
           "mutants", "nested_sequences", "nhdr_dev_zero", "phantom_reference", "results_json_bombs", "write_seeds"]
