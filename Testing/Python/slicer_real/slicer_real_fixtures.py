"""pytest plugin with the fixtures of the real-Slicer suite (one Slicer version per process).

The suite's files are named ``real_*.py`` so the normal (Slicer-less) test run does not
collect them; ``Testing/Python/test_slicer_real.py`` starts one interpreter per Slicer
version with this plugin. Run one version by hand::

    ABD_SLICER_VERSION=v5.12.0 PYTHONPATH=Testing/Python/slicer_real .venv/bin/python -m pytest \
        -p slicer_real_fixtures -o python_files='real_*.py' Testing/Python/slicer_real -q
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
VERSION = os.environ.get("ABD_SLICER_VERSION", "")

if not VERSION:
    raise RuntimeError("set ABD_SLICER_VERSION to v5.10.0, v5.12.0 or main")
sys.path.insert(0, str(HERE))


@pytest.fixture(scope="session")
def rt(tmp_path_factory):
    """The headless Slicer runtime of this process (real MRML + Slicer's files)."""
    import harness

    return harness.start(VERSION, tmp_path_factory.mktemp("slicer"))

@pytest.fixture
def slicer_env(rt, tmp_path):
    """A clear scene, a fresh temporary DICOM database, default settings; the plugin
    order and testing flag restored afterwards."""
    import standins

    rt.clear_scene()
    standins.QSettings.store.clear()
    rt.slicer.app.testing = True
    rt.slicer.app.layout = None
    order = dict(rt.slicer.modules.dicomPlugins)
    original = rt.DICOMUtils.openTemporaryDatabase(str(tmp_path / "dicom-db"))
    yield rt
    rt.DICOMUtils.closeTemporaryDatabase(original)
    rt.slicer.modules.dicomPlugins.clear()
    rt.slicer.modules.dicomPlugins.update(order)
    rt.clear_scene()


@pytest.fixture(scope="session")
def case(tmp_path_factory, rt):
    """Volume series + gold standard + trials (``realdata.make_case``), written once."""
    import realdata

    return realdata.make_case(tmp_path_factory.mktemp("case"))


@pytest.fixture
def indexed(slicer_env, case):
    """``slicer_env`` with the case indexed into the temporary DICOM database."""
    slicer_env.index(case.all_files())
    return slicer_env
