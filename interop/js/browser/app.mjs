// Browser check: load an image series + a LABELMAP SEG from a DICOMweb server into
// Cornerstone3D (StackViewport + labelmap representation) and report what was decoded.
// Query parameters: dicomweb (base URL, same origin), study, series, seg (SEG series UID),
// expected (URL of the expected segment-number .npy), slice (optional index).
// Results go to window.__abdicom (read by the playwright driver, run_browser.mjs).
import * as csCore from '@cornerstonejs/core';
import * as csTools from '@cornerstonejs/tools';
import { adaptersSEG } from '@cornerstonejs/adapters';
import dcmjs from 'dcmjs';
import { naturalizeJson, seriesMetadata, compareLabelmaps, imagePixels } from '../lib.mjs';
import { parseNpy } from '../npy.mjs';

const q = new URLSearchParams(location.search);
const dw = q.get('dicomweb');
const status = (msg) => { document.getElementById('status').textContent = msg; };
const result = { ok: false, stage: 'start', timings: {} };
window.__abdicom = result;

/** Bodies of a multipart/related response. */
function splitMultipart(buffer, contentType) {
  const m = /boundary="?([^";]+)"?/i.exec(contentType || '');
  const bytes = new Uint8Array(buffer);
  if (!m) return [bytes];
  const delim = new TextEncoder().encode('--' + m[1]);
  const idx = [];
  outer: for (let i = 0; i <= bytes.length - delim.length; i++) {
    for (let j = 0; j < delim.length; j++) if (bytes[i + j] !== delim[j]) continue outer;
    idx.push(i);
    i += delim.length - 1;
  }
  const parts = [];
  for (let n = 0; n + 1 < idx.length; n++) {
    const chunk = bytes.subarray(idx[n] + delim.length, idx[n + 1]);
    let h = 0;
    while (h + 3 < chunk.length && !(chunk[h] === 13 && chunk[h + 1] === 10 && chunk[h + 2] === 13 && chunk[h + 3] === 10)) h++;
    let body = chunk.subarray(h + 4);
    if (body.length >= 2 && body[body.length - 2] === 13 && body[body.length - 1] === 10) body = body.subarray(0, body.length - 2);
    parts.push(body);
  }
  return parts;
}

async function get(url, accept) {
  const r = await fetch(url, { headers: { Accept: accept } });
  if (!r.ok) throw new Error(`HTTP ${r.status} for ${url}`);
  return r;
}

async function main() {
  const t0 = performance.now();
  await csCore.init();
  csTools.init();
  result.stage = 'metadata';
  status('series metadata (WADO-RS)...');
  const metaResp = await get(`${dw}/studies/${q.get('study')}/series/${q.get('series')}/metadata`, 'application/dicom+json');
  const datasets = (await metaResp.json()).map(naturalizeJson);
  const { imageIds, provider, byId } = seriesMetadata(datasets, 'abd');
  csCore.metaData.addProvider(provider, 10000);
  result.timings.metadata_ms = Math.round(performance.now() - t0);

  result.stage = 'frames';
  status(`${imageIds.length} frames (WADO-RS)...`);
  const t1 = performance.now();
  await Promise.all(imageIds.map(async (imageId) => {
    const ds = byId.get(imageId).ds;
    const url = `${dw}/studies/${ds.StudyInstanceUID}/series/${ds.SeriesInstanceUID}/instances/${ds.SOPInstanceUID}/frames/1`;
    const r = await get(url, 'multipart/related; type="application/octet-stream"; transfer-syntax=*');
    const [part] = splitMultipart(await r.arrayBuffer(), r.headers.get('Content-Type'));
    const copy = part.slice().buffer;
    const signed = Number(ds.PixelRepresentation || 0) === 1;
    const scalarData = Number(ds.BitsAllocated) === 16 ? (signed ? new Int16Array(copy) : new Uint16Array(copy)) : new Uint8Array(copy);
    const ps = ds.PixelSpacing.map(Number);
    const image = csCore.imageLoader.createAndCacheLocalImage(imageId, {
      scalarData,
      dimensions: [Number(ds.Columns), Number(ds.Rows)],
      spacing: [ps[1], ps[0]],
      origin: ds.ImagePositionPatient.map(Number),
      direction: ds.ImageOrientationPatient.map(Number),
      frameOfReferenceUID: ds.FrameOfReferenceUID,
    });
    // local images start with window 0/0 (black): use the series' WindowCenter/Width
    image.windowCenter = Number([].concat(ds.WindowCenter ?? 500)[0]);
    image.windowWidth = Number([].concat(ds.WindowWidth ?? 1000)[0]);
    image.slope = Number(ds.RescaleSlope ?? 1);
    image.intercept = Number(ds.RescaleIntercept ?? 0);
  }));
  result.timings.frames_ms = Math.round(performance.now() - t1);

  result.stage = 'seg';
  status('SEG (WADO-RS)...');
  const t2 = performance.now();
  const segSeries = q.get('seg');
  const inst = await (await get(`${dw}/studies/${q.get('study')}/series/${segSeries}/instances`, 'application/dicom+json')).json();
  const segSop = inst[0]['00080018'].Value[0];
  const segResp = await get(`${dw}/studies/${q.get('study')}/series/${segSeries}/instances/${segSop}`,
                            'multipart/related; type="application/dicom"; transfer-syntax=*');
  const [segPart] = splitMultipart(await segResp.arrayBuffer(), segResp.headers.get('Content-Type'));
  const segBuffer = segPart.slice().buffer;
  result.seg_bytes = segBuffer.byteLength;
  const decoded = await adaptersSEG.Cornerstone3D.Segmentation.createFromDICOMSegBuffer(
    imageIds, segBuffer, { metadataProvider: csCore.metaData });
  result.timings.seg_ms = Math.round(performance.now() - t2);
  const labelImages = Array.isArray(decoded.labelMapImages[0]) ? decoded.labelMapImages[0] : decoded.labelMapImages;
  const sliceLength = Number(datasets[0].Rows) * Number(datasets[0].Columns);
  if (q.get('expected')) {
    const exp = parseNpy(await (await get(q.get('expected'), 'application/octet-stream')).arrayBuffer());
    result.compare = compareLabelmaps(decoded.labelMapImages, exp.data, sliceLength);
  }
  // segment 0 is the LABELMAP "Background" item
  result.segments = (decoded.segMetadata?.data || []).map((s, i) => (s && i > 0 ? {
    number: i, label: s.SegmentLabel,
    rgb: s.RecommendedDisplayCIELabValue ? dcmjs.data.Colors.dicomlab2RGB8(s.RecommendedDisplayCIELabValue.map(Number)) : null,
  } : null)).filter(Boolean);

  result.stage = 'render';
  status('rendering...');
  const element = document.getElementById('viewport');
  const engine = new csCore.RenderingEngine('abdicom');
  engine.enableElement({ viewportId: 'vp', type: csCore.Enums.ViewportType.STACK, element });
  const viewport = engine.getViewport('vp');
  // the slice showing the most segments (then the most labelled voxels), unless one is asked for
  let best = 0, bestScore = [-1, -1], bestCount = 0;
  labelImages.forEach((img, k) => {
    const px = imagePixels(img);
    const seen = new Set();
    let c = 0;
    for (let p = 0; p < px.length; p++) if (px[p]) { c++; seen.add(px[p]); }
    if (seen.size > bestScore[0] || (seen.size === bestScore[0] && c > bestScore[1])) {
      best = k; bestScore = [seen.size, c]; bestCount = c;
    }
  });
  const slice = q.get('slice') !== null ? Number(q.get('slice')) : best;
  await viewport.setStack(imageIds, slice);
  const ds0 = datasets[0];
  const wc = Number([].concat(ds0.WindowCenter ?? 500)[0]);
  const ww = Number([].concat(ds0.WindowWidth ?? 1000)[0]);
  viewport.setProperties({ voiRange: { lower: wc - ww / 2, upper: wc + ww / 2 } });
  if (q.get('noseg')) {
    viewport.render();
    await new Promise((res) => setTimeout(res, 500));
    result.stage = 'done';
    result.ok = true;
    status('image only');
    return;
  }
  csTools.segmentation.addSegmentations([{
    segmentationId: 'seg',
    representation: {
      type: csTools.Enums.SegmentationRepresentations.Labelmap,
      data: { imageIds: labelImages.map((i) => i.imageId) },
    },
  }]);
  await csTools.segmentation.addLabelmapRepresentationToViewport('vp', [{ segmentationId: 'seg' }]);
  // colours from the SEG (RecommendedDisplayCIELabValue), as a viewer should show them
  for (const s of result.segments) {
    if (s.rgb) csTools.segmentation.config.color.setSegmentIndexColor('vp', 'seg', s.number, [...s.rgb, 255]);
  }
  viewport.render();
  await new Promise((res) => setTimeout(res, 500));
  viewport.render();
  await new Promise((res) => setTimeout(res, 500));
  result.slice = slice;
  result.labelled_voxels_on_slice = bestCount;
  result.timings.total_ms = Math.round(performance.now() - t0);
  result.stage = 'done';
  result.ok = !result.compare || result.compare.equal;
  status(`slice ${slice + 1}/${imageIds.length}: ${result.segments.map((s) => s.label).join(', ')}`);
}

main().catch((e) => {
  result.error = `${e.name}: ${e.message}`;
  result.stack = String(e.stack || '').slice(0, 2000);
  status(`error at ${result.stage}: ${result.error}`);
  result.stage = 'error:' + result.stage;
});
