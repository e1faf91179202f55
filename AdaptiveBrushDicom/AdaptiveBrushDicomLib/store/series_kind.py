"""What a SEG series is for: gold standard, optimisation trial (number, algorithm, run) or other.

Pure functions of a SeriesDescription, ContentLabel and ContentDescription, shared by every
:class:`~.database_protocol.DicomDatabase` implementation so they all give the same answers
(the SQLite index caches the result and recomputes it when :data:`CLASSIFIER_VERSION` changes).

Conventions for optimisation runs (see ``docs/database.md``)
-----------------------------------------------------------
* a trial SEG has a SeriesDescription ``trial_<number>[_<algorithm>]`` (e.g.
  ``trial_042_watershed``, see ``dicom.naming``) or ContentLabel ``TRIAL_<number>``;
  SeriesNumber (``1000 + n`` from ``dicom.naming``) is a tie-breaker only;
* a gold standard SEG has a SeriesDescription starting with ``gold`` (``gold``,
  ``gold_<name>``, ``Gold standard (tumor)``...) or ContentLabel ``GOLD``/``GOLD_STANDARD``;
* the run of a trial is the ``<run>`` of a ContentDescription ``<run> trial <n>`` (what
  ``migrate`` writes: all runs of one image share the image's study); without one, the
  study is the run and its StudyDescription the run name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from AdaptiveBrushDicomLib.core.value_enum import ValueEnum


class SeriesKind(ValueEnum):
    """What a SEG series is for (a closed set; stored as its value in the SQLite index).

    ``str`` subclass: members compare equal to their values (rows read back as plain text)
    and ``str()`` / f-strings / JSON give the value.
    """

    GOLD = "gold"
    TRIAL = "trial"
    OTHER = "other"


#: Modality (0008,0060) of segmentation series.
SEG_MODALITY = "SEG"

#: The kinds under their historical names.
KIND_GOLD = SeriesKind.GOLD
KIND_TRIAL = SeriesKind.TRIAL
KIND_OTHER = SeriesKind.OTHER

#: Version of the :func:`classify_series` rules; stores that cache the classification (the
#: SQLite index) recompute it when this changes.
CLASSIFIER_VERSION = 2

_TRIAL_RE = re.compile(r"^\s*trial[\s_\-#]*0*(\d+)(?:[\s_\-]+(.*?))?\s*$", re.IGNORECASE)
_GOLD_RE = re.compile(r"^\s*gold(?:\b|_|-|$)", re.IGNORECASE)
_GOLD_CONTENT_LABELS = ("GOLD", "GOLD_STANDARD", "GOLDSTANDARD")
_TRIAL_LABEL_RE = re.compile(r"^\s*trial[_\s-]*0*(\d+)\s*$", re.IGNORECASE)
_RUN_RE = re.compile(r"^\s*(?P<run>.*?\S)\s+trial[\s_#-]*0*\d+\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SeriesTag:
    """What a SEG series is, derived from its descriptions (see :func:`classify_series`)."""

    kind: SeriesKind = SeriesKind.OTHER
    trial_number: int | None = None
    algorithm: str | None = None


def classify_series(series_description: str | None, content_label: str | None = None) -> SeriesTag:
    """Kind, trial number and algorithm of a SEG from its SeriesDescription / ContentLabel.

    >>> classify_series("trial_042_watershed")
    SeriesTag(kind=<SeriesKind.TRIAL: 'trial'>, trial_number=42, algorithm='watershed')
    >>> classify_series("Gold standard").kind
    <SeriesKind.GOLD: 'gold'>
    """
    desc = (series_description or "").strip()
    label = (content_label or "").strip()
    if _GOLD_RE.match(desc) or label.upper() in _GOLD_CONTENT_LABELS:
        return SeriesTag(KIND_GOLD)
    m = _TRIAL_RE.match(desc)
    if m:
        algo = (m.group(2) or "").strip() or None
        return SeriesTag(KIND_TRIAL, int(m.group(1)), algo)
    m = _TRIAL_LABEL_RE.match(label)
    if m:
        return SeriesTag(KIND_TRIAL, int(m.group(1)))
    return SeriesTag(KIND_OTHER)


def run_name_from_content(content_description: str | None) -> str:
    """Run name in a ContentDescription ``<run> trial <n>`` ("" if it has another form).

    >>> run_name_from_content("optuna_2026-01-28 trial 42")
    'optuna_2026-01-28'
    """
    m = _RUN_RE.match(content_description or "")
    return m.group("run") if m else ""
