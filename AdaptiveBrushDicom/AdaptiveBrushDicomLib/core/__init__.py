"""Geometry, segments, labelmaps, colours, terminology: numpy only, no DICOM, no files."""
