"""Issue 14, "silently wrong": non-ASCII text, foreign TrackingIDs, decode output formats.

Foreign files are written by highdicom (abdicom_testkit.foreign) and by ITK (SimpleITK's
NRRD writer, what Slicer uses); our outputs are checked with readers we did not write
(SimpleITK, pydicom, dcmqi).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from AdaptiveBrushDicomLib.cli.main import main
from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
from AdaptiveBrushDicomLib.core.labelmap import LabelMap
from AdaptiveBrushDicomLib.io.volumes import read_segmentation, write_seg_nrrd

from abdicom_testkit.foreign import highdicom_seg
from abdicom_testkit.peers import run_tool
from conftest import tool_path

NAMES = {1: "Läsion", 2: "肝臓"}


def _two_labels(grid) -> np.ndarray:
    lab = np.zeros(grid.shape_kji, dtype=np.uint8)
    lab[2:5, 5:15, 5:15] = 1
    lab[6:9, 20:30, 20:34] = 2
    return lab


def _slicer_like_seg_nrrd(path: Path, labels: np.ndarray, grid, names: dict[int, str]) -> None:
    """A .seg.nrrd as Slicer writes it: ITK's NRRD writer, UTF-8 bytes in the header."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(labels)
    grid.apply_to_sitk(image)
    image.SetMetaData("Segmentation_MasterRepresentation", "Binary labelmap")
    image.SetMetaData("Segmentation_ContainedRepresentationNames", "Binary labelmap|")
    for index, (label, name) in enumerate(sorted(names.items())):
        image.SetMetaData(f"Segment{index}_ID", f"Segment_{label}")
        image.SetMetaData(f"Segment{index}_Name", name)
        image.SetMetaData(f"Segment{index}_LabelValue", str(label))
        image.SetMetaData(f"Segment{index}_Layer", "0")
        image.SetMetaData(f"Segment{index}_Color", "0.5 0.25 1")
        image.SetMetaData(f"Segment{index}_Tags", f"Description:{name} description|")
    sitk.WriteImage(image, str(path), True)


def _header_text(path: Path) -> str:
    return Path(path).read_bytes().split(b"\n\n", 1)[0].decode("utf-8")


# ------------------------------------------------------------------ .seg.nrrd text
def test_slicer_utf8_segment_names_are_read(tmp_path, phantom_series):
    grid = phantom_series[3]
    labels = _two_labels(grid)
    path = tmp_path / "s.seg.nrrd"
    _slicer_like_seg_nrrd(path, labels, grid, NAMES)
    assert "Segment0_Name:=Läsion" in _header_text(path)  # ITK wrote UTF-8
    lm = read_segmentation(path)
    assert [s.name for s in lm.segments] == ["Läsion", "肝臓"]
    assert [s.description for s in lm.segments] == ["Läsion description", "肝臓 description"]
    assert np.array_equal(lm.array, labels)


def test_export_of_utf8_seg_nrrd_keeps_names_in_the_seg(tmp_path, phantom_series):
    import pydicom

    *_, grid, reference = phantom_series
    _slicer_like_seg_nrrd(tmp_path / "s.seg.nrrd", _two_labels(grid), grid, NAMES)
    assert main(["export", str(tmp_path / "s.seg.nrrd"), "--reference", str(reference.folder),
                 "--out", str(tmp_path / "s.dcm")]) == 0
    ds = pydicom.dcmread(tmp_path / "s.dcm")
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert [str(i.SegmentLabel) for i in ds.SegmentSequence if i.SegmentNumber] == ["Läsion", "肝臓"]


@pytest.mark.parametrize("charset", ["ISO_IR 192", "ISO_IR 100"])
def test_decode_non_ascii_seg_writes_utf8_seg_nrrd(tmp_path, phantom_series, charset):
    import SimpleITK as sitk

    *_, grid, reference = phantom_series
    labels = _two_labels(grid)
    names = dict(NAMES) if charset == "ISO_IR 192" else {1: "Läsion", 2: "Größe"}
    highdicom_seg(reference, labels, names, tmp_path / "f.dcm", charset=charset)
    raw = (tmp_path / "f.dcm").read_bytes()
    assert (b"L\xe4sion" in raw) == (charset == "ISO_IR 100")  # really Latin-1 bytes
    out = tmp_path / "back.seg.nrrd"
    assert main(["decode", str(tmp_path / "f.dcm"), "--reference", str(reference.folder), "--out", str(out)]) == 0
    # ITK (Slicer's reader) sees the UTF-8 names; our reader too
    image = sitk.ReadImage(str(out))
    assert [image.GetMetaData(f"Segment{i}_Name") for i in (0, 1)] == list(names.values())
    back = read_segmentation(out)
    assert [s.name for s in back.segments] == list(names.values())
    assert np.array_equal(back.array, labels)


def test_seg_nrrd_round_trip_of_non_ascii_ids_and_tags(tmp_path, phantom_series):
    *_, segments, grid, _ = phantom_series
    labels = _two_labels(grid)
    from dataclasses import replace

    segs = [replace(segments[0], label=1, name="Läsion", segment_id="Läsion_1", description="größer"),
            replace(segments[1], label=2, name="肝臓", segment_id="肝臓")]
    write_seg_nrrd(LabelMap(labels, grid, segs), tmp_path / "x.seg.nrrd")
    back = read_segmentation(tmp_path / "x.seg.nrrd")
    assert [(s.name, s.segment_id) for s in back.segments] == [("Läsion", "Läsion_1"), ("肝臓", "肝臓")]
    assert back.segments[0].description == "größer"


# ------------------------------------------------------------------ TrackingID trust
def test_foreign_tracking_id_that_looks_like_ours_loses_no_voxels(tmp_path, phantom_series):
    *_, grid, reference = phantom_series
    labels = _two_labels(grid)
    highdicom_seg(reference, labels, {1: "A", 2: "B"}, tmp_path / "f.dcm",
                  tracking_ids={1: "lesion (label 0)", 2: "other (label 1)"})
    decoded = read_seg(tmp_path / "f.dcm", reference=reference)
    assert np.array_equal(decoded.labelmap.array, labels)  # before: segment 1 went to background
    assert [(s.label, s.extra["tracking_id"]) for s in decoded.labelmap.segments] == [
        (1, "lesion (label 0)"), (2, "other (label 1)")]


def test_our_label_values_come_from_the_private_block(tmp_path, phantom_series):
    import pydicom

    _, labels, segments, _, reference = phantom_series
    write_seg(LabelMap(labels, reference.grid, segments), reference, tmp_path / "ours.dcm")
    ds = pydicom.dcmread(tmp_path / "ours.dcm")
    item = next(i for i in ds.SegmentSequence if i.SegmentLabel == "Edema")
    assert int(item.private_block(0x0071, "AdaptiveBrushDicom 1")[0x04].value) == 300
    assert np.array_equal(read_seg(tmp_path / "ours.dcm", reference=reference).labelmap.array, labels)
    # the same file written by someone else (other Manufacturer, no private block): numbers, not labels
    for i in ds.SegmentSequence:
        for tag in [t for t in i.keys() if t.group == 0x0071]:
            del i[tag]
    legacy = tmp_path / "legacy.dcm"
    ds.save_as(legacy)
    assert read_seg(legacy, reference=reference).labelmap.segments[-1].label == 300  # still our Manufacturer
    ds.Manufacturer = "Other Lab"
    ds.save_as(tmp_path / "foreign.dcm")
    foreign = read_seg(tmp_path / "foreign.dcm", reference=reference).labelmap
    assert [s.label for s in foreign.segments] == [1, 2, 3, 4, 5]
    assert foreign.segments[-1].extra["tracking_id"] == "Segment_300 (label 300)"


# ------------------------------------------------------------------ decode --out formats
@pytest.mark.parametrize("ext", [".nrrd", ".nii", ".nii.gz", ".mha"])
def test_decode_writes_label_image_in_the_format_asked(tmp_path, phantom_series, ext):
    import SimpleITK as sitk

    _, labels, segments, _, reference = phantom_series
    write_seg(LabelMap(labels, reference.grid, segments), reference, tmp_path / "s.dcm")
    out = tmp_path / f"back{ext}"
    assert main(["decode", str(tmp_path / "s.dcm"), "--reference", str(reference.folder), "--out", str(out)]) == 0
    magic = out.read_bytes()[:4]
    expected = {".nrrd": b"NRRD", ".nii.gz": b"\x1f\x8b\x08\x00", ".mha": b"Obje"}.get(ext)
    if expected:
        assert magic == expected
    else:  # .nii: the NIfTI-1 header starts with sizeof_hdr = 348
        assert int.from_bytes(magic, "little") == 348
    image = sitk.ReadImage(str(out))
    assert np.array_equal(sitk.GetArrayFromImage(image), labels)  # pixel = original label (300 included)
    assert np.allclose(image.GetOrigin(), reference.grid.origin, atol=1e-4)
    assert np.allclose(image.GetSpacing(), reference.grid.spacing_ijk, atol=1e-5)


@pytest.mark.parametrize("name", ["x.dcm", "x.nhdr", "x", "x.png", ".nii.gz"])
def test_decode_refuses_other_extensions_before_reading(tmp_path, capsys, name):
    assert main(["decode", str(tmp_path / "missing.dcm"), "--out", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert "cannot tell the output format" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_metadata_out_is_read_by_dcmqi(tmp_path, phantom_series):
    from dataclasses import replace

    *_, segments, grid, reference = phantom_series
    labels = _two_labels(grid) * np.uint8(1)
    labels[labels == 2] = 7
    # ASCII names: dcmqi 1.5.7 refuses non-ASCII SegmentLabels ("Invalid character", DCMTK's VR check)
    segs = [replace(segments[0], label=1, name="Lesion"), replace(segments[3], label=7, name="Tumor")]
    write_seg(LabelMap(labels, grid, segs), reference, tmp_path / "s.dcm")
    out, meta = tmp_path / "back.nii.gz", tmp_path / "back.json"
    assert main(["decode", str(tmp_path / "s.dcm"), "--reference", str(reference.folder), "--out", str(out),
                 "--metadata-out", str(meta)]) == 0
    data = json.loads(meta.read_text(encoding="utf-8"))
    assert [(e["labelID"], e["SegmentLabel"]) for e in data["segmentAttributes"][0]] == [(1, "Lesion"), (7, "Tumor")]
    tool = tool_path("itkimage2segimage")
    run = run_tool([tool, "--inputImageList", str(out), "--inputMetadata", str(meta),
                    "--inputDICOMDirectory", str(reference.folder), "--outputDICOM", str(tmp_path / "dq.dcm")])
    assert run.ok, run.output
    again = read_seg(tmp_path / "dq.dcm", reference=reference).labelmap
    assert [(s.name, int((again.array == s.label).sum())) for s in again.segments] == [
        ("Lesion", int((labels == 1).sum())), ("Tumor", int((labels == 7).sum()))]


def test_label_image_output_refuses_overlapping_layers(tmp_path, phantom_series):
    _, labels, segments, grid, reference = phantom_series
    both = np.stack([labels, np.where(labels == 1, 4, 0).astype(labels.dtype)])
    from dataclasses import replace

    segs = list(segments) + [replace(segments[3], layer=1, segment_id="overlap")]
    write_seg(LabelMap(both, grid, segs), reference, tmp_path / "b.dcm", allow_binary=True)
    out = tmp_path / "b.nii.gz"
    assert main(["decode", str(tmp_path / "b.dcm"), "--reference", str(reference.folder), "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["decode", str(tmp_path / "b.dcm"), "--reference", str(reference.folder),
                 "--out", str(tmp_path / "b.seg.nrrd")]) == 0


# ------------------------------------------------------------------ readers we did not write
def test_slicerio_and_dcmqi_agree_with_our_decoded_outputs(tmp_path, phantom_series):
    """slicerio reads our decoded .seg.nrrd; dcmqi's segimage2itkimage decodes the same SEG
    to the same voxels as our .nii.gz (its pixel values are SegmentNumbers, ours labels)."""
    import SimpleITK as sitk
    import slicerio

    from abdicom_testkit.peers import dcmqi_decode

    _, labels, segments, _, reference = phantom_series
    write_seg(LabelMap(labels, reference.grid, segments), reference, tmp_path / "s.dcm")
    for name in ("back.seg.nrrd", "back.nii.gz"):
        assert main(["decode", str(tmp_path / "s.dcm"), "--reference", str(reference.folder),
                     "--out", str(tmp_path / name)]) == 0
    seg = slicerio.read_segmentation(str(tmp_path / "back.seg.nrrd"))
    assert [(s["name"], s["labelValue"]) for s in seg["segments"]] == [(s.name, s.label) for s in segments]
    assert np.array_equal(np.asarray(seg["voxels"]).transpose(2, 1, 0), labels)
    ours = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "back.nii.gz")))
    tool_path("segimage2itkimage")
    dq = dcmqi_decode(tmp_path / "s.dcm", tmp_path / "dcmqi")
    assert dq.run.ok, dq.run.output
    numbers = {s["SegmentLabel"]: int(s["labelID"]) for s in dq.segments}
    offset = np.round(reference.grid.lps_to_index(np.asarray(dq.grid.origin))).astype(int)  # (i, j, k)
    k0 = int(offset[2])
    crop = ours[k0:k0 + dq.array.shape[0]]
    for s in segments:
        assert np.array_equal(crop == s.label, dq.array == numbers[s.name]), s.name
    assert int((ours != 0).sum()) == int((dq.array != 0).sum())


def test_dcmqi_written_tracking_id_that_looks_like_ours_loses_no_voxels(tmp_path, phantom_series):
    import SimpleITK as sitk
    from pydicom.uid import generate_uid

    from AdaptiveBrushDicomLib.core.segment import Segment
    from AdaptiveBrushDicomLib.io.dcmqi_metadata import write_dcmqi_metadata
    from abdicom_testkit.peers import dcmqi_encode

    *_, grid, reference = phantom_series
    labels = _two_labels(grid)
    image = sitk.GetImageFromArray(labels)
    grid.apply_to_sitk(image)
    sitk.WriteImage(image, str(tmp_path / "lab.nrrd"), True)
    segs = [Segment(label=v, name=f"S{v}", color=(200, 10 * v, 0),
                    extra={"tracking_id": f"finding (label {v - 1})", "tracking_uid": generate_uid()})
            for v in (1, 2)]
    write_dcmqi_metadata(segs, tmp_path / "meta.json")
    tool_path("itkimage2segimage")
    run = dcmqi_encode([tmp_path / "lab.nrrd"], tmp_path / "meta.json", reference.folder, tmp_path / "dq.dcm")
    assert run.ok, run.output
    decoded = read_seg(tmp_path / "dq.dcm", reference=reference).labelmap
    assert np.array_equal(decoded.array, labels)  # "(label 0)" used to send segment 1 to background
    assert [s.extra.get("tracking_id") for s in decoded.segments] == ["finding (label 0)", "finding (label 1)"]


def test_seg_nrrd_header_in_latin1_is_not_dropped(tmp_path, phantom_series):
    """Headers that are not valid UTF-8 (old Windows builds wrote the ANSI code page) are
    read as Latin-1: every byte is kept."""
    grid = phantom_series[3]
    labels = _two_labels(grid)
    path = tmp_path / "utf8.seg.nrrd"
    _slicer_like_seg_nrrd(path, labels, grid, {1: "Läsion", 2: "Größe"})
    head, body = path.read_bytes().split(b"\n\n", 1)
    latin1 = tmp_path / "latin1.seg.nrrd"
    latin1.write_bytes(head.decode("utf-8").encode("latin-1") + b"\n\n" + body)
    lm = read_segmentation(latin1)
    assert [s.name for s in lm.segments] == ["Läsion", "Größe"]
    assert np.array_equal(lm.array, labels)
