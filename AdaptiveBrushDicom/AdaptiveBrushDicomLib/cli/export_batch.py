"""Batch export: many segmentations against one reference series, read once.

``abdicom export SEG... --reference DIR --out-dir DIR [--jobs N]`` (:mod:`.export`) and
Python callers (benchmarks) use :func:`export_batch`: output ``<out_dir>/<stem>.dcm`` per
input, SeriesDescription defaulting to the stem, SeriesNumber increasing; ``jobs`` worker
processes each receive the reference series once. Every input is independent: one that
cannot be exported is reported in :class:`BatchReport` and the others are still written.
What can be checked before writing (clashing stems, existing outputs) is checked first.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from AdaptiveBrushDicomLib.cli.export import DEFAULT_SERIES_NUMBER, ExportOptions, export_one
from AdaptiveBrushDicomLib.errors import OutputExistsError, UserError

if TYPE_CHECKING:  # pragma: no cover
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.write import WriteResult

#: File name endings removed to get an input's stem (longest first).
_SUFFIXES = (".seg.nrrd", ".nii.gz", ".nrrd", ".nii", ".mha", ".mhd", ".nhdr", ".dcm", ".tif", ".tiff", ".png")


@dataclass
class BatchReport:
    """What :func:`export_batch` did.

    Attributes
    ----------
    results : one :class:`~.seg.write.WriteResult` per exported input, in input order.
    series_numbers : the SeriesNumber given to each of ``results``.
    failed : (input path, one-line reason) of inputs that were not exported.
    seconds : wall time, including reading the reference series once.
    reference_seconds : time spent reading the reference series.
    """

    results: list["WriteResult"] = field(default_factory=list)
    series_numbers: list[int] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    reference_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def input_stem(path: str | Path) -> str:
    """``trial_007.seg.nrrd`` -> ``trial_007``; ``case.nii.gz`` -> ``case``."""
    name = Path(path).name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or name


def plan_batch(sources: Sequence[str | Path], out_dir: str | Path, opts: ExportOptions) -> list[tuple[Path, Path]]:
    """(input, output) pairs of a batch; checks everything that can be checked before writing.

    Raises
    ------
    UserError
        No inputs, an input missing, two inputs with the same stem, or ``out_dir`` is a file.
    OutputExistsError
        An output exists and ``force`` is not given.
    """
    if not sources:
        raise UserError("no segmentation given")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError("--out-dir must be a folder, this is a file", out_dir)
    pairs: list[tuple[Path, Path]] = []
    by_stem: dict[str, Path] = {}
    for src in (Path(s) for s in sources):
        if not src.is_file():
            raise UserError("no such segmentation file; check the path", src)
        stem = input_stem(src)
        if stem in by_stem:
            raise UserError(f"same output name {stem}.dcm as {by_stem[stem]}; rename one of them "
                            "or export them into different --out-dir folders", src)
        by_stem[stem] = src
        target = out_dir / f"{stem}.dcm"
        if target.exists() and not opts.force:
            raise OutputExistsError("output exists; choose another --out-dir or pass --force", target)
        pairs.append((src, target))
    return pairs


_WORKER_REFERENCE: "ReferenceSeries | None" = None


def _init_worker(reference: "ReferenceSeries") -> None:
    global _WORKER_REFERENCE
    _WORKER_REFERENCE = reference


def _export_task(task: tuple[int, str, str, ExportOptions, str | None, int]) -> tuple[int, Any, list[str]]:
    """Worker: (index, WriteResult or error text, warnings)."""
    index, src, out, opts, description, number = task
    assert _WORKER_REFERENCE is not None
    warnings: list[str] = []
    try:
        res = export_one(src, _WORKER_REFERENCE, out, opts, series_description=description,
                         series_number=number, warn=warnings.append)
    except UserError as exc:
        return index, str(exc), warnings
    return index, res, warnings


#: Exports in flight at once in one process (``jobs == 1``): while one trial's frames are
#: deflated (zlib releases the GIL), the next one is read, checked and hashed. ``None``
#: (ABDICOM_BATCH_OVERLAP unset or ``auto``): 2 when a CPU is idle (:func:`_overlap_width`),
#: else 1; a number (ABDICOM_BATCH_OVERLAP=1 turns the overlap off) is used as given.
_OVERLAP_ENV = os.environ.get("ABDICOM_BATCH_OVERLAP", "auto").strip().lower()
BATCH_OVERLAP: int | None = None if _OVERLAP_ENV in ("", "auto") else max(1, int(_OVERLAP_ENV))


def _overlap_width(cpus: int) -> int:
    """:data:`BATCH_OVERLAP`, or for ``auto``: 2 when the 1-minute load average leaves at
    least half a CPU idle besides this process, else 1. Two exports in flight turn an idle
    CPU into wall time saved (-15-20 % on 20 W1 trials), but on CPUs that are already busy
    they only add switching (+6 % CPU, measured at load 4.5 on 2 CPUs)."""
    if BATCH_OVERLAP is not None:
        return BATCH_OVERLAP
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform
        return 1
    return 2 if cpus >= 2 and load <= cpus - 0.5 else 1


def _usable_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run_here(tasks: list[Any], collect: Callable[[int, Any, list[str]], None]) -> None:
    """Run the tasks in this process, in input order, outcomes collected in input order.

    The first task runs alone (it builds the per-series template and reads what the
    reference series reads lazily); the rest with up to :func:`_overlap_width` in flight in
    threads, so a trial's deflate (2/3 of its CPU with the standard zlib) overlaps the next
    trial's reading and hashing. The exports in flight share the CPUs, so each deflates in
    ``DEFLATE_THREADS // in-flight`` threads meanwhile (the same wall time on an idle
    machine, less CPU lost to switching on a busy one; restored afterwards). On one usable
    CPU, or with one task left, nothing overlaps.
    """
    collect(*_export_task(tasks[0]))
    rest = tasks[1:]
    cpus = _usable_cpus()
    width = min(_overlap_width(cpus), len(rest), cpus)
    if width <= 1:
        for task in rest:
            collect(*_export_task(task))
        return
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    from AdaptiveBrushDicomLib.dicom.seg import fast

    saved = fast.DEFLATE_THREADS
    fast.DEFLATE_THREADS = max(1, saved // width)
    try:
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="abdicom-export") as pool:
            pending: deque[Future[tuple[int, Any, list[str]]]] = deque()
            for task in rest:
                if len(pending) == width:
                    collect(*pending.popleft().result())
                pending.append(pool.submit(_export_task, task))
            while pending:
                collect(*pending.popleft().result())
    finally:
        fast.DEFLATE_THREADS = saved


def _run_tasks(tasks: list[Any], reference: "ReferenceSeries", jobs: int,
               collect: Callable[[int, Any, list[str]], None]) -> None:
    """Run :func:`_export_task` for every task, here (``jobs == 1``, see :func:`_run_here`)
    or in worker processes that each receive the reference series once; ``collect`` gets
    each outcome."""
    if jobs == 1 or len(tasks) == 1:
        _init_worker(reference)
        try:
            _run_here(tasks, collect)
        finally:
            _init_worker(None)  # type: ignore[arg-type]
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), initializer=_init_worker,
                             initargs=(reference,)) as pool:
        for fut in as_completed([pool.submit(_export_task, t) for t in tasks]):
            collect(*fut.result())


def export_batch(
    sources: Sequence[str | Path],
    reference: "str | Path | ReferenceSeries",
    out_dir: str | Path,
    opts: ExportOptions | None = None,
    *,
    jobs: int = 1,
    progress: Callable[[int, int, Path, "WriteResult | str"], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> BatchReport:
    """Export many segmentations against one reference series.

    Parameters
    ----------
    sources : segmentation files; output ``<out_dir>/<stem>.dcm`` each.
    reference : folder of the image series (read once) or a :class:`ReferenceSeries`.
    out_dir : folder for the SEGs (created).
    opts : describing options; SeriesDescription defaults to each input's stem and
        SeriesNumber increases by one per input from ``opts.series_number`` (default 100).
    jobs : worker processes (1 = in this process).
    progress : called after each input with (done, total, input, result or error text).
    warn : receives the writers' warnings, prefixed with the input name.

    Returns
    -------
    BatchReport

    Raises
    ------
    UserError
        See :func:`plan_batch`; the reference series cannot be read.
    """
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

    t0 = time.perf_counter()
    opts = opts or ExportOptions()
    if jobs < 1:
        raise UserError("--jobs must be at least 1")
    pairs = plan_batch(sources, out_dir, opts)
    if not isinstance(reference, ReferenceSeries):
        reference = ReferenceSeries.from_folder(reference)
    report = BatchReport(reference_seconds=time.perf_counter() - t0)
    out = Path(out_dir)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder: {exc.strerror or exc}", out) from None
    first = opts.series_number or DEFAULT_SERIES_NUMBER
    tasks = [(i, str(src), str(dst), opts, opts.series_description or input_stem(src), first + i)
             for i, (src, dst) in enumerate(pairs)]
    outcomes: dict[int, Any] = {}

    def collect(index: int, outcome: Any, warnings: list[str]) -> None:
        outcomes[index] = outcome
        for w in warnings:
            if warn is not None:
                warn(f"{pairs[index][0].name}: {w}")
        if progress is not None:
            progress(len(outcomes), len(tasks), pairs[index][0], outcome)

    _run_tasks(tasks, reference, jobs, collect)
    for i, (src, _dst) in enumerate(pairs):
        if isinstance(outcomes[i], str):
            report.failed.append((str(src), outcomes[i]))
        else:
            report.results.append(outcomes[i])
            report.series_numbers.append(tasks[i][5])
    if created and not report.results:
        try:
            out.rmdir()  # nothing written: leave no empty folder behind
        except OSError:
            pass
    report.seconds = time.perf_counter() - t0
    return report
