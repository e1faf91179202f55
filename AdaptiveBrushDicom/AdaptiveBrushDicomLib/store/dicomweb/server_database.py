"""The read side of the :class:`~AdaptiveBrushDicomLib.store.database_protocol.DicomDatabase`
protocol answered by a DICOMweb server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.io.atomic import atomic_output
from AdaptiveBrushDicomLib.store.dicomweb.auth import Auth
from AdaptiveBrushDicomLib.store.dicomweb.connection import DicomWebConnection, RetryPolicy, _value
from AdaptiveBrushDicomLib.store.series_kind import SEG_MODALITY
from AdaptiveBrushDicomLib.store.dicomweb.query import _seg_infos, _seg_series_rows, segs_for
from AdaptiveBrushDicomLib.store.dicomweb.retrieve import _int, _to_part10, pull
from AdaptiveBrushDicomLib.store.dicomweb.stow import push

if TYPE_CHECKING:  # pragma: no cover
    from AdaptiveBrushDicomLib.store.records import ImportReport, RemoveReport, SegSeriesInfo, SeriesInfo, StudyInfo, VerifyReport


# ---------------------------------------------------------------------- database protocol
class DicomWebDatabase:
    """The :class:`~AdaptiveBrushDicomLib.store.database_protocol.DicomDatabase` queries answered by a DICOMweb server.

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
        """Push files (STOW-RS, resuming); reported as an :class:`~AdaptiveBrushDicomLib.store.records.ImportReport`
        (``added`` = sent, ``unchanged`` = already on the server)."""
        from AdaptiveBrushDicomLib.store.records import FileIssue, ImportReport

        rep = push(list(paths), self.url, self.auth, retry=self.retry)
        return ImportReport(
            files_seen=rep.files_seen, added=rep.sent, unchanged=rep.skipped, non_dicom=len(rep.non_dicom),
            errors=[FileIssue(f.path, f.reason, f.sop_instance_uid or None) for f in rep.failed],
            seconds=rep.seconds,
        )

    # -------------------------------------------------------------- read side
    def studies(self) -> list["StudyInfo"]:
        """All studies on the server (QIDO-RS), by patient then study description."""
        from AdaptiveBrushDicomLib.store.records import StudyInfo

        rows = self.conn.search_studies(fields=["StudyDescription", "NumberOfStudyRelatedSeries",
                                                "NumberOfStudyRelatedInstances"])
        out = [StudyInfo(
            study_instance_uid=_value(r, "0020000D"), patient_id=_value(r, "00100020"),
            patient_name=_value(r, "00100010"), study_description=_value(r, "00081030"),
            study_date=_value(r, "00080020"), n_series=_int(_value(r, "00201206")),
            n_instances=_int(_value(r, "00201208"))) for r in rows]
        return sorted(out, key=lambda s: (s.patient_id, s.study_description, s.study_instance_uid))

    def series_for_study(self, study_uid: str) -> list["SeriesInfo"]:
        """Series of a study (QIDO-RS), by SeriesNumber."""
        from AdaptiveBrushDicomLib.store.records import SeriesInfo

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
        """SEG series referencing an image series (see :func:`~.query.segs_for`)."""
        return segs_for(volume_series_uid, self.url, self.auth, retry=self.retry)

    def trials_for_run(self, study_uid: str) -> list["SegSeriesInfo"]:
        """Trial SEGs of a run (study) in trial order."""
        from AdaptiveBrushDicomLib.store.seg_order import trials_in_order

        studies = self.conn.search_studies(filters={"StudyInstanceUID": study_uid}, fields=["StudyDescription"])
        desc = _value(studies[0], "00081030") if studies else ""
        return trials_in_order(_seg_infos(self.conn, study_uid, desc, _seg_series_rows(self.conn, study_uid)))

    def gold_for_volume(self, volume_series_uid: str) -> list["SegSeriesInfo"]:
        """Gold-standard SEGs referencing an image series."""
        from AdaptiveBrushDicomLib.store.seg_order import gold_only

        return gold_only(self.segs_for_series(volume_series_uid))

    def files_for_series(self, series_uid: str) -> list[Path]:
        """Pull the series into the cache (resuming) and return its files by InstanceNumber."""
        rep = pull(series_uid, self.cache_dir / series_uid, self.url, self.auth, retry=self.retry, force=True)
        return rep.files

    def file_for_instance(self, sop_instance_uid: str) -> Path | None:
        """The instance pulled into the cache folder (None if the server does not have it)."""
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
        """What the server holds about a series, study or instance UID.

        Raises
        ------
        UnknownUIDError
            The server knows no series, study or instance with this UID.
        """
        from AdaptiveBrushDicomLib.store.database_protocol import UnknownUIDError

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
        """Not available: a DICOMweb server manages its own storage.

        Raises
        ------
        UserError
            Always.
        """
        raise UserError(f"{self.url}: verify checks local files; a DICOMweb server manages its own storage")

    def remove_missing(self) -> "RemoveReport":
        """Not available: deleting on a server is done with the server's own tools.

        Raises
        ------
        UserError
            Always.
        """
        raise UserError(f"{self.url}: remove-missing concerns local files; delete on the server with its own tools")
