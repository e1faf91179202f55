"""``abdicom push`` and ``abdicom remote ...``: DICOMweb (PACS) commands.

Registered by ``cli.build_parser`` through :func:`register`. Handlers return exit codes:
0 success, 1 when a push left instances behind (run it again to resume); user mistakes
(bad URL, refused credentials, unknown UID) raise :class:`~.errors.UserError`, which the
CLI prints on one line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from AdaptiveBrushDicomLib.errors import UserError

#: Exit code when a push did not store every instance.
EXIT_INCOMPLETE = 1


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, sort_keys=True, default=str))
    else:
        print(text)


def _auth(args: argparse.Namespace) -> Any:
    from AdaptiveBrushDicomLib.store.dicomweb import Auth

    return Auth.from_files(args.user, args.password_file, args.token_file)


def _add_server(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dicomweb", required=True, metavar="URL",
                   help="DICOMweb base URL, e.g. http://127.0.0.1:8042/dicom-web (Orthanc)")
    p.add_argument("--user", help="user name for HTTP basic authentication (with --password-file)")
    p.add_argument("--password-file", metavar="FILE", help="file whose first line is the password")
    p.add_argument("--token-file", metavar="FILE", help="file whose first line is a bearer token")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


# ------------------------------------------------------------------ push
def cmd_push(args: argparse.Namespace) -> int:
    from AdaptiveBrushDicomLib.store.dicomweb import RetryPolicy, push

    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.retries < 1:
        raise UserError("--retries must be at least 1")

    def progress(p: Any) -> None:
        if not args.json and not args.quiet and sys.stderr.isatty():
            print(f"\r{p.done}/{p.total} ({p.sent} sent, {p.skipped} skipped, {p.failed} failed)",
                  end="", file=sys.stderr, flush=True)

    report = push(args.paths, args.dicomweb, _auth(args), batch_size=args.batch_size,
                  retry=RetryPolicy(attempts=args.retries), resume=not args.no_resume, progress=progress)
    if not args.json and not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    _emit(args, report.to_dict(), report.to_text())
    return 0 if report.ok else EXIT_INCOMPLETE


# ------------------------------------------------------------------ remote segs-for
def cmd_segs_for(args: argparse.Namespace) -> int:
    from AdaptiveBrushDicomLib.store.dicomweb import segs_for

    segs = segs_for(args.series_uid, args.dicomweb, _auth(args))
    payload = {"url": args.dicomweb, "series_instance_uid": args.series_uid,
               "segs": [s.to_dict() for s in segs]}
    if not segs:
        text = f"no SEG series on {args.dicomweb} reference series {args.series_uid}"
    else:
        lines = [f"{len(segs)} SEG series reference {args.series_uid}:"]
        for s in segs:
            kind = s.kind + (f" {s.trial_number}" if s.trial_number is not None else "")
            lab = "LABELMAP" if s.is_labelmap else s.sop_class_uid
            lines.append(f"  {s.series_instance_uid}  {s.series_description or '(no description)'}  [{kind}, {lab}]")
            lines.append(f"      segments: {', '.join(s.segment_labels) or '(none)'}")
        text = "\n".join(lines)
    _emit(args, payload, text)
    return 0


# ------------------------------------------------------------------ remote pull
def cmd_pull(args: argparse.Namespace) -> int:
    from AdaptiveBrushDicomLib.store.dicomweb import pull

    report = pull(args.series_uid, args.out, args.dicomweb, _auth(args), force=args.force)
    _emit(args, report.to_dict(), report.to_text())
    return 0


# ------------------------------------------------------------------ registration
def register(subparsers: Any) -> None:
    """Add ``push`` and ``remote {segs-for,pull}`` to the ``abdicom`` sub-command parsers."""
    p = subparsers.add_parser(
        "push", help="upload DICOM files/folders to a DICOMweb server (STOW-RS, resumable)",
        description="Upload every DICOM file under PATH... with STOW-RS. Instances the server already "
                    "has are skipped (QIDO-RS per series), so an interrupted push is resumed by running "
                    "the same command again. Exit 1 if something was not stored.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders (searched recursively)")
    _add_server(p)
    p.add_argument("--batch-size", type=int, default=16, help="instances per STOW-RS request (default 16)")
    p.add_argument("--retries", type=int, default=5,
                   help="attempts per request on transient errors, with exponential backoff (default 5)")
    p.add_argument("--no-resume", action="store_true",
                   help="send everything, without asking the server what it already has")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=cmd_push)

    r = subparsers.add_parser("remote", help="query / download from a DICOMweb server (QIDO-RS, WADO-RS)")
    rsub = r.add_subparsers(dest="remote_command", metavar="REMOTE_COMMAND")
    rsub.required = True

    p = rsub.add_parser("segs-for", help="SEG series that reference an image series")
    p.add_argument("series_uid", metavar="SERIES_UID", help="SeriesInstanceUID of the image (volume) series")
    _add_server(p)
    p.set_defaults(func=cmd_segs_for)

    p = rsub.add_parser("pull", help="download a series as Part 10 files (as stored, byte for byte)")
    p.add_argument("series_uid", metavar="SERIES_UID")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write <SOPInstanceUID>.dcm files into")
    p.add_argument("--force", action="store_true", help="overwrite different files with the same names")
    _add_server(p)
    p.set_defaults(func=cmd_pull)
