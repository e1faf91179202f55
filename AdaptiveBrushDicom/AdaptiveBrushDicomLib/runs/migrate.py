"""Legacy optimization runs and gold standards -> DICOM (design rule 5: nothing lost).

``migrate_paths`` is what ``abdicom migrate`` and ``scripts/migrate_to_dicom.py`` call.
For each run / gold standard folder it

1. plans from the *current* ``results.json`` / ``metadata.json`` (:mod:`.plan`): every
   trial and field found there is kept; the first original is kept once as
   ``results.legacy.json`` / ``metadata.legacy.json`` and never read back;
2. fills ``dicom/volume/`` (:mod:`.volume`): the original files of a DICOM source, byte
   for byte, or a synthetic series of any other image;
3. migrates every item (:mod:`.worker`): new trials are written, read back and verified
   (:mod:`.verify`), and renamed into place; existing SEGs are kept (re-checked when their source changed);
4. writes ``migration_report.json`` / ``.md``, then replaces ``results.json``
   atomically, last (:mod:`.update`).

UIDs and bytes are functions of the content, never of paths or clocks, so a run killed
at any moment and re-run gives the same files, a second run over a migrated folder
changes nothing, and a moved, renamed or copied run is "already migrated". One migration
per folder at a time (:mod:`.lock`). Details: ``docs/migration.md``.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence, TextIO

from AdaptiveBrushDicomLib.core.align import Resample
from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION, Compression
from AdaptiveBrushDicomLib.dicom.synthetic import Modality
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.runs.files import (
    atomic_write_bytes, check_writable, clean_stale_temps, describe_oserror, json_bytes, sha256_file,
)
from AdaptiveBrushDicomLib.runs.layout import VOLUME_DIR
from AdaptiveBrushDicomLib.runs.lock import LOCK_NAME, FolderBusyError, FolderLock
from AdaptiveBrushDicomLib.runs.plan import Job, Plan, already_migrated, discover, load_plan, plan_items
from AdaptiveBrushDicomLib.runs.progress import Progress
from AdaptiveBrushDicomLib.runs.report import ItemRecord, JobReport, MigrationSummary
from AdaptiveBrushDicomLib.runs.schema import validate_gold_metadata, validate_results
from AdaptiveBrushDicomLib.runs.status import FolderKind, FolderStatus, ItemStatus
from AdaptiveBrushDicomLib.runs.tasks import make_tasks, trial_content_description
from AdaptiveBrushDicomLib.runs.update import new_json, write_report_files
from AdaptiveBrushDicomLib.runs.volume import (
    VOLUME_SUFFIXES, VolumeCache, VolumeOptions, describe_volume, find_volume, resolve_volume, write_volume,
)
from AdaptiveBrushDicomLib.runs.parallel import AUTO, parse_jobs, resolve_jobs, run_tasks, start_workers
from AdaptiveBrushDicomLib.runs.worker import process_item, remember_reference

# kept for callers of the former single module
_trial_content_description = trial_content_description


def migrate_paths(
    paths: Sequence[str | Path],
    *,
    volume: str | Path | None = None,
    volumes_dir: str | Path | None = None,
    compression: "Compression | str" = DEFAULT_COMPRESSION,
    jobs: "int | str" = 1,
    dry_run: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
    modality: "Modality | str" = Modality.MR,
    patient_id: str | None = None,
    resample: "Resample | str" = Resample.NONE,
) -> MigrationSummary:
    """Migrate runs and gold standards to DICOM (what ``abdicom migrate`` does).

    Parameters
    ----------
    paths : runs, gold standards, or folders of them
    volume : source image file or DICOM folder, for folders whose sample is not found in
        ``volumes_dir`` (or that name none)
    volumes_dir : folder where source images are looked up by sample name
        (``<name>.nrrd/.nhdr/.nii.gz/.nii/.mha/.mhd`` or a ``<name>/`` DICOM folder)
    compression : SEG transfer syntax (default deflate)
    jobs : worker processes for the trials of a run (1 = in this process, the default of
        this function: a host application such as Slicer is never forked); ``"auto"`` (the
        default of ``abdicom migrate``): one per usable CPU, at most one per item to write,
        within the memory available (:func:`.parallel.resolve_jobs`). Output bytes never
        depend on it.
    dry_run : parse and check everything, write nothing
    progress : show progress on ``stream`` (default stderr)
    modality, patient_id : of a synthetic series (non-DICOM sources only); patient_id
        default: ``patient_id`` / ``idc_patient`` of the run / gold metadata, else
        ``AdaptiveBrush_<sample>``
    resample : ``nearest`` resamples segmentations that are not on the reference lattice

    Returns
    -------
    MigrationSummary
        one :class:`JobReport` per folder; ``exit_code`` is 1 when anything failed.

    Raises
    ------
    UserError
        No folder found, bad options, or no folder has a usable source image (raised
        before anything is written; a folder without one fails alone otherwise).
    """
    t0 = time.perf_counter()
    compression = Compression.parse(compression)
    resample = Resample(resample)
    opts = _volume_options(volume, volumes_dir, modality, patient_id)
    plans = [_prepare(job, compression, opts, dry_run) for job in discover(paths)]
    _refuse_when_nothing_can_run(plans)
    cache = VolumeCache()
    for plan in plans:  # a DICOM source's headers are those of its copy in dicom/volume
        if plan.reference is not None and plan.reference.frame_numbers is None and not plan.untouchable:
            remember_reference(plan.job.folder / VOLUME_DIR, plan.reference)
    n_jobs = _worker_count(plans, cache, parse_jobs(jobs))
    executor = start_workers(n_jobs) if n_jobs > 1 else None
    try:
        for plan in plans:
            _run_plan(plan, cache, opts, compression, resample, executor, dry_run, progress, stream)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return MigrationSummary([p.report for p in plans], dry_run, time.perf_counter() - t0)


def _worker_count(plans: list[Plan], cache: VolumeCache, jobs: "int | str") -> int:
    """Worker processes for this command: ``jobs``, or for ``auto`` what the largest
    folder to migrate, the CPUs and the memory allow (1 = in this process)."""
    todo = [p for p in plans if not p.untouchable and not p.volume_error
            and p.report.status != FolderStatus.ALREADY_MIGRATED]
    items = max((len(p.items) for p in todo), default=0)
    if items < 2:
        return 1
    voxels = 0
    if jobs == AUTO:
        for p in todo:
            if p.reference is not None:
                shape = p.reference.grid.shape_kji
            elif p.volume_path is not None:
                try:
                    shape = cache.get(p.volume_path)[1].shape_kji
                except (UserError, OSError):  # reported by that folder when it runs
                    continue
            else:
                continue
            voxels = max(voxels, int(shape[0]) * int(shape[1]) * int(shape[2]))
    return resolve_jobs(jobs, items, voxels)


def _volume_options(volume: str | Path | None, volumes_dir: str | Path | None, modality: "Modality | str",
                    patient_id: str | None) -> VolumeOptions:
    vol = Path(volume) if volume is not None else None
    vdir = Path(volumes_dir) if volumes_dir is not None else None
    if vol is not None and not vol.exists():
        raise UserError("source image not found; check the --volume path", vol)
    if vdir is not None and not vdir.is_dir():
        raise UserError("not a folder; check the --volumes-dir path", vdir)
    if patient_id is not None and (not patient_id.strip() or len(patient_id) > 64):
        raise UserError(f"--patient-id must be 1..64 characters (LO), got {patient_id!r}")
    return VolumeOptions(vol, vdir, Modality.parse(modality).value, patient_id)


def _prepare(job: Job, compression: Compression, opts: VolumeOptions, dry_run: bool) -> Plan:
    """Read a folder and find its source image (nothing is written)."""
    plan = load_plan(job, compression.cli_name)
    if plan.untouchable:
        return plan
    plan_items(plan)
    if not dry_run:
        done = already_migrated(plan)
        if done is not None:
            plan.report = done
            return plan
    resolve_volume(plan, opts)
    if plan.reference is not None and (opts.patient_id or opts.modality != Modality.MR.value):
        plan.report.notes.append("--patient-id / --modality ignored: the source is a DICOM series, which keeps its "
                                 "own PatientID and Modality")
    return plan


def _refuse_when_nothing_can_run(plans: list[Plan]) -> None:
    """Exit 2 before writing anything when every folder lacks a usable source image.

    Raises
    ------
    UserError
        Every folder lacks its source image (the message lists why, per folder).
    """
    missing = [p.volume_error for p in plans if p.volume_error]
    if missing and len(missing) == len(plans):
        raise UserError("; ".join(m for m in missing if m))


def _run_plan(plan: Plan, cache: VolumeCache, opts: VolumeOptions, compression: Compression, resample: Resample,
              executor: ProcessPoolExecutor | None, dry_run: bool, show: bool, stream: TextIO | None) -> None:
    t0 = time.perf_counter()
    report, job = plan.report, plan.job
    prog = Progress(f"{'run' if job.kind == FolderKind.RUN else 'gold'} {plan.name or job.name}", len(plan.items),
                    stream, show)
    if report.status == FolderStatus.ALREADY_MIGRATED:
        prog.message("already migrated, nothing changed")
        return
    if plan.untouchable or plan.volume_error:
        if plan.volume_error:
            report.errors.append(plan.volume_error)
        report.status = FolderStatus.FAILED
        prog.message(f"failed: {report.errors[0]}")
        return
    if not dry_run:
        try:
            check_writable(job.folder)
        except UserError as exc:  # nothing can be written there, not even the report
            report.errors.append(str(exc))
            report.status = FolderStatus.FAILED
            prog.message(f"failed: {exc}")
            return
    lock = FolderLock(job.folder)
    try:
        if not dry_run:
            lock.acquire()
        _migrate_locked(plan, cache, opts, compression, resample, executor, dry_run, prog)
    except FolderBusyError as exc:  # the other process owns the folder: leave it alone
        report.errors.append(str(exc))
        report.status = FolderStatus.FAILED
        prog.message(f"failed: {exc}")
    except UserError as exc:
        _end_failed(plan, prog, dry_run, str(exc))
    except OSError as exc:
        _end_failed(plan, prog, dry_run, f"{exc.filename or job.folder}: {describe_oserror(exc)}")
    finally:
        lock.release()
        report.wall_time_seconds = time.perf_counter() - t0


def _migrate_locked(plan: Plan, cache: VolumeCache, opts: VolumeOptions, compression: Compression,
                    resample: Resample, executor: ProcessPoolExecutor | None, dry_run: bool, prog: Progress) -> None:
    report = plan.report
    if dry_run:
        report.volume = describe_volume(plan, cache, opts)
    else:
        removed = clean_stale_temps(plan.job.folder)
        if removed:
            report.notes.append(f"removed {len(removed)} temporary file(s) left by an interrupted run")
        _keep_legacy_copy(plan)
        source = plan.volume_path.name if plan.volume_path is not None else "?"
        prog.message(f"source image {source} -> dicom/volume ({'original DICOM files' if plan.reference is not None else 'synthetic series'})")
        report.volume = write_volume(plan, cache, opts)
    grid = report.volume.pop("_grid")
    tasks = make_tasks(plan, compression.uid, resample.value, dry_run, grid)
    report.items = run_tasks(tasks, executor if len(tasks) > 1 else None, prog)
    failed = any(ItemStatus(i.status).is_problem for i in report.items)
    report.status = FolderStatus.PLANNED if dry_run else (FolderStatus.PARTIAL if failed else FolderStatus.MIGRATED)
    if dry_run:
        report.results_json = "not written (dry run)"
        return
    _write_outputs(plan)


def _write_outputs(plan: Plan) -> None:
    """Report files, then results.json / metadata.json (last: its dicom block marks the
    folder as migrated)."""
    report, folder = plan.report, plan.job.folder
    target = folder / plan.source_name
    payload: bytes | None = None
    try:
        data = new_json(plan)
        if data is not None:
            if plan.is_run:
                validate_results(data, target, migrated=True)
            else:
                validate_gold_metadata(data, target)
            payload = json_bytes(data)
    except UserError as exc:
        report.errors.append(str(exc))
        report.status = FolderStatus.FAILED
    if payload is None:
        report.results_json = "not written"
    elif target.is_file() and target.read_bytes() == payload:
        report.results_json = "unchanged"
    else:
        report.results_json = "written"
    try:
        write_report_files(plan)
        if payload is not None and report.results_json == "written":
            atomic_write_bytes(target, payload)
    except OSError as exc:
        report.errors.append(f"{exc.filename or folder}: {describe_oserror(exc)}")
        report.status = FolderStatus.FAILED
        report.results_json = "not written"


def _keep_legacy_copy(plan: Plan) -> None:
    """Byte copy of the original results.json / metadata.json, written once.

    Not written when the current file already carries a ``dicom`` block (it is not the
    original any more) or does not exist."""
    folder = plan.job.folder
    legacy = folder / plan.legacy_name
    if legacy.exists() or not plan.data_bytes or "dicom" in (plan.data or {}):
        if not legacy.exists() and "dicom" in (plan.data or {}):
            plan.report.notes.append(f"{plan.legacy_name} is missing; the original content is not known any more")
        return
    atomic_write_bytes(legacy, plan.data_bytes)


def _end_failed(plan: Plan, prog: Progress, dry_run: bool, error: str) -> None:
    """Close a folder that failed after its preparation: status, one progress line and
    (unless dry run) the report, best effort."""
    report = plan.report
    report.errors.append(error)
    report.status = FolderStatus.FAILED
    report.volume.pop("_grid", None)
    prog.message(f"failed: {error}")
    if dry_run:
        return
    report.results_json = "not written"
    try:
        write_report_files(plan)
    except OSError:
        report.notes.append("report could not be written into the folder (not writable)")


__all__ = [
    "migrate_paths", "discover", "find_volume", "process_item", "ItemRecord", "JobReport", "MigrationSummary",
    "Progress", "sha256_file", "atomic_write_bytes", "LOCK_NAME", "VOLUME_SUFFIXES", "os",
]
