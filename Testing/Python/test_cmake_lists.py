"""The Slicer build installs only the files CMake lists: check the lists against the tree.

``slicerMacroBuildScriptedModule`` (Slicer CMake/SlicerMacroBuildScriptedModule.cmake)
copies exactly the SCRIPTS and RESOURCES it is given, so a core module missing from
``AdaptiveBrushDicom/CMakeLists.txt`` would be absent from the installed extension.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "AdaptiveBrushDicom"


def cmake_list(text: str, variable: str) -> list[str]:
    m = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert m, f"{variable} not found"
    items = [line.split("#")[0].strip() for line in m.group(1).splitlines()]
    return [i.replace("${MODULE_NAME}", "AdaptiveBrushDicom") for i in items if i]


def files_on_disk(pattern_filter) -> set[str]:
    return {
        p.relative_to(MODULE).as_posix()
        for package in ("AdaptiveBrushDicomLib", "AdaptiveBrushDicomGUI", "AdaptiveBrushDicomNodes")
        for p in (MODULE / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and pattern_filter(p)
    }


def test_every_core_python_file_is_packaged():
    listed = set(cmake_list((MODULE / "CMakeLists.txt").read_text(), "MODULE_PYTHON_SCRIPTS"))
    on_disk = files_on_disk(lambda p: p.suffix == ".py")
    assert "AdaptiveBrushDicom.py" in listed
    missing = sorted(on_disk - listed)
    stale = sorted(f for f in listed - on_disk if f != "AdaptiveBrushDicom.py")
    assert not missing, f"add to MODULE_PYTHON_SCRIPTS in AdaptiveBrushDicom/CMakeLists.txt: {missing}"
    assert not stale, f"listed in MODULE_PYTHON_SCRIPTS but not on disk: {stale}"


def test_every_core_resource_is_packaged():
    listed = set(cmake_list((MODULE / "CMakeLists.txt").read_text(), "MODULE_PYTHON_RESOURCES"))
    on_disk = files_on_disk(lambda p: p.suffix not in (".py", ".pyc"))
    assert not sorted(on_disk - listed), f"add to MODULE_PYTHON_RESOURCES: {sorted(on_disk - listed)}"
    for item in listed:
        assert (MODULE / item).is_file(), f"{item} is listed but missing"


def test_icon_is_a_128px_png():
    data = (MODULE / "Resources" / "Icons" / "AdaptiveBrushDicom.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (128, 128)


def test_plugin_and_extension_cmake():
    top = (REPO / "CMakeLists.txt").read_text()
    for name in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                 "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert f"set({name} " in top
    assert "add_subdirectory(AdaptiveBrushDicom)" in top and "add_subdirectory(DICOMLabelMapSegPlugin)" in top
    assert "Slicer_EXTENSION_GENERATE_CONFIG" in top and "Slicer_EXTENSION_CPACK" in top
    plugin = (REPO / "DICOMLabelMapSegPlugin" / "CMakeLists.txt").read_text()
    assert "set(MODULE_NAME DICOMLabelMapSegPlugin)" in plugin
    assert re.search(r"set\(MODULE_PYTHON_SCRIPTS\s+\$\{MODULE_NAME\}\.py\s+\)", plugin)
    tests = (REPO / "Testing" / "Slicer" / "CMakeLists.txt").read_text()
    for script in re.findall(r"SCRIPT\s+(\S+)\)", tests):
        assert (REPO / "Testing" / "Slicer" / script).is_file(), script


def test_extensions_index_entry_follows_schema_v102():
    """Keys and types of Slicer/ExtensionsIndex schemas/slicer-extension-catalog-entry-schema-v1.0.2.json
    (additionalProperties false; required $schema, category, scm_url)."""
    entry = json.loads((REPO / "AdaptiveBrushDicom.json").read_text())
    allowed = {"$schema": str, "category": str, "scm_url": str, "scm_revision": str, "scm_type": str,
               "build_dependencies": list, "dicom_support_rule": str, "build_subdirectory": str,
               "enabled": bool, "tier": int}
    assert {"$schema", "category", "scm_url"} <= set(entry)
    for key, value in entry.items():
        assert key in allowed, f"{key} is not allowed by the schema"
        assert isinstance(value, allowed[key]), key
    assert entry["$schema"].endswith("slicer-extension-catalog-entry-schema-v1.0.2.json#")
    assert entry.get("scm_type", "git") in ("git", "local")
    assert 1 <= entry.get("tier", 1) <= 5
    assert "1.2.840.10008.5.1.4.1.1.66.7" in entry["dicom_support_rule"]


def test_extension_urls_name_files_in_the_repository():
    """EXTENSION_ICONURL / EXTENSION_SCREENSHOTURLS point at raw files of this repository's
    main branch: each must exist here."""
    text = (REPO / "CMakeLists.txt").read_text()
    for variable in ("EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        m = re.search(rf'set\({variable}\s+"([^"]+)"\)', text)
        assert m, variable
        for url in m.group(1).split():
            rel = url.split("/main/", 1)[1]
            assert (REPO / rel).is_file(), f"{variable}: {url} names {rel}, which does not exist"
