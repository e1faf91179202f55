"""DICOM objects: UIDs, transfer syntaxes, reference and synthetic series, private tags, SEG items."""
