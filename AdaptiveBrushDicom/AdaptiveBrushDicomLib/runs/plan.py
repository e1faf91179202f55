"""Planning a migration: which folders, what they hold, which items, who the run is.

Nothing here writes. ``results.json`` (``metadata.json``) as it is *now* is the truth:
an optimizer that continued a run after its migration rewrote it with more trials and a
new best trial, so a re-run plans from the current file and keeps every field and trial
it finds there. ``results.legacy.json`` is only the first original (kept, never read
back as content).

Identity (docs/migration.md, "UIDs"): the run name comes from results.json / config.yaml
(``run_name``, ``config_name``, ``study_name``; config ``run_name``, ``name``), then the
name recorded by an earlier migration, and only for a first migration of a run that
names itself nowhere from the folder name; the run key is a digest of that name and of
the first original results.json. Neither depends on where the folder is.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from AdaptiveBrushDicomLib.errors import InputFileError, UserError
from AdaptiveBrushDicomLib.io.limits import check_file
from AdaptiveBrushDicomLib.runs.report import REPORT_FORMAT, ItemRecord, JobReport
from AdaptiveBrushDicomLib.runs.layout import (
    CONFIG_NAME, GOLD_LEGACY_METADATA_NAME, GOLD_METADATA_NAME, GOLD_SEG_PATH, GOLD_SOURCE_NAME,
    LEGACY_RESULTS_NAME, LEGACY_SEG_DIR, REPORT_JSON_NAME, RESULTS_NAME, SEG_DIR, VOLUME_DIR, is_gold_dir,
    is_run_dir, legacy_trial_candidates, safe_relative_path, trial_seg_name,
)
from AdaptiveBrushDicomLib.runs.schema import read_config, read_json, validate_results
from AdaptiveBrushDicomLib.runs.files import sha256_file
from AdaptiveBrushDicomLib.runs.status import FolderKind, FolderStatus, ItemStatus, ReasonCode, TrialStatus

#: results.json keys naming the run, in order of preference.
RUN_NAME_KEYS = ("run_name", "config_name", "study_name")
#: config.yaml keys naming the run.
CONFIG_RUN_NAME_KEYS = ("run_name", "name")
#: Keys of run / gold metadata naming the patient of a non-DICOM source image.
PATIENT_ID_KEYS = ("patient_id", "idc_patient", "PatientID")


@dataclass
class Job:
    """One folder to migrate."""

    kind: FolderKind
    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name


@dataclass
class PlanItem:
    """One trial (or the gold segmentation) of a folder, before migration."""

    index: int | None
    number: int | None
    key: str
    output_rel: str
    source_rel: str | None = None
    pruned: bool = False
    pre_error: tuple[ReasonCode, str] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Parsed inputs of one job (before any writing)."""

    job: Job
    report: JobReport
    source_name: str  # results.json or metadata.json
    legacy_name: str
    data: dict[str, Any] | None = None  # current content: the truth
    data_bytes: bytes = b""
    config: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # run / gold name (not the folder name once migrated)
    run_key: str = ""
    sample: str | None = None
    items: list[PlanItem] = field(default_factory=list)
    volume_path: Path | None = None
    reference: Any = None  # ReferenceSeries of a DICOM source (volume_source original)
    volume_error: str | None = None
    #: set when the folder's own files could not be read: nothing is written for it
    untouchable: bool = False

    @property
    def is_run(self) -> bool:
        return self.job.kind == FolderKind.RUN


# ----------------------------------------------------------------------------- discovery
def discover(paths: Sequence[str | Path]) -> list[Job]:
    """Runs and gold standards in ``paths`` (each a run, a gold standard, or a folder
    holding them up to two levels down). Symlinked folders are not followed.

    Raises
    ------
    UserError
        A path that does not exist, is a file, or holds no run / gold standard.
    """
    jobs: list[Job] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError("no such folder; give a run folder, a gold standard folder or a folder of them", p)
        if not p.is_dir():
            raise UserError("expected a folder (run, gold standard, or a folder of them), got a file", p)
        found = _discover_one(p)
        if not found:
            raise UserError(
                f"no optimization run ({RESULTS_NAME}) or gold standard ({GOLD_SOURCE_NAME}) found in this folder "
                "or two levels below it", p)
        for job in found:
            key = job.folder.resolve()
            if key not in seen:
                seen.add(key)
                jobs.append(job)
    return jobs


def _discover_one(p: Path) -> list[Job]:
    level = [p]
    for depth in range(3):
        found, nxt = [], []
        for d in level:
            if is_run_dir(d):
                found.append(Job(FolderKind.RUN, d))
            elif is_gold_dir(d):
                found.append(Job(FolderKind.GOLD_STANDARD, d))
            elif depth < 2:
                try:
                    nxt += sorted(c for c in d.iterdir() if c.is_dir() and not c.is_symlink()
                                  and c.name != "dicom" and not c.name.startswith("."))
                except OSError:
                    pass
        if found or not nxt:
            return found
        level = nxt
    return []


# ----------------------------------------------------------------------------- loading
def load_plan(job: Job, compression_name: str) -> Plan:
    """Read a folder's current results.json / metadata.json (+ config.yaml).

    A file that is not JSON (e.g. half-written by the optimizer) or does not match the
    schema refuses the folder: ``plan.untouchable`` is set and nothing will be written.
    """
    report = JobReport(job.kind, job.folder, job.name, compression=compression_name)
    if job.kind == FolderKind.RUN:
        plan = Plan(job, report, RESULTS_NAME, LEGACY_RESULTS_NAME)
    else:
        plan = Plan(job, report, GOLD_METADATA_NAME, GOLD_LEGACY_METADATA_NAME)
    current = job.folder / plan.source_name
    try:
        _read_current(plan)
    except UserError as exc:
        report.errors.append(f"{exc}; the folder was left unchanged")
        report.status = FolderStatus.FAILED
        plan.untouchable = True
        return plan
    except OSError as exc:
        report.errors.append(f"{current}: cannot read ({exc.strerror or exc}); the folder was left unchanged")
        report.status = FolderStatus.FAILED
        plan.untouchable = True
        return plan
    _identify(plan)
    return plan


def _read_current(plan: Plan) -> None:
    """Fill ``plan.data`` / ``data_bytes`` / ``config`` from the folder's files.

    Raises
    ------
    InputFileError
        A file is missing, not JSON / YAML, not an object, breaks the schema, or is a
        symlink out of the folder or not a regular file.
    OSError
        A file cannot be read.
    """
    job = plan.job
    current = job.folder / plan.source_name
    legacy = job.folder / plan.legacy_name
    if legacy.is_symlink() or legacy.exists():  # a symlink out of the folder, a FIFO: refused
        check_file(legacy, root=job.folder, what=plan.legacy_name)
    if current.is_file():
        check_file(current, root=job.folder, what=plan.source_name)
        plan.data_bytes = current.read_bytes()
        data = read_json(current)
    elif job.kind == FolderKind.GOLD_STANDARD:
        data = {}
        plan.report.notes.append(f"no {GOLD_METADATA_NAME}: one will be written with the DICOM UIDs")
    else:
        raise InputFileError("no such file", current)
    if not isinstance(data, dict):
        raise InputFileError("expected a JSON object at the top level", current)
    if job.kind == FolderKind.RUN:
        validate_results(data, current, migrated="dicom" in data)
        plan.config = read_config(job.folder / CONFIG_NAME)
    plan.data = data


def _previous_report(folder: Path) -> dict[str, Any]:
    try:
        prev = read_json(folder / REPORT_JSON_NAME)
    except UserError:
        return {}
    return prev if isinstance(prev, dict) and prev.get("format") == REPORT_FORMAT else {}


def _first_str(data: dict[str, Any], keys: Sequence[str]) -> str | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _identify(plan: Plan) -> None:
    """Run / gold name and run key, independent of the folder's path and name."""
    data, folder = plan.data or {}, plan.job.folder
    raw_block = data.get("dicom")
    block: dict[str, Any] = raw_block if isinstance(raw_block, dict) else {}
    prev = _previous_report(folder)
    if plan.is_run:
        own = _first_str(data, RUN_NAME_KEYS) or _first_str(plan.config, CONFIG_RUN_NAME_KEYS)
    else:
        own = _first_str(data, ("name",))
    plan.name = own or _first_str(block, ("name",)) or _first_str(prev, ("name",)) or plan.job.name
    plan.report.name = plan.name
    recorded = _first_str(block, ("run_key",)) or _first_str(prev, ("run_key",))
    if recorded:
        plan.run_key = recorded
    else:
        legacy = folder / plan.legacy_name
        first = legacy.read_bytes() if legacy.is_file() else plan.data_bytes
        plan.run_key = hashlib.sha256(plan.name.encode("utf-8") + b"\0" + first).hexdigest()[:16]
    plan.report.run_key = plan.run_key


def metadata_patient_id(plan: Plan) -> str | None:
    """PatientID named by run / gold metadata (results.json, config.yaml, metadata.json)."""
    for source in (plan.data or {}, plan.config):
        pid = _first_str(source, PATIENT_ID_KEYS)
        if pid:
            return pid
    return None


# ----------------------------------------------------------------------------- items
def plan_items(plan: Plan) -> None:
    """Per-item source paths and refusals (duplicates, paths leaving the folder)."""
    folder = plan.job.folder
    src_file = folder / plan.source_name
    if not plan.is_run:
        plan.items.append(PlanItem(None, None, "gold", GOLD_SEG_PATH, source_rel=GOLD_SOURCE_NAME))
        return
    trials = (plan.data or {})["trials"]
    numbers = [t["trial_number"] for t in trials]
    for index, t in enumerate(trials):
        n = int(t["trial_number"])
        item = PlanItem(index, n, f"trial_{n:03d}", f"{SEG_DIR}/{trial_seg_name(n)}",
                        pruned=bool(t.get("pruned") or False))
        plan.items.append(item)
        if numbers.count(n) > 1:
            where = [i for i, v in enumerate(numbers) if v == n]
            item.pre_error = (ReasonCode.DUPLICATE, f"{src_file}: trial_number {n} appears {len(where)} times "
                                                    f"(trials entries {where}); make trial numbers unique")
            item.key = f"trial_{n:03d}#{index}"
            continue
        declared = t.get("segmentation_path")
        if declared is None and isinstance(t.get("user_attrs"), dict):
            declared = t["user_attrs"].get("segmentation_path")
        try:
            if isinstance(declared, str) and declared:
                item.source_rel = _declared_source(folder, declared, n, f"trials/{index}/segmentation_path",
                                                   src_file, item.notes)
            else:
                for cand in legacy_trial_candidates(n):
                    p = safe_relative_path(folder, cand, field_name=f"trial {n} segmentation", source=src_file)
                    if p.exists():
                        item.source_rel = cand
                        break
        except UserError as exc:
            item.pre_error = (ReasonCode.PATH_OUTSIDE, str(exc))


def _declared_source(folder: Path, declared: str, number: int, field_name: str, src_file: Path,
                     notes: list[str]) -> str:
    """A ``segmentation_path`` from results.json, as a path relative to the run.

    Legacy writers stored absolute paths. One that lies inside the run folder is the
    equivalent relative path; one elsewhere (e.g. the machine the optimizer ran on)
    whose file sits at the conventional ``segmentations/trial_NNN.seg.nrrd`` of this run
    is found there (a note says so); anything else is refused.

    Raises
    ------
    InputFileError
        An absolute path outside the run with no file at the conventional place, or a
        relative path that leaves the run (see :func:`.layout.safe_relative_path`).
    """
    p = Path(declared)
    if p.is_absolute() or declared.startswith(("/", "\\")) or (len(declared) > 1 and declared[1] == ":"):
        root = Path(os.path.realpath(folder))
        real = Path(os.path.realpath(p)) if p.is_absolute() else None
        if real is not None and root in real.parents:
            rel = real.relative_to(root).as_posix()
            safe_relative_path(folder, rel, field_name=field_name, source=src_file)
            return rel
        base = declared.replace("\\", "/").rsplit("/", 1)[-1]
        for cand in legacy_trial_candidates(number):
            if cand.rsplit("/", 1)[-1] == base and (folder / cand).is_file():
                safe_relative_path(folder, cand, field_name=field_name, source=src_file)
                notes.append(f"{field_name} {declared!r} is absolute and outside the run; the file at the "
                             f"conventional place {cand} was used")
                return cand
        raise InputFileError(
            f"{field_name} is an absolute path outside the run folder ({declared!r}) and no "
            f"{LEGACY_SEG_DIR}/{base} exists in the run; only files inside the run are migrated -- copy it into "
            f"{LEGACY_SEG_DIR}/ and fix the path", src_file)
    safe_relative_path(folder, declared, field_name=field_name, source=src_file)
    return Path(declared.replace("\\", "/")).as_posix()


# ----------------------------------------------------------------------------- already migrated?
def already_migrated(plan: Plan) -> JobReport | None:
    """The previous report if the folder is fully migrated and unchanged, else None.

    Criteria (docs/migration.md): the current results.json / metadata.json has its
    ``dicom`` block and a ``dicom_status`` on every trial; migration_report.json lists
    exactly the current items, none failed or changed; every SEG it lists exists with the
    recorded sha256 and every source still has its recorded sha256; the volume series
    has the recorded number of files. Paths are relative: a moved, renamed or copied
    folder is still recognised.
    """
    folder = plan.job.folder
    current, prev = plan.data or {}, _previous_report(folder)
    if "dicom" not in current or not prev:
        return None
    if prev.get("status") not in (FolderStatus.MIGRATED, FolderStatus.ALREADY_MIGRATED):
        return None
    records = [ItemRecord.from_dict(d) for d in prev.get("items", []) if isinstance(d, dict)]
    if [r.key for r in records] != [i.key for i in plan.items]:
        return None
    if plan.is_run and any("dicom_status" not in t for t in current.get("trials", [])):
        return None
    for r in records:
        if ItemStatus(r.status).is_problem:
            return None
        if r.status == ItemStatus.MIGRATED and not _unchanged(folder, r):
            return None
    vol = prev.get("volume") or {}
    vdir = folder / VOLUME_DIR
    if not vdir.is_dir() or len(list(vdir.glob("[0-9][0-9][0-9][0-9].dcm"))) != vol.get("files"):
        return None
    if vol.get("series_instance_uid") != current["dicom"].get("volume_series_uid"):
        return None
    rep = JobReport(plan.job.kind, folder, plan.name, status=FolderStatus.ALREADY_MIGRATED, volume=vol,
                    items=records, compression=prev.get("compression", ""), notes=list(prev.get("notes", [])),
                    run_key=plan.run_key)
    for r in rep.items:
        r.already_present = r.status == ItemStatus.MIGRATED
    return rep


def _unchanged(folder: Path, r: ItemRecord) -> bool:
    try:
        out = safe_relative_path(folder, r.output or "", field_name="output")
        src = safe_relative_path(folder, r.source or "", field_name="source")
        return out.is_file() and sha256_file(out) == r.output_sha256 and sha256_file(src) == r.source_sha256
    except (UserError, OSError):
        return False


def trial_status_of(rec: ItemRecord) -> TrialStatus:
    """``dicom_status`` for results.json from an item's outcome."""
    if rec.status == ItemStatus.MIGRATED:
        return TrialStatus.MIGRATED
    if rec.status == ItemStatus.CHANGED:
        return TrialStatus.CHANGED
    if rec.status == ItemStatus.SKIPPED:
        return TrialStatus.PRUNED if rec.reason_code == ReasonCode.PRUNED else TrialStatus.NO_SEGMENTATION
    return TrialStatus.FAILED


__all__ = ["Job", "Plan", "PlanItem", "discover", "load_plan", "plan_items", "already_migrated",
           "metadata_patient_id", "trial_status_of", "RUN_NAME_KEYS", "PATIENT_ID_KEYS"]
