"""Tests of :class:`AdaptiveBrushDicomLib.store.manager.DicomManager` over the SQLite index and over
the Slicer adapter stand-in.

SEG writing/decoding tests skip only if the core modules ``seg_write`` / ``seg_read`` /
``synthetic`` / ``reference`` are missing.
"""

from __future__ import annotations


import numpy as np
import pytest

from AdaptiveBrushDicomLib.slicer.ctk_database import SlicerDatabaseAdapter
from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.store.sqlite.index import SqliteDicomIndex
from AdaptiveBrushDicomLib.store.manager import DicomManager

from test_index import FakeCtkDatabase, build_corpus, build_migrated_corpus, clone_seg

#: The labelmap ``make_seg_template`` encodes (k ascending along z).
EXPECTED = np.zeros((4, 8, 8), np.int64)
EXPECTED[1:3, 2:5, 2:5] = 1
EXPECTED[2, 6, 6] = 2


@pytest.fixture
def corpus(tmp_path):
    return build_corpus(tmp_path / "data")


@pytest.fixture
def manager(tmp_path):
    mgr = DicomManager(db_path=tmp_path / "db" / "index.sqlite")
    yield mgr
    mgr.close()


# ------------------------------------------------------------------ database handling
def test_database_is_created_lazily(tmp_path):
    path = tmp_path / "lazy" / "index.sqlite"
    mgr = DicomManager(db_path=path)
    assert not path.exists()
    db = mgr.ensure_database_initialized()
    assert isinstance(db, SqliteDicomIndex) and path.exists()
    assert mgr.ensure_database_initialized() is db and mgr.database is db
    mgr.close()


def test_default_database_location(tmp_path, monkeypatch):
    monkeypatch.delenv("ABDICOM_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    mgr = DicomManager()
    assert mgr.database.path == tmp_path / "AdaptiveBrushDicom" / "index.sqlite"
    mgr.close()


def test_import_and_queries(corpus, manager):
    report = manager.import_dicom_folder(corpus.root)
    assert report.ok and report.added == corpus.n_files
    segs = manager.get_segmentations_for_volume(corpus.volume_uid)
    assert [(s.run_name, s.kind, s.trial_number) for s in segs][:2] == [("MRBrainTumor1", "gold", None),
                                                                       ("run_A", "trial", 1)]
    assert [s.trial_number for s in manager.get_trials_for_run(corpus.run_a)] == [1, 2, 10]
    assert [g.series_instance_uid for g in manager.get_gold_for_volume(corpus.volume_uid)] == [corpus.gold_uid]
    with pytest.raises(UserError, match="no such folder"):
        manager.import_dicom_folder(corpus.root / "nope")


def test_seg_file_lookup_errors(corpus, manager, tmp_path):
    manager.import_dicom_folder(corpus.root)
    with pytest.raises(UnknownUIDError, match="1.2.3.4"):
        manager.load_segmentation_by_uid("1.2.3.4")
    with pytest.raises(UserError, match="4 instances.*SOPInstanceUID"):
        manager.seg_file_for_uid(corpus.volume_uid)
    (corpus.root / "runA" / "t2.dcm").unlink()
    with pytest.raises(UserError, match="no longer exists.*remove-missing"):
        manager.seg_file_for_uid(corpus.trials_a[2])
    assert manager.seg_file_for_uid(corpus.trials_a[1]) == (corpus.root / "runA" / "t1.dcm").resolve()


def test_no_auto_import(tmp_path, corpus):
    mgr = DicomManager(db_path=tmp_path / "x.sqlite", auto_import=False)
    assert mgr.get_segmentations_for_volume(corpus.volume_uid) == []
    mgr.close()


# ------------------------------------------------------------------ decoding (needs seg_read)
def test_load_segmentation_by_series_and_sop_uid(corpus, manager):
    manager.import_dicom_folder(corpus.root)
    seg = manager.get_segmentations_for_volume(corpus.volume_uid)[3]  # run_A trial 10
    for uid in (seg.series_instance_uid, seg.sop_instance_uids[0]):
        lm = manager.load_segmentation_by_uid(uid)
        assert lm.grid.shape_kji == (4, 8, 8)
        assert [s.name for s in lm.segments] == ["Tumor", "Edema"]
        values = {s.name: s.label for s in lm.segments}
        expected = np.where(EXPECTED == 1, values["Tumor"], np.where(EXPECTED == 2, values["Edema"], 0))
        np.testing.assert_array_equal(lm.array, expected)


def test_load_without_reference_in_database(corpus, manager):
    """Only the SEG is indexed: decoded on the grid of its own frames (slices 1..2)."""
    manager.database.import_paths([corpus.root / "runA" / "t1.dcm"])
    decoded = manager.decode_segmentation_by_uid(corpus.trials_a[1])
    assert decoded.labelmap.grid.shape_kji[1:] == (8, 8)
    assert int((decoded.labelmap.array != 0).sum()) == int((EXPECTED != 0).sum())


# ------------------------------------------------------------------ write + index + read back
def test_synthetic_export_query_load_round_trip(tmp_path, manager):
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from abdicom_testkit.phantom import make_phantom, phantom_grid

    grid = phantom_grid(shape=(6, 20, 24))
    image, labels, segments = make_phantom(grid)
    series = manager.create_synthetic_dicom(image, grid, tmp_path / "ct", name="phantom")
    assert manager.database.files_for_series(series.series_instance_uid) == [p.resolve() for p in series.paths]
    for n, algo in ((2, "watershed"), (1, "level_set")):
        res = manager.export_segmentation_as_dicom_seg(
            LabelMap(labels, grid, segments), tmp_path / "ct", tmp_path / f"trial_{n}.dcm",
            series_description=f"trial_{n:03d}_{algo}", series_number=n)
        assert res.path.exists()
    gold = manager.export_segmentation_as_dicom_seg(LabelMap(labels, grid, segments), tmp_path / "ct",
                                                    tmp_path / "gold.dcm", series_description="gold_standard")
    segs = manager.get_segmentations_for_volume(series.series_instance_uid)
    assert [(s.kind, s.trial_number) for s in segs] == [("gold", None), ("trial", 1), ("trial", 2)]
    assert segs[2].algorithms[-1] == "watershed" and segs[1].series_description == "trial_001_level_set"
    assert list(segs[0].segment_labels) == [s.name for s in segments]
    assert manager.get_gold_for_volume(series.series_instance_uid)[0].series_instance_uid == \
        gold.series_instance_uid
    lm = manager.load_segmentation_by_uid(gold.series_instance_uid)
    assert lm.grid.shape_kji == grid.shape_kji
    np.testing.assert_array_equal(lm.array, labels)  # label values (incl. 300) restored exactly
    # re-running the same steps changes nothing in the database (deterministic UIDs, same bytes)
    counts = manager.database.counts()
    manager.create_synthetic_dicom(image, grid, tmp_path / "ct", name="phantom")
    assert manager.database.counts() == counts


def test_manager_over_slicer_adapter(corpus):
    fake = FakeCtkDatabase()
    mgr = DicomManager(SlicerDatabaseAdapter(fake))
    assert mgr.import_dicom_folder(corpus.root).added == corpus.n_files
    segs = mgr.get_segmentations_for_volume(corpus.volume_uid)
    assert [s.kind for s in segs].count("trial") == 5
    lm = mgr.load_segmentation_by_uid(corpus.trials_b[2])
    assert lm.grid.shape_kji == (4, 8, 8) and int((lm.array != 0).sum()) == int((EXPECTED != 0).sum())


def test_new_trial_appears_after_import(corpus, manager, tmp_path):
    manager.import_dicom_folder(corpus.root)
    uid, _ = clone_seg(corpus.root / "gold" / "gold.dcm", tmp_path / "late" / "t3.dcm",
                       series_description="trial_003_watershed", series_number=3, study_uid=corpus.run_a,
                       study_description="run_A")
    manager.import_dicom_folder(tmp_path / "late")
    assert [s.series_instance_uid for s in manager.get_trials_for_run(corpus.run_a)][2] == uid


def test_trials_of_one_run_in_a_shared_study(tmp_path, manager):
    c = build_migrated_corpus(tmp_path / "m")
    manager.import_dicom_folder(c.root)
    assert [t.trial_number for t in manager.get_trials_for_run(c.study_uid, "optuna_a")] == [1, 2, 3]
    assert [t.series_instance_uid for t in manager.get_trials_for_run(c.study_uid, "optuna_b")] == \
        [c.trials_b[n] for n in (1, 2, 3)]
    assert len(manager.get_trials_for_run(c.study_uid)) == 6
    assert manager.get_trials_for_run(c.study_uid, "nope") == []


def test_migrated_demo_run_end_to_end(tmp_path, manager):
    """What ``abdicom migrate`` writes is indexed and queried as gold + one run of trials."""
    from abdicom_testkit import demo_data

    paths = demo_data.build_demo_legacy(tmp_path / "legacy", n_trials=3, shape=(10, 32, 32))
    summary = demo_data.migrate_paths([paths.runs_dir, paths.gold_standards_dir], volumes_dir=paths.volumes_dir,
                                      progress=False)
    assert summary.exit_code == 0
    report = manager.import_dicom_folder(paths.root)
    assert report.ok and report.added > 0
    mr = [s for st in manager.database.studies() for s in manager.database.series_for_study(st.study_instance_uid)
          if s.modality != "SEG"]
    assert len(mr) == 1  # the run's and the gold's copies of the volume are one series
    segs = manager.get_segmentations_for_volume(mr[0].series_instance_uid)
    trials = [s for s in segs if s.kind == "trial"]
    assert segs[0].kind == "gold" and len(trials) == 3 - len(paths.pruned_trials)
    assert {t.run_name for t in trials} == {paths.run_dir.name}
    assert manager.get_trials_for_run(segs[0].study_instance_uid, paths.run_dir.name) == trials
    lm = manager.load_segmentation_by_uid(segs[0].series_instance_uid)
    assert lm.grid.shape_kji == (10, 32, 32) and lm.array.any()
