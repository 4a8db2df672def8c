/**
 * safetensors reader/writer (https://github.com/huggingface/safetensors), matching the C++ runtime
 * (runtime/src/safetensors.{h,cpp}):
 *
 *   [u64 little-endian N][N bytes of JSON header, space-padded so 8 + N is a multiple of 8][data]
 *
 * The header maps tensor name → {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative
 * to the data section) plus an optional "__metadata__" object of string → string. The writer packs
 * tensors in the given order; the reader checks what the runtime checks (header ≤ 100 MB, known
 * dtypes, offsets tiling the data section exactly, byte length = numel × dtype size) and throws a
 * StrataError naming the file and the problem.
 *
 * Float dtypes: values are first rounded to float32 (Math.fround), then to BF16 / F16 with
 * round-to-nearest-even — exactly what the runtime does with its float32 weights (runtime/INIT.md §3).
 * Reading widens BF16 / F16 to Float32Array exactly.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { StrataError } from "../ir/errors.js";
import { numelOf } from "./shape.js";

export type SafetensorsDtype = "BF16" | "F16" | "F32" | "I32" | "I64";

const DTYPE_SIZE: Record<SafetensorsDtype, number> = { BF16: 2, F16: 2, F32: 4, I32: 4, I64: 8 };
const DTYPES = Object.keys(DTYPE_SIZE) as SafetensorsDtype[];

/** Headers above this are rejected (the reference implementation's limit). */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | readonly number[];

export interface SafetensorsWriteTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  /** numel(shape) values: numbers (floats rounded as above; integers for I32/I64) or bigints for I64. */
  data: NumericArray;
}

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  /** F32/F16/BF16 → Float32Array (exact widening), I32 → Int32Array, I64 → BigInt64Array. */
  data: Float32Array | Int32Array | BigInt64Array;
}

export interface SafetensorsContents {
  /** In file (data offset) order. */
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

// ---- scalar conversions ---------------------------------------------------------------------

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** float32 bits → bf16 bits, round-to-nearest-even, NaN kept NaN (quiet bit set). */
function f32BitsToBf16(b: number): number {
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x0040) & 0xffff;
  return Math.floor((b + 0x7fff + ((b >>> 16) & 1)) / 65536) & 0xffff;
}

/** The bf16 bits of `x` (rounded to float32 first, then round-to-nearest-even). */
export function bf16Bits(x: number): number {
  f32buf[0] = x;
  return f32BitsToBf16(u32buf[0]!);
}

/** bf16 bits → the value. */
export function bf16ToNumber(h: number): number {
  u32buf[0] = (h & 0xffff) << 16;
  return f32buf[0]!;
}

/** `x` after rounding to bf16 (via float32, round-to-nearest-even), as a number. */
export function bf16Round(x: number): number {
  return bf16ToNumber(bf16Bits(x));
}

/** float32 bits → IEEE binary16 bits, round-to-nearest-even, overflow → ±inf, subnormals kept. */
function f32BitsToF16(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal (or exactly a tie with 0)
    mant |= 0x800000;
    const shift = 14 - e; // 14..24
    const half = 2 ** (shift - 1);
    const rem = mant % (2 * half);
    let r = Math.floor(mant / (2 * half));
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++; // a carry into the exponent is correct (up to inf)
  return sign | r;
}

/** The binary16 bits of `x` (rounded to float32 first, as the runtime does). */
export function f16Bits(x: number): number {
  f32buf[0] = x;
  return f32BitsToF16(u32buf[0]!);
}

/** binary16 bits → the value. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** `x` after rounding to float16 (via float32, round-to-nearest-even), as a number. */
export function f16Round(x: number): number {
  return f16ToNumber(f16Bits(x));
}

// ---- writer ---------------------------------------------------------------------------------


function encode(t: SafetensorsWriteTensor, n: number, ctx: string): Uint8Array {
  const out = new Uint8Array(n * DTYPE_SIZE[t.dtype]);
  const dv = new DataView(out.buffer);
  const d = t.data;
  const num = (i: number): number => {
    const v = d[i];
    if (typeof v === "bigint") throw new StrataError(`${ctx}: bigint data is only accepted for dtype I64`);
    return v as number;
  };
  switch (t.dtype) {
    case "F32":
      for (let i = 0; i < n; i++) dv.setFloat32(4 * i, num(i), true);
      break;
    case "BF16":
      for (let i = 0; i < n; i++) dv.setUint16(2 * i, bf16Bits(num(i)), true);
      break;
    case "F16":
      for (let i = 0; i < n; i++) dv.setUint16(2 * i, f16Bits(num(i)), true);
      break;
    case "I32":
      for (let i = 0; i < n; i++) {
        const v = num(i);
        if (!Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw new StrataError(`${ctx}: element ${i} = ${v} is not an int32`);
        dv.setInt32(4 * i, v, true);
      }
      break;
    case "I64":
      for (let i = 0; i < n; i++) {
        const v = d[i]!;
        if (typeof v === "bigint") {
          if (BigInt.asIntN(64, v) !== v) throw new StrataError(`${ctx}: element ${i} = ${v} is not an int64`);
          dv.setBigInt64(8 * i, v, true);
        } else {
          if (!Number.isSafeInteger(v)) throw new StrataError(`${ctx}: element ${i} = ${v} is not an integer (safe integer or bigint needed for I64)`);
          dv.setBigInt64(8 * i, BigInt(v), true);
        }
      }
      break;
  }
  return out;
}

/**
 * Write a safetensors file: tensors laid out in the given order, header space-padded so the data
 * section starts 8-byte aligned, `metadata` (string → string) stored as "__metadata__".
 */
export function writeSafetensors(path: string, tensors: readonly SafetensorsWriteTensor[], metadata?: Readonly<Record<string, string>>): void {
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata))
      if (typeof v !== "string") throw new StrataError(`${path}: __metadata__ value for key '${k}' must be a string, got ${typeof v}`);
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  const seen = new Set<string>();
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const ctx = `${path}: tensor '${t.name}'`;
    if (typeof t.name !== "string" || t.name === "" || t.name === "__metadata__") throw new StrataError(`${path}: invalid tensor name ${JSON.stringify(t.name)}`);
    if (seen.has(t.name)) throw new StrataError(`${path}: duplicate tensor name '${t.name}'`);
    seen.add(t.name);
    if (!DTYPES.includes(t.dtype)) throw new StrataError(`${ctx}: unknown dtype ${JSON.stringify(t.dtype)} (supported: ${DTYPES.join(", ")})`);
    const n = numelOf(t.shape, ctx);
    if (t.data.length !== n) throw new StrataError(`${ctx}: ${t.data.length} values for shape [${t.shape.join(", ")}] (${n} elements)`);
    const blob = encode(t, n, ctx);
    blobs.push(blob);
    // Written by hand so the header keeps the given order (JSON objects put integer-like keys first).
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],"data_offsets":[${offset},${offset + blob.length}]}`);
    offset += blob.length;
  }
  let header = `{${parts.join(",")}}`;
  let hbytes = Buffer.from(header, "utf8");
  const pad = (8 - ((8 + hbytes.length) % 8)) % 8;
  if (pad) {
    header += " ".repeat(pad);
    hbytes = Buffer.from(header, "utf8");
  }
  const file = Buffer.alloc(8 + hbytes.length + offset);
  file.writeBigUInt64LE(BigInt(hbytes.length), 0);
  hbytes.copy(file, 8);
  let at = 8 + hbytes.length;
  for (const b of blobs) {
    file.set(b, at);
    at += b.length;
  }
  try {
    writeFileSync(path, file);
  } catch (e) {
    throw new StrataError(`${path}: cannot write safetensors file: ${(e as Error).message}`);
  }
}

// ---- reader ---------------------------------------------------------------------------------

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

const typeName = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

function parseEntry(path: string, name: string, v: unknown, dataSize: number): Entry {
  const bad = (why: string) => new StrataError(`${path}: tensor '${name}': ${why}`);
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(`header entry must be an object, got ${typeName(v)}`);
  const o = v as Record<string, unknown>;
  if (typeof o.dtype !== "string") throw bad(`missing or non-string "dtype"`);
  if (!DTYPES.includes(o.dtype as SafetensorsDtype)) throw bad(`unknown dtype "${o.dtype}" (supported: ${DTYPES.join(", ")})`);
  const dtype = o.dtype as SafetensorsDtype;
  if (!Array.isArray(o.shape)) throw bad(`missing or non-array "shape"`);
  if (!Array.isArray(o.data_offsets) || o.data_offsets.length !== 2) throw bad(`"data_offsets" must be an array [begin, end]`);
  const shape = o.shape as unknown[];
  for (const d of shape) if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) throw bad(`shape entries must be non-negative integers, got ${JSON.stringify(shape)}`);
  const offs = o.data_offsets as unknown[];
  for (const d of offs) if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) throw bad(`data_offsets must be non-negative integers, got ${JSON.stringify(offs)}`);
  const [begin, end] = offs as [number, number];
  if (begin > end) throw bad(`data_offsets [${begin}, ${end}] are out of order (begin > end)`);
  if (end > dataSize) throw bad(`data_offsets [${begin}, ${end}] extend beyond the data section (${dataSize} bytes; file truncated?)`);
  let numel = 1;
  for (const d of shape as number[]) numel *= d;
  const want = numel * DTYPE_SIZE[dtype];
  if (!Number.isSafeInteger(want)) throw bad(`shape ${JSON.stringify(shape)} is too large`);
  if (end - begin !== want)
    throw bad(`data_offsets [${begin}, ${end}] span ${end - begin} bytes but dtype ${dtype} x shape [${shape.join(", ")}] needs ${want} bytes`);
  return { name, dtype, shape: shape as number[], begin, end };
}

function decode(e: Entry, bytes: Uint8Array): SafetensorsTensor {
  const n = bytes.length / DTYPE_SIZE[e.dtype];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (e.dtype) {
    case "F32": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return { dtype: e.dtype, shape: e.shape, data: out };
    }
    case "BF16": {
      const out = new Float32Array(n);
      const u = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16;
      return { dtype: e.dtype, shape: e.shape, data: out };
    }
    case "F16": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToNumber(dv.getUint16(2 * i, true));
      return { dtype: e.dtype, shape: e.shape, data: out };
    }
    case "I32": {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return { dtype: e.dtype, shape: e.shape, data: out };
    }
    case "I64": {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) out[i] = dv.getBigInt64(8 * i, true);
      return { dtype: e.dtype, shape: e.shape, data: out };
    }
  }
}

/** Read and validate a safetensors file: tensors (in file order) and metadata. */
export function readSafetensorsFile(path: string): SafetensorsContents {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new StrataError(`${path}: cannot open safetensors file: ${(e as Error).message}`);
  }
  const size = buf.length;
  if (size < 8) throw new StrataError(`${path}: truncated safetensors file: ${size} bytes, shorter than the 8-byte header length prefix`);
  const hlen = buf.readBigUInt64LE(0);
  if (hlen > BigInt(SAFETENSORS_MAX_HEADER))
    throw new StrataError(`${path}: header length ${hlen} bytes exceeds the 100 MB limit; not a safetensors file?`);
  const h = Number(hlen);
  if (h > size - 8) throw new StrataError(`${path}: truncated safetensors file: header length ${h} bytes but only ${size - 8} bytes follow the length prefix`);
  let root: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(8, 8 + h));
    root = JSON.parse(text);
  } catch (e) {
    throw new StrataError(`${path}: safetensors header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof root !== "object" || root === null || Array.isArray(root)) throw new StrataError(`${path}: safetensors header must be a JSON object, got ${typeName(root)}`);
  const dataStart = 8 + h;
  const dataSize = size - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [k, v] of Object.entries(root as Record<string, unknown>)) {
    if (k === "__metadata__") {
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new StrataError(`${path}: "__metadata__" must be an object of strings`);
      for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) {
        if (typeof mv !== "string") throw new StrataError(`${path}: "__metadata__" value for key '${mk}' must be a string, got ${typeName(mv)}`);
        metadata[mk] = mv;
      }
      continue;
    }
    entries.push(parseEntry(path, k, v, dataSize));
  }
  // Offsets must tile [0, dataSize) exactly.
  entries.sort((a, b) => (a.begin !== b.begin ? a.begin - b.begin : a.end - b.end));
  let next = 0;
  let prev: Entry | undefined;
  for (const e of entries) {
    if (e.begin < next)
      throw new StrataError(`${path}: tensor '${e.name}' data_offsets [${e.begin}, ${e.end}] overlap tensor '${prev!.name}' [${prev!.begin}, ${prev!.end}]`);
    if (e.begin > next) throw new StrataError(`${path}: gap in data section: bytes [${next}, ${e.begin}) before tensor '${e.name}' belong to no tensor`);
    next = e.end;
    prev = e;
  }
  if (next !== dataSize) throw new StrataError(`${path}: data section has ${dataSize} bytes but tensors cover only ${next} (trailing bytes belong to no tensor)`);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) tensors.set(e.name, decode(e, buf.subarray(dataStart + e.begin, dataStart + e.end)));
  return { tensors, metadata };
}

/** Read a safetensors file's tensors (in file order); see readSafetensorsFile for the metadata too. */
export function readSafetensors(path: string): Map<string, SafetensorsTensor> {
  return readSafetensorsFile(path).tensors;
}
