"""A DIMSE peer and an association with it: AE titles, connecting (with retries), C-ECHO.

Errors are :class:`~AdaptiveBrushDicomLib.errors.UserError` subclasses naming the peer
(``AET@host:port``): a refused association gives the peer's reason
(:class:`AssociationRefusedError`), a peer that is not there says so
(:class:`~..remote_errors.ServerUnreachableError`), a peer that accepts none of the
proposed services gets the hint for Label Map SEG (66.7) in Orthanc.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from AdaptiveBrushDicomLib.dicom.compression import Compression, ReadOnlySyntax
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.store.remote_errors import RemoteError, ServerUnreachableError

#: Our AE title when the caller gives none.
DEFAULT_CALLING_AET = "ABDICOM"
#: What a peer that refuses SOP class 66.7 probably needs (Orthanc <= 1.12 does not know it).
UNKNOWN_SOP_HINT = ('the peer does not accept this SOP class; for Orthanc set "UnknownSopClassAccepted": true '
                    "in its configuration (Label Map Segmentation Storage 66.7 is newer than its DICOM toolkit)")
#: Waits (s) before retrying an association that failed before negotiation (TCP refused /
#: reset): a busy peer may accept a moment later. Rejections are never retried.
CONNECT_RETRY_DELAYS = (0.5, 1.5)
#: Verification SOP Class (C-ECHO) and the Study Root Query/Retrieve models (PS3.4).
VERIFICATION = "1.2.840.10008.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
_AET_RE = re.compile(r"^[\x20-\x7e]{1,16}$")


class AssociationRefusedError(RemoteError):
    """The peer rejected the association (wrong AE title, unknown caller, ...)."""


def require_pynetdicom() -> Any:
    """The ``pynetdicom`` module.

    Raises
    ------
    UserError
        pynetdicom is not installed (it is the optional extra ``remote``).
    """
    try:
        import pynetdicom
    except ImportError:
        raise UserError("DIMSE commands need the 'pynetdicom' package; install it with "
                        "pip install 'AdaptiveBrushDicom[remote]' (or pip install pynetdicom)") from None
    return pynetdicom


# ---------------------------------------------------------------------- peer
@dataclass(frozen=True)
class DimsePeer:
    """A DIMSE peer: called AE title, host, port, and our (calling) AE title."""

    ae_title: str
    host: str
    port: int
    calling_aet: str = DEFAULT_CALLING_AET

    @classmethod
    def parse(cls, text: str, calling_aet: str | None = None) -> "DimsePeer":
        """``AET@HOST:PORT`` (e.g. ``ORTHANC@127.0.0.1:4242``).

        Raises
        ------
        UserError
            Not of that form, AE title longer than 16 characters, port not 1..65535.
        """
        m = re.match(r"^(?P<aet>[^@]+)@(?P<host>\[[^\]]+\]|[^:]+):(?P<port>\d+)$", str(text).strip())
        if not m:
            raise UserError(f"--dimse must be AET@HOST:PORT such as ORTHANC@127.0.0.1:4242, got {text!r}")
        port = int(m["port"])
        if not 0 < port < 65536:
            raise UserError(f"--dimse {text!r}: port {port} is not 1..65535")
        calling = calling_aet or DEFAULT_CALLING_AET
        for what, aet in (("called AE title", m["aet"]), ("--calling-aet", calling)):
            if not _AET_RE.match(aet) or "\\" in aet:
                raise UserError(f"{what} {aet!r}: an AE title is 1 to 16 printable characters (no backslash)")
        return cls(m["aet"], m["host"].strip("[]"), port, calling)

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@contextmanager
def associate(peer: DimsePeer, contexts: list[tuple[str, list[str]]], *, roles: Iterable[str] = (),
              handlers: list[Any] | None = None, what: str = "") -> Iterator[Any]:
    """An established association (released afterwards), or a one-line error naming the peer.

    Parameters
    ----------
    peer : DimsePeer
    contexts : list of (abstract syntax UID, [transfer syntax UIDs])
        The presentation contexts to propose (at most 128).
    roles : SOP class UIDs for which we ask the SCP role (C-GET sub-operations).
    handlers : pynetdicom ``(event, handler)`` pairs.
    what : the service, named in the error messages (``"C-STORE"``...).

    Raises
    ------
    AssociationRefusedError
        The peer rejected the association.
    ServerUnreachableError
        No connection after :data:`CONNECT_RETRY_DELAYS` retries.
    RemoteError
        The peer accepted none of the proposed services.
    UserError
        pynetdicom is not installed.
    """
    pn = require_pynetdicom()
    from pynetdicom import evt

    ae = pn.AE(ae_title=peer.calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, syntaxes)
    ext = [pn.build_role(uid, scp_role=True) for uid in roles]
    rejected: list[str] = []

    def on_acse(event: Any) -> None:
        rsp = event.primitive
        if getattr(rsp, "result", None) in (1, 2):
            rejected.append(f"{rsp.reason_str} ({rsp.result_str}, source: {rsp.source_str})")

    for delay in (*CONNECT_RETRY_DELAYS, None):
        assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, ext_neg=ext or None,
                             evt_handlers=[(evt.EVT_ACSE_RECV, on_acse), *(handlers or [])])
        unreachable = (not assoc.is_established and not rejected and not assoc.is_rejected
                       and not assoc.accepted_contexts and not assoc.rejected_contexts)
        if not unreachable or delay is None:
            break
        time.sleep(delay)  # connection refused / dropped before negotiation: may be transient
    if not assoc.is_established:
        if rejected or assoc.is_rejected:
            raise AssociationRefusedError(
                f"DIMSE peer {peer}: association refused{' for ' + what if what else ''}: "
                f"{rejected[0] if rejected else 'no reason given'}; check the called AE title and that the "
                f"peer knows the calling AE title {peer.calling_aet!r}")
        if unreachable:
            raise ServerUnreachableError(
                f"DIMSE peer {peer}: cannot connect (no answer or connection refused, "
                f"{len(CONNECT_RETRY_DELAYS) + 1} attempts); check host, port and that the peer is running")
        raise RemoteError(f"DIMSE peer {peer}: the peer accepted none of the proposed services "
                          f"({', '.join(sorted({c[0] for c in contexts}))}); {UNKNOWN_SOP_HINT}")
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def echo(peer: DimsePeer) -> None:
    """C-ECHO the peer.

    Raises
    ------
    RemoteError
        The C-ECHO failed (one line naming the peer), or the association could not be made
        (:class:`AssociationRefusedError`, :class:`~..remote_errors.ServerUnreachableError`).
    """
    with associate(peer, [(VERIFICATION, uncompressed())], what="C-ECHO") as assoc:
        _check_echo(assoc, peer)


def _check_echo(assoc: Any, peer: DimsePeer) -> None:
    """Send the C-ECHO on ``assoc``.

    Raises
    ------
    RemoteError
        The peer did not answer with status 0.
    """
    status = assoc.send_c_echo()
    if not status or int(getattr(status, "Status", -1)) != 0:
        raise RemoteError(f"DIMSE peer {peer}: C-ECHO failed (status {status_text(status)})")


def uncompressed() -> list[str]:
    """Explicit and Implicit VR Little Endian: what every peer must accept."""
    return [Compression.EXPLICIT.uid, ReadOnlySyntax.IMPLICIT.uid]


def status_text(status: Any) -> str:
    """A DIMSE status dataset as ``0x....`` for messages (or why there is none)."""
    try:
        return f"0x{int(status.Status):04X}"
    except (AttributeError, TypeError, ValueError):
        return "none: the connection was lost"
