/**
 * Tensors in and out of checkpoints without holding a model in memory.
 *
 * A `TensorSource` is a table of named tensors whose bytes are read on demand (a safetensors file,
 * the shards of a `model.safetensors.index.json`, the storages of a torch zip checkpoint, or
 * memory). A weight map is a list of `WeightRule`s: each Strata parameter is the concatenation,
 * along dim 0, of row ranges of source tensors (which covers renames, fused projections such as
 * qkv = [q; k; v] or fc1 = [gate; up], Megatron's per-group QKV interleave, and reshapes like
 * conv1d [C, 1, K] → [C, K]). `checkRules` reports every missing, extra or mis-shaped tensor by
 * name at once; `writeMapped` streams the result into one safetensors file in the target dtypes
 * (bf16 ↔ f32 conversion with round-to-nearest-even, raw copies where the dtypes agree).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync, writeSync } from "node:fs";
import path from "node:path";
import { StrataError } from "../ir/errors.js";

export type SrcDtype = "BF16" | "F16" | "F32" | "F64" | "I8" | "U8" | "I16" | "I32" | "I64" | "BOOL";
export type TargetDtype = "BF16" | "F16" | "F32";

export const DTYPE_BYTES: Record<SrcDtype, number> = { BF16: 2, F16: 2, F32: 4, F64: 8, I8: 1, U8: 1, I16: 2, I32: 4, I64: 8, BOOL: 1 };
const FLOAT_DTYPES: readonly SrcDtype[] = ["BF16", "F16", "F32", "F64"];

export interface SourceTensor {
  name: string;
  dtype: SrcDtype;
  shape: number[];
  /** `len` bytes starting `start` bytes into the tensor's (contiguous, little-endian) data. */
  read(start: number, len: number): Buffer;
}

export interface TensorSource {
  /** What the tensors came from, for messages. */
  describe: string;
  tensors: Map<string, SourceTensor>;
  close(): void;
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
export const shapeText = (s: readonly number[] | undefined) => (s ? `[${s.join(", ")}]` : "(absent)");

// ---- safetensors sources ----------------------------------------------------------------------

interface FileHandle {
  fd: number;
  path: string;
}

function readHeader(file: string): { header: Record<string, unknown>; dataStart: number; size: number } {
  const fd = openSync(file, "r");
  try {
    const size = statSync(file).size;
    const pre = Buffer.alloc(8);
    if (size < 8 || readSync(fd, pre, 0, 8, 0) !== 8) throw new StrataError(`${file}: not a safetensors file (shorter than 8 bytes)`);
    const n = Number(pre.readBigUInt64LE(0));
    if (n > 100_000_000 || n > size - 8) throw new StrataError(`${file}: not a safetensors file (header length ${n} bytes, file ${size} bytes)`);
    const hb = Buffer.alloc(n);
    readSync(fd, hb, 0, n, 8);
    let header: unknown;
    try {
      header = JSON.parse(hb.toString("utf8"));
    } catch (e) {
      throw new StrataError(`${file}: safetensors header is not JSON: ${(e as Error).message}`);
    }
    if (!header || typeof header !== "object" || Array.isArray(header)) throw new StrataError(`${file}: safetensors header must be a JSON object`);
    return { header: header as Record<string, unknown>, dataStart: 8 + n, size };
  } finally {
    closeSync(fd);
  }
}

function addSafetensorsFile(file: string, into: Map<string, SourceTensor>, handles: FileHandle[], only?: Set<string>): void {
  const { header, dataStart, size } = readHeader(file);
  const h: FileHandle = { fd: openSync(file, "r"), path: file };
  handles.push(h);
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    if (only && !only.has(name)) continue;
    const e = v as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    if (!e || typeof e.dtype !== "string" || !Array.isArray(e.shape) || !Array.isArray(e.data_offsets))
      throw new StrataError(`${file}: tensor '${name}': header entry needs dtype, shape and data_offsets`);
    if (!(e.dtype in DTYPE_BYTES)) throw new StrataError(`${file}: tensor '${name}' has dtype ${e.dtype}, which Strata cannot read`, undefined, `readable dtypes: ${Object.keys(DTYPE_BYTES).join(", ")}`);
    const dtype = e.dtype as SrcDtype;
    const [b, end] = e.data_offsets;
    if (end - b !== numel(e.shape) * DTYPE_BYTES[dtype] || dataStart + end > size)
      throw new StrataError(`${file}: tensor '${name}': data_offsets [${b}, ${end}] do not fit dtype ${dtype} × ${shapeText(e.shape)} in a ${size}-byte file (truncated?)`);
    if (into.has(name)) throw new StrataError(`${file}: tensor '${name}' appears in more than one shard`);
    const base = dataStart + b;
    const total = end - b;
    into.set(name, {
      name,
      dtype,
      shape: e.shape,
      read(start, len) {
        if (start < 0 || start + len > total) throw new Error(`read [${start}, ${start + len}) outside tensor '${name}' (${total} bytes)`);
        const buf = Buffer.alloc(len);
        let got = 0;
        while (got < len) {
          const r = readSync(h.fd, buf, got, len - got, base + start + got);
          if (r <= 0) throw new StrataError(`${file}: unexpected end of file reading '${name}'`);
          got += r;
        }
        return buf;
      },
    });
  }
}

/**
 * Open safetensors weights: a `.safetensors` file, a `model.safetensors.index.json`, or a folder
 * holding either (the index wins, as in transformers).
 */
export function openSafetensors(where: string): TensorSource {
  if (!existsSync(where)) throw new StrataError(`weights not found: ${where}`, undefined, "give a .safetensors file, a model.safetensors.index.json or a folder holding one");
  let file = where;
  if (statSync(where).isDirectory()) {
    const idx = path.join(where, "model.safetensors.index.json");
    const single = path.join(where, "model.safetensors");
    if (existsSync(idx)) file = idx;
    else if (existsSync(single)) file = single;
    else throw new StrataError(`${where}: no model.safetensors or model.safetensors.index.json in this folder`, undefined, "transformers' save_pretrained writes one of them (older .bin checkpoints: re-save with safe_serialization=True)");
  }
  const tensors = new Map<string, SourceTensor>();
  const handles: FileHandle[] = [];
  if (file.endsWith(".json")) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(readFileSync(file, "utf8")) as typeof index;
    } catch (e) {
      throw new StrataError(`${file}: not valid JSON: ${(e as Error).message}`);
    }
    if (!index.weight_map || typeof index.weight_map !== "object") throw new StrataError(`${file}: a sharded index needs a "weight_map" of tensor name → shard file`);
    const byShard = new Map<string, Set<string>>();
    for (const [name, shard] of Object.entries(index.weight_map)) {
      if (typeof shard !== "string" || shard.includes("..") || path.isAbsolute(shard)) throw new StrataError(`${file}: weight_map['${name}'] = ${JSON.stringify(shard)} is not a shard file name in the same folder`);
      if (!byShard.has(shard)) byShard.set(shard, new Set());
      byShard.get(shard)!.add(name);
    }
    for (const [shard, names] of byShard) {
      const p = path.join(path.dirname(file), shard);
      if (!existsSync(p)) throw new StrataError(`${file}: shard ${shard} (holding e.g. '${[...names][0]}') is missing`);
      addSafetensorsFile(p, tensors, handles, names);
      for (const n of names) if (!tensors.has(n)) throw new StrataError(`${file}: the index puts '${n}' in ${shard}, but that shard has no such tensor`);
    }
  } else addSafetensorsFile(file, tensors, handles);
  return {
    describe: file,
    tensors,
    close() {
      for (const h of handles.splice(0)) closeSync(h.fd);
    },
  };
}

/** Tensors held in memory (tests, small pickled objects). */
export function memorySource(describe: string, list: { name: string; dtype: SrcDtype; shape: number[]; bytes: Buffer }[]): TensorSource {
  const tensors = new Map<string, SourceTensor>();
  for (const t of list) tensors.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, read: (s, l) => t.bytes.subarray(s, s + l) });
  return { describe, tensors, close() {} };
}

// ---- weight maps ------------------------------------------------------------------------------

/** Rows [start, end) along dim 0 of source tensor `src` (all rows when absent). */
export interface Piece {
  src: string;
  rows?: [number, number];
}

export interface WeightRule {
  /** Name in the written file. */
  target: string;
  shape: number[];
  dtype: TargetDtype;
  pieces: Piece[];
}

export interface MapCheck {
  /** Expected full shape of every source tensor the rules read. */
  expected: Map<string, number[]>;
  /** Source tensors that may be present without being used (e.g. `_extra_state`, rotary buffers). */
  ignore?: (name: string) => boolean;
  /** Source tensors whose absence is fine. */
  optional?: Set<string>;
}

/** Every problem with a map against a source, by tensor name: missing, mis-shaped, extra. */
export function checkRules(rules: readonly WeightRule[], src: TensorSource, check: MapCheck): string[] {
  const problems: string[] = [];
  const used = new Set<string>();
  for (const [name, want] of check.expected) {
    const t = src.tensors.get(name);
    used.add(name);
    if (!t) {
      if (!check.optional?.has(name)) problems.push(`missing tensor '${name}': expected shape ${shapeText(want)}`);
      continue;
    }
    if (t.shape.join() !== want.join()) problems.push(`tensor '${name}' has shape ${shapeText(t.shape)}, expected ${shapeText(want)}`);
    else if (!FLOAT_DTYPES.includes(t.dtype)) problems.push(`tensor '${name}' has dtype ${t.dtype}; weights must be floating point (BF16, F16, F32, F64)`);
  }
  if (problems.length === 0) {
    for (const r of rules) {
      let n = 0;
      for (const p of r.pieces) {
        const t = src.tensors.get(p.src);
        if (!t) continue;
        const rows = p.rows ?? [0, t.shape[0] ?? 1];
        n += (rows[1] - rows[0]) * numel(t.shape.slice(1));
      }
      if (n !== numel(r.shape)) problems.push(`'${r.target}' ${shapeText(r.shape)} needs ${numel(r.shape)} values, the map gives ${n} (from ${r.pieces.map((p) => p.src).join(", ")})`);
    }
  }
  for (const name of src.tensors.keys()) if (!used.has(name) && !check.ignore?.(name)) problems.push(`extra tensor '${name}' ${shapeText(src.tensors.get(name)!.shape)}: nothing in the model uses it`);
  return problems;
}

export function throwProblems(what: string, problems: string[], hint?: string): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, 40).map((p) => `  - ${p}`);
  if (problems.length > 40) shown.push(`  … and ${problems.length - 40} more`);
  throw new StrataError(`${what}: ${problems.length} problem${problems.length > 1 ? "s" : ""}\n${shown.join("\n")}`, undefined, hint);
}

// ---- dtype conversion -------------------------------------------------------------------------

/** Decode `n` little-endian floats of `dtype` into a Float32Array (F64 rounded to float32). */
function decodeFloats(buf: Buffer, dtype: SrcDtype): Float32Array {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = buf.byteLength / DTYPE_BYTES[dtype];
  const out = new Float32Array(n);
  if (dtype === "BF16") {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = dv.getUint16(2 * i, true) << 16;
  } else if (dtype === "F32") for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
  else if (dtype === "F64") for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
  else if (dtype === "F16") {
    for (let i = 0; i < n; i++) {
      const h = dv.getUint16(2 * i, true);
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >>> 10) & 0x1f;
      const m = h & 0x3ff;
      out[i] = e === 0 ? s * m * 2 ** -24 : e === 0x1f ? (m ? NaN : s * Infinity) : s * (1024 + m) * 2 ** (e - 25);
    }
  } else throw new StrataError(`cannot convert ${dtype} data to floating point weights`);
  return out;
}

/** Encode float32 values as `dtype` (round-to-nearest-even for BF16 and F16). */
function encodeFloats(v: Float32Array, dtype: TargetDtype): Buffer {
  if (dtype === "F32") {
    const b = Buffer.alloc(v.length * 4);
    for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i]!, 4 * i);
    return b;
  }
  const b = Buffer.alloc(v.length * 2);
  const u = new Uint32Array(v.buffer, v.byteOffset, v.length);
  if (dtype === "BF16") {
    for (let i = 0; i < v.length; i++) {
      const x = u[i]!;
      const r = (x & 0x7fffffff) > 0x7f800000 ? ((x >>> 16) | 0x40) & 0xffff : Math.floor((x + 0x7fff + ((x >>> 16) & 1)) / 65536) & 0xffff;
      b.writeUInt16LE(r, 2 * i);
    }
    return b;
  }
  // F16 through the safetensors writer's rounding
  for (let i = 0; i < v.length; i++) b.writeUInt16LE(f16FromF32(v[i]!), 2 * i);
  return b;
}

function f16FromF32(x: number): number {
  const f = new Float32Array([x]);
  const bits = new Uint32Array(f.buffer)[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 2 ** (shift - 1);
    const rem = mant % (2 * half);
    let r = Math.floor(mant / (2 * half));
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++;
  return sign | r;
}

/** Convert raw bytes of `from` into `to`. */
export function convertBytes(buf: Buffer, from: SrcDtype, to: TargetDtype): Buffer {
  if (from === to) return buf;
  return encodeFloats(decodeFloats(buf, from), to);
}

// ---- writer -----------------------------------------------------------------------------------

const CHUNK_BYTES = 64 << 20;

/**
 * Stream `rules` (in order) from `src` into a safetensors file at `out`. Run `checkRules` first:
 * this assumes every piece exists with the expected shape.
 */
export function writeMapped(out: string, rules: readonly WeightRule[], src: TensorSource, metadata?: Record<string, string>, o: { chunkBytes?: number } = {}): { bytes: number } {
  const chunkBytes = o.chunkBytes ?? CHUNK_BYTES;
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let offset = 0;
  for (const r of rules) {
    const bytes = numel(r.shape) * DTYPE_BYTES[r.dtype];
    parts.push(`${JSON.stringify(r.target)}:{"dtype":"${r.dtype}","shape":[${r.shape.join(",")}],"data_offsets":[${offset},${offset + bytes}]}`);
    offset += bytes;
  }
  let header = `{${parts.join(",")}}`;
  const hlen = Buffer.byteLength(header, "utf8");
  header += " ".repeat((8 - ((8 + hlen) % 8)) % 8);
  const hb = Buffer.from(header, "utf8");
  const pre = Buffer.alloc(8);
  pre.writeBigUInt64LE(BigInt(hb.length));
  const fd = openSync(out, "w");
  try {
    writeSync(fd, pre);
    writeSync(fd, hb);
    for (const r of rules) {
      let written = 0;
      for (const p of r.pieces) {
        const t = src.tensors.get(p.src)!;
        const rowElems = numel(t.shape.slice(1));
        const [r0, r1] = p.rows ?? [0, t.shape[0] ?? 1];
        const es = DTYPE_BYTES[t.dtype];
        const rowBytes = rowElems * es;
        // chunks of whole elements (rows when a row fits)
        const step = Math.max(es, Math.floor(chunkBytes / es) * es);
        const start = r0 * rowBytes;
        const end = (t.shape.length === 0 ? es : r1 * rowBytes);
        for (let at = start; at < end; at += step) {
          const b = convertBytes(t.read(at, Math.min(step, end - at)), t.dtype, r.dtype);
          writeSync(fd, b);
          written += b.length;
        }
      }
      const want = numel(r.shape) * DTYPE_BYTES[r.dtype];
      if (written !== want) throw new Error(`internal: wrote ${written} bytes for '${r.target}', expected ${want}`);
    }
  } finally {
    closeSync(fd);
  }
  return { bytes: 8 + hb.length + offset };
}
