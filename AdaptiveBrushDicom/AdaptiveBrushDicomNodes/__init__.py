"""Slicer-side helpers of the AdaptiveBrushDicom module that are not its panel: MRML node <->
core object conversions (imports slicer and vtk; not part of the core)."""
