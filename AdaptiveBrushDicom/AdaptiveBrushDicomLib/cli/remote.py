"""``abdicom push`` and ``abdicom remote ...``: PACS commands over DICOMweb or DIMSE.

``--dicomweb URL`` talks STOW-RS / QIDO-RS / WADO-RS (:mod:`~.store.dicomweb`);
``--dimse AET@HOST:PORT [--calling-aet AET]`` talks C-ECHO / C-STORE / C-FIND / C-GET
(:mod:`~.store.dimse`). Same reports and exit codes for both.

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


def _peer(args: argparse.Namespace) -> Any:
    """The DIMSE peer of ``--dimse`` (None for DICOMweb); DICOMweb-only options refused.

    Raises
    ------
    UserError
        ``--calling-aet`` without ``--dimse``, DICOMweb credentials with ``--dimse``, or a
        malformed ``AET@HOST:PORT``.
    """
    if not args.dimse:
        if args.calling_aet:
            raise UserError("--calling-aet goes with --dimse AET@HOST:PORT")
        return None
    if args.user or args.password_file or args.token_file:
        raise UserError("--user / --password-file / --token-file are for --dicomweb; a DIMSE peer "
                        "identifies us by --calling-aet")
    from AdaptiveBrushDicomLib.store.dimse import DimsePeer

    return DimsePeer.parse(args.dimse, args.calling_aet)


def _add_server(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--dicomweb", metavar="URL",
                       help="DICOMweb base URL, e.g. http://127.0.0.1:8042/dicom-web (Orthanc)")
    where.add_argument("--dimse", metavar="AET@HOST:PORT",
                       help="DIMSE peer (DICOM networking), e.g. ORTHANC@127.0.0.1:4242")
    p.add_argument("--calling-aet", metavar="AET",
                   help="our AE title for --dimse (default ABDICOM); the peer may need to know it")
    p.add_argument("--user", help="user name for HTTP basic authentication (with --password-file)")
    p.add_argument("--password-file", metavar="FILE", help="file whose first line is the password")
    p.add_argument("--token-file", metavar="FILE", help="file whose first line is a bearer token")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


# ------------------------------------------------------------------ push
def cmd_push(args: argparse.Namespace) -> int:
    """Handler of ``abdicom push`` (DICOMweb STOW-RS or DIMSE C-STORE); exit 1 when something was not stored.

    Raises
    ------
    UserError
        ``--batch-size`` or ``--retries`` below 1, or what the push itself refuses (see
        :func:`~AdaptiveBrushDicomLib.store.dicomweb.stow.push`).
    """
    from AdaptiveBrushDicomLib.store.dicomweb import RetryPolicy, push

    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.retries < 1:
        raise UserError("--retries must be at least 1")

    def progress(p: Any) -> None:
        if not args.json and not args.quiet and sys.stderr.isatty():
            print(f"\r{p.done}/{p.total} ({p.sent} sent, {p.skipped} skipped, {p.failed} failed)",
                  end="", file=sys.stderr, flush=True)

    peer = _peer(args)
    if peer is not None:
        from AdaptiveBrushDicomLib.store import dimse

        report = dimse.push(args.paths, peer, resume=not args.no_resume, progress=progress)
    else:
        report = push(args.paths, args.dicomweb, _auth(args), batch_size=args.batch_size,
                      retry=RetryPolicy(attempts=args.retries), resume=not args.no_resume, progress=progress)
    if not args.json and not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    _emit(args, report.to_dict(), report.to_text())
    return 0 if report.ok else EXIT_INCOMPLETE


# ------------------------------------------------------------------ remote segs-for
def cmd_segs_for(args: argparse.Namespace) -> int:
    """Handler of ``abdicom remote segs-for``: the SEG series on the server referencing an image series."""
    from AdaptiveBrushDicomLib.store.dicomweb import segs_for

    peer = _peer(args)
    if peer is not None:
        from AdaptiveBrushDicomLib.store import dimse

        segs = dimse.segs_for(args.series_uid, peer)
    else:
        segs = segs_for(args.series_uid, args.dicomweb, _auth(args))
    where = str(peer) if peer is not None else args.dicomweb
    payload = {"url": where, "series_instance_uid": args.series_uid,
               "segs": [s.to_dict() for s in segs]}
    if not segs:
        text = f"no SEG series on {where} reference series {args.series_uid}"
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
    """Handler of ``abdicom remote pull``: a series into ``--out`` as Part 10 files."""
    from AdaptiveBrushDicomLib.store.dicomweb import pull

    peer = _peer(args)
    if peer is not None:
        from AdaptiveBrushDicomLib.store import dimse

        report = dimse.pull(args.series_uid, args.out, peer, force=args.force)
    else:
        report = pull(args.series_uid, args.out, args.dicomweb, _auth(args), force=args.force)
    _emit(args, report.to_dict(), report.to_text())
    return 0


# ------------------------------------------------------------------ registration
def register(subparsers: Any) -> None:
    """Add ``push`` and ``remote {segs-for,pull}`` to the ``abdicom`` sub-command parsers."""
    p = subparsers.add_parser(
        "push", help="upload DICOM files/folders to a PACS (DICOMweb STOW-RS or DIMSE C-STORE, resumable)",
        description="Upload every DICOM file under PATH... with STOW-RS (--dicomweb) or C-STORE (--dimse, "
                    "after a C-ECHO; each file in its own transfer syntax, Explicit/Implicit VR Little "
                    "Endian as fallback). Instances the server already has are skipped (QIDO-RS / C-FIND "
                    "per series), so an interrupted push is resumed by running the same command again. "
                    "Exit 1 if something was not stored.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders (searched recursively)")
    _add_server(p)
    p.add_argument("--batch-size", type=int, default=16,
                   help="instances per STOW-RS request (default 16; DIMSE sends one per C-STORE)")
    p.add_argument("--retries", type=int, default=5,
                   help="attempts per request on transient errors, with exponential backoff (default 5)")
    p.add_argument("--no-resume", action="store_true",
                   help="send everything, without asking the server what it already has")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=cmd_push)

    r = subparsers.add_parser("remote", help="query / download from a PACS (DICOMweb QIDO-RS/WADO-RS or DIMSE C-FIND/C-GET)")
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
