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
* :class:`DicomWebDatabase` -- the read side of the :class:`~AdaptiveBrushDicomLib.store.database_protocol.DicomDatabase`
  protocol answered by a DICOMweb server.

Modules: ``auth`` (credentials), ``connection`` (session, retries through urllib3's
``Retry``, error mapping, multipart), ``stow`` (push), ``query`` (SEG lookup), ``retrieve``
(pull), ``server_database`` (the protocol). What DICOMweb shares with DIMSE lives in
``store/``: what a push sends and its report (:mod:`~..push_files`), what a pull writes and
its report (:mod:`~..pull_files`), the errors (:mod:`~..remote_errors`). This package
re-exports their public names.

QIDO-RS and WADO-RS metadata go through ``dicomweb-client`` (optional dependency, extra
``remote``; imported lazily). STOW-RS and instance retrieval are sent with the same
``requests`` session but encoded / decoded here, because ``dicomweb-client`` re-encodes
datasets (it would inflate a Deflated SEG and rewrite its bytes) on both paths.

Authentication: HTTP basic (user + password read from a file) or a bearer token read from
a file, see :class:`Auth`. A refused login raises :class:`AuthError`, a
:class:`~.errors.UserError`, so the command line prints one line instead of a traceback.
"""

from AdaptiveBrushDicomLib.store.dicomweb.auth import Auth
from AdaptiveBrushDicomLib.store.dicomweb.connection import (
    ANY_DICOM,
    ORIGINAL_DICOM,
    RETRY_STATUSES,
    DicomWebConnection,
    RetryPolicy,
    split_multipart,
)
from AdaptiveBrushDicomLib.store.dicomweb.query import SEG_SUMMARY_TAGS, segs_for
from AdaptiveBrushDicomLib.store.dicomweb.retrieve import pull
from AdaptiveBrushDicomLib.store.dicomweb.server_database import DicomWebDatabase
from AdaptiveBrushDicomLib.store.dicomweb.stow import push
from AdaptiveBrushDicomLib.store.pull_files import PullReport
from AdaptiveBrushDicomLib.store.push_files import (
    LocalInstance,
    PushIssue,
    PushProgress,
    PushReport,
    scan_instances,
)
from AdaptiveBrushDicomLib.store.remote_errors import AuthError, RemoteError, ServerUnreachableError
from AdaptiveBrushDicomLib.store.series_kind import SEG_MODALITY

__all__ = [
    "ANY_DICOM",
    "ORIGINAL_DICOM",
    "RETRY_STATUSES",
    "SEG_MODALITY",
    "SEG_SUMMARY_TAGS",
    "Auth",
    "AuthError",
    "DicomWebConnection",
    "DicomWebDatabase",
    "LocalInstance",
    "PullReport",
    "PushIssue",
    "PushProgress",
    "PushReport",
    "RemoteError",
    "RetryPolicy",
    "ServerUnreachableError",
    "pull",
    "push",
    "scan_instances",
    "segs_for",
    "split_multipart",
]
