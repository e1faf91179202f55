"""``nrrd_data.read_nrrd_data`` (the voxels of a .seg.nrrd inflated straight into their
array) returns what pynrrd's ``nrrd.read_data`` returns: same dtype, shape, index order and
values, on real corpus files (Slicer, dcmqi) and on every encoding / type / layout we
write or meet; broken data is refused like pynrrd refuses it; ``read_seg_nrrd`` gives the
same LabelMap as reading through pynrrd."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nrrd
import numpy as np
import pytest

from AdaptiveBrushDicomLib.io import nrrd_data, nrrd_text, volumes
from AdaptiveBrushDicomLib.io.nrrd_data import read_nrrd_data
from AdaptiveBrushDicomLib.io.volumes import read_seg_nrrd

from conftest import corpus_path

CORPUS_FILES = [
    ("adaptivebrush-gold", "idc_mri_t2_lesion", "gold.seg.nrrd"),
    ("adaptivebrush-gold", "MRBrainTumor1_tumor", "gold.seg.nrrd"),
    ("dcmqi", "liver_spine_seg.nrrd"),
    ("dcmqi", "sparse_labelmap_ppv5_seg.nrrd"),
    ("dcmqi", "liver_spine_gapped_seg.nrrd"),
]


def _both(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(pynrrd's voxels, ours) of one file."""
    with open(path, "rb") as fh:
        header, size = nrrd_text.read_header(fh)
        fh.seek(size)
        theirs = nrrd.read_data(header, fh, str(path))
        fh.seek(size)
        ours = read_nrrd_data(header, fh, str(path))
    return theirs, ours


def _assert_same(theirs: np.ndarray, ours: np.ndarray) -> None:
    assert ours.dtype == theirs.dtype
    assert ours.shape == theirs.shape
    assert ours.flags.f_contiguous == theirs.flags.f_contiguous
    assert ours.strides == theirs.strides
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("parts", CORPUS_FILES, ids=lambda p: "/".join(p[:2]))
def test_corpus_files_read_as_pynrrd_reads_them(parts):
    path = corpus_path(*parts)
    theirs, ours = _both(path)
    assert np.count_nonzero(ours) > 0
    _assert_same(theirs, ours)


@pytest.mark.parametrize("parts", CORPUS_FILES[:2], ids=lambda p: p[1])
def test_read_seg_nrrd_equals_the_pynrrd_path(parts, monkeypatch):
    path = corpus_path(*parts)
    ours = read_seg_nrrd(path)
    monkeypatch.setattr(nrrd_data, "read_nrrd_data", nrrd.read_data)
    theirs = read_seg_nrrd(path)
    assert ours.array.dtype == theirs.array.dtype and ours.array.flags.c_contiguous
    np.testing.assert_array_equal(ours.array, theirs.array)
    assert ours.grid.describe() == theirs.grid.describe()
    assert ours.segments == theirs.segments


def _write(tmp_path: Path, name: str, data: np.ndarray, **header) -> Path:
    path = tmp_path / name
    nrrd.write(str(path), data, header=header or None, compression_level=6)
    return path


@pytest.mark.parametrize("dtype", ["uint8", "int16", "<u2", ">i2", ">u4", "int32"])
@pytest.mark.parametrize("encoding", ["gzip", "raw"])
def test_types_endianness_and_encodings(tmp_path, dtype, encoding):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 120, size=(7, 6, 5)).astype(dtype)
    path = _write(tmp_path, "a.nrrd", data, encoding=encoding)
    _assert_same(*_both(path))


def test_layers_and_large_gzip_data_in_pieces(tmp_path, monkeypatch):
    """4D (layers, i, j, k) data, inflated in many small pieces (the piece size shrunk)."""
    monkeypatch.setattr(nrrd_data, "_INFLATE_PIECE", 1000)
    rng = np.random.default_rng(2)
    data = rng.integers(0, 4, size=(2, 40, 30, 20)).astype(np.uint8)
    path = _write(tmp_path, "layers.nrrd", data, encoding="gzip",
                  kinds=["list", "domain", "domain", "domain"])
    _assert_same(*_both(path))


@pytest.mark.parametrize("zlib_choice", ["stdlib", "default"])
def test_with_and_without_zlib_ng(tmp_path, monkeypatch, zlib_choice):
    monkeypatch.setenv("ABDICOM_ZLIB", zlib_choice)
    data = np.arange(6000, dtype=np.uint16).reshape(10, 20, 30) % 7
    path = _write(tmp_path, "z.nrrd", data, encoding="gzip")
    _assert_same(*_both(path))


def test_left_to_pynrrd_when_not_attached_gzip_or_raw(tmp_path):
    """A detached data file (.nhdr) and ASCII encoding go through nrrd.read_data itself."""
    data = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    nrrd.write(str(tmp_path / "d.nhdr"), data, header={"encoding": "gzip"}, detached_header=True)
    _assert_same(*_both(tmp_path / "d.nhdr"))
    _assert_same(*_both(_write(tmp_path, "t.nrrd", data, encoding="ascii")))


def _with_data(tmp_path: Path, name: str, payload: bytes, sizes=(4, 4, 4)) -> Path:
    head = (f"NRRD0004\ntype: uint8\ndimension: 3\nsizes: {' '.join(map(str, sizes))}\n"
            "encoding: gzip\n\n").encode()
    path = tmp_path / name
    path.write_bytes(head + payload)
    return path


@pytest.mark.parametrize("case", ["short", "long", "corrupt"])
def test_broken_data_refused_as_pynrrd_refuses_it(tmp_path, case):
    if case == "short":
        payload = gzip.compress(bytes(63))
    elif case == "long":
        payload = gzip.compress(bytes(65))
    else:
        payload = gzip.compress(bytes(64))[:12] + b"\xff" * 20
    path = _with_data(tmp_path, f"{case}.nrrd", payload)
    with open(path, "rb") as fh:
        header, size = nrrd_text.read_header(fh)
        for reader in (nrrd.read_data, read_nrrd_data):
            fh.seek(size)
            with pytest.raises(Exception):  # noqa: B017 - pynrrd raises NRRDError or zlib.error
                reader(header, fh, str(path))


def test_truncated_gzip_stream_with_all_voxels_is_read_like_pynrrd(tmp_path):
    """A stream cut inside its trailer (all voxels present): pynrrd reads it; so do we."""
    payload = gzip.compress(bytes(range(64)))[:-4]
    path = _with_data(tmp_path, "cut.nrrd", payload)
    _assert_same(*_both(path))


def test_gzip_bomb_is_not_inflated_past_the_sizes(tmp_path, monkeypatch):
    """Data far longer than the sizes: refused as the limits check refuses it (LimitError,
    "gzip bomb", naming the file), after inflating at most 64 KiB past the sizes; the
    separate inflate pass of the check is not needed for it."""
    from AdaptiveBrushDicomLib.io.limits import LimitError

    payload = gzip.compress(bytes(50 << 20), 9)
    path = _with_data(tmp_path, "bomb.seg.nrrd", payload, sizes=(8, 8, 8))
    calls = []
    real_check = volumes.image_limits.check_image
    monkeypatch.setattr(volumes.image_limits, "check_image",
                        lambda p, **kw: calls.append(kw) or real_check(p, **kw))
    with open(path, "rb") as fh:
        _header, size = nrrd_text.read_header(fh)
    with pytest.raises(LimitError, match=r"bomb\.seg\.nrrd.*gzip bomb|gzip bomb.*bomb\.seg\.nrrd"):
        read_seg_nrrd(path)
    assert calls == [{"inflate": False}]  # the reader's own cap refused it
    with open(path, "rb") as fh:
        fh.seek(size)
        pieces = []
        real = nrrd_data.zlib_module

        class Counting:
            MAX_WBITS = 15
            error = real().error

            @staticmethod
            def decompressobj(wbits):
                d = real().decompressobj(wbits)

                class Wrap:
                    def __getattr__(self, name):
                        return getattr(d, name)

                    def decompress(self, data, n):
                        piece = d.decompress(data, n)
                        pieces.append(len(piece))
                        return piece

                return Wrap()

        monkeypatch.setattr(nrrd_data, "zlib_module", lambda: Counting)
        with pytest.raises(LimitError):
            nrrd_data._inflate_into(np.empty(512, np.uint8), fh, str(path))
    assert sum(pieces) <= 512 + (1 << 16) + 1


def test_reader_matches_on_a_file_object():
    """The same on an in-memory file (what nrrd.read_data's BytesIO branch reads)."""
    data = (np.arange(120) % 5).astype(np.uint8).reshape(4, 5, 6)
    raw = io.BytesIO(data.tobytes(order="F"))
    header = {"type": "uint8", "dimension": 3, "sizes": np.array([4, 5, 6]), "encoding": "raw"}
    theirs = nrrd.read_data(header, raw, None)
    raw.seek(0)
    _assert_same(theirs, read_nrrd_data(header, raw, ""))
