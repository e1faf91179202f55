// node check_seg.mjs SEG.dcm REFERENCE_FOLDER EXPECTED.npy
// Last stdout line: {"dcmjs": {ok, note, ...}, "Cornerstone3D": {ok, note, ...}}
// dcmjs: parses the SEG (SOP class, frames, segments) and, for native (non-encapsulated)
// pixel data, places every frame by PlanePositionSequence and compares with EXPECTED.
// Cornerstone3D: @cornerstonejs/adapters createFromDICOMSegBuffer against the reference
// series (metadata provider built from the files) and compares the labelmap images.
import fs from 'node:fs';
import path from 'node:path';
import { readPart10, seriesMetadata, segSummary, compareLabelmaps, TS_NAMES, LABELMAP_SEG } from './lib.mjs';
import { parseNpy } from './npy.mjs';

const [segPath, refDir, expectedPath] = process.argv.slice(2);
if (!segPath || !refDir || !expectedPath) {
  console.error('usage: node check_seg.mjs SEG.dcm REFERENCE_FOLDER EXPECTED.npy');
  process.exit(2);
}
// silence library chatter on stdout: the last line must be our JSON
const log = console.log;
console.log = (...a) => console.error(...a);
console.warn = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);
console.debug = () => {};

const toAB = (b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
const expected = parseNpy(fs.readFileSync(expectedPath));
const [nk, nj, ni] = expected.shape;
const sliceLength = nj * ni;
const refFiles = fs.readdirSync(refDir).filter((f) => f.endsWith('.dcm')).sort();
const refDatasets = refFiles.map((f) => readPart10(toAB(fs.readFileSync(path.join(refDir, f)))));
const segBuffer = toAB(fs.readFileSync(segPath));
const result = {};

function expectedFramesAndSegments() {
  let frames = 0;
  const numbers = new Set();
  for (let k = 0; k < nk; k++) {
    let any = false;
    for (let p = 0; p < sliceLength; p++) {
      const v = expected.data[k * sliceLength + p];
      if (v) { any = true; numbers.add(v); }
    }
    if (any) frames++;
  }
  return { frames, maxNumber: Math.max(0, ...numbers) };
}

// ---------------------------------------------------------------- dcmjs
try {
  const t0 = performance.now();
  const ds = readPart10(segBuffer);
  const s = segSummary(ds);
  const want = expectedFramesAndSegments();
  const userSegments = s.segments.filter((x) => x.number > 0);
  const notes = [`${TS_NAMES[s.transferSyntaxUID] || s.transferSyntaxUID}`, `${s.numberOfFrames} frames`,
                 `${userSegments.length} segments`];
  let ok = s.sopClassUID === LABELMAP_SEG && s.segmentationType === 'LABELMAP' &&
           s.numberOfFrames === want.frames && userSegments.length >= want.maxNumber;
  const native = ['1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2'].includes(s.transferSyntaxUID);
  if (native && ok) {
    // place frames by position and compare voxels
    const { imageIds, byId } = seriesMetadata(refDatasets, 'ref');
    const iop = refDatasets[0].ImageOrientationPatient.map(Number);
    const n = [iop[1] * iop[5] - iop[2] * iop[4], iop[2] * iop[3] - iop[0] * iop[5], iop[0] * iop[4] - iop[1] * iop[3]];
    const dist = (p) => p[0] * n[0] + p[1] * n[1] + p[2] * n[2];
    const refD = imageIds.map((id) => dist(byId.get(id).ds.ImagePositionPatient.map(Number)));
    const bytes = new Uint8Array([].concat(ds.PixelData)[0]);
    const bpp = Number(ds.BitsAllocated) / 8;
    const got = new Int32Array(nk * sliceLength);
    const perFrame = [].concat(ds.PerFrameFunctionalGroupsSequence);
    perFrame.forEach((g, f) => {
      const pos = [].concat(g.PlanePositionSequence)[0].ImagePositionPatient.map(Number);
      const k = refD.findIndex((d) => Math.abs(d - dist(pos)) < 1e-3);
      if (k < 0) throw new Error(`frame ${f + 1} is at no reference slice`);
      for (let p = 0; p < sliceLength; p++) {
        const o = (f * sliceLength + p) * bpp;
        got[k * sliceLength + p] = bpp === 1 ? bytes[o] : bytes[o] | (bytes[o + 1] << 8);
      }
    });
    let mism = 0;
    for (let i = 0; i < got.length; i++) if (got[i] !== expected.data[i]) mism++;
    ok = ok && mism === 0;
    notes.push(mism === 0 ? 'pixels exact' : `${mism} voxels differ`);
  } else if (!native) {
    notes.push('parses; no codec in dcmjs, pixels not decoded');
  }
  result.dcmjs = { ok, note: notes.join(', '), ms: Math.round(performance.now() - t0), summary: s };
} catch (e) {
  result.dcmjs = { ok: false, note: `${e.name}: ${String(e.message).slice(0, 120)}` };
}

// ---------------------------------------------------------------- Cornerstone3D adapters
try {
  const core = await import('@cornerstonejs/core');
  const adapters = await import('@cornerstonejs/adapters');
  const t0 = performance.now();
  const { imageIds, provider } = seriesMetadata(refDatasets, 'ref');
  core.metaData.addProvider(provider, 10000);
  const seg = adapters.adaptersSEG.Cornerstone3D.Segmentation;
  const res = await seg.createFromDICOMSegBuffer(imageIds, segBuffer, { metadataProvider: core.metaData });
  const cmp = compareLabelmaps(res.labelMapImages, expected.data, sliceLength);
  const nseg = res.segMetadata && res.segMetadata.data ? res.segMetadata.data.slice(1).filter(Boolean).length : 0;
  result.Cornerstone3D = {
    ok: cmp.equal,
    note: cmp.equal ? `voxels exact (${cmp.slices} slices, ${nseg} segments)`
      : `${cmp.mismatches} voxels differ (${cmp.slices} slices, ${cmp.layers} layer(s))`,
    ms: Math.round(performance.now() - t0),
    counts: cmp.counts,
    overlapping: res.overlappingSegments,
  };
} catch (e) {
  result.Cornerstone3D = { ok: false, note: `${e.name}: ${String(e.message).slice(0, 120)}` };
}

// ---------------------------------------------------------------- Cornerstone3D + codec supplied by the app
// (only with --app-codec): what a viewer must add for JPEG-LS / JPEG 2000 SEGs. The
// adapters' lower-level createLabelmapsFromSegImageIds accepts a decodeImageData callback;
// we decode the frames with @cornerstonejs/codec-charls / codec-openjpeg (WASM).
if (process.argv.includes('--app-codec')) {
  const key = 'Cornerstone3D + app codec';
  try {
    const ts = readPart10(segBuffer)._meta.TransferSyntaxUID;
    const codecName = { '1.2.840.10008.1.2.4.80': 'charls', '1.2.840.10008.1.2.4.90': 'openjpeg' }[ts];
    if (!codecName) {
      result[key] = { ok: result.Cornerstone3D.ok, note: 'no codec needed (same as Cornerstone3D)' };
    } else {
      const { createRequire } = await import('node:module');
      const require = createRequire(import.meta.url);
      const factory = codecName === 'charls' ? require('@cornerstonejs/codec-charls/decodewasmjs')
        : require('@cornerstonejs/codec-openjpeg/decodewasmjs');
      const codec = await factory();
      const dcmjs = (await import('dcmjs')).default;
      const core = await import('@cornerstonejs/core');
      const adapters = await import('@cornerstonejs/adapters');
      const t0 = performance.now();
      const msg = dcmjs.data.DicomMessage.readFile(segBuffer);
      const ds = dcmjs.data.DicomMetaDictionary.naturalizeDataset(msg.dict);
      ds._meta = dcmjs.data.DicomMetaDictionary.namifyDataset(msg.meta);
      const multiframe = dcmjs.normalizers.Normalizer.normalizeToDataset([ds]);
      const frames = [].concat(multiframe.PixelData);
      const decodeImageData = async (_id, frameNumber) => {
        const decoder = codecName === 'charls' ? new codec.JpegLSDecoder() : new codec.J2KDecoder();
        const encoded = new Uint8Array(frames[frameNumber - 1]);
        decoder.getEncodedBuffer(encoded.length).set(encoded);
        decoder.decode();
        const out = new Uint8Array(decoder.getDecodedBuffer());  // copy out of WASM memory
        decoder.delete();
        return out;
      };
      const segImageId = 'abdicom-seg:0';
      const n = Number(multiframe.NumberOfFrames);
      const { imageIds } = seriesMetadata(refDatasets, 'ref');
      const res = await adapters.adaptersSEG.Cornerstone3D.Segmentation.createLabelmapsFromSegImageIds(
        imageIds, segImageId, core.metaData, {
          multiframe, decodeImageData,
          frameImageIds: Array.from({ length: n }, (_, i) => `${segImageId}#frame=${i + 1}`),
        });
      const cmp = compareLabelmaps(res.labelMapImages, expected.data, sliceLength);
      result[key] = { ok: cmp.equal, ms: Math.round(performance.now() - t0),
                      note: (cmp.equal ? 'voxels exact' : `${cmp.mismatches} voxels differ`) + ` with @cornerstonejs/codec-${codecName}` };
    }
  } catch (e) {
    result[key] = { ok: false, note: `${e.name}: ${String(e.message).slice(0, 120)}` };
  }
}

log(JSON.stringify(result));
