"""DicomManager: the convenience object on top of one DICOM database (write + index + query + load-by-UID).

Not a database itself and not an implementation of one: the databases implement
:class:`~AdaptiveBrushDicomLib.store.database_protocol.DicomDatabase` (the embedded SQLite
index :mod:`~AdaptiveBrushDicomLib.store.sqlite`, Slicer's DICOM database through
:class:`~AdaptiveBrushDicomLib.slicer.ctk_database.SlicerDatabaseAdapter`, a DICOMweb
server). The manager ties the core modules together (synthetic series, SEG writing and
reading, reference series) with one of them: the SQLite index by default.

A convenience object for scripts and the Python console, and what the Slicer module uses for
its database queries. It is not a facade every surface must use: the CLI's command modules
call the public modules directly (see docs/architecture.md, "Public API").

Heavy modules (highdicom via ``seg_write``, ``seg_read``) are imported inside the methods
that need them, so creating a manager and querying the database stays cheap.

Example
-------
>>> mgr = DicomManager(db_path="/tmp/index.sqlite")          # doctest: +SKIP
>>> series = mgr.create_synthetic_dicom(image, grid, "out/ct", name="case1")  # doctest: +SKIP
>>> mgr.export_segmentation_as_dicom_seg(labelmap, "out/ct", "out/trial_001.dcm",
...                                      series_description="trial_001_watershed")  # doctest: +SKIP
>>> [s.series_description for s in mgr.get_segmentations_for_volume(series.series_instance_uid)]  # doctest: +SKIP
['trial_001_watershed']
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from AdaptiveBrushDicomLib.store.database_protocol import DicomDatabase, UnknownUIDError
from AdaptiveBrushDicomLib.store.records import ImportReport, SegSeriesInfo
from AdaptiveBrushDicomLib.store.seg_order import in_run
from AdaptiveBrushDicomLib.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from AdaptiveBrushDicomLib.core.geometry import Grid
    from AdaptiveBrushDicomLib.core.labelmap import LabelMap
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.seg.read import DecodedSeg
    from AdaptiveBrushDicomLib.dicom.seg.write import WriteResult
    from AdaptiveBrushDicomLib.dicom.synthetic import SyntheticSeries


class DicomManager:
    """Facade over the core modules and a DICOM database.

    Parameters
    ----------
    database : DicomDatabase, optional
        Database to index and query. Default: a :class:`~.sqlite.index.SqliteDicomIndex` at
        ``db_path``, opened on first use.
    db_path : str or Path, optional
        Location of the default SQLite index (default: ``$ABDICOM_DB`` or the user data
        folder, see :func:`~.sqlite.index.default_database_path`). Ignored when ``database`` is given.
    auto_import : bool
        Index files this manager writes (synthetic series, SEGs) right after writing them.
    """

    def __init__(self, database: DicomDatabase | None = None, *, db_path: str | Path | None = None,
                 auto_import: bool = True) -> None:
        self._database = database
        self._db_path = Path(db_path) if db_path is not None else None
        self.auto_import = auto_import

    # ------------------------------------------------------------------ database
    @property
    def database(self) -> DicomDatabase:
        """The database (opened on first access)."""
        return self.ensure_database_initialized()

    def ensure_database_initialized(self) -> DicomDatabase:
        """Open (and create if needed) the database; return it.

        Raises
        ------
        UserError
            The SQLite index cannot be opened (read-only, newer schema, not an index).
        """
        if self._database is None:
            from AdaptiveBrushDicomLib.store.sqlite.index import SqliteDicomIndex

            self._database = SqliteDicomIndex(self._db_path)
        return self._database

    def close(self) -> None:
        """Close the default SQLite index if this manager opened it."""
        close = getattr(self._database, "close", None)
        if close is not None:
            close()

    def import_dicom_folder(self, path: str | Path, *, workers: int = 1) -> ImportReport:
        """Index every DICOM file under ``path`` (recursively; one transaction).

        ``workers`` > 1 parses large batches in that many processes (SQLite index only).

        Raises
        ------
        UserError
            ``path`` does not exist.
        """
        path = Path(path)
        if not path.exists():
            raise UserError("no such folder; give a folder of DICOM files", path)
        if workers > 1:
            from AdaptiveBrushDicomLib.store.sqlite.index import SqliteDicomIndex

            if isinstance(self.database, SqliteDicomIndex):
                return self.database.import_paths([path], workers=workers)
        return self.database.import_paths([path])

    # ------------------------------------------------------------------ writing
    def create_synthetic_dicom(
        self,
        array_kji: np.ndarray,
        grid: "Grid",
        out_dir: str | Path,
        *,
        name: str = "volume",
        patient_id: str | None = None,
        modality: str = "MR",
        study_description: str | None = None,
        series_description: str | None = None,
        study_instance_uid: str | None = None,
        force: bool = False,
    ) -> "SyntheticSeries":
        """Write an image volume as a DICOM series (deterministic UIDs) and index it.

        Parameters
        ----------
        array_kji : image voxels indexed [k, j, i].
        grid : its LPS geometry.
        out_dir : folder for ``0001.dcm``, ``0002.dcm``...
        name : sample name; default PatientID is ``AdaptiveBrush_<name>`` and the default
            study/series descriptions are ``name``.
        study_instance_uid : put the series in an existing study (e.g. a run's study).

        Returns
        -------
        SyntheticSeries
        """
        from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series, patient_id_for

        res = create_synthetic_series(
            array_kji, grid, out_dir,
            patient_id=patient_id or patient_id_for(name),
            modality=modality,
            study_description=name if study_description is None else study_description,
            series_description=name if series_description is None else series_description,
            study_instance_uid=study_instance_uid,
            force=force,
        )
        if self.auto_import:
            self.database.import_paths(list(res.paths))
        return res

    def export_segmentation_as_dicom_seg(
        self,
        labelmap: "LabelMap",
        reference_dir: "str | Path | ReferenceSeries",
        out_path: str | Path,
        *,
        series_description: str = "Segmentation",
        series_number: int = 100,
        compression: str | None = None,
        allow_binary: bool = False,
        force: bool = False,
        **kwargs: Any,
    ) -> "WriteResult":
        """Write ``labelmap`` as a DICOM SEG referencing the series in ``reference_dir``, and index it.

        Parameters
        ----------
        labelmap : LabelMap on the reference lattice.
        reference_dir : folder of the referenced image series (or a parsed ReferenceSeries).
        out_path : SEG file to write (refused if it exists, unless ``force``).
        series_description : e.g. ``trial_042_watershed`` or ``gold_standard`` (see
            ``docs/database.md`` for how the database classifies them).
        compression : transfer syntax name (default: the writer's, Deflate).
        allow_binary : write BINARY (66.4) when segments overlap instead of refusing.
        **kwargs : passed to :func:`~.seg_write.write_seg` (``series_instance_uid``,
            ``content_label``, ``content_creator_name``...).

        Returns
        -------
        WriteResult
        """
        from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
        from AdaptiveBrushDicomLib.dicom.seg.write import write_seg

        reference = reference_dir if isinstance(reference_dir, ReferenceSeries) else \
            ReferenceSeries.from_folder(reference_dir)
        if compression is not None:
            kwargs["compression"] = compression
        res = write_seg(labelmap, reference, out_path, series_description=series_description,
                        series_number=series_number, allow_binary=allow_binary, force=force, **kwargs)
        if self.auto_import:
            self.database.import_paths([res.path])
        return res

    # ------------------------------------------------------------------ queries
    def get_segmentations_for_volume(self, series_uid: str) -> list[SegSeriesInfo]:
        """SEG series referencing the image series ``series_uid``, grouped by study (run),
        gold standards first, then trials in order."""
        return self.database.segs_for_series(series_uid)

    def get_trials_for_run(self, study_uid: str, run_name: str | None = None) -> list[SegSeriesInfo]:
        """Trial SEGs of a study, by trial number; only those of run ``run_name`` if given
        (runs that share the image's study are told apart by their ContentDescription
        ``<run> trial <n>``, see ``docs/database.md``)."""
        trials = self.database.trials_for_run(study_uid)
        return trials if run_name is None else in_run(trials, run_name)

    def get_gold_for_volume(self, series_uid: str) -> list[SegSeriesInfo]:
        """Gold-standard SEGs referencing the image series ``series_uid``."""
        return self.database.gold_for_volume(series_uid)

    def seg_file_for_uid(self, uid: str) -> Path:
        """The SEG file of a SEG SeriesInstanceUID or SOPInstanceUID.

        Raises
        ------
        UnknownUIDError
            The UID is not in the database.
        UserError
            A series with several instances (give the SOPInstanceUID) or a file that is gone.
        """
        db = self.database
        path = db.file_for_instance(uid)
        if path is None:
            files = db.files_for_series(uid)
            if not files:
                raise UnknownUIDError(f"UID {uid} is neither a SEG series nor a SOP instance in the database; "
                                      "import the folder holding it first")
            if len(files) > 1:
                raise UserError(f"series {uid} has {len(files)} instances; give the SOPInstanceUID of one of them")
            path = files[0]
        if not Path(path).is_file():
            raise UserError(f"indexed file of UID {uid} no longer exists; run 'abdicom db remove-missing' "
                            "or re-import it", path)
        return Path(path)

    def decode_segmentation_by_uid(self, uid: str, *, use_reference: bool = True) -> "DecodedSeg":
        """Decode a SEG found by SeriesInstanceUID or SOPInstanceUID (see :meth:`load_segmentation_by_uid`)."""
        from AdaptiveBrushDicomLib.dicom.seg.read import read_seg

        path = self.seg_file_for_uid(uid)
        reference = self._reference_for(path) if use_reference else None
        return read_seg(path, reference=reference)

    def load_segmentation_by_uid(self, seg_series_or_sop_uid: str, *, use_reference: bool = True) -> "LabelMap":
        """Decode a SEG from the database into a :class:`~.labelmap.LabelMap`.

        When the referenced image series is in the database too, the labelmap is on that
        series' full grid (slices without segments included); otherwise on the grid the
        SEG's own frames describe.

        Raises
        ------
        UnknownUIDError, UserError
        """
        return self.decode_segmentation_by_uid(seg_series_or_sop_uid, use_reference=use_reference).labelmap

    def _reference_for(self, seg_path: Path) -> "ReferenceSeries | None":
        """The referenced image series of a SEG, if all of its files are in the database."""
        import pydicom

        from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries

        try:
            ds = pydicom.dcmread(seg_path, stop_before_pixels=True, specific_tags=["ReferencedSeriesSequence"])
        except Exception:  # read_seg reports unreadable files properly
            return None
        items = getattr(ds, "ReferencedSeriesSequence", None) or []
        if not items:
            return None
        files = [p for p in self.database.files_for_series(str(items[0].SeriesInstanceUID)) if Path(p).is_file()]
        if not files:
            return None
        try:
            return ReferenceSeries.from_files(files)
        except UserError:
            return None
