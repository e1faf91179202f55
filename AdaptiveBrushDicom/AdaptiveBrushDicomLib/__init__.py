"""AdaptiveBrushDicomLib: DICOM SEG (LABELMAP) for segmentation results.

Pure Python core of the AdaptiveBrushDicom Slicer extension; never imports slicer, vtk,
qt or ctk. Heavy dependencies (highdicom, SimpleITK) are imported lazily by the modules
that need them, so ``import AdaptiveBrushDicomLib`` is cheap.
"""

__version__ = "0.1.0"

# SOP class UIDs: AdaptiveBrushDicomLib.dicom.sop_class.SegSopClass (the one name for them).

#: Manufacturer written into every object we create.
MANUFACTURER = "AdaptiveBrushDicom"
