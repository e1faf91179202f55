"""``abdicom``: the command line.

Every command accepts ``--json`` and then prints exactly one JSON object on stdout
(human-readable text otherwise), also on failure: ``{"error": ..., "file": ...}``. User
mistakes and bad files print one line on stderr and exit 2; nothing is written in that
case. Every command accepts ``--max-voxels`` (see :mod:`~.io.limits`). Heavy libraries are imported inside the handlers so
``abdicom info`` starts quickly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from AdaptiveBrushDicomLib import __version__
from AdaptiveBrushDicomLib.cli import compare as cli_compare
from AdaptiveBrushDicomLib.cli import db as cli_db
from AdaptiveBrushDicomLib.cli import export as cli_export
from AdaptiveBrushDicomLib.cli import migrate as cli_migrate
from AdaptiveBrushDicomLib.cli import remote as cli_remote
from AdaptiveBrushDicomLib.cli import runs as cli_runs
from AdaptiveBrushDicomLib.cli.startup import import_pydicom_without_requests
from AdaptiveBrushDicomLib.errors import EXIT_USAGE, UserError


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=None, sort_keys=True, default=str))
    else:
        print(text)


# ------------------------------------------------------------------ synth
def _series_grid(folder: Path, allow_missing_slices: bool) -> Any:
    """The irregular Grid of the DICOM series in ``folder`` (None when regular), after
    refusing a gap in its slice positions unless ``allow_missing_slices``
    (:mod:`~.dicom.slice_gaps`).

    Raises
    ------
    InputFileError
        A gap (a missing slice), or a folder that holds no single image series.
    """
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.slice_gaps import refuse_slice_gaps

    series = ReferenceSeries.from_folder(folder)
    if not allow_missing_slices:
        refuse_slice_gaps(series, folder)
    if series.grid.is_regular:
        return None
    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalWarningDisplay(False)  # its "non uniform sampling" lines: the grid says it
    return series.grid


def cmd_synth(args: argparse.Namespace) -> int:
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series, patient_id_for
    from AdaptiveBrushDicomLib.io.volumes import read_volume

    src = Path(args.volume)
    series_grid = None
    if src.is_dir():
        from AdaptiveBrushDicomLib.dicom.walker import check_dicom_folder

        check_dicom_folder(src)  # GDCM inflates on its own: refuse deflate bombs first
        series_grid = _series_grid(src, args.allow_missing_slices)
    array, grid = read_volume(src)
    if series_grid is not None and array.shape == series_grid.shape_kji:
        grid = series_grid  # GDCM spreads the slices evenly; the series' own positions keep the gap
    name = args.name or src.name.split(".")[0]
    patient_id = args.patient_id or patient_id_for(name)
    out = Path(args.out)
    res = create_synthetic_series(
        array, grid, out,
        patient_id=patient_id,
        modality=args.modality,
        study_description=args.study_description or name,
        series_description=args.series_description or name,
        force=args.force,
    )
    payload = {
        "folder": str(res.folder), "files": len(res.paths), "patient_id": res.patient_id,
        "study_instance_uid": res.study_instance_uid, "series_instance_uid": res.series_instance_uid,
        "frame_of_reference_uid": res.frame_of_reference_uid, "reused": res.reused,
        "rescale_slope": res.encoding.slope, "rescale_intercept": res.encoding.intercept,
        "max_abs_error": res.encoding.max_abs_error, "grid": grid.describe(),
    }
    state = "already present, unchanged" if res.reused else "written"
    lines = [f"{len(res.paths)} slices {state} in {res.folder}",
             f"  PatientID          {res.patient_id}",
             f"  StudyInstanceUID   {res.study_instance_uid}",
             f"  SeriesInstanceUID  {res.series_instance_uid}",
             f"  grid               {grid.describe()}"]
    lines += [f"  note: {n}" for n in res.notes]
    _emit(args, payload, "\n".join(lines))
    return 0


# ------------------------------------------------------------------ decode
def cmd_decode(args: argparse.Namespace) -> int:
    from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
    from AdaptiveBrushDicomLib.io.volumes import OutputFormat, write_segmentation

    out = Path(args.out)
    fmt = OutputFormat.for_path(out)  # refuses other extensions before anything is read
    outputs = [out] + ([Path(args.metadata_out)] if args.metadata_out else [])
    if args.metadata_out and Path(args.metadata_out).resolve() == out.resolve():
        raise UserError("--metadata-out must differ from --out", out)
    for path in outputs:
        if path.exists() and not args.force:
            raise UserError("output exists; choose another path or pass --force", path)
        if not path.parent.is_dir():
            raise UserError("output folder does not exist; create it first", path.parent)
    decoded = read_seg(args.seg, reference=args.reference)
    lm = decoded.labelmap
    if args.metadata_out and lm.n_layers > 1:
        raise UserError(
            f"segments overlap ({lm.n_layers} layers): a dcmqi metadata JSON describes one label image; "
            "decode without --metadata-out", args.metadata_out)
    write_segmentation(lm, out)
    if args.metadata_out:
        from AdaptiveBrushDicomLib.io.dcmqi_metadata import SeriesMetadata, write_dcmqi_metadata

        write_dcmqi_metadata(lm.segments, args.metadata_out, SeriesMetadata.from_dataset(decoded.dataset))
    payload = {
        "path": str(out), "format": fmt.value, "metadata_path": args.metadata_out,
        "sop_class_uid": decoded.sop_class_uid, "segments": [s.name for s in lm.segments],
        "labels": [s.label for s in lm.segments], "layers": lm.n_layers, "shape_kji": list(lm.grid.shape_kji),
        "notes": decoded.notes, "seconds": round(decoded.seconds, 4),
    }
    lines = [f"wrote {out}: {len(lm.segments)} segments, {lm.n_layers} layer(s), grid {lm.grid.describe()}"]
    if args.metadata_out:
        lines.append(f"wrote {args.metadata_out}: dcmqi segmentation metadata (labelID = pixel value)")
    lines += [f"  note: {n}" for n in decoded.notes]
    _emit(args, payload, "\n".join(lines))
    return 0


# ------------------------------------------------------------------ info
def cmd_info(args: argparse.Namespace) -> int:
    from AdaptiveBrushDicomLib.dicom.seg.info import seg_info

    info = seg_info(args.seg)
    if not args.no_voxels:
        from AdaptiveBrushDicomLib.analysis.volumes import segment_volumes

        sizes = {v.number: v for v in segment_volumes(args.seg)}
        for s in info.segments:
            if s.number in sizes:
                s.voxels, s.volume_ml = sizes[s.number].voxels, sizes[s.number].volume_ml
    _emit(args, info.to_dict(), info.to_text())
    return 0


# ------------------------------------------------------------------ parser
def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


class _UsageError(UserError):
    """A command-line usage mistake (argparse's), raised instead of exiting."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`_UsageError` (so ``--json`` can answer in JSON)."""

    def error(self, message: str) -> Any:
        raise _UsageError(f"{message} (usage: {' '.join(self.format_usage().split()[1:])})")


def _add_limits(parser: argparse.ArgumentParser) -> None:
    """``--max-voxels`` on every command that takes no further subcommand."""
    from AdaptiveBrushDicomLib.io.limits import DEFAULT_MAX_VOXELS

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if subs:
        for child in {id(p): p for p in subs[0].choices.values()}.values():
            _add_limits(child)
        return
    parser.add_argument(
        "--max-voxels", type=int, default=None, metavar="N",
        help=f"refuse images and SEGs whose header implies more than N voxels (default {DEFAULT_MAX_VOXELS:,}); "
             "inflating and decoding are capped by it")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="abdicom",
        description="Segmentation results as DICOM SEG (LABELMAP, Supplement 243).",
    )
    parser.add_argument("--version", action="version", version=f"abdicom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("synth", help="image volume -> synthetic DICOM series")
    p.add_argument("volume", help="image file (.nrrd, .nii[.gz], .mha, ...) or DICOM folder")
    p.add_argument("--out", required=True, help="folder to write 0001.dcm, 0002.dcm, ... into")
    p.add_argument("--name", help="sample name (default: file name without extension)")
    p.add_argument("--patient-id", help="PatientID (default: AdaptiveBrush_<name>)")
    p.add_argument("--modality", default="MR", help="MR, CT, PT or OT (default MR)")
    p.add_argument("--study-description")
    p.add_argument("--series-description")
    p.add_argument("--force", action="store_true", help="replace a different series in --out")
    p.add_argument("--allow-missing-slices", action="store_true",
                   help="a DICOM folder whose slice positions have a gap (a missing slice) is refused; with this, "
                        "its slices are written at their own positions, the gap kept")
    _add_json(p)
    p.set_defaults(func=cmd_synth)

    cli_export.register(sub)

    p = sub.add_parser("decode", help="DICOM SEG -> Slicer .seg.nrrd or label image")
    p.add_argument("seg")
    p.add_argument("--out", required=True,
                   help="file to write; the extension chooses the format: .seg.nrrd (Slicer segmentation) or "
                        ".nrrd, .nii, .nii.gz, .mha (label image, pixel = original label value)")
    p.add_argument("--metadata-out",
                   help="also write a dcmqi metadata JSON (names, codes, colours; labelID = pixel value) here")
    p.add_argument("--reference", help="folder of the referenced image series (gives the full grid)")
    p.add_argument("--force", action="store_true")
    _add_json(p)
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("info", help="summary of a DICOM SEG (segments with voxels and volume in mL)")
    p.add_argument("seg")
    p.add_argument("--no-voxels", action="store_true",
                   help="header only: do not decode the pixel data to count voxels (faster)")
    _add_json(p)
    p.set_defaults(func=cmd_info)

    cli_migrate.register(sub)
    cli_compare.register(sub)
    cli_runs.register(sub)
    cli_db.register(sub)
    cli_remote.register(sub)
    _add_limits(parser)
    return parser


def _fail(exc: UserError, as_json: bool) -> int:
    """One line on stderr; with ``--json`` also ``{"error": ..., "file": ...}`` on stdout. Exit 2."""
    print(" ".join(f"abdicom: error: {exc}".split()), file=sys.stderr)  # one line, whatever a library said
    if as_json:
        print(json.dumps({"error": " ".join(exc.message.split()), "file": exc.path}, sort_keys=True))
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    from AdaptiveBrushDicomLib.io import limits

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(exc, "--json" in argv)
    if getattr(args, "func", None) not in (cmd_info, cmd_decode):  # these read SEGs without pydicom
        import_pydicom_without_requests()
    if getattr(args, "max_voxels", None) is not None and args.max_voxels <= 0:
        return _fail(_UsageError("--max-voxels must be a positive number of voxels"), getattr(args, "json", False))
    limits.set_max_voxels(getattr(args, "max_voxels", None))
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        return _fail(exc, getattr(args, "json", False))
    except KeyboardInterrupt:
        print("abdicom: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into e.g. `head`, which stopped reading: not an error of ours
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
