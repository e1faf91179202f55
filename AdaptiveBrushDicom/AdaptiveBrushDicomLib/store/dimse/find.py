"""C-FIND on a DIMSE peer (Study Root): which instances of a series it holds, the study of a series.

DIMSE queries return flat identifiers (no sequences); what needs a SEG's
ReferencedSeriesSequence is retrieved with C-GET (:mod:`.retrieve`).
"""

from __future__ import annotations

from typing import Any, Iterable

from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError
from AdaptiveBrushDicomLib.store.dimse.association import STUDY_ROOT_FIND, DimsePeer, associate, status_text, \
    uncompressed
from AdaptiveBrushDicomLib.store.remote_errors import RemoteError


def find(assoc: Any, peer: DimsePeer, level: str, keys: dict[str, str], returns: Iterable[str]) -> list[Any]:
    """C-FIND (Study Root) at ``level``; identifiers of the matches.

    Parameters
    ----------
    assoc : an established association with a Study Root FIND context.
    peer : the peer, named in errors.
    level : ``"STUDY"``, ``"SERIES"`` or ``"IMAGE"``.
    keys : matching keys (keyword -> value).
    returns : keywords to return (universal matching).

    Raises
    ------
    RemoteError
        The peer answered with a failure status (probably not allowed for our AE title).
    """
    from pydicom import Dataset
    query = Dataset()
    query.QueryRetrieveLevel = level
    for key in returns:
        setattr(query, key, "")
    for key, value in keys.items():
        setattr(query, key, value)
    out = []
    for status, ident in assoc.send_c_find(query, STUDY_ROOT_FIND):
        code = int(getattr(status, "Status", -1)) if status else -1
        if code in (0xFF00, 0xFF01):
            if ident is not None:
                out.append(ident)
        elif code != 0:
            raise RemoteError(f"DIMSE peer {peer}: C-FIND at {level} level failed (status {status_text(status)}); "
                              f"{permission_hint(peer, 'Find')}")
    return out


def permission_hint(peer: DimsePeer, service: str) -> str:
    """What to configure on the peer when it refuses C-FIND / C-GET (``service`` "Find" / "Get")."""
    return (f"the peer may not allow C-{service.upper()} from AE title {peer.calling_aet!r}: register it "
            f"there (Orthanc: DicomModalities, or \"DicomAlwaysAllow{service}\": true)")


def find_contexts() -> list[tuple[str, list[str]]]:
    """The presentation context of a C-FIND association."""
    return [(STUDY_ROOT_FIND, uncompressed())]


def sop_uids_of_series(assoc: Any, peer: DimsePeer, study_uid: str, series_uid: str) -> set[str]:
    """SOPInstanceUIDs the peer holds for a series (C-FIND, IMAGE level).

    Raises
    ------
    RemoteError
        The peer refused the query.
    """
    rows = find(assoc, peer, "IMAGE", {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid},
                ["SOPInstanceUID"])
    return {str(r.SOPInstanceUID) for r in rows if getattr(r, "SOPInstanceUID", "")}


def series_rows(peer: DimsePeer, series_uid: str) -> tuple[str, list[Any]]:
    """(StudyInstanceUID, IMAGE-level rows with SOPInstanceUID, SOPClassUID) of a series.

    Raises
    ------
    UnknownUIDError
        The series is not on the peer.
    RemoteError
        The peer refused the association or the query.
    """
    with associate(peer, find_contexts(), what="C-FIND") as assoc:
        rows = find(assoc, peer, "SERIES", {"SeriesInstanceUID": series_uid}, ["StudyInstanceUID"])
        if not rows:
            raise UnknownUIDError(f"DIMSE peer {peer}: series {series_uid} is not on the peer; push it first "
                                  "(abdicom push --dimse) or check the UID")
        study = str(rows[0].StudyInstanceUID)
        images = find(assoc, peer, "IMAGE", {"StudyInstanceUID": study, "SeriesInstanceUID": series_uid},
                      ["SOPInstanceUID", "SOPClassUID", "InstanceNumber"])
    return study, images
