"""The str enums for closed sets (SegSopClass, SeriesKind) behave as their values where
files, SQLite rows and JSON need them, and as members where code compares them."""

from __future__ import annotations

import json
import sqlite3

from pydicom.dataset import Dataset

from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS, SegSopClass
from AdaptiveBrushDicomLib.store.series_kind import SeriesKind, classify_series


def test_sop_class_is_its_uid_everywhere():
    assert f"{SegSopClass.LABELMAP}" == str(SegSopClass.LABELMAP) == "1.2.840.10008.5.1.4.1.1.66.7"
    assert SEG_SOP_CLASS_UIDS == ("1.2.840.10008.5.1.4.1.1.66.7", "1.2.840.10008.5.1.4.1.1.66.4")
    assert {"1.2.840.10008.5.1.4.1.1.66.4": "x"}[SegSopClass.SEGMENTATION] == "x"
    assert SegSopClass("1.2.840.10008.5.1.4.1.1.66.7").long_name == "Label Map Segmentation Storage"
    ds = Dataset()
    ds.SOPClassUID = SegSopClass.LABELMAP
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.7" and str(ds.SOPClassUID) == "1.2.840.10008.5.1.4.1.1.66.7"


def test_series_kind_round_trips_through_sqlite_and_json():
    tag = classify_series("trial_042_watershed")
    assert tag.kind is SeriesKind.TRIAL and classify_series("gold_liver").kind is SeriesKind.GOLD
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (kind TEXT)")
    con.execute("INSERT INTO t VALUES (?)", (tag.kind,))
    (stored,) = con.execute("SELECT kind FROM t").fetchone()
    assert stored == "trial" and type(stored) is str and stored == SeriesKind.TRIAL
    assert json.loads(json.dumps({"kind": tag.kind})) == {"kind": "trial"}
    # rows read back as plain strings find the same dict entries as members
    assert hash(SeriesKind.GOLD) == hash("gold") and {SeriesKind.GOLD: 0}["gold"] == 0
