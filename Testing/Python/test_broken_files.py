"""Broken files through the CLI: cut short, empty, not DICOM (issue 14's standard, the loose
ends of its closing note).

Every case: exit 2, exactly one stderr line, the file's name, the element (tag) where the
file ends, the advice "copy it again from its source" (or what to give instead), no
"Traceback" and no pydicom advice ("force=True"), nothing written in the output folder.

Files: SEGs written by our writer (Deflated, the default, and Explicit VR LE) on a
64 x 48 x 12 series (pixel data much larger than the header, like W1), a SEG written by
dcmqi's ``itkimage2segimage`` and the dcmqi corpus SEG, each cut in the test's tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from abdicom_testkit import hostile
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.compression import Compression
from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
from AdaptiveBrushDicomLib.errors import IncompleteFileError
from conftest import corpus_path
from test_fuzz import _run

ADVICE = "copy it again from its source"


@pytest.fixture(scope="module")
def segs(tmp_path_factory) -> dict[str, tuple[Path, Path | None]]:
    """name -> (SEG, reference folder): ours (Deflated, Explicit), dcmqi's, the corpus file."""
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

    out = tmp_path_factory.mktemp("broken_seeds")
    ref_dir = out / "ref"
    ref, lm = hostile.phantom_reference(ref_dir, shape=(12, 48, 64))
    files: dict[str, tuple[Path, Path | None]] = {}
    for comp in (Compression.DEFLATE, Compression.EXPLICIT):
        path = out / f"ours_{comp.cli_name}.dcm"
        write_seg(lm, ref, path, compression=comp)
        files[f"ours-{comp.cli_name}"] = (path, ref_dir)
    for seed in hostile._dcmqi_seeds(out):
        if seed.name == "dcmqi-labelmap":
            files[seed.name] = (seed.path, seed.reference)
    files["corpus-dcmqi"] = (corpus_path("dcmqi", "sparse-labelmap-noppv.dcm"), None)
    return files


def _pixel_offset(path: Path) -> int:
    """File offset of the PixelData value of an Explicit VR LE file."""
    header = walker.read_header(path)
    return len(header.preamble_and_meta) + header.pixel_offset + 12


def _cut(src: Path, size: int, tmp_path: Path, name: str = "cut.dcm") -> Path:
    out = tmp_path / "in" / name
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(src.read_bytes()[:size])
    return out


def _fails_cleanly(argv: list[str], out_dir: Path, *fragments: str) -> str:
    """Run the CLI in-process: exit 2, one line naming the fragments, nothing in ``out_dir``."""
    before = sorted(os.listdir(out_dir))
    rc, out, err, tb = _run(argv)
    assert tb is None, tb
    assert rc == 2, (rc, out, err)
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and "force=True" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert sorted(os.listdir(out_dir)) == before
    return err


def _commands(path: Path, reference: Path | None, out_dir: Path) -> list[list[str]]:
    ref = ["--reference", str(reference)] if reference else []
    return [["info", str(path)], ["info", str(path), "--json"],
            ["decode", str(path), "--out", str(out_dir / "o.seg.nrrd")],
            ["decode", str(path), "--out", str(out_dir / "o.nii.gz"), *ref]]


def _cut_in_pixels(src: Path, tmp_path: Path) -> int:
    """A length at which the file ends inside its PixelData (Deflated: inside the inflated
    PixelData, found by bisection on where the header is whole)."""
    header = walker.read_header(src)
    size = src.stat().st_size
    if not header.deflated:
        start = len(header.preamble_and_meta) + header.pixel_offset + 12
        return start + (size - start) // 2
    data, probe = src.read_bytes(), tmp_path / "probe.dcm"
    lo, hi = 200, size - 1
    while lo < hi:
        mid = (lo + hi) // 2
        probe.write_bytes(data[:mid])
        try:
            walker.read_header(probe)
            hi = mid
        except IncompleteFileError:
            lo = mid + 1
    probe.unlink()
    return (lo + size) // 2


@pytest.mark.parametrize("name", ["ours-explicit", "ours-deflate", "dcmqi-labelmap", "corpus-dcmqi"])
def test_seg_cut_in_pixel_data(segs, tmp_path, name):
    """Cut inside PixelData (Explicit VR LE, or inside the inflated PixelData of a Deflated
    file): bytes there of how many, whole frames of how many, and the advice."""
    if name not in segs:
        pytest.skip("dcmqi's itkimage2segimage not installed")
    src, ref = segs[name]
    declared = walker.read_pixels(src)[1].nbytes
    path = _cut(src, _cut_in_pixels(src, tmp_path), tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for argv in _commands(path, ref, out_dir):
        _fails_cleanly(argv, out_dir, path.name, "the file is incomplete: PixelData (7FE0,0010) ends after ",
                       f" of its {declared:,} bytes (", " frames of ", ADVICE)


def test_w1_like_deflated_seg_cut_in_half(segs, tmp_path):
    """Our default syntax cut in half (the closing note's case): one line, the file, where, the advice."""
    src, ref = segs["ours-deflate"]
    path = _cut(src, src.stat().st_size // 2, tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for argv in _commands(path, ref, out_dir):
        err = _fails_cleanly(argv, out_dir, path.name, "the file is incomplete: ", ADVICE)
        assert "PixelData (7FE0,0010) ends after" in err or "inside the Deflated data stream" in err, err
    with pytest.raises(IncompleteFileError):
        read_seg(path)


@pytest.mark.parametrize("name", ["ours-explicit", "ours-deflate", "dcmqi-labelmap"])
def test_seg_cut_in_the_header_names_the_element(segs, tmp_path, name):
    """Cut inside the per-frame sequence (inside an element of an item): the element and its top sequence."""
    if name not in segs:
        pytest.skip("dcmqi's itkimage2segimage not installed")
    src, ref = segs[name]
    header = walker.read_header(src)
    if header.deflated:  # the cut is in the compressed stream, 100 bytes after the File Meta header
        size = len(header.preamble_and_meta) + 100
        fragments = [f"it ends at byte {size:,}, inside the Deflated data stream (", " bytes of the dataset inflated)"]
    else:
        assert 0x52009230 in walker.read_header(src).dataset
        size = _pixel_offset(src) - 12 - 200  # 200 bytes before PixelData: inside the last per-frame item
        fragments = [f"it ends at byte {size:,}, inside ", "in PerFrameFunctionalGroupsSequence (5200,9230)"]
    path = _cut(src, size, tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for argv in _commands(path, ref, out_dir):
        _fails_cleanly(argv, out_dir, path.name, "the file is incomplete: ", *fragments, ADVICE)


def test_seg_cut_inside_a_top_level_element(segs, tmp_path):
    """Cut inside a top-level text element: its keyword and tag."""
    src, _ref = segs["ours-explicit"]
    at = src.read_bytes().index(b"\x08\x00\x3e\x10LO") + 8  # file offset of SeriesDescription's value
    path = _cut(src, at + 3, tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _fails_cleanly(["decode", str(path), "--out", str(out_dir / "o.seg.nrrd")], out_dir, path.name,
                   f"it ends at byte {at + 3:,}, inside the ", "-byte value of SeriesDescription (0008,103E) at byte "
                   f"{at - 8:,}; {ADVICE}")


@pytest.mark.parametrize("size", [0, 1, 100, 131])
def test_empty_or_tiny_file(segs, tmp_path, size):
    src, ref = segs["ours-deflate"]
    path = _cut(src, size, tmp_path, "empty.dcm")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    expect = "is empty (0 bytes)" if size == 0 else f"is only {size} bytes long, too short for a DICOM file"
    for argv in _commands(path, ref, out_dir):
        _fails_cleanly(argv, out_dir, path.name, expect, ADVICE)


def test_not_a_dicom_file(segs, tmp_path):
    src, ref = segs["ours-deflate"]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for name, data in [("notes.dcm", b"a text file, not DICOM\n" * 20), ("labels.seg.nrrd", b"NRRD0004\n" + bytes(300))]:
        path = tmp_path / name
        path.write_bytes(data)
        for argv in _commands(path, ref, out_dir):
            _fails_cleanly(argv, out_dir, path.name,
                           "has no DICOM preamble or File Meta header ('DICM' at byte 128), so it is not a DICOM "
                           "file; give a SEG file")


def test_real_cli_one_line_no_pydicom_warnings(segs, tmp_path):
    """The installed entry point (not main() in-process): pydicom's log lines must not reach stderr either."""
    cases = []
    src, _ = segs["ours-explicit"]
    cases.append(_cut(src, _pixel_offset(src) + 1000, tmp_path, "pixels.dcm"))
    cases.append(_cut(src, _pixel_offset(src) - 300, tmp_path, "header.dcm"))
    cases.append(_cut(src, 0, tmp_path, "empty.dcm"))
    src, _ = segs["ours-deflate"]
    cases.append(_cut(src, src.stat().st_size // 2, tmp_path, "deflated.dcm"))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for path in cases:
        proc = subprocess.run([str(Path(sys.executable).parent / "abdicom"), "decode", str(path),
                               "--out", str(out_dir / "o.seg.nrrd")], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and path.name in lines[0] and ADVICE in lines[0], proc.stderr
        assert os.listdir(out_dir) == []


def test_truncated_pixels_do_not_cost_a_pass(segs, tmp_path):
    """The walked path decides from one length comparison: a whole file decodes as before, and a
    file cut one byte short (the last frame incomplete) is refused."""
    src, ref = segs["ours-explicit"]
    good = read_seg(src, reference=ref)
    assert good.labelmap.array.any()
    path = _cut(src, src.stat().st_size - 1, tmp_path)
    with pytest.raises(IncompleteFileError, match=r"\(11 of 12 frames of 48 rows x 64 columns x 8 bits\)"):
        read_seg(path, reference=ref)
