"""WADO-RS retrieve of a series' instances as Part 10 files, asking for the original transfer
syntax (``transfer-syntax=*``) so a Deflated SEG comes back byte for byte."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.store.dicomweb.auth import Auth
from AdaptiveBrushDicomLib.store.dicomweb.connection import DicomWebConnection, RetryPolicy, _value
from AdaptiveBrushDicomLib.store.pull_files import PullReport, store_pulled


def pull(
    series_uid: str,
    out_dir: str | Path,
    url: str,
    auth: "Auth | tuple[str, str] | None" = None,
    *,
    study_uid: str | None = None,
    force: bool = False,
    retry: RetryPolicy | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PullReport:
    """Download a series with WADO-RS and write its instances as Part 10 files.

    Parameters
    ----------
    series_uid : SeriesInstanceUID to retrieve.
    out_dir : folder (created); files are named ``<SOPInstanceUID>.dcm``.
    url, auth : the DICOMweb server.
    study_uid : its StudyInstanceUID if known (saves one QIDO-RS query).
    force : overwrite files in ``out_dir`` whose bytes differ from the server's.
    progress : called with (done, total) after each instance.

    Notes
    -----
    Each instance is requested as stored (``transfer-syntax=*``); Orthanc then returns the
    pushed bytes exactly. Files already present with the same bytes are left alone, so a
    pull can be repeated or resumed. Writes are atomic (temporary name + rename).

    Raises
    ------
    UnknownUIDError
        The series is not on the server.
    OutputExistsError
        A different file with the same name exists and ``force`` is not given.
    UserError
        The output folder cannot be created.
    """

    t0 = time.perf_counter()
    conn = DicomWebConnection(url, auth, retry=retry)
    if study_uid is None:
        study_uid = _value(conn.study_of_series(series_uid), "0020000D")
    rows = conn.search_instances(study_uid, series_uid, fields=["SOPInstanceUID", "InstanceNumber"])
    if not rows:
        from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError

        raise UnknownUIDError(f"{conn.url}: series {series_uid} has no instances on the server")
    rows.sort(key=lambda r: (_int(_value(r, "00200013")), _value(r, "00080018")))
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder: {exc.strerror or exc}", out) from None
    report = PullReport(series_uid, study_uid, out)
    for n, row in enumerate(rows, start=1):
        sop = _value(row, "00080018")
        blob, original = conn.retrieve_instance_bytes(study_uid, series_uid, sop)
        if not original:
            report.transcoded.append(sop)
        if blob[128:132] != b"DICM":
            blob = _to_part10(blob)
        store_pulled(out / f"{sop}.dcm", blob, report, force=force)
        if progress:
            progress(n, len(rows))
    report.seconds = time.perf_counter() - t0
    return report


def _to_part10(blob: bytes) -> bytes:
    """A dataset sent without preamble / file meta: add them (pydicom)."""
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(blob), force=True)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _int(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0
