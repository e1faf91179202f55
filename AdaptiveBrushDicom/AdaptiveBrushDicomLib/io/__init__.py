"""Files that are not DICOM: volumes and .seg.nrrd, metadata tables, atomic output."""
