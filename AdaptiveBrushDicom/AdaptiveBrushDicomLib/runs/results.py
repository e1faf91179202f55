"""Reading optimization runs and gold standards: the model the Slicer module, the demo,
``abdicom runs`` and ``abdicom compare`` use (:func:`load_run`, :func:`load_gold_standard`,
:func:`find_gold_for_run`).

This module only reads; ``migrate`` writes. Folder layout and names: :mod:`.layout`;
reading and validating results.json / metadata.json / config.yaml: :mod:`.schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from AdaptiveBrushDicomLib.errors import InputFileError, UserError
from AdaptiveBrushDicomLib.runs.layout import (
    CONFIG_NAME, GOLD_METADATA_NAME, GOLD_SOURCE_NAME, GOLD_STANDARDS_DIR_NAME, RESULTS_NAME, VOLUME_DIR,
    is_gold_dir, safe_relative_path,
)
from AdaptiveBrushDicomLib.runs.schema import read_config, read_json, validate_gold_metadata, validate_results
from AdaptiveBrushDicomLib.runs.status import TrialStatus, VolumeSource


# ----------------------------------------------------------------------------- config
def sample_name_from(data: dict[str, Any]) -> str | None:
    """Name of the source image in a config.yaml / metadata.json mapping.

    Looks at ``sample_data``, ``volume.name`` (or ``volume`` as a string), ``sample``,
    and ``recipes[*].sample_data`` when all recipes name the same sample.
    """
    if not isinstance(data, dict):
        return None
    for key in ("sample_data", "sample", "sample_name"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    volume = data.get("volume")
    if isinstance(volume, dict) and isinstance(volume.get("name"), str) and volume["name"].strip():
        return str(volume["name"]).strip()
    if isinstance(volume, str) and volume.strip():
        return volume.strip()
    recipes = data.get("recipes")
    if isinstance(recipes, list):
        names = {r.get("sample_data") for r in recipes if isinstance(r, dict) and isinstance(r.get("sample_data"), str)}
        if len(names) == 1:
            return names.pop()
    return None


def algorithm_from_config(config: dict[str, Any]) -> str | None:
    """Algorithm named by a config (``algorithm`` or a single-entry ``algorithms`` list)."""
    value = config.get("algorithm")
    if isinstance(value, str) and value:
        return value
    algos = config.get("algorithms")
    if isinstance(algos, list) and len(algos) == 1 and isinstance(algos[0], str):
        return algos[0]
    params = config.get("parameters")
    if isinstance(params, dict):
        algo = params.get("algorithm")
        if isinstance(algo, str):
            return algo
        if isinstance(algo, dict) and isinstance(algo.get("choices"), list) and len(algo["choices"]) == 1:
            return str(algo["choices"][0])
    return None


# ----------------------------------------------------------------------------- model
@dataclass
class DicomInfo:
    """The ``dicom`` block of results.json / metadata.json."""

    patient_id: str
    study_instance_uid: str
    volume_series_uid: str
    volume_description: str
    frame_of_reference_uid: str | None = None
    volume_path: str = VOLUME_DIR
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DicomInfo":
        known = {"patient_id", "study_instance_uid", "volume_series_uid", "volume_description",
                 "frame_of_reference_uid", "volume_path"}
        return cls(
            patient_id=str(d["patient_id"]),
            study_instance_uid=str(d["study_instance_uid"]),
            volume_series_uid=str(d["volume_series_uid"]),
            volume_description=str(d.get("volume_description", "")),
            frame_of_reference_uid=d.get("frame_of_reference_uid"),
            volume_path=str(d.get("volume_path", VOLUME_DIR)),
            extra={k: v for k, v in d.items() if k not in known},
        )


@dataclass
class Trial:
    """One optimization trial of a run.

    Attributes
    ----------
    number : trial_number
    params : algorithm parameters suggested by the optimizer
    value : objective value (e.g. Dice), None for pruned/failed trials
    pruned : True if the optimizer stopped the trial early
    algorithm : ``params["algorithm"]``, else the run's configured algorithm
    status : ``dicom_status`` (migrated, pruned, no_segmentation, failed) or None if not migrated
    seg_path : absolute path of the trial's DICOM SEG, or None
    series_instance_uid, sop_instance_uid : of the SEG
    raw : the trial object exactly as in results.json
    """

    number: int
    params: dict[str, Any]
    value: float | None
    pruned: bool
    algorithm: str | None
    status: str | None = None
    seg_path: Path | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    duration_ms: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def has_seg(self) -> bool:
        return self.seg_path is not None


@dataclass
class GoldStandard:
    """A gold standard folder (``gold.seg.nrrd`` + ``metadata.json``, migrated or not)."""

    name: str
    folder: Path
    metadata: dict[str, Any]
    source_path: Path
    seg_path: Path | None = None
    dicom: DicomInfo | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None

    @property
    def sample(self) -> str | None:
        return sample_name_from(self.metadata)

    @property
    def volume_dir(self) -> Path | None:
        return self.folder / self.dicom.volume_path if self.dicom else None


@dataclass
class RunResults:
    """A loaded optimization run.

    Attributes
    ----------
    folder : run folder
    name : run name recorded by the migration (``dicom.name``), else the folder name
    data : results.json as parsed (all legacy fields)
    config : config.yaml as parsed ({} if absent)
    dicom : the ``dicom`` block, None for a legacy (unmigrated) run
    trials : in results.json order
    """

    folder: Path
    name: str
    data: dict[str, Any]
    config: dict[str, Any]
    dicom: DicomInfo | None
    trials: list[Trial]

    @property
    def migrated(self) -> bool:
        return self.dicom is not None

    @property
    def sample(self) -> str | None:
        return sample_name_from(self.config) or (self.dicom.extra.get("sample") if self.dicom else None)

    @property
    def volume_dir(self) -> Path | None:
        """Folder of the DICOM series of the source image (None if not migrated)."""
        return self.folder / self.dicom.volume_path if self.dicom else None

    @property
    def volume_source(self) -> VolumeSource | None:
        """``original`` (the source DICOM files) or ``synthetic``; None if not migrated."""
        if self.dicom is None:
            return None
        return VolumeSource(self.dicom.extra.get("volume_source", VolumeSource.SYNTHETIC.value))

    @property
    def direction(self) -> str:
        d = str(self.data.get("direction") or "maximize").lower()
        return "minimize" if d.startswith("min") else "maximize"

    def trial(self, number: int) -> Trial:
        """The trial with ``trial_number == number``.

        Raises
        ------
        KeyError
            The run has no such trial.
        """
        for t in self.trials:
            if t.number == number:
                return t
        raise KeyError(f"run {self.name} has no trial {number}")

    @property
    def migrated_trials(self) -> list[Trial]:
        return [t for t in self.trials if t.seg_path is not None]

    @property
    def best_trial(self) -> Trial | None:
        """``best_trial`` of results.json (object or number); else the best non-pruned value."""
        best = self.data.get("best_trial")
        number = None
        if isinstance(best, dict) and isinstance(best.get("trial_number"), int):
            number = best["trial_number"]
        elif isinstance(best, int) and not isinstance(best, bool):
            number = best
        if number is not None:
            try:
                return self.trial(number)
            except KeyError:
                pass
        scored = [t for t in self.trials if t.value is not None and not t.pruned]
        if not scored:
            return None
        pick = min if self.direction == "minimize" else max
        return pick(scored, key=lambda t: float(t.value or 0.0))  # value is not None here

    def ranked(self) -> list[Trial]:
        """Scored trials, best first."""
        scored = [t for t in self.trials if t.value is not None and not t.pruned]
        return sorted(scored, key=lambda t: float(t.value or 0.0), reverse=self.direction == "maximize")

    def gold_standard(self, search: Sequence[str | Path] | None = None) -> "GoldStandard | None":
        """The gold standard of this run's source image (see :func:`find_gold_for_run`)."""
        return find_gold_for_run(self, search)


def _float_or_none(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def parse_trials(data: dict[str, Any], folder: Path, config: dict[str, Any], source: Path) -> list[Trial]:
    """Trials of a results.json mapping (validated beforehand), with SEG paths checked."""
    default_algo = algorithm_from_config(config)
    out = []
    for index, t in enumerate(data.get("trials", [])):
        params = t.get("params") or {}
        algo = params.get("algorithm") if isinstance(params.get("algorithm"), str) else default_algo
        seg = None
        rel = t.get("dicom_seg_path")
        if rel is not None and t.get("dicom_status", TrialStatus.MIGRATED) == TrialStatus.MIGRATED:
            seg = safe_relative_path(folder, rel, field_name=f"trials/{index}/dicom_seg_path", source=source)
        out.append(Trial(
            number=int(t["trial_number"]),
            params=dict(params),
            value=_float_or_none(t.get("value")),
            pruned=bool(t.get("pruned") or False),
            algorithm=algo,
            status=t.get("dicom_status"),
            seg_path=seg,
            series_instance_uid=t.get("dicom_series_uid"),
            sop_instance_uid=t.get("dicom_sop_instance_uid"),
            duration_ms=_float_or_none(t.get("duration_ms")),
            raw=t,
        ))
    return out


def load_run(folder: str | Path, *, require_migrated: bool = True, check_files: bool = True) -> RunResults:
    """Load an optimization run.

    Parameters
    ----------
    folder : the run folder (holding results.json)
    require_migrated : refuse a run that has not been migrated to DICOM yet
    check_files : verify that every migrated trial's SEG file exists

    Raises
    ------
    InputFileError
        results.json missing, not JSON, not matching the schema, a ``dicom_seg_path``
        leaving the run folder, or (``check_files``) a SEG file missing.
    """
    folder = Path(folder)
    path = folder / RESULTS_NAME
    if not path.is_file():
        raise InputFileError(f"no {RESULTS_NAME}: not an optimization run folder", folder)
    data = read_json(path)
    if require_migrated and isinstance(data, dict) and "dicom" not in data:
        raise InputFileError(
            "run has not been migrated to DICOM yet; run `abdicom migrate <run> --volumes-dir DIR` first", path
        )
    validate_results(data, path, migrated=require_migrated or (isinstance(data, dict) and "dicom" in data))
    config = read_config(folder / CONFIG_NAME)
    dicom = DicomInfo.from_dict(data["dicom"]) if "dicom" in data else None
    if dicom is not None:
        safe_relative_path(folder, dicom.volume_path, field_name="dicom/volume_path", source=path)
    trials = parse_trials(data, folder, config, path)
    if check_files:
        for t in trials:
            if t.seg_path is not None and not t.seg_path.is_file():
                raise InputFileError(
                    f"trial {t.number}: SEG {t.seg_path.relative_to(folder)} listed in results.json is missing; "
                    "re-run `abdicom migrate` on the run",
                    path,
                )
    name = str((dicom.extra.get("name") if dicom is not None else None) or folder.name)
    return RunResults(folder=folder, name=name, data=data, config=config, dicom=dicom, trials=trials)


def load_gold_standard(folder: str | Path, *, require_migrated: bool = False) -> GoldStandard:
    """Load a gold standard folder (``gold.seg.nrrd`` + ``metadata.json``).

    Raises
    ------
    InputFileError
        No ``gold.seg.nrrd``, a ``metadata.json`` that is not a JSON object or breaks the
        schema, a ``seg_path`` leaving the folder, or (``require_migrated``) not migrated.
    """
    folder = Path(folder)
    source = folder / GOLD_SOURCE_NAME
    if not source.is_file():
        raise InputFileError(f"no {GOLD_SOURCE_NAME}: not a gold standard folder", folder)
    meta_path = folder / GOLD_METADATA_NAME
    metadata = read_json(meta_path) if meta_path.is_file() else {}
    if not isinstance(metadata, dict):
        raise InputFileError("expected a JSON object at the top level", meta_path)
    dicom = None
    seg = series = sop = None
    if "dicom" in metadata:
        validate_gold_metadata(metadata, meta_path)
        dicom = DicomInfo.from_dict(metadata["dicom"])
        seg = safe_relative_path(folder, metadata["dicom"]["seg_path"], field_name="dicom/seg_path", source=meta_path)
        series = metadata["dicom"]["seg_series_uid"]
        sop = metadata["dicom"]["seg_sop_instance_uid"]
    elif require_migrated:
        raise InputFileError("gold standard has not been migrated to DICOM yet; run `abdicom migrate` on it", folder)
    return GoldStandard(name=folder.name, folder=folder, metadata=metadata, source_path=source, seg_path=seg,
                        dicom=dicom, series_instance_uid=series, sop_instance_uid=sop)


def iter_gold_standards(roots: Iterable[str | Path]) -> Iterable[GoldStandard]:
    """Gold standards in ``roots`` (each a gold folder or a folder of gold folders)."""
    for root in roots:
        root = Path(root)
        if is_gold_dir(root):
            candidates = [root]
        elif root.is_dir():
            candidates = sorted(p for p in root.iterdir() if is_gold_dir(p))
        else:
            continue
        for c in candidates:
            try:
                yield load_gold_standard(c)
            except UserError:
                continue


def find_gold_for_run(run: RunResults, search: Sequence[str | Path] | None = None) -> GoldStandard | None:
    """The gold standard made on the same source image as ``run``.

    Matching: same StudyInstanceUID in both ``dicom`` blocks (one image -> one study,
    see docs/migration.md), else the same sample name. ``search`` defaults to
    ``GoldStandards/`` folders next to the run, its parent and grandparent.
    """
    if search is None:
        search = []
        for up in (run.folder.parent, run.folder.parent.parent, run.folder.parent.parent.parent):
            cand = up / GOLD_STANDARDS_DIR_NAME
            if cand.is_dir():
                search.append(cand)
    golds = list(iter_gold_standards(search))
    if run.dicom is not None:
        for g in golds:
            if g.dicom is not None and g.dicom.study_instance_uid == run.dicom.study_instance_uid:
                return g
    sample = run.sample
    if sample:
        for g in golds:
            if g.sample == sample:
                return g
    return None


__all__ = [
    "DicomInfo", "Trial", "GoldStandard", "RunResults", "sample_name_from", "algorithm_from_config", "parse_trials",
    "load_run", "load_gold_standard", "iter_gold_standards", "find_gold_for_run",
]
