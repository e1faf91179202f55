// Shared helpers for the node and browser checks (no DOM, no node-only APIs here).
// Written for AdaptiveBrushDicom; see docs/interop-remote.md.
import dcmjs from 'dcmjs';

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

export const LABELMAP_SEG = '1.2.840.10008.5.1.4.1.1.66.7';
export const TS_NAMES = {
  '1.2.840.10008.1.2.1': 'Explicit VR LE',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR LE',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
};

/** Parse a Part 10 file (ArrayBuffer) with dcmjs -> naturalized dataset (+ _meta). */
export function readPart10(arrayBuffer) {
  const msg = DicomMessage.readFile(arrayBuffer);
  const ds = DicomMetaDictionary.naturalizeDataset(msg.dict);
  ds._meta = DicomMetaDictionary.naturalizeDataset(msg.meta);
  return ds;
}

/** Naturalize one DICOM JSON object (WADO-RS metadata item). */
export function naturalizeJson(item) {
  return DicomMetaDictionary.naturalizeDataset(item);
}

const num = (v) => (Array.isArray(v) ? v.map(Number) : Number(v));
const first = (v) => (Array.isArray(v) ? v[0] : v);

/**
 * Cornerstone metadata provider for an image series given as naturalized datasets.
 * Returns { imageIds (sorted along the slice normal), provider(type, imageId) }.
 */
export function seriesMetadata(datasets, prefix) {
  const withPos = datasets.map((ds) => {
    const iop = num(ds.ImageOrientationPatient);
    const ipp = num(ds.ImagePositionPatient);
    const n = [
      iop[1] * iop[5] - iop[2] * iop[4],
      iop[2] * iop[3] - iop[0] * iop[5],
      iop[0] * iop[4] - iop[1] * iop[3],
    ];
    return { ds, d: ipp[0] * n[0] + ipp[1] * n[1] + ipp[2] * n[2] };
  });
  withPos.sort((a, b) => a.d - b.d);
  const byId = new Map();
  const imageIds = withPos.map(({ ds }, i) => {
    const id = `${prefix}:${ds.SOPInstanceUID}`;
    byId.set(id, { ds, index: i });
    return id;
  });
  const provider = (type, imageId) => {
    const entry = byId.get(imageId);
    if (!entry) return undefined;
    const ds = entry.ds;
    const iop = num(ds.ImageOrientationPatient);
    const ps = num(ds.PixelSpacing);
    switch (type) {
      case 'imagePlaneModule':
        return {
          frameOfReferenceUID: ds.FrameOfReferenceUID,
          rows: Number(ds.Rows), columns: Number(ds.Columns),
          imageOrientationPatient: iop,
          rowCosines: iop.slice(0, 3), columnCosines: iop.slice(3, 6),
          imagePositionPatient: num(ds.ImagePositionPatient),
          sliceThickness: Number(ds.SliceThickness || ds.SpacingBetweenSlices || 1),
          sliceLocation: ds.SliceLocation !== undefined ? Number(ds.SliceLocation) : undefined,
          pixelSpacing: ps, rowPixelSpacing: ps[0], columnPixelSpacing: ps[1],
        };
      case 'imagePixelModule':
        return {
          samplesPerPixel: Number(ds.SamplesPerPixel || 1),
          photometricInterpretation: ds.PhotometricInterpretation || 'MONOCHROME2',
          rows: Number(ds.Rows), columns: Number(ds.Columns),
          bitsAllocated: Number(ds.BitsAllocated), bitsStored: Number(ds.BitsStored),
          highBit: Number(ds.HighBit), pixelRepresentation: Number(ds.PixelRepresentation || 0),
        };
      case 'generalSeriesModule':
        return { modality: ds.Modality, seriesInstanceUID: ds.SeriesInstanceUID,
                 seriesNumber: Number(ds.SeriesNumber || 0), studyInstanceUID: ds.StudyInstanceUID };
      case 'generalImageModule':
        return { sopInstanceUID: ds.SOPInstanceUID, instanceNumber: Number(ds.InstanceNumber || 0) };
      case 'sopCommonModule':
        return { sopClassUID: ds.SOPClassUID, sopInstanceUID: ds.SOPInstanceUID };
      case 'voiLutModule':
        return { windowCenter: [Number(first(ds.WindowCenter) ?? 500)],
                 windowWidth: [Number(first(ds.WindowWidth) ?? 1000)] };
      case 'modalityLutModule':
        return { rescaleIntercept: Number(ds.RescaleIntercept ?? 0), rescaleSlope: Number(ds.RescaleSlope ?? 1) };
      case 'instance':
        return ds;
      default:
        return undefined;
    }
  };
  return { imageIds, provider, byId };
}

/** Summary of a SEG dataset as dcmjs sees it. */
export function segSummary(ds) {
  const segs = [].concat(ds.SegmentSequence || []);
  return {
    sopClassUID: ds.SOPClassUID,
    transferSyntaxUID: ds._meta && ds._meta.TransferSyntaxUID,
    segmentationType: ds.SegmentationType,
    numberOfFrames: Number(ds.NumberOfFrames || 0),
    rows: Number(ds.Rows), columns: Number(ds.Columns),
    segments: segs.map((s) => ({ number: Number(s.SegmentNumber), label: s.SegmentLabel })),
    referencedSeries: [].concat(ds.ReferencedSeriesSequence || []).map((r) => r.SeriesInstanceUID),
  };
}

/** Pixel data (typed array) of a Cornerstone image. */
export function imagePixels(image) {
  if (image.voxelManager && image.voxelManager.getScalarData) return image.voxelManager.getScalarData();
  return image.getPixelData();
}

/**
 * Compare Cornerstone labelmap images (one per referenced image, k order) to expected
 * segment numbers (Int32Array of nk*nj*ni). Returns { equal, mismatches, counts }.
 */
export function compareLabelmaps(labelMapImages, expected, sliceLength) {
  const images = Array.isArray(labelMapImages[0]) ? labelMapImages[0] : labelMapImages;
  let mismatches = 0;
  const counts = {};
  for (let k = 0; k < images.length; k++) {
    const px = imagePixels(images[k]);
    for (let p = 0; p < sliceLength; p++) {
      const v = px[p];
      if (v) counts[v] = (counts[v] || 0) + 1;
      if (v !== expected[k * sliceLength + p]) mismatches++;
    }
  }
  const layers = Array.isArray(labelMapImages[0]) ? labelMapImages.length : 1;
  return { equal: mismatches === 0 && images.length * sliceLength === expected.length, mismatches, counts, layers,
           slices: images.length };
}
