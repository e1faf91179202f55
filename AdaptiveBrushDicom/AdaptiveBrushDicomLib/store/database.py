"""The DICOM database protocol, its records and the pure queries behind it.

Three implementations answer the same questions:

* :class:`~AdaptiveBrushDicomLib.store.sqlite_index.SqliteDicomIndex` -- the embedded
  SQLite index used outside Slicer (command line, CI, servers);
* :class:`~AdaptiveBrushDicomLib.slicer.ctk_database.SlicerDatabaseAdapter` -- the core
  half of the adapter over Slicer's ``slicer.dicomDatabase`` (a ``ctkDICOMDatabase``). It
  is given that object (or any object with the same few methods) and never imports slicer;
* :class:`~AdaptiveBrushDicomLib.store.dicomweb.DicomWebDatabase` -- a DICOMweb server.

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
from typing import Any, Iterable, Mapping, Protocol, Sequence, runtime_checkable

from AdaptiveBrushDicomLib.core.value_enum import ValueEnum
from AdaptiveBrushDicomLib.dicom.sop_class import SegSopClass
from AdaptiveBrushDicomLib.errors import UserError


class SeriesKind(ValueEnum):
    """What a SEG series is for (a closed set; stored as its value in the SQLite index).

    ``str`` subclass: members compare equal to their values (rows read back as plain text)
    and ``str()`` / f-strings / JSON give the value.
    """

    GOLD = "gold"
    TRIAL = "trial"
    OTHER = "other"


#: The kinds under their historical names.
KIND_GOLD = SeriesKind.GOLD
KIND_TRIAL = SeriesKind.TRIAL
KIND_OTHER = SeriesKind.OTHER

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

    kind: SeriesKind = SeriesKind.OTHER
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
    kind: SeriesKind = SeriesKind.OTHER
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
    SeriesTag(kind=<SeriesKind.TRIAL: 'trial'>, trial_number=42, algorithm='watershed')
    >>> classify_series("Gold standard").kind
    <SeriesKind.GOLD: 'gold'>
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


# ---------------------------------------------------------------------- file helpers
def iter_files(paths: Iterable[str | Path]) -> Iterable[Path]:
    """Regular files under ``paths`` (files as given; folders recursively, sorted, hidden included).

    Raises
    ------
    UserError
        A path does not exist.
    """
    from AdaptiveBrushDicomLib.io.limits import check_file

    for p in paths:
        p = Path(p)
        if p.is_file():
            yield p
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    check_file(f, root=p, what="file")  # no symlink out of the folder given
                    yield f
        elif p.exists():
            check_file(p, what="file")  # a FIFO or device: refused in words
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
