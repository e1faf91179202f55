"""One picklable task per item: sources, UIDs, names and segment metadata of a SEG.

UIDs (docs/migration.md): a trial's series UID is derived from the StudyInstanceUID (the
patient and image content, or the original study), the run key (run name + first
original results.json, :mod:`~AdaptiveBrushDicomLib.runs.plan`) and the trial number;
its SOP Instance UID from the series UID and the segmentation content (voxels on the
reference grid + segment metadata, computed by the worker). No path enters a UID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from AdaptiveBrushDicomLib.core.segment import AlgorithmType
from AdaptiveBrushDicomLib.dicom import uids
from AdaptiveBrushDicomLib.dicom.naming import (
    gold_series_description, gold_series_number, trial_series_description, trial_series_number,
)
from AdaptiveBrushDicomLib.runs.plan import Plan, PlanItem
from AdaptiveBrushDicomLib.runs.layout import REPORT_JSON_NAME, VOLUME_DIR
from AdaptiveBrushDicomLib.runs.results import algorithm_from_config
from AdaptiveBrushDicomLib.runs.schema import read_json
from AdaptiveBrushDicomLib.runs.report import REPORT_FORMAT
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.runs.status import ReasonCode


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
    resample: str = "none"
    value: Any = None
    known: dict[str, Any] | None = None
    dry_run: bool = False
    grid: Any = None  # Grid of the source image (dry run only)
    pre_error: tuple[ReasonCode, str] | None = None
    notes: tuple[str, ...] = ()


def trial_content_description(run_name: str, trial_number: int) -> str:
    """ContentDescription ``<run> trial <n>`` (LO, 64): the run part is shortened, never the
    suffix, so ``database.run_name_from_content`` can always parse it."""
    suffix = f" trial {int(trial_number)}"
    return run_name[: 64 - len(suffix)].rstrip() + suffix


def algorithm_for_trial(trial: dict[str, Any], config: dict[str, Any]) -> str | None:
    """``params["algorithm"]``, else the algorithm the run's config names."""
    params = trial.get("params") or {}
    algo = params.get("algorithm") if isinstance(params, dict) else None
    return algo if isinstance(algo, str) and algo else algorithm_from_config(config)


def gold_algorithm(meta: dict[str, Any]) -> tuple[AlgorithmType, str, dict[str, Any] | None]:
    """Algorithm type, name and parameters of a gold standard from its metadata.json."""
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


def _known_records(plan: Plan) -> dict[str, dict[str, Any]]:
    try:
        prev = read_json(plan.job.folder / REPORT_JSON_NAME)
    except UserError:
        return {}
    if not isinstance(prev, dict) or prev.get("format") != REPORT_FORMAT:
        return {}
    return {str(d.get("key")): d for d in prev.get("items", []) if isinstance(d, dict)}


def make_tasks(plan: Plan, compression_uid: str, resample: str, dry_run: bool, grid: Any) -> list[ItemTask]:
    """The tasks of a folder whose volume series is described in ``plan.report.volume``."""
    known = _known_records(plan)
    study_uid = plan.report.volume["study_instance_uid"]
    tasks = []
    for item in plan.items:
        common = dict(
            folder=str(plan.job.folder), key=item.key, trial_number=item.number, source_rel=item.source_rel,
            pruned=item.pruned, output_rel=item.output_rel, reference_dir=str(plan.job.folder / VOLUME_DIR),
            compression=compression_uid, resample=resample, known=known.get(item.key), dry_run=dry_run,
            grid=grid if dry_run else None, pre_error=item.pre_error, notes=tuple(item.notes),
        )
        tasks.append(_trial_task(plan, item, study_uid, common) if plan.is_run
                     else _gold_task(plan, study_uid, common))
    return tasks


def _trial_task(plan: Plan, item: PlanItem, study_uid: str, common: dict[str, Any]) -> ItemTask:
    n = int(item.number or 0)
    trial = (plan.data or {})["trials"][item.index or 0]
    algo = algorithm_for_trial(trial, plan.config)
    params = trial.get("params") if isinstance(trial.get("params"), dict) else None
    return ItemTask(
        series_uid=uids.seg_series_uid(study_uid, "trial", plan.run_key, n),
        series_description=trial_series_description(n, algo or "unknown", plan.name),
        series_number=trial_series_number(n),
        content_label=f"TRIAL_{n:03d}"[:16],
        content_description=trial_content_description(plan.name, n),
        algorithm_type=AlgorithmType.AUTOMATIC.value,
        algorithm_name=algo,
        algorithm_parameters=params,
        value=trial.get("value"),
        **common,
    )


def _gold_task(plan: Plan, study_uid: str, common: dict[str, Any]) -> ItemTask:
    kind, algo, params = gold_algorithm(plan.data or {})
    return ItemTask(
        series_uid=uids.seg_series_uid(study_uid, "gold-standard", plan.name, plan.run_key),
        series_description=gold_series_description(plan.name),
        series_number=gold_series_number(0),
        content_label="GOLD_STANDARD",
        content_description=f"gold standard {plan.name}"[:64],
        algorithm_type=kind.value,
        algorithm_name=algo,
        algorithm_parameters=params,
        **common,
    )


__all__ = ["ItemTask", "make_tasks", "trial_content_description", "algorithm_for_trial", "gold_algorithm"]
