"""A small STAND-IN for the few 3D Slicer APIs the two Slicer files of this extension call.

This is NOT Slicer. 3D Slicer cannot run in CI, so the tests in ``test_slicer_glue.py``
import ``AdaptiveBrushDicom.py`` and ``DICOMLabelMapSegPlugin.py`` with these fakes
injected as the modules ``slicer``, ``vtk``, ``qt``, ``ctk``, ``DICOMLib`` and
``slicer.ScriptedLoadableModule``. They check the glue's own logic (which calls it makes,
in which order, with which values); they cannot prove Slicer behaves as modelled. The
in-Slicer tests in ``Testing/Slicer`` do that.

Each fake copies only the *documented behaviour* that the glue relies on, taken from the
Slicer sources listed in ``docs/slicer-integration.md`` (Slicer/Slicer @583e9b37):

* ``ctkDICOMDatabase.fileValue(path, "gggg,eeee")`` -> top-level value as string, "" when
  absent (CTK Libs/DICOM/Core/ctkDICOMDatabase.h); read here with pydicom.
* ``DICOMPlugin`` base: default ``tags``, ``loadableCache`` helpers,
  ``addSeriesInSubjectHierarchy`` sets the SH item's "DICOM" UID to the series UID
  (Modules/Scripted/DICOMLib/DICOMPlugin.py).
* ``vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelNode, segNode,
  ids)``: pixel value n+1 -> ids[n], "" skipped, missing IDs created with name = ID, all
  segments of one call share one layer; ``ExportSegmentsToLabelmapNode(segNode, ids,
  labelNode, referenceVolume)``: n-th segment -> n+1 on the reference grid, later segments
  win where they overlap, a new colour table node is attached
  (Modules/Loadable/Segmentations/Logic/vtkSlicerSegmentationsModuleLogic.cxx).
* every new ``vtkSegment`` carries a default "Tissue" TerminologyEntry tag
  (Libs/vtkSegmentationCore/vtkSegment.cxx).
* ``slicer.util.arrayFromVolume`` -> (k, j, i) view; ``addVolumeFromArray``;
  ``arrayFromSegmentBinaryLabelmap`` (Base/Python/slicer/util.py).
"""

from __future__ import annotations

import itertools
import sys
import types
from pathlib import Path

import numpy as np

SLICER_DEFAULT_TERMINOLOGY = (
    "Segmentation category and type - 3D Slicer General Anatomy list~SCT^85756007^Tissue~SCT^85756007^Tissue"
    "~^^~Anatomic codes - DICOM master list~^^~^^"
)

_ids = itertools.count(1)


# ------------------------------------------------------------------------------ vtk
class vtkStringArray:  # noqa: N801 (VTK name)
    def __init__(self):
        self.values: list[str] = []

    def InsertNextValue(self, v):  # noqa: N802
        self.values.append(str(v))

    def GetValue(self, i):  # noqa: N802
        return self.values[i]

    def GetNumberOfValues(self):  # noqa: N802
        return len(self.values)


class vtkMatrix4x4:  # noqa: N801
    def __init__(self):
        self.a = np.eye(4)


class mutable:  # noqa: N801 (vtk.mutable)
    def __init__(self, value=""):
        self.value = value

    def __str__(self):
        return str(self.value)


# ------------------------------------------------------------------------------ MRML
class Node:
    CLASSES: tuple[str, ...] = ("vtkMRMLNode",)

    def __init__(self, name=""):
        self.name = name
        self.id = f"{self.CLASSES[0]}{next(_ids)}"
        self.attributes: dict[str, str] = {}
        self.references: dict[str, "Node"] = {}
        self.display = None
        self.transform = None

    def IsA(self, cls):  # noqa: N802
        return cls in self.CLASSES

    def GetName(self):  # noqa: N802
        return self.name

    def SetName(self, n):  # noqa: N802
        self.name = n

    def GetID(self):  # noqa: N802
        return self.id

    def SetAttribute(self, k, v):  # noqa: N802
        self.attributes[k] = v

    def GetAttribute(self, k):  # noqa: N802
        return self.attributes.get(k)

    def GetNodeReference(self, role):  # noqa: N802
        return self.references.get(role)

    def GetParentTransformNode(self):  # noqa: N802
        return self.transform

    def GetDisplayNode(self):  # noqa: N802
        return self.display

    def CreateDefaultDisplayNodes(self):  # noqa: N802
        if self.display is None:
            self.display = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLDisplayNode")


class DisplayNode(Node):
    CLASSES = ("vtkMRMLDisplayNode",)

    def __init__(self, name=""):
        super().__init__(name)
        self.color_node = None

    def GetColorNode(self):  # noqa: N802
        return self.color_node


class ColorTableNode(Node):
    CLASSES = ("vtkMRMLColorTableNode",)


class VolumeNode(Node):
    CLASSES = ("vtkMRMLScalarVolumeNode", "vtkMRMLVolumeNode")

    def __init__(self, name=""):
        super().__init__(name)
        self.array = None
        self.ijk_to_ras = np.eye(4)

    def GetIJKToRASMatrix(self, m):  # noqa: N802
        m.a[:] = self.ijk_to_ras

    def SetIJKToRASMatrix(self, m):  # noqa: N802
        self.ijk_to_ras = np.array(m.a if isinstance(m, vtkMatrix4x4) else m, dtype=float)


class LabelMapVolumeNode(VolumeNode):
    CLASSES = ("vtkMRMLLabelMapVolumeNode", "vtkMRMLScalarVolumeNode", "vtkMRMLVolumeNode")


class Segment:
    def __init__(self, name):
        self.name = name
        self.color = (0.5, 0.5, 0.5)
        self.tags = {"TerminologyEntry": SLICER_DEFAULT_TERMINOLOGY}
        self.name_auto = True
        self.layer = None  # (array, ijk_to_ras) shared by the segments of one import
        self.label = 0

    def GetName(self):  # noqa: N802
        return self.name

    def SetName(self, n):  # noqa: N802
        self.name = n

    def SetNameAutoGenerated(self, v):  # noqa: N802
        self.name_auto = bool(v)

    def GetColor(self):  # noqa: N802
        return tuple(self.color)

    def SetColor(self, r, g, b):  # noqa: N802
        self.color = (float(r), float(g), float(b))

    def SetTag(self, k, v):  # noqa: N802
        self.tags[k] = str(v)

    def RemoveTag(self, k):  # noqa: N802
        self.tags.pop(k, None)

    def GetTag(self, k, out):  # noqa: N802
        if k in self.tags:
            out.value = self.tags[k]
            return True
        return False

    def mask(self) -> np.ndarray:
        return self.layer[0] == self.label


class Segmentation:
    def __init__(self):
        self.segments: dict[str, Segment] = {}

    def GetSegment(self, sid):  # noqa: N802
        return self.segments.get(sid)

    def GetSegmentIDs(self, arr):  # noqa: N802
        for sid in self.segments:
            arr.InsertNextValue(sid)

    def GetNumberOfSegments(self):  # noqa: N802
        return len(self.segments)

    def GetSourceRepresentationName(self):  # noqa: N802
        return "Binary labelmap"

    def GetNumberOfLayers(self):  # noqa: N802
        return len({id(s.layer[0]) for s in self.segments.values() if s.layer is not None})


class SegmentationNode(Node):
    CLASSES = ("vtkMRMLSegmentationNode",)

    def __init__(self, name=""):
        super().__init__(name)
        self.segmentation = Segmentation()

    def GetSegmentation(self):  # noqa: N802
        return self.segmentation

    @staticmethod
    def GetReferenceImageGeometryReferenceRole():  # noqa: N802
        return "referenceImageGeometryRef"

    def SetReferenceImageGeometryParameterFromVolumeNode(self, vol):  # noqa: N802
        self.references[self.GetReferenceImageGeometryReferenceRole()] = vol


class Scene:
    CLASSES = {
        "vtkMRMLScalarVolumeNode": VolumeNode,
        "vtkMRMLLabelMapVolumeNode": LabelMapVolumeNode,
        "vtkMRMLSegmentationNode": SegmentationNode,
        "vtkMRMLDisplayNode": DisplayNode,
        "vtkMRMLColorTableNode": ColorTableNode,
    }

    def __init__(self):
        self.nodes: list[Node] = []

    def AddNewNodeByClass(self, cls, name=""):  # noqa: N802
        node = self.CLASSES[cls](name)
        self.nodes.append(node)
        return node

    def RemoveNode(self, node):  # noqa: N802
        if node in self.nodes:
            self.nodes.remove(node)

    def Clear(self):  # noqa: N802
        self.nodes.clear()
        SubjectHierarchy.instance = None

    def of_class(self, cls):
        return [n for n in self.nodes if n.IsA(cls)]


class SubjectHierarchy:
    instance = None

    def __init__(self):
        self.items: dict[int, dict] = {}

    @classmethod
    def GetSubjectHierarchyNode(cls, scene):  # noqa: N802
        if cls.instance is None:
            cls.instance = cls()
        return cls.instance

    def CreateItem(self, parent, node):  # noqa: N802
        item = len(self.items) + 1
        self.items[item] = {"node": node, "uids": {}, "attributes": {}}
        return item

    def SetItemUID(self, item, name, value):  # noqa: N802
        self.items[item]["uids"][name] = value

    def GetItemByUID(self, name, value):  # noqa: N802
        for item, d in self.items.items():
            if d["uids"].get(name) == value:
                return item
        return 0

    def GetItemDataNode(self, item):  # noqa: N802
        return self.items[item]["node"] if item in self.items else None

    def GetItemByDataNode(self, node):  # noqa: N802
        for item, d in self.items.items():
            if d["node"] is node:
                return item
        return 0


class SHConstants:
    @staticmethod
    def GetDICOMUIDName():  # noqa: N802
        return "DICOM"


def _on_grid(array, ijk_to_ras, ref_ijk_to_ras, ref_shape):
    """Nearest-voxel placement of an array onto a reference grid (exact for shared lattices)."""
    if np.allclose(ijk_to_ras, ref_ijk_to_ras) and array.shape == tuple(ref_shape):
        return array
    out = np.zeros(ref_shape, array.dtype)
    k, j, i = np.nonzero(array)
    ijk = np.stack([i, j, k, np.ones_like(i)]).astype(float)
    t = np.linalg.inv(ref_ijk_to_ras) @ ijk_to_ras @ ijk
    ti, tj, tk = (np.round(t[a]).astype(int) for a in range(3))
    ok = (ti >= 0) & (tj >= 0) & (tk >= 0) & (tk < ref_shape[0]) & (tj < ref_shape[1]) & (ti < ref_shape[2])
    out[tk[ok], tj[ok], ti[ok]] = array[k[ok], j[ok], i[ok]]
    return out


class SegmentationsLogic:
    calls: list[str] = []

    def ImportLabelmapToSegmentationNode(self, label_node, seg_node, ids):  # noqa: N802
        self.calls.append("import")
        layer = (np.array(label_node.array), np.array(label_node.ijk_to_ras))
        for n, sid in enumerate(ids.values):
            if not sid:
                continue
            seg = seg_node.segmentation.segments.get(sid)
            if seg is None:
                seg = Segment(sid)
                seg_node.segmentation.segments[sid] = seg
            seg.layer, seg.label = layer, n + 1
        return True

    def ExportSegmentsToLabelmapNode(self, seg_node, ids, label_node, ref):  # noqa: N802
        self.calls.append("export")
        shape = ref.array.shape
        out = np.zeros(shape, np.int16)
        for n, sid in enumerate(ids.values):
            s = seg_node.segmentation.segments[sid]
            m = _on_grid(s.mask().astype(np.uint8), s.layer[1], ref.ijk_to_ras, shape)
            out[m != 0] = n + 1  # later segment wins
        label_node.array = out
        label_node.ijk_to_ras = np.array(ref.ijk_to_ras)
        label_node.CreateDefaultDisplayNodes()
        label_node.display.color_node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLColorTableNode")
        return True


# ------------------------------------------------------------------------------ DICOM database
class DicomDatabase:
    def __init__(self):
        self.isOpen = True
        self.headers: dict[str, object] = {}
        self.inserted: list[str] = []
        self.copied: dict[str, bool] = {}  # path -> copyFile flag given to ctkDICOMIndexer

    def insert(self, path, storeFile=True, generateThumbnail=True):  # noqa: N802,N803
        import pydicom

        path = str(path)
        self.headers[path] = pydicom.dcmread(path, stop_before_pixels=True)
        self.inserted.append(path)

    def fileValue(self, path, tag):  # noqa: N802
        from pydicom.tag import Tag

        ds = self.headers.get(str(path))
        if ds is None:
            return ""
        group, element = (int(p, 16) for p in tag.split(","))
        elem = ds.get(Tag(group, element))
        if elem is None or elem.VR == "SQ" or elem.value is None:
            return ""
        value = elem.value
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return "\\".join(str(v) for v in value)
        return str(value)

    def _by(self, key, value):
        return [p for p, ds in self.headers.items() if str(getattr(ds, key, "")) == value]

    def filesForSeries(self, uid, hits=-1):  # noqa: N802
        files = self._by("SeriesInstanceUID", uid)
        return files if hits < 0 else files[:hits]

    def instancesForSeries(self, uid, hits=-1):  # noqa: N802
        return [str(self.headers[p].SOPInstanceUID) for p in self.filesForSeries(uid, hits)]

    def fileForInstance(self, uid):  # noqa: N802
        found = self._by("SOPInstanceUID", uid)
        return found[0] if found else ""

    def seriesForFile(self, path):  # noqa: N802
        return str(self.headers[str(path)].SeriesInstanceUID)

    def studyForSeries(self, uid):  # noqa: N802
        files = self.filesForSeries(uid)
        return str(self.headers[files[0]].StudyInstanceUID) if files else ""

    def seriesForStudy(self, uid):  # noqa: N802
        return sorted({str(self.headers[p].SeriesInstanceUID) for p in self._by("StudyInstanceUID", uid)})

    def fieldForSeries(self, field, uid):  # noqa: N802
        files = self.filesForSeries(uid)
        return str(getattr(self.headers[files[0]], field, "")) if files else ""

    def patients(self):
        return sorted({str(ds.PatientID) for ds in self.headers.values()})

    def studiesForPatient(self, patient):  # noqa: N802
        return sorted({str(ds.StudyInstanceUID) for ds in self.headers.values() if str(ds.PatientID) == patient})


class DICOMIndexer:
    def addListOfFiles(self, db, paths, copy=False):  # noqa: N802
        for p in paths:
            db.insert(p)
            db.copied[str(p)] = bool(copy)

    def waitForImportFinished(self, msec=-1):  # noqa: N802
        pass


# ------------------------------------------------------------------------------ DICOMLib
class DICOMLoadable:
    def __init__(self):
        self.files = []
        self.name = "Unknown"
        self.tooltip = "No further information available"
        self.warning = ""
        self.selected = False
        self.confidence = 0.5


class DICOMPlugin:
    """Stand-in for Modules/Scripted/DICOMLib/DICOMPlugin.py (only what the glue uses)."""

    def __init__(self):
        self.loadType = "Generic DICOM"
        self.loadableCache = {}
        self.tags = {
            "seriesDescription": "0008,103E",
            "seriesNumber": "0020,0011",
            "frameOfReferenceUID": "0020,0052",
            "seriesInstanceUID": "0020,000E",
            "modality": "0008,0060",
            "instanceUID": "0008,0018",
            "sopClassUID": "0008,0016",
        }

    def getCachedLoadables(self, files):  # noqa: N802
        return self.loadableCache.get(tuple(files))

    def cacheLoadables(self, files, loadables):  # noqa: N802
        self.loadableCache[tuple(files)] = loadables

    def examineForImport(self, fileLists):  # noqa: N802  (<= 5.10 behaviour: nothing)
        return []

    def examine(self, fileLists):
        return self.examineForImport(fileLists)

    def addSeriesInSubjectHierarchy(self, loadable, node):  # noqa: N802
        shn = SubjectHierarchy.GetSubjectHierarchyNode(None)
        item = shn.CreateItem(0, node)
        shn.SetItemUID(item, "DICOM", slicer.dicomDatabase.fileValue(loadable.files[0], "0020,000E"))
        shn.items[item]["attributes"]["DICOM.ReferencedInstanceUIDs"] = " ".join(
            getattr(loadable, "referencedInstanceUIDs", []))


class DICOMExportable:
    def __init__(self):
        self.name = ""
        self.tooltip = ""
        self.subjectHierarchyItemID = 0
        self.pluginClass = ""
        self.directory = ""
        self.confidence = 0.0
        self._tags = {}

    def setTag(self, k, v):  # noqa: N802
        self._tags[k] = v

    def tag(self, k):
        return self._tags.get(k, "")


def load_series_by_uid(series_uids, messages=None, progressCallback=None, enabledPluginClassNames=None):  # noqa: N803
    """Stand-in for DICOMUtils.loadSeriesByUID: examine with every registered plugin, select
    the highest confidence per series (ties all load), load, return node IDs."""
    plugins = [cls() for cls in slicer.modules.dicomPlugins.values()]
    file_lists = [slicer.dicomDatabase.filesForSeries(uid) for uid in series_uids]
    offers = [(p, l) for p in plugins for l in (p.examineForImport(file_lists) or p.examine(file_lists))]
    ids = []
    by_series: dict[str, list] = {}
    for p, l in offers:
        by_series.setdefault(slicer.dicomDatabase.fileValue(l.files[0], "0020,000E"), []).append((p, l))
    for group in by_series.values():
        best = max(l.confidence for _, l in group)
        for p, l in group:
            if l.confidence == best:
                node = p.load(l)
                if node:
                    ids.append(node.GetID() if hasattr(node, "GetID") else "")
    return ids


# ------------------------------------------------------------------------------ slicer.util
def _array_from_volume(node):
    return node.array


def _array_from_vtk_matrix(m):
    return np.array(m.a)


def _add_volume_from_array(array, ijkToRAS=None, name=None, nodeClassName=None):  # noqa: N803
    if np.asarray(array).dtype == np.int64:
        raise RuntimeError("Unsupported numpy array type: long long")  # as updateVolumeFromArray
    node = slicer.mrmlScene.AddNewNodeByClass(nodeClassName or "vtkMRMLScalarVolumeNode", name or "")
    node.array = np.array(array)
    if ijkToRAS is not None:
        node.SetIJKToRASMatrix(ijkToRAS)
    node.CreateDefaultDisplayNodes()
    return node


def _array_from_segment_binary_labelmap(seg_node, segment_id, reference=None):
    ref = reference or seg_node.GetNodeReference(seg_node.GetReferenceImageGeometryReferenceRole())
    s = seg_node.segmentation.segments[segment_id]
    return _on_grid(s.mask().astype(np.uint8), s.layer[1], ref.ijk_to_ras, ref.array.shape)


class _WaitCursor:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


class Recorder:
    """Records dialog and pip calls; answers confirm dialogs with ``confirm``."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.confirm = True

    def confirm_ok_cancel(self, text, windowTitle=None, parent=None, **kw):  # noqa: N803
        self.calls.append(("confirm", text))
        return self.confirm

    def pip_install(self, requirements, **kw):
        self.calls.append(("pip_install", requirements))

    def info(self, text, **kw):
        self.calls.append(("info", text))

    def error(self, text, **kw):
        self.calls.append(("error", text))


# ------------------------------------------------------------------------------ install
slicer = None  # the fake ``slicer`` module once installed


def install(monkeypatch, tmp_path: Path, testing: bool = True):
    """Put the fake modules into ``sys.modules`` (undone by ``monkeypatch``) and return the
    fake ``slicer`` module."""
    global slicer
    recorder = Recorder()
    m = types.ModuleType("slicer")
    m.__path__ = []  # a package, so "import slicer.X" looks up sys.modules
    m.mrmlScene = Scene()
    m.dicomDatabase = DicomDatabase()
    m.modules = types.SimpleNamespace(
        dicomPlugins={}, segmentations=types.SimpleNamespace(logic=lambda: SegmentationsLogic()))
    m.app = types.SimpleNamespace(testingEnabled=lambda: testing, temporaryPath=str(tmp_path / "slicer-temp"))
    m.vtkMRMLSubjectHierarchyNode = SubjectHierarchy
    m.vtkMRMLSubjectHierarchyConstants = SHConstants
    m.vtkSegmentationConverter = types.SimpleNamespace(
        GetSegmentationBinaryLabelmapRepresentationName=lambda: "Binary labelmap")
    m.qSlicerDICOMExportable = DICOMExportable
    m.recorder = recorder
    util = types.ModuleType("slicer.util")
    util.arrayFromVolume = _array_from_volume
    util.arrayFromVTKMatrix = _array_from_vtk_matrix
    util.addVolumeFromArray = _add_volume_from_array
    util.arrayFromSegmentBinaryLabelmap = _array_from_segment_binary_labelmap
    util.confirmOkCancelDisplay = recorder.confirm_ok_cancel
    util.pip_install = recorder.pip_install
    util.infoDisplay = recorder.info
    util.errorDisplay = recorder.error
    util.WaitCursor = _WaitCursor
    util.selectModule = lambda name: recorder.calls.append(("selectModule", name))
    parameter_node = Node("CrossSegmentationExplorer")
    parameter_node.SetNodeReferenceID = lambda role, node_id: recorder.calls.append(("reference", role, node_id))
    util.getModuleLogic = lambda name: types.SimpleNamespace(getParameterNode=lambda: parameter_node)
    util.VTKObservationMixin = type("VTKObservationMixin", (), {"__init__": lambda self: None})
    m.util = util
    slm = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleWidget", "ScriptedLoadableModuleLogic"):
        setattr(slm, name, type(name, (), {"__init__": lambda self, *a, **k: None}))
    import unittest

    # ScriptedLoadableModuleTest is a unittest.TestCase with delayDisplay (Base/Python/slicer/ScriptedLoadableModule.py)
    slm.ScriptedLoadableModuleTest = type(
        "ScriptedLoadableModuleTest", (unittest.TestCase,), {"delayDisplay": lambda self, message, *a, **k: None})
    m.ScriptedLoadableModule = slm
    vtk = types.ModuleType("vtk")
    vtk.vtkStringArray = vtkStringArray
    vtk.vtkMatrix4x4 = vtkMatrix4x4
    vtk.mutable = mutable
    ctk = types.ModuleType("ctk")
    ctk.ctkDICOMIndexer = DICOMIndexer
    qt = types.ModuleType("qt")
    dicomlib = types.ModuleType("DICOMLib")
    dicomlib.DICOMPlugin = DICOMPlugin
    dicomlib.DICOMLoadable = DICOMLoadable
    dicomlib.DICOMUtils = types.SimpleNamespace(
        getDefaultPluginClassNames=lambda: list(m.modules.dicomPlugins),
        loadSeriesByUID=load_series_by_uid,
    )
    for name, mod in {"slicer": m, "slicer.util": util, "slicer.ScriptedLoadableModule": slm, "vtk": vtk,
                      "ctk": ctk, "qt": qt, "DICOMLib": dicomlib}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.delitem(sys.modules, "slicer.packaging", raising=False)
    SubjectHierarchy.instance = None
    SegmentationsLogic.calls = []
    slicer = m
    return m


def load_glue(monkeypatch, repo: Path):
    """Import the two Slicer files (under the stand-in) as the modules Slicer would create."""
    import importlib.util

    modules = {}
    for name, path in (("AdaptiveBrushDicom", repo / "AdaptiveBrushDicom" / "AdaptiveBrushDicom.py"),
                       ("DICOMLabelMapSegPlugin", repo / "DICOMLabelMapSegPlugin" / "DICOMLabelMapSegPlugin.py")):
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        modules[name] = module
    return modules["AdaptiveBrushDicom"], modules["DICOMLabelMapSegPlugin"]
