"""``abdicom db ...``: the DICOM index from the command line.

Subcommands: ``import DIR...``, ``list``, ``segs-for SERIES_UID|RUN|PATIENT_ID``,
``show UID|PATIENT_ID|RUN``,
``verify``, ``remove-missing``. Each accepts ``--json`` (exactly one JSON object on
stdout) and ``--db PATH`` (default: ``$ABDICOM_DB`` or the user data folder). Handlers
return the exit code: 0 success, 1 when the command ran but found problems (import
conflicts or unreadable DICOM files, files missing or changed in ``verify``). User
mistakes raise :class:`~.errors.UserError` (the main CLI prints one line, exit 2).

``cli.py`` calls :func:`register` with its subparsers object.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from AdaptiveBrushDicomLib.store.sqlite.index import SqliteDicomIndex

#: Exit code when a command ran but found problems.
EXIT_PROBLEMS = 1


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, sort_keys=True, default=str))
    else:
        print(text)


def _open(args: argparse.Namespace) -> SqliteDicomIndex:
    """The index of ``--db`` (default location otherwise).

    Raises
    ------
    UserError
        The index cannot be opened (see :class:`~AdaptiveBrushDicomLib.store.sqlite.index.SqliteDicomIndex`).
    """
    from AdaptiveBrushDicomLib.store.sqlite.index import SqliteDicomIndex

    return SqliteDicomIndex(getattr(args, "db", None))


# ------------------------------------------------------------------ handlers
def cmd_import(args: argparse.Namespace) -> int:
    """Index DICOM files/folders."""
    with _open(args) as db:
        report = db.import_paths([Path(p) for p in args.paths], workers=args.workers, rehash=args.rehash)
        payload = {"db": str(db.path), **report.to_dict()}
        _emit(args, payload, report.to_text() + f"\n  index: {db.path}")
    return 0 if report.ok else EXIT_PROBLEMS


def cmd_list(args: argparse.Namespace) -> int:
    """Studies and their series."""
    with _open(args) as db:
        studies = db.studies()
        out = []
        lines = [f"index {db.path}: {len(studies)} studies"]
        for st in studies:
            series = db.series_for_study(st.study_instance_uid)
            out.append({**st.to_dict(), "series": [s.to_dict() for s in series]})
            lines.append(f"{st.patient_id or '(no PatientID)'}  {st.study_description or '(no description)'}  "
                         f"{st.study_instance_uid}  [{st.n_series} series, {st.n_instances} instances]")
            for s in series:
                number = "" if s.series_number is None else f"#{s.series_number} "
                lines.append(f"    {s.modality:<4} {number}{s.series_description or '(no description)'}  "
                             f"{s.series_instance_uid}  ({s.n_instances})")
        _emit(args, {"db": str(db.path), "studies": out}, "\n".join(lines))
    return 0


def _resolve_segs(db: Any, key: str) -> tuple[str, list[Any]]:
    """SEGs for ``key``: an image SeriesInstanceUID, a run name or a PatientID.

    Returns (what ``key`` was taken as, SEGs in :func:`~AdaptiveBrushDicomLib.store.seg_order.sort_segs` order).

    Raises
    ------
    UnknownUIDError
        ``key`` is none of these.
    """
    from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError
    from AdaptiveBrushDicomLib.store.seg_order import sort_segs

    segs = db.segs_for_series(key)
    if segs:
        return "series", segs
    by_uid: dict[str, Any] = {}
    kind = ""
    for st in db.studies():
        patient = st.patient_id == key
        for series in db.series_for_study(st.study_instance_uid):
            if series.series_instance_uid == key:
                return "series", []  # an image series without SEGs
            if series.modality.upper() == "SEG":
                continue
            for s in db.segs_for_series(series.series_instance_uid):
                if patient or s.run_name == key:
                    by_uid[s.series_instance_uid] = s
                    kind = kind or ("patient" if patient else "run")
    if not by_uid:
        raise UnknownUIDError(f"{key!r} is not a series UID, run name or PatientID in the index {db.path}; "
                              "see 'abdicom db list', or import the run with 'abdicom db import DIR'")
    return kind, sort_segs(by_uid.values())


def _run_of_file(path: Path, cache: dict[Path, Any]) -> Any:
    """The migrated run (results.json) a SEG file lies in, or None."""
    from AdaptiveBrushDicomLib.errors import UserError
    from AdaptiveBrushDicomLib.runs.layout import RESULTS_NAME
    from AdaptiveBrushDicomLib.runs.results import load_run

    for folder in list(path.parents)[:4]:
        if folder in cache:
            return cache[folder]
        if (folder / RESULTS_NAME).is_file():
            try:
                cache[folder] = load_run(folder, check_files=False)
            except UserError:
                cache[folder] = None
            return cache[folder]
    return None


def trial_scores(segs: Any) -> dict[str, dict[str, Any]]:
    """Score of each trial SEG from its run's results.json: series UID -> {value, direction, best}."""
    cache: dict[Path, Any] = {}
    out: dict[str, dict[str, Any]] = {}
    for s in segs:
        if s.trial_number is None or not s.files:
            continue
        run = _run_of_file(Path(s.files[0]), cache)
        if run is None:
            continue
        try:
            trial = run.trial(s.trial_number)
        except KeyError:
            continue
        best = run.best_trial
        out[s.series_instance_uid] = {"value": trial.value, "direction": run.direction,
                                      "best": best is not None and best.number == trial.number}
    return out


def _score_text(score: dict[str, Any] | None) -> str:
    if not score:
        return ""
    value = score["value"]
    text = "score -" if value is None else f"score {value:.4g}"
    return text + (" (best)" if score["best"] else "")


def cmd_segs_for(args: argparse.Namespace) -> int:
    """SEGs referencing an image series (or of a run / patient), grouped by study (run)."""
    from AdaptiveBrushDicomLib.store.seg_order import group_by_study

    with _open(args) as db:
        taken_as, segs = _resolve_segs(db, args.series_uid)
        scores = trial_scores(segs)
        groups = group_by_study(segs)
        payload = {"db": str(db.path), "query": args.series_uid, "query_kind": taken_as,
                   "volume_series_uid": args.series_uid if taken_as == "series" else None, "count": len(segs),
                   "studies": [{"study_instance_uid": uid, "run_name": items[0].run_name,
                                "segs": [{**s.to_dict(), "score": scores.get(s.series_instance_uid)}
                                         for s in items]} for uid, items in groups.items()]}
        what = {"series": "reference", "run": "belong to run", "patient": "belong to patient"}[taken_as]
        lines = [f"{len(segs)} SEG series {what} {args.series_uid}"]
        for uid, items in groups.items():
            lines.append(f"study {items[0].study_description or '(no description)'}  {uid}")
            run = None
            for s in items:
                if s.run and s.run != run:
                    lines.append(f"  run {s.run}")
                run = s.run or None
                tag = "gold " if s.is_gold else (f"trial {s.trial_number} " if s.trial_number is not None else "")
                score = _score_text(scores.get(s.series_instance_uid))
                lines.append(f"    {tag}{s.series_description}  {s.series_instance_uid}  "
                             f"segments: {', '.join(s.segment_labels) or '-'}  "
                             f"algorithm: {', '.join(s.algorithms) or '-'}" + (f"  {score}" if score else ""))
        _emit(args, payload, "\n".join(lines))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Everything indexed about one UID, PatientID or run name."""
    from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError

    with _open(args) as db:
        try:
            info = db.show(args.uid)
        except UnknownUIDError:
            taken_as, segs = _resolve_segs(db, args.uid)  # a run name (PatientIDs are found by show)
            scores = trial_scores(segs)
            info = {"level": taken_as, "name": args.uid,
                    "segs": [{**_seg_brief(s), "score": (scores.get(s.series_instance_uid) or {}).get("value")}
                             for s in segs]}
        seg = info.get("seg")
        if isinstance(seg, dict) and seg.get("trial_number") is not None:
            from AdaptiveBrushDicomLib.store.records import SegSeriesInfo

            fields = {k: v for k, v in seg.items() if k in SegSeriesInfo.__dataclass_fields__}
            fields["files"] = tuple(Path(f) for f in fields.get("files", ()))
            score = trial_scores([SegSeriesInfo(**fields)]).get(seg["series_instance_uid"])
            if score:
                info["score"] = score["value"]
                info["best_trial"] = score["best"]
        _emit(args, info, _format_show(info))
    return 0


def _seg_brief(s: Any) -> dict[str, Any]:
    return {"kind": s.kind, "trial_number": s.trial_number, "series_description": s.series_description,
            "series_instance_uid": s.series_instance_uid, "segments": list(s.segment_labels)}


def _readable(value: Any) -> str:
    """A value as a person reads it: no quotes, brackets or None."""
    if value is None or value == "" or value == [] or value == ():
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_readable(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_readable(v)}" for k, v in value.items())
    return str(value)


def _format_show(info: dict[str, Any], indent: str = "") -> str:
    lines = []
    for key, value in info.items():
        label = key.replace("_", " ")
        if isinstance(value, dict):
            lines.append(f"{indent}{label}:")
            lines.append(_format_show(value, indent + "  "))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{indent}{label}:")
            for item in value:
                lines.append(indent + "  - " + "; ".join(f"{k.replace('_', ' ')} {_readable(v)}"
                                                         for k, v in item.items()))
        else:
            lines.append(f"{indent}{label}: {_readable(value)}")
    return "\n".join(lines)


def cmd_verify(args: argparse.Namespace) -> int:
    """Check indexed files still exist and hold the indexed bytes."""
    with _open(args) as db:
        report = db.verify(full=args.full)
        _emit(args, {"db": str(db.path), **report.to_dict()}, report.to_text())
    return 0 if report.clean else EXIT_PROBLEMS


def cmd_remove_missing(args: argparse.Namespace) -> int:
    """Forget instances whose files are gone."""
    with _open(args) as db:
        report = db.remove_missing()
        _emit(args, {"db": str(db.path), **report.to_dict()}, report.to_text())
    return 0


# ------------------------------------------------------------------ parser
def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """``--json`` and ``--db`` (also accepted after the subcommand name)."""
    if not top:
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--db", metavar="PATH", default=None if top else argparse.SUPPRESS,
                   help="index database file (default: $ABDICOM_DB or "
                        "$XDG_DATA_HOME/AdaptiveBrushDicom/index.sqlite)")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``db`` command (with its subcommands) to ``subparsers``; return its parser."""
    db: argparse.ArgumentParser = subparsers.add_parser(
        "db", help="embedded DICOM index: import, list, find SEGs of a series",
        description="Embedded SQLite index of DICOM files (patients, studies, series, instances, SEG references).",
    )
    _common(db, top=True)
    sub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("import", help="index DICOM files and folders (recursively)")
    p.add_argument("paths", nargs="+", metavar="DIR", help="folders or files")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="processes parsing files in parallel for batches of 200+ files (default: CPUs, max 4)")
    p.add_argument("--rehash", action="store_true",
                   help="read and hash every file, also those indexed with unchanged size and mtime")
    _common(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("list", help="studies and series in the index")
    _common(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("segs-for", help="SEG series referencing an image series (or of a run / patient), "
                                        "grouped by study (run), with each trial's score")
    p.add_argument("series_uid", metavar="SERIES_UID|RUN|PATIENT_ID",
                   help="SeriesInstanceUID of the image series, a run name or a PatientID")
    _common(p)
    p.set_defaults(func=cmd_segs_for)

    p = sub.add_parser("show", help="what the index holds about a UID (patient, study, series, instance) "
                                    "or a run name")
    p.add_argument("uid", metavar="UID|PATIENT_ID|RUN")
    _common(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("verify", help="check indexed files still exist unchanged")
    p.add_argument("--full", action="store_true", help="re-hash every file (default: only changed size/mtime)")
    _common(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("remove-missing", help="forget instances whose files are gone")
    _common(p)
    p.set_defaults(func=cmd_remove_missing)
    return db
