"""The one raw DICOM byte walker: Explicit VR Little Endian (plain or Deflated), capped.

Used where pydicom's per-element conversion or its import costs more than the work
(``abdicom info`` and ``decode``, reference series headers, the per-frame sequences of a
SEG, the index) and where pydicom would inflate a Deflated file without any limit:

* :mod:`.elements`: walk bytes already in memory (a raw sequence value pydicom has not
  converted yet), yielding offsets, never copies; the two signals;
* :mod:`.values`: element values converted as pydicom converts them;
* :mod:`.stream`: :func:`read_header` parses a file's meta group and its dataset up to the
  pixel data, streaming and inflating at most :data:`~.limits.MAX_BYTES` of header;
  :func:`read_pixels` also gives the native pixel data;
* :mod:`.incomplete`: files cut short (:class:`Truncated`, "the file is incomplete: ...")
  or no DICOM file at all (:func:`check_part10`), in words a user can act on;
* :mod:`.files`: :func:`dcmread` is ``pydicom.dcmread`` for any file, except that a
  Deflated body is inflated here, capped by the size its header implies (Rows x Columns x
  NumberOfFrames, itself capped by ``--max-voxels``), so a deflate bomb is refused before it
  grows; checks for readers that inflate on their own.

Signals: :class:`NotSupported` means "valid maybe, but not something this walker reads"
(implicit VR, big endian, a character set, a VR it does not convert); callers may then use
pydicom. :class:`Malformed` means the bytes are broken; the file-level functions turn it
into an :class:`~.errors.InputFileError` naming the file and the offset.

Importing the walker imports neither pydicom nor numpy.
"""

from AdaptiveBrushDicomLib.dicom.walker.elements import (
    ITEM,
    ITEM_END,
    LONG_VRS,
    PIXEL_DATA,
    SEQ_END,
    UNDEFINED,
    Malformed,
    NotDicom,
    NotSupported,
    RawDataset,
    Truncated,
    element_at,
    find_element,
    iter_elements,
    iter_items,
    skip_sequence,
)
from AdaptiveBrushDicomLib.dicom.walker.files import check_dicom_folder, check_inflated_size, dcmread, diagnose
from AdaptiveBrushDicomLib.dicom.walker.incomplete import check_part10, check_series_file
from AdaptiveBrushDicomLib.dicom.walker.stream import (
    DEFLATED,
    EXPLICIT_LE,
    EXPLICIT_LE_SYNTAXES,
    TRAILING_SLACK,
    Header,
    implied_pixel_bytes,
    read_header,
    read_pixels,
)
from AdaptiveBrushDicomLib.dicom.walker.values import KNOWN_VRS, check_vrs, items, numbers, value

__all__ = [
    "DEFLATED", "EXPLICIT_LE", "EXPLICIT_LE_SYNTAXES", "ITEM", "ITEM_END", "KNOWN_VRS", "LONG_VRS", "PIXEL_DATA", "SEQ_END",
    "TRAILING_SLACK", "UNDEFINED", "Header", "Malformed", "NotDicom", "NotSupported", "RawDataset", "Truncated",
    "check_dicom_folder", "check_part10", "check_series_file", "check_vrs", "check_inflated_size", "dcmread",
    "diagnose", "element_at", "find_element", "implied_pixel_bytes", "items",
    "iter_elements", "iter_items", "numbers", "read_header", "read_pixels", "skip_sequence", "value",
]
