"""Qt panel of the AdaptiveBrushDicom module (imports slicer and qt; not part of the core)."""
