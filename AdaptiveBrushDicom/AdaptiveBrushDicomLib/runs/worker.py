"""Migrating one item (in this process or a worker process): write, verify, or re-check.

A new SEG is written to a temporary name, read back and verified against its source on
the reference grid (:mod:`.verify`: header bytes, UIDs, segments, frame positions, every
voxel), and only then renamed into place.
An existing SEG is never replaced: when the recorded hashes still match it is reported
as already present; otherwise its source is read again and the SEG's SOP Instance UID
(a function of the segmentation content) tells whether the source still holds the same
segmentation (re-saved file: fine) or another one (``changed``: reported, SEG kept).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


from AdaptiveBrushDicomLib.core.segment import AlgorithmType
from AdaptiveBrushDicomLib.dicom import uids
from AdaptiveBrushDicomLib.io.atomic import deferred_sync, sync_files
from AdaptiveBrushDicomLib.errors import InputFileError, OverlapError, ReferenceMismatchError, UserError
from AdaptiveBrushDicomLib.runs.files import describe_oserror, sha256_file
from AdaptiveBrushDicomLib.runs.report import ItemRecord
from AdaptiveBrushDicomLib.runs.layout import legacy_trial_candidates
from AdaptiveBrushDicomLib.runs.status import ItemStatus, ReasonCode
from AdaptiveBrushDicomLib.runs.tasks import ItemTask
from AdaptiveBrushDicomLib.runs.verify import Expected, verify_decoded, verify_written

#: Parsed reference series, per worker process (keyed by folder).
_REFERENCES: dict[str, Any] = {}


def _reference(folder: str) -> Any:
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

    ref = _REFERENCES.get(folder)
    if ref is None:
        ref = ReferenceSeries.from_folder(folder)
        _REFERENCES[folder] = ref
    return ref


def remember_reference(folder: str | Path, reference: Any) -> None:
    """Use ``reference`` for the series in ``folder`` instead of parsing it there.

    For a DICOM source copied byte for byte into ``dicom/volume``: its parsed headers are
    those of the copies, so only the paths change (tested to give the same SEG bytes).
    Called before worker processes are forked, so they inherit it too."""
    from dataclasses import replace as _replace

    folder = Path(folder)
    names = [folder / f"{k + 1:04d}.dcm" for k in range(len(reference.paths))]
    _REFERENCES[str(folder)] = _replace(reference, paths=names, folder=folder, notes=list(reference.notes))


def source_labelmap(task: ItemTask, src: Path, grid: Any) -> Any:
    """Source seg.nrrd -> LabelMap on ``grid`` with the trial's algorithm metadata."""
    from AdaptiveBrushDicomLib.core.align import align_to_grid
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    lm = read_segmentation(src)
    array = align_to_grid(lm.array, lm.grid, grid, resample=task.resample, what=str(task.source_rel))
    segments = [
        replace(
            s,
            algorithm_type=AlgorithmType(task.algorithm_type),
            algorithm_name=task.algorithm_name or s.algorithm_name,
            algorithm_parameters=task.algorithm_parameters if task.algorithm_parameters is not None
            else s.algorithm_parameters,
        )
        for s in lm.segments
    ]
    return LabelMap(array, grid, segments)


def content_sop_uid(series_uid: str, labelmap: Any) -> str:
    """SOP Instance UID of a SEG from its content: voxels on the reference grid and
    everything said about the segments (independent of file bytes, paths and times)."""
    digest = uids.content_digest(labelmap.array, labelmap.grid)
    return uids.derive_uid("seg-instance", series_uid, digest, repr(labelmap.segments))


class _NoteHandler(logging.Handler):
    """Collects log records of WARNING and above as text."""

    def __init__(self, notes: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.notes = notes

    def emit(self, record: logging.LogRecord) -> None:
        self.notes.append(f"{record.name}: {record.getMessage()}")


def code_for(exc: Exception) -> ReasonCode:
    """Reason code of a user error raised while migrating an item."""
    if isinstance(exc, OverlapError):
        return ReasonCode.OVERLAP
    if isinstance(exc, ReferenceMismatchError):
        return ReasonCode.WRONG_GEOMETRY
    if isinstance(exc, InputFileError):
        return ReasonCode.UNREADABLE
    return ReasonCode.ERROR


def fail(rec: ItemRecord, code: ReasonCode, reason: str, status: ItemStatus = ItemStatus.FAILED) -> None:
    """Mark ``rec`` failed (or changed) and clear what it would have produced."""
    rec.status, rec.reason_code, rec.reason = status, code, reason
    if status == ItemStatus.FAILED:
        rec.series_instance_uid = rec.sop_instance_uid = None
        rec.output_sha256 = rec.size_bytes = None
    rec.voxels_verified = rec.labelled_voxels = rec.segments = None


def process_item(task: ItemTask) -> ItemRecord:
    """Migrate (or check) one trial / gold segmentation; never raises for bad input.

    A new SEG gets its final name before this returns (synced alone); the migration
    itself uses :func:`run_item`, which leaves syncing and renaming to a batch."""
    rec, pending = run_item(task)
    if pending is not None:
        commit_pending([(rec, pending, task.folder)])
    return rec


def run_item(task: ItemTask) -> tuple[ItemRecord, str | None]:
    """Like :func:`process_item`, but a new, verified SEG stays under its temporary name.

    Returns the record and that temporary file's path (None when nothing new was written);
    :func:`commit_pending` syncs and renames it (in a batch with others). Until then the
    record describes the SEG as it will be (``output``, hash, size, UIDs)."""
    t0 = time.perf_counter()
    rec = ItemRecord(key=task.key, trial_number=task.trial_number, status=ItemStatus.FAILED,
                     source=task.source_rel, output=task.output_rel, series_description=task.series_description,
                     series_number=task.series_number, value=task.value, params=task.algorithm_parameters,
                     notes=list(task.notes))
    # library warnings (e.g. highdicom on an empty segmentation) go into the report
    handler = _NoteHandler(rec.notes)
    lib_logger = logging.getLogger("highdicom")
    lib_logger.addHandler(handler)
    propagate, lib_logger.propagate = lib_logger.propagate, False
    pending: str | None = None
    try:
        pending = _process_item(task, rec)
    except UserError as exc:
        fail(rec, code_for(exc), str(exc))
    except OSError as exc:
        fail(rec, ReasonCode.IO_ERROR, f"{exc.filename or task.output_rel}: {describe_oserror(exc)}")
    except Exception as exc:  # a bug or a library failure: report it, keep going
        fail(rec, ReasonCode.ERROR, f"unexpected {type(exc).__name__}: {exc}")
    finally:
        lib_logger.removeHandler(handler)
        lib_logger.propagate = propagate
    rec.seconds = round(time.perf_counter() - t0, 4)
    return rec, pending


def commit_pending(batch: list[tuple[ItemRecord, str, str]]) -> None:
    """Give verified SEGs their final names: ``(record, temporary path, folder)`` each.

    All temporary files are synced together (:func:`~AdaptiveBrushDicomLib.io.atomic.sync_files`),
    then each is renamed onto ``folder / record.output``, then their folders are synced, so
    a SEG under its final name is verified and on disk. An item that cannot be synced or
    renamed (disk full, I/O error) is marked failed; no temporary file stays."""
    if not batch:
        return
    try:
        sync_files(tmp for _, tmp, _ in batch)
    except OSError as exc:
        for rec, tmp, _ in batch:
            _commit_failed(rec, tmp, exc)
        return
    folders = []
    for rec, tmp, folder in batch:
        target = Path(folder) / str(rec.output)
        try:
            os.replace(tmp, target)
        except OSError as exc:
            _commit_failed(rec, tmp, exc)
            continue
        folders.append(target.parent)
    try:
        sync_files((), folders)
    except OSError:  # the files are complete; only their names may be lost in a power cut
        pass


def _commit_failed(rec: ItemRecord, tmp: str, exc: OSError) -> None:
    fail(rec, ReasonCode.IO_ERROR, f"{rec.output}: cannot write: {describe_oserror(exc)}")
    rec.output = None
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _missing_source(task: ItemTask, rec: ItemRecord) -> bool:
    """Handle a trial without source file; True when ``rec`` is final."""
    folder = Path(task.folder)
    if task.source_rel is not None and (folder / task.source_rel).is_file():
        return False
    if task.pruned:
        rec.status, rec.reason_code, rec.reason = (ItemStatus.SKIPPED, ReasonCode.PRUNED,
                                                   "pruned trial without segmentation file")
    elif task.source_rel is None:
        cands = ", ".join(legacy_trial_candidates(task.trial_number or 0))
        fail(rec, ReasonCode.MISSING_FILE,
             f"trial {task.trial_number}: no segmentation file ({cands} not found) and the trial is not "
             "marked pruned; restore the file or set \"pruned\": true")
    else:
        fail(rec, ReasonCode.MISSING_FILE, f"{task.source_rel}: segmentation file named in results.json not found; "
                                           "restore it or set \"pruned\": true for the trial")
    return True


def _process_item(task: ItemTask, rec: ItemRecord) -> str | None:
    """The work of :func:`run_item`; returns the temporary path of a new SEG, if any."""
    rec.output = None
    if task.pre_error is not None:
        fail(rec, *task.pre_error)
        return None
    if _missing_source(task, rec):
        return None
    folder = Path(task.folder)
    src = folder / str(task.source_rel)
    rec.source_sha256 = sha256_file(src)
    rec.source_bytes = src.stat().st_size
    out = folder / task.output_rel
    if task.dry_run:
        lm = source_labelmap(task, src, task.grid)
        rec.status, rec.reason = ItemStatus.PLANNED, ("already present" if out.exists() else "would be written")
        rec.series_instance_uid, rec.sop_instance_uid = task.series_uid, content_sop_uid(task.series_uid, lm)
        rec.segments, rec.output = len(lm.segments), task.output_rel
        return None
    reference = _reference(task.reference_dir)
    if out.exists():
        _recheck_existing(task, rec, src, out, reference)
        return None
    lm = source_labelmap(task, src, reference.grid)
    return _write_new(task, rec, src, out, lm, reference)


def _recheck_existing(task: ItemTask, rec: ItemRecord, src: Path, out: Path, reference: Any) -> None:
    """An existing SEG: already present, re-saved source (same content), or changed."""
    import pydicom

    hdr = pydicom.dcmread(out, stop_before_pixels=True, specific_tags=["SeriesInstanceUID", "SOPInstanceUID"])
    found_series, found_sop = str(getattr(hdr, "SeriesInstanceUID", "")), str(getattr(hdr, "SOPInstanceUID", ""))
    if found_series != task.series_uid:
        fail(rec, ReasonCode.CONFLICT,
             f"{task.output_rel} exists but holds SeriesInstanceUID {found_series}, expected {task.series_uid} "
             "(the file is not this run's SEG of this trial); move it out of the folder and re-run")
        return
    out_sha = sha256_file(out)
    known = task.known or {}
    rec.output, rec.output_sha256, rec.size_bytes = task.output_rel, out_sha, out.stat().st_size
    rec.series_instance_uid, rec.sop_instance_uid = found_series, found_sop
    if (known.get("status") == ItemStatus.MIGRATED and known.get("output_sha256") == out_sha
            and known.get("source_sha256") == rec.source_sha256):
        for k in ("voxels_verified", "labelled_voxels", "segments"):
            setattr(rec, k, known.get(k))
        rec.status, rec.already_present = ItemStatus.MIGRATED, True
        return
    lm = source_labelmap(task, src, reference.grid)
    if content_sop_uid(task.series_uid, lm) != found_sop:
        fail(rec, ReasonCode.CHANGED,
             f"{task.source_rel} changed after it was migrated: its segmentation is not the one in "
             f"{task.output_rel}, which is kept; to migrate the new version move {task.output_rel} out of the "
             "run and re-run", status=ItemStatus.CHANGED)
        return
    try:  # written by an interrupted run, or the source file was re-saved: verify now
        rec.voxels_verified, rec.labelled_voxels, rec.segments = verify_decoded(out, lm, reference)
    except ValueError as exc:
        fail(rec, ReasonCode.VERIFY_MISMATCH, f"{task.output_rel} exists but does not match its source ({exc}); "
                                              "move it out of the folder and re-run")
        return
    if known.get("source_sha256") and known.get("source_sha256") != rec.source_sha256:
        rec.notes.append(f"{task.source_rel} was re-saved since the migration; its segmentation is unchanged")
    rec.status, rec.already_present = ItemStatus.MIGRATED, True


def _write_new(task: ItemTask, rec: ItemRecord, src: Path, out: Path, lm: Any, reference: Any) -> str | None:
    """Write the SEG to a temporary name (not synced yet) and verify it; its path, or None
    when it failed (then nothing is left behind)."""
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

    sop_uid = content_sop_uid(task.series_uid, lm)
    mtime = datetime.fromtimestamp(int(src.stat().st_mtime), tz=timezone.utc)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    keep = False
    try:
        with deferred_sync():  # synced with its batch before the rename (commit_pending)
            written = write_seg(
                lm, reference, tmp, compression=task.compression, series_description=task.series_description,
                series_number=task.series_number, series_instance_uid=task.series_uid, sop_instance_uid=sop_uid,
                content_label=task.content_label, content_description=task.content_description, force=True,
                source_name=task.source_rel, content_datetime=mtime, warn=rec.notes.append)
        try:
            rec.voxels_verified, rec.labelled_voxels, rec.segments = verify_written(
                tmp, lm, reference, Expected(task.series_uid, sop_uid, task.compression, written.header))
        except ValueError as exc:
            fail(rec, ReasonCode.VERIFY_MISMATCH, f"{task.source_rel}: the SEG read back differs from the source ({exc}); "
                                                  "nothing was kept; please report this as a bug")
            return None
        rec.status, rec.output = ItemStatus.MIGRATED, task.output_rel
        rec.output_sha256, rec.size_bytes = sha256_file(tmp), tmp.stat().st_size
        rec.series_instance_uid, rec.sop_instance_uid = task.series_uid, sop_uid
        keep = True
        return str(tmp)
    except OSError as exc:
        fail(rec, ReasonCode.IO_ERROR, f"{task.output_rel}: cannot write: {describe_oserror(exc)}")
        return None
    except UserError as exc:
        msg = str(exc)
        if "No space left" in msg:
            msg += "; free disk space and re-run"
        fail(rec, code_for(exc), msg)
        return None
    finally:
        if not keep and tmp.exists():
            try:
                tmp.unlink()
            except OSError:
                pass


__all__ = ["process_item", "run_item", "commit_pending", "remember_reference", "source_labelmap", "content_sop_uid", "code_for", "fail"]
