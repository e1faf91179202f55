"""Push, query and pull runs on a DICOMweb server (PACS such as Orthanc, dcm4chee, Google
Healthcare, ...).

* :func:`push` -- STOW-RS upload of the DICOM files of folders (a run's ``dicom/volume`` and
  ``dicom/segmentations``, or any folder), in batches, with retries and backoff on
  transient errors, and *resume*: before sending a series, a QIDO-RS query lists the
  SOPInstanceUIDs the server already has and those instances are skipped.
* :func:`segs_for` -- the SEG series (Modality SEG) in the study of an image series whose
  ReferencedSeriesSequence names that series (QIDO-RS + WADO-RS series metadata).
* :func:`pull` -- WADO-RS retrieve of a series' instances, written as Part 10 files. The
  original transfer syntax is asked for (``transfer-syntax=*``) so a Deflated SEG comes back
  byte for byte as it was pushed.
* :class:`DicomWebDatabase` -- the read side of the :class:`~.database.DicomDatabase`
  protocol answered by a DICOMweb server.

QIDO-RS and WADO-RS metadata go through ``dicomweb-client`` (optional dependency, extra
``remote``; imported lazily). STOW-RS and instance retrieval are sent with the same
``requests`` session but encoded / decoded here, because ``dicomweb-client`` re-encodes
datasets (it would inflate a Deflated SEG and rewrite its bytes) on both paths.

Authentication: HTTP basic (user + password read from a file) or a bearer token read from
a file, see :class:`Auth`. A refused login raises :class:`AuthError`, a
:class:`~.errors.UserError`, so the command line prints one line instead of a traceback.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence
from urllib.parse import urlsplit

from AdaptiveBrushDicomLib.io.atomic import atomic_output
from AdaptiveBrushDicomLib.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    import requests

    from AdaptiveBrushDicomLib.store.database import (
        ImportReport,
        RemoveReport,
        SegSeriesInfo,
        SeriesInfo,
        StudyInfo,
        VerifyReport,
    )

#: Modality of segmentation series.
SEG_MODALITY = "SEG"
#: HTTP statuses worth retrying (the server may recover).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Media type asking a WADO-RS server for the instance as stored (no transcoding).
ORIGINAL_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
#: Plain Part 10 request (the server picks the transfer syntax; Orthanc: Explicit VR LE).
ANY_DICOM = 'multipart/related; type="application/dicom"'


# ---------------------------------------------------------------------- errors
class RemoteError(UserError):
    """A DICOMweb server could not do what was asked; the message names the URL."""


class AuthError(RemoteError):
    """The server refused the credentials (HTTP 401 / 403)."""


class ServerUnreachableError(RemoteError):
    """No connection to the server (refused, reset, timed out) even after retries."""


class _Transient(Exception):
    """Internal: a failure worth retrying."""

    def __init__(self, reason: str, connection: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.connection = connection


def _require_dicomweb_client() -> Any:
    try:
        import dicomweb_client  # noqa: F401
        import requests  # noqa: F401
    except ImportError:
        raise UserError(
            "remote commands need the 'dicomweb-client' package; install it with "
            "pip install 'AdaptiveBrushDicom[remote]' (or pip install dicomweb-client)"
        ) from None
    import dicomweb_client

    return dicomweb_client


# ---------------------------------------------------------------------- auth
@dataclass(frozen=True)
class Auth:
    """Credentials for a DICOMweb server.

    Attributes
    ----------
    user, password : str or None
        HTTP basic authentication.
    token : str or None
        Bearer token (``Authorization: Bearer <token>``); exclusive with basic.
    source : str
        Where the secret came from (a file name), for messages; never the secret itself.
    """

    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    source: str = ""

    @classmethod
    def from_files(
        cls,
        user: str | None = None,
        password_file: str | Path | None = None,
        token_file: str | Path | None = None,
    ) -> "Auth | None":
        """Read credentials: ``user`` + ``password_file``, or ``token_file``, or nothing.

        The secret is the first line of the file (trailing newline removed).

        Raises
        ------
        UserError
            Both kinds given, a user without password file (or the reverse), or an
            unreadable / empty file.
        """
        if token_file and (user or password_file):
            raise UserError("give either --user with --password-file, or --token-file, not both")
        if token_file:
            return cls(token=_read_secret(token_file, "token"), source=str(token_file))
        if bool(user) != bool(password_file):
            raise UserError("--user and --password-file go together; give both (or use --token-file)")
        if user:
            return cls(user=user, password=_read_secret(password_file, "password"), source=str(password_file))
        return None

    def describe(self) -> str:
        """``user 'x' (password from F)`` / ``bearer token from F`` / ``no credentials``."""
        if self.token is not None:
            return f"bearer token from {self.source}" if self.source else "bearer token"
        if self.user is not None:
            return f"user '{self.user}'" + (f" (password from {self.source})" if self.source else "")
        return "no credentials"

    def apply(self, session: "requests.Session") -> None:
        """Configure a ``requests`` session with these credentials."""
        if self.token is not None:
            session.headers["Authorization"] = f"Bearer {self.token}"
        elif self.user is not None:
            session.auth = (self.user, self.password or "")


def _read_secret(path: str | Path | None, what: str) -> str:
    p = Path(str(path))
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read the {what} file: {exc.strerror or exc}; check the path", p) from None
    lines = text.splitlines()
    secret = lines[0].strip("\r\n") if lines else ""
    if not secret:
        raise UserError(f"the {what} file is empty; put the {what} on its first line", p)
    return secret


def _as_auth(auth: "Auth | tuple[str, str] | None") -> Auth | None:
    if auth is None or isinstance(auth, Auth):
        return auth
    user, password = auth
    return Auth(user=user, password=password)


# ---------------------------------------------------------------------- retries
@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff for transient failures.

    Transient: connection refused / reset / timed out, HTTP 408, 429, 5xx. A request is
    tried at most ``attempts`` times; the waits are ``backoff``, ``backoff * factor``, ...
    seconds, each capped at ``max_delay``.
    """

    attempts: int = 5
    backoff: float = 0.5
    factor: float = 2.0
    max_delay: float = 8.0

    def delays(self) -> list[float]:
        return [min(self.backoff * self.factor**n, self.max_delay) for n in range(max(self.attempts - 1, 0))]


# ---------------------------------------------------------------------- connection
class DicomWebConnection:
    """One DICOMweb server: a ``requests`` session with credentials, retries and error
    messages that name the URL.

    Parameters
    ----------
    url : base URL of the DICOMweb service, e.g. ``http://127.0.0.1:8042/dicom-web``.
    auth : :class:`Auth`, ``(user, password)`` or None.
    retry : :class:`RetryPolicy`.
    timeout : seconds per HTTP request.
    """

    def __init__(
        self,
        url: str,
        auth: "Auth | tuple[str, str] | None" = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 120.0,
    ) -> None:
        dwc = _require_dicomweb_client()
        import requests

        self.url = _check_url(url)
        self.auth = _as_auth(auth)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.session = requests.Session()
        if self.auth is not None:
            self.auth.apply(self.session)
        self.client = dwc.DICOMwebClient(self.url, session=self.session, timeout=timeout)
        # our own retry loop also covers connection errors; avoid retries inside retries
        self.client.set_http_retry_params(retry=False)
        self.retries_used = 0

    # -------------------------------------------------------------- error mapping
    def _http_error(self, status: int, what: str, body: str = "") -> UserError:
        if status in (401, 403):
            if self.auth is None:
                return AuthError(
                    f"{self.url}: the server requires authentication (HTTP {status}) for {what}; "
                    "pass --user with --password-file, or --token-file"
                )
            return AuthError(
                f"{self.url}: the server refused the credentials (HTTP {status}, {self.auth.describe()}) "
                f"for {what}; check the user name and the password / token file"
            )
        if status == 404:
            return RemoteError(f"{self.url}: not found (HTTP 404) for {what}; is this the DICOMweb root URL "
                               "(e.g. http://host:8042/dicom-web for Orthanc)?")
        detail = f": {body.strip()[:200]}" if body.strip() else ""
        return RemoteError(f"{self.url}: HTTP {status} for {what}{detail}")

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` (one HTTP exchange) with retries; map failures to user errors.

        ``fn`` returns a value, or raises ``requests`` exceptions / :class:`_Transient`.
        """
        import requests

        delays = self.retry.delays()
        attempt = 0
        while True:
            try:
                try:
                    return fn()
                except requests.HTTPError as exc:  # from dicomweb-client's raise_for_status
                    resp = exc.response
                    status = resp.status_code if resp is not None else 0
                    if status in RETRY_STATUSES:
                        raise _Transient(f"HTTP {status}", connection=False) from None
                    raise self._http_error(status, what, resp.text if resp is not None else "") from None
                except (requests.ConnectionError, requests.Timeout) as exc:
                    raise _Transient(_connection_reason(exc), connection=True) from None
            except _Transient as exc:
                if attempt >= len(delays):
                    if exc.connection:
                        raise ServerUnreachableError(
                            f"{self.url}: cannot reach the server for {what} ({exc.reason}) after "
                            f"{attempt + 1} attempts; check that it is running and the URL is right"
                        ) from None
                    raise RemoteError(
                        f"{self.url}: the server kept failing for {what} ({exc.reason}) after {attempt + 1} attempts"
                    ) from None
                time.sleep(delays[attempt])
                attempt += 1
                self.retries_used += 1

    def _request(self, method: str, url: str, what: str, **kwargs: Any) -> "requests.Response":
        """One raw request through the session (with retries); non-2xx -> errors."""

        def once() -> "requests.Response":
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
            if resp.status_code in RETRY_STATUSES:
                raise _Transient(f"HTTP {resp.status_code}", connection=False)
            if resp.status_code >= 400 and resp.status_code != 409:
                raise self._http_error(resp.status_code, what, resp.text)
            return resp

        return self.call(what, once)

    # -------------------------------------------------------------- QIDO / metadata
    def search_series(self, study_uid: str | None = None, filters: dict[str, Any] | None = None,
                      fields: Sequence[str] = ()) -> list[dict[str, Any]]:
        """QIDO-RS series query (``/series`` or ``/studies/{uid}/series``)."""
        what = f"QIDO-RS series query {filters or {}}"
        return self.call(what, lambda: self.client.search_for_series(
            study_instance_uid=study_uid, search_filters=filters or None, fields=list(fields) or None,
            get_remaining=True))

    def search_studies(self, filters: dict[str, Any] | None = None,
                       fields: Sequence[str] = ()) -> list[dict[str, Any]]:
        return self.call("QIDO-RS study query", lambda: self.client.search_for_studies(
            search_filters=filters or None, fields=list(fields) or None, get_remaining=True))

    def search_instances(self, study_uid: str | None = None, series_uid: str | None = None,
                         filters: dict[str, Any] | None = None,
                         fields: Sequence[str] = ()) -> list[dict[str, Any]]:
        what = f"QIDO-RS instance query (series {series_uid})" if series_uid else "QIDO-RS instance query"

        def once() -> list[dict[str, Any]]:
            import requests

            try:
                return self.client.search_for_instances(
                    study_instance_uid=study_uid, series_instance_uid=series_uid,
                    search_filters=filters or None, fields=list(fields) or None, get_remaining=True)
            except requests.HTTPError as exc:
                if exc.response is not None and exc.response.status_code == 404:
                    return []  # unknown study/series: nothing there yet
                raise

        return self.call(what, once)

    def series_metadata(self, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
        """WADO-RS metadata of every instance of a series (DICOM JSON)."""
        return self.call(f"WADO-RS metadata of series {series_uid}",
                         lambda: self.client.retrieve_series_metadata(study_uid, series_uid))

    def study_of_series(self, series_uid: str) -> dict[str, Any]:
        """QIDO-RS attributes of one series (incl. StudyInstanceUID); UnknownUIDError if absent."""
        from AdaptiveBrushDicomLib.store.database import UnknownUIDError

        found = self.search_series(filters={"SeriesInstanceUID": series_uid},
                                   fields=["StudyInstanceUID", "StudyDescription"])
        found = [f for f in found if _value(f, "0020000E") == series_uid]
        if not found:
            raise UnknownUIDError(f"{self.url}: series {series_uid} is not on the server; push it first "
                                  "(abdicom push) or check the UID")
        return found[0]

    def sop_uids_of_series(self, study_uid: str, series_uid: str) -> set[str]:
        """SOPInstanceUIDs the server holds for a series (empty if the series is unknown)."""
        rows = self.search_instances(study_uid, series_uid, fields=["SOPInstanceUID"])
        return {u for u in (_value(r, "00080018") for r in rows) if u}

    # -------------------------------------------------------------- STOW / WADO
    def stow(self, blobs: Sequence[bytes], what: str) -> "_StowOutcome":
        """STOW-RS one multipart request with the given Part 10 files (bytes as they are)."""
        boundary = f"abdicom-{uuid.uuid4().hex}"
        body = bytearray()
        for blob in blobs:
            body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            body += blob
            body += b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        }
        resp = self._request("POST", f"{self.url}/studies", what, data=bytes(body), headers=headers)
        return _parse_stow_response(resp)

    def retrieve_instance_bytes(self, study_uid: str, series_uid: str, sop_uid: str) -> tuple[bytes, bool]:
        """WADO-RS one instance as Part 10 bytes; (bytes, original) where ``original`` is
        False when the server refused ``transfer-syntax=*`` and sent a transcoded copy."""
        url = f"{self.url}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
        what = f"WADO-RS retrieve of instance {sop_uid}"
        try:
            resp = self._request("GET", url, what, headers={"Accept": ORIGINAL_DICOM})
            if resp.status_code < 300:
                return _single_part(resp, what, self.url), True
        except (AuthError, ServerUnreachableError):
            raise
        except RemoteError:
            pass  # e.g. 406 Not Acceptable: the server cannot send the stored syntax
        resp = self._request("GET", url, what, headers={"Accept": ANY_DICOM})
        return _single_part(resp, what, self.url), False


@dataclass
class _StowOutcome:
    stored: set[str]
    failed: dict[str, str]
    status: int


def _parse_stow_response(resp: "requests.Response") -> _StowOutcome:
    """ReferencedSOPSequence (0008,1199) = stored, FailedSOPSequence (0008,1198) = failed."""
    stored: set[str] = set()
    failed: dict[str, str] = {}
    try:
        payload = resp.json() if resp.content else {}
    except ValueError:
        payload = {}
    if isinstance(payload, list):
        payload = payload[0] if payload else {}
    for item in (payload.get("00081199", {}) or {}).get("Value", []) or []:
        uid = _value(item, "00081155")
        if uid:
            stored.add(uid)
    for item in (payload.get("00081198", {}) or {}).get("Value", []) or []:
        uid = _value(item, "00081155")
        reason = _value(item, "00081197")
        if uid:
            failed[uid] = f"server refused it (FailureReason {reason})" if reason else "server refused it"
    return _StowOutcome(stored, failed, resp.status_code)


def _single_part(resp: "requests.Response", what: str, url: str) -> bytes:
    parts = split_multipart(resp.content, resp.headers.get("Content-Type", ""))
    if len(parts) != 1:
        raise RemoteError(f"{url}: expected one DICOM object for {what}, got {len(parts)}")
    return parts[0]


def split_multipart(body: bytes, content_type: str) -> list[bytes]:
    """Bodies of a ``multipart/related`` message (RFC 2046), headers removed.

    A response that is not multipart is returned as one part.
    """
    boundary = None
    for piece in content_type.split(";"):
        key, _, value = piece.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        return [body]
    delim = b"--" + boundary.encode()
    out = []
    for chunk in body.split(delim)[1:]:
        if chunk.startswith(b"--"):
            break  # closing delimiter
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        out.append(content)
    return out


def _connection_reason(exc: Exception) -> str:
    text = str(exc)
    for key, reason in (("Connection refused", "connection refused"), ("reset", "connection reset"),
                        ("RemoteDisconnected", "connection closed by the server"),
                        ("timed out", "timed out"), ("Name or service not known", "unknown host")):
        if key in text:
            return reason
    return type(exc).__name__


def _check_url(url: str) -> str:
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"--dicomweb must be an http(s) URL such as http://127.0.0.1:8042/dicom-web, got {url!r}")
    return str(url).rstrip("/")


def _value(item: dict[str, Any], tag: str) -> str:
    """First value of a DICOM JSON attribute as text ('' if absent)."""
    attr = item.get(tag) or {}
    values = attr.get("Value") or []
    if not values:
        return ""
    v = values[0]
    if isinstance(v, dict):  # PN
        return str(v.get("Alphabetic", ""))
    return str(v)


# ---------------------------------------------------------------------- push
@dataclass(frozen=True)
class LocalInstance:
    """One DICOM file to push."""

    path: Path
    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str
    instance_number: int
    size: int


@dataclass
class PushProgress:
    """State passed to the progress callback after every batch (and after the resume check).

    Attributes
    ----------
    total : instances found locally.
    done : instances dealt with so far (sent + skipped + failed).
    sent, skipped, failed : counts so far.
    series_uid : the series being pushed.
    last_paths : files of the batch just sent (empty after a resume check).
    """

    total: int
    done: int
    sent: int
    skipped: int
    failed: int
    series_uid: str = ""
    last_paths: tuple[Path, ...] = ()


@dataclass
class PushIssue:
    """A file that was not stored, and why."""

    path: str
    reason: str
    sop_instance_uid: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class PushReport:
    """Summary of :func:`push`.

    Attributes
    ----------
    url : the DICOMweb base URL.
    files_seen : regular files found under the given paths.
    instances : DICOM instances among them (non-DICOM files are listed in ``non_dicom``).
    sent : instances uploaded and confirmed by the server in this call.
    skipped : instances the server already had (resume / second push).
    failed : instances not stored, with reasons.
    series : series pushed (SeriesInstanceUIDs).
    bytes_sent : bytes of the files uploaded.
    requests : STOW-RS requests made; retries : retried HTTP exchanges.
    aborted : why the push stopped early ('' if it did not).
    seconds : wall time.
    """

    url: str
    files_seen: int = 0
    instances: int = 0
    sent: int = 0
    skipped: int = 0
    failed: list[PushIssue] = field(default_factory=list)
    non_dicom: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    requests: int = 0
    retries: int = 0
    aborted: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every DICOM instance is on the server."""
        return not self.failed and not self.aborted

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = [asdict(f) for f in self.failed]
        d["seconds"] = round(self.seconds, 3)
        d["ok"] = self.ok
        return d

    def to_text(self) -> str:
        lines = [
            f"{self.url}: {self.instances} instances in {len(self.series)} series: {self.sent} sent, "
            f"{self.skipped} already there (skipped), {len(self.failed)} failed "
            f"({self.bytes_sent:,} bytes, {self.requests} requests, {self.retries} retries, {self.seconds:.2f} s)"
        ]
        if self.non_dicom:
            lines.append(f"  {len(self.non_dicom)} files are not DICOM and were ignored")
        lines += [f"  failed: {f}" for f in self.failed[:20]]
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more")
        if self.aborted:
            lines.append(f"  stopped early: {self.aborted}")
        if not self.ok:
            lines.append("  run the same command again to resume: instances already stored are skipped")
        return "\n".join(lines)


def scan_instances(paths: Iterable[str | Path]) -> tuple[list[LocalInstance], list[str], int, list[PushIssue]]:
    """DICOM instances under ``paths``: (instances, non-DICOM files, files seen, unreadable).

    Raises
    ------
    UserError
        A path does not exist.
    """
    import pydicom

    from AdaptiveBrushDicomLib.store.database import iter_files, looks_like_dicom

    found: list[LocalInstance] = []
    non_dicom: list[str] = []
    bad: list[PushIssue] = []
    seen = 0
    tags = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality", "InstanceNumber"]
    for path in iter_files(paths):
        seen += 1
        if not looks_like_dicom(path):
            non_dicom.append(str(path))
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=tags)
            study, series, sop = (str(getattr(ds, k, "") or "") for k in tags[:3])
        except Exception as exc:  # unreadable header: report, keep going
            bad.append(PushIssue(str(path), f"cannot read the DICOM header ({type(exc).__name__}: {exc})"))
            continue
        if not (study and series and sop):
            bad.append(PushIssue(str(path), "no StudyInstanceUID / SeriesInstanceUID / SOPInstanceUID"))
            continue
        try:
            number = int(getattr(ds, "InstanceNumber", 0) or 0)
        except (TypeError, ValueError):
            number = 0
        found.append(LocalInstance(path, study, series, sop, str(getattr(ds, "Modality", "") or ""), number,
                                   path.stat().st_size))
    return found, non_dicom, seen, bad


def _series_order(instances: list[LocalInstance]) -> list[list[LocalInstance]]:
    """Group by series; image series first, SEG series after (viewers see the images first).

    Duplicate SOPInstanceUIDs (the same instance in two files) are pushed once.
    """
    groups: dict[str, list[LocalInstance]] = {}
    seen: set[str] = set()
    for inst in instances:
        if inst.sop_uid in seen:
            continue
        seen.add(inst.sop_uid)
        groups.setdefault(inst.series_uid, []).append(inst)
    ordered = sorted(groups.values(), key=lambda g: (g[0].modality.upper() == SEG_MODALITY, g[0].study_uid,
                                                     g[0].series_uid))
    return [sorted(g, key=lambda i: (i.instance_number, str(i.path))) for g in ordered]


def push(
    paths: Iterable[str | Path] | str | Path,
    url: str,
    auth: "Auth | tuple[str, str] | None" = None,
    *,
    batch_size: int = 16,
    batch_bytes: int = 32 * 1024 * 1024,
    retry: RetryPolicy | None = None,
    resume: bool = True,
    verify: bool = True,
    progress: Callable[[PushProgress], None] | None = None,
    timeout: float = 120.0,
) -> PushReport:
    """Upload DICOM files to a DICOMweb server with STOW-RS.

    Parameters
    ----------
    paths : files or folders (searched recursively); non-DICOM files are ignored.
    url : DICOMweb base URL (Orthanc: ``http://host:8042/dicom-web``).
    auth : :class:`Auth`, ``(user, password)`` or None.
    batch_size, batch_bytes : instances per STOW-RS request, at most this many bytes per
        request (a single larger file is sent alone).
    retry : retries with backoff for transient errors (connection refused / reset, 5xx).
    resume : query the server (QIDO-RS, one query per series) and skip instances it has.
    verify : after sending a series, query it again and report instances the server does
        not list as failed.
    progress : called with a :class:`PushProgress` after each batch.
    timeout : seconds per HTTP request.

    Returns
    -------
    PushReport
        Counts and failures; ``report.ok`` is False when something is not on the server.
        When the server becomes unreachable for longer than the retries allow, the push
        stops, ``aborted`` says why, and a later call resumes where it stopped.

    Raises
    ------
    AuthError
        Credentials refused (nothing is sent).
    ServerUnreachableError
        The server cannot be reached before anything was sent.
    UserError
        A path does not exist, or the URL is not http(s).
    """
    t0 = time.perf_counter()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    conn = DicomWebConnection(url, auth, retry=retry, timeout=timeout)
    report = PushReport(url=conn.url)
    instances, report.non_dicom, report.files_seen, unreadable = scan_instances(paths)
    report.failed.extend(unreadable)
    groups = _series_order(instances)
    report.instances = sum(len(g) for g in groups) + len(unreadable)
    report.series = [g[0].series_uid for g in groups]
    total = report.instances

    def tell(series_uid: str, last: Sequence[LocalInstance] = ()) -> None:
        if progress is not None:
            progress(PushProgress(total, report.sent + report.skipped + len(report.failed), report.sent,
                                  report.skipped, len(report.failed), series_uid,
                                  tuple(i.path for i in last)))

    try:
        for gi, group in enumerate(groups):
            series_uid, study_uid = group[0].series_uid, group[0].study_uid
            try:
                present = conn.sop_uids_of_series(study_uid, series_uid) if resume else set()
            except ServerUnreachableError as exc:
                if report.sent == 0 and gi == 0:
                    raise
                _abort(report, groups[gi:], str(exc))
                break
            todo = [i for i in group if i.sop_uid not in present]
            report.skipped += len(group) - len(todo)
            tell(series_uid)
            stopped = False
            batches = list(_batches(todo, batch_size, batch_bytes))
            for bi, batch in enumerate(batches):
                blobs, sendable = [], []
                for inst in batch:
                    try:
                        blobs.append(inst.path.read_bytes())
                        sendable.append(inst)
                    except OSError as exc:
                        report.failed.append(PushIssue(str(inst.path), f"cannot read: {exc.strerror or exc}",
                                                       inst.sop_uid))
                if not blobs:
                    continue
                what = f"STOW-RS of {len(blobs)} instances of series {series_uid}"
                try:
                    outcome = conn.stow(blobs, what)
                except ServerUnreachableError as exc:
                    rest = sendable + [i for b in batches[bi + 1:] for i in b]
                    _abort(report, [rest] + groups[gi + 1:], str(exc))
                    stopped = True
                    break
                except AuthError:
                    raise
                except RemoteError as exc:  # persistent 5xx or another refusal: this batch only
                    for inst in sendable:
                        report.failed.append(PushIssue(str(inst.path), str(exc), inst.sop_uid))
                    report.requests += 1
                    tell(series_uid, sendable)
                    continue
                report.requests += 1
                for inst in sendable:
                    if inst.sop_uid in outcome.failed:
                        report.failed.append(PushIssue(str(inst.path), outcome.failed[inst.sop_uid], inst.sop_uid))
                    elif inst.sop_uid in outcome.stored or (not outcome.stored and outcome.status < 300):
                        report.sent += 1
                        report.bytes_sent += inst.size
                    else:
                        report.failed.append(PushIssue(
                            str(inst.path), f"the server did not confirm it (HTTP {outcome.status})", inst.sop_uid))
                tell(series_uid, sendable)
            if stopped:
                break
            if verify and todo:
                sent_here = {i.sop_uid for i in todo} - {f.sop_instance_uid for f in report.failed}
                try:
                    now = conn.sop_uids_of_series(study_uid, series_uid)
                except ServerUnreachableError as exc:
                    _abort(report, groups[gi + 1:], str(exc))
                    break
                for inst in todo:
                    if inst.sop_uid in sent_here and inst.sop_uid not in now:
                        report.sent -= 1
                        report.bytes_sent -= inst.size
                        report.failed.append(PushIssue(str(inst.path), "not listed by the server after upload",
                                                       inst.sop_uid))
    finally:
        report.retries = conn.retries_used
        report.seconds = time.perf_counter() - t0
    return report


def _abort(report: PushReport, remaining: list[list[LocalInstance]], reason: str) -> None:
    report.aborted = reason
    for group in remaining:
        for inst in group:
            report.failed.append(PushIssue(str(inst.path), "not sent: " + reason, inst.sop_uid))


def _batches(items: list[LocalInstance], size: int, max_bytes: int) -> Iterable[list[LocalInstance]]:
    batch: list[LocalInstance] = []
    nbytes = 0
    for inst in items:
        if batch and (len(batch) >= max(size, 1) or nbytes + inst.size > max_bytes):
            yield batch
            batch, nbytes = [], 0
        batch.append(inst)
        nbytes += inst.size
    if batch:
        yield batch


# ---------------------------------------------------------------------- query
#: Top-level attributes a SEG summary needs (SOPClassUID, SOPInstanceUID, InstanceNumber,
#: ContentLabel, ContentDescription, SegmentationType, ReferencedSeriesSequence, SegmentSequence).
SEG_SUMMARY_TAGS = ("00080016", "00080018", "00200013", "00700080", "00700081", "00620001", "00081115",
                    "00620002")


def _dataset_from_json(item: dict[str, Any], keep: Sequence[str] | None = SEG_SUMMARY_TAGS) -> Any:
    """pydicom Dataset from DICOM JSON; bulk data (pixels) is not fetched.

    Only the ``keep`` attributes are converted: pydicom's conversion of a large
    PerFrameFunctionalGroupsSequence costs ~0.2 s per 100 frames and is not needed.
    """
    from pydicom import Dataset

    if keep is not None:
        item = {k: v for k, v in item.items() if k.upper() in keep}
    return Dataset.from_json(item, bulk_data_uri_handler=lambda *args: b"")


def _seg_infos(conn: DicomWebConnection, study_uid: str, study_description: str,
               series_rows: Sequence[dict[str, Any]]) -> list["SegSeriesInfo"]:
    """:class:`SegSeriesInfo` of SEG series rows (QIDO-RS) via their WADO-RS metadata."""
    from AdaptiveBrushDicomLib.store.database import build_seg_info, seg_summary_from_dataset

    out = []
    for row in series_rows:
        series_uid = _value(row, "0020000E")
        if not series_uid:
            continue
        metadata = conn.series_metadata(study_uid, series_uid)
        instances, summaries = [], []
        content_label = ""
        for item in metadata:
            ds = _dataset_from_json(item)
            if "00620002" not in item and "00081115" not in item:
                # servers configured to answer metadata from an index (Orthanc
                # "SeriesMetadata": "MainDicomTags" / "Extrapolate") leave out the
                # sequences: read the header of the instance itself
                ds = _header_of_instance(conn, study_uid, series_uid, str(getattr(ds, "SOPInstanceUID", "")), ds)
            summaries.append(seg_summary_from_dataset(ds))
            content_label = content_label or str(getattr(ds, "ContentLabel", "") or "")
            instances.append({
                "sop_instance_uid": str(getattr(ds, "SOPInstanceUID", "")),
                "path": "",
                "sop_class_uid": str(getattr(ds, "SOPClassUID", "")),
                "instance_number": getattr(ds, "InstanceNumber", None),
            })
        info = build_seg_info(
            {"series_instance_uid": series_uid, "study_instance_uid": study_uid,
             "study_description": study_description or _value(row, "00081030"),
             "series_description": _value(row, "0008103E"), "series_number": _value(row, "00200011"),
             "content_label": content_label},
            instances, summaries)
        out.append(replace(info, files=()))  # remote: no local files
    return out


def _header_of_instance(conn: DicomWebConnection, study_uid: str, series_uid: str, sop_uid: str,
                        fallback: Any) -> Any:
    """Header (no pixels) of one instance, retrieved with WADO-RS; ``fallback`` if that fails."""
    import io

    import pydicom

    if not sop_uid:
        return fallback
    try:
        blob, _ = conn.retrieve_instance_bytes(study_uid, series_uid, sop_uid)
        return pydicom.dcmread(io.BytesIO(blob), stop_before_pixels=True, force=True)
    except (AuthError, ServerUnreachableError):
        raise
    except Exception:  # a header we cannot read: keep what the metadata said
        return fallback


def _seg_series_rows(conn: DicomWebConnection, study_uid: str) -> list[dict[str, Any]]:
    rows = conn.search_series(study_uid, filters={"Modality": SEG_MODALITY},
                              fields=["SeriesDescription", "SeriesNumber", "StudyDescription",
                                      "NumberOfSeriesRelatedInstances"])
    return [r for r in rows if _value(r, "00080060").upper() in ("", SEG_MODALITY)]


def segs_for(
    series_uid: str,
    url: str,
    auth: "Auth | tuple[str, str] | None" = None,
    *,
    retry: RetryPolicy | None = None,
) -> list["SegSeriesInfo"]:
    """SEG series on a DICOMweb server that reference an image series.

    QIDO-RS finds the study of ``series_uid`` and its series with Modality SEG; the WADO-RS
    series metadata of each gives ReferencedSeriesSequence (0008,1115) and the segments.
    One metadata request per SEG series of the study.

    Returns
    -------
    list of SegSeriesInfo
        Sorted as :func:`~.database.sort_segs` (gold first, then trials by number);
        ``files`` is empty (use :func:`pull`), ``segment_labels`` lists the segments.

    Raises
    ------
    UnknownUIDError
        The server does not have ``series_uid``.
    AuthError, ServerUnreachableError, RemoteError
    """
    from AdaptiveBrushDicomLib.store.database import referencing, sort_segs

    conn = DicomWebConnection(url, auth, retry=retry)
    row = conn.study_of_series(series_uid)
    study_uid = _value(row, "0020000D")
    segs = _seg_infos(conn, study_uid, _value(row, "00081030"), _seg_series_rows(conn, study_uid))
    return sort_segs(referencing(segs, series_uid))


# ---------------------------------------------------------------------- pull
@dataclass
class PullReport:
    """Summary of :func:`pull`.

    Attributes
    ----------
    series_instance_uid, study_instance_uid : str
    out_dir : folder written into.
    files : the Part 10 files (one per instance, ``<SOPInstanceUID>.dcm``), by InstanceNumber.
    written, unchanged : files written / already present with identical bytes.
    transcoded : instances the server would not send as stored (a transcoded copy was
        written instead; bytes differ from what was pushed).
    bytes : bytes written; seconds : wall time.
    """

    series_instance_uid: str
    study_instance_uid: str
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    written: int = 0
    unchanged: int = 0
    transcoded: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["files"] = [str(p) for p in self.files]
        d["seconds"] = round(self.seconds, 3)
        return d

    def to_text(self) -> str:
        lines = [f"{len(self.files)} instances of series {self.series_instance_uid} in {self.out_dir}: "
                 f"{self.written} written, {self.unchanged} already present ({self.bytes:,} bytes, "
                 f"{self.seconds:.2f} s)"]
        if self.transcoded:
            lines.append(f"  note: the server sent {len(self.transcoded)} instances in another transfer syntax "
                         "than stored (it refused transfer-syntax=*)")
        return "\n".join(lines)


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
    """
    from AdaptiveBrushDicomLib.errors import OutputExistsError

    t0 = time.perf_counter()
    conn = DicomWebConnection(url, auth, retry=retry)
    if study_uid is None:
        study_uid = _value(conn.study_of_series(series_uid), "0020000D")
    rows = conn.search_instances(study_uid, series_uid, fields=["SOPInstanceUID", "InstanceNumber"])
    if not rows:
        from AdaptiveBrushDicomLib.store.database import UnknownUIDError

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
        target = out / f"{sop}.dcm"
        if target.exists():
            if target.read_bytes() == blob:
                report.unchanged += 1
                report.files.append(target)
                if progress:
                    progress(n, len(rows))
                continue
            if not force:
                raise OutputExistsError("a different file with this name exists; choose another --out or "
                                        "pass --force", target)
        with atomic_output(target) as tmp:
            tmp.write_bytes(blob)
        report.written += 1
        report.bytes += len(blob)
        report.files.append(target)
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


# ---------------------------------------------------------------------- database protocol
class DicomWebDatabase:
    """The :class:`~.database.DicomDatabase` queries answered by a DICOMweb server.

    Read side: studies, series, SEGs of a volume, trials of a run, gold standards, files of
    a series (pulled into ``cache_dir``). ``import_paths`` pushes (STOW-RS) instead of
    indexing. ``verify`` and ``remove_missing`` concern local files and are refused.

    Parameters
    ----------
    url : DICOMweb base URL; auth : credentials.
    cache_dir : where :meth:`files_for_series` / :meth:`file_for_instance` put pulled
        files (``<cache_dir>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``); default: a
        folder ``abdicom-dicomweb-cache`` in the system temporary directory.
    """

    def __init__(
        self,
        url: str,
        auth: "Auth | tuple[str, str] | None" = None,
        *,
        cache_dir: str | Path | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        import tempfile

        self.conn = DicomWebConnection(url, auth, retry=retry)
        self.url = self.conn.url
        self.auth = self.conn.auth
        self.retry = retry
        self.cache_dir = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "abdicom-dicomweb-cache"

    # -------------------------------------------------------------- write side
    def import_paths(self, paths: Iterable[str | Path]) -> "ImportReport":
        """Push files (STOW-RS, resuming); reported as an :class:`~.database.ImportReport`
        (``added`` = sent, ``unchanged`` = already on the server)."""
        from AdaptiveBrushDicomLib.store.database import FileIssue, ImportReport

        rep = push(list(paths), self.url, self.auth, retry=self.retry)
        return ImportReport(
            files_seen=rep.files_seen, added=rep.sent, unchanged=rep.skipped, non_dicom=len(rep.non_dicom),
            errors=[FileIssue(f.path, f.reason, f.sop_instance_uid or None) for f in rep.failed],
            seconds=rep.seconds,
        )

    # -------------------------------------------------------------- read side
    def studies(self) -> list["StudyInfo"]:
        from AdaptiveBrushDicomLib.store.database import StudyInfo

        rows = self.conn.search_studies(fields=["StudyDescription", "NumberOfStudyRelatedSeries",
                                                "NumberOfStudyRelatedInstances"])
        out = [StudyInfo(
            study_instance_uid=_value(r, "0020000D"), patient_id=_value(r, "00100020"),
            patient_name=_value(r, "00100010"), study_description=_value(r, "00081030"),
            study_date=_value(r, "00080020"), n_series=_int(_value(r, "00201206")),
            n_instances=_int(_value(r, "00201208"))) for r in rows]
        return sorted(out, key=lambda s: (s.patient_id, s.study_description, s.study_instance_uid))

    def series_for_study(self, study_uid: str) -> list["SeriesInfo"]:
        from AdaptiveBrushDicomLib.store.database import SeriesInfo

        rows = self.conn.search_series(study_uid, fields=["SeriesDescription", "SeriesNumber",
                                                          "NumberOfSeriesRelatedInstances"])
        out = [SeriesInfo(
            series_instance_uid=_value(r, "0020000E"), study_instance_uid=study_uid,
            modality=_value(r, "00080060"), series_description=_value(r, "0008103E"),
            series_number=_int(_value(r, "00200011")) if _value(r, "00200011") else None,
            n_instances=_int(_value(r, "00201209"))) for r in rows]
        return sorted(out, key=lambda s: (s.series_number if s.series_number is not None else -1,
                                          s.series_instance_uid))

    def segs_for_series(self, volume_series_uid: str) -> list["SegSeriesInfo"]:
        return segs_for(volume_series_uid, self.url, self.auth, retry=self.retry)

    def trials_for_run(self, study_uid: str) -> list["SegSeriesInfo"]:
        from AdaptiveBrushDicomLib.store.database import trials_in_order

        studies = self.conn.search_studies(filters={"StudyInstanceUID": study_uid}, fields=["StudyDescription"])
        desc = _value(studies[0], "00081030") if studies else ""
        return trials_in_order(_seg_infos(self.conn, study_uid, desc, _seg_series_rows(self.conn, study_uid)))

    def gold_for_volume(self, volume_series_uid: str) -> list["SegSeriesInfo"]:
        from AdaptiveBrushDicomLib.store.database import gold_only

        return gold_only(self.segs_for_series(volume_series_uid))

    def files_for_series(self, series_uid: str) -> list[Path]:
        """Pull the series into the cache (resuming) and return its files by InstanceNumber."""
        rep = pull(series_uid, self.cache_dir / series_uid, self.url, self.auth, retry=self.retry, force=True)
        return rep.files

    def file_for_instance(self, sop_instance_uid: str) -> Path | None:
        rows = self.conn.search_instances(filters={"SOPInstanceUID": sop_instance_uid},
                                          fields=["StudyInstanceUID", "SeriesInstanceUID"])
        rows = [r for r in rows if _value(r, "00080018") == sop_instance_uid]
        if not rows:
            return None
        study, series = _value(rows[0], "0020000D"), _value(rows[0], "0020000E")
        blob, _ = self.conn.retrieve_instance_bytes(study, series, sop_instance_uid)
        target = self.cache_dir / series / f"{sop_instance_uid}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(target) as tmp:
            tmp.write_bytes(blob if blob[128:132] == b"DICM" else _to_part10(blob))
        return target

    def show(self, uid: str) -> dict[str, Any]:
        from AdaptiveBrushDicomLib.store.database import UnknownUIDError

        rows = self.conn.search_series(filters={"SeriesInstanceUID": uid},
                                       fields=["StudyInstanceUID", "SeriesDescription", "SeriesNumber",
                                               "NumberOfSeriesRelatedInstances"])
        rows = [r for r in rows if _value(r, "0020000E") == uid]
        if rows:
            study = _value(rows[0], "0020000D")
            info: dict[str, Any] = {"level": "series", "series_instance_uid": uid, "study_instance_uid": study,
                                    "modality": _value(rows[0], "00080060"),
                                    "series_description": _value(rows[0], "0008103E"),
                                    "n_instances": _int(_value(rows[0], "00201209")), "url": self.url}
            if info["modality"].upper() == SEG_MODALITY:
                info["seg"] = _seg_infos(self.conn, study, "", rows)[0].to_dict()
            return info
        studies = self.conn.search_studies(filters={"StudyInstanceUID": uid})
        if any(_value(s, "0020000D") == uid for s in studies):
            return {"level": "study", "study_instance_uid": uid, "url": self.url,
                    "series": [s.to_dict() for s in self.series_for_study(uid)]}
        inst = self.conn.search_instances(filters={"SOPInstanceUID": uid},
                                          fields=["StudyInstanceUID", "SeriesInstanceUID"])
        inst = [r for r in inst if _value(r, "00080018") == uid]
        if inst:
            return {"level": "instance", "sop_instance_uid": uid, "url": self.url,
                    "series_instance_uid": _value(inst[0], "0020000E"),
                    "study_instance_uid": _value(inst[0], "0020000D")}
        raise UnknownUIDError(f"{self.url}: UID {uid} is not on the server (no such study, series or instance)")

    def verify(self) -> "VerifyReport":
        raise UserError(f"{self.url}: verify checks local files; a DICOMweb server manages its own storage")

    def remove_missing(self) -> "RemoveReport":
        raise UserError(f"{self.url}: remove-missing concerns local files; delete on the server with its own tools")
