"""One DICOMweb server: a ``requests`` session with credentials, retries (urllib3 ``Retry``)
and error messages that name the URL (the errors are :mod:`~..remote_errors`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar
from urllib.parse import urlsplit

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.store.dicomweb.auth import Auth, _as_auth
from AdaptiveBrushDicomLib.store.remote_errors import AuthError, RemoteError, ServerUnreachableError

if TYPE_CHECKING:  # pragma: no cover
    import requests

#: HTTP statuses worth retrying (the server may recover).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Media type asking a WADO-RS server for the instance as stored (no transcoding).
ORIGINAL_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
#: Plain Part 10 request (the server picks the transfer syntax; Orthanc: Explicit VR LE).
ANY_DICOM = 'multipart/related; type="application/dicom"'

_T = TypeVar("_T")


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

# ---------------------------------------------------------------------- retries
@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff for transient failures, carried out by urllib3's
    ``Retry`` on the ``requests`` session (every request: QIDO, WADO, STOW).

    Transient: connection refused / reset / timed out, HTTP 408, 429, 5xx
    (:data:`RETRY_STATUSES`). A request is tried at most ``attempts`` times; urllib3 waits
    0, ``2 * backoff``, ``4 * backoff``, ... seconds between tries, each capped at
    ``max_delay`` (a server's Retry-After is not followed, so the total wait is bounded).
    """

    attempts: int = 5
    backoff: float = 0.5
    max_delay: float = 8.0

    def to_urllib3(self, on_retry: "Callable[[], None] | None" = None) -> "Retry":
        """The urllib3 ``Retry`` for this policy; ``on_retry`` is called before every retry."""
        return _CountingRetry(
            total=max(self.attempts - 1, 0),
            backoff_factor=self.backoff,
            backoff_max=self.max_delay,
            status_forcelist=sorted(RETRY_STATUSES),
            allowed_methods=None,  # every method: STOW-RS POSTs are idempotent (same SOP Instance UIDs)
            raise_on_status=False,  # the last response comes back; DicomWebConnection words the error
            respect_retry_after_header=False,
            on_retry=on_retry,
        )

    def delays(self) -> list[float]:
        """The waits (s) urllib3 makes before each retry, from urllib3's own computation."""
        retry: Retry = self.to_urllib3()
        out = []
        for _ in range(max(self.attempts - 1, 0)):
            retry = retry.increment(method="GET", url="/", error=ConnectionError("probe"))
            out.append(retry.get_backoff_time())
        return out


try:  # urllib3 comes with requests (extra `remote`)
    from urllib3.util.retry import Retry
except ImportError:  # pragma: no cover - without requests there is no DICOMweb at all
    Retry = object  # type: ignore[misc,assignment]


class _CountingRetry(Retry):
    """urllib3 ``Retry`` that reports each retry (for :attr:`DicomWebConnection.retries_used`)."""

    def __init__(self, *args: Any, on_retry: "Callable[[], None] | None" = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_retry = on_retry

    def new(self, **kw: Any) -> "_CountingRetry":
        out: _CountingRetry = super().new(**kw)
        out._on_retry = self._on_retry
        return out

    def increment(self, *args: Any, **kwargs: Any) -> "_CountingRetry":
        out: _CountingRetry = super().increment(*args, **kwargs)  # raises MaxRetryError when exhausted
        if self._on_retry is not None:
            self._on_retry()
        return out


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
        self.retries_used = 0
        from requests.adapters import HTTPAdapter

        adapter = HTTPAdapter(max_retries=self.retry.to_urllib3(on_retry=self._count_retry))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.client = dwc.DICOMwebClient(self.url, session=self.session, timeout=timeout)
        # the session's urllib3 Retry covers every request; no second retry layer on top
        self.client.set_http_retry_params(retry=False)

    def _count_retry(self) -> None:
        self.retries_used += 1

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
        if status in RETRY_STATUSES:
            return RemoteError(
                f"{self.url}: the server kept failing for {what} (HTTP {status}) after {self.retry.attempts} attempts"
            )
        detail = f": {body.strip()[:200]}" if body.strip() else ""
        return RemoteError(f"{self.url}: HTTP {status} for {what}{detail}")

    def call(self, what: str, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` (one HTTP exchange; the session retries transient failures) and map
        what still fails to user errors.

        Raises
        ------
        AuthError
            HTTP 401 / 403.
        ServerUnreachableError
            No connection after ``retry.attempts`` tries.
        RemoteError
            Any other HTTP error (5xx after ``retry.attempts`` tries).
        """
        import requests

        try:
            return fn()
        except requests.HTTPError as exc:  # from dicomweb-client's raise_for_status
            resp = exc.response
            status = resp.status_code if resp is not None else 0
            raise self._http_error(status, what, resp.text if resp is not None else "") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServerUnreachableError(
                f"{self.url}: cannot reach the server for {what} ({_connection_reason(exc)}) after "
                f"{self.retry.attempts} attempts; check that it is running and the URL is right"
            ) from None

    def _request(self, method: str, url: str, what: str, **kwargs: Any) -> "requests.Response":
        """One raw request through the session (with retries); non-2xx -> errors."""

        def once() -> "requests.Response":
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
            if resp.status_code >= 400 and resp.status_code != 409:
                raise self._http_error(resp.status_code, what, resp.text)
            return resp

        return self.call(what, once)

    # -------------------------------------------------------------- QIDO / metadata
    def search_series(self, study_uid: str | None = None, filters: dict[str, Any] | None = None,
                      fields: Sequence[str] = ()) -> list[dict[str, Any]]:
        """QIDO-RS series query (``/series`` or ``/studies/{uid}/series``)."""
        what = f"QIDO-RS series query {filters or {}}"
        found: list[dict[str, Any]] = self.call(what, lambda: self.client.search_for_series(
            study_instance_uid=study_uid, search_filters=filters or None, fields=list(fields) or None,
            get_remaining=True))
        return found

    def search_studies(self, filters: dict[str, Any] | None = None,
                       fields: Sequence[str] = ()) -> list[dict[str, Any]]:
        """QIDO-RS study query."""
        found: list[dict[str, Any]] = self.call("QIDO-RS study query", lambda: self.client.search_for_studies(
            search_filters=filters or None, fields=list(fields) or None, get_remaining=True))
        return found

    def search_instances(self, study_uid: str | None = None, series_uid: str | None = None,
                         filters: dict[str, Any] | None = None,
                         fields: Sequence[str] = ()) -> list[dict[str, Any]]:
        """QIDO-RS instance query (an unknown study or series gives no rows, not an error)."""
        what = f"QIDO-RS instance query (series {series_uid})" if series_uid else "QIDO-RS instance query"

        def once() -> list[dict[str, Any]]:
            import requests

            try:
                found: list[dict[str, Any]] = self.client.search_for_instances(
                    study_instance_uid=study_uid, series_instance_uid=series_uid,
                    search_filters=filters or None, fields=list(fields) or None, get_remaining=True)
                return found
            except requests.HTTPError as exc:
                if exc.response is not None and exc.response.status_code == 404:
                    return []  # unknown study/series: nothing there yet
                raise

        return self.call(what, once)

    def series_metadata(self, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
        """WADO-RS metadata of every instance of a series (DICOM JSON)."""
        found: list[dict[str, Any]] = self.call(f"WADO-RS metadata of series {series_uid}",
                                                lambda: self.client.retrieve_series_metadata(study_uid, series_uid))
        return found

    def study_of_series(self, series_uid: str) -> dict[str, Any]:
        """QIDO-RS attributes of one series (incl. StudyInstanceUID).

        Raises
        ------
        UnknownUIDError
            The series is not on the server.
        RemoteError
            The query failed (see :meth:`call`).
        """
        from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError

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
    def stow(self, blobs: Sequence[bytes], what: str) -> "StowOutcome":
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
        False when the server refused ``transfer-syntax=*`` and sent a transcoded copy.

        Raises
        ------
        AuthError
            Credentials refused.
        ServerUnreachableError
            The server cannot be reached (after the retries).
        RemoteError
            The server refused both the original and a transcoded copy.
        """
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
class StowOutcome:
    """What one STOW-RS response says: SOPInstanceUIDs stored, failed (with the reason), HTTP status."""

    stored: set[str]
    failed: dict[str, str]
    status: int


def _parse_stow_response(resp: "requests.Response") -> StowOutcome:
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
    return StowOutcome(stored, failed, resp.status_code)


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
