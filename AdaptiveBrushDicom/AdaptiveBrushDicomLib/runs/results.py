"""Optimization runs and gold standards on disk: layout, ``results.json`` schema, loading.

Layout of a migrated run (see ``docs/migration.md``)::

    <run>/
      results.json              legacy fields + "dicom" block + per-trial dicom_* fields
      results.legacy.json       byte copy of the original results.json (written once)
      config.yaml               run configuration (names the sample volume)
      segmentations/trial_000.seg.nrrd ...   originals, never modified
      dicom/volume/0001.dcm ... the source DICOM files (renamed, slice order) or a synthetic series
      dicom/segmentations/trial_000.dcm ...  LABELMAP SEG per trial
      migration_report.json, migration_report.md

    GoldStandards/<name>/
      gold.seg.nrrd, metadata.json (+ "dicom" block), metadata.legacy.json
      dicom/volume/..., dicom/gold.dcm

This module only reads; ``migrate`` writes. The Slicer module and the demo use
:func:`load_run` / :func:`load_gold_standard` / :func:`find_gold_for_run`.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

from AdaptiveBrushDicomLib.errors import InputFileError, UserError
from AdaptiveBrushDicomLib.runs.status import TrialStatus, VolumeSource

# ----------------------------------------------------------------------------- layout
RESULTS_NAME = "results.json"
LEGACY_RESULTS_NAME = "results.legacy.json"
CONFIG_NAME = "config.yaml"
LEGACY_SEG_DIR = "segmentations"
DICOM_DIR = "dicom"
VOLUME_DIR = "dicom/volume"
SEG_DIR = "dicom/segmentations"
GOLD_SOURCE_NAME = "gold.seg.nrrd"
GOLD_METADATA_NAME = "metadata.json"
GOLD_LEGACY_METADATA_NAME = "metadata.legacy.json"
GOLD_SEG_PATH = "dicom/gold.dcm"
REPORT_JSON_NAME = "migration_report.json"
REPORT_MD_NAME = "migration_report.md"
GOLD_STANDARDS_DIR_NAME = "GoldStandards"

#: Keys migration adds to each trial object of results.json.
TRIAL_DICOM_KEYS = ("dicom_status", "dicom_series_uid", "dicom_sop_instance_uid", "dicom_seg_path", "dicom_error")

#: Trial statuses written into ``dicom_status`` (one vocabulary: runs/status.py).
STATUS_MIGRATED = TrialStatus.MIGRATED
STATUS_PRUNED = TrialStatus.PRUNED
STATUS_NO_SEGMENTATION = TrialStatus.NO_SEGMENTATION
STATUS_FAILED = TrialStatus.FAILED
STATUS_CHANGED = TrialStatus.CHANGED


def trial_seg_name(trial_number: int) -> str:
    """File name of a trial's SEG: ``trial_042.dcm`` (at least three digits)."""
    return f"trial_{int(trial_number):03d}.dcm"


def legacy_trial_candidates(trial_number: int) -> list[str]:
    """Conventional legacy locations of a trial's ``.seg.nrrd``, relative to the run."""
    n = int(trial_number)
    names = [f"trial_{n:03d}.seg.nrrd", f"trial_{n}.seg.nrrd"]
    return [f"{LEGACY_SEG_DIR}/{name}" for name in dict.fromkeys(names)]


# ----------------------------------------------------------------------------- schema
@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The JSON Schema of a migrated ``results.json`` (``resources/results.schema.json``)."""
    path = Path(__file__).with_name("resources") / "results.schema.json"
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _legacy_schema() -> dict[str, Any]:
    """The same schema without the migration-only requirement of a ``dicom`` block."""
    schema = copy.deepcopy(load_schema())
    schema["required"] = [r for r in schema.get("required", []) if r != "dicom"]
    return schema


def _gold_schema() -> dict[str, Any]:
    """Schema of a migrated gold standard's ``metadata.json`` (only the ``dicom`` block is ours)."""
    base = load_schema()
    return {
        "$schema": base["$schema"],
        "type": "object",
        "required": ["dicom"],
        "properties": {
            "dicom": {
                "allOf": [
                    {"$ref": "#/$defs/dicom"},
                    {
                        "type": "object",
                        "required": ["seg_series_uid", "seg_sop_instance_uid", "seg_path"],
                        "properties": {
                            "seg_series_uid": {"$ref": "#/$defs/uid"},
                            "seg_sop_instance_uid": {"$ref": "#/$defs/uid"},
                            "seg_path": {"$ref": "#/$defs/relative_path"},
                        },
                    },
                ]
            }
        },
        "$defs": base["$defs"],
    }


def _validate(data: Any, schema: dict[str, Any], path: Path | str, what: str) -> None:
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    lines = []
    for err in errors[:5]:
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        lines.append(f"{where}: {err.message}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    raise InputFileError(f"{what} does not match the schema: {'; '.join(lines)}{more}; fix these fields", path)


def validate_results(data: Any, path: Path | str = RESULTS_NAME, *, migrated: bool = True) -> None:
    """Check ``data`` against ``results.schema.json``.

    Parameters
    ----------
    data : parsed results.json
    path : file name used in the error message
    migrated : require the ``dicom`` block (False for a legacy results.json)

    Raises
    ------
    InputFileError
        Naming the file and up to five offending fields (JSON path) and what is wrong.
    """
    _validate(data, load_schema() if migrated else _legacy_schema(), path, "results.json")


def validate_gold_metadata(data: Any, path: Path | str = GOLD_METADATA_NAME) -> None:
    """Check a migrated gold standard's ``metadata.json`` (its ``dicom`` block)."""
    _validate(data, _gold_schema(), path, "metadata.json")


# ----------------------------------------------------------------------------- files
def read_json(path: str | Path, *, root: str | Path | None = None) -> Any:
    """Parse a JSON file with the limits of :mod:`~.io.limits` (regular file, size cap,
    depth and number limits); :class:`InputFileError` naming the file and line if it is not JSON.

    ``root``: the folder the user gave (default: the file's own folder); a symlink may not
    lead out of it.
    """
    from AdaptiveBrushDicomLib.io import limits

    path = Path(path)
    text = limits.read_text(path, limits.FileKind.JSON, root=root if root is not None else path.parent)
    try:
        return limits.loads_json(text, path)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); repair the file "
            f"(a copy may exist as {LEGACY_RESULTS_NAME})",
            path,
        ) from None


def read_config(path: str | Path, *, root: str | Path | None = None) -> dict[str, Any]:
    """Parse ``config.yaml`` (empty dict when the file does not exist) with the limits of
    :mod:`~.io.limits`: a regular file (not a FIFO or device), at most 4 MiB, no YAML aliases."""
    from AdaptiveBrushDicomLib.io import limits

    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return {}
    text = limits.read_text(path, limits.FileKind.YAML, root=root if root is not None else path.parent)
    data = limits.loads_yaml(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputFileError("expected a mapping (key: value) at the top level", path)
    return data


def safe_relative_path(root: str | Path, rel: str, *, field_name: str, source: str | Path | None = None) -> Path:
    """Resolve ``rel`` inside ``root``, refusing anything that could leave it.

    Refused: absolute paths (POSIX or Windows drive), ``..`` components, and paths that
    leave ``root`` after resolving symlinks.

    Parameters
    ----------
    root : the run or gold-standard folder
    rel : the path as written in the JSON file
    field_name : JSON field name for the error message (e.g. ``trials/3/segmentation_path``)
    source : the JSON file, for the error message

    Returns
    -------
    Path
        ``root / rel`` (not resolved, so it stays readable in messages).
    """
    where = source if source is not None else root
    if not isinstance(rel, str):
        raise InputFileError(f"{field_name} must be a path (text), got {type(rel).__name__}", where)
    text = rel
    if "\x00" in text:
        raise InputFileError(f"{field_name} contains a NUL byte; it is not a path", where)
    if not text.strip():
        raise InputFileError(f"{field_name} is empty; give a path relative to the folder", where)
    if text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":"):
        raise InputFileError(
            f"{field_name} is an absolute path ({text!r}); only paths relative to the folder are accepted", where
        )
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if ".." in parts:
        raise InputFileError(f"{field_name} ({text!r}) contains '..'; paths may not leave the folder", where)
    root = Path(root)
    candidate = root.joinpath(*parts)
    root_real = Path(os.path.realpath(root))
    real = Path(os.path.realpath(candidate))
    if real != root_real and root_real not in real.parents:
        raise InputFileError(
            f"{field_name} ({text!r}) leads outside the folder (symlink to {real}); copy the file into the folder",
            where,
        )
    return candidate


def is_run_dir(path: Path) -> bool:
    """A folder holding ``results.json`` (an optimization run)."""
    return path.is_dir() and (path / RESULTS_NAME).is_file()


def is_gold_dir(path: Path) -> bool:
    """A folder holding ``gold.seg.nrrd`` (a gold standard)."""
    return path.is_dir() and (path / GOLD_SOURCE_NAME).is_file()


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
        return volume["name"].strip()
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
        """The trial with ``trial_number == number`` (KeyError if absent)."""
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
        if rel is not None and t.get("dicom_status", STATUS_MIGRATED) == STATUS_MIGRATED:
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
    """Load a gold standard folder (``gold.seg.nrrd`` + ``metadata.json``)."""
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
    "RESULTS_NAME", "LEGACY_RESULTS_NAME", "CONFIG_NAME", "VOLUME_DIR", "SEG_DIR", "GOLD_SEG_PATH",
    "REPORT_JSON_NAME", "REPORT_MD_NAME", "DicomInfo", "Trial", "GoldStandard", "RunResults",
    "load_schema", "validate_results", "validate_gold_metadata", "read_json", "read_config",
    "safe_relative_path", "sample_name_from", "algorithm_from_config", "load_run", "load_gold_standard",
    "iter_gold_standards", "find_gold_for_run", "trial_seg_name", "legacy_trial_candidates",
]
