"""Where DICOM files are found: records, the SQLite index, DicomManager, DICOMweb."""
