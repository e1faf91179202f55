"""Series descriptions / numbers and patient IDs of a run."""

from __future__ import annotations

import pytest

from AdaptiveBrushDicomLib.errors import UserError
from AdaptiveBrushDicomLib.dicom.naming import (
    GOLD_SERIES_NUMBER,
    TRIAL_SERIES_BASE,
    VOLUME_SERIES_NUMBER,
    gold_series_description,
    gold_series_number,
    parse_trial_series_description,
    patient_id,
    sanitize,
    trial_number_from_series_number,
    trial_series_description,
    trial_series_number,
)

ALLOWED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def test_trial_series_description():
    assert trial_series_description(42, "watershed") == "trial_042_watershed"
    assert trial_series_description(0, "level set (fast)") == "trial_000_level_set_fast"
    assert trial_series_description(12345, "Région\\growing") == "trial_12345_R_gion_growing"
    assert trial_series_description(7, None) == "trial_007"
    assert trial_series_description(7, "  ") == "trial_007"


def test_long_algorithm_names_fit_lo_and_stay_distinct():
    a = trial_series_description(1, "x" * 100 + "a")
    b = trial_series_description(1, "x" * 100 + "b")
    assert len(a) == len(b) == 64 and a != b
    assert a.startswith("trial_001_xxx")
    assert trial_series_description(1, "x" * 100 + "a") == a  # deterministic
    assert set(a) <= ALLOWED


def test_parse_trial_series_description():
    assert parse_trial_series_description("trial_042_watershed") == (42, "watershed")
    assert parse_trial_series_description("trial_007") == (7, None)
    assert parse_trial_series_description("gold_tumor") is None
    n, alg = parse_trial_series_description(trial_series_description(3, "level set"))
    assert (n, alg) == (3, "level_set")


def test_series_numbers():
    assert VOLUME_SERIES_NUMBER == 1 and GOLD_SERIES_NUMBER == 900 and TRIAL_SERIES_BASE == 1000
    assert trial_series_number(42) == 1042
    assert trial_number_from_series_number(1042) == 42
    assert trial_number_from_series_number(900) is None
    assert gold_series_number() == 900 and gold_series_number(99) == 999
    assert max(gold_series_number(i) for i in range(100)) < trial_series_number(0)
    with pytest.raises(UserError, match="0..99"):
        gold_series_number(100)
    with pytest.raises(UserError, match="non-negative"):
        trial_series_number(-1)
    with pytest.raises(UserError, match="too large"):
        trial_series_number(2**31)


def test_gold_series_description():
    assert gold_series_description() == "gold"
    assert gold_series_description("MRBrainTumor1 tumor") == "gold_MRBrainTumor1_tumor"


def test_patient_id():
    assert patient_id("MRBrainTumor1") == "AdaptiveBrush_MRBrainTumor1"
    assert patient_id("UPENN-GBM-00220/t2 lesion") == "AdaptiveBrush_UPENN-GBM-00220_t2_lesion"
    long_id = patient_id("s" * 200)
    assert len(long_id) == 64 and set(long_id) <= ALLOWED
    assert patient_id("s" * 200) == long_id and patient_id("s" * 199) != long_id
    with pytest.raises(UserError, match="empty"):
        patient_id(" ")


def test_sanitize():
    assert sanitize("a  b//c") == "a_b_c"
    assert sanitize("***") == "unnamed"
