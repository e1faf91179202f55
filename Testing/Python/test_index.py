"""Tests of the embedded SQLite DICOM index (``index.py``) and the pure query logic and the
Slicer adapter core half (``database.py``).

The DICOM files are real: a small CT series written with pydicom, a LABELMAP SEG built
with highdicom from a small labelmap, and trial / gold SEGs cloned from it with pydicom
(new UIDs, study, descriptions) so that building a corpus of runs stays fast.

The helpers at the top (``make_ct_series``, ``make_seg_template``, ``clone_seg``,
``build_corpus``) are imported by ``test_manager.py`` and ``test_cli_db.py``.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.store import database_protocol, records, seg_order, seg_records, series_kind
from AdaptiveBrushDicomLib.store.sqlite import connection as sqlite_connection
from AdaptiveBrushDicomLib.store.sqlite import index as sqlite_index
from AdaptiveBrushDicomLib.store.sqlite import ingest as sqlite_ingest
from AdaptiveBrushDicomLib.store.sqlite import parse as sqlite_parse
from AdaptiveBrushDicomLib.store.sqlite import schema as sqlite_schema
from AdaptiveBrushDicomLib.slicer import ctk_database
from AdaptiveBrushDicomLib.slicer.ctk_database import SlicerDatabaseAdapter
from AdaptiveBrushDicomLib.store.series_kind import classify_series
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.store.sqlite.index import SqliteDicomIndex

CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"


# ============================================================ DICOM builders (shared)
def make_ct_series(folder: Path, *, n_slices: int = 4, patient_id: str = "P1", study_uid: str | None = None,
                   series_uid: str | None = None, study_description: str = "volumes",
                   series_description: str = "CT", size: int = 8) -> tuple[str, str, list[Path]]:
    """Write a tiny axial CT series; returns (study UID, series UID, paths in k order)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    for_uid = generate_uid()
    paths = []
    for k in range(n_slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = CT_SOP_CLASS
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID, ds.PatientName = patient_id, f"{patient_id}^Test"
        ds.PatientBirthDate, ds.PatientSex = "", ""
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, for_uid
        ds.StudyDescription, ds.SeriesDescription = study_description, series_description
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = \
            "20260101", "120000", "1", "", ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = "CT", 1, k + 1, "test"
        ds.ImagePositionPatient = [0.0, 0.0, 2.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 2.0
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.SamplesPerPixel, ds.PixelRepresentation, ds.PhotometricInterpretation = 1, 0, "MONOCHROME2"
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.full((size, size), k * 10, np.uint16).tobytes()
        # write slices in reverse file-name order so ordering by InstanceNumber is tested
        p = folder / f"img{n_slices - k:03d}.dcm"
        ds.save_as(p, enforce_file_format=True)
        paths.append(p)
    return study_uid, series_uid, paths


def make_seg_template(ref_paths: list[Path], out_path: Path, *, labels: tuple[str, ...] = ("Tumor", "Edema"),
                      algorithm: str = "watershed", series_description: str = "gold_standard") -> Path:
    """A real LABELMAP SEG (highdicom) of a small labelmap on the series ``ref_paths``."""
    import highdicom as hd
    import pydicom
    from highdicom.sr.coding import CodedConcept
    from pydicom.uid import generate_uid

    sources = [pydicom.dcmread(p) for p in ref_paths]
    sources.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    lab = np.zeros((len(sources), rows, cols), np.uint8)
    lab[1:3, 2:5, 2:5] = 1
    lab[2, 6, 6] = 2
    tissue = CodedConcept("85756007", "SCT", "Tissue")
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=i + 1, segment_label=name, segmented_property_category=tissue,
            segmented_property_type=tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name=algorithm, version="1.0", family=CodedConcept("123109", "DCM", "Manual Processing")),
        )
        for i, name in enumerate(labels)
    ]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=lab, segmentation_type="LABELMAP", segment_descriptions=descriptions,
        series_instance_uid=generate_uid(), series_number=900, sop_instance_uid=generate_uid(), instance_number=1,
        manufacturer="test", manufacturer_model_name="test", software_versions="1", device_serial_number="1",
        series_description=series_description,
    )
    seg.save_as(out_path)
    return out_path


def clone_seg(template: Path, out_path: Path, *, series_description: str, series_number: int,
              study_uid: str | None = None, study_description: str | None = None,
              algorithm: str | None = None, referenced_series_uid: str | None = None,
              content_label: str | None = None, content_description: str | None = None) -> tuple[str, str]:
    """Copy a SEG with new Series/SOP UIDs (and optionally another study, description,
    algorithm name, referenced series). Returns (series UID, SOP UID)."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(template)
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesDescription = series_description
    ds.SeriesNumber = series_number
    if study_uid:
        ds.StudyInstanceUID = study_uid
    if study_description is not None:
        ds.StudyDescription = study_description
    if algorithm:
        for item in ds.SegmentSequence:
            if "SegmentAlgorithmName" in item:
                item.SegmentAlgorithmName = algorithm
            for ident in getattr(item, "SegmentationAlgorithmIdentificationSequence", []):
                ident.AlgorithmName = algorithm
    if referenced_series_uid:
        ds.ReferencedSeriesSequence[0].SeriesInstanceUID = referenced_series_uid
    if content_label is not None:
        ds.ContentLabel = content_label
    if content_description is not None:
        ds.ContentDescription = content_description
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out_path)
    return str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


@dataclass
class Corpus:
    root: Path
    study_uid: str
    volume_uid: str
    volume_paths: list[Path]
    gold_uid: str
    run_a: str
    run_b: str
    trials_a: dict[int, str] = field(default_factory=dict)   # trial number -> series UID
    trials_b: dict[int, str] = field(default_factory=dict)
    other_volume_uid: str = ""
    other_seg_uid: str = ""

    @property
    def n_files(self) -> int:
        return len(list(f for f in self.root.rglob("*") if f.is_file()))


def build_corpus(root: Path) -> Corpus:
    """Volume series + gold SEG (volume's study) + run A (3 trials, own study) + run B
    (2 trials) + an unrelated series with its own SEG (header-only realism: its frames
    still describe the first volume, so it is not meant to be decoded)."""
    from pydicom.uid import generate_uid

    study, volume, vpaths = make_ct_series(root / "volume", study_description="MRBrainTumor1")
    tpl = make_seg_template(vpaths, root / "template.dcm")
    gold, _ = clone_seg(tpl, root / "gold" / "gold.dcm", series_description="gold_standard", series_number=900,
                        study_uid=study, study_description="MRBrainTumor1", algorithm="manual_refinement",
                        referenced_series_uid=volume)
    tpl.unlink()
    run_a, run_b = generate_uid(), generate_uid()
    c = Corpus(root, study, volume, vpaths, gold, run_a, run_b)
    for n, algo in ((10, "watershed"), (2, "level_set"), (1, "watershed")):
        c.trials_a[n], _ = clone_seg(root / "gold" / "gold.dcm", root / "runA" / f"t{n}.dcm",
                                     series_description=f"trial_{n:03d}_{algo}", series_number=n, study_uid=run_a,
                                     study_description="run_A", algorithm=algo)
    for n in (1, 2):
        c.trials_b[n], _ = clone_seg(root / "gold" / "gold.dcm", root / "runB" / f"t{n}.dcm",
                                     series_description=f"trial_{n:03d}_region_growing", series_number=n,
                                     study_uid=run_b, study_description="run_B", algorithm="region_growing")
    other_study, other, _ = make_ct_series(root / "other", patient_id="P2", n_slices=2)
    c.other_volume_uid = other
    c.other_seg_uid, _ = clone_seg(root / "gold" / "gold.dcm", root / "other" / "seg.dcm",
                                   series_description="something", series_number=5, study_uid=other_study,
                                   referenced_series_uid=other)
    return c


@pytest.fixture
def corpus(tmp_path) -> Corpus:
    return build_corpus(tmp_path / "data")


@pytest.fixture
def db(tmp_path) -> SqliteDicomIndex:
    index = SqliteDicomIndex(tmp_path / "db" / "index.sqlite")
    yield index
    index.close()


# ============================================================ end to end
def test_import_and_queries(corpus, db):
    report = db.import_paths([corpus.root])
    assert report.ok, report.to_text()
    assert report.added == corpus.n_files == 4 + 1 + 3 + 2 + 2 + 1
    assert report.non_dicom == 0

    segs = db.segs_for_series(corpus.volume_uid)
    # grouped by study (run name): MRBrainTumor1 (gold), run_A (1, 2, 10), run_B (1, 2)
    assert [(s.run_name, s.kind, s.trial_number) for s in segs] == [
        ("MRBrainTumor1", "gold", None),
        ("run_A", "trial", 1), ("run_A", "trial", 2), ("run_A", "trial", 10),
        ("run_B", "trial", 1), ("run_B", "trial", 2),
    ]
    t10 = segs[3]
    assert t10.series_instance_uid == corpus.trials_a[10]
    assert t10.series_description == "trial_010_watershed"
    assert t10.series_number == 10
    assert t10.segment_labels == ("Tumor", "Edema")
    assert t10.algorithms == ("watershed",)
    assert t10.sop_class_uid == SegSopClass.LABELMAP and t10.is_labelmap
    assert t10.referenced_series_uids == (corpus.volume_uid,)
    assert t10.files == (corpus.root / "runA" / "t10.dcm",)
    assert segs[2].algorithms == ("level_set",)
    assert segs[0].algorithms == ("manual_refinement",)
    groups = seg_order.group_by_study(segs)
    assert list(groups) == [corpus.study_uid, corpus.run_a, corpus.run_b]

    assert [s.trial_number for s in db.trials_for_run(corpus.run_a)] == [1, 2, 10]
    assert [s.series_instance_uid for s in db.trials_for_run(corpus.run_b)] == [corpus.trials_b[1],
                                                                               corpus.trials_b[2]]
    assert db.trials_for_run(corpus.study_uid) == []  # the gold is not a trial
    gold = db.gold_for_volume(corpus.volume_uid)
    assert [g.series_instance_uid for g in gold] == [corpus.gold_uid]
    assert db.gold_for_volume(corpus.other_volume_uid) == []
    assert [s.series_instance_uid for s in db.segs_for_series(corpus.other_volume_uid)] == [corpus.other_seg_uid]
    assert db.segs_for_series("1.2.3.4") == []

    files = db.files_for_series(corpus.volume_uid)
    assert files == [p.resolve() for p in corpus.volume_paths]  # InstanceNumber order, not file names
    assert db.file_for_instance("9.9.9") is None

    series = db.series_for_study(corpus.study_uid)
    assert [(s.modality, s.n_instances) for s in series] == [("CT", 4), ("SEG", 1)]
    studies = {s.study_instance_uid: s for s in db.studies()}
    assert studies[corpus.run_a].study_description == "run_A"
    assert studies[corpus.run_a].n_instances == 3
    assert studies[corpus.study_uid].patient_name == "P1^Test"


def test_show_levels(corpus, db):
    db.import_paths([corpus.root])
    s = db.show(corpus.trials_a[2])
    assert s["level"] == "series" and s["seg"]["trial_number"] == 2 and s["seg"]["run_name"] == "run_A"
    v = db.show(corpus.volume_uid)
    assert v["level"] == "series" and v["referencing_segs"] == 6 and len(v["files"]) == 4
    sop = db.segs_for_series(corpus.volume_uid)[0].sop_instance_uids[0]
    i = db.show(sop)
    assert i["level"] == "instance" and i["referenced_series_uids"] == [corpus.volume_uid]
    assert [g["label"] for g in i["segments"]] == ["Tumor", "Edema"]
    assert len(i["sha256"]) == 64
    assert db.show(corpus.run_b)["level"] == "study"
    assert db.show("P2")["level"] == "patient"
    with pytest.raises(database_protocol.UnknownUIDError, match="1.2.3.999.*not in the index"):
        db.show("1.2.3.999")


# ============================================================ idempotence and conflicts
def _snapshot(db: SqliteDicomIndex) -> list:
    return sorted(db.conn.execute("SELECT sop_uid, path, sha256, indexed_at FROM instances").fetchall())


def test_reimport_is_idempotent(corpus, db):
    db.import_paths([corpus.root])
    before, counts = _snapshot(db), db.counts()
    again = db.import_paths([corpus.root, corpus.volume_paths[0]])  # also a file given twice
    assert again.added == 0 and again.unchanged == again.files_seen == corpus.n_files + 1
    assert again.ok
    assert _snapshot(db) == before and db.counts() == counts
    # the quick path trusts path + size + mtime; rehash=True reads every file again
    target = corpus.volume_paths[2]
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert db.import_paths([corpus.root / "volume"]).unchanged == 4
    report = db.import_paths([corpus.root / "volume"], rehash=True)
    assert report.unchanged == 3 and [c.path for c in report.conflicts] == [str(target.resolve())]
    assert db.verify(full=True).changed[0].path == str(target.resolve())
    assert db.verify().clean  # the quick verify cannot see it either


def test_same_uid_different_content_is_a_conflict(corpus, db, tmp_path):
    import pydicom

    db.import_paths([corpus.root])
    before = _snapshot(db)
    ds = pydicom.dcmread(corpus.volume_paths[0])
    ds.PixelData = np.full((8, 8), 999, np.uint16).tobytes()
    changed = tmp_path / "changed" / "x.dcm"
    changed.parent.mkdir()
    ds.save_as(changed)
    report = db.import_paths([changed])
    assert report.added == 0 and len(report.conflicts) == 1 and not report.ok
    c = report.conflicts[0]
    assert c.uid == str(ds.SOPInstanceUID) and c.path == str(changed)
    assert str(corpus.volume_paths[0].resolve()) in c.reason and "different content" in c.reason
    assert _snapshot(db) == before  # the indexed instance is kept
    # the indexed file itself rewritten with other bytes: a conflict too, with its own message
    ds.save_as(corpus.volume_paths[0])
    report = db.import_paths([corpus.volume_paths[0]])
    assert len(report.conflicts) == 1 and "changed since it was indexed" in report.conflicts[0].reason
    assert _snapshot(db) == before
    assert [c.path for c in db.verify().changed] == [str(corpus.volume_paths[0].resolve())]


def test_duplicate_in_one_batch(corpus, db, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(corpus.root / "volume", copy)
    report = db.import_paths([corpus.root / "volume", copy])
    assert report.added == 4 and report.unchanged == 4 and report.ok


def test_moved_file_is_relocated(corpus, db, tmp_path):
    db.import_paths([corpus.root / "volume"])
    moved = tmp_path / "moved"
    shutil.move(str(corpus.root / "volume"), moved)
    report = db.import_paths([moved])
    assert report.relocated == 4 and report.added == 0
    assert all(p.parent == moved.resolve() for p in db.files_for_series(corpus.volume_uid))


@pytest.mark.parametrize("in_memory", [True, False], ids=["in-memory", "streamed"])
def test_non_dicom_and_broken_files_are_counted(corpus, db, tmp_path, monkeypatch, in_memory):
    if not in_memory:  # the path taken for files larger than IN_MEMORY_MAX_BYTES
        monkeypatch.setattr(sqlite_parse, "IN_MEMORY_MAX_BYTES", 0)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not dicom")
    (junk / "empty.dcm").write_bytes(b"")
    (junk / "results.json").write_text("{}")
    data = corpus.volume_paths[0].read_bytes()
    (junk / "truncated_pixels.dcm").write_bytes(data[:-30])
    (junk / "truncated_header.dcm").write_bytes(data[:200])
    import pydicom

    ds = pydicom.dcmread(corpus.volume_paths[1])
    del ds.SOPInstanceUID
    ds.file_meta.MediaStorageSOPInstanceUID = ""
    ds.save_as(junk / "no_uid.dcm")
    report = db.import_paths([junk])
    assert report.files_seen == 6 and report.non_dicom == 3 and report.added == 0
    reasons = {Path(e.path).name: e.reason for e in report.errors}
    assert set(reasons) == {"truncated_pixels.dcm", "truncated_header.dcm", "no_uid.dcm"}
    assert "truncated" in reasons["truncated_pixels.dcm"]
    assert "truncated" in reasons["truncated_header.dcm"]
    assert "SOPInstanceUID" in reasons["no_uid.dcm"]
    assert db.counts()["instances"] == 0
    assert "3 errors" in report.to_text() and "no_uid.dcm" in report.to_text()
    good = db.import_paths([corpus.root / "volume"])
    assert good.added == 4 and good.ok
    first = corpus.volume_paths[0]
    sop = str(pydicom.dcmread(first, stop_before_pixels=True).SOPInstanceUID)
    assert db.show(sop)["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()


def test_missing_path_is_a_user_error(db, tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        db.import_paths([tmp_path / "nope"])


# ============================================================ crash safety
def test_exception_mid_batch_rolls_back(corpus, db):
    db.import_paths([corpus.root / "volume"])
    before, counts = _snapshot(db), db.counts()

    def boom(phase: str, done: int, total: int) -> None:
        if phase == "write" and done == 5:
            raise RuntimeError("injected failure")

    with pytest.raises(RuntimeError, match="injected"):
        db.import_paths([corpus.root], progress=boom)
    assert _snapshot(db) == before and db.counts() == counts
    assert not db.conn.in_transaction
    report = db.import_paths([corpus.root])  # the same batch works afterwards
    assert report.added == corpus.n_files - 4


def _import_and_die(db_path: str, folder: str, die_after: int) -> None:
    index = SqliteDicomIndex(db_path)

    def hook(phase: str, done: int, total: int) -> None:
        if phase == "write" and done == die_after:
            os._exit(17)  # no cleanup, no rollback: like a kill -9 in the middle of the batch

    index.import_paths([folder], progress=hook)
    os._exit(0)


def test_killed_process_leaves_previous_state(corpus, tmp_path):
    db_path = tmp_path / "crash.sqlite"
    with SqliteDicomIndex(db_path) as index:
        index.import_paths([corpus.root / "volume"])
        before = _snapshot(index)
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_import_and_die, args=(str(db_path), str(corpus.root), 6))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 17
    with SqliteDicomIndex(db_path) as index:
        assert index.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert _snapshot(index) == before
        assert index.import_paths([corpus.root]).added == corpus.n_files - 4


# ============================================================ concurrency
def _import_worker(db_path: str, folders: list[str], queue) -> None:
    try:
        with SqliteDicomIndex(db_path) as index:
            r = index.import_paths(folders)
        queue.put(("ok", r.added, r.unchanged, len(r.conflicts), len(r.errors)))
    except BaseException as exc:  # report everything to the parent
        queue.put(("error", repr(exc)))


def test_two_processes_import_at_once(tmp_path):
    from pydicom.uid import generate_uid

    shared = tmp_path / "shared"
    study = generate_uid()
    for s in range(6):
        make_ct_series(shared / f"s{s}", n_slices=10, study_uid=study)
    _, _, own_a = make_ct_series(tmp_path / "own_a", n_slices=5, study_uid=study)
    _, _, own_b = make_ct_series(tmp_path / "own_b", n_slices=5, patient_id="P9")
    db_path = tmp_path / "concurrent.sqlite"
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_import_worker, args=(str(db_path), [str(shared), str(own)], queue))
             for own in (tmp_path / "own_a", tmp_path / "own_b")]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert all(r[0] == "ok" for r in results), results
    assert sum(r[1] for r in results) == 60 + 10  # every instance added exactly once
    assert sorted(r[2] for r in results) in ([0, 60], [60, 0]) or sum(r[2] for r in results) == 60
    assert all(r[3] == 0 and r[4] == 0 for r in results)
    with SqliteDicomIndex(db_path) as index:
        counts = index.counts()
        assert counts["instances"] == 70 and counts["series"] == 8 and counts["studies"] == 2
        assert index.conn.execute("SELECT count(DISTINCT path) FROM instances").fetchone()[0] == 70
        assert index.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ============================================================ database file problems
def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    SqliteDicomIndex(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {sqlite_schema.SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(sqlite_connection.NewerSchemaError, match=rf"{path}.*schema version {sqlite_schema.SCHEMA_VERSION + 1}.*upgrade"):
        SqliteDicomIndex(path)


def test_foreign_sqlite_file_and_folder_are_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE x (a)")
    con.commit()
    con.close()
    with pytest.raises(sqlite_connection.IndexDatabaseError, match="not an AdaptiveBrushDicom index"):
        SqliteDicomIndex(other)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(sqlite_connection.IndexDatabaseError, match="garbage.sqlite.*not a usable"):
        SqliteDicomIndex(garbage)
    with pytest.raises(sqlite_connection.IndexDatabaseError, match="is a folder"):
        SqliteDicomIndex(tmp_path)


def test_read_only_database(corpus, tmp_path, monkeypatch):
    path = tmp_path / "ro.sqlite"
    with SqliteDicomIndex(path) as index:
        index.import_paths([corpus.root / "volume"])
    # root ignores file permissions, so simulate what os.access reports for a chmod 444 file;
    # the connection is then opened read-only and SQLite itself refuses writes
    monkeypatch.setattr(sqlite_index, "is_writable", lambda p: False)
    with SqliteDicomIndex(path) as index:
        assert index.read_only
        assert len(index.files_for_series(corpus.volume_uid)) == 4  # queries still work
        with pytest.raises(sqlite_connection.ReadOnlyIndexError, match=rf"{path}.*read-only.*--db"):
            index.import_paths([corpus.root])
        with pytest.raises(sqlite_connection.ReadOnlyIndexError):
            index.remove_missing()
        # even if the check were bypassed, SQLite's refusal becomes the same clear error
        index.read_only = False
        with pytest.raises(sqlite_connection.ReadOnlyIndexError, match="read-only"):
            index.import_paths([corpus.root])
    with pytest.raises(sqlite_connection.ReadOnlyIndexError, match="not writable"):
        SqliteDicomIndex(tmp_path / "new_folder" / "x.sqlite")


def _import_as_nobody(path: Path, data: Path) -> str:
    """Fork, drop to uid/gid ``nobody`` (root ignores file permissions) and import ``data``
    into the index file ``path``; returns what the child saw."""
    import pickle

    import pydicom  # noqa: F401  (the child cannot read modules under root's home)

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            with SqliteDicomIndex(path) as index:
                try:
                    index.import_paths([data], workers=1)
                    out = "imported"
                except sqlite_connection.ReadOnlyIndexError as exc:
                    out = f"read-only: {exc}"
        except BaseException as exc:  # noqa: BLE001 - report anything to the parent
            out = f"error: {type(exc).__name__}: {exc}"
        os.write(w, pickle.dumps(out))
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        got = fh.read()
    os.waitpid(pid, 0)
    return str(pickle.loads(got))


def test_read_only_file_permissions(corpus, tmp_path):
    """An index file without write permission is refused with ReadOnlyIndexError. Root
    ignores file permissions, so as root (CI) the import runs in a forked child as
    ``nobody`` on a copy in a folder ``nobody`` may write to."""
    if os.geteuid() != 0:
        path = tmp_path / "ro.sqlite"
        SqliteDicomIndex(path).close()
        path.chmod(0o444)
        with SqliteDicomIndex(path) as index, pytest.raises(sqlite_connection.ReadOnlyIndexError):
            index.import_paths([corpus.root])
        return
    import tempfile

    shared = Path(tempfile.mkdtemp(prefix="abdicom-ro-"))
    try:
        shutil.copytree(corpus.root, shared / "data")
        path = shared / "ro.sqlite"
        SqliteDicomIndex(path).close()
        for p in shared.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o444)
        shared.chmod(0o777)  # the folder is writable, as a user's own folder is; the file is not
        got = _import_as_nobody(path, shared / "data")
        assert got.startswith("read-only:"), got
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.delenv(sqlite_index.DB_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert sqlite_index.default_database_path() == tmp_path / "xdg" / "AdaptiveBrushDicom" / "index.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sqlite_index.default_database_path() == tmp_path / "home" / ".local" / "share" / "AdaptiveBrushDicom" / "index.sqlite"
    monkeypatch.setenv(sqlite_index.DB_ENV_VAR, str(tmp_path / "env.sqlite"))
    assert sqlite_index.default_database_path() == tmp_path / "env.sqlite"
    with SqliteDicomIndex() as index:
        assert index.path == tmp_path / "env.sqlite" and index.path.exists()


# ============================================================ verify / remove-missing
def test_verify_and_remove_missing(corpus, db):
    db.import_paths([corpus.root])
    assert db.verify().clean
    (corpus.root / "runB" / "t1.dcm").unlink()
    (corpus.root / "runB" / "t2.dcm").unlink()
    changed = corpus.volume_paths[0]
    data = bytearray(changed.read_bytes())
    data[-1] ^= 0xFF
    changed.write_bytes(bytes(data))
    v = db.verify()
    assert not v.clean and len(v.missing) == 2 and len(v.changed) == 1
    assert v.changed[0].path == str(changed.resolve())
    assert "remove-missing" in v.to_text()
    r = db.remove_missing()
    assert (r.instances, r.series, r.studies, r.patients) == (2, 2, 1, 0)
    assert [s.run_name for s in db.segs_for_series(corpus.volume_uid)].count("run_B") == 0
    assert db.verify().missing == []
    assert db.remove_missing().instances == 0


# ============================================================ pure logic
@pytest.mark.parametrize("desc, label, expected", [
    ("trial_042_watershed", "", ("trial", 42, "watershed")),
    ("trial_7", "", ("trial", 7, None)),
    ("Trial 3 level set", "", ("trial", 3, "level set")),
    ("trial-0010_region_growing", "", ("trial", 10, "region_growing")),
    ("gold_standard", "", ("gold", None, None)),
    ("Gold standard (tumor)", "", ("gold", None, None)),
    ("tumor", "GOLD_STANDARD", ("gold", None, None)),
    ("goldfish", "", ("other", None, None)),
    ("trials summary", "", ("other", None, None)),
    ("", "", ("other", None, None)),
])
def test_classify_series(desc, label, expected):
    tag = classify_series(desc, label)
    assert (tag.kind, tag.trial_number, tag.algorithm) == expected


def test_seg_summary_skips_labelmap_background():
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SOPClassUID = SegSopClass.LABELMAP
    items = []
    for number, label, algo in ((2, "B", "otsu"), (0, "Background", ""), (1, "A", "otsu")):
        it = Dataset()
        it.SegmentNumber, it.SegmentLabel, it.SegmentAlgorithmType = number, label, "AUTOMATIC"
        if algo:
            it.SegmentAlgorithmName = algo
        items.append(it)
    ds.SegmentSequence = items
    ref = Dataset()
    ref.SeriesInstanceUID = "1.2.3"
    ds.ReferencedSeriesSequence = [ref, ref]
    s = seg_records.seg_summary_from_dataset(ds)
    assert s.segment_numbers == (1, 2) and s.segment_labels == ("A", "B")
    assert s.algorithm_names == ("otsu",) and s.referenced_series_uids == ("1.2.3",)


def test_sort_and_group_are_pure():
    mk = lambda uid, study, desc, num=None: seg_records.build_seg_info(  # noqa: E731
        {"series_instance_uid": uid, "study_instance_uid": study, "study_description": study,
         "series_description": desc, "series_number": num},
        [{"sop_instance_uid": uid + ".1", "path": f"/x/{uid}.dcm", "instance_number": 1}],
        [records.SegSummary(referenced_series_uids=("V",))])
    segs = [mk("3", "runB", "trial_2"), mk("1", "runA", "trial_11_otsu"), mk("2", "runA", "trial_9"),
            mk("4", "runA", "gold"), mk("5", "runA", "manual edit", 3)]
    assert [s.series_instance_uid for s in seg_order.sort_segs(segs)] == ["4", "2", "1", "5", "3"]
    assert [s.series_instance_uid for s in seg_order.trials_in_order(segs)] == ["3", "2", "1"]
    assert list(seg_order.group_by_study(segs)) == ["runA", "runB"]
    assert seg_order.referencing(segs, "W") == []
    assert segs[1].algorithms == ("otsu",) and segs[1].to_dict()["files"] == ["/x/1.dcm"]


# ============================================================ Slicer adapter (core half)
class FakeCtkDatabase:
    """Documented stand-in for ``slicer.dicomDatabase`` (ctkDICOMDatabase), backed by a dict.

    It implements exactly the methods :class:`SlicerDatabaseAdapter` calls, with CTK's
    names and return conventions: ``patients()`` gives internal keys (not PatientIDs),
    ``fileValue(path, "gggg,eeee")`` returns strings ("" when absent), ``fieldForSeries``
    reads Series-table columns, ``insert(path, storeFile, generateThumbnail)`` returns None.
    The dict is filled by parsing the files with pydicom, as CTK's indexer would.
    """

    def __init__(self) -> None:
        self.tree: dict[str, dict[str, dict[str, list[str]]]] = {}  # patient key -> study -> series -> files
        self.values: dict[str, dict[str, str]] = {}  # path -> "gggg,eeee" -> value
        self.series_fields: dict[str, dict[str, str]] = {}
        self.calls: list[str] = []

    def insert(self, path: str, storeFile: bool = True, generateThumbnail: bool = True) -> None:  # noqa: N803
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        vals = {tag: str(ds.get(name, "") or "") for name, tag in ctk_database.TAGS.items()}
        self.values[path] = vals
        key = f"patient-{vals['0010,0020']}"
        series = self.tree.setdefault(key, {}).setdefault(vals["0020,000D"], {})
        files = series.setdefault(vals["0020,000E"], [])
        if path not in files:
            files.append(path)
        self.series_fields[vals["0020,000E"]] = {"SeriesDescription": vals["0008,103E"],
                                                 "SeriesNumber": vals["0020,0011"], "Modality": vals["0008,0060"]}

    def patients(self) -> list[str]:
        return list(self.tree)

    def studiesForPatient(self, patient: str) -> list[str]:  # noqa: N802
        return list(self.tree.get(patient, {}))

    def seriesForStudy(self, study: str) -> list[str]:  # noqa: N802
        return [s for studies in self.tree.values() for s in studies.get(study, {})]

    def filesForSeries(self, series: str) -> list[str]:  # noqa: N802
        self.calls.append("filesForSeries")
        for studies in self.tree.values():
            for s in studies.values():
                if series in s:
                    return list(s[series])
        return []

    def instancesForSeries(self, series: str) -> list[str]:  # noqa: N802
        return [self.values[f]["0008,0018"] for f in self.filesForSeries(series)]

    def fileValue(self, path: str, tag: str) -> str:  # noqa: N802
        return self.values.get(path, {}).get(tag, "")

    def fieldForSeries(self, field: str, series: str) -> str:  # noqa: N802
        return self.series_fields.get(series, {}).get(field, "")


def test_slicer_adapter_gives_the_same_answers(corpus, db):
    db.import_paths([corpus.root])
    fake = FakeCtkDatabase()
    adapter = SlicerDatabaseAdapter(fake)
    assert isinstance(adapter, database_protocol.DicomDatabase) and isinstance(db, database_protocol.DicomDatabase)
    report = adapter.import_paths([corpus.root])
    assert report.added == corpus.n_files

    def view(segs):
        return [(s.series_instance_uid, s.run_name, s.kind, s.trial_number, s.segment_labels, s.algorithms,
                 s.series_description, s.series_number, tuple(p.resolve() for p in s.files)) for s in segs]

    assert view(adapter.segs_for_series(corpus.volume_uid)) == view(db.segs_for_series(corpus.volume_uid))
    assert view(adapter.trials_for_run(corpus.run_a)) == view(db.trials_for_run(corpus.run_a))
    assert view(adapter.gold_for_volume(corpus.volume_uid)) == view(db.gold_for_volume(corpus.volume_uid))
    assert [p.resolve() for p in adapter.files_for_series(corpus.volume_uid)] == \
        db.files_for_series(corpus.volume_uid)
    assert [(s.series_instance_uid, s.modality, s.n_instances) for s in adapter.series_for_study(corpus.study_uid)] == \
        [(s.series_instance_uid, s.modality, s.n_instances) for s in db.series_for_study(corpus.study_uid)]
    assert {s.study_instance_uid for s in adapter.studies()} == {s.study_instance_uid for s in db.studies()}
    sop = db.segs_for_series(corpus.volume_uid)[0].sop_instance_uids[0]
    assert adapter.file_for_instance(sop).resolve() == db.file_for_instance(sop)
    assert adapter.show(corpus.trials_a[1])["seg"]["trial_number"] == 1
    assert adapter.show(sop)["level"] == "instance"
    with pytest.raises(database_protocol.UnknownUIDError):
        adapter.show("1.2.3.999")
    assert adapter.verify().clean
    with pytest.raises(UserError, match="DICOM browser"):
        adapter.remove_missing()


def test_parallel_parsing_gives_the_same_index(tmp_path):
    from pydicom.uid import generate_uid

    study = generate_uid()
    for s in range(3):
        make_ct_series(tmp_path / "data" / f"s{s}", n_slices=70, study_uid=study)
    (tmp_path / "data" / "junk.txt").write_text("x")
    (tmp_path / "data" / "cut.dcm").write_bytes((tmp_path / "data" / "s0" / "img001.dcm").read_bytes()[:-9])
    assert sqlite_ingest.PARALLEL_MIN_FILES <= 212
    reports, snaps = [], []
    for workers in (1, 2):
        with SqliteDicomIndex(tmp_path / f"w{workers}.sqlite") as index:
            seen = []
            reports.append(index.import_paths([tmp_path / "data"], workers=workers,
                                              progress=lambda ph, d, t: seen.append(ph)))
            snaps.append(sorted(index.conn.execute("SELECT sop_uid, path, sha256 FROM instances").fetchall()))
            assert seen.count("read") == 212 and seen.count("write") == 210
    assert [(r.added, r.non_dicom, len(r.errors)) for r in reports] == [(210, 1, 1)] * 2
    assert snaps[0] == snaps[1]


def test_classification_is_recomputed_when_rules_change(corpus, tmp_path, monkeypatch):
    path = tmp_path / "cls.sqlite"
    with SqliteDicomIndex(path) as index:
        index.import_paths([corpus.root])
        index.conn.execute("UPDATE series SET kind = 'other', trial_number = NULL WHERE kind = 'trial'")
        assert index.trials_for_run(corpus.run_a) == []
    monkeypatch.setattr(sqlite_schema, "CLASSIFIER_VERSION", series_kind.CLASSIFIER_VERSION + 1)
    with SqliteDicomIndex(path) as index:
        assert [t.trial_number for t in index.trials_for_run(corpus.run_a)] == [1, 2, 10]
        assert index.conn.execute("SELECT value FROM meta WHERE key = 'classifier_version'").fetchone()[0] == \
            str(series_kind.CLASSIFIER_VERSION + 1)


def test_slicer_adapter_import_counts_non_dicom(tmp_path):
    _, series, paths = make_ct_series(tmp_path / "d", n_slices=2)
    (tmp_path / "d" / "notes.txt").write_text("x")

    class Refusing(FakeCtkDatabase):
        def insert(self, path, storeFile=True, generateThumbnail=True):  # noqa: N803
            if path.endswith("img001.dcm"):
                raise RuntimeError("ctkDICOMDatabase: could not parse")
            return super().insert(path, storeFile, generateThumbnail)

    fake = Refusing()
    report = SlicerDatabaseAdapter(fake).import_paths([tmp_path / "d"])
    assert (report.files_seen, report.added, report.non_dicom, len(report.errors)) == (3, 1, 1, 1)
    assert "img001.dcm" in report.errors[0].path and "could not parse" in report.errors[0].reason
    assert fake.instancesForSeries(series) and len(SlicerDatabaseAdapter(fake).files_for_series(series)) == 1



# ============================================================ migrate-style layout (runs share the image's study)
def build_migrated_corpus(root: Path) -> Corpus:
    """What ``migrate`` writes: one study per image; trials of every run in it, with
    ContentDescription ``<run> trial <n>``, ContentLabel ``TRIAL_nnn``, SeriesNumber 1000 + n,
    and a gold standard ``gold_<name>`` / ContentLabel ``GOLD_STANDARD``."""
    study, volume, vpaths = make_ct_series(root / "volume", study_description="MRBrainTumor1")
    tpl = make_seg_template(vpaths, root / "template.dcm")
    gold, _ = clone_seg(tpl, root / "gold.dcm", series_description="gold_tumor", series_number=900,
                        content_label="GOLD_STANDARD", content_description="gold standard tumor")
    c = Corpus(root, study, volume, vpaths, gold, run_a="", run_b="")
    for run, store in (("optuna_b", c.trials_b), ("optuna_a", c.trials_a)):
        for n in (3, 1, 2):
            store[n], _ = clone_seg(tpl, root / run / f"trial_{n:03d}.dcm", series_description=f"trial_{n:03d}_watershed",
                                    series_number=1000 + n, content_label=f"TRIAL_{n:03d}",
                                    content_description=f"{run} trial {n}")
    tpl.unlink()
    return c


def test_runs_sharing_one_study(tmp_path, db):
    c = build_migrated_corpus(tmp_path / "m")
    assert db.import_paths([c.root]).added == 4 + 1 + 6
    segs = db.segs_for_series(c.volume_uid)
    assert [(s.run_name, s.kind, s.trial_number) for s in segs] == [
        ("MRBrainTumor1", "gold", None),
        ("optuna_a", "trial", 1), ("optuna_a", "trial", 2), ("optuna_a", "trial", 3),
        ("optuna_b", "trial", 1), ("optuna_b", "trial", 2), ("optuna_b", "trial", 3),
    ]
    assert segs[1].series_instance_uid == c.trials_a[1] and segs[1].run == "optuna_a"
    assert segs[0].run == "" and segs[0].to_dict()["run_name"] == "MRBrainTumor1"
    groups = seg_order.group_by_run(segs)
    assert list(groups) == [(c.study_uid, "MRBrainTumor1"), (c.study_uid, "optuna_a"), (c.study_uid, "optuna_b")]
    trials = db.trials_for_run(c.study_uid)
    assert len(trials) == 6
    assert [t.series_instance_uid for t in seg_order.in_run(trials, "optuna_b")] == [c.trials_b[n] for n in (1, 2, 3)]
    fake = FakeCtkDatabase()
    adapter = SlicerDatabaseAdapter(fake)
    adapter.import_paths([c.root])
    assert [(s.series_instance_uid, s.run_name, s.trial_number) for s in adapter.segs_for_series(c.volume_uid)] == \
        [(s.series_instance_uid, s.run_name, s.trial_number) for s in segs]


@pytest.mark.skipif(sqlite3.sqlite_version_info < (3, 35), reason="the test needs ALTER TABLE DROP COLUMN")
def test_schema_1_is_upgraded(tmp_path):
    c = build_migrated_corpus(tmp_path / "m")
    path = tmp_path / "v1.sqlite"
    with SqliteDicomIndex(path) as index:
        index.import_paths([c.root])
        expected = [(s.series_instance_uid, s.run_name) for s in index.segs_for_series(c.volume_uid)]
    con = sqlite3.connect(path)  # turn it into what schema 1 looked like
    con.execute("ALTER TABLE series DROP COLUMN content_description")
    con.execute("ALTER TABLE series DROP COLUMN run_name")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    with SqliteDicomIndex(path) as index:
        assert index.conn.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION == 2
        assert [(s.series_instance_uid, s.run_name) for s in index.segs_for_series(c.volume_uid)] == expected
        assert index.conn.execute("SELECT count(*) FROM series WHERE run_name = 'optuna_a'").fetchone()[0] == 3


def test_run_names_and_trial_labels():
    assert series_kind.run_name_from_content("optuna_2026-01-28 trial 42") == "optuna_2026-01-28"
    assert series_kind.run_name_from_content("my run  Trial_7") == "my run"
    assert series_kind.run_name_from_content("gold standard tumor") == ""
    assert series_kind.run_name_from_content("trial 3") == ""
    assert series_kind.run_name_from_content(None) == ""
    assert classify_series("segmentation", "TRIAL_007") == series_kind.SeriesTag("trial", 7, None)
    assert classify_series("trial_002_otsu", "TRIAL_005").trial_number == 2  # the description wins


def test_slicer_adapter_refuses_missing_or_closed_database():
    with pytest.raises(UserError, match="not available"):
        SlicerDatabaseAdapter(None)
    closed = FakeCtkDatabase()
    closed.isOpen = False  # what PythonQt shows for ctkDICOMDatabase's isOpen property
    with pytest.raises(UserError, match="closed"):
        SlicerDatabaseAdapter(closed)
