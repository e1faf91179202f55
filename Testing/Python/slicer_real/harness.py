"""A headless 3D Slicer runtime for tests: Kitware's ``slicer-core`` wheel (real MRML,
segmentations, volumes, subject hierarchy, vtkITK/GDCM, ``slicer/util.py``) plus Slicer's
own Python files of one version, CrossSegmentationExplorer's module, and this extension's
two Slicer files, wired together the way the Slicer application does it.

Only what the wheel lacks is stood in (see ``standins.py``): Qt (settings, cursors,
progress dialog, no widgets), CTK's DICOM database and indexer, ``slicer.app``, the module
``parent`` objects and ``qSlicerDICOMExportable``.

One runtime per interpreter: Slicer's files bind ``slicer.mrmlScene`` and friends at import,
so each Slicer version runs in its own process (``Testing/Python/test_slicer_real.py``).

Usage::

    rt = harness.start("v5.12.0", tmp_path)
    rt.AdaptiveBrushDicom.AdaptiveBrushDicomLogic()    # our module, on real MRML
    rt.DICOMUtils.loadSeriesByUID([uid])              # Slicer's real DICOMUtils
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = Path(os.environ["ABD_REPO"]) if os.environ.get("ABD_REPO") else HERE.parents[2]


def _third_party() -> Path:
    """``../shared/third_party`` next to the repository (or next to the folder holding a
    git worktree of it); ``ABD_THIRD_PARTY`` overrides."""
    if os.environ.get("ABD_THIRD_PARTY"):
        return Path(os.environ["ABD_THIRD_PARTY"])
    candidates = [REPO.parent / "shared" / "third_party", REPO.parent.parent / "shared" / "third_party"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


THIRD_PARTY = _third_party()
VERSIONS = ("v5.10.0", "v5.12.0", "main")

sys.path.insert(0, str(HERE))
import standins  # noqa: E402


def third_party_dir(version: str) -> Path:
    return THIRD_PARTY / "slicer" / version


def cse_file() -> Path:
    return THIRD_PARTY / "crosssegmentationexplorer" / "CrossSegmentationExplorer.py"


def _load_file(name: str, path: Path) -> types.ModuleType:
    """Import ``path`` as module ``name`` (as Slicer does for scripted module files)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Runtime:
    version: str
    slicer: types.ModuleType
    scene: object
    app_logic: object
    logics: dict
    DICOMUtils: types.ModuleType
    modules: dict = field(default_factory=dict)  # module file name -> Python module
    tmp: Path = Path(".")

    def __getattr__(self, name):
        try:
            return self.modules[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def db(self):
        return self.slicer.dicomDatabase

    def index(self, paths, copy=False):
        """Index files into the DICOM database (what the DICOM browser's import does)."""
        indexer = sys.modules["ctk"].ctkDICOMIndexer()
        indexer.addListOfFiles(self.db, [str(p) for p in paths], copy)

    def register_module(self, name: str, path: Path):
        """Import a scripted module file and construct its module class (module discovery)."""
        module = _load_file(name, path)
        parent = standins.ModuleParent(path)
        getattr(module, name)(parent)
        setattr(self.slicer.modules, name.lower(), standins.Module(name, None, str(path)))
        self.modules[name] = module
        return module, parent

    def clear_scene(self):
        self.scene.Clear(0)


def _module_logics(slicer, scene, app_logic) -> dict:
    logics = {}
    for name, cls in (("Colors", slicer.vtkSlicerColorLogic),
                      ("Volumes", slicer.vtkSlicerVolumesLogic),
                      ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic),
                      ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic),
                      ("Cameras", slicer.vtkSlicerCamerasModuleLogic)):
        logic = cls()
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        logics[name] = logic
    return logics


def start(version: str, tmp: Path, *, plugin_order: tuple[str, ...] = ("scalar", "seg", "ours"),
          testing: bool = True, with_cse: bool = True) -> Runtime:
    """Build the runtime for one Slicer version (call once per process).

    ``plugin_order`` is the order in which the DICOM plugins are registered, which is the
    order ``DICOMUtils.loadLoadables`` loads a batch in ("ours" first reproduces an
    extension module discovered before Slicer's DICOMScalarVolumePlugin).

    Raises
    ------
    ValueError
        An unknown Slicer version.
    FileNotFoundError
        That version's Python files (``../shared/third_party``) or our plugin file are missing.
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown Slicer version {version!r}; known: {VERSIONS}")
    files = third_party_dir(version)
    if not (files / "DICOMUtils.py").is_file():
        raise FileNotFoundError(f"Slicer {version} Python files not found in {files}")
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("highdicom").setLevel(logging.WARNING)

    import vtk  # noqa: F401  (the wheel's VTK)
    import slicer
    import slicer_core

    # names Slicer's files import (the application's Python path provides them)
    sys.modules["vtkITK"] = slicer_core.vtkITK
    sys.modules["vtkSegmentationCorePython"] = slicer_core.vtkSegmentationCore
    standins.install_modules(standins.make_qt(), standins.make_ctk())
    standins.QSettings.store.clear()

    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    logics = _module_logics(slicer, scene, app_logic)
    slicer.mrmlScene = scene
    temp = Path(tmp) / "slicer-temp"
    temp.mkdir(parents=True, exist_ok=True)
    slicer.app = standins.HeadlessApp(app_logic, str(temp), testing=testing)
    slicer.modules = types.SimpleNamespace(
        dicomPlugins={},
        segmentations=standins.Module("Segmentations", logics["Segmentations"]),
        volumes=standins.Module("Volumes", logics["Volumes"]),
        colors=standins.Module("Colors", logics["Colors"]),
        subjecthierarchy=standins.Module("SubjectHierarchy", logics["SubjectHierarchy"]),
        cameras=standins.Module("Cameras", logics["Cameras"]),
        # the DICOM module's Python object; the scalar volume plugin parks its reader there
        DICOMInstance=types.SimpleNamespace(),
    )
    slicer.dicomDatabase = standins.ctkDICOMDatabase()
    slicer.dicomDatabaseDirectorySettingsKey = "DatabaseDirectory_" + version
    slicer.qSlicerDICOMExportable = standins.DICOMExportable
    slicer.qSlicerSubjectHierarchyPluginHandler = standins.SubjectHierarchyPluginHandler

    # Slicer's Python files of this version
    slicer.i18n = _load_file("slicer.i18n", files / "i18n.py")
    if (files / "packaging.py").is_file():
        slicer.packaging = _load_file("slicer.packaging", files / "packaging.py")
    else:  # Slicer 5.10 has no slicer.packaging: "import slicer.packaging" must fail
        sys.modules["slicer.packaging"] = None
        if hasattr(slicer, "packaging"):
            delattr(slicer, "packaging")
    slicer.ScriptedLoadableModule = _load_file("slicer.ScriptedLoadableModule", files / "ScriptedLoadableModule.py")
    dicomlib = types.ModuleType("DICOMLib")
    dicomlib.__path__ = []
    sys.modules["DICOMLib"] = dicomlib
    plugin_module = _load_file("DICOMLib.DICOMPlugin", files / "DICOMPlugin.py")
    dicomlib.DICOMPlugin = plugin_module.DICOMPlugin
    dicomlib.DICOMLoadable = plugin_module.DICOMLoadable
    dicomlib.DICOMExportScalarVolume = standins.DICOMExportScalarVolume
    utils = _load_file("DICOMLib.DICOMUtils", files / "DICOMUtils.py")
    dicomlib.DICOMUtils = utils
    rt = Runtime(version, slicer, scene, app_logic, logics, utils, tmp=Path(tmp))

    # module discovery: DICOM plugins, our two modules, CSE
    repo_dirs = [REPO / "AdaptiveBrushDicom", REPO / "DICOMLabelMapSegPlugin"]
    for d in repo_dirs:
        if str(d) not in sys.path:
            sys.path.insert(0, str(d))
    plugins = {"scalar": ("DICOMScalarVolumePlugin", files / "DICOMScalarVolumePlugin.py"),
               "seg": ("DICOMSegmentationPlugin", files / "DICOMSegmentationPlugin.py"),
               "ours": ("DICOMLabelMapSegPlugin", REPO / "DICOMLabelMapSegPlugin" / "DICOMLabelMapSegPlugin.py")}
    for key in plugin_order:
        name, path = plugins[key]
        if path.is_file():
            rt.register_module(name, path)
        elif key == "ours":
            raise FileNotFoundError(path)
    rt.register_module("AdaptiveBrushDicom", REPO / "AdaptiveBrushDicom" / "AdaptiveBrushDicom.py")
    if with_cse and cse_file().is_file():
        rt.register_module("CrossSegmentationExplorer", cse_file())
    return rt
