"""Where DICOM files are found: the database protocol and its records, the SQLite index, DICOMweb, DIMSE, DicomManager."""
