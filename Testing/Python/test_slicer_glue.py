"""The two Slicer files, run here under a documented STAND-IN for the Slicer API.

``slicer_standin.py`` fakes only the few Slicer calls the glue makes (see its docstring for
what each fake copies from the Slicer sources). These tests check the glue's own logic:
registration, which files the DICOM plugin claims and with what confidence (on real DICOM
files written here with highdicom and the core writer), and that load/export move voxels
and segment metadata through the calls the glue makes. They do not prove Slicer behaves as
modelled; ``Testing/Slicer/AdaptiveBrushDicomSelfTest.py`` does that inside Slicer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import slicer_standin  # noqa: E402

from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass  # noqa: E402
from AdaptiveBrushDicomLib.slicer import bridge as sb  # noqa: E402
from AdaptiveBrushDicomLib.errors import OverlapError, UserError  # noqa: E402
from AdaptiveBrushDicomLib.core.geometry import Grid  # noqa: E402
from AdaptiveBrushDicomLib.core.labelmap import LabelMap  # noqa: E402
from AdaptiveBrushDicomLib.core.segment import AlgorithmType, Code, Segment, Terminology  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")

LIVER = Terminology(category=Code("123037004", "SCT", "Anatomical Structure"), type=Code("10200004", "SCT", "Liver"))
TUMOUR = Terminology(category=Code("49755003", "SCT", "Morphologically Altered Structure"),
                     type=Code("108369006", "SCT", "Neoplasm"))


# ----------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def dicom_data(tmp_path_factory):
    """A small oblique-free MR series, a LABELMAP SEG from the core writer, a LABELMAP SEG and
    a BINARY SEG written directly with highdicom."""
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series

    root = tmp_path_factory.mktemp("dicom")
    grid = Grid((6, 10, 12), (0.9, 0.8, 2.5), (-20.0, 15.0, 40.0), np.diag([1.0, 1.0, 1.0]))
    image = (np.arange(np.prod(grid.shape_kji)).reshape(grid.shape_kji) % 97).astype(np.int16)
    series = create_synthetic_series(image, grid, root / "mr", patient_id="P1", study_description="run A",
                                     series_description="T1")
    reference = ReferenceSeries.from_folder(root / "mr")

    labels = np.zeros(grid.shape_kji, np.int32)
    labels[1:4, 2:6, 3:8] = 1
    labels[4, 5:8, 6:10] = 300
    segments = [
        Segment(1, "liver", (200, 100, 50), LIVER, algorithm_type=AlgorithmType.AUTOMATIC,
                algorithm_name="watershed", algorithm_parameters={"level": 3}),
        Segment(300, "tumour", (10, 220, 40), TUMOUR, algorithm_type=AlgorithmType.AUTOMATIC,
                algorithm_name="watershed"),
        Segment(7, "nothing yet", (1, 2, 3), LIVER, algorithm_type=AlgorithmType.MANUAL),  # empty
    ]
    lm = LabelMap(labels, grid, segments)
    core_seg = write_seg(lm, reference, root / "core_seg.dcm", series_description="trial_003_watershed",
                         series_number=1003)

    # highdicom directly: LABELMAP and BINARY
    sources = [pydicom.dcmread(p) for p in reference.paths]
    cat = hd.sr.CodedConcept("123037004", "SCT", "Anatomical Structure")
    typ = hd.sr.CodedConcept("10200004", "SCT", "Liver")
    desc = [hd.seg.SegmentDescription(1, "liver", cat, typ, hd.seg.SegmentAlgorithmTypeValues.MANUAL)]
    mask = (labels == 1).astype(np.uint8)
    common = dict(source_images=sources, segment_descriptions=desc, series_number=1,
                  instance_number=1, manufacturer="test", manufacturer_model_name="test", software_versions="0",
                  device_serial_number="0")
    hd_label = hd.seg.Segmentation(pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.LABELMAP,
                                   series_instance_uid=hd.UID(), sop_instance_uid=hd.UID(),
                                   series_description="gold", **common)
    hd_label.save_as(root / "hd_labelmap.dcm")
    hd_binary = hd.seg.Segmentation(pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                                    series_instance_uid=hd.UID(), sop_instance_uid=hd.UID(),
                                    series_description="binary", **common)
    hd_binary.save_as(root / "hd_binary.dcm")
    # BINARY with two overlapping segments (per-frame SegmentIdentificationSequence)
    desc2 = desc + [hd.seg.SegmentDescription(2, "margin", cat, typ, hd.seg.SegmentAlgorithmTypeValues.MANUAL)]
    margin = np.zeros(grid.shape_kji, np.uint8)
    margin[2:5, 3:7, 4:9] = 1  # overlaps the liver mask
    two = np.stack([mask, margin], axis=-1)
    hd_overlap = hd.seg.Segmentation(pixel_array=two, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                                     series_instance_uid=hd.UID(), sop_instance_uid=hd.UID(),
                                     series_description="binary overlapping",
                                     **{**common, "segment_descriptions": desc2})
    hd_overlap.save_as(root / "hd_binary_overlap.dcm")
    return {
        "grid": grid, "image": image, "series": series, "reference": reference, "labelmap": lm,
        "core_seg": Path(core_seg.path), "hd_labelmap": root / "hd_labelmap.dcm", "hd_binary": root / "hd_binary.dcm",
        "hd_binary_overlap": root / "hd_binary_overlap.dcm", "margin": margin,
    }


@pytest.fixture
def glue(monkeypatch, tmp_path, dicom_data):
    slicer = slicer_standin.install(monkeypatch, tmp_path)
    module, plugin_module = slicer_standin.load_glue(monkeypatch, REPO)
    plugin_module.DICOMLabelMapSegPlugin(type("Parent", (), {})())  # module discovery registers the plugin
    db = slicer.dicomDatabase
    for p in dicom_data["series"].paths:
        db.insert(p)
    for key in ("core_seg", "hd_labelmap", "hd_binary", "hd_binary_overlap"):
        db.insert(dicom_data[key])
    return slicer, module, plugin_module


def series_uid(path):
    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def load_volume(slicer, dicom_data, reversed_k=False):
    """Model Slicer's scalar volume plugin: a volume node with DICOM.instanceUIDs in k order,
    in the SH under its series UID (optionally with reversed slice order)."""
    grid, image = dicom_data["grid"], dicom_data["image"]
    uids = list(dicom_data["series"].sop_instance_uids)
    array = image
    if reversed_k:
        d = grid.direction.copy()
        d[:, 2] *= -1
        grid = Grid(grid.shape_kji, grid.spacing_ijk, tuple(grid.index_to_lps(np.array([0, 0, grid.shape_kji[0] - 1]))), d)
        array, uids = image[::-1], uids[::-1]
    vol = slicer.util.addVolumeFromArray(array, sb.ijk_to_ras_from_grid(grid), "T1")
    vol.SetAttribute("DICOM.instanceUIDs", " ".join(uids))
    shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
    shn.SetItemUID(shn.CreateItem(0, vol), "DICOM", dicom_data["series"].series_instance_uid)
    return vol, grid, array


# ----------------------------------------------------------------------------- registration
def test_registration_and_tags(glue):
    slicer, module, plugin_module = glue
    cls = slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]
    assert cls is plugin_module.DICOMLabelMapSegPluginClass  # the class, not an instance
    plugin = cls()
    assert isinstance(plugin, slicer_standin.DICOMPlugin)
    for key, tag in sb.DICOM_TAGS.items():  # every tag the plugin queries is pre-cacheable
        assert plugin.tags[key] == tag
    assert plugin.tags["frameOfReferenceUID"] == "0020,0052"  # base tags kept


# ----------------------------------------------------------------------------- examine
def test_examine_claims_labelmap_segs(glue, dicom_data):
    slicer, _, _ = glue
    plugin = slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]()
    image_files = [str(p) for p in dicom_data["series"].paths]
    file_lists = [image_files, [str(dicom_data["core_seg"])], [str(dicom_data["hd_labelmap"])],
                  [str(dicom_data["hd_binary"])]]
    loadables = plugin.examineForImport(file_lists)
    by_file = {l.files[0]: l for l in loadables}
    assert not any(f in by_file for f in image_files)  # images are the scalar volume plugin's
    core = by_file[str(dicom_data["core_seg"])]
    assert core.confidence == 0.99 and core.selected and core.warning == ""
    assert core.name == "1003: trial_003_watershed"  # SeriesNumber: SeriesDescription
    assert core.uid == str(pydicom.dcmread(dicom_data["core_seg"], stop_before_pixels=True).SOPInstanceUID)
    assert core.referencedSeriesUID == dicom_data["series"].series_instance_uid
    assert sorted(core.referencedInstanceUIDs) == sorted(dicom_data["series"].sop_instance_uids)
    assert by_file[str(dicom_data["hd_labelmap"])].confidence == 0.99
    binary = by_file[str(dicom_data["hd_binary"])]
    assert binary.confidence == sb.CONFIDENCE_BINARY_FALLBACK
    # cached: a second call returns the same objects without re-reading
    again = plugin.examineForImport(file_lists)
    assert [id(l) for l in again] == [id(l) for l in loadables]
    assert plugin.examine(file_lists) == []  # DICOMUtils' fallback finds nothing more


def test_examine_leaves_binary_to_dcmqi_plugin(glue, dicom_data):
    slicer, _, _ = glue
    slicer.modules.dicomPlugins["DICOMSegmentationPlugin"] = object
    plugin = slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]()
    loadables = plugin.examineForImport([[str(dicom_data["hd_binary"])], [str(dicom_data["hd_labelmap"])]])
    assert [l.files[0] for l in loadables] == [str(dicom_data["hd_labelmap"])]
    assert loadables[0].confidence > 0.95


def test_file_values_are_what_ctk_returns(glue, dicom_data):
    slicer, _, _ = glue
    db = slicer.dicomDatabase
    f = str(dicom_data["core_seg"])
    assert db.fileValue(f, "0008,0016") == SegSopClass.LABELMAP
    assert db.fileValue(str(dicom_data["hd_binary"]), "0008,0016") == SegSopClass.SEGMENTATION
    assert db.fileValue(f, "0008,0060") == "SEG"
    assert db.fileValue(f, "0008,1115") == ""  # sequences are not in the CTK cache


# ----------------------------------------------------------------------------- load
@pytest.mark.parametrize("reversed_k", [False, True])
def test_load_with_reference_volume(glue, dicom_data, reversed_k):
    slicer, module, _ = glue
    vol, vol_grid, _ = load_volume(slicer, dicom_data, reversed_k)
    plugin = slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]()
    loadable = plugin.examineForImport([[str(dicom_data["core_seg"])]])[0]
    seg_node = plugin.load(loadable)
    assert seg_node and seg_node.GetName() == "1003: trial_003_watershed"
    assert seg_node.GetAttribute("DICOM.instanceUIDs") == loadable.uid
    assert seg_node.GetNodeReference("referenceImageGeometryRef") is vol
    shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(None)
    assert shn.GetItemDataNode(shn.GetItemByUID("DICOM", series_uid(dicom_data["core_seg"]))) is seg_node
    segs = seg_node.GetSegmentation().segments
    assert [s.name for s in segs.values()] == ["liver", "tumour", "nothing yet"]  # empty segment kept
    liver = segs[next(iter(segs))]
    assert liver.color == pytest.approx((200 / 255, 100 / 255, 50 / 255))
    assert "SCT^10200004^Liver" in liver.tags["TerminologyEntry"] and "Tissue" not in liver.tags["TerminologyEntry"]
    assert liver.tags[sb.TAG_ALGORITHM_NAME] == "watershed"
    assert liver.tags[sb.TAG_ALGORITHM_TYPE] == "AUTOMATIC"
    # the segment labelmaps are on the loaded volume's grid (reversed or not)
    assert np.allclose(liver.layer[1], vol.ijk_to_ras)
    # no temporary nodes left behind
    assert not slicer.mrmlScene.of_class("vtkMRMLLabelMapVolumeNode")
    # voxels and label values come back through the export path of the Logic
    back = module.AdaptiveBrushDicomLogic().segmentationToLabelMap(seg_node, vol)
    expected = dicom_data["labelmap"].array[::-1] if reversed_k else dicom_data["labelmap"].array
    assert back.grid == vol_grid
    assert np.array_equal(back.array, expected)
    assert [(s.label, s.name, s.color) for s in back.segments] == [
        (1, "liver", (200, 100, 50)), (300, "tumour", (10, 220, 40)), (7, "nothing yet", (1, 2, 3))]
    assert back.segments[0].terminology == LIVER and back.segments[0].algorithm_parameters == {"level": 3}


def test_load_without_reference_volume_sets_no_geometry(glue, dicom_data):
    slicer, _, _ = glue
    plugin = slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]()
    loadable = plugin.examineForImport([[str(dicom_data["hd_labelmap"])]])[0]
    seg_node = plugin.load(loadable)
    # Slicer links it later, when the referenced volume gets its DICOMInstanceUID
    assert seg_node.GetNodeReference("referenceImageGeometryRef") is None
    shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(None)
    item = shn.GetItemByDataNode(seg_node)
    assert sorted(shn.items[item]["attributes"]["DICOM.ReferencedInstanceUIDs"].split()) == sorted(
        dicom_data["series"].sop_instance_uids)
    seg = next(iter(seg_node.GetSegmentation().segments.values()))
    assert seg.name == "liver" and int(seg.mask().sum()) == int((dicom_data["labelmap"].array == 1).sum())


def test_load_binary_seg_with_overlap_as_layers(glue, dicom_data):
    slicer, _, _ = glue
    vol, _, _ = load_volume(slicer, dicom_data)
    plugin = slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]()
    loadable = plugin.examineForImport([[str(dicom_data["hd_binary_overlap"])]])[0]
    seg_node = plugin.load(loadable)
    segs = list(seg_node.GetSegmentation().segments.values())
    assert [s.name for s in segs] == ["liver", "margin"]
    assert seg_node.GetSegmentation().GetNumberOfLayers() == 2  # overlap kept, in two layers
    assert np.array_equal(segs[0].mask(), dicom_data["labelmap"].array == 1)
    assert np.array_equal(segs[1].mask(), dicom_data["margin"] == 1)


def test_load_single_segment_binary_seg(glue, dicom_data):
    slicer, _, _ = glue
    load_volume(slicer, dicom_data)
    plugin = slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]()
    loadable = plugin.examineForImport([[str(dicom_data["hd_binary"])]])[0]
    seg_node = plugin.load(loadable)
    seg = next(iter(seg_node.GetSegmentation().segments.values()))
    assert np.array_equal(seg.mask(), dicom_data["labelmap"].array == 1)


def test_load_series_selects_our_plugin_over_dcmqi(glue, dicom_data):
    slicer, module, _ = glue

    class DcmqiLike(slicer_standin.DICOMPlugin):  # Slicer >= 5.12 / QR: every SEG at 0.95
        loaded = []

        def examineForImport(self, fileLists):  # noqa: N802
            out = []
            for files in fileLists:
                for f in files:
                    if slicer.dicomDatabase.fileValue(f, "0008,0060") == "SEG":
                        l = slicer_standin.DICOMLoadable()
                        l.files, l.confidence, l.selected = [f], 0.95, True
                        out.append(l)
            return out

        def load(self, loadable):
            DcmqiLike.loaded.append(loadable.files[0])
            return None

    slicer.modules.dicomPlugins["DICOMSegmentationPlugin"] = DcmqiLike
    load_volume(slicer, dicom_data)
    nodes = module.AdaptiveBrushDicomLogic().loadSegSeries([series_uid(dicom_data["core_seg"])])
    assert len(nodes) == 1 and DcmqiLike.loaded == []


# ----------------------------------------------------------------------------- export
def test_export_writes_verified_seg_into_database(glue, dicom_data, tmp_path):
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

    slicer, module, _ = glue
    vol, _, _ = load_volume(slicer, dicom_data, reversed_k=True)
    logic = module.AdaptiveBrushDicomLogic()
    seg_node = logic.labelMapToSegmentationNode(dicom_data["labelmap"], "edited", referenceVolumeNode=vol)
    result = logic.exportSegmentationToDicomSeg(seg_node, vol, seriesDescription="trial_004_levelset",
                                                seriesNumber=1004, outputDirectory=str(tmp_path))
    assert result.path.parent == tmp_path and slicer.dicomDatabase.copied[str(result.path)] is True
    decoded = read_seg(result.path, reference=dicom_data["reference"])
    assert decoded.sop_class_uid == SegSopClass.LABELMAP
    assert np.array_equal(decoded.labelmap.array, dicom_data["labelmap"].array)
    assert [s.name for s in decoded.labelmap.segments] == ["liver", "tumour", "nothing yet"]
    assert decoded.series_description == "trial_004_levelset"
    # a second export of the same content does not overwrite the first file
    again = logic.exportSegmentationToDicomSeg(seg_node, vol, seriesDescription="trial_004_levelset",
                                               seriesNumber=1004, outputDirectory=str(tmp_path))
    assert again.path != result.path
    # no temporary nodes or colour tables left
    assert not slicer.mrmlScene.of_class("vtkMRMLLabelMapVolumeNode")
    assert not slicer.mrmlScene.of_class("vtkMRMLColorTableNode")


def test_export_refuses_overlap_and_non_dicom_volume(glue, dicom_data, tmp_path):
    slicer, module, _ = glue
    vol, grid, _ = load_volume(slicer, dicom_data)
    logic = module.AdaptiveBrushDicomLogic()
    a = np.zeros((2,) + grid.shape_kji, np.uint8)
    a[0, 1:3, 1:3, 1:3] = 1
    a[1, 1:4, 1:4, 1:4] = 1  # shares 8 voxels with layer 0
    lm = LabelMap(a, grid, [Segment(1, "A", (1, 1, 1)), Segment(1, "B", (2, 2, 2), layer=1)])
    seg_node = logic.labelMapToSegmentationNode(lm, "overlapping", referenceVolumeNode=vol)
    assert seg_node.GetSegmentation().GetNumberOfLayers() == 2
    with pytest.raises(OverlapError, match="'A' and 'B' share 8 voxels"):
        logic.exportSegmentationToDicomSeg(seg_node, vol, outputDirectory=str(tmp_path))
    plain = slicer.util.addVolumeFromArray(np.zeros(grid.shape_kji, np.int16), sb.ijk_to_ras_from_grid(grid), "plain")
    seg2 = logic.labelMapToSegmentationNode(dicom_data["labelmap"], "s", referenceVolumeNode=plain)
    with pytest.raises(UserError, match="not loaded from the DICOM database"):
        logic.exportSegmentationToDicomSeg(seg2, plain, outputDirectory=str(tmp_path))


def test_plugin_export_path(glue, dicom_data, tmp_path):
    slicer, module, _ = glue
    vol, _, _ = load_volume(slicer, dicom_data)
    seg_node = module.AdaptiveBrushDicomLogic().labelMapToSegmentationNode(
        dicom_data["labelmap"], "exported by dialog", referenceVolumeNode=vol)
    shn = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(None)
    item = shn.CreateItem(0, seg_node)
    plugin = slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]()
    exportables = plugin.examineForExport(item)
    assert len(exportables) == 1 and exportables[0].pluginClass == "DICOMLabelMapSegPlugin"
    exportables[0].directory = str(tmp_path)
    exportables[0].setTag("SeriesNumber", "12")
    assert plugin.export(exportables) == ""
    assert list(tmp_path.glob("SEG_12_*.dcm"))
    exportables[0].setTag("SeriesNumber", "twelve")
    assert "SeriesNumber" in plugin.export(exportables)
    # volumes without DICOM.instanceUIDs are not offered
    vol.attributes.pop("DICOM.instanceUIDs")
    assert plugin.examineForExport(item) == []


def test_synthetic_dicom_from_volume(glue, dicom_data, tmp_path):
    slicer, module, _ = glue
    grid = dicom_data["grid"]
    vol = slicer.util.addVolumeFromArray(dicom_data["image"], sb.ijk_to_ras_from_grid(grid), "plain volume")
    series = module.AdaptiveBrushDicomLogic().createSyntheticDicom(vol, outputDirectory=str(tmp_path / "syn"),
                                                                   load=False)
    assert len(series.paths) == grid.shape_kji[0]
    assert all(str(p) in slicer.dicomDatabase.inserted for p in series.paths)


# ----------------------------------------------------------------------------- dependencies
def test_dependencies_ask_then_pip_install_on_510(glue, monkeypatch):
    slicer, module, _ = glue
    slicer.app.testingEnabled = lambda: False
    versions = {"pydicom": "2.4.4", "highdicom": None, "SimpleITK": "2.4.0", "slicerio": "1.1"}
    monkeypatch.setattr(module.bridge, "installed_versions", lambda names=None: dict(versions))
    slicer.recorder.confirm = False
    assert module.ensureDependencies(["load"]) is False
    assert slicer.recorder.calls[-1][0] == "confirm" and "restart" in slicer.recorder.calls[-1][1]
    slicer.recorder.confirm = True

    def pip_install(requirements, **kw):
        slicer.recorder.calls.append(("pip_install", requirements))
        versions.update(pydicom="3.0.2", highdicom="0.27.0")

    slicer.util.pip_install = pip_install
    assert module.ensureDependencies(["load"]) is True
    pip_calls = [c for c in slicer.recorder.calls if c[0] == "pip_install"]
    assert pip_calls == [("pip_install", ["pydicom>=3.0.1", "highdicom>=0.27"])]  # a list: no shell splitting


def test_dependencies_never_installed_in_testing_mode(glue, monkeypatch):
    slicer, module, _ = glue
    monkeypatch.setattr(module.bridge, "installed_versions", lambda names=None: {"pydicom": "3.0.2"})
    assert module.ensureDependencies(["load"]) is False
    assert not [c for c in slicer.recorder.calls if c[0] in ("confirm", "pip_install")]


# ----------------------------------------------------------------------------- queries / compare / migrate
def test_segmentations_for_volume_and_compare(glue, dicom_data):
    slicer, module, _ = glue
    vol, _, _ = load_volume(slicer, dicom_data)
    logic = module.AdaptiveBrushDicomLogic()
    infos = logic.segmentationsForVolume(dicom_data["series"].series_instance_uid)
    by_desc = {i.series_description: i for i in infos}
    assert by_desc["gold"].is_gold and by_desc["trial_003_watershed"].kind == "trial"
    assert infos[0].is_gold  # gold standards first
    slicer.modules.crosssegmentationexplorer = object()
    volume, segs = logic.compareTrials(dicom_data["series"].series_instance_uid,
                                       [by_desc["gold"].series_instance_uid,
                                        by_desc["trial_003_watershed"].series_instance_uid])
    assert volume is vol and len(segs) == 2
    assert all(s.GetNodeReference("referenceImageGeometryRef") is vol for s in segs)  # CSE links by this
    assert ("selectModule", "CrossSegmentationExplorer") in slicer.recorder.calls
    assert ("reference", "CurrentVolumeNode", vol.GetID()) in slicer.recorder.calls
    # loading again reuses the nodes (CSE skips loaded SEGs the same way)
    _, again = logic.compareTrials(dicom_data["series"].series_instance_uid,
                                   [by_desc["gold"].series_instance_uid], openExplorer=False)
    assert again[0] is segs[0]


def test_migrate_indexes_written_files_by_link(glue, dicom_data, monkeypatch, tmp_path):
    import shutil

    from AdaptiveBrushDicomLib.runs import migrate

    slicer, module, _ = glue
    run = tmp_path / "run1"
    seen = {}

    def fake_migrate_paths(paths, *, volume=None, progress=True, stream=None, **kw):
        seen.update(paths=paths, volume=volume)
        stream.write("run1: 1/1 trial_003\n")
        (run / "dicom" / "segmentations").mkdir(parents=True)
        shutil.copy(dicom_data["core_seg"], run / "dicom" / "segmentations" / "trial_003.dcm")
        return migrate.MigrationSummary([migrate.JobReport("run", run, "run1", status="migrated")])

    monkeypatch.setattr(migrate, "migrate_paths", fake_migrate_paths)
    lines = []
    summary = module.AdaptiveBrushDicomLogic().migrateResultsFolder(str(run), progressCallback=lines.append)
    assert seen == {"paths": [str(run)], "volume": None} and lines == ["run1: 1/1 trial_003"]
    assert slicer.dicomDatabase.copied[str(run / "dicom" / "segmentations" / "trial_003.dcm")] is False
    assert summary.exit_code == 0


def test_module_self_test_logic_under_standin(glue):
    """The module's own in-Slicer test (AdaptiveBrushDicomTest), run against the stand-in."""
    _, module, _ = glue
    test = module.AdaptiveBrushDicomTest("test_segmentation_round_trip_in_scene")
    test.setUp()
    test.test_segmentation_round_trip_in_scene()


def test_dcmqi_written_labelmap_segs_from_corpus(glue):
    """LABELMAP SEGs written by dcmqi (with a Background item, one with PixelPaddingValue 5)."""
    from conftest import corpus_path

    slicer, _, _ = glue
    files = [str(corpus_path("dcmqi", name)) for name in ("sparse-labelmap-noppv.dcm", "sparse-labelmap-ppv5.dcm")]
    for f in files:
        slicer.dicomDatabase.insert(f)
    plugin = slicer.modules.dicomPlugins["DICOMLabelMapSegPlugin"]()
    loadables = plugin.examineForImport([[f] for f in files])
    assert [(l.confidence, l.name) for l in loadables] == [(0.99, "300: Segmentation")] * 2
    masks = []
    for loadable in loadables:
        seg_node = plugin.load(loadable)
        segs = list(seg_node.GetSegmentation().segments.values())
        assert [s.name for s in segs] == ["Liver"]  # Background (segment 0) is not a segment
        assert seg_node.GetNodeReference("referenceImageGeometryRef") is None  # referenced series not loaded
        masks.append(segs[0].mask())
    assert masks[0].sum() > 0 and np.array_equal(masks[0], masks[1])  # padding value 5 is background
