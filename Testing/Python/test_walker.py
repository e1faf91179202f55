"""The one raw DICOM walker (dicom/walker.py) against files other software wrote.

pydicom's own test files (pydicom.data), highdicom and dcmqi SEGs, the dcmqi corpus and
ours in all five syntaxes: the walker reads what pydicom reads, says NotSupported (never a
wrong answer) for implicit VR / big endian, and refuses broken or bomb files in one line.
"""

from __future__ import annotations

import io
import struct
import zlib

import pydicom
import pytest
from pydicom.data import get_testdata_file

from abdicom_testkit import hostile
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.seg import info as seg_info

from conftest import corpus_path
from AdaptiveBrushDicomLib.errors import IncompleteFileError, InputFileError
from AdaptiveBrushDicomLib.io import limits

#: pydicom test files in Explicit VR Little Endian (plain, Deflated, encapsulated).
EXPLICIT = ["CT_small.dcm", "MR_small.dcm", "image_dfl.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm",
            "JPEGLSNearLossless_08.dcm", "MR_small_RLE.dcm"]
NOT_SUPPORTED = ["MR_small_implicit.dcm", "MR_small_bigendian.dcm", "rtplan.dcm"]

_TOP_TAGS = {"Rows": 0x00280010, "Columns": 0x00280011, "SOPInstanceUID": 0x00080018,
             "SOPClassUID": 0x00080016, "SeriesInstanceUID": 0x0020000E, "Modality": 0x00080060}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return hostile.write_seeds(tmp_path_factory.mktemp("seeds"))


def _testfile(name: str) -> str:
    path = get_testdata_file(name)  # files shipped inside the pydicom wheel (no download)
    assert path is not None, name
    return str(path)


def _compare(path) -> None:
    ref = pydicom.dcmread(path, stop_before_pixels=True)
    header = walker.read_header(path)
    assert header.transfer_syntax_uid == ref.file_meta.TransferSyntaxUID
    for keyword, tag in _TOP_TAGS.items():
        if keyword in ref:
            got = walker.value(header.dataset, tag)
            want = ref[keyword].value
            assert (int(got) if isinstance(want, int) else str(got)) == want, keyword
    assert set(header.dataset) == {int(e.tag) for e in ref if e.tag < 0x7FE00010}


@pytest.mark.parametrize("name", EXPLICIT)
def test_pydicom_test_files(name):
    path = _testfile(name)
    _compare(path)
    ds = walker.dcmread(path)
    ref = pydicom.dcmread(path)
    assert ds.PixelData == ref.PixelData and ds.SOPInstanceUID == ref.SOPInstanceUID


@pytest.mark.parametrize("name", NOT_SUPPORTED)
def test_not_supported_is_a_signal(name):
    with pytest.raises(walker.NotSupported):
        walker.read_header(_testfile(name))
    assert walker.dcmread(_testfile(name)).SOPInstanceUID == pydicom.dcmread(_testfile(name)).SOPInstanceUID


def test_every_writer_seg(seeds):
    """Ours (5 syntaxes), highdicom, dcmqi, corpus: walker == pydicom, and info's walker summary
    == its pydicom summary (one builder, two sources)."""
    corpus_path("dcmqi", "sparse-labelmap-noppv.dcm")  # the corpus seeds: skip (as every corpus test) without it
    names = set()
    for seed in seeds:
        _compare(seed.path)
        assert seg_info._seg_info_pure(seed.path) == seg_info._seg_info_pydicom(seed.path), seed.name
        names.add(seed.name.split("-")[0])
    assert {"ours", "highdicom", "corpus"} <= names


def test_iter_items_and_find_element(seeds):
    ds = pydicom.dcmread(seeds[0].path)
    raw = ds.get_item(0x52009230).value  # PerFrameFunctionalGroupsSequence, not converted yet
    items = list(walker.iter_items(raw, 0, len(raw)))
    assert len(items) == int(ds.NumberOfFrames)
    s, e, _ = items[0]
    assert walker.find_element(raw, s, e, 0x00209113) is not None  # PlanePositionSequence
    with pytest.raises(walker.Malformed):
        list(walker.iter_items(raw[:-3], 0, len(raw) - 3))


def test_deflate_bomb_capped(seeds, tmp_path):
    explicit = next(s for s in seeds if s.name == "ours-explicit")
    bomb = hostile.deflate_bomb(explicit.path, tmp_path / "bomb.dcm", inflated_bytes=1 << 30)
    assert walker.read_header(bomb).deflated  # the header alone is fine
    with pytest.raises(limits.LimitError, match="deflate bomb"):
        walker.dcmread(bomb)
    with pytest.raises(limits.LimitError, match="deflate bomb"):
        walker.check_inflated_size(bomb)
    ds = walker.dcmread(bomb, stop_before_pixels=True)
    assert ds.SOPInstanceUID == pydicom.dcmread(explicit.path).SOPInstanceUID


def test_truncated_and_corrupt_deflate(seeds, tmp_path):
    data = next(s for s in seeds if s.name == "ours-deflate").path.read_bytes()
    meta_end = 144 + struct.unpack_from("<I", data, 140)[0]
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: meta_end + 300])
    with pytest.raises(IncompleteFileError, match=r"the file is incomplete: it ends at byte [\d,]+, inside the Deflated "
                       r"data stream \([\d,]+ bytes of the dataset inflated\); copy it again from its source"):
        walker.read_header(cut)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(data[:meta_end] + b"\xff" * 64 + data[meta_end + 64:])
    with pytest.raises(InputFileError, match="corrupt"):
        walker.read_header(bad)


def test_header_size_and_depth_limits(tmp_path):
    body = io.BytesIO()
    meta = _meta(walker.DEFLATED)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    # an OB element declaring 300 MiB of header (zeros) before any pixel data
    element = b"\x09\x00\x10\x00OB\x00\x00" + struct.pack("<I", 300 << 20)
    body.write(c.compress(element))
    zeros = bytes(16 << 20)
    for _ in range(19):
        body.write(c.compress(zeros))
    body.write(c.flush())
    path = tmp_path / "big.dcm"
    path.write_bytes(meta + body.getvalue())
    with pytest.raises(limits.LimitError, match="header is larger than 256 MiB"):
        walker.read_header(path)


def _meta(ts: str) -> bytes:
    uid = ts.encode() + (b"\x00" if len(ts) % 2 else b"")
    elem = b"\x02\x00\x10\x00UI" + struct.pack("<H", len(uid)) + uid
    return b"\x00" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00" + struct.pack("<I", len(elem)) + elem
