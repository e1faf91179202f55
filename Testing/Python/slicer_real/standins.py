"""Stand-ins for the parts of 3D Slicer that the ``slicer-core`` wheel does not contain.

The wheel has Slicer's real C++ core (MRML scene and nodes, segmentation / volumes /
subject hierarchy / colour logics, vtkITK's GDCM reader) and Slicer's real
``slicer/util.py``. It has no Qt, no CTK and no application object. Everything here replaces
exactly one of those, answers only what Slicer's own Python files and our glue ask for in
the tests, and raises ``AttributeError`` naming the missing piece for anything else (so a
new dependency on the GUI shows up as a clear failure, never as a silent fake answer).

=====================  ==========================================================
stand-in                replaces (Slicer / CTK / Qt)
=====================  ==========================================================
``qt`` module           ``QSettings`` (in-memory), ``QDir().mkpath``, override
                        cursor / ``processEvents`` no-ops, ``QMessageBox`` button
                        constants, ``QProgressDialog`` (never cancelled), ``QIcon``
``ctk`` module          ``ctkDICOMDatabase`` (index of pydicom headers, the CTK
                        query API Slicer's DICOMUtils and CSE call) and
                        ``ctkDICOMIndexer`` (copy-or-link + index)
``HeadlessApp``         ``slicer.app`` (qSlicerApplication): temporary path,
                        testing flag, no main window, real application logic
``ModuleParent``        the ``parent`` (qSlicerScriptedLoadableModule) a scripted
                        module's constructor fills in
``Module``              ``slicer.modules.<name>`` with ``logic()`` / ``path``
``LayoutManager``       ``slicer.app.layoutManager()`` with N 3D views (real view and
                        camera nodes), for CrossSegmentationExplorer's ``selectSegment``
``DICOMExportable``     ``slicer.qSlicerDICOMExportable`` (a QObject with tags)
``SubjectHierarchy…``   ``slicer.qSlicerSubjectHierarchyPluginHandler`` (name flags)
=====================  ==========================================================

Values follow CTK's documented behaviour (CTK Libs/DICOM/Core/ctkDICOMDatabase.h):
``fileValue(path, "gggg,eeee")`` is the top-level element as a string ("" when absent,
multi-values joined with ``\\``, sequences not available); ``filesForSeries`` /
``seriesForStudy`` / ``fieldForSeries`` answer from the indexed headers.
"""

from __future__ import annotations

import os
import shutil
import sys
import types
from pathlib import Path


class _StrictModule(types.ModuleType):
    """A module that names the missing Qt/CTK piece instead of inventing one."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"{self.__name__}.{name} is not available headless (the stand-in in "
            f"Testing/Python/slicer_real/standins.py provides only what the tests need)")


# ----------------------------------------------------------------------------------- qt
class QSettings:
    """In-memory QSettings shared by all instances (like one application's settings)."""

    store: dict[str, object] = {}

    def value(self, key, default=None):
        return self.store.get(key, default)

    def setValue(self, key, value):  # noqa: N802
        self.store[key] = value

    def contains(self, key):
        return key in self.store

    def remove(self, key):
        for k in [k for k in self.store if k == key or k.startswith(key + "/")]:
            del self.store[k]

    def allKeys(self):  # noqa: N802
        return list(self.store)


class QDir:
    def mkpath(self, path):
        os.makedirs(path, exist_ok=True)
        return True


class QApplication:
    @staticmethod
    def setOverrideCursor(cursor):  # noqa: N802
        pass

    @staticmethod
    def restoreOverrideCursor():  # noqa: N802
        pass

    @staticmethod
    def processEvents():  # noqa: N802
        pass


class QProgressDialog:
    """Never cancelled; records the labels it was given."""

    def __init__(self, *args, **kwargs):
        self.labels: list[str] = []
        self.wasCanceled = False
        self.windowTitle = ""

    def setWindowModality(self, m):  # noqa: N802
        pass

    def setMinimumDuration(self, d):  # noqa: N802
        pass

    def setValue(self, v):  # noqa: N802
        pass

    def setLabelText(self, text):  # noqa: N802
        self.labels.append(text)

    def close(self):
        pass


class QIcon:
    def __init__(self, path=""):
        self.path = path


def make_qt() -> types.ModuleType:
    qt = _StrictModule("qt")
    qt.QSettings = QSettings
    qt.QDir = QDir
    qt.QApplication = QApplication
    qt.QProgressDialog = QProgressDialog
    qt.QIcon = QIcon
    qt.Qt = types.SimpleNamespace(WaitCursor=3, Checked=2, Unchecked=0, UserRole=256)
    qt.QMessageBox = types.SimpleNamespace(Ok=0x400, Cancel=0x400000, Yes=0x4000, No=0x10000,
                                           Information=1, Warning=2, Critical=3, Question=4)
    return qt


# ---------------------------------------------------------------------------------- ctk
class ctkDICOMDatabase:  # noqa: N801 (CTK name)
    """Index of DICOM headers (pydicom) with the query API of CTK's database."""

    def __init__(self):
        self.isOpen = False
        self.databaseFilename = ""
        self.databaseDirectory = ""
        self.tagsToPrecache: list[str] = []
        self._headers: dict[str, object] = {}
        self._has_pixels: dict[str, tuple] = {}

    # -- open / close (DICOMUtils.openDatabase passes "<dir>/ctkDICOM.sql")
    def openDatabase(self, filename, connectionName=""):  # noqa: N802,N803
        self.databaseFilename = str(filename)
        self.databaseDirectory = str(Path(filename).parent)
        os.makedirs(self.databaseDirectory, exist_ok=True)
        self.isOpen = True

    def initializeDatabase(self):  # noqa: N802
        self._headers.clear()

    def closeDatabase(self):  # noqa: N802
        self.isOpen = False
        self._headers.clear()

    # -- indexing (used by the indexer stand-in)
    def insert(self, path):
        import pydicom

        path = str(path)
        ds = pydicom.dcmread(path, defer_size=256)
        self._has_pixels[path] = ("PixelData",) if "PixelData" in ds else ()
        self._headers[path] = ds

    # -- queries
    def fileValue(self, path, tag):  # noqa: N802
        from pydicom.tag import Tag

        ds = self._headers.get(str(path))
        if ds is None:
            return ""
        group, element = (int(p, 16) for p in tag.split(","))
        elem = ds.get(Tag(group, element))
        if elem is None or elem.VR == "SQ" or elem.value is None:
            return ""
        value = elem.value
        if type(value).__name__ == "MultiValue" or isinstance(value, (list, tuple)):
            return "\\".join(str(v) for v in value)
        return str(value)

    def fileValueExists(self, path, tag):  # noqa: N802
        from pydicom.tag import Tag

        ds = self._headers.get(str(path))
        group, element = (int(p, 16) for p in tag.split(","))
        if ds is None:
            return False
        if Tag(group, element) == Tag(0x7FE0, 0x0010):  # headers are read without pixels
            return "PixelData" in self._has_pixels.get(str(path), ())
        return Tag(group, element) in ds

    def instanceValue(self, uid, tag):  # noqa: N802
        return self.fileValue(self.fileForInstance(uid), tag)

    def _where(self, keyword, value):
        return [p for p, ds in self._headers.items() if str(getattr(ds, keyword, "")) == value]

    def filesForSeries(self, uid, hits=-1):  # noqa: N802
        files = self._where("SeriesInstanceUID", uid)
        return files if hits < 0 else files[:hits]

    def instancesForSeries(self, uid, hits=-1):  # noqa: N802
        return [str(self._headers[p].SOPInstanceUID) for p in self.filesForSeries(uid, hits)]

    def fileForInstance(self, uid):  # noqa: N802
        found = self._where("SOPInstanceUID", uid)
        return found[0] if found else ""

    def instanceForFile(self, path):  # noqa: N802
        ds = self._headers.get(str(path))
        return str(ds.SOPInstanceUID) if ds is not None else ""

    def seriesForFile(self, path):  # noqa: N802
        ds = self._headers.get(str(path))
        return str(ds.SeriesInstanceUID) if ds is not None else ""

    def studyForSeries(self, uid):  # noqa: N802
        files = self.filesForSeries(uid, 1)
        return str(self._headers[files[0]].StudyInstanceUID) if files else ""

    def seriesForStudy(self, uid):  # noqa: N802
        seen: list[str] = []
        for p in self._where("StudyInstanceUID", uid):
            s = str(self._headers[p].SeriesInstanceUID)
            if s not in seen:
                seen.append(s)
        return seen

    def studiesForPatient(self, patient):  # noqa: N802
        seen: list[str] = []
        for ds in self._headers.values():
            if str(getattr(ds, "PatientID", "")) == patient and str(ds.StudyInstanceUID) not in seen:
                seen.append(str(ds.StudyInstanceUID))
        return seen

    def patients(self):
        return sorted({str(getattr(ds, "PatientID", "")) for ds in self._headers.values()})

    def fieldForSeries(self, field, uid):  # noqa: N802
        files = self.filesForSeries(uid, 1)
        return str(getattr(self._headers[files[0]], field, "")) if files else ""

    def allFiles(self):  # noqa: N802
        return list(self._headers)


class ctkDICOMIndexer:  # noqa: N801
    """Indexes files into a :class:`ctkDICOMDatabase`; ``copyFile`` copies them into
    ``<databaseDirectory>/dicom/`` first (CTK's layout is by UID; flat here)."""

    def addListOfFiles(self, database, files, copyFile=False):  # noqa: N802,N803
        for f in files:
            self.addFile(database, f, copyFile)

    def addFile(self, database, path, copyFile=False):  # noqa: N802,N803
        path = str(path)
        if copyFile:
            target_dir = Path(database.databaseDirectory) / "dicom"
            target_dir.mkdir(parents=True, exist_ok=True)
            target = target_dir / f"{len(database.allFiles()):06d}_{Path(path).name}"
            shutil.copyfile(path, target)
            path = str(target)
        database.insert(path)

    def addDirectory(self, database, directory, copyFile=False):  # noqa: N802,N803
        for root, _, files in os.walk(directory):
            for f in sorted(files):
                self.addFile(database, os.path.join(root, f), copyFile)

    def waitForImportFinished(self, msec=-1):  # noqa: N802
        return True


def make_ctk() -> types.ModuleType:
    ctk = _StrictModule("ctk")
    ctk.ctkDICOMDatabase = ctkDICOMDatabase
    ctk.ctkDICOMIndexer = ctkDICOMIndexer
    return ctk


# ------------------------------------------------------------------------ application
class HeadlessApp:
    """``slicer.app`` without Qt: no main window, so Slicer's ``util.mainWindow()`` is None
    and its message functions only log."""

    applicationName = "Slicer"

    def __init__(self, application_logic, temporary_path: str, testing: bool = True):
        self._logic = application_logic
        self.temporaryPath = temporary_path
        self.testing = testing
        self.layout = None  # a LayoutManager when a test needs 3D views

    def layoutManager(self):  # noqa: N802
        return self.layout

    def testingEnabled(self):  # noqa: N802
        return self.testing

    def applicationLogic(self):  # noqa: N802
        return self._logic

    def topLevelWidgets(self):  # noqa: N802
        return []

    def processEvents(self):  # noqa: N802
        pass

    def setOverrideCursor(self, cursor):  # noqa: N802
        pass

    def restoreOverrideCursor(self):  # noqa: N802
        pass

    def translate(self, context, text):
        return text


class ModuleParent:
    """What a scripted module's constructor receives as ``parent``."""

    def __init__(self, path: str):
        self.path = str(path)
        self.title = ""
        self.categories: list[str] = []
        self.dependencies: list[str] = []
        self.contributors: list[str] = []
        self.helpText = ""
        self.acknowledgementText = ""
        self.hidden = False
        self.icon = None


class LayoutManager:
    """``slicer.app.layoutManager()`` with ``n`` 3D views whose MRML view nodes (and the
    camera nodes Slicer's camera displayable manager would create) are real scene nodes."""

    def __init__(self, scene, n: int = 1):
        self._views = []
        for i in range(n):
            view = scene.AddNewNodeByClass("vtkMRMLViewNode", f"View{i + 1}")
            view.SetLayoutName(str(i + 1))
            camera = scene.AddNewNodeByClass("vtkMRMLCameraNode", f"Camera{i + 1}")
            camera.SetLayoutName(str(i + 1))
            self._views.append(types.SimpleNamespace(
                threeDView=lambda v=view: types.SimpleNamespace(mrmlViewNode=lambda: v, resetFocalPoint=lambda: None)))

    @property
    def threeDViewCount(self):  # noqa: N802
        return len(self._views)

    def threeDWidget(self, i):  # noqa: N802
        return self._views[i]


class Module:
    """``slicer.modules.<name>``: ``logic()`` and ``path``."""

    def __init__(self, name: str, logic=None, path: str = ""):
        self.name = name
        self._logic = logic
        self.path = path

    def logic(self):
        return self._logic


class DICOMExportable:
    """``slicer.qSlicerDICOMExportable``: plain attributes plus string tags."""

    def __init__(self):
        self.name = ""
        self.tooltip = ""
        self.subjectHierarchyItemID = 0
        self.pluginClass = ""
        self.directory = ""
        self.confidence = 0.0
        self._tags: dict[str, str] = {}

    def setTag(self, key, value):  # noqa: N802
        self._tags[key] = str(value)

    def tag(self, key):
        return self._tags.get(key, "")

    @property
    def tags(self):
        return dict(self._tags)


class SubjectHierarchyPluginHandler:
    """``slicer.qSlicerSubjectHierarchyPluginHandler`` (Qt): only the item-name display
    flags DICOMPlugin.addSeriesInSubjectHierarchy reads (Slicer's defaults: off)."""

    _instance = None
    displayPatientIDInSubjectHierarchyItemName = False
    displayPatientBirthDateInSubjectHierarchyItemName = False
    displayStudyIDInSubjectHierarchyItemName = False
    displayStudyDateInSubjectHierarchyItemName = False

    @classmethod
    def instance(cls):
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance


class DICOMExportScalarVolume:
    """Imported by DICOMScalarVolumePlugin at module level; only its export uses it."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("scalar volume DICOM export needs Slicer's CreateDICOMSeries CLI")


def install_modules(qt: types.ModuleType, ctk: types.ModuleType) -> None:
    sys.modules["qt"] = qt
    sys.modules["ctk"] = ctk
