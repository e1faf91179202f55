"""The DICOM database protocol: the queries every database answers, whatever it is.

Three implementations answer the same questions with the same records (:mod:`.records`):

* :class:`~AdaptiveBrushDicomLib.store.sqlite.index.SqliteDicomIndex` -- the embedded
  SQLite index used outside Slicer (command line, CI, servers);
* :class:`~AdaptiveBrushDicomLib.slicer.ctk_database.SlicerDatabaseAdapter` -- the core
  half of the adapter over Slicer's ``slicer.dicomDatabase`` (a ``ctkDICOMDatabase``). It
  is given that object (or any object with the same few methods) and never imports slicer;
* :class:`~AdaptiveBrushDicomLib.store.dicomweb.DicomWebDatabase` -- a DICOMweb server.

What decides *what* a series is (:mod:`.series_kind`) and how SEG series are assembled
and ordered (:mod:`.seg_records`, :mod:`.seg_order`) are pure functions shared by all
three, so they give the same answers. :class:`~.manager.DicomManager` is the convenience
object on top of one of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Protocol, runtime_checkable

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.store.records import (
    ImportReport,
    RemoveReport,
    SegSeriesInfo,
    SeriesInfo,
    StudyInfo,
    VerifyReport,
)


class UnknownUIDError(UserError):
    """A UID that the database does not know."""


@runtime_checkable
class DicomDatabase(Protocol):
    """The queries :class:`~.manager.DicomManager` needs from a DICOM database."""

    def import_paths(self, paths: Iterable[str | Path]) -> ImportReport:
        """Index DICOM files and folders (recursively); one transaction per call."""
        ...

    def studies(self) -> list[StudyInfo]:
        """All studies, by patient then study description."""
        ...

    def series_for_study(self, study_uid: str) -> list[SeriesInfo]:
        """Series of a study, by SeriesNumber."""
        ...

    def segs_for_series(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        """SEG series referencing an image series, grouped by study (see :func:`sort_segs`)."""
        ...

    def trials_for_run(self, study_uid: str) -> list[SegSeriesInfo]:
        """Trial SEGs of a run (study) in trial order."""
        ...

    def gold_for_volume(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        """Gold-standard SEGs referencing an image series."""
        ...

    def files_for_series(self, series_uid: str) -> list[Path]:
        """Files of a series, by InstanceNumber."""
        ...

    def file_for_instance(self, sop_instance_uid: str) -> Path | None:
        """File of one instance, None if unknown."""
        ...

    def show(self, uid: str) -> dict[str, Any]:
        """Everything indexed about a patient ID, study, series or instance UID."""
        ...

    def verify(self) -> VerifyReport:
        """Check indexed files still exist with the indexed content."""
        ...

    def remove_missing(self) -> RemoveReport:
        """Forget instances whose files are gone (and series/studies left empty)."""
        ...
