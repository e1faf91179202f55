"""Names and numbers of the DICOM series of an optimization run.

Scheme (one study per sample / run):

=====================  =================  =============================================
object                 SeriesNumber       SeriesDescription
=====================  =================  =============================================
source image volume    1                  (from the source, or the sample name)
gold standard(s)       900, 901, ... 999  ``gold_<name>`` (:func:`gold_series_description`)
trial ``n``            1000 + n           ``<run> trial_<nnn>_<algorithm>`` (:func:`trial_series_description`)
=====================  =================  =============================================

Runs told apart: two runs on one image share the study (one image, one study), so the
run name leads the trial's SeriesDescription, e.g. ``optuna_0128 trial_042_watershed``
(a space, which generated text never contains otherwise, separates the two parts). The
trial part is kept whole (the algorithm shortened to at most :data:`TRIAL_PART_MAX`
characters); a long run name is shortened with a digest so the total stays within LO's
64 characters. SeriesNumber stays ``1000 + n``: it gives the trial number back, and
browsers sort the trials of every run in trial order.

Trial numbers therefore sort after the gold standards in every DICOM browser (Slicer,
OHIF, PACS sort by SeriesNumber) and ``SeriesNumber - 1000`` gives the trial number
back. SeriesNumber is IS (at most 2**31 - 1).

PatientID is ``AdaptiveBrush_<sample>`` (:func:`patient_id`).

Generated text only uses ``A-Z a-z 0-9 _ . -``; other characters become ``_``. When a
generated value would exceed its VR length (LO: 64) the variable part is shortened and
an 8-hex-digit digest of the full text is appended, so distinct inputs stay distinct and
the same input always gives the same value.
"""

from __future__ import annotations

import hashlib
import re

from AdaptiveBrushDicomLib.errors import UserError

__all__ = [
    "GOLD_SERIES_NUMBER",
    "LO_MAX",
    "MAX_GOLD_STANDARDS",
    "PATIENT_ID_PREFIX",
    "TRIAL_SERIES_BASE",
    "VOLUME_SERIES_NUMBER",
    "gold_series_description",
    "gold_series_number",
    "parse_trial_series_description",
    "patient_id",
    "run_from_trial_series_description",
    "sanitize",
    "trial_number_from_series_number",
    "trial_series_description",
    "trial_series_number",
]

#: SeriesNumber of the source image volume.
VOLUME_SERIES_NUMBER = 1
#: SeriesNumber of the first gold standard; further ones count up.
GOLD_SERIES_NUMBER = 900
#: Gold standards per study that get their own number (900..999).
MAX_GOLD_STANDARDS = 100
#: SeriesNumber of trial n is TRIAL_SERIES_BASE + n.
TRIAL_SERIES_BASE = 1000
#: Largest IS value.
IS_MAX = 2**31 - 1
#: LO value length limit.
LO_MAX = 64
PATIENT_ID_PREFIX = "AdaptiveBrush_"

_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")
_TRIAL_RE = re.compile(r"^(?:(?P<run>\S+) )?trial_(?P<n>\d+)(?:_(?P<alg>\S+))?$")
#: Longest trial part (``trial_<nnn>_<algorithm>``) of a SeriesDescription with a run name.
TRIAL_PART_MAX = 40


def sanitize(text: str, fallback: str = "unnamed") -> str:
    """Replace characters outside ``A-Z a-z 0-9 _ . -`` by ``_`` (runs collapsed, ends stripped)."""
    out = _BAD.sub("_", str(text)).strip("_")
    out = re.sub(r"_+", "_", out)
    return out or fallback


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _fit(prefix: str, variable: str, limit: int = LO_MAX) -> str:
    """``prefix + variable``, shortening ``variable`` (+ digest) to fit ``limit``.

    Raises
    ------
    UserError
        ``prefix`` alone leaves no room in ``limit`` characters.
    """
    full = prefix + variable
    if len(full) <= limit:
        return full
    keep = limit - len(prefix) - 9  # "_" + 8 hex digits
    if keep < 1:
        raise UserError(f"cannot fit {full!r} into {limit} characters")
    return f"{prefix}{variable[:keep].rstrip('_')}_{_digest(variable)}"


def _check_trial(trial_number: int) -> int:
    if isinstance(trial_number, bool) or int(trial_number) != trial_number or trial_number < 0:
        raise UserError(f"trial number must be a non-negative integer, got {trial_number!r}")
    n = int(trial_number)
    if TRIAL_SERIES_BASE + n > IS_MAX:
        raise UserError(f"trial number {n} is too large for a DICOM SeriesNumber (IS)")
    return n


def trial_series_description(trial_number: int, algorithm: str | None, run_name: str | None = None) -> str:
    """SeriesDescription of a trial SEG, e.g. ``optuna_0128 trial_042_watershed``.

    Parameters
    ----------
    trial_number : non-negative int, zero-padded to 3 digits (more when needed).
    algorithm : algorithm name, sanitised (see module docstring); None or empty -> no suffix.
    run_name : the run's name (sanitised, shortened with a digest to fit); None -> no run part.

    Returns
    -------
    str of at most 64 characters (LO).
    """
    n = _check_trial(trial_number)
    prefix = f"trial_{n:03d}"
    limit = TRIAL_PART_MAX if run_name and str(run_name).strip() else LO_MAX
    trial = prefix if not algorithm or not str(algorithm).strip() else _fit(prefix + "_", sanitize(str(algorithm)),
                                                                            max(limit, len(prefix) + 10))
    if not run_name or not str(run_name).strip():
        return trial
    return _fit("", sanitize(str(run_name)), LO_MAX - len(trial) - 1) + " " + trial


def run_from_trial_series_description(description: str) -> str | None:
    """The run part of a trial's SeriesDescription (None when it has none)."""
    m = _TRIAL_RE.match(str(description).strip())
    return m.group("run") if m else None


def parse_trial_series_description(description: str) -> tuple[int, str | None] | None:
    """Inverse of :func:`trial_series_description`: ``(trial_number, algorithm)`` or None.

    The algorithm comes back sanitised (and shortened if it was).
    """
    m = _TRIAL_RE.match(str(description).strip())
    if m is None:
        return None
    return int(m.group("n")), m.group("alg")


def trial_series_number(trial_number: int) -> int:
    """SeriesNumber of trial ``n``: ``1000 + n``."""
    return TRIAL_SERIES_BASE + _check_trial(trial_number)


def trial_number_from_series_number(series_number: int) -> int | None:
    """Trial number of a SeriesNumber (``n - 1000``), None for numbers below 1000."""
    n = int(series_number)
    return n - TRIAL_SERIES_BASE if n >= TRIAL_SERIES_BASE else None


def gold_series_number(index: int = 0) -> int:
    """SeriesNumber of the ``index``-th gold standard of a study (900 + index, at most 999).

    Raises
    ------
    UserError
        ``index`` is not an integer in 0..99.
    """
    if isinstance(index, bool) or int(index) != index or not 0 <= index < MAX_GOLD_STANDARDS:
        raise UserError(
            f"gold standard index must be 0..{MAX_GOLD_STANDARDS - 1} (SeriesNumbers 900..999), got {index!r}"
        )
    return GOLD_SERIES_NUMBER + int(index)


def gold_series_description(name: str | None = None) -> str:
    """SeriesDescription of a gold standard: ``gold`` or ``gold_<name>`` (sanitised, LO)."""
    if not name or not str(name).strip():
        return "gold"
    return _fit("gold_", sanitize(str(name)))


def patient_id(sample: str) -> str:
    """PatientID of a sample: ``AdaptiveBrush_<sample>`` sanitised, at most 64 characters (LO).

    Raises
    ------
    UserError
        When ``sample`` is empty.
    """
    if sample is None or not str(sample).strip():
        raise UserError("sample name is empty; cannot derive a PatientID")
    return _fit(PATIENT_ID_PREFIX, sanitize(str(sample)))
