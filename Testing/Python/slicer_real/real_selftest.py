"""``Testing/Slicer/AdaptiveBrushDicomSelfTest.py`` (the in-Slicer self-test) and the module's
own ``AdaptiveBrushDicomTest``, run on the real Slicer core."""

from __future__ import annotations

import unittest

import harness


def _run(case_class) -> unittest.TestResult:
    suite = unittest.TestLoader().loadTestsFromTestCase(case_class)
    return unittest.TextTestRunner(verbosity=0).run(suite)


def test_in_slicer_self_test(slicer_env):
    module = harness._load_file("AdaptiveBrushDicomSelfTest", harness.REPO / "Testing" / "Slicer" / "AdaptiveBrushDicomSelfTest.py")
    result = _run(module.AdaptiveBrushDicomSelfTest)
    problems = [f"{test.id()}: {text}" for test, text in result.failures + result.errors]
    assert not problems, "\n".join(problems)
    assert result.testsRun >= 6 and not result.skipped, [s[1] for s in result.skipped]


def test_module_test_class(slicer_env):
    result = _run(slicer_env.AdaptiveBrushDicom.AdaptiveBrushDicomTest)
    assert result.wasSuccessful(), result.failures + result.errors
