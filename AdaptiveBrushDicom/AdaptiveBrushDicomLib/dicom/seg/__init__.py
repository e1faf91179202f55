"""DICOM SEG: write (highdicom path and fast path), read (any writer), header summary."""
