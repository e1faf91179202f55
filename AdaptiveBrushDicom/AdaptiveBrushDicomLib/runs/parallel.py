"""Running a folder's items: in this process or in worker processes, and giving the new
SEGs their final names in batches.

``--jobs auto`` (the CLI default) is one worker per usable CPU, no more workers than
items to write, and no more than the memory available holds (an estimate per worker
from the reference grid's voxel count). A worker is forked from the migration process
where the platform allows it (Linux), after the migration imported the writer and
reader, so a worker starts in milliseconds instead of importing pydicom / numpy again.
Workers are started before any folder lock is taken (they never hold one), exit when
the migration process dies (a kill -9 leaves no orphan working on the folder), and
deflate with one thread each when the workers already fill the CPUs.

Output never depends on the number of workers: each item is written from its own
inputs alone (the UIDs and bytes are functions of the content), the records are put
back in task order, and the batches only decide *when* a verified SEG is renamed.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, Callable

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.runs.progress import Progress
from AdaptiveBrushDicomLib.runs.report import ItemRecord
from AdaptiveBrushDicomLib.runs.status import ItemStatus, ReasonCode
from AdaptiveBrushDicomLib.runs.tasks import ItemTask
from AdaptiveBrushDicomLib.runs.worker import commit_pending, fail, run_item

#: The value of ``--jobs`` that picks the number of workers (see the module docstring).
AUTO = "auto"
#: A batch of verified SEGs is synced and renamed when it holds this many ...
BATCH_ITEMS = 16
#: ... or when its oldest SEG has waited this long (seconds).
BATCH_SECONDS = 2.0
#: Memory a worker needs besides its items' arrays (bytes; interpreter, libraries, headers).
WORKER_BASE_BYTES = 150 << 20
#: Bytes per reference voxel a worker holds while migrating one item (source labelmap,
#: the labelmap on the reference grid, decoded SEG, comparison; 8-bit labels).
WORKER_BYTES_PER_VOXEL = 8


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux ``MemAvailable``), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def parse_jobs(value: "int | str") -> "int | str":
    """``auto`` or a positive number of worker processes.

    Raises
    ------
    UserError
        For anything else (naming the value and the choices).
    """
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        jobs = int(value)
    except (TypeError, ValueError):
        raise UserError(f"--jobs must be a number of worker processes or 'auto', got {value!r}") from None
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1 (or 'auto'), got {jobs}")
    return jobs


def resolve_jobs(jobs: "int | str", items: int, voxels: int) -> int:
    """The number of worker processes for ``items`` items on a grid of ``voxels`` voxels
    (1 = in this process). A number is taken as given, but never more than ``items``."""
    if jobs != AUTO:
        return max(1, min(int(jobs), items))
    n = min(usable_cpus(), items)
    avail = available_memory()
    if avail is not None and n > 1:
        per_worker = WORKER_BASE_BYTES + WORKER_BYTES_PER_VOXEL * max(voxels, 0)
        n = min(n, max(1, int(avail * 0.5) // per_worker))  # keep half for everything else
    return max(1, n)


def _watch_parent(parent: int) -> None:
    """In a worker: exit as soon as the migration process is gone (kill -9 included)."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.2)


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker the moment its parent dies (the watch
    thread below is the portable fallback, checking every 0.2 s)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG = 1, SIGKILL = 9
    except (OSError, AttributeError):
        pass


def _worker_init(parent: int, single_thread_deflate: bool) -> None:
    _die_with_parent()
    if os.getppid() != parent:  # died before the line above
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="abdicom-parent-watch").start()
    if single_thread_deflate and "ABDICOM_DEFLATE_THREADS" not in os.environ:
        from AdaptiveBrushDicomLib.dicom.seg import fast

        fast.DEFLATE_THREADS = 1  # the other workers use the other CPUs


def _noop() -> int:
    return os.getpid()


def start_workers(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` worker processes, started now (before any folder lock is taken).

    Forked where that is the platform's safe default (Linux): the writer and reader are
    imported here first, so every worker has them without importing them again.
    """
    if sys.platform.startswith("linux"):
        import AdaptiveBrushDicomLib.dicom.reference  # noqa: F401  (inherited by the forked workers)
        import AdaptiveBrushDicomLib.dicom.seg.read  # noqa: F401
        import AdaptiveBrushDicomLib.dicom.seg.write  # noqa: F401
        import AdaptiveBrushDicomLib.io.volumes  # noqa: F401

        ctx: Any = multiprocessing.get_context("fork")
    else:
        ctx = None
    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                                   initargs=(os.getpid(), jobs >= usable_cpus()))
    for fut in [executor.submit(_noop) for _ in range(jobs)]:
        fut.result()
    return executor


class PendingSegs:
    """Verified SEGs waiting for their final names; committed in batches
    (:func:`~AdaptiveBrushDicomLib.runs.worker.commit_pending`)."""

    def __init__(self) -> None:
        self.items: list[tuple[ItemRecord, str, str]] = []
        self.since = 0.0

    def add(self, rec: ItemRecord, pending: str | None, folder: str) -> None:
        if pending is None:
            return
        if not self.items:
            self.since = time.monotonic()
        self.items.append((rec, pending, folder))
        if len(self.items) >= BATCH_ITEMS or time.monotonic() - self.since >= BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        batch, self.items = self.items, []
        commit_pending(batch)


def run_tasks(tasks: list[ItemTask], executor: ProcessPoolExecutor | None, prog: Progress) -> list[ItemRecord]:
    """Every task's record, in task order; new SEGs have their final names on return."""
    records: list[ItemRecord | None] = [None] * len(tasks)
    pending = PendingSegs()
    try:
        if executor is None:
            for n, task in enumerate(tasks):
                rec, tmp = run_item(task)
                records[n] = rec
                pending.add(rec, tmp, task.folder)
                prog.step(f"{task.key} {ItemStatus(rec.status).value}")
        else:
            _run_in_workers(tasks, executor, records, pending, prog)
    finally:
        pending.flush()
    return [r for r in records if r is not None]


def _run_in_workers(tasks: list[ItemTask], executor: ProcessPoolExecutor, records: list[ItemRecord | None],
                    pending: PendingSegs, prog: Progress) -> None:
    submit: Callable[..., Future[Any]] = executor.submit
    futures: dict[Future[Any], int] = {submit(run_item, task): n for n, task in enumerate(tasks)}
    for fut in as_completed(futures):
        n = futures[fut]
        task = tasks[n]
        tmp: str | None = None
        try:
            rec, tmp = fut.result()
        except Exception as exc:  # worker died (e.g. out of memory)
            rec = ItemRecord(task.key, task.trial_number, ItemStatus.FAILED, source=task.source_rel)
            fail(rec, ReasonCode.ERROR, f"worker failed: {type(exc).__name__}: {exc}")
        records[n] = rec
        pending.add(rec, tmp, task.folder)
        prog.step(f"{task.key} {ItemStatus(rec.status).value}")


__all__ = ["AUTO", "parse_jobs", "resolve_jobs", "start_workers", "run_tasks", "usable_cpus", "available_memory",
           "PendingSegs"]
