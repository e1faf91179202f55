"""The source image of a run / gold standard and its series in ``dicom/volume/``.

* A DICOM source (a folder holding one image series) stays itself: ``dicom/volume/``
  gets its files byte for byte, renamed ``0001.dcm``... in slice order (along the slice
  normal, as :class:`~AdaptiveBrushDicomLib.dicom.reference.ReferenceSeries` sorts them),
  and every SEG references that series with its Patient, Study, Series, Frame of
  Reference and SOP Instance UIDs (``volume_source: original``).
* Any other image becomes a synthetic series (``volume_source: synthetic``) with the
  PatientID from ``--patient-id``, else from run / gold metadata (``patient_id``,
  ``idc_patient``), else ``AdaptiveBrush_<sample>``, and Modality ``--modality``
  (default MR).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from AdaptiveBrushDicomLib.dicom import uids
from AdaptiveBrushDicomLib.errors import InputFileError, UserError
from AdaptiveBrushDicomLib.io.atomic import AtomicBatch
from AdaptiveBrushDicomLib.runs.plan import Plan, metadata_patient_id
from AdaptiveBrushDicomLib.runs.layout import CONFIG_NAME, GOLD_METADATA_NAME, VOLUME_DIR
from AdaptiveBrushDicomLib.runs.results import sample_name_from
from AdaptiveBrushDicomLib.runs.status import VolumeSource

#: Image file suffixes tried in ``--volumes-dir`` (in this order), then ``DIR/<name>/``.
VOLUME_SUFFIXES = (".nrrd", ".nhdr", ".nii.gz", ".nii", ".mha", ".mhd")


@dataclass
class VolumeOptions:
    """How source images are found and, when not DICOM, turned into a series."""

    volume: Path | None = None
    volumes_dir: Path | None = None
    modality: str = "MR"
    patient_id: str | None = None


def is_plain_name(sample: str) -> bool:
    """A sample name that cannot leave ``--volumes-dir`` (no separators, no ``..``)."""
    return bool(sample) and not any(c in sample for c in "/\\:") and sample not in (".", "..") \
        and not sample.startswith("~")


def find_volume(sample: str, volumes_dir: Path) -> Path | None:
    """``DIR/<sample>.nrrd`` (.nhdr, .nii.gz, .nii, .mha, .mhd) or a ``DIR/<sample>/`` folder.

    Names with path separators or ``..`` are never looked up (None)."""
    if not is_plain_name(sample):
        return None
    for suffix in VOLUME_SUFFIXES:
        p = volumes_dir / f"{sample}{suffix}"
        if p.is_file():
            return p
    p = volumes_dir / sample
    if p.is_dir():
        return p
    return None


def volume_stem(path: Path) -> str:
    """File name without the image suffix (``MRHead.nii.gz`` -> ``MRHead``)."""
    name = path.name
    for suffix in VOLUME_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def resolve_volume(plan: Plan, opts: VolumeOptions) -> None:
    """Set ``plan.volume_path`` / ``plan.sample`` (and ``plan.reference`` for a DICOM
    source), or ``plan.volume_error`` saying why there is none.

    The sample named by the folder is looked up in ``--volumes-dir``; ``--volume`` is
    used for folders whose sample is not found there (or that name none)."""
    named = sample_name_from(plan.config) if plan.is_run else sample_name_from(plan.data or {})
    where = CONFIG_NAME if plan.is_run else GOLD_METADATA_NAME
    reasons = []
    if named and opts.volumes_dir is not None:
        if not is_plain_name(named):
            reasons.append(f"sample name {named!r} in {where} is not a plain name (it has a path separator or "
                           f"'..'), so it is not looked up in --volumes-dir {opts.volumes_dir}")
        else:
            found = find_volume(named, opts.volumes_dir)
            if found is not None:
                plan.sample, plan.volume_path = named, found
            else:
                reasons.append(f"sample {named!r}: none of {', '.join(named + s for s in VOLUME_SUFFIXES)} or "
                               f"{named}/ in {opts.volumes_dir}")
    if plan.volume_path is None and opts.volume is not None:
        plan.volume_path = opts.volume
        plan.sample = named if named and is_plain_name(named) else volume_stem(opts.volume)
        if named and volume_stem(opts.volume) != named:
            plan.report.notes.append(f"--volume {opts.volume.name} used for sample {named!r}")
    if plan.volume_path is None:
        if not named:
            reasons.append(f"no sample name in {where}")
        elif opts.volumes_dir is None:
            reasons.append(f"sample {named!r}")
        plan.volume_error = (f"{plan.job.folder}: source image not found ({'; '.join(reasons)}); give it with "
                             "--volume FILE (an image file or a DICOM folder) or --volumes-dir DIR (holding "
                             "<sample>.nrrd, .nii.gz, .mha, ... or a <sample>/ DICOM folder)")
        return
    if plan.volume_path.is_dir():
        _load_dicom_source(plan)


def _load_dicom_source(plan: Plan) -> None:
    from AdaptiveBrushDicomLib.dicom.reference import ReferenceSeries
    from AdaptiveBrushDicomLib.dicom.slice_gaps import refuse_slice_gaps

    assert plan.volume_path is not None
    try:
        plan.reference = ReferenceSeries.from_folder(plan.volume_path)
        # a missing slice: the trials were drawn on a volume read with it spread evenly (a wrong grid)
        refuse_slice_gaps(plan.reference, plan.volume_path, option="")
    except InputFileError as exc:
        plan.volume_error = f"DICOM source folder for {plan.job.folder}: {exc}"
        return
    if plan.reference.folder is None:  # pragma: no cover - from_folder always sets it
        plan.reference.folder = plan.volume_path


def canonical_voxels(array: np.ndarray) -> np.ndarray:
    """The image's values in a dtype that does not depend on the file format.

    ``uids.content_digest`` hashes the array bytes and dtype, so integer-valued images
    become int64 and others float64 before the digest; the stored pixels do not change.
    """
    a = np.asarray(array)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64, copy=False)
    if np.issubdtype(a.dtype, np.floating) and a.size and np.all(np.isfinite(a)) and np.all(np.mod(a, 1) == 0) \
            and float(a.min()) >= -(2.0 ** 62) and float(a.max()) <= 2.0 ** 62:
        return a.astype(np.int64)
    return a.astype(np.float64, copy=False)


class VolumeCache:
    """Read each non-DICOM source image once per process (voxels in canonical dtype)."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[np.ndarray, Any]] = {}

    def get(self, path: Path) -> tuple[np.ndarray, Any]:
        from AdaptiveBrushDicomLib.io.volumes import read_volume

        key = path.resolve()
        if key not in self._cache:
            if path.is_dir():
                from AdaptiveBrushDicomLib.dicom.walker import check_dicom_folder

                check_dicom_folder(path)  # GDCM inflates on its own: refuse deflate bombs first
            array, grid = read_volume(path)
            self._cache[key] = (canonical_voxels(array), grid)
        return self._cache[key]


def synthetic_patient_id(plan: Plan, opts: VolumeOptions) -> str:
    """``--patient-id``, else the metadata's patient, else ``AdaptiveBrush_<sample>``.

    Raises
    ------
    UserError
        The PatientID from the metadata is longer than 64 characters (LO).
    """
    from AdaptiveBrushDicomLib.dicom.synthetic import patient_id_for

    pid = opts.patient_id or metadata_patient_id(plan)
    if pid:
        if len(pid) > 64:
            raise UserError(f"PatientID {pid!r} is longer than 64 characters (LO); give a shorter --patient-id",
                            plan.job.folder)
        return pid
    assert plan.sample is not None
    return patient_id_for(plan.sample)


def describe_volume(plan: Plan, cache: VolumeCache, opts: VolumeOptions) -> dict[str, Any]:
    """What ``dicom/volume`` will be, without writing (dry run)."""
    if plan.reference is not None:
        return _original_info(plan, plan.reference)
    assert plan.volume_path is not None
    array, grid = cache.get(plan.volume_path)
    pid = synthetic_patient_id(plan, opts)
    digest = uids.content_digest(array, grid)
    return {"sample": plan.sample, "source": str(plan.volume_path), "volume_source": VolumeSource.SYNTHETIC,
            "patient_id": pid, "modality": opts.modality.upper(),
            "study_instance_uid": uids.study_uid(pid, digest),
            "series_instance_uid": uids.volume_series_uid(pid, digest),
            "frame_of_reference_uid": uids.frame_of_reference_uid(pid, digest),
            "folder": VOLUME_DIR, "files": grid.shape_kji[0], "grid": grid.describe(), "_grid": grid}


def _original_info(plan: Plan, ref: Any) -> dict[str, Any]:
    first = ref.dataset(0)  # the first header only (ref.datasets would read every slice)
    return {"sample": plan.sample, "source": str(plan.volume_path), "volume_source": VolumeSource.ORIGINAL,
            "patient_id": str(getattr(first, "PatientID", "")), "modality": str(getattr(first, "Modality", "")),
            "study_instance_uid": ref.study_instance_uid, "series_instance_uid": ref.series_instance_uid,
            "frame_of_reference_uid": ref.frame_of_reference_uid, "folder": VOLUME_DIR,
            "files": len(ref.paths), "grid": ref.grid.describe(), "_grid": ref.grid, "notes": []}


def write_volume(plan: Plan, cache: VolumeCache, opts: VolumeOptions) -> dict[str, Any]:
    """Fill ``dicom/volume`` (resuming a partial copy) and describe it."""
    if plan.reference is not None:
        return _copy_original(plan)
    return _write_synthetic(plan, cache, opts)


def _copy_original(plan: Plan) -> dict[str, Any]:
    """The DICOM source's files, byte for byte, as ``0001.dcm``... in slice order.

    Raises
    ------
    UserError
        ``dicom/volume`` holds a file that is not a slice of this series.
    """
    ref = plan.reference
    out = plan.job.folder / VOLUME_DIR
    names = [f"{k + 1:04d}.dcm" for k in range(len(ref.paths))]
    if out.is_dir():
        extra = sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and p.name not in names)
        if extra:
            raise UserError(f"{VOLUME_DIR} holds {', '.join(extra[:5])}, which is not part of the series in "
                            f"{plan.volume_path}; move it away and re-run", plan.job.folder)
    out.mkdir(parents=True, exist_ok=True)
    with AtomicBatch() as batch:  # written, synced together, then renamed: a final name is complete
        for name, src in zip(names, ref.paths):
            dst = out / name
            if dst.is_file():
                if dst.read_bytes() == Path(src).read_bytes():
                    continue
                raise UserError(f"{VOLUME_DIR}/{name} differs from {src} (the slice it stands for); the folder "
                                "holds another series -- move it away and re-run", plan.job.folder)
            shutil.copyfile(src, batch.temporary(dst))  # in the kernel where it can (copy_file_range)
    return _original_info(plan, ref)


def _write_synthetic(plan: Plan, cache: VolumeCache, opts: VolumeOptions) -> dict[str, Any]:
    from AdaptiveBrushDicomLib.dicom.synthetic import create_synthetic_series
    from AdaptiveBrushDicomLib.errors import OutputExistsError

    assert plan.volume_path is not None and plan.sample is not None
    array, grid = cache.get(plan.volume_path)
    patient_id = synthetic_patient_id(plan, opts)
    out = plan.job.folder / VOLUME_DIR
    desc = plan.sample[:64]
    try:
        series = create_synthetic_series(array, grid, out, patient_id=patient_id, modality=opts.modality,
                                         study_description=desc, series_description=desc)
    except OutputExistsError:
        _check_partial_synthetic(plan, out, uids.volume_series_uid(patient_id, uids.content_digest(array, grid)))
        series = create_synthetic_series(array, grid, out, patient_id=patient_id, modality=opts.modality,
                                         study_description=desc, series_description=desc, force=True)
    return {
        "sample": plan.sample, "source": str(plan.volume_path), "volume_source": VolumeSource.SYNTHETIC,
        "content_sha256": series.content_digest, "patient_id": series.patient_id,
        "modality": opts.modality.upper(), "study_instance_uid": series.study_instance_uid,
        "series_instance_uid": series.series_instance_uid,
        "frame_of_reference_uid": series.frame_of_reference_uid, "folder": VOLUME_DIR,
        "files": len(series.paths), "grid": grid.describe(), "notes": list(series.notes), "_grid": grid,
    }


def _check_partial_synthetic(plan: Plan, out: Path, expected: str) -> None:
    """An interrupted earlier run left part of *our* series: fine; anything else is refused.

    Raises
    ------
    UserError
        A file in ``dicom/volume`` is not part of the series (another SeriesInstanceUID).
    """
    import pydicom

    name = plan.volume_path.name if plan.volume_path is not None else "the source image"
    for p in sorted(out.glob("*.dcm")):
        try:
            uid = str(pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
                      .SeriesInstanceUID)
        except Exception:
            uid = None
        if uid != expected:
            raise UserError(f"{VOLUME_DIR} holds {p.name}, which is not part of the series of "
                            f"{name} (SeriesInstanceUID {uid}); move it away and re-run",
                            plan.job.folder) from None


__all__ = ["VOLUME_SUFFIXES", "VolumeOptions", "VolumeCache", "find_volume", "volume_stem", "resolve_volume",
           "describe_volume", "write_volume", "canonical_voxels", "is_plain_name", "synthetic_patient_id"]
