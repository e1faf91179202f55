"""``abdicom migrate``: legacy optimization runs and gold standards -> DICOM.

Registered by :func:`AdaptiveBrushDicomLib.cli.main.build_parser` when this module exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

#: Exit code when some folder or trial failed (user mistakes raise UserError -> 2).
EXIT_FAILED = 1


def cmd_migrate(args: argparse.Namespace) -> int:
    """Handler of ``abdicom migrate``; returns the exit code (0 ok, 1 something failed).

    Raises
    ------
    UserError
        A bad option (``--jobs`` not a positive number or ``auto``) or nothing to migrate
        (from :func:`~AdaptiveBrushDicomLib.runs.migrate.migrate_paths`).
    """
    from AdaptiveBrushDicomLib.runs.migrate import migrate_paths
    from AdaptiveBrushDicomLib.runs.parallel import parse_jobs

    jobs = parse_jobs(args.jobs)
    summary = migrate_paths(
        args.paths,
        volume=args.volume,
        volumes_dir=args.volumes_dir,
        compression=args.compression,
        jobs=jobs,
        dry_run=args.dry_run,
        progress=not args.quiet,
        modality=args.modality,
        patient_id=args.patient_id,
        resample=args.resample,
    )
    if args.json:
        print(json.dumps(summary.to_dict(), sort_keys=True, default=str))
    else:
        print(summary.to_text())
    return summary.exit_code


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``migrate`` command to ``abdicom``'s subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "migrate",
        help="legacy optimization runs / gold standards -> DICOM (volume series + LABELMAP SEG per trial)",
        description=(
            "Convert optimization runs (results.json + segmentations/*.seg.nrrd) and gold standards "
            "(gold.seg.nrrd + metadata.json) to DICOM in place: dicom/volume/ (the original files of a DICOM "
            "source, renamed 0001.dcm... in slice order; a synthetic series for any other image), "
            "dicom/segmentations/trial_NNN.dcm or dicom/gold.dcm, migration_report.json/.md, and the DICOM UIDs "
            "added to results.json / metadata.json. Originals are never modified; re-running migrates new trials, "
            "re-checks changed ones (never replacing a SEG), resumes an interrupted migration and changes nothing "
            "on a migrated folder, wherever it was moved. Exit code 0: all migrated; 1: some folder or item "
            "failed or changed (see the report); 2: bad usage or no source image for any folder."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a run folder, a folder of runs, a gold standard folder, or a GoldStandards folder")
    p.add_argument("--volume", metavar="FILE",
                   help="the source image (file or DICOM folder) the segmentations were made on; with "
                        "--volumes-dir: for folders whose sample is not found there or that name none")
    p.add_argument("--volumes-dir", metavar="DIR",
                   help="folder with source images named after the sample (e.g. DIR/MRBrainTumor1.nrrd, "
                        ".nii.gz, .mha, or a DIR/MRBrainTumor1/ DICOM folder)")
    p.add_argument("--modality", default="MR",
                   help="Modality of a synthetic series (non-DICOM sources only): MR, CT, PT or OT (default MR)")
    p.add_argument("--patient-id", metavar="ID",
                   help="PatientID of a synthetic series (non-DICOM sources only; default: patient_id / "
                        "idc_patient of the run or gold metadata, else AdaptiveBrush_<sample>)")
    p.add_argument("--resample", choices=["none", "nearest"], default="none",
                   help="resample segmentations that are not on the source image's voxel lattice (nearest "
                        "neighbour; default: refuse them)")
    p.add_argument("--compression", default="default",
                   help="SEG transfer syntax: explicit, rle, jpeg2000, jpegls or deflate (default: deflate)")
    p.add_argument("--jobs", default="auto", metavar="N",
                   help="worker processes for trials: a number, or auto (default: one per CPU, at most one per "
                        "trial, within the memory available); the output does not depend on it")
    p.add_argument("--dry-run", action="store_true", help="check everything and report, write nothing")
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_migrate)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``abdicom migrate ARGS`` (used by scripts/migrate_to_dicom.py)."""
    from AdaptiveBrushDicomLib.cli.main import main as cli_main

    return cli_main(["migrate", *(sys.argv[1:] if argv is None else argv)])
