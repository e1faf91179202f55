// Minimal reader for NumPy .npy files (version 1/2/3, little-endian integer dtypes, C order).
const DTYPES = { '<i4': Int32Array, '<u2': Uint16Array, '<u1': Uint8Array, '|u1': Uint8Array, '<i2': Int16Array,
                 '<u4': Uint32Array };

export function parseNpy(buf) {
  // a node Buffer's slice() is a view: work on a plain Uint8Array (slice() copies)
  const u8 = ArrayBuffer.isView(buf) ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : new Uint8Array(buf);
  if (u8[0] !== 0x93 || String.fromCharCode(...u8.slice(1, 6)) !== 'NUMPY') throw new Error('not a .npy file');
  const major = u8[6];
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(u8.slice(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error('fortran order .npy not supported');
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const Ctor = DTYPES[descr];
  if (!Ctor) throw new Error(`unsupported .npy dtype ${descr}`);
  const offset = start + headerLen;
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Ctor(u8.slice(offset, offset + count * Ctor.BYTES_PER_ELEMENT).buffer);
  return { data: Int32Array.from(data), shape };
}
