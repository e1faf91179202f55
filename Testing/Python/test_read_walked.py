"""The SEG decoder gives one answer whether the raw walker or pydicom read the file.

``read_seg`` walks Explicit VR LE / Deflated LABELMAP SEGs without pydicom
(``seg/source_walked.py``) and reads everything else with pydicom. Each file here is
decoded both ways (the walker switched off for the second) and the results compared:
voxels (values and dtype), grid, every segment field, notes, UIDs, or the one-line error.
Files: every writer's seeds (ours in five syntaxes, highdicom, dcmqi, the dcmqi corpus)
and their seeded mutants (truncations, bit flips, bursts, element edits).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from abdicom_testkit import hostile
from AdaptiveBrushDicomLib.dicom import walker
from AdaptiveBrushDicomLib.dicom.seg import read as seg_read
from AdaptiveBrushDicomLib.dicom.seg import source_walked
from AdaptiveBrushDicomLib.dicom.seg.read import read_seg
from AdaptiveBrushDicomLib.errors import UserError

#: Seeds whose element edits are compared too (the others get truncations and flips).
EDITED_SEEDS = ("ours-deflate", "ours-explicit", "highdicom-labelmap", "dcmqi-labelmap")


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return hostile.write_seeds(tmp_path_factory.mktemp("seeds"))


def _outcome(path: Path, reference: Path | None) -> tuple:
    """Everything a caller sees of one decode: the result's fields, or the error's type and text."""
    try:
        dec = read_seg(path, reference=reference)
    except UserError as exc:
        return ("error", type(exc).__name__, str(exc))
    lm = dec.labelmap
    g = lm.grid
    return ("ok", lm.array.dtype.str, lm.array.shape, lm.array.tobytes(), g.describe(), g.slice_positions_mm,
            [repr(s) for s in lm.segments], dec.notes, dec.sop_class_uid, dec.transfer_syntax_uid,
            dec.series_instance_uid, dec.sop_instance_uid, dec.study_instance_uid, dec.referenced_series_uid,
            dec.frame_of_reference_uid, dec.series_description, dec.n_frames, dec.segmentation_type)


def _walker_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path) -> None:
        raise walker.NotSupported("walker switched off by the test")

    monkeypatch.setattr(source_walked, "WalkedSource", refuse)


def _both(path: Path, reference: Path | None, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple, tuple, bool]:
    """(outcome walked-first, outcome with pydicom only, whether the walker decoded it)."""
    used = []
    real = seg_read._pydicom

    def spy(p: Path):
        used.append(p)
        return real(p)

    with monkeypatch.context() as m:
        m.setattr(seg_read, "_pydicom", spy)
        first = _outcome(path, reference)
    with monkeypatch.context() as m:
        _walker_off(m)
        second = _outcome(path, reference)
    return first, second, not used


def test_seeds_decode_the_same_both_ways(seeds, monkeypatch):
    walked = set()
    for seed in seeds:
        first, second, by_walker = _both(seed.path, seed.reference, monkeypatch)
        assert first == second, seed.name
        assert first[0] == "ok", (seed.name, first)
        if by_walker:
            walked.add(seed.name)
    # ours in the syntaxes the walker reads, and the other writers' Explicit VR LE LABELMAPs
    assert {"ours-deflate", "ours-explicit"} <= walked
    assert not walked & {"ours-rle", "ours-jpeg2000", "ours-jpegls", "highdicom-binary", "dcmqi-binary"}


def test_mutants_get_one_answer(seeds, tmp_path, monkeypatch):
    """Seeded mutants of every seed: the same voxels and segments, or the same error, both ways."""
    cases, mismatches, walked = 0, [], 0
    for index, seed in enumerate(seeds):
        rng = np.random.default_rng(2000 + index)
        for name, mutant in hostile.mutants(seed.path.read_bytes(), rng, edits=seed.name in EDITED_SEEDS):
            path = tmp_path / f"{seed.name}.{name}.dcm"
            path.write_bytes(mutant)
            first, second, by_walker = _both(path, seed.reference, monkeypatch)
            if first != second:
                mismatches.append(f"{seed.name}/{name}: walked {str(first)[:300]}\n   pydicom {str(second)[:300]}")
            cases += 1
            walked += by_walker and first[0] == "ok"
            path.unlink()
    assert cases >= 200 and walked >= 10
    assert not mismatches, f"{len(mismatches)} of {cases}:\n" + "\n".join(mismatches[:10])


def test_dataset_read_on_first_use(seeds):
    seed = next(s for s in seeds if s.name == "ours-deflate")
    dec = read_seg(seed.path, reference=seed.reference)
    assert dec._dataset is None  # walked: no pydicom dataset made
    ds = dec.dataset
    assert ds.SOPInstanceUID == dec.sop_instance_uid == pydicom.dcmread(seed.path).SOPInstanceUID
    assert ds.PixelData == pydicom.dcmread(seed.path).PixelData
    dec.dataset = None  # callers drop it to keep results small
    assert dec.dataset is None


def test_decode_command_imports_no_pydicom(seeds, tmp_path):
    """``abdicom decode`` of our default (Deflated) file with its reference: no pydicom, same file."""
    seed = next(s for s in seeds if s.name == "ours-deflate")
    out = tmp_path / "walked.seg.nrrd"
    code = (
        "import sys\n"
        "from AdaptiveBrushDicomLib.cli.main import main\n"
        f"rc = main(['decode', {str(seed.path)!r}, '--reference', {str(seed.reference)!r}, '--out', {str(out)!r}])\n"
        "print(rc, 'pydicom' in sys.modules, 'highdicom' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip().splitlines()[-1] == "0 False False"
    from AdaptiveBrushDicomLib.io.volumes import read_seg_nrrd

    got = read_seg_nrrd(out)
    expected = read_seg(seed.path, reference=seed.reference).labelmap
    assert np.array_equal(got.array, expected.array)
    assert [s.name for s in got.segments] == [s.name for s in expected.segments]
