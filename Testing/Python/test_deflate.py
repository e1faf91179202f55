"""``io/deflate.py``: the deflate backend, deflating in parallel parts, gzip; and the files
written with it (SEG pixel data, ``.seg.nrrd`` voxels), read back by readers we did not
write: the standard ``zlib`` and ``gzip`` modules, pydicom, pynrrd, slicerio, SimpleITK
(ITK's NRRD reader, the one Slicer uses)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from AdaptiveBrushDicomLib.io import deflate

SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"  # the empty stored block a sync flush ends with


def _labelmap_like(shape=(60, 200, 256), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = np.zeros(shape, dtype=np.uint8)
    for label in range(1, 8):
        k, j, i = (rng.integers(0, s) for s in shape)
        arr[max(0, k - 9):k + 9, max(0, j - 30):j + 30, max(0, i - 25):i + 25] = label
    arr[rng.random(shape) < 0.002] = 9  # some noise, so parts differ
    return arr


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_parallel_parts_are_one_valid_stream(threads):
    arr = _labelmap_like()
    pieces = [memoryview(arr[k]).cast("B") for k in range(arr.shape[0])] + [b"\x00"]
    parts = deflate.deflate_parallel(pieces, 6, threads)
    assert len(parts) == threads
    for part in parts[:-1]:
        assert part.endswith(SYNC_FLUSH_TAIL)  # byte-aligned, not final
    stream = b"".join(parts)
    d = zlib.decompressobj(-15)  # the standard zlib, whatever backend wrote it
    assert d.decompress(stream) == arr.tobytes() + b"\x00"
    assert d.eof and d.unused_data == b""
    one = b"".join(deflate.deflate_parallel(pieces, 6, 1))
    assert len(stream) <= len(one) * 1.05 + 64  # a part boundary costs a few bytes


def test_small_data_is_not_split_and_errors_reach_the_caller():
    small = [b"abc" * 1000] * 20  # 60 kB: below MIN_PART_BYTES per part
    assert len(deflate.deflate_parallel(small, 6, 4)) == 1
    big = [memoryview(np.zeros(1 << 18, np.uint8)).cast("B")] * 16
    with pytest.raises(ValueError):
        deflate.deflate_parallel(big, 42, 2)  # no level 42: raised in the calling thread


def test_write_gzip_is_gzip_and_deterministic(tmp_path):
    arr = _labelmap_like(seed=1)
    a, b = tmp_path / "a.gz", tmp_path / "b.gz"
    with open(a, "wb") as fh:
        n = deflate.write_gzip(fh, arr, 6, 2)
    with open(b, "wb") as fh:
        deflate.write_gzip(fh, arr, 6, 2)
    assert n == a.stat().st_size and a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()) == arr.tobytes()  # CRC32 and ISIZE checked by gzip
    with open(a, "wb") as fh:
        deflate.write_gzip(fh, b"", 6)
    assert gzip.decompress(a.read_bytes()) == b""


def test_backend_follows_abdicom_zlib():
    code = "from AdaptiveBrushDicomLib.io import deflate; from AdaptiveBrushDicomLib.dicom.seg import fast; " \
           "print(deflate.BACKEND, fast.DEFLATE_BACKEND)"
    env = dict(os.environ, ABDICOM_ZLIB="stdlib")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["zlib", "zlib"]
    try:
        import zlib_ng  # noqa: F401
    except ImportError:
        return
    env.pop("ABDICOM_ZLIB")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["zlib_ng.zlib_ng", "zlib_ng.zlib_ng"]


def test_seg_pixel_data_in_parts_reads_back(tmp_path, monkeypatch, phantom_series):
    """A SEG whose frames were deflated in two parts: pydicom (its own inflate) reads the
    PixelData of the same SEG written uncompressed, and our reader gives the voxels back."""
    import pydicom

    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.dicom.seg import fast as seg_fast
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

    _image, labels, segments, grid, ref = phantom_series
    monkeypatch.setattr(deflate, "MIN_PART_BYTES", 1024)  # the phantom's frames are small
    calls = []
    real = deflate.deflate_parallel

    def spy(pieces, level, threads=None):
        out = real(pieces, level, threads)
        calls.append(len(out))
        return out

    monkeypatch.setattr(deflate, "deflate_parallel", spy)
    monkeypatch.setattr(seg_fast, "DEFLATE_THREADS", 2)
    out = tmp_path / "s.dcm"
    write_seg(LabelMap(labels, grid, segments), ref, out)
    assert calls == [2]
    ds = pydicom.dcmread(out)  # pydicom inflates the whole dataset itself
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99"
    plain = tmp_path / "plain.dcm"  # the same SEG, not deflated
    write_seg(LabelMap(labels, grid, segments), ref, plain, compression="explicit")
    assert ds.PixelData == pydicom.dcmread(plain).PixelData
    assert np.array_equal(read_seg(out, reference=tmp_path / "ref").labelmap.array, labels)


@pytest.mark.parametrize("layers", [1, 2])
def test_seg_nrrd_voxels_read_by_pynrrd_slicerio_itk(tmp_path, phantom_series, layers):
    """.seg.nrrd gzip data written by io/deflate (not pynrrd) as pynrrd, slicerio and ITK
    read it, for one layer (write_seg_nrrd, a UTF-8 name too) and two (a 4-D array)."""
    import dataclasses

    import nrrd
    import SimpleITK as sitk
    import slicerio

    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.io.nrrd_text import write_segmentation
    from AdaptiveBrushDicomLib.io.volumes import read_seg_nrrd, write_seg_nrrd

    _image, labels, segments, grid, _ref = phantom_series
    segments = [dataclasses.replace(segments[0], name="Läsion"), *segments[1:]]
    path = tmp_path / "s.seg.nrrd"
    if layers == 1:
        write_seg_nrrd(LabelMap(labels, grid, segments), path)
        kji = labels  # ITK's array order
    else:
        arr = np.stack([labels, np.zeros_like(labels)])  # (layer, k, j, i)
        arr[1, 2:5, 3:9, 4:20] = 1
        write_segmentation(path, {"voxels": arr.transpose(0, 3, 2, 1), "ijkToLPS": grid.ijk_to_lps,
                                  "encoding": "gzip", "segments": [{"id": "a", "labelValue": 1, "layer": 0},
                                                                   {"id": "b", "labelValue": 1, "layer": 1}]},
                           compression_level=6)
        kji = np.moveaxis(arr, 0, -1)  # ITK: a vector image, components last
    raw = path.read_bytes()
    assert b"\nencoding: gzip\n" in raw and b"encoding: raw" not in raw
    ijk = kji.transpose(2, 1, 0) if layers == 1 else np.moveaxis(kji, -1, 0).transpose(0, 3, 2, 1)
    data, header = nrrd.read(str(path))
    assert header["encoding"] == "gzip" and np.array_equal(data, ijk)
    assert np.array_equal(slicerio.read_segmentation(str(path))["voxels"], ijk)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), kji)
    if layers == 1:
        back = read_seg_nrrd(path)
        assert np.array_equal(back.array, labels)
        assert [s.name for s in back.segments] == [s.name for s in segments]
        assert "Läsion".encode() in raw


def test_seg_nrrd_header_not_as_expected_falls_back_to_pynrrd(tmp_path, phantom_series, monkeypatch):
    """Should pynrrd write its header another way (so the encoding line cannot be
    changed), the file is written by pynrrd's own gzip instead: still a valid .seg.nrrd."""
    import nrrd

    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.io import nrrd_text
    from AdaptiveBrushDicomLib.io.volumes import write_seg_nrrd

    _image, labels, segments, grid, _ref = phantom_series
    monkeypatch.setattr(nrrd_text._Utf8HeaderWriter, "header_ok", property(lambda self: False))
    used = []
    monkeypatch.setattr(deflate, "write_gzip", lambda *a, **k: used.append(1))
    path = tmp_path / "s.seg.nrrd"
    write_seg_nrrd(LabelMap(labels, grid, segments), path)
    assert used == []
    data, header = nrrd.read(str(path))
    assert header["encoding"] == "gzip" and np.array_equal(data, labels.transpose(2, 1, 0))
