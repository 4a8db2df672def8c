/**
 * Minimal NumPy .npy support for the runtime CLI's files (runtime/src/npy.h): little-endian int32
 * ('<i4') and float32 ('<f4') C-order arrays. Writes format 1.0 (header padded with spaces and a
 * newline so the data starts 64-byte aligned, as numpy does); reads 1.0, 2.0 and 3.0 headers.
 * Errors are StrataErrors naming the file and the problem.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { StrataError } from "../ir/errors.js";
import { numelOf } from "./shape.js";

export type NpyDtype = "<i4" | "<f4";

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: Int32Array | Float32Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"


/** Write a v1.0 .npy file. Float32 data is rounded to float32; int32 data must hold int32 integers. */
export function writeNpy(path: string, dtype: NpyDtype, shape: readonly number[], data: ArrayLike<number>): void {
  if (dtype !== "<i4" && dtype !== "<f4") throw new StrataError(`${path}: unsupported .npy dtype ${JSON.stringify(dtype)} (supported: '<i4' int32, '<f4' float32)`);
  const n = numelOf(shape, path);
  if (data.length !== n) throw new StrataError(`${path}: ${data.length} values for shape [${shape.join(", ")}] (${n} elements)`);
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = 10 + header.length + 1; // magic(6) + version(2) + u16 length(2) + header + '\n'
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const buf = Buffer.alloc(10 + header.length + 4 * n);
  MAGIC.forEach((b, i) => (buf[i] = b));
  buf[6] = 1;
  buf[7] = 0;
  buf.writeUInt16LE(header.length, 8);
  buf.write(header, 10, "latin1");
  let at = 10 + header.length;
  for (let i = 0; i < n; i++, at += 4) {
    const v = data[i]!;
    if (dtype === "<f4") buf.writeFloatLE(v, at);
    else {
      if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw new StrataError(`${path}: element ${i} = ${v} is not an int32`);
      buf.writeInt32LE(v, at);
    }
  }
  try {
    writeFileSync(path, buf);
  } catch (e) {
    throw new StrataError(`${path}: cannot write .npy file: ${(e as Error).message}`);
  }
}

/** Read a little-endian int32 / float32 C-order .npy file. */
export function readNpy(path: string): NpyArray {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new StrataError(`${path}: cannot open .npy file: ${(e as Error).message}`);
  }
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) throw new StrataError(`${path}: not a .npy file (bad magic; expected "\\x93NUMPY")`);
  const major = buf[6]!;
  let hlen: number, hstart: number;
  if (major === 1) (hlen = buf.readUInt16LE(8)), (hstart = 10);
  else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new StrataError(`${path}: truncated .npy header`);
    (hlen = buf.readUInt32LE(8)), (hstart = 12);
  } else throw new StrataError(`${path}: unsupported .npy format version ${major}.${buf[7]} (supported: 1.0, 2.0, 3.0)`);
  if (hstart + hlen > buf.length) throw new StrataError(`${path}: truncated .npy header: needs ${hlen} bytes, ${buf.length - hstart} present`);
  const header = buf.toString(major === 3 ? "utf8" : "latin1", hstart, hstart + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (descr === undefined || fortran === undefined || !shapeM) throw new StrataError(`${path}: malformed .npy header ${JSON.stringify(header.trim())}`);
  if (descr !== "<i4" && descr !== "<f4")
    throw new StrataError(`${path}: unsupported .npy dtype '${descr}' (supported: '<i4' int32, '<f4' float32)`, undefined, "convert with arr.astype(np.int32) / arr.astype(np.float32)");
  if (fortran === "True") throw new StrataError(`${path}: Fortran-order .npy arrays are not supported`, undefined, "save np.ascontiguousarray(arr)");
  const shape: number[] = [];
  for (const part of shapeM[1]!.split(",")) {
    const s = part.trim();
    if (s === "") continue;
    if (!/^\d+$/.test(s)) throw new StrataError(`${path}: malformed .npy shape (${shapeM[1]})`);
    shape.push(Number(s));
  }
  const n = numelOf(shape, path);
  const start = hstart + hlen;
  if (buf.length - start !== 4 * n)
    throw new StrataError(
      `${path}: ${buf.length - start < 4 * n ? "truncated" : "oversized"} .npy data: shape [${shape.join(", ")}] of ${descr} needs ${4 * n} bytes, file has ${buf.length - start}`,
    );
  const data = descr === "<f4" ? new Float32Array(n) : new Int32Array(n);
  for (let i = 0; i < n; i++) data[i] = descr === "<f4" ? buf.readFloatLE(start + 4 * i) : buf.readInt32LE(start + 4 * i);
  return { dtype: descr, shape, data };
}
