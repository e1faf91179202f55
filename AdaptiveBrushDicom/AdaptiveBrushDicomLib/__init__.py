"""AdaptiveBrushDicomLib: DICOM SEG (LABELMAP) for segmentation results.

Pure Python core of the AdaptiveBrushDicom Slicer extension; never imports slicer, vtk,
qt or ctk. Heavy dependencies (highdicom, SimpleITK) are imported lazily by the modules
that need them, so ``import AdaptiveBrushDicomLib`` is cheap.
"""

__version__ = "0.1.0"

#: Label Map Segmentation Storage (Supplement 243).
LABELMAP_SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.7"
#: Segmentation Storage (BINARY / FRACTIONAL).
SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"

#: Manufacturer written into every object we create.
MANUFACTURER = "AdaptiveBrushDicom"
