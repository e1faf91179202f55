"""Pure logic behind the Slicer module and DICOM plugin (never imports slicer, vtk, qt or ctk)."""
