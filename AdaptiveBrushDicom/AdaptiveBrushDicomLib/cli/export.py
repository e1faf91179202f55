"""``abdicom export``: segmentations -> DICOM SEG, one file or a batch in one process.

* ``abdicom export SEG --reference DIR --out FILE`` -- one SEG (the form the command always
  had; the folder of ``FILE`` is created when missing, like ``synth --out``).
* ``abdicom export SEG... --reference DIR --out-dir DIR [--jobs N]`` -- one SEG per input,
  named after the input's stem (``trial_007.seg.nrrd`` -> ``DIR/trial_007.dcm``), with
  SeriesDescription defaulting to that stem and SeriesNumber increasing from
  ``--series-number`` (default 100) in the order the inputs are given. The reference
  series is read once; ``--jobs N`` spreads the inputs over N worker processes.

The options describing the SEG (``--metadata``, ``--segments``, ``--algorithm-type`` /
``--algorithm-name`` / ``--algorithm-version``, ``--content-creator``, ...) apply to every
input. :func:`~.export_batch.export_batch` (:mod:`.export_batch`) is the batch export,
also for Python callers (benchmarks).

Decisions where the issue is silent: in a batch every input is independent -- an input
that cannot be exported is reported (one line on stderr, ``failed`` in ``--json``) and the
others are still written; the exit code is then 1. Problems found before anything is
written (two inputs with the same stem, outputs that exist without ``--force``, a missing
reference) stop the batch with exit 2 and nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from AdaptiveBrushDicomLib.core.segment import AlgorithmType
from AdaptiveBrushDicomLib.errors import OutputExistsError, UserError

if TYPE_CHECKING:  # pragma: no cover
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.write import WriteResult

#: Exit code when a batch wrote some SEGs but not all.
EXIT_INCOMPLETE = 1
#: Default SeriesNumber of the (first) exported SEG.
DEFAULT_SERIES_NUMBER = 100


# ---------------------------------------------------------------------- options
@dataclass(frozen=True)
class ExportOptions:
    """What every exported SEG gets (the command's describing options).

    Attributes
    ----------
    compression : transfer syntax name (see :class:`~.compression.Compression`).
    series_description : SeriesDescription; None = the input's stem in a batch,
        "Segmentation" for a single export (or the dcmqi JSON's value).
    series_number : SeriesNumber of the first SEG; None = the dcmqi JSON's value or 100.
    metadata : dcmqi segmentation metadata JSON; segments : segment table (CSV/TSV).
    algorithm_type, algorithm_name, algorithm_version : set on every segment (override
        the metadata files) when given.
    content_creator : ContentCreatorName (PN, e.g. ``Doe^Jane``).
    allow_binary, resample, force : as for :func:`~.seg.write.write_seg`.
    max_labels : a label image with more distinct values is refused as "looks like an image".
    allow_unmatched : accept metadata naming labels the segmentation lacks (and the other
        way round) with one warning line, instead of refusing.
    """

    compression: str = "default"
    series_description: str | None = None
    series_number: int | None = None
    metadata: str | None = None
    segments: str | None = None
    algorithm_type: AlgorithmType | None = None
    algorithm_name: str | None = None
    algorithm_version: str | None = None
    content_creator: str | None = None
    allow_binary: bool = False
    resample: str = "none"
    force: bool = False
    max_labels: int = 1000
    allow_unmatched: bool = False


def _describe(labelmap: "LabelMap", opts: ExportOptions,
              warnings: list[str] | None = None) -> tuple["LabelMap", dict[str, Any]]:
    """Apply the metadata files and the algorithm options; return (labelmap, series fields)."""
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap

    series: dict[str, Any] = {}
    if opts.metadata:
        from AdaptiveBrushDicomLib.io.dcmqi_metadata import apply_dcmqi_metadata

        labelmap, meta = apply_dcmqi_metadata(labelmap, opts.metadata, allow_unmatched=opts.allow_unmatched,
                                              warnings=warnings)
        series = {"series_description": meta.series_description, "series_number": meta.series_number,
                  "content_creator_name": meta.content_creator_name}
    if opts.segments:
        from AdaptiveBrushDicomLib.io.segment_table import apply_segment_table

        labelmap = apply_segment_table(labelmap, opts.segments, allow_unmatched=opts.allow_unmatched,
                                       warnings=warnings)
    changes: dict[str, Any] = {}
    if opts.algorithm_type is not None:
        changes["algorithm_type"] = AlgorithmType(opts.algorithm_type)
    if opts.algorithm_name is not None:
        changes["algorithm_name"] = opts.algorithm_name
    if opts.algorithm_version is not None:
        changes["algorithm_version"] = opts.algorithm_version
    if changes:
        labelmap = LabelMap(labelmap.array, labelmap.grid, [replace(s, **changes) for s in labelmap.segments])
    if opts.content_creator is not None:
        series["content_creator_name"] = opts.content_creator
    return labelmap, series


def export_one(
    source: str | Path,
    reference: "ReferenceSeries",
    out: str | Path,
    opts: ExportOptions,
    *,
    series_description: str | None = None,
    series_number: int | None = None,
    warn: Callable[[str], None] | None = None,
) -> "WriteResult":
    """Read one segmentation, describe it with ``opts`` and write it as a SEG.

    Parameters
    ----------
    source : ``.seg.nrrd`` or label image (any grid on the reference lattice, see ``resample``).
    reference : the image series, read once by the caller.
    out : SEG file to write (its folder must exist).
    series_description, series_number : override ``opts`` (batch: stem and running number).

    Raises
    ------
    UserError
        Unreadable input, metadata not matching, output exists, grid mismatch, ...
    """
    from AdaptiveBrushDicomLib.dicom.seg.write import write_seg
    from AdaptiveBrushDicomLib.io.volumes import read_segmentation

    notes: list[str] = []
    labelmap, series = _describe(read_segmentation(source, max_labels=opts.max_labels), opts, notes)
    for note in notes:
        if warn:
            warn(note)
    description = series_description or opts.series_description or series.get("series_description")
    number = series_number or opts.series_number or series.get("series_number")
    return write_seg(
        labelmap, reference, out,
        compression=opts.compression,
        series_description=description or "Segmentation",
        series_number=number or DEFAULT_SERIES_NUMBER,
        content_creator_name=series.get("content_creator_name"),
        allow_binary=opts.allow_binary,
        resample=opts.resample,
        force=opts.force,
        source_name=str(source),
        warn=warn,
    )


# ---------------------------------------------------------------------- command
def _warn(msg: str) -> None:
    print(f"abdicom: warning: {msg}", file=sys.stderr)


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, sort_keys=True, default=str))
    else:
        print(text)


def _result_dict(res: "WriteResult") -> dict[str, Any]:
    return {
        "path": str(res.path), "sop_class_uid": res.sop_class_uid, "transfer_syntax_uid": res.transfer_syntax_uid,
        "series_instance_uid": res.series_instance_uid, "sop_instance_uid": res.sop_instance_uid,
        "frames": res.n_frames, "segments": res.n_segments, "bytes": res.size_bytes,
        "seconds": round(res.seconds, 4), "binary_fallback": res.binary_fallback, "warnings": res.warnings,
    }


def options_from_args(args: argparse.Namespace) -> ExportOptions:
    """:class:`ExportOptions` from the parsed ``export`` arguments."""
    from AdaptiveBrushDicomLib.dicom.compression import Compression

    Compression.parse(args.compression)  # refuse a bad name before reading anything
    return ExportOptions(
        compression=args.compression, series_description=args.series_description,
        series_number=args.series_number, metadata=args.metadata, segments=args.segments,
        algorithm_type=AlgorithmType(args.algorithm_type) if args.algorithm_type else None,
        algorithm_name=args.algorithm_name, algorithm_version=args.algorithm_version,
        content_creator=args.content_creator, allow_binary=args.allow_binary, resample=args.resample,
        force=args.force, max_labels=args.max_labels, allow_unmatched=args.allow_unmatched,
    )


def cmd_export(args: argparse.Namespace) -> int:
    """``abdicom export``: one SEG (``--out``) or a batch (``--out-dir``).

    Raises
    ------
    UserError
        Neither or both of ``--out`` / ``--out-dir``, several inputs with ``--out``, or a
        negative ``--series-number`` / ``--max-labels`` below 1.
    """
    if (args.out is None) == (args.out_dir is None):
        raise UserError("give either --out FILE (one segmentation) or --out-dir DIR (one SEG per input)")
    if args.series_number is not None and args.series_number < 0:
        raise UserError("--series-number must be 0 or more")
    if args.max_labels < 1:
        raise UserError("--max-labels must be 1 or more")
    opts = options_from_args(args)
    if args.out_dir is None:
        if len(args.segmentation) > 1:
            raise UserError(f"{len(args.segmentation)} segmentations but --out names one file; "
                            "use --out-dir DIR to export each into DIR/<name>.dcm")
        return _export_single(args, opts)
    return _export_many(args, opts)


def _export_single(args: argparse.Namespace, opts: ExportOptions) -> int:
    from AdaptiveBrushDicomLib.dicom.compression import Compression
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

    out = Path(args.out)
    if out.exists() and not args.force:
        raise OutputExistsError("output exists; choose another path or pass --force", out)
    if out.is_dir():
        raise UserError("--out must be a file name (.dcm), this is a folder; use --out-dir for a batch", out)
    reference = ReferenceSeries.from_folder(args.reference)
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder: {exc.strerror or exc}", out.parent) from None
    try:
        res = export_one(args.segmentation[0], reference, out, opts, warn=None if args.json else _warn)
    except BaseException:
        for p in made:  # innermost first: remove only the (empty) folders created here
            try:
                p.rmdir()
            except OSError:
                break
        raise
    kind = "BINARY (66.4)" if res.binary_fallback else "LABELMAP (66.7)"
    _emit(args, _result_dict(res),
          f"wrote {kind} SEG {res.path} ({res.size_bytes:,} bytes, {res.n_frames} frames, "
          f"{res.n_segments} segments, {Compression.parse(opts.compression).cli_name}) in {res.seconds:.2f} s\n"
          f"  SeriesInstanceUID {res.series_instance_uid}")
    return 0


def _export_many(args: argparse.Namespace, opts: ExportOptions) -> int:
    from AdaptiveBrushDicomLib.cli.export_batch import export_batch

    quiet = args.json or args.quiet

    def progress(done: int, total: int, src: Path, outcome: Any) -> None:
        if isinstance(outcome, str):
            print(f"abdicom: error: [{done}/{total}] {outcome}", file=sys.stderr, flush=True)
        elif not quiet:
            print(f"[{done}/{total}] {src.name} -> {outcome.path} ({outcome.seconds:.2f} s)",
                  file=sys.stderr, flush=True)

    report = export_batch(args.segmentation, args.reference, args.out_dir, opts, jobs=args.jobs,
                          progress=progress, warn=None if args.json else _warn)
    payload = {"out_dir": str(args.out_dir),
               "written": [{**_result_dict(r), "series_number": n}
                           for r, n in zip(report.results, report.series_numbers)],
               "failed": [{"path": p, "reason": r} for p, r in report.failed],
               "seconds": round(report.seconds, 3), "jobs": args.jobs}
    lines = [f"wrote {len(report.results)} of {len(report.results) + len(report.failed)} SEGs into "
             f"{args.out_dir} in {report.seconds:.2f} s ({args.jobs} job(s))"]
    lines += [f"  {r.path.name}  series #{n}  {r.series_instance_uid}"
              for r, n in zip(report.results, report.series_numbers)]
    lines += [f"  failed: {p}: {r}" for p, r in report.failed]
    _emit(args, payload, "\n".join(lines))
    return 0 if report.ok else EXIT_INCOMPLETE


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``export`` to the ``abdicom`` sub-command parsers; return its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "export", help="segmentations (.seg.nrrd or label images) -> DICOM SEG (one, or a batch with --out-dir)",
        description="Write each segmentation as a DICOM SEG referencing the image series in --reference. "
                    "One input: --out FILE. Several: --out-dir DIR writes DIR/<input name>.dcm each "
                    "(SeriesDescription = input name unless given, SeriesNumber increasing).")
    p.add_argument("segmentation", nargs="+", help=".seg.nrrd or label image (several with --out-dir)")
    p.add_argument("--reference", required=True, help="folder of the DICOM image series it refers to")
    p.add_argument("--out", help="SEG file to write (.dcm); its folder is created if missing")
    p.add_argument("--out-dir", help="folder for one SEG per input, named after the input (created)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes for a batch (default 1)")
    p.add_argument("--compression", default="default",
                   help="explicit, rle, jpeg2000, jpegls or deflate (default: deflate)")
    p.add_argument("--series-description", help="default: 'Segmentation'; in a batch, each input's name")
    p.add_argument("--series-number", type=int,
                   help=f"SeriesNumber (default {DEFAULT_SERIES_NUMBER}); in a batch, of the first SEG, "
                        "then +1 per input")
    p.add_argument("--algorithm-type", choices=[t.value for t in AlgorithmType], type=str.upper,
                   help="SegmentAlgorithmType of every segment (default SEMIAUTOMATIC, or the metadata's)")
    p.add_argument("--algorithm-name", help="algorithm name of every segment (e.g. watershed)")
    p.add_argument("--algorithm-version", help="algorithm version of every segment (e.g. 1.2)")
    p.add_argument("--content-creator", help="ContentCreatorName (person name, e.g. Doe^Jane)")
    p.add_argument("--metadata", help="dcmqi segmentation metadata JSON (names, codes, colours)")
    p.add_argument("--segments", help="segment table (CSV/TSV: label,name,color,terminology)")
    p.add_argument("--max-labels", type=int, default=1000,
                   help="refuse a label image with more distinct values than this as 'looks like an image' "
                        "(default 1000)")
    p.add_argument("--allow-unmatched", action="store_true",
                   help="accept --metadata/--segments naming labels the segmentation lacks (empty segments) or "
                        "missing some of its labels, with one warning, instead of refusing")
    p.add_argument("--allow-binary", action="store_true",
                   help="write a BINARY SEG (66.4) when segments overlap instead of refusing")
    p.add_argument("--resample", choices=["none", "nearest"], default="none",
                   help="resample a segmentation that is not on the reference lattice")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr (batch)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_export)
    return p

