"""The DICOM database seen by :class:`~.manager.DicomManager`: records, protocol, pure queries.

Two implementations answer the same questions:

* :class:`~.index.SqliteDicomIndex` -- the embedded SQLite index used outside Slicer
  (command line, CI, servers);
* :class:`SlicerDatabaseAdapter` -- the core half of the adapter over Slicer's
  ``slicer.dicomDatabase`` (a ``ctkDICOMDatabase``). It is given that object (or any
  object with the same few methods) and never imports slicer.

Everything that decides *what* a series is (gold standard, optimisation trial, which
run, which algorithm) lives in pure functions here that take plain values, headers or
rows, so both implementations give the same answers.

Conventions for optimisation runs (see ``docs/database.md``)
-----------------------------------------------------------
* a trial SEG has a SeriesDescription ``trial_<number>[_<algorithm>]`` (e.g.
  ``trial_042_watershed``, see ``dicom.naming``) or ContentLabel ``TRIAL_<number>``;
  SeriesNumber (``1000 + n`` from ``dicom.naming``) is a tie-breaker only;
* a gold standard SEG has a SeriesDescription starting with ``gold`` (``gold``,
  ``gold_<name>``, ``Gold standard (tumor)``...) or ContentLabel ``GOLD``/``GOLD_STANDARD``;
* the run of a trial is the ``<run>`` of a ContentDescription ``<run> trial <n>`` (what
  ``migrate`` writes: all runs of one image share the image's study); without one, the
  study is the run and its StudyDescription the run name.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS, SegSopClass
from AdaptiveBrushDicomLib.errors import UserError


#: Kinds of segmentation series.
KIND_GOLD = "gold"
KIND_TRIAL = "trial"
KIND_OTHER = "other"

#: Version of the :func:`classify_series` rules; stores that cache the classification (the
#: SQLite index) recompute it when this changes.
CLASSIFIER_VERSION = 2

_TRIAL_RE = re.compile(r"^\s*trial[\s_\-#]*0*(\d+)(?:[\s_\-]+(.*?))?\s*$", re.IGNORECASE)
_GOLD_RE = re.compile(r"^\s*gold(?:\b|_|-|$)", re.IGNORECASE)
_GOLD_CONTENT_LABELS = ("GOLD", "GOLD_STANDARD", "GOLDSTANDARD")
_TRIAL_LABEL_RE = re.compile(r"^\s*trial[_\s-]*0*(\d+)\s*$", re.IGNORECASE)
_RUN_RE = re.compile(r"^\s*(?P<run>.*?\S)\s+trial[\s_#-]*0*\d+\s*$", re.IGNORECASE)


class UnknownUIDError(UserError):
    """A UID that the database does not know."""


# ---------------------------------------------------------------------- records
@dataclass(frozen=True)
class SeriesTag:
    """What a SEG series is, derived from its descriptions (see :func:`classify_series`)."""

    kind: str = KIND_OTHER
    trial_number: int | None = None
    algorithm: str | None = None


@dataclass(frozen=True)
class SegSummary:
    """What the index keeps of one SEG instance's header.

    Attributes
    ----------
    referenced_series_uids : SeriesInstanceUIDs from ReferencedSeriesSequence (0008,1115).
    segment_numbers, segment_labels : described segments (SegmentNumber 0 "Background" of a
        LABELMAP is left out), in SegmentNumber order.
    algorithm_names : distinct algorithm names of the segments, in first-seen order
        (SegmentAlgorithmName (0062,0009) or the SegmentationAlgorithmIdentificationSequence
        AlgorithmName (0066,0036)).
    algorithm_types : SegmentAlgorithmType per segment (AUTOMATIC / SEMIAUTOMATIC / MANUAL).
    content_label : ContentLabel (0070,0080).
    content_description : ContentDescription (0070,0081).
    """

    referenced_series_uids: tuple[str, ...] = ()
    segment_numbers: tuple[int, ...] = ()
    segment_labels: tuple[str, ...] = ()
    algorithm_names: tuple[str, ...] = ()
    algorithm_types: tuple[str, ...] = ()
    content_label: str = ""
    content_description: str = ""


@dataclass(frozen=True)
class SeriesInfo:
    """One series of a study."""

    series_instance_uid: str
    study_instance_uid: str
    modality: str = ""
    series_description: str = ""
    series_number: int | None = None
    n_instances: int = 0
    sop_class_uids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StudyInfo:
    """One study (for a run: StudyDescription = run name)."""

    study_instance_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_description: str = ""
    study_date: str = ""
    n_series: int = 0
    n_instances: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SegSeriesInfo:
    """A segmentation series, everything a caller needs without opening its files.

    Attributes
    ----------
    series_instance_uid, study_instance_uid : str
    study_description : str
        StudyDescription; for an optimisation run, the run name.
    series_description : str
    series_number : int or None
    sop_class_uid : str
        66.7 (LABELMAP) or 66.4 (BINARY / FRACTIONAL); the first instance's if several.
    sop_instance_uids : tuple of str
    files : tuple of Path
        Files of the instances, same order.
    referenced_series_uids : tuple of str
        Union of the ReferencedSeriesSequence of the instances.
    segment_labels : tuple of str
    algorithms : tuple of str
        Distinct algorithm names: those in the segments, then the one from the description.
    kind : str
        ``"gold"``, ``"trial"`` or ``"other"``.
    trial_number : int or None
    run : str
        Run name from the ContentDescription (``<run> trial <n>``); "" if there is none,
        and then :attr:`run_name` is the StudyDescription.
    """

    series_instance_uid: str
    study_instance_uid: str
    study_description: str = ""
    series_description: str = ""
    series_number: int | None = None
    sop_class_uid: str = ""
    sop_instance_uids: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    referenced_series_uids: tuple[str, ...] = ()
    segment_labels: tuple[str, ...] = ()
    algorithms: tuple[str, ...] = ()
    kind: str = KIND_OTHER
    trial_number: int | None = None
    run: str = ""

    @property
    def run_name(self) -> str:
        """The run this SEG belongs to: :attr:`run`, else its study's description."""
        return self.run or self.study_description

    @property
    def is_gold(self) -> bool:
        return self.kind == KIND_GOLD

    @property
    def is_labelmap(self) -> bool:
        return self.sop_class_uid == SegSopClass.LABELMAP

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["files"] = [str(p) for p in self.files]
        for key in ("sop_instance_uids", "referenced_series_uids", "segment_labels", "algorithms"):
            d[key] = list(d[key])
        d["run_name"] = self.run_name
        return d


@dataclass(frozen=True)
class FileIssue:
    """A file an operation could not use, and why."""

    path: str
    reason: str
    uid: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" + (f" (UID {self.uid})" if self.uid else "")


@dataclass
class ImportReport:
    """What one :meth:`DicomDatabase.import_paths` call did.

    Attributes
    ----------
    files_seen : int
        Regular files found under the given paths.
    added : int
        Instances new to the database.
    unchanged : int
        Instances already indexed with the same content (same SOPInstanceUID and SHA-256).
    relocated : int
        Known instances (same content) whose indexed file had disappeared; the path was
        updated to the new file.
    non_dicom : int
        Files skipped because they are not DICOM (no ``DICM`` preamble / unparseable header).
    conflicts : list of FileIssue
        Same SOPInstanceUID as an indexed instance but different bytes; not imported.
    errors : list of FileIssue
        DICOM files that could not be indexed (truncated, no SOPInstanceUID, unreadable).
    seconds : float
    """

    files_seen: int = 0
    added: int = 0
    unchanged: int = 0
    relocated: int = 0
    non_dicom: int = 0
    conflicts: list[FileIssue] = field(default_factory=list)
    errors: list[FileIssue] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when nothing was refused (non-DICOM files do not count as problems)."""
        return not self.conflicts and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "files_seen": self.files_seen, "added": self.added, "unchanged": self.unchanged,
            "relocated": self.relocated, "non_dicom": self.non_dicom,
            "conflicts": [asdict(c) for c in self.conflicts], "errors": [asdict(e) for e in self.errors],
            "seconds": round(self.seconds, 4), "ok": self.ok,
        }

    def to_text(self) -> str:
        lines = [
            f"{self.files_seen} files: {self.added} added, {self.unchanged} unchanged, "
            f"{self.relocated} relocated, {self.non_dicom} not DICOM, {len(self.conflicts)} conflicts, "
            f"{len(self.errors)} errors ({self.seconds:.2f} s)"
        ]
        lines += [f"  conflict: {c}" for c in self.conflicts]
        lines += [f"  error: {e}" for e in self.errors]
        return "\n".join(lines)


@dataclass
class VerifyReport:
    """Result of :meth:`DicomDatabase.verify`: indexed files that are gone or changed."""

    checked: int = 0
    ok: int = 0
    missing: list[FileIssue] = field(default_factory=list)
    changed: list[FileIssue] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.missing and not self.changed

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "ok": self.ok, "clean": self.clean,
                "missing": [asdict(m) for m in self.missing], "changed": [asdict(c) for c in self.changed]}

    def to_text(self) -> str:
        lines = [f"{self.checked} files checked: {self.ok} ok, {len(self.missing)} missing, {len(self.changed)} changed"]
        lines += [f"  missing: {m}" for m in self.missing]
        lines += [f"  changed: {c}" for c in self.changed]
        if not self.clean:
            lines.append("  run 'abdicom db remove-missing' to forget missing files; re-import changed ones")
        return "\n".join(lines)


@dataclass
class RemoveReport:
    """Result of :meth:`DicomDatabase.remove_missing`."""

    instances: int = 0
    series: int = 0
    studies: int = 0
    patients: int = 0
    paths: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        return (f"removed {self.instances} instances whose files are gone "
                f"({self.series} series, {self.studies} studies, {self.patients} patients now empty)")


# ---------------------------------------------------------------------- protocol
@runtime_checkable
class DicomDatabase(Protocol):
    """The queries :class:`~.manager.DicomManager` needs from a DICOM database."""

    def import_paths(self, paths: Iterable[str | Path]) -> ImportReport:
        """Index DICOM files and folders (recursively); one transaction per call."""
        ...

    def studies(self) -> list[StudyInfo]:
        """All studies, by patient then study description."""
        ...

    def series_for_study(self, study_uid: str) -> list[SeriesInfo]:
        """Series of a study, by SeriesNumber."""
        ...

    def segs_for_series(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        """SEG series referencing an image series, grouped by study (see :func:`sort_segs`)."""
        ...

    def trials_for_run(self, study_uid: str) -> list[SegSeriesInfo]:
        """Trial SEGs of a run (study) in trial order."""
        ...

    def gold_for_volume(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        """Gold-standard SEGs referencing an image series."""
        ...

    def files_for_series(self, series_uid: str) -> list[Path]:
        """Files of a series, by InstanceNumber."""
        ...

    def file_for_instance(self, sop_instance_uid: str) -> Path | None:
        """File of one instance, None if unknown."""
        ...

    def show(self, uid: str) -> dict[str, Any]:
        """Everything indexed about a patient ID, study, series or instance UID."""
        ...

    def verify(self) -> VerifyReport:
        """Check indexed files still exist with the indexed content."""
        ...

    def remove_missing(self) -> RemoveReport:
        """Forget instances whose files are gone (and series/studies left empty)."""
        ...


# ---------------------------------------------------------------------- pure logic
def classify_series(series_description: str | None, content_label: str | None = None) -> SeriesTag:
    """Kind, trial number and algorithm of a SEG from its SeriesDescription / ContentLabel.

    >>> classify_series("trial_042_watershed")
    SeriesTag(kind='trial', trial_number=42, algorithm='watershed')
    >>> classify_series("Gold standard").kind
    'gold'
    """
    desc = (series_description or "").strip()
    label = (content_label or "").strip()
    if _GOLD_RE.match(desc) or label.upper() in _GOLD_CONTENT_LABELS:
        return SeriesTag(KIND_GOLD)
    m = _TRIAL_RE.match(desc)
    if m:
        algo = (m.group(2) or "").strip() or None
        return SeriesTag(KIND_TRIAL, int(m.group(1)), algo)
    m = _TRIAL_LABEL_RE.match(label)
    if m:
        return SeriesTag(KIND_TRIAL, int(m.group(1)))
    return SeriesTag(KIND_OTHER)


def run_name_from_content(content_description: str | None) -> str:
    """Run name in a ContentDescription ``<run> trial <n>`` ("" if it has another form).

    >>> run_name_from_content("optuna_2026-01-28 trial 42")
    'optuna_2026-01-28'
    """
    m = _RUN_RE.match(content_description or "")
    return m.group("run") if m else ""


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def seg_summary_from_dataset(ds: Any) -> SegSummary:
    """:class:`SegSummary` of a SEG header (a pydicom Dataset read without pixels).

    Works on any object with the same attribute names (``getattr`` based), so callers may
    pass a partial header read with ``specific_tags``.
    """
    refs: list[str] = []
    for item in getattr(ds, "ReferencedSeriesSequence", None) or []:
        uid = _text(getattr(item, "SeriesInstanceUID", ""))
        if uid and uid not in refs:
            refs.append(uid)
    labelmap = _text(getattr(ds, "SOPClassUID", "")) == SegSopClass.LABELMAP or \
        _text(getattr(ds, "SegmentationType", "")).upper() == "LABELMAP"
    items = []
    for pos, item in enumerate(getattr(ds, "SegmentSequence", None) or []):
        number = getattr(item, "SegmentNumber", None)
        number = int(number) if number not in (None, "") else pos + 1
        if labelmap and number == 0:
            continue  # the "Background" item of a LABELMAP is not a user segment
        algo = _text(getattr(item, "SegmentAlgorithmName", ""))
        if not algo:
            for ident in getattr(item, "SegmentationAlgorithmIdentificationSequence", None) or []:
                algo = _text(getattr(ident, "AlgorithmName", ""))
                if algo:
                    break
        items.append((number, _text(getattr(item, "SegmentLabel", "")), algo,
                      _text(getattr(item, "SegmentAlgorithmType", ""))))
    items.sort(key=lambda t: t[0])
    algos: list[str] = []
    for _, _, a, _ in items:
        if a and a not in algos:
            algos.append(a)
    return SegSummary(
        referenced_series_uids=tuple(refs),
        segment_numbers=tuple(t[0] for t in items),
        segment_labels=tuple(t[1] for t in items),
        algorithm_names=tuple(algos),
        algorithm_types=tuple(t[3] for t in items),
        content_label=_text(getattr(ds, "ContentLabel", "")),
        content_description=_text(getattr(ds, "ContentDescription", "")),
    )


def _to_int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def build_seg_info(
    series: Mapping[str, Any],
    instances: Sequence[Mapping[str, Any]],
    summaries: Sequence[SegSummary],
) -> SegSeriesInfo:
    """Assemble a :class:`SegSeriesInfo` from plain rows.

    Parameters
    ----------
    series : mapping with keys ``series_instance_uid``, ``study_instance_uid`` and optional
        ``study_description``, ``series_description``, ``series_number``, ``content_label``,
        ``content_description`` (else taken from the summaries).
    instances : mappings with ``sop_instance_uid``, ``path``, optional ``sop_class_uid``,
        ``instance_number`` (sorted here by instance number, then UID).
    summaries : one :class:`SegSummary` per instance (any order; merged).
    """
    inst = sorted(instances, key=lambda r: (_to_int(r.get("instance_number")) or 0, str(r["sop_instance_uid"])))
    refs: list[str] = []
    labels: list[str] = []
    algos: list[str] = []
    content_label = _text(series.get("content_label"))
    content_description = _text(series.get("content_description"))
    for s in summaries:
        refs += [r for r in s.referenced_series_uids if r not in refs]
        labels += [lab for lab in s.segment_labels if lab not in labels]
        algos += [a for a in s.algorithm_names if a not in algos]
        content_label = content_label or s.content_label
        content_description = content_description or s.content_description
    tag = classify_series(_text(series.get("series_description")), content_label)
    if tag.algorithm and tag.algorithm not in algos:
        algos.append(tag.algorithm)
    return SegSeriesInfo(
        series_instance_uid=str(series["series_instance_uid"]),
        study_instance_uid=_text(series.get("study_instance_uid")),
        study_description=_text(series.get("study_description")),
        series_description=_text(series.get("series_description")),
        series_number=_to_int(series.get("series_number")),
        sop_class_uid=_text(inst[0].get("sop_class_uid")) if inst else "",
        sop_instance_uids=tuple(str(r["sop_instance_uid"]) for r in inst),
        files=tuple(Path(str(r["path"])) for r in inst),
        referenced_series_uids=tuple(refs),
        segment_labels=tuple(labels),
        algorithms=tuple(algos),
        kind=tag.kind,
        trial_number=tag.trial_number,
        run=run_name_from_content(content_description) if tag.kind == KIND_TRIAL else "",
    )


_KIND_ORDER = {KIND_GOLD: 0, KIND_TRIAL: 1, KIND_OTHER: 2}


def seg_sort_key(info: SegSeriesInfo) -> tuple:
    """Within a study: gold first, then trials by run and number, then others; SeriesNumber,
    description and UID break ties."""
    return (
        _KIND_ORDER.get(info.kind, 3),
        info.run,
        info.trial_number if info.trial_number is not None else -1,
        info.series_number if info.series_number is not None else -1,
        info.series_description,
        info.series_instance_uid,
    )


def sort_segs(segs: Iterable[SegSeriesInfo]) -> list[SegSeriesInfo]:
    """Group by study (run name, then study UID), each group in :func:`seg_sort_key` order."""
    return sorted(segs, key=lambda s: (s.study_description, s.study_instance_uid) + seg_sort_key(s))


def group_by_study(segs: Iterable[SegSeriesInfo]) -> dict[str, list[SegSeriesInfo]]:
    """``{study_uid: [SegSeriesInfo, ...]}`` in :func:`sort_segs` order (dicts keep order)."""
    out: dict[str, list[SegSeriesInfo]] = {}
    for s in sort_segs(segs):
        out.setdefault(s.study_instance_uid, []).append(s)
    return out


def group_by_run(segs: Iterable[SegSeriesInfo]) -> dict[tuple[str, str], list[SegSeriesInfo]]:
    """``{(study_uid, run_name): [...]}`` in :func:`sort_segs` order; gold standards and
    other SEGs of a study are under its StudyDescription."""
    out: dict[tuple[str, str], list[SegSeriesInfo]] = {}
    for s in sort_segs(segs):
        out.setdefault((s.study_instance_uid, s.run_name), []).append(s)
    return out


def in_run(segs: Iterable[SegSeriesInfo], run_name: str) -> list[SegSeriesInfo]:
    """Only the SEGs of run ``run_name`` (see :attr:`SegSeriesInfo.run_name`)."""
    return [s for s in segs if s.run_name == run_name]


def referencing(segs: Iterable[SegSeriesInfo], volume_series_uid: str) -> list[SegSeriesInfo]:
    """Only the SEGs whose ReferencedSeriesSequence names ``volume_series_uid``."""
    return [s for s in segs if volume_series_uid in s.referenced_series_uids]


def trials_in_order(segs: Iterable[SegSeriesInfo]) -> list[SegSeriesInfo]:
    """Trial SEGs only, by trial number (then SeriesNumber, UID)."""
    return sorted((s for s in segs if s.kind == KIND_TRIAL), key=seg_sort_key)


def gold_only(segs: Iterable[SegSeriesInfo]) -> list[SegSeriesInfo]:
    """Gold-standard SEGs only, in :func:`sort_segs` order."""
    return [s for s in sort_segs(segs) if s.kind == KIND_GOLD]


# ---------------------------------------------------------------------- Slicer adapter (core half)
class CtkDicomDatabaseLike(Protocol):
    """The methods of ``ctkDICOMDatabase`` (``slicer.dicomDatabase``) the adapter calls.

    Names and arguments as in CTK ``Libs/DICOM/Core/ctkDICOMDatabase.h``: ``patients()``
    returns database-internal patient keys; ``fileValue(path, "gggg,eeee")`` returns the
    top-level value as a string ("" if absent); ``fieldForSeries(column, seriesUID)``
    reads a column of the Series table (``SeriesDescription``, ``SeriesNumber``,
    ``Modality``...); ``insert(path, storeFile, generateThumbnail)`` indexes one file.
    """

    def patients(self) -> Sequence[str]: ...
    def studiesForPatient(self, patient: str) -> Sequence[str]: ...  # noqa: N802 (CTK name)
    def seriesForStudy(self, study_uid: str) -> Sequence[str]: ...  # noqa: N802
    def filesForSeries(self, series_uid: str) -> Sequence[str]: ...  # noqa: N802
    def instancesForSeries(self, series_uid: str) -> Sequence[str]: ...  # noqa: N802
    def fileValue(self, path: str, tag: str) -> str: ...  # noqa: N802
    def fieldForSeries(self, field: str, series_uid: str) -> str: ...  # noqa: N802
    def insert(self, path: str, storeFile: bool = True, generateThumbnail: bool = True) -> Any: ...  # noqa: N802,N803


#: DICOM tags the adapter reads with ``fileValue`` ("gggg,eeee" as CTK wants them).
TAGS = {
    "PatientID": "0010,0020",
    "PatientName": "0010,0010",
    "StudyInstanceUID": "0020,000D",
    "StudyDescription": "0008,1030",
    "StudyDate": "0008,0020",
    "SeriesInstanceUID": "0020,000E",
    "SeriesDescription": "0008,103E",
    "SeriesNumber": "0020,0011",
    "Modality": "0008,0060",
    "SOPClassUID": "0008,0016",
    "SOPInstanceUID": "0008,0018",
    "InstanceNumber": "0020,0013",
    "ContentLabel": "0070,0080",
    "ContentDescription": "0070,0081",
}


def _read_seg_header(path: str) -> Any:
    import pydicom

    return pydicom.dcmread(
        path, stop_before_pixels=True,
        specific_tags=["SOPClassUID", "SegmentationType", "ReferencedSeriesSequence", "SegmentSequence",
                       "ContentLabel", "ContentDescription"],
    )


class SlicerDatabaseAdapter:
    """:class:`DicomDatabase` over Slicer's ``ctkDICOMDatabase`` (core half; no slicer import).

    Parameters
    ----------
    ctk_db : CtkDicomDatabaseLike
        ``slicer.dicomDatabase`` in Slicer; any object with the same methods in tests.
    header_reader : callable, optional
        ``path -> header`` for the sequences CTK does not index (ReferencedSeriesSequence,
        SegmentSequence). Default: pydicom without pixel data. Results are cached per path
        and file modification time.

    Notes
    -----
    Sequences are not in the CTK database, so finding the SEGs of a series reads the
    header of the first file of every SEG series (cached). Modality comes from
    ``fieldForSeries("Modality", uid)`` and falls back to the first file's SOP class.
    """

    def __init__(self, ctk_db: CtkDicomDatabaseLike, header_reader: Callable[[str], Any] | None = None) -> None:
        if ctk_db is None:
            raise UserError("Slicer's DICOM database is not available yet; open the DICOM module once "
                            "(slicer.dicomDatabase is None before startup completes)")
        is_open = getattr(ctk_db, "isOpen", True)  # a Q_PROPERTY in PythonQt; a method on stand-ins
        if callable(is_open):
            is_open = is_open()
        if not is_open:
            raise UserError("Slicer's DICOM database is closed; choose a database folder in the DICOM module")
        self.ctk = ctk_db
        self._read_header = header_reader or _read_seg_header
        self._summary_cache: dict[tuple[str, float], SegSummary] = {}

    # -------------------------------------------------------------- navigation helpers
    def _value(self, path: str, name: str) -> str:
        return _text(self.ctk.fileValue(path, TAGS[name]))

    def _series_field(self, name: str, series_uid: str, first_file: str | None) -> str:
        value = ""
        try:
            value = _text(self.ctk.fieldForSeries(name, series_uid))
        except Exception:  # older CTK / stand-ins without the column
            value = ""
        if not value and first_file:
            value = self._value(first_file, name)
        return value

    def _all_series(self) -> list[tuple[str, str]]:
        out = []
        for patient in self.ctk.patients():
            for study in self.ctk.studiesForPatient(patient):
                for series in self.ctk.seriesForStudy(study):
                    out.append((str(study), str(series)))
        return out

    def _summary(self, path: str) -> SegSummary:
        try:
            key = (path, Path(path).stat().st_mtime)
        except OSError:
            key = (path, -1.0)
        if key not in self._summary_cache:
            self._summary_cache[key] = seg_summary_from_dataset(self._read_header(path))
        return self._summary_cache[key]

    def _is_seg_series(self, series_uid: str, files: Sequence[str]) -> bool:
        modality = self._series_field("Modality", series_uid, files[0] if files else None)
        if modality.upper() == "SEG":
            return True
        return bool(files) and self._value(files[0], "SOPClassUID") in SEG_SOP_CLASS_UIDS

    def _seg_info(self, study_uid: str, series_uid: str, files: Sequence[str]) -> SegSeriesInfo:
        first = files[0]
        instances = [
            {"sop_instance_uid": self._value(f, "SOPInstanceUID"), "path": f,
             "sop_class_uid": self._value(f, "SOPClassUID"), "instance_number": self._value(f, "InstanceNumber")}
            for f in files
        ]
        row = {
            "series_instance_uid": series_uid,
            "study_instance_uid": study_uid,
            "study_description": self._value(first, "StudyDescription"),
            "series_description": self._series_field("SeriesDescription", series_uid, first),
            "series_number": self._series_field("SeriesNumber", series_uid, first),
            "content_label": self._value(first, "ContentLabel"),
            "content_description": self._value(first, "ContentDescription"),
        }
        return build_seg_info(row, instances, [self._summary(first)])

    def _all_segs(self) -> list[SegSeriesInfo]:
        out = []
        for study, series in self._all_series():
            files = [str(f) for f in self.ctk.filesForSeries(series)]
            if files and self._is_seg_series(series, files):
                out.append(self._seg_info(study, series, files))
        return out

    # -------------------------------------------------------------- protocol
    def import_paths(self, paths: Iterable[str | Path]) -> ImportReport:
        """Index files with ``ctk.insert(path, False, False)`` (links only, no copy).

        CTK does its own parsing: non-DICOM files are counted when ``insert`` raises or
        returns a falsy value; conflicts are not detected on this path.
        """
        import time

        t0 = time.perf_counter()
        report = ImportReport()
        for path in iter_files(paths):
            report.files_seen += 1
            if not looks_like_dicom(path):
                report.non_dicom += 1
                continue
            try:
                result = self.ctk.insert(str(path), False, False)
            except Exception as exc:  # CTK raises for unparseable files
                report.errors.append(FileIssue(str(path), f"Slicer's DICOM database refused it ({exc})"))
                continue
            if result is False:
                report.errors.append(FileIssue(str(path), "Slicer's DICOM database refused it"))
            else:
                report.added += 1
        report.seconds = time.perf_counter() - t0
        return report

    def studies(self) -> list[StudyInfo]:
        out = []
        for patient in self.ctk.patients():
            for study in self.ctk.studiesForPatient(patient):
                series = list(self.ctk.seriesForStudy(study))
                files = [str(f) for s in series for f in self.ctk.filesForSeries(s)]
                first = files[0] if files else None
                out.append(StudyInfo(
                    study_instance_uid=str(study),
                    patient_id=self._value(first, "PatientID") if first else "",
                    patient_name=self._value(first, "PatientName") if first else "",
                    study_description=self._value(first, "StudyDescription") if first else "",
                    study_date=self._value(first, "StudyDate") if first else "",
                    n_series=len(series), n_instances=len(files),
                ))
        return sorted(out, key=lambda s: (s.patient_id, s.study_description, s.study_instance_uid))

    def series_for_study(self, study_uid: str) -> list[SeriesInfo]:
        out = []
        for series in self.ctk.seriesForStudy(study_uid):
            files = [str(f) for f in self.ctk.filesForSeries(series)]
            first = files[0] if files else None
            classes = tuple(sorted({self._value(f, "SOPClassUID") for f in files}))
            out.append(SeriesInfo(
                series_instance_uid=str(series), study_instance_uid=study_uid,
                modality=self._series_field("Modality", series, first),
                series_description=self._series_field("SeriesDescription", series, first),
                series_number=_to_int(self._series_field("SeriesNumber", series, first)),
                n_instances=len(files), sop_class_uids=classes,
            ))
        return sorted(out, key=lambda s: (s.series_number if s.series_number is not None else -1,
                                          s.series_instance_uid))

    def segs_for_series(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        return sort_segs(referencing(self._all_segs(), volume_series_uid))

    def trials_for_run(self, study_uid: str) -> list[SegSeriesInfo]:
        segs = []
        for series in self.ctk.seriesForStudy(study_uid):
            files = [str(f) for f in self.ctk.filesForSeries(series)]
            if files and self._is_seg_series(str(series), files):
                segs.append(self._seg_info(study_uid, str(series), files))
        return trials_in_order(segs)

    def gold_for_volume(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        return gold_only(self.segs_for_series(volume_series_uid))

    def files_for_series(self, series_uid: str) -> list[Path]:
        files = [str(f) for f in self.ctk.filesForSeries(series_uid)]
        files.sort(key=lambda f: (_to_int(self._value(f, "InstanceNumber")) or 0, f))
        return [Path(f) for f in files]

    def file_for_instance(self, sop_instance_uid: str) -> Path | None:
        finder = getattr(self.ctk, "fileForInstance", None)
        if finder is not None:
            found = _text(finder(sop_instance_uid))
            return Path(found) if found else None
        for _, series in self._all_series():
            for f in self.ctk.filesForSeries(series):
                if self._value(str(f), "SOPInstanceUID") == sop_instance_uid:
                    return Path(str(f))
        return None

    def show(self, uid: str) -> dict[str, Any]:
        for study, series in self._all_series():
            files = [str(f) for f in self.ctk.filesForSeries(series)]
            if series == uid:
                info: dict[str, Any] = {"level": "series", "series_instance_uid": uid, "study_instance_uid": study,
                                        "files": files}
                if files and self._is_seg_series(series, files):
                    info["seg"] = self._seg_info(study, series, files).to_dict()
                return info
            if study == uid:
                return {"level": "study", "study_instance_uid": uid,
                        "series": [s.to_dict() for s in self.series_for_study(uid)]}
            for f in files:
                if self._value(f, "SOPInstanceUID") == uid:
                    return {"level": "instance", "sop_instance_uid": uid, "series_instance_uid": series,
                            "study_instance_uid": study, "path": f}
        raise UnknownUIDError(f"UID {uid} is not in Slicer's DICOM database; import its files first")

    def verify(self) -> VerifyReport:
        report = VerifyReport()
        for _, series in self._all_series():
            for f in self.ctk.filesForSeries(series):
                report.checked += 1
                if Path(str(f)).is_file():
                    report.ok += 1
                else:
                    report.missing.append(FileIssue(str(f), "file no longer exists"))
        return report

    def remove_missing(self) -> RemoveReport:
        """Not done through the adapter: Slicer's DICOM browser has "Remove" for that."""
        raise UserError("removing entries from Slicer's DICOM database is done in Slicer's DICOM browser")


# ---------------------------------------------------------------------- file helpers
def iter_files(paths: Iterable[str | Path]) -> Iterable[Path]:
    """Regular files under ``paths`` (files as given; folders recursively, sorted, hidden included).

    Raises
    ------
    UserError
        A path does not exist.
    """
    for p in paths:
        p = Path(p)
        if p.is_file():
            yield p
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    yield f
        else:
            raise UserError("no such file or folder; check the path", p)


def looks_like_dicom(path: Path, head: bytes | None = None) -> bool:
    """True if the file has the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    if head is None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(132)
        except OSError:
            return False
    return len(head) >= 132 and head[128:132] == b"DICM"
