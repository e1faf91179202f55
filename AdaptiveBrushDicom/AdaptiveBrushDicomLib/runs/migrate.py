"""Legacy optimization runs and gold standards -> DICOM (design rule 5: nothing lost).

``migrate_paths`` is what ``abdicom migrate`` and ``scripts/migrate_to_dicom.py`` call.
For each run / gold standard folder it

1. keeps the original ``results.json`` (``metadata.json``) as ``results.legacy.json``
   (``metadata.legacy.json``), written once and never overwritten;
2. writes the source image as a synthetic DICOM series in ``dicom/volume/`` (UIDs derived
   from the patient id and the image content, so every run and gold standard of one image
   references one Study and one Series);
3. writes every trial as a LABELMAP SEG to a temporary name, decodes it with the
   reference series, compares it voxel by voxel with the source aligned to the reference
   grid, and only then renames it to ``dicom/segmentations/trial_NNN.dcm``;
4. writes ``migration_report.json`` / ``.md``, then replaces ``results.json`` atomically,
   last.

Every UID and every byte is a function of the inputs (SEG content date = source file
mtime), so a run killed at any moment and re-run gives the same files as an
uninterrupted run, and a second run over a migrated folder changes nothing. Details and
the reasoning are in ``docs/migration.md``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

import numpy as np

from AdaptiveBrushDicomLib import __version__
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.dicom import uids
from AdaptiveBrushDicomLib.dicom.compression import DEFAULT_COMPRESSION, Compression
from AdaptiveBrushDicomLib.io.atomic import atomic_write_bytes
from AdaptiveBrushDicomLib.io.digest import sha256_file
from AdaptiveBrushDicomLib.errors import InputFileError, OverlapError, ReferenceMismatchError, UserError
from AdaptiveBrushDicomLib.runs.results import (
    CONFIG_NAME, GOLD_LEGACY_METADATA_NAME, GOLD_METADATA_NAME, GOLD_SEG_PATH, GOLD_SOURCE_NAME,
    LEGACY_RESULTS_NAME, REPORT_JSON_NAME, REPORT_MD_NAME, RESULTS_NAME, SEG_DIR, STATUS_FAILED,
    STATUS_MIGRATED, STATUS_NO_SEGMENTATION, STATUS_PRUNED, TRIAL_DICOM_KEYS, VOLUME_DIR,
    algorithm_from_config, is_gold_dir, is_run_dir, legacy_trial_candidates, read_config, read_json,
    safe_relative_path, sample_name_from, trial_seg_name, validate_gold_metadata, validate_results,
)
from AdaptiveBrushDicomLib.core.segment import AlgorithmType

REPORT_FORMAT = "adaptivebrush-dicom-migration-report/1"
#: Image file suffixes tried in ``--volumes-dir`` (in this order), then ``DIR/<name>/``.
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii.gz", ".nii", ".mha", ".mhd")
#: Names of our temporary files; stale ones (left by a kill) are removed on the next run.
_TEMP_RE = re.compile(r"^\..+\.(tmp|partial)-\d+$")
#: SeriesNumber of a gold standard SEG.
GOLD_SERIES_NUMBER = 900

# item outcome codes
OK = "migrated"
SKIPPED = "skipped"
FAILED = "failed"
PLANNED = "planned"


# =============================================================================== records
@dataclass
class ItemRecord:
    """Outcome for one trial (or the gold segmentation) -- one row of the report."""

    key: str
    trial_number: int | None
    status: str  # migrated | skipped | failed | planned (dry run)
    reason_code: str | None = None  # pruned, missing_file, overlap, wrong_geometry, ...
    reason: str | None = None
    source: str | None = None
    source_sha256: str | None = None
    source_bytes: int | None = None
    output: str | None = None
    output_sha256: str | None = None
    size_bytes: int | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    series_description: str | None = None
    series_number: int | None = None
    voxels_verified: int | None = None
    labelled_voxels: int | None = None
    segments: int | None = None
    already_present: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ItemRecord":
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class JobReport:
    """Outcome for one run or gold standard folder (= migration_report.json)."""

    kind: str  # "run" | "gold_standard"
    folder: Path
    name: str
    status: str = "pending"  # migrated | partial | failed | already_migrated | planned
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    volume: dict[str, Any] = field(default_factory=dict)
    items: list[ItemRecord] = field(default_factory=list)
    compression: str = DEFAULT_COMPRESSION.cli_name
    wall_time_seconds: float = 0.0
    results_json: str = "unchanged"  # written | unchanged | not written

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(i.status == FAILED for i in self.items)

    def totals(self) -> dict[str, Any]:
        count = lambda s: sum(1 for i in self.items if i.status == s)  # noqa: E731
        return {
            "items": len(self.items),
            "migrated": count(OK),
            "skipped": count(SKIPPED),
            "failed": count(FAILED),
            "planned": count(PLANNED),
            "already_present": sum(1 for i in self.items if i.already_present),
            "bytes_in": sum(i.source_bytes or 0 for i in self.items if i.status == OK),
            "bytes_out": sum(i.size_bytes or 0 for i in self.items if i.status == OK),
            "voxels_verified": sum(i.voxels_verified or 0 for i in self.items if i.status == OK),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "tool": f"AdaptiveBrushDicom {__version__}",
            "kind": self.kind,
            "name": self.name,
            "folder": str(self.folder),
            "status": self.status,
            "compression": self.compression,
            "volume": self.volume,
            "errors": list(self.errors),
            "notes": list(self.notes),
            "totals": self.totals(),
            "wall_time_seconds": round(self.wall_time_seconds, 3),
            "results_json": self.results_json,
            "items": [asdict(i) for i in self.items],
        }

    def to_markdown(self) -> str:
        t = self.totals()
        kind = "Optimization run" if self.kind == "run" else "Gold standard"
        lines = [
            f"# DICOM migration report: {self.name}",
            "",
            f"{kind} `{self.folder}` -- status **{self.status}**, "
            f"{t['migrated']} migrated, {t['skipped']} skipped, {t['failed']} failed "
            f"({t['already_present']} already present), wall time {self.wall_time_seconds:.2f} s.",
            "",
        ]
        if self.volume:
            v = self.volume
            lines += [
                "## Source image",
                "",
                f"- sample: `{v.get('sample')}` from `{v.get('source')}`",
                f"- PatientID `{v.get('patient_id')}`, StudyInstanceUID `{v.get('study_instance_uid')}`",
                f"- volume series `{v.get('series_instance_uid')}` ({v.get('files')} files in `{v.get('folder')}`)",
                "",
            ]
        if self.errors:
            lines += ["## Errors", ""] + [f"- {e}" for e in self.errors] + [""]
        if self.notes:
            lines += ["## Notes", ""] + [f"- {n}" for n in self.notes] + [""]
        lines += [
            "## Items",
            "",
            "| item | status | source (sha256) | output | SeriesInstanceUID | bytes | voxels verified | reason |",
            "|---|---|---|---|---|---:|---:|---|",
        ]
        for i in self.items:
            src = f"`{i.source}` ({i.source_sha256[:12]}...)" if i.source and i.source_sha256 else (i.source or "")
            reason = "; ".join([i.reason or ""] + list(i.notes)).strip("; ").replace("|", "/")
            if i.already_present:
                reason = ("already present; " + reason).rstrip("; ")
            lines.append(
                f"| {i.key} | {i.status} | {src} | {i.output or ''} | {i.series_instance_uid or ''} | "
                f"{i.size_bytes if i.size_bytes is not None else ''} | "
                f"{i.voxels_verified if i.voxels_verified is not None else ''} | {reason} |"
            )
        lines += [
            "",
            f"Totals: {t['items']} items, {t['bytes_in']:,} bytes in, {t['bytes_out']:,} bytes out, "
            f"{t['voxels_verified']:,} voxels verified.",
            "",
        ]
        return "\n".join(lines)


@dataclass
class MigrationSummary:
    """What :func:`migrate_paths` did, for every folder."""

    reports: list[JobReport]
    dry_run: bool = False
    wall_time_seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 when any folder or item failed."""
        return 1 if any(r.failed for r in self.reports) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "wall_time_seconds": round(self.wall_time_seconds, 3),
            "folders": [r.to_dict() for r in self.reports],
        }

    def to_text(self) -> str:
        lines = []
        for r in self.reports:
            t = r.totals()
            if r.status == "already_migrated":
                lines.append(f"{r.folder}: already migrated, nothing changed ({t['migrated']} SEG file(s))")
                continue
            lines.append(
                f"{r.folder}: {r.status} -- {t['migrated']} migrated ({t['already_present']} already present), "
                f"{t['skipped']} skipped, {t['failed']} failed, {t['planned']} planned, "
                f"{r.wall_time_seconds:.2f} s"
            )
            for e in r.errors:
                lines.append(f"  error: {e}")
            for i in r.items:
                if i.status in (FAILED,) or (i.status == SKIPPED and i.reason_code != "pruned"):
                    lines.append(f"  {i.key}: {i.status}: {i.reason}")
            for n in r.notes:
                lines.append(f"  note: {n}")
        return "\n".join(lines)


# =============================================================================== helpers
def _describe_oserror(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "disk full (ENOSPC); free space and re-run"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{exc.strerror or 'permission denied'}; make the folder writable (e.g. chmod u+w) and re-run"
    return f"{exc.strerror or exc}"




def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


#: Files we write directly into a run / gold folder (their temporary names are cleaned up).
_OWN_TOP_LEVEL = (RESULTS_NAME, LEGACY_RESULTS_NAME, GOLD_METADATA_NAME, GOLD_LEGACY_METADATA_NAME,
                  REPORT_JSON_NAME, REPORT_MD_NAME, "abdicom-write-test")


def _clean_stale_temps(folder: Path) -> list[str]:
    """Remove our temporary files (``.name.tmp-PID`` / ``.name.partial-PID``) left by a kill.

    In the folder itself only temporary names of the files we write are touched; in
    ``dicom/`` (ours) any name of that pattern."""
    removed = []
    for sub in (folder, folder / "dicom", folder / VOLUME_DIR, folder / SEG_DIR):
        if not sub.is_dir():
            continue
        for p in sub.iterdir():
            if sub == folder and not any(p.name.startswith(f".{own}.tmp-") for own in _OWN_TOP_LEVEL):
                continue
            if p.is_file() and _TEMP_RE.match(p.name):
                try:
                    p.unlink()
                    removed.append(str(p.relative_to(folder)))
                except OSError:
                    pass
    return removed


def _series_naming() -> tuple[Callable[[int, str], str], Callable[[int], int], bool]:
    """``trial_series_description`` / ``trial_series_number`` from series_naming, or ours."""
    try:
        from AdaptiveBrushDicomLib.dicom.naming import trial_series_description, trial_series_number  # type: ignore

        return trial_series_description, trial_series_number, True
    except ImportError:
        return _trial_series_description, _trial_series_number, False


def _trial_series_description(trial_number: int, algorithm: str | None) -> str:
    """``trial_042_watershed`` (LO: at most 64 characters, [A-Za-z0-9_-])."""
    algo = re.sub(r"[^A-Za-z0-9_-]+", "_", algorithm or "unknown").strip("_") or "unknown"
    return f"trial_{int(trial_number):03d}_{algo}"[:64]


def _trial_content_description(run_name: str, trial_number: int) -> str:
    """ContentDescription ``<run> trial <n>`` (LO, 64): the run part is shortened, never the
    suffix, so ``database.run_name_from_content`` can always parse it."""
    suffix = f" trial {int(trial_number)}"
    return run_name[: 64 - len(suffix)].rstrip() + suffix


def _trial_series_number(trial_number: int) -> int:
    """SeriesNumber of a trial SEG: 1000 + trial number (the volume series is 1)."""
    return 1000 + int(trial_number)


# =============================================================================== worker side
@dataclass
class ItemTask:
    """Everything a worker needs for one item; picklable."""

    folder: str
    key: str
    trial_number: int | None
    source_rel: str | None
    pruned: bool
    output_rel: str
    reference_dir: str
    series_uid: str
    series_description: str
    series_number: int
    content_label: str
    content_description: str
    algorithm_type: str
    algorithm_name: str | None
    algorithm_parameters: dict[str, Any] | None
    compression: str
    known: dict[str, Any] | None = None
    dry_run: bool = False
    grid: Any = None  # Grid of the source image (dry run only)
    pre_error: tuple[str, str] | None = None


#: Parsed reference series, per worker process (keyed by folder).
_REFERENCES: dict[str, Any] = {}


def _reference(folder: str):
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

    ref = _REFERENCES.get(folder)
    if ref is None:
        ref = ReferenceSeries.from_folder(folder)
        _REFERENCES[folder] = ref
    return ref


def _source_labelmap(task: ItemTask, src: Path, grid):
    """Source seg.nrrd -> LabelMap on ``grid`` with the trial's algorithm metadata."""
    from AdaptiveBrushDicomLib.core.align import align_to_grid
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    lm = read_segmentation(src)
    array = align_to_grid(lm.array, lm.grid, grid, what=str(task.source_rel))
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


def _verify(path: Path, labelmap, reference) -> tuple[int, int, int]:
    """Decode ``path`` and compare with ``labelmap`` (already on the reference grid).

    Returns (voxels compared, labelled voxels, segments); raises ValueError on mismatch.
    """
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
    from AdaptiveBrushDicomLib.dicom.seg.write import flatten_layers

    expected, segments = flatten_layers(labelmap)
    decoded = read_seg(path, reference=reference)
    got = decoded.labelmap.array
    if got.shape != expected.shape:
        raise ValueError(f"decoded shape {got.shape} differs from source {expected.shape}")
    # numpy compares mixed integer dtypes exactly, chunk by chunk: no full-size casts
    diff = np.count_nonzero(got != expected)
    if diff:
        raise ValueError(f"{diff} voxels differ between the SEG and its source")
    want = sorted(s.label for s in segments)
    have = sorted(s.label for s in decoded.labelmap.segments)
    if want != have:
        raise ValueError(f"segment labels {have} differ from the source's {want}")
    if decoded.sop_class_uid != SegSopClass.LABELMAP:
        raise ValueError(f"SOP class {decoded.sop_class_uid} is not LABELMAP")
    return int(expected.size), int(np.count_nonzero(expected)), len(segments)


def process_item(task: ItemTask) -> ItemRecord:
    """Migrate (or check) one trial / gold segmentation; never raises for bad input."""
    t0 = time.perf_counter()
    rec = ItemRecord(key=task.key, trial_number=task.trial_number, status=FAILED, source=task.source_rel,
                     output=task.output_rel, series_description=task.series_description,
                     series_number=task.series_number)
    # library warnings (e.g. highdicom on an empty segmentation) go into the report, not
    # between the progress lines
    handler = _NoteHandler(rec.notes)
    lib_logger = logging.getLogger("highdicom")
    lib_logger.addHandler(handler)
    propagate, lib_logger.propagate = lib_logger.propagate, False
    try:
        _process_item(task, rec)
    except UserError as exc:
        _fail(rec, _code_for(exc), str(exc))
    except OSError as exc:
        _fail(rec, "io_error", f"{exc.filename or task.output_rel}: {_describe_oserror(exc)}")
    except Exception as exc:  # a bug or a library failure: report it, keep going
        _fail(rec, "error", f"unexpected {type(exc).__name__}: {exc}")
    finally:
        lib_logger.removeHandler(handler)
        lib_logger.propagate = propagate
    rec.seconds = round(time.perf_counter() - t0, 4)
    return rec


class _NoteHandler(logging.Handler):
    """Collects log records of WARNING and above as text."""

    def __init__(self, notes: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.notes = notes

    def emit(self, record) -> None:
        self.notes.append(f"{record.name}: {record.getMessage()}")


def _code_for(exc: Exception) -> str:
    if isinstance(exc, OverlapError):
        return "overlap"
    if isinstance(exc, ReferenceMismatchError):
        return "wrong_geometry"
    if isinstance(exc, InputFileError):
        return "unreadable"
    return "error"


def _fail(rec: ItemRecord, code: str, reason: str) -> None:
    rec.status, rec.reason_code, rec.reason = FAILED, code, reason
    rec.series_instance_uid = rec.sop_instance_uid = None
    rec.output_sha256 = rec.size_bytes = None
    rec.voxels_verified = rec.labelled_voxels = rec.segments = None


def _process_item(task: ItemTask, rec: ItemRecord) -> None:
    import pydicom

    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

    folder = Path(task.folder)
    rec.output = None
    if task.pre_error is not None:
        _fail(rec, *task.pre_error)
        return
    if task.source_rel is None:
        if task.pruned:
            rec.status, rec.reason_code, rec.reason = SKIPPED, "pruned", "pruned trial without segmentation file"
        else:
            cands = ", ".join(legacy_trial_candidates(task.trial_number or 0))
            _fail(rec, "missing_file",
                  f"trial {task.trial_number}: no segmentation file ({cands} not found) and the trial is not "
                  "marked pruned; restore the file or set \"pruned\": true")
        return
    src = folder / task.source_rel
    if not src.is_file():
        if task.pruned:
            rec.status, rec.reason_code, rec.reason = SKIPPED, "pruned", "pruned trial without segmentation file"
        else:
            _fail(rec, "missing_file", f"{task.source_rel}: segmentation file named in results.json not found; "
                                       "restore it or set \"pruned\": true for the trial")
        return
    rec.source_sha256 = sha256_file(src)
    rec.source_bytes = src.stat().st_size
    sop_uid = uids.derive_uid("seg-instance", task.series_uid, rec.source_sha256)
    out = folder / task.output_rel

    if task.dry_run:
        lm = _source_labelmap(task, src, task.grid)
        rec.status, rec.reason = PLANNED, ("already present" if out.exists() else "would be written")
        rec.series_instance_uid, rec.sop_instance_uid = task.series_uid, sop_uid
        rec.segments = len(lm.segments)
        rec.output = task.output_rel
        return

    reference = _reference(task.reference_dir)
    if out.exists():
        hdr = pydicom.dcmread(out, stop_before_pixels=True, specific_tags=["SeriesInstanceUID", "SOPInstanceUID"])
        found = (str(getattr(hdr, "SeriesInstanceUID", "")), str(getattr(hdr, "SOPInstanceUID", "")))
        if found != (task.series_uid, sop_uid):
            _fail(rec, "conflict",
                  f"{task.output_rel} exists but holds SeriesInstanceUID/SOPInstanceUID {found[0]}/{found[1]}, "
                  f"expected {task.series_uid}/{sop_uid} (its source changed since it was migrated, or the file "
                  "is not ours); move it out of the folder and re-run")
            return
        out_sha = sha256_file(out)
        known = task.known or {}
        if (known.get("status") == OK and known.get("output_sha256") == out_sha
                and known.get("source_sha256") == rec.source_sha256):
            for k in ("voxels_verified", "labelled_voxels", "segments"):
                setattr(rec, k, known.get(k))
        else:  # written by an interrupted run (report not yet written): verify it now
            lm = _source_labelmap(task, src, reference.grid)
            try:
                rec.voxels_verified, rec.labelled_voxels, rec.segments = _verify(out, lm, reference)
            except ValueError as exc:
                _fail(rec, "verify_mismatch", f"{task.output_rel} exists but does not match its source ({exc}); "
                                              "move it out of the folder and re-run")
                return
        rec.status, rec.already_present, rec.output = OK, True, task.output_rel
        rec.output_sha256, rec.size_bytes = out_sha, out.stat().st_size
        rec.series_instance_uid, rec.sop_instance_uid = task.series_uid, sop_uid
        return

    lm = _source_labelmap(task, src, reference.grid)
    mtime = datetime.fromtimestamp(int(src.stat().st_mtime), tz=timezone.utc)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        write_seg(
            lm, reference, tmp,
            compression=task.compression,
            series_description=task.series_description,
            series_number=task.series_number,
            series_instance_uid=task.series_uid,
            sop_instance_uid=sop_uid,
            content_label=task.content_label,
            content_description=task.content_description,
            force=True,
            source_name=task.source_rel,
            content_datetime=mtime,
            warn=rec.notes.append,
        )
        try:
            rec.voxels_verified, rec.labelled_voxels, rec.segments = _verify(tmp, lm, reference)
        except ValueError as exc:
            _fail(rec, "verify_mismatch", f"{task.source_rel}: decoded SEG differs from the source ({exc}); "
                                          "nothing was kept; please report this as a bug")
            return
        os.replace(tmp, out)
    except OSError as exc:
        _fail(rec, "io_error", f"{task.output_rel}: cannot write: {_describe_oserror(exc)}")
        return
    except UserError as exc:
        msg = str(exc)
        if "No space left" in msg:
            msg += "; free disk space and re-run"
        _fail(rec, _code_for(exc), msg)
        return
    finally:
        if tmp.exists():
            try:
                tmp.unlink()
            except OSError:
                pass
    rec.status, rec.output = OK, task.output_rel
    rec.output_sha256, rec.size_bytes = sha256_file(out), out.stat().st_size
    rec.series_instance_uid, rec.sop_instance_uid = task.series_uid, sop_uid


# =============================================================================== discovery
@dataclass
class Job:
    """One folder to migrate."""

    kind: str  # "run" | "gold_standard"
    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name


def discover(paths: Sequence[str | Path]) -> list[Job]:
    """Runs and gold standards in ``paths`` (each a run, a gold standard, or a folder
    holding them up to two levels down, e.g. ``optimization_results/`` or the parent of
    ``optimization_results/`` and ``GoldStandards/``). Symlinked folders are not followed."""
    jobs: list[Job] = []
    seen: set[Path] = set()

    def add(kind: str, p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            jobs.append(Job(kind, p))

    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise UserError("no such folder; give a run folder, a gold standard folder or a folder of them", p)
        if not p.is_dir():
            raise UserError("expected a folder (run, gold standard, or a folder of them), got a file", p)
        found = False
        levels = [[p]]
        for depth in range(3):
            nxt = []
            for d in levels[-1]:
                if is_run_dir(d):
                    add("run", d)
                    found = True
                elif is_gold_dir(d):
                    add("gold_standard", d)
                    found = True
                elif depth < 2:
                    try:
                        nxt += sorted(c for c in d.iterdir() if c.is_dir() and not c.is_symlink()
                                      and c.name != "dicom" and not c.name.startswith("."))
                    except OSError:
                        pass
            if found or not nxt:
                break
            levels.append(nxt)
        if not found:
            raise UserError(
                f"no optimization run ({RESULTS_NAME}) or gold standard ({GOLD_SOURCE_NAME}) found in this folder "
                "or two levels below it", p)
    return jobs


# =============================================================================== planning
@dataclass
class _Plan:
    """Parsed inputs of one job (before any writing)."""

    job: Job
    report: JobReport
    source_name: str  # results.json or metadata.json
    legacy_name: str
    data: dict[str, Any] | None = None  # legacy content
    legacy_from_current: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    sample: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)  # per item: index, number, source_rel, ...
    volume_path: Path | None = None


def _load_legacy(job: Job, report: JobReport) -> _Plan:
    if job.kind == "run":
        plan = _Plan(job, report, RESULTS_NAME, LEGACY_RESULTS_NAME)
    else:
        plan = _Plan(job, report, GOLD_METADATA_NAME, GOLD_LEGACY_METADATA_NAME)
    folder = job.folder
    legacy = folder / plan.legacy_name
    current = folder / plan.source_name
    try:
        if legacy.is_file():
            data = read_json(legacy)
        elif current.is_file():
            data = read_json(current)
            if isinstance(data, dict) and "dicom" in data:
                plan.legacy_from_current = True
                data = _strip_dicom(data)
                report.notes.append(f"{plan.legacy_name} is missing: the legacy content was taken from "
                                    f"{plan.source_name} without its dicom fields")
        elif job.kind == "gold_standard":
            data = {}
            report.notes.append(f"no {GOLD_METADATA_NAME}: one will be written with the DICOM UIDs")
        else:
            raise InputFileError("no such file", current)
        if not isinstance(data, dict):
            raise InputFileError("expected a JSON object at the top level", legacy if legacy.is_file() else current)
        if job.kind == "run":
            validate_results(data, legacy if legacy.is_file() else current, migrated=False)
            plan.config = read_config(folder / CONFIG_NAME)
        plan.data = data
    except UserError as exc:
        report.errors.append(str(exc))
    return plan


def _strip_dicom(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k != "dicom"}
    if isinstance(out.get("trials"), list):
        out["trials"] = [
            {k: v for k, v in t.items() if k not in TRIAL_DICOM_KEYS} if isinstance(t, dict) else t
            for t in out["trials"]
        ]
    return out


def _plan_items(plan: _Plan) -> None:
    """Per-item source paths, refusals (duplicates, paths leaving the folder)."""
    folder = plan.job.folder
    src_file = folder / (plan.legacy_name if (folder / plan.legacy_name).is_file() else plan.source_name)
    if plan.job.kind == "gold_standard":
        plan.items.append({"index": None, "number": None, "key": "gold", "source_rel": GOLD_SOURCE_NAME,
                           "pruned": False, "pre_error": None, "output_rel": GOLD_SEG_PATH})
        return
    trials = plan.data["trials"]
    numbers = [t["trial_number"] for t in trials]
    for index, t in enumerate(trials):
        n = int(t["trial_number"])
        item: dict[str, Any] = {"index": index, "number": n, "key": f"trial_{n:03d}", "source_rel": None,
                                "pruned": bool(t.get("pruned") or False), "pre_error": None,
                                "output_rel": f"{SEG_DIR}/{trial_seg_name(n)}"}
        if numbers.count(n) > 1:
            where = [i for i, v in enumerate(numbers) if v == n]
            item["pre_error"] = ("duplicate", f"{src_file}: trial_number {n} appears {len(where)} times "
                                              f"(trials entries {where}); make trial numbers unique")
            item["key"] = f"trial_{n:03d}#{index}"
            plan.items.append(item)
            continue
        declared = t.get("segmentation_path")
        if declared is None and isinstance(t.get("user_attrs"), dict):
            declared = t["user_attrs"].get("segmentation_path")
        try:
            if isinstance(declared, str) and declared:
                item["source_rel"] = _declared_source(folder, declared, f"trials/{index}/segmentation_path", src_file)
            else:
                for cand in legacy_trial_candidates(n):
                    p = safe_relative_path(folder, cand, field_name=f"trial {n} segmentation", source=src_file)
                    if p.exists():
                        item["source_rel"] = cand
                        break
        except UserError as exc:
            item["pre_error"] = ("path_outside", str(exc))
        plan.items.append(item)


def _declared_source(folder: Path, declared: str, field_name: str, src_file: Path) -> str:
    """A ``segmentation_path`` from results.json, as a path relative to the run.

    Legacy writers stored absolute paths; one that lies inside the run folder is
    accepted as the equivalent relative path, anything else is refused."""
    p = Path(declared)
    if p.is_absolute():
        root = Path(os.path.realpath(folder))
        real = Path(os.path.realpath(p))
        if root in real.parents:
            rel = real.relative_to(root).as_posix()
            safe_relative_path(folder, rel, field_name=field_name, source=src_file)
            return rel
        raise InputFileError(
            f"{field_name} is an absolute path outside the run folder ({declared!r}); "
            "only files inside the run are migrated -- copy it into segmentations/ and fix the path", src_file)
    safe_relative_path(folder, declared, field_name=field_name, source=src_file)
    return Path(declared.replace("\\", "/")).as_posix()


def _algorithm_for_trial(trial: dict[str, Any], config: dict[str, Any]) -> str | None:
    params = trial.get("params") or {}
    algo = params.get("algorithm") if isinstance(params, dict) else None
    return algo if isinstance(algo, str) and algo else algorithm_from_config(config)


def _gold_algorithm(meta: dict[str, Any]) -> tuple[AlgorithmType, str, dict[str, Any] | None]:
    declared = str(meta.get("algorithm_type") or "").upper()
    algo = meta.get("algorithm") or meta.get("preset") or "AdaptiveBrush"
    if declared in AlgorithmType.__members__:
        kind = AlgorithmType[declared]
    elif str(algo).lower() in ("manual", "manual_segmentation") and not meta.get("clicks") \
            and not meta.get("base_algorithm"):
        kind = AlgorithmType.MANUAL
    else:  # brush clicks, a base algorithm, or a refinement: semi-automatic
        kind = AlgorithmType.SEMIAUTOMATIC
    params = meta.get("parameters") if isinstance(meta.get("parameters"), dict) else None
    if meta.get("base_algorithm"):
        params = dict(params or {})
        params.setdefault("base_algorithm", meta["base_algorithm"])
    return kind, str(algo), params


# =============================================================================== already migrated?
def _already_migrated(plan: _Plan) -> JobReport | None:
    """The previous report if the folder is fully migrated and unchanged, else None.

    Criteria (docs/migration.md): results.json / metadata.json has its ``dicom`` block;
    migration_report.json exists with status ``migrated`` and no failed item; every SEG
    it lists exists with the recorded sha256 and every source still has its recorded
    sha256; the volume series has the recorded number of files.
    """
    folder = plan.job.folder
    try:
        current = read_json(folder / plan.source_name)
        prev = read_json(folder / REPORT_JSON_NAME)
    except UserError:
        return None
    if not isinstance(current, dict) or "dicom" not in current or not isinstance(prev, dict):
        return None
    if prev.get("format") != REPORT_FORMAT or prev.get("status") not in ("migrated", "already_migrated"):
        return None
    items = [ItemRecord.from_dict(d) for d in prev.get("items", [])]
    if any(i.status == FAILED for i in items):
        return None
    if len(items) != len(plan.items):
        return None
    for i in items:
        if i.status != OK:
            continue
        try:
            out = safe_relative_path(folder, i.output or "", field_name="output")
            src = safe_relative_path(folder, i.source or "", field_name="source")
            if not out.is_file() or sha256_file(out) != i.output_sha256 or sha256_file(src) != i.source_sha256:
                return None
        except (UserError, OSError):
            return None
    vol = prev.get("volume") or {}
    vdir = folder / VOLUME_DIR
    if not vdir.is_dir() or len(list(vdir.glob("[0-9][0-9][0-9][0-9].dcm"))) != vol.get("files"):
        return None
    if vol.get("series_instance_uid") != current["dicom"].get("volume_series_uid"):
        return None
    rep = JobReport(plan.job.kind, folder, plan.job.name, status="already_migrated", volume=vol, items=items,
                    compression=prev.get("compression", ""), notes=list(prev.get("notes", [])))
    for i in rep.items:
        i.already_present = i.status == OK
    return rep


# =============================================================================== volumes
def find_volume(sample: str, volumes_dir: Path) -> Path | None:
    """``DIR/<sample>.nrrd`` (.nhdr, .nii.gz, .nii, .mha, .mhd) or a ``DIR/<sample>/`` folder."""
    for suffix in VOLUME_SUFFIXES:
        p = volumes_dir / f"{sample}{suffix}"
        if p.is_file():
            return p
    p = volumes_dir / sample
    if p.is_dir():
        return p
    return None


def _volume_stem(path: Path) -> str:
    name = path.name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def canonical_voxels(array: np.ndarray) -> np.ndarray:
    """The image's values in a dtype that does not depend on the file format.

    ``uids.content_digest`` hashes the array bytes and dtype, so the same image read from
    an int16 NRRD, a uint16 DICOM series or a float32 NIfTI would get three different
    Study/Series UIDs. Integer-valued images become int64 and others float64 before the
    digest; the stored pixels do not change (``synthetic.choose_encoding`` looks at values).
    """
    a = np.asarray(array)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64, copy=False)
    if np.issubdtype(a.dtype, np.floating) and a.size and np.all(np.isfinite(a)) and np.all(np.mod(a, 1) == 0) \
            and float(a.min()) >= -(2.0 ** 62) and float(a.max()) <= 2.0 ** 62:
        return a.astype(np.int64)
    return a.astype(np.float64, copy=False)


class _VolumeCache:
    """Read each source image once per process (voxels in canonical dtype)."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[np.ndarray, Any]] = {}

    def get(self, path: Path):
        from AdaptiveBrushDicomLib.io.volumes import read_volume

        key = path.resolve()
        if key not in self._cache:
            array, grid = read_volume(path)
            self._cache[key] = (canonical_voxels(array), grid)
        return self._cache[key]


def _write_volume(plan: _Plan, cache: _VolumeCache) -> dict[str, Any]:
    """Synthetic series of the source image in ``dicom/volume`` (resuming a partial one)."""
    from AdaptiveBrushDicomLib.errors import OutputExistsError
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series, patient_id_for

    assert plan.volume_path is not None and plan.sample is not None
    array, grid = cache.get(plan.volume_path)
    patient_id = patient_id_for(plan.sample)
    out = plan.job.folder / VOLUME_DIR
    kwargs = dict(patient_id=patient_id, study_description=plan.sample[:64], series_description=plan.sample[:64])
    try:
        series = create_synthetic_series(array, grid, out, **kwargs)
    except OutputExistsError:
        # an interrupted earlier run left part of *our* series: finish it; anything else is refused
        digest = uids.content_digest(array, grid)
        expected = uids.volume_series_uid(patient_id, digest)
        import pydicom

        for p in sorted(out.glob("*.dcm")):
            try:
                uid = str(pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
                          .SeriesInstanceUID)
            except Exception:
                uid = None
            if uid != expected:
                raise UserError(f"{VOLUME_DIR} holds {p.name}, which is not part of the series of "
                                f"{plan.volume_path.name} (SeriesInstanceUID {uid}); move it away and re-run",
                                plan.job.folder) from None
        series = create_synthetic_series(array, grid, out, force=True, **kwargs)
    return {
        "sample": plan.sample,
        "source": str(plan.volume_path),
        "content_sha256": series.content_digest,
        "patient_id": series.patient_id,
        "study_instance_uid": series.study_instance_uid,
        "series_instance_uid": series.series_instance_uid,
        "frame_of_reference_uid": series.frame_of_reference_uid,
        "folder": VOLUME_DIR,
        "files": len(series.paths),
        "grid": grid.describe(),
        "notes": list(series.notes),
        "_grid": grid,
    }


# =============================================================================== progress
class Progress:
    """A one-line progress bar on a TTY, plain lines otherwise (no dependencies)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label, self.total, self.done = label, max(total, 0), 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()

    def step(self, text: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        if self.tty:
            width = 30
            filled = int(width * self.done / self.total) if self.total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {text[:40]:<40}")
            if self.done >= self.total:
                self.stream.write(f" {time.perf_counter() - self.t0:.1f} s\n")
        else:
            self.stream.write(f"{self.label}: {self.done}/{self.total} {text}\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"{self.label}: {text}\n")
            self.stream.flush()


# =============================================================================== main API
def migrate_paths(
    paths: Sequence[str | Path],
    *,
    volume: str | Path | None = None,
    volumes_dir: str | Path | None = None,
    compression: "Compression | str" = DEFAULT_COMPRESSION,
    jobs: int = 1,
    dry_run: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
) -> MigrationSummary:
    """Migrate runs and gold standards to DICOM (what ``abdicom migrate`` does).

    Parameters
    ----------
    paths : runs, gold standards, or folders of them
    volume : the source image file or DICOM folder (used for every folder given)
    volumes_dir : folder where source images are looked up by sample name
        (``<name>.nrrd/.nhdr/.nii.gz/.nii/.mha/.mhd`` or a ``<name>/`` DICOM folder)
    compression : SEG transfer syntax (default deflate)
    jobs : worker processes for the trials of a run (1 = in this process)
    dry_run : parse and check everything, write nothing
    progress : show progress on ``stream`` (default stderr)

    Returns
    -------
    MigrationSummary
        one :class:`JobReport` per folder; ``exit_code`` is 1 when anything failed.

    Raises
    ------
    UserError
        No folder found, or a folder needs migrating and no source image was given /
        found (raised before anything is written).
    """
    t0 = time.perf_counter()
    compression = Compression.parse(compression)
    if volume is not None and volumes_dir is not None:
        raise UserError("give either --volume or --volumes-dir, not both")
    volume = Path(volume) if volume is not None else None
    volumes_dir = Path(volumes_dir) if volumes_dir is not None else None
    if volume is not None and not volume.exists():
        raise UserError("source image not found; check the --volume path", volume)
    if volumes_dir is not None and not volumes_dir.is_dir():
        raise UserError("not a folder; check the --volumes-dir path", volumes_dir)
    job_list = discover(paths)

    # ---- parse everything first; refuse before writing when a source image is missing
    plans: list[_Plan] = []
    missing: list[str] = []
    for job in job_list:
        report = JobReport(job.kind, job.folder, job.name, compression=compression.cli_name)
        plan = _load_legacy(job, report)
        plans.append(plan)
        if report.errors:
            continue
        _plan_items(plan)
        if not dry_run:
            done = _already_migrated(plan)
            if done is not None:
                plan.report = done
                continue
        named = sample_name_from(plan.config) if job.kind == "run" else sample_name_from(plan.data or {})
        if volume is not None:
            plan.volume_path = volume
            plan.sample = named or _volume_stem(volume)
            if named and _volume_stem(volume) != named:
                report.notes.append(f"--volume {volume.name} used for sample {named!r}")
        elif volumes_dir is not None and named:
            plan.sample = named
            plan.volume_path = find_volume(named, volumes_dir)
            if plan.volume_path is None:
                missing.append(f"{job.folder} (sample {named!r}: none of "
                               f"{', '.join(named + s for s in VOLUME_SUFFIXES)} or {named}/ in {volumes_dir})")
        else:
            what = f"sample {named!r}" if named else "no sample name in " + (
                CONFIG_NAME if job.kind == "run" else GOLD_METADATA_NAME)
            missing.append(f"{job.folder} ({what})")
    if missing:
        raise UserError(
            "the source image is not stored with the run; give it with --volume FILE (an image file or a DICOM "
            "folder) or --volumes-dir DIR (holding <sample>.nrrd, .nii.gz, .mha, ... or a <sample>/ DICOM "
            "folder). Missing for: " + "; ".join(missing)
        )

    # ---- migrate
    cache = _VolumeCache()
    executor = ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else None
    try:
        for plan in plans:
            _run_plan(plan, cache, compression, executor, dry_run, progress, stream)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return MigrationSummary([p.report for p in plans], dry_run, time.perf_counter() - t0)


LOCK_NAME = "dicom/.migrate.lock"


class FolderBusyError(UserError):
    """Another migration holds the folder's lock."""


class _FolderLock:
    """Exclusive ``flock`` on ``dicom/.migrate.lock``: one migration per folder at a time.

    The kernel releases it when the process dies (also on kill -9), so a stale lock never
    blocks a re-run. Where ``fcntl`` does not exist (Windows) no lock is taken."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise FolderBusyError(f"another migration is working on this folder ({LOCK_NAME} is locked); "
                            "wait for it to finish and re-run", self.path.parents[1]) from None
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def _run_plan(plan: _Plan, cache: _VolumeCache, compression: Compression, executor: ProcessPoolExecutor | None,
              dry_run: bool, show: bool, stream: TextIO | None) -> None:
    lock = _FolderLock(plan.job.folder)
    try:
        _run_plan_locked(plan, cache, compression, executor, dry_run, show, stream, lock)
    finally:
        lock.release()


def _run_plan_locked(plan: _Plan, cache: _VolumeCache, compression: Compression,
                     executor: ProcessPoolExecutor | None, dry_run: bool, show: bool, stream: TextIO | None,
                     lock: _FolderLock) -> None:
    t0 = time.perf_counter()
    report, job = plan.report, plan.job
    label = f"{'run' if job.kind == 'run' else 'gold'} {job.name}"
    prog = Progress(label, len(plan.items), stream, show)
    if report.status == "already_migrated":
        prog.message("already migrated, nothing changed")
        return
    if report.errors:
        _end_failed(plan, prog, dry_run, t0)
        return
    folder = job.folder
    try:
        if not dry_run:
            _check_writable(folder)
            lock.acquire()
            removed = _clean_stale_temps(folder)
            if removed:
                report.notes.append(f"removed {len(removed)} temporary file(s) left by an interrupted run")
            _keep_legacy_copy(plan)
            prog.message(f"source image {plan.volume_path.name} -> DICOM series")
            report.volume = _write_volume(plan, cache)
        else:
            array, grid = cache.get(plan.volume_path)
            from AdaptiveBrushDicomLib.dicom.synthetic import patient_id_for

            pid = patient_id_for(plan.sample)
            digest = uids.content_digest(array, grid)
            report.volume = {"sample": plan.sample, "source": str(plan.volume_path), "patient_id": pid,
                             "study_instance_uid": uids.study_uid(pid, digest),
                             "series_instance_uid": uids.volume_series_uid(pid, digest),
                             "folder": VOLUME_DIR, "files": grid.shape_kji[0], "grid": grid.describe(), "_grid": grid}
    except FolderBusyError as exc:  # the other process owns the report: leave it alone
        report.errors.append(str(exc))
        report.status = "failed"
        prog.message(f"failed: {exc}")
        report.wall_time_seconds = time.perf_counter() - t0
        return
    except UserError as exc:
        report.errors.append(str(exc))
    except OSError as exc:
        report.errors.append(f"{exc.filename or folder}: {_describe_oserror(exc)}")
    if report.errors:
        _end_failed(plan, prog, dry_run, t0)
        return
    grid = report.volume.pop("_grid")

    tasks = _make_tasks(plan, compression, dry_run, grid)
    records: list[ItemRecord | None] = [None] * len(tasks)
    if executor is None:
        for n, task in enumerate(tasks):
            records[n] = process_item(task)
            prog.step(f"{task.key} {records[n].status}")
    else:
        futures: dict[Future, int] = {executor.submit(process_item, task): n for n, task in enumerate(tasks)}
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            n = futures[fut]
            try:
                records[n] = fut.result()
            except Exception as exc:  # worker died (e.g. out of memory)
                rec = ItemRecord(tasks[n].key, tasks[n].trial_number, FAILED, source=tasks[n].source_rel)
                _fail(rec, "error", f"worker failed: {type(exc).__name__}: {exc}")
                records[n] = rec
            prog.step(f"{tasks[n].key} {records[n].status}")
    report.items = [r for r in records if r is not None]
    failed = any(i.status == FAILED for i in report.items)
    report.status = "planned" if dry_run else ("partial" if failed else "migrated")
    report.wall_time_seconds = time.perf_counter() - t0
    if dry_run:
        report.results_json = "not written (dry run)"
        return
    target = folder / plan.source_name
    payload: bytes | None = None
    try:
        new_data = _new_json(plan)
        if new_data is not None:
            if plan.job.kind == "run":
                validate_results(new_data, target, migrated=True)
            else:
                validate_gold_metadata(new_data, target)
            payload = _json_bytes(new_data)
    except UserError as exc:
        report.errors.append(str(exc))
        report.status = "failed"
    if payload is None:
        report.results_json = "not written"
    elif target.is_file() and target.read_bytes() == payload:
        report.results_json = "unchanged"
    else:
        report.results_json = "written"
    try:
        _write_report_files(plan)
        if payload is not None and report.results_json == "written":
            atomic_write_bytes(target, payload)  # LAST: its dicom block marks the folder as migrated
    except OSError as exc:
        report.errors.append(f"{exc.filename or folder}: {_describe_oserror(exc)}")
        report.status = "failed"
        report.results_json = "not written"


def _check_writable(folder: Path) -> None:
    """Refuse a folder we cannot write into (read-only mount, permissions), or whose
    ``dicom/`` folders are symlinks leading out of it."""
    root = Path(os.path.realpath(folder))
    for rel in ("dicom", VOLUME_DIR, SEG_DIR):
        real = Path(os.path.realpath(folder / rel))
        if root not in real.parents:
            raise UserError(f"{rel} leads outside the folder (symlink to {real}); remove the symlink", folder)
    probe = folder / f".abdicom-write-test.tmp-{os.getpid()}"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"")
        probe.unlink()
    except OSError as exc:
        raise UserError(
            f"folder is not writable ({exc.strerror or exc}); make it writable (chmod u+w) or copy it to a writable "
            "place and migrate the copy", folder) from None


def _keep_legacy_copy(plan: _Plan) -> None:
    """Byte copy of the original results.json / metadata.json, written once."""
    folder = plan.job.folder
    legacy = folder / plan.legacy_name
    current = folder / plan.source_name
    if legacy.exists() or plan.legacy_from_current or not current.is_file():
        return
    atomic_write_bytes(legacy, current.read_bytes())


def _make_tasks(plan: _Plan, compression: Compression, dry_run: bool, grid) -> list[ItemTask]:
    describe, number_of, from_naming = _series_naming()
    if not from_naming and plan.job.kind == "run":
        plan.report.notes.append("series_naming.py not available: SeriesDescription/SeriesNumber from "
                                 "migrate._trial_series_description/_trial_series_number")
    vol = plan.report.volume
    folder = plan.job.folder
    study_uid = vol["study_instance_uid"]
    tasks = []
    known_by_key: dict[str, dict[str, Any]] = {}
    try:
        prev = read_json(folder / REPORT_JSON_NAME)
        if isinstance(prev, dict) and prev.get("format") == REPORT_FORMAT:
            known_by_key = {d.get("key"): d for d in prev.get("items", []) if isinstance(d, dict)}
    except UserError:
        pass
    for item in plan.items:
        common = dict(
            folder=str(folder), key=item["key"], trial_number=item["number"], source_rel=item["source_rel"],
            pruned=item["pruned"], output_rel=item["output_rel"], reference_dir=str(folder / VOLUME_DIR),
            compression=compression.uid, known=known_by_key.get(item["key"]), dry_run=dry_run,
            grid=grid if dry_run else None, pre_error=item["pre_error"],
        )
        if plan.job.kind == "run":
            n = item["number"]
            trial = plan.data["trials"][item["index"]]
            algo = _algorithm_for_trial(trial, plan.config)
            params = trial.get("params") if isinstance(trial.get("params"), dict) else None
            tasks.append(ItemTask(
                series_uid=uids.seg_series_uid(study_uid, plan.job.name, n),
                series_description=describe(n, algo or "unknown"),
                series_number=int(number_of(n)),
                content_label=f"TRIAL_{n:03d}"[:16],
                content_description=_trial_content_description(plan.job.name, n),
                algorithm_type=AlgorithmType.AUTOMATIC.value,
                algorithm_name=algo,
                algorithm_parameters=params,
                **common,
            ))
        else:
            kind, algo, params = _gold_algorithm(plan.data or {})
            try:
                from AdaptiveBrushDicomLib.dicom.naming import gold_series_description, gold_series_number

                gold_desc, gold_number = gold_series_description(plan.job.name), gold_series_number(0)
            except ImportError:
                gold_desc = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"gold_{plan.job.name}")[:64]
                gold_number = GOLD_SERIES_NUMBER
            tasks.append(ItemTask(
                series_uid=uids.seg_series_uid(study_uid, "gold-standard", plan.job.name),
                series_description=gold_desc,
                series_number=gold_number,
                content_label="GOLD_STANDARD",
                content_description=f"gold standard {plan.job.name}"[:64],
                algorithm_type=kind.value,
                algorithm_name=algo,
                algorithm_parameters=params,
                **common,
            ))
    return tasks


def _dicom_block(plan: _Plan) -> dict[str, Any]:
    vol = plan.report.volume
    return {
        "patient_id": vol["patient_id"],
        "study_instance_uid": vol["study_instance_uid"],
        "volume_series_uid": vol["series_instance_uid"],
        "volume_description": (plan.sample or "")[:64],
        "frame_of_reference_uid": vol["frame_of_reference_uid"],
        "volume_path": VOLUME_DIR,
        "volume_files": vol["files"],
        "sample": plan.sample,
        "compression": plan.report.compression,
        "sop_class_uid": SegSopClass.LABELMAP,
        "migrated_by": f"AdaptiveBrushDicom {__version__}",
        "report": REPORT_JSON_NAME,
    }


def _new_json(plan: _Plan) -> dict[str, Any] | None:
    """Legacy content (key order kept) + the dicom block + per-trial dicom fields."""
    data = json.loads(json.dumps(plan.data))  # deep copy
    block = _dicom_block(plan)
    if plan.job.kind == "gold_standard":
        item = plan.report.items[0]
        if item.status == OK:
            block.update(seg_series_uid=item.series_instance_uid, seg_sop_instance_uid=item.sop_instance_uid,
                         seg_path=item.output)
        if item.status != OK:
            # without a verified SEG the gold standard is not migrated: leave metadata.json alone
            plan.report.notes.append(f"{GOLD_METADATA_NAME} left unchanged: the gold segmentation was not migrated")
            return None
        data["dicom"] = block
        return data
    by_index = {}
    for item, rec in zip(plan.items, plan.report.items):
        by_index[item["index"]] = rec
    for index, trial in enumerate(data["trials"]):
        rec = by_index.get(index)
        if rec is None:
            continue
        if rec.status == OK:
            trial["dicom_status"] = STATUS_MIGRATED
            trial["dicom_series_uid"] = rec.series_instance_uid
            trial["dicom_sop_instance_uid"] = rec.sop_instance_uid
            trial["dicom_seg_path"] = rec.output
        elif rec.status == SKIPPED:
            trial["dicom_status"] = STATUS_PRUNED if rec.reason_code == "pruned" else STATUS_NO_SEGMENTATION
        else:
            trial["dicom_status"] = STATUS_FAILED
            trial["dicom_error"] = rec.reason or rec.reason_code or "failed"
    data["dicom"] = block
    return data


def _write_report_files(plan: _Plan) -> None:
    folder = plan.job.folder
    atomic_write_bytes(folder / REPORT_JSON_NAME, _json_bytes(plan.report.to_dict()))
    atomic_write_bytes(folder / REPORT_MD_NAME, plan.report.to_markdown().encode("utf-8"))


def _end_failed(plan, prog, dry_run: bool, t0: float) -> None:
    """Close a folder whose preparation failed: status, one progress line, the report
    (unless dry run) and the wall time."""
    report = plan.report
    report.status = "failed"
    prog.message(f"failed: {report.errors[0]}")
    if not dry_run:
        _write_report_only(plan)
    report.wall_time_seconds = time.perf_counter() - t0


def _write_report_only(plan: _Plan) -> None:
    """Best effort: a failed folder still gets its report when it is writable."""
    plan.report.results_json = "not written"
    plan.report.volume.pop("_grid", None)
    try:
        _write_report_files(plan)
    except OSError:
        plan.report.notes.append("report could not be written into the folder (not writable)")


__all__ = [
    "migrate_paths", "discover", "find_volume", "process_item", "ItemRecord", "JobReport",
    "MigrationSummary", "Progress", "sha256_file", "atomic_write_bytes",
]
