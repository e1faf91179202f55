"""SEGs as other writers make them, for the "silently wrong" tests of issue 14.

highdicom builds every file here (an independent writer); pydicom then edits what a
given case needs (character set, BitsAllocated, lengths, broken items). Nothing in the
shipped package uses this module.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping

import numpy as np


def highdicom_seg(
    reference,
    labels: np.ndarray,
    names: Mapping[int, str],
    path: str | Path,
    *,
    binary: bool = False,
    charset: str | None = "ISO_IR 192",
    tracking_ids: Mapping[int, str] | None = None,
    content_description: str | None = None,
    transfer_syntax_uid: str = "1.2.840.10008.1.2.1",
):
    """Write ``labels`` ((k, j, i), values = SegmentNumbers) as a highdicom SEG.

    Parameters
    ----------
    reference : ReferenceSeries of the image series (its pydicom datasets are the sources).
    names : SegmentNumber -> SegmentLabel (every value in ``labels`` but 0 must be named).
    binary : BINARY (66.4) instead of LABELMAP (66.7).
    charset : SpecificCharacterSet to save with (e.g. ``"ISO_IR 100"`` for Latin-1);
        default UTF-8 (highdicom itself sets none, and pydicom then writes "?" for non-ASCII).
    tracking_ids : SegmentNumber -> TrackingID text (with a TrackingUID).

    Returns
    -------
    The pydicom dataset as saved.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.uid import generate_uid

    descriptions = []
    for number in sorted(names):
        kwargs = {}
        if tracking_ids and number in tracking_ids:
            kwargs = dict(tracking_id=tracking_ids[number], tracking_uid=generate_uid())
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=names[number],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            **kwargs,
        ))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seg = hd.seg.Segmentation(
            source_images=reference.datasets,
            pixel_array=np.asarray(labels).astype(np.uint16 if int(np.max(labels)) > 255 else np.uint8),
            segmentation_type=(hd.seg.SegmentationTypeValues.BINARY if binary
                               else hd.seg.SegmentationTypeValues.LABELMAP),
            segment_descriptions=descriptions,
            series_instance_uid=generate_uid(),
            series_number=7,
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer="Other Lab",
            manufacturer_model_name="OtherSeg",
            software_versions="1",
            device_serial_number="1",
            content_description=content_description,
            transfer_syntax_uid=transfer_syntax_uid,
        )
    if charset is not None:
        seg.SpecificCharacterSet = charset
    seg.save_as(path, enforce_file_format=True)
    return seg
