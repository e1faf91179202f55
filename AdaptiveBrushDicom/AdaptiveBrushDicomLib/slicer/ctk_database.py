"""The core half of the adapter over Slicer's DICOM database (``slicer.dicomDatabase``, a
``ctkDICOMDatabase``): the :class:`~AdaptiveBrushDicomLib.store.database_protocol.DicomDatabase`
protocol answered from CTK's tables and file headers.

It is given that object (or any object with the same few methods,
:class:`CtkDicomDatabaseLike`) and never imports slicer, vtk, qt or ctk, so it is tested
outside Slicer with a stand-in (``Testing/Python/test_index.py``) and inside Slicer with the
real database (``Testing/Slicer``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

from AdaptiveBrushDicomLib.dicom.sop_class import SEG_SOP_CLASS_UIDS
from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError
from AdaptiveBrushDicomLib.store.dicom_files import iter_files, looks_like_dicom
from AdaptiveBrushDicomLib.store.records import FileIssue, ImportReport, RemoveReport, SegSeriesInfo, SegSummary, SeriesInfo, StudyInfo, VerifyReport
from AdaptiveBrushDicomLib.store.seg_order import gold_only, referencing, sort_segs, trials_in_order
from AdaptiveBrushDicomLib.store.seg_records import text_value, int_value, build_seg_info, seg_summary_from_dataset


class CtkDicomDatabaseLike(Protocol):
    """The methods of ``ctkDICOMDatabase`` (``slicer.dicomDatabase``) the adapter calls.

    Names and arguments as in CTK ``Libs/DICOM/Core/ctkDICOMDatabase.h``: ``patients()``
    returns database-internal patient keys; ``fileValue(path, "gggg,eeee")`` returns the
    top-level value as a string ("" if absent); ``fieldForSeries(column, seriesUID)``
    reads a column of the Series table (``SeriesDescription``, ``SeriesNumber``,
    ``Modality``...); ``insert(path, storeFile, generateThumbnail)`` indexes one file.
    """

    def patients(self) -> Sequence[str]: ...
    def studiesForPatient(self, patient: str) -> Sequence[str]: ...  # noqa: N802 (CTK name)
    def seriesForStudy(self, study_uid: str) -> Sequence[str]: ...  # noqa: N802
    def filesForSeries(self, series_uid: str) -> Sequence[str]: ...  # noqa: N802
    def instancesForSeries(self, series_uid: str) -> Sequence[str]: ...  # noqa: N802
    def fileValue(self, path: str, tag: str) -> str: ...  # noqa: N802
    def fieldForSeries(self, field: str, series_uid: str) -> str: ...  # noqa: N802
    def insert(self, path: str, storeFile: bool = True, generateThumbnail: bool = True) -> Any: ...  # noqa: N802,N803


#: DICOM tags the adapter reads with ``fileValue`` ("gggg,eeee" as CTK wants them).
TAGS = {
    "PatientID": "0010,0020",
    "PatientName": "0010,0010",
    "StudyInstanceUID": "0020,000D",
    "StudyDescription": "0008,1030",
    "StudyDate": "0008,0020",
    "SeriesInstanceUID": "0020,000E",
    "SeriesDescription": "0008,103E",
    "SeriesNumber": "0020,0011",
    "Modality": "0008,0060",
    "SOPClassUID": "0008,0016",
    "SOPInstanceUID": "0008,0018",
    "InstanceNumber": "0020,0013",
    "ContentLabel": "0070,0080",
    "ContentDescription": "0070,0081",
}


def _read_seg_header(path: str) -> Any:
    import pydicom

    return pydicom.dcmread(
        path, stop_before_pixels=True,
        specific_tags=["SOPClassUID", "SegmentationType", "ReferencedSeriesSequence", "SegmentSequence",
                       "ContentLabel", "ContentDescription"],
    )


class SlicerDatabaseAdapter:
    """:class:`DicomDatabase` over Slicer's ``ctkDICOMDatabase`` (core half; no slicer import).

    Parameters
    ----------
    ctk_db : CtkDicomDatabaseLike
        ``slicer.dicomDatabase`` in Slicer; any object with the same methods in tests.
    header_reader : callable, optional
        ``path -> header`` for the sequences CTK does not index (ReferencedSeriesSequence,
        SegmentSequence). Default: pydicom without pixel data. Results are cached per path
        and file modification time.

    Notes
    -----
    Sequences are not in the CTK database, so finding the SEGs of a series reads the
    header of the first file of every SEG series (cached). Modality comes from
    ``fieldForSeries("Modality", uid)`` and falls back to the first file's SOP class.
    """

    def __init__(self, ctk_db: CtkDicomDatabaseLike, header_reader: Callable[[str], Any] | None = None) -> None:
        if ctk_db is None:
            raise UserError("Slicer's DICOM database is not available yet; open the DICOM module once "
                            "(slicer.dicomDatabase is None before startup completes)")
        is_open = getattr(ctk_db, "isOpen", True)  # a Q_PROPERTY in PythonQt; a method on stand-ins
        if callable(is_open):
            is_open = is_open()
        if not is_open:
            raise UserError("Slicer's DICOM database is closed; choose a database folder in the DICOM module")
        self.ctk = ctk_db
        self._read_header = header_reader or _read_seg_header
        self._summary_cache: dict[tuple[str, float], SegSummary] = {}

    # -------------------------------------------------------------- navigation helpers
    def _value(self, path: str, name: str) -> str:
        return text_value(self.ctk.fileValue(path, TAGS[name]))

    def _series_field(self, name: str, series_uid: str, first_file: str | None) -> str:
        value = ""
        try:
            value = text_value(self.ctk.fieldForSeries(name, series_uid))
        except Exception:  # older CTK / stand-ins without the column
            value = ""
        if not value and first_file:
            value = self._value(first_file, name)
        return value

    def _all_series(self) -> list[tuple[str, str]]:
        out = []
        for patient in self.ctk.patients():
            for study in self.ctk.studiesForPatient(patient):
                for series in self.ctk.seriesForStudy(study):
                    out.append((str(study), str(series)))
        return out

    def _summary(self, path: str) -> SegSummary:
        try:
            key = (path, Path(path).stat().st_mtime)
        except OSError:
            key = (path, -1.0)
        if key not in self._summary_cache:
            self._summary_cache[key] = seg_summary_from_dataset(self._read_header(path))
        return self._summary_cache[key]

    def _is_seg_series(self, series_uid: str, files: Sequence[str]) -> bool:
        modality = self._series_field("Modality", series_uid, files[0] if files else None)
        if modality.upper() == "SEG":
            return True
        return bool(files) and self._value(files[0], "SOPClassUID") in SEG_SOP_CLASS_UIDS

    def _seg_info(self, study_uid: str, series_uid: str, files: Sequence[str]) -> SegSeriesInfo:
        first = files[0]
        instances = [
            {"sop_instance_uid": self._value(f, "SOPInstanceUID"), "path": f,
             "sop_class_uid": self._value(f, "SOPClassUID"), "instance_number": self._value(f, "InstanceNumber")}
            for f in files
        ]
        row = {
            "series_instance_uid": series_uid,
            "study_instance_uid": study_uid,
            "study_description": self._value(first, "StudyDescription"),
            "series_description": self._series_field("SeriesDescription", series_uid, first),
            "series_number": self._series_field("SeriesNumber", series_uid, first),
            "content_label": self._value(first, "ContentLabel"),
            "content_description": self._value(first, "ContentDescription"),
        }
        return build_seg_info(row, instances, [self._summary(first)])

    def _all_segs(self) -> list[SegSeriesInfo]:
        out = []
        for study, series in self._all_series():
            files = [str(f) for f in self.ctk.filesForSeries(series)]
            if files and self._is_seg_series(series, files):
                out.append(self._seg_info(study, series, files))
        return out

    # -------------------------------------------------------------- protocol
    def import_paths(self, paths: Iterable[str | Path]) -> ImportReport:
        """Index files with ``ctk.insert(path, False, False)`` (links only, no copy).

        CTK does its own parsing: non-DICOM files are counted when ``insert`` raises or
        returns a falsy value; conflicts are not detected on this path.
        """
        import time

        t0 = time.perf_counter()
        report = ImportReport()
        for path in iter_files(paths):
            report.files_seen += 1
            if not looks_like_dicom(path):
                report.non_dicom += 1
                continue
            try:
                result = self.ctk.insert(str(path), False, False)
            except Exception as exc:  # CTK raises for unparseable files
                report.errors.append(FileIssue(str(path), f"Slicer's DICOM database refused it ({exc})"))
                continue
            if result is False:
                report.errors.append(FileIssue(str(path), "Slicer's DICOM database refused it"))
            else:
                report.added += 1
        report.seconds = time.perf_counter() - t0
        return report

    def studies(self) -> list[StudyInfo]:
        out = []
        for patient in self.ctk.patients():
            for study in self.ctk.studiesForPatient(patient):
                series = list(self.ctk.seriesForStudy(study))
                files = [str(f) for s in series for f in self.ctk.filesForSeries(s)]
                first = files[0] if files else None
                out.append(StudyInfo(
                    study_instance_uid=str(study),
                    patient_id=self._value(first, "PatientID") if first else "",
                    patient_name=self._value(first, "PatientName") if first else "",
                    study_description=self._value(first, "StudyDescription") if first else "",
                    study_date=self._value(first, "StudyDate") if first else "",
                    n_series=len(series), n_instances=len(files),
                ))
        return sorted(out, key=lambda s: (s.patient_id, s.study_description, s.study_instance_uid))

    def series_for_study(self, study_uid: str) -> list[SeriesInfo]:
        out = []
        for series in self.ctk.seriesForStudy(study_uid):
            files = [str(f) for f in self.ctk.filesForSeries(series)]
            first = files[0] if files else None
            classes = tuple(sorted({self._value(f, "SOPClassUID") for f in files}))
            out.append(SeriesInfo(
                series_instance_uid=str(series), study_instance_uid=study_uid,
                modality=self._series_field("Modality", series, first),
                series_description=self._series_field("SeriesDescription", series, first),
                series_number=int_value(self._series_field("SeriesNumber", series, first)),
                n_instances=len(files), sop_class_uids=classes,
            ))
        return sorted(out, key=lambda s: (s.series_number if s.series_number is not None else -1,
                                          s.series_instance_uid))

    def segs_for_series(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        return sort_segs(referencing(self._all_segs(), volume_series_uid))

    def trials_for_run(self, study_uid: str) -> list[SegSeriesInfo]:
        segs = []
        for series in self.ctk.seriesForStudy(study_uid):
            files = [str(f) for f in self.ctk.filesForSeries(series)]
            if files and self._is_seg_series(str(series), files):
                segs.append(self._seg_info(study_uid, str(series), files))
        return trials_in_order(segs)

    def gold_for_volume(self, volume_series_uid: str) -> list[SegSeriesInfo]:
        return gold_only(self.segs_for_series(volume_series_uid))

    def files_for_series(self, series_uid: str) -> list[Path]:
        files = [str(f) for f in self.ctk.filesForSeries(series_uid)]
        files.sort(key=lambda f: (int_value(self._value(f, "InstanceNumber")) or 0, f))
        return [Path(f) for f in files]

    def file_for_instance(self, sop_instance_uid: str) -> Path | None:
        finder = getattr(self.ctk, "fileForInstance", None)
        if finder is not None:
            found = text_value(finder(sop_instance_uid))
            return Path(found) if found else None
        for _, series in self._all_series():
            for f in self.ctk.filesForSeries(series):
                if self._value(str(f), "SOPInstanceUID") == sop_instance_uid:
                    return Path(str(f))
        return None

    def show(self, uid: str) -> dict[str, Any]:
        for study, series in self._all_series():
            files = [str(f) for f in self.ctk.filesForSeries(series)]
            if series == uid:
                info: dict[str, Any] = {"level": "series", "series_instance_uid": uid, "study_instance_uid": study,
                                        "files": files}
                if files and self._is_seg_series(series, files):
                    info["seg"] = self._seg_info(study, series, files).to_dict()
                return info
            if study == uid:
                return {"level": "study", "study_instance_uid": uid,
                        "series": [s.to_dict() for s in self.series_for_study(uid)]}
            for f in files:
                if self._value(f, "SOPInstanceUID") == uid:
                    return {"level": "instance", "sop_instance_uid": uid, "series_instance_uid": series,
                            "study_instance_uid": study, "path": f}
        raise UnknownUIDError(f"UID {uid} is not in Slicer's DICOM database; import its files first")

    def verify(self) -> VerifyReport:
        report = VerifyReport()
        for _, series in self._all_series():
            for f in self.ctk.filesForSeries(series):
                report.checked += 1
                if Path(str(f)).is_file():
                    report.ok += 1
                else:
                    report.missing.append(FileIssue(str(f), "file no longer exists"))
        return report

    def remove_missing(self) -> RemoveReport:
        """Not done through the adapter: Slicer's DICOM browser has "Remove" for that.

        Raises
        ------
        UserError
            Always (says to use the DICOM browser).
        """
        raise UserError("removing entries from Slicer's DICOM database is done in Slicer's DICOM browser")


