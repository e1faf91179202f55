"""What a migration writes besides the DICOM files: the updated ``results.json`` /
``metadata.json`` (current content + ``dicom`` block + per-trial ``dicom_*`` fields) and
``migration_report.json`` / ``.md``."""

from __future__ import annotations

import copy
from typing import Any

from AdaptiveBrushDicomLib import __version__
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.runs.files import atomic_write_bytes, json_bytes
from AdaptiveBrushDicomLib.runs.plan import Plan, trial_status_of
from AdaptiveBrushDicomLib.runs.layout import (
    GOLD_METADATA_NAME, REPORT_JSON_NAME, REPORT_MD_NAME, TRIAL_DICOM_KEYS, VOLUME_DIR,
)
from AdaptiveBrushDicomLib.runs.status import ItemStatus, TrialStatus


def dicom_block(plan: Plan) -> dict[str, Any]:
    """The ``dicom`` block of results.json / metadata.json."""
    vol = plan.report.volume
    return {
        "patient_id": vol["patient_id"],
        "study_instance_uid": vol["study_instance_uid"],
        "volume_series_uid": vol["series_instance_uid"],
        "volume_description": (plan.sample or "")[:64],
        "frame_of_reference_uid": vol["frame_of_reference_uid"],
        "volume_path": VOLUME_DIR,
        "volume_files": vol["files"],
        "volume_source": str(vol["volume_source"].value if hasattr(vol["volume_source"], "value")
                             else vol["volume_source"]),
        "modality": vol.get("modality") or "",
        "sample": plan.sample,
        "name": plan.name,
        "run_key": plan.run_key,
        "compression": plan.report.compression,
        "sop_class_uid": SegSopClass.LABELMAP.value,
        "migrated_by": f"AdaptiveBrushDicom {__version__}",
        "report": REPORT_JSON_NAME,
    }


def new_json(plan: Plan) -> dict[str, Any] | None:
    """The current content (every field and trial, key order kept) with the dicom block
    and per-trial dicom fields; None when a gold standard's SEG was not migrated."""
    data = copy.deepcopy(plan.data or {})
    block = dicom_block(plan)
    if not plan.is_run:
        item = plan.report.items[0]
        if item.status != ItemStatus.MIGRATED:
            plan.report.notes.append(f"{GOLD_METADATA_NAME} left unchanged: the gold segmentation was not migrated")
            return None
        block.update(seg_series_uid=item.series_instance_uid, seg_sop_instance_uid=item.sop_instance_uid,
                     seg_path=item.output)
        data["dicom"] = block
        return data
    by_index = {item.index: rec for item, rec in zip(plan.items, plan.report.items)}
    for index, trial in enumerate(data["trials"]):
        rec = by_index.get(index)
        if rec is None:
            continue
        for k in TRIAL_DICOM_KEYS:
            trial.pop(k, None)
        status = trial_status_of(rec)
        trial["dicom_status"] = status.value
        if status in (TrialStatus.MIGRATED, TrialStatus.CHANGED):
            trial["dicom_series_uid"] = rec.series_instance_uid
            trial["dicom_sop_instance_uid"] = rec.sop_instance_uid
            trial["dicom_seg_path"] = rec.output
        if status in (TrialStatus.FAILED, TrialStatus.CHANGED):
            trial["dicom_error"] = rec.reason or (rec.reason_code.value if rec.reason_code else "failed")
    data["dicom"] = block
    return data


def write_report_files(plan: Plan) -> None:
    """``migration_report.json`` and ``.md`` (atomically)."""
    folder = plan.job.folder
    atomic_write_bytes(folder / REPORT_JSON_NAME, json_bytes(plan.report.to_dict()))
    atomic_write_bytes(folder / REPORT_MD_NAME, plan.report.to_markdown().encode("utf-8"))


__all__ = ["dicom_block", "new_json", "write_report_files"]
