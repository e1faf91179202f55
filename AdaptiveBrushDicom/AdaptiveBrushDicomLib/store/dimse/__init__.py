"""Push, query and pull on a DIMSE peer (a PACS speaking DICOM networking, not DICOMweb).

* :func:`push` -- C-ECHO, then C-STORE of the DICOM files under the given paths, series by
  series, each file in its own transfer syntax, resumable and checked after (:mod:`.push`).
* :func:`segs_for` -- C-FIND (SERIES level) for the study of an image series and its
  series with Modality SEG; their headers (ReferencedSeriesSequence, segments) are read
  from a C-GET (:mod:`.retrieve`).
* :func:`pull` -- C-GET of a series, written as ``<SOPInstanceUID>.dcm`` Part 10 files
  (the dataset bytes as the peer sent them) (:mod:`.retrieve`).

Modules: ``association`` (the peer, AE titles, connecting, C-ECHO, errors), ``find``
(C-FIND), ``push`` (C-STORE), ``retrieve`` (C-GET). This package re-exports their public
names, like :mod:`~AdaptiveBrushDicomLib.store.dicomweb` does for DICOMweb.

All through pynetdicom (optional dependency, extra ``remote``; imported lazily). Errors
are :class:`~AdaptiveBrushDicomLib.errors.UserError` subclasses naming the peer
(``AET@host:port``): a refused association gives the peer's reason, a peer that does not
accept the SOP class of a file says so (for Orthanc: ``"UnknownSopClassAccepted": true``
for Label Map SEG, 66.7). Reports are the :class:`~..push_files.PushReport` /
:class:`~..pull_files.PullReport` of the DICOMweb commands, with ``url`` naming the peer.
"""

from AdaptiveBrushDicomLib.store.dimse.association import (
    DEFAULT_CALLING_AET,
    UNKNOWN_SOP_HINT,
    AssociationRefusedError,
    DimsePeer,
    echo,
)
from AdaptiveBrushDicomLib.store.dimse.push import push
from AdaptiveBrushDicomLib.store.dimse.retrieve import pull, segs_for

__all__ = [
    "DEFAULT_CALLING_AET",
    "UNKNOWN_SOP_HINT",
    "AssociationRefusedError",
    "DimsePeer",
    "echo",
    "pull",
    "push",
    "segs_for",
]
