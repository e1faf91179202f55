"""Verification of a SEG the migration wrote, before it gets its final name (issue 17).

``runs.verify.verify_written`` checks the file read back from disk without decoding it.
These tests show that it accepts what the full decode accepts, and refuses a file whose
bytes do not hold the labelmap and header meant: flipped bytes, truncation, wrong segment
numbers or labels, frames moved to other slices or missing, other UIDs; and that the
migration then keeps nothing of the trial.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest

from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.dicom.compression import Compression
from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
from AdaptiveBrushDicomLib.runs import verify as V

SERIES = "1.2.826.0.1.3680043.8.498.1"
SOP = "1.2.826.0.1.3680043.8.498.2"


@pytest.fixture
def case(phantom_series, tmp_path):
    """(write(compression) -> path, labelmap, reference)."""
    _image, labels, segments, grid, ref = phantom_series
    lm = LabelMap(labels, grid, segments)

    def write(compression: str = "deflate", name: str = "seg.dcm") -> Path:
        path = tmp_path / name
        res = write_seg(lm, ref, path, compression=compression, series_instance_uid=SERIES, sop_instance_uid=SOP,
                        content_label="TRIAL", series_description="trial", force=True)
        write.header = res.header  # type: ignore[attr-defined]  # what the migration compares with
        return path

    return write, lm, ref


def expected(compression: str = "deflate", series: str = SERIES, sop: str = SOP) -> V.Expected:
    return V.Expected(series, sop, Compression.parse(compression).uid)


def no_decode(monkeypatch) -> None:
    """Make a fall-back to the full decode fail the test: the walk itself must decide."""
    def refuse(*_a, **_k):
        raise AssertionError("verify_written fell back to decoding")
    monkeypatch.setattr(V, "verify_decoded", refuse)


def refused(path: Path, lm: LabelMap, ref, exp: V.Expected | None = None, match: str | None = None) -> str:
    with pytest.raises(ValueError, match=match) as info:
        V.verify_written(path, lm, ref, exp or expected())
    return str(info.value)


@pytest.mark.parametrize("compression", ["deflate", "explicit"])
def test_intact_file_passes_like_the_full_decode(case, compression, monkeypatch):
    write, lm, ref = case
    path = write(compression)
    full = V.verify_decoded(path, lm, ref)
    no_decode(monkeypatch)
    assert V.verify_written(path, lm, ref, expected(compression)) == full
    assert full[0] == lm.array.size and full[1] == np.count_nonzero(lm.array) and full[2] == len(lm.segments)


def test_encapsulated_syntax_is_decoded_instead(case, monkeypatch):
    write, lm, ref = case
    path = write("rle")
    calls = []
    real = V.verify_decoded
    monkeypatch.setattr(V, "verify_decoded", lambda *a: calls.append(a) or real(*a))
    assert V.verify_written(path, lm, ref, expected("rle")) == real(path, lm, ref)
    assert len(calls) == 1


def test_flipped_pixel_bytes_are_refused(case, monkeypatch):
    write, lm, ref = case
    path = write("explicit")
    raw = path.read_bytes()
    no_decode(monkeypatch)
    # the PixelData value is the end of an Explicit VR LE file: flip a labelled and an empty voxel
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(-1)
    start = len(raw) - len(ds.PixelData)
    for index in (int(np.flatnonzero(frames)[len(np.flatnonzero(frames)) // 2]), int(np.flatnonzero(frames == 0)[7])):
        bad = bytearray(raw)
        bad[start + index] ^= 0x04
        path.write_bytes(bytes(bad))
        assert "1 voxels differ" in refused(path, lm, ref, expected("explicit"))


def test_flipped_deflated_bytes_are_refused(case, monkeypatch):
    write, lm, ref = case
    path = write("deflate")
    header = write.header
    assert header and header.endswith(b"\xe0\x7f\x10\x00OB\x00\x00" + struct.pack("<I", len(pydicom.dcmread(path).PixelData)))
    raw = path.read_bytes()
    meta_end = 144 + struct.unpack_from("<I", raw, 140)[0]
    no_decode(monkeypatch)
    # the header as encoded is what the migration compares with (a flipped letter of a
    # description would otherwise pass, as it passes a decode)
    assert V.verify_written(path, lm, ref, V.Expected(SERIES, SOP, Compression.DEFLATE.uid, header))
    for where in (0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        bad = bytearray(raw)
        bad[meta_end + int((len(raw) - meta_end) * where)] ^= 0x10
        assert _changes_content(raw, bytes(bad))
        path.write_bytes(bytes(bad))
        refused(path, lm, ref, V.Expected(SERIES, SOP, Compression.DEFLATE.uid, header))


@pytest.mark.parametrize("compression", ["deflate", "explicit"])
def test_truncated_file_is_refused(case, compression, monkeypatch):
    write, lm, ref = case
    path = write(compression)
    raw = path.read_bytes()
    no_decode(monkeypatch)
    for keep in (len(raw) - 1, len(raw) - 100, len(raw) // 2, 300, 100):
        path.write_bytes(raw[:keep])
        refused(path, lm, ref, expected(compression))
    path.write_bytes(raw + b"\x00\x00\x00\x00")  # bytes after the end are not ours either
    refused(path, lm, ref, expected(compression))


def _rewrite(path: Path, change) -> None:
    """Change the dataset with pydicom and save it again (same transfer syntax)."""
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("compression", ["deflate", "explicit"])
def test_rewritten_intact_file_still_passes(case, compression, monkeypatch):
    """pydicom's re-encoding (other sequence lengths) is read by the walk: the refusals
    below are about the changes, not the encoding."""
    write, lm, ref = case
    path = write(compression)
    _rewrite(path, lambda ds: None)
    no_decode(monkeypatch)
    assert V.verify_written(path, lm, ref, expected(compression))[0] == lm.array.size


def test_wrong_segment_numbers_or_labels_are_refused(case, monkeypatch):
    write, lm, ref = case
    no_decode(monkeypatch)
    path = write("explicit")

    def renumber(ds):
        item = next(i for i in ds.SegmentSequence if i.SegmentNumber == 2)
        item.SegmentNumber = 9

    _rewrite(path, renumber)
    assert "SegmentNumber" in refused(path, lm, ref, expected("explicit"))

    path = write("explicit")

    def duplicate(ds):
        next(i for i in ds.SegmentSequence if i.SegmentNumber == 2).SegmentNumber = 1

    _rewrite(path, duplicate)
    assert "repeated" in refused(path, lm, ref, expected("explicit"))

    path = write("explicit")

    def relabel(ds):  # the original label value a reader restores (private block)
        item = next(i for i in ds.SegmentSequence if i.SegmentNumber == 2)
        block = item.private_block(0x0071, "AdaptiveBrushDicom 1")
        block[0x04].value = 77

    _rewrite(path, relabel)
    assert "label" in refused(path, lm, ref, expected("explicit"))


def test_frames_moved_or_missing_are_refused(case, monkeypatch):
    write, lm, ref = case
    no_decode(monkeypatch)
    path = write("explicit")

    def swap(ds):
        a, b = ds.PerFrameFunctionalGroupsSequence[0], ds.PerFrameFunctionalGroupsSequence[1]
        pa, pb = a.PlanePositionSequence[0], b.PlanePositionSequence[0]
        pa.ImagePositionPatient, pb.ImagePositionPatient = pb.ImagePositionPatient, pa.ImagePositionPatient

    _rewrite(path, swap)
    assert "voxels differ" in refused(path, lm, ref, expected("explicit"))

    path = write("explicit")

    def same_slice(ds):
        a, b = ds.PerFrameFunctionalGroupsSequence[0], ds.PerFrameFunctionalGroupsSequence[1]
        b.PlanePositionSequence[0].ImagePositionPatient = a.PlanePositionSequence[0].ImagePositionPatient

    _rewrite(path, same_slice)
    assert "same slice" in refused(path, lm, ref, expected("explicit"))

    path = write("explicit")

    def off_grid(ds):
        pos = ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0]
        pos.ImagePositionPatient = [float(v) + 0.4 for v in pos.ImagePositionPatient]

    _rewrite(path, off_grid)
    assert "not on a slice" in refused(path, lm, ref, expected("explicit"))

    path = write("explicit")

    def drop_last_frame(ds):
        n = int(ds.NumberOfFrames)
        frame = int(ds.Rows) * int(ds.Columns)
        ds.PerFrameFunctionalGroupsSequence = ds.PerFrameFunctionalGroupsSequence[:n - 1]
        ds.NumberOfFrames = n - 1
        ds.PixelData = ds.PixelData[:(n - 1) * frame]

    _rewrite(path, drop_last_frame)
    assert "no frame" in refused(path, lm, ref, expected("explicit"))


def test_other_uids_or_syntax_are_refused(case, monkeypatch):
    write, lm, ref = case
    no_decode(monkeypatch)
    path = write("deflate")
    assert "(0008,0018)" in refused(path, lm, ref, expected(sop=SOP + ".9"))
    assert "(0020,000E)" in refused(path, lm, ref, expected(series=SERIES + ".9"))
    assert "TransferSyntaxUID" in refused(path, lm, ref, expected("explicit"))
    raw = path.read_bytes()
    meta_end = 144 + struct.unpack_from("<I", raw, 140)[0]
    assert raw[:meta_end].count(SOP.encode()) == 1
    path.write_bytes(raw[:meta_end].replace(SOP.encode(), SOP[:-1].encode() + b"3") + raw[meta_end:])
    assert "file meta" in refused(path, lm, ref)
    path = write("deflate")
    _rewrite(path, lambda ds: setattr(ds.ReferencedSeriesSequence[0], "SeriesInstanceUID", SERIES + ".7"))
    assert "ReferencedSeriesSequence" in refused(path, lm, ref)


def test_another_labelmap_is_refused(case, monkeypatch):
    write, lm, ref = case
    no_decode(monkeypatch)
    path = write("deflate")
    other = lm.array.copy()
    k, j, i = (int(v[0]) for v in np.nonzero(other))
    other[k, j, i] = 0
    assert "1 voxels differ" in refused(path, LabelMap(other, lm.grid, lm.segments), ref)
    other = lm.array.copy()
    other[0, 0, 0] = lm.segments[0].label  # slice 0 of the phantom is empty: the SEG has no frame there
    assert np.count_nonzero(lm.array[0]) == 0
    assert "no frame" in refused(path, LabelMap(other, lm.grid, lm.segments), ref)


def _changes_content(raw: bytes, bad: bytes) -> bool:
    """True when ``bad`` inflates to another dataset than ``raw`` (or not at all): a bit of
    a deflate stream can be redundant (e.g. the code length of an unused symbol)."""
    from zlib_ng import zlib_ng

    start = 144 + struct.unpack_from("<I", raw, 140)[0]
    try:
        return zlib_ng.decompressobj(-15).decompress(bad[start:]) != zlib_ng.decompressobj(-15).decompress(raw[start:])
    except Exception:  # noqa: BLE001 - corrupt: a change
        return True


def test_migration_keeps_nothing_of_a_corrupted_seg(tmp_path, monkeypatch):
    """SEGs damaged between writing and verification (one cut short, one with a flipped
    bit): those trials fail with verify_mismatch, no file of them is left (neither final
    nor temporary), the other trials are migrated."""
    from abdicom_testkit.demo_data import build_demo_legacy
    from AdaptiveBrushDicomLib.dicom.seg import write as seg_write
    from AdaptiveBrushDicomLib.runs.migrate import migrate_paths

    demo = build_demo_legacy(tmp_path / "demo", n_trials=5, shape=(12, 40, 48))
    real = seg_write.write_seg
    damaged: list[str] = []

    def damaging(lm, reference, out, **kw):
        res = real(lm, reference, out, **kw)
        if len(damaged) < 2:
            damaged.append(f"trial_{int(str(kw['content_description']).rsplit(' ', 1)[1]):03d}")
            raw = Path(out).read_bytes()
            if len(damaged) == 1:
                bad = raw[:-7]
            else:
                pos = len(raw) * 2 // 3
                while not _changes_content(raw, bad := raw[:pos] + bytes([raw[pos] ^ 0x20]) + raw[pos + 1:]):
                    pos += 1
            Path(out).write_bytes(bad)
        return res

    monkeypatch.setattr(seg_write, "write_seg", damaging)
    summary = migrate_paths([demo.run_dir], volumes_dir=demo.volumes_dir, progress=False)
    items = {i.key: i for i in summary.reports[0].items}
    assert len(damaged) == 2
    for key in damaged:
        assert items[key].status == "failed" and items[key].reason_code == "verify_mismatch", items[key].reason
        assert "read back differs" in str(items[key].reason)
    segs = demo.run_dir / "dicom" / "segmentations"
    assert sorted(p.name for p in segs.iterdir()) == sorted(
        f"{k}.dcm" for k, i in items.items() if i.status == "migrated")  # no temporary file either
    assert sum(i.status == "migrated" for i in items.values()) >= 2
    assert summary.exit_code == 1


@pytest.mark.parametrize("kind", ["sparse labels", "300 segments"])
def test_label_tables_and_16_bit_frames_pass_like_the_full_decode(phantom_series, tmp_path, kind, monkeypatch):
    """Labels that are not 1..N (the file's SegmentNumber -> label table is applied) and
    more than 255 segments (16-bit frames) are checked by the walk too."""
    from dataclasses import replace

    from AdaptiveBrushDicomLib.core.segment import Segment

    _image, labels, segments, grid, ref = phantom_series
    if kind == "sparse labels":
        new = {s.label: label for s, label in zip(segments, (7, 1000, 3, 42, 9, 11, 13, 15))}
        array = np.zeros(labels.shape, dtype=np.uint16)
        for old, label in new.items():
            array[labels == old] = label
        segs = [replace(s, label=new[s.label]) for s in segments]
    else:
        array = np.zeros(labels.shape, dtype=np.uint16)
        flat = array.reshape(-1)
        flat[np.arange(0, flat.size, 7)[:300]] = np.arange(1, 301)
        segs = [Segment(label=n, name=f"s{n}") for n in range(1, 301)]
    lm = LabelMap(array, grid, segs)
    path = tmp_path / "seg.dcm"
    res = write_seg(lm, ref, path, series_instance_uid=SERIES, sop_instance_uid=SOP, content_label="TRIAL", force=True)
    assert res.header is not None  # the fast writer wrote it
    full = V.verify_decoded(path, lm, ref)
    no_decode(monkeypatch)
    exp = V.Expected(SERIES, SOP, Compression.DEFLATE.uid, res.header)
    assert V.verify_written(path, lm, ref, exp) == full
    other = array.copy()
    k, j, i = (int(v[0]) for v in np.nonzero(other))
    other[k, j, i] = segs[-1].label if other[k, j, i] != segs[-1].label else segs[0].label
    assert "1 voxels differ" in refused(path, LabelMap(other, grid, segs), ref, exp)
