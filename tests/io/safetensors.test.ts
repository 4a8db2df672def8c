import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StrataError } from "../../compiler/ir/errors.js";
import { bf16Bits, bf16Round, f16Bits, f16Round, readSafetensors, readSafetensorsFile, writeSafetensors } from "../../compiler/io/safetensors.js";

const dir = mkdtempSync(join(tmpdir(), "strata-st-"));
let fileNo = 0;
const tmp = (name = "t") => join(dir, `${name}-${fileNo++}.safetensors`);

let seed = 0x2545f491;
function rand(): number {
  // xorshift32 → [0, 1)
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => ((f32[0] = x), u32[0]!);
const fromBits = (b: number) => ((u32[0] = b >>> 0), f32[0]!);

/** Independent bf16 rounding: pick the nearer of the two bf16 neighbours of the float32 value, ties to even. */
function refBf16(x: number): number {
  const v = Math.fround(x);
  if (Number.isNaN(v)) return NaN;
  if (!Number.isFinite(v)) return v;
  const b = bitsOf(v);
  const lo = fromBits(b & 0xffff0000); // truncation toward zero
  if (lo === v) return v;
  const upBits = (b & 0xffff0000) + 0x10000;
  const sign = b & 0x80000000 ? -1 : 1;
  // the next bf16 away from zero; past the largest finite bf16 the "neighbour" is 2^128 (→ ±inf)
  const hi = (upBits & 0x7f800000) === 0x7f800000 ? sign * 2 ** 128 : fromBits(upBits);
  const dLo = Math.abs(v - lo), dHi = Math.abs(hi - v);
  const pick = dLo < dHi ? lo : dHi < dLo ? hi : ((b >>> 16) & 1) === 0 ? lo : hi;
  return Math.abs(pick) === 2 ** 128 ? sign * Infinity : pick;
}

/** Independent f16 rounding: exact arithmetic on the float32 value (all doubles here are exact). */
function refF16(x: number): number {
  const v = Math.fround(x);
  if (!Number.isFinite(v)) return v;
  const a = Math.abs(v);
  const e = a < 2 ** -14 ? -14 : Math.floor(Math.log2(a)); // log2 is exact enough to find the binade…
  let ex = e;
  while (2 ** ex > a && ex > -14) ex--; // …and fix it up exactly
  while (2 ** (ex + 1) <= a) ex++;
  const ulp = 2 ** (Math.max(ex, -14) - 10);
  const q = a / ulp;
  const fl = Math.floor(q), r = q - fl;
  const m = r > 0.5 || (r === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  const out = m * ulp;
  return (v < 0 || Object.is(v, -0) ? -1 : 1) * (out >= 65520 ? Infinity : out);
}

describe("bf16 / f16 rounding", () => {
  it("bf16 pinned cases: ties to even, round up, NaN, overflow", () => {
    expect(bf16Round(1 + 2 ** -8)).toBe(1); // tie, 1 is even
    expect(bf16Round(1 + 3 * 2 ** -9)).toBe(1 + 2 ** -7); // above the tie: up
    expect(bf16Round(1 + 2 ** -9)).toBe(1); // below the tie: down
    expect(bf16Round(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6); // tie between odd 1+2^-7 and even 1+2^-6
    expect(bf16Round(-(1 + 3 * 2 ** -8))).toBe(-(1 + 2 ** -6));
    expect(Number.isNaN(bf16Round(NaN))).toBe(true);
    expect(bf16Bits(fromBits(0x7f800001))).toBe(0x7fc0); // signalling NaN payload kept NaN (quiet bit)
    expect(bf16Bits(fromBits(0xff800001))).toBe(0xffc0);
    expect(bf16Round(Infinity)).toBe(Infinity);
    expect(bf16Round(3.4028234663852886e38)).toBe(Infinity); // FLT_MAX rounds past the largest bf16
    expect(Object.is(bf16Round(-0), -0)).toBe(true);
    expect(bf16Round(1e-45)).toBe(0); // float32 subnormal below bf16's smallest: to even (0)
  });

  it("bf16 matches an independent implementation on random and edge bit patterns", () => {
    for (let i = 0; i < 200000; i++) {
      const b = (rand() * 4294967296) >>> 0;
      const x = fromBits(b);
      const got = bf16Round(x), want = refBf16(x);
      if (!Object.is(got, want) && !(Number.isNaN(got) && Number.isNaN(want))) throw new Error(`bf16 of bits 0x${b.toString(16)}: ${got} vs ${want}`);
    }
    for (const b of [0x3f808000, 0x3f818000, 0x3f80ffff, 0x7f7f8000, 0x7f7f7fff, 0x00008000, 0x00018000, 0x80008000]) {
      expect(Object.is(bf16Round(fromBits(b)), refBf16(fromBits(b))), `0x${b.toString(16)}`).toBe(true);
    }
  });

  it("f16 matches an independent implementation (normals, subnormals, overflow, ties)", () => {
    expect(f16Round(1 + 2 ** -11)).toBe(1);
    expect(f16Round(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(f16Round(65504)).toBe(65504);
    expect(f16Round(65519.99)).toBe(65504);
    expect(f16Round(65520)).toBe(Infinity);
    expect(f16Round(2 ** -24)).toBe(2 ** -24);
    expect(f16Round(2 ** -25)).toBe(0); // tie with 0 → even
    expect(f16Round(3 * 2 ** -26)).toBe(2 ** -24);
    expect(f16Bits(NaN) & 0x7e00).toBe(0x7e00);
    for (let i = 0; i < 200000; i++) {
      // float32 values spread over f16's range and beyond
      const x = (rand() < 0.5 ? -1 : 1) * 2 ** (rand() * 50 - 30) * (1 + rand());
      const got = f16Round(x), want = refF16(x);
      if (!Object.is(got, want)) throw new Error(`f16 of ${x} (f32 ${Math.fround(x)}): ${got} vs ${want}`);
    }
  });
});

describe("safetensors round trip", () => {
  it("every dtype on fresh random data, metadata, order, 8-byte alignment", () => {
    const n = 1000;
    const floats = Float64Array.from({ length: n }, () => (rand() - 0.5) * 2 ** (rand() * 40 - 20));
    floats[0] = NaN;
    floats[1] = -Infinity;
    floats[2] = -0;
    const ints = Int32Array.from({ length: n }, () => ((rand() * 4294967296) | 0));
    ints[0] = -2147483648;
    ints[1] = 2147483647;
    const bigs = BigInt64Array.from({ length: n }, () => BigInt.asIntN(64, (BigInt(Math.floor(rand() * 2 ** 32)) << 32n) | BigInt(Math.floor(rand() * 2 ** 32))));
    const path = tmp();
    const meta = { format: "pt", "strata.seed": "42", "ünï": "çødé ✓" };
    writeSafetensors(
      path,
      [
        { name: "z.f32", dtype: "F32", shape: [10, 100], data: floats },
        { name: "a.bf16", dtype: "BF16", shape: [1000], data: floats },
        { name: "10", dtype: "F16", shape: [2, 5, 100], data: floats },
        { name: "2", dtype: "I32", shape: [n], data: ints },
        { name: "m.i64", dtype: "I64", shape: [n], data: bigs },
        { name: "i64num", dtype: "I64", shape: [3], data: [-(2 ** 53) + 1, 0, 2 ** 53 - 1] },
        { name: "empty", dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
        { name: "scalar", dtype: "BF16", shape: [], data: [3.14159] },
      ],
      meta,
    );
    const raw = readFileSync(path);
    const hlen = Number(raw.readBigUInt64LE(0));
    expect((8 + hlen) % 8).toBe(0);
    const header = raw.toString("utf8", 8, 8 + hlen);
    expect(header.endsWith("}") || header.trimEnd().endsWith("}")).toBe(true);
    // header order is the given order (integer-like names too)
    expect([...header.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1])).toEqual(["z.f32", "a.bf16", "10", "2", "m.i64", "i64num", "empty", "scalar"]);

    const { tensors, metadata } = readSafetensorsFile(path);
    expect(metadata).toEqual(meta);
    expect([...tensors.keys()]).toEqual(["z.f32", "a.bf16", "10", "2", "m.i64", "i64num", "empty", "scalar"]);
    const t = (k: string) => tensors.get(k)!;
    expect(t("z.f32").dtype).toBe("F32");
    expect(t("z.f32").shape).toEqual([10, 100]);
    expect(t("z.f32").data).toBeInstanceOf(Float32Array);
    for (let i = 0; i < n; i++) {
      expect(Object.is(t("z.f32").data[i], Math.fround(floats[i]!))).toBe(true);
      expect(Object.is(t("a.bf16").data[i], refBf16(floats[i]!)) || (Number.isNaN(floats[i]!) && Number.isNaN(t("a.bf16").data[i] as number))).toBe(true);
      expect(Object.is(t("10").data[i], refF16(floats[i]!)) || (Number.isNaN(floats[i]!) && Number.isNaN(t("10").data[i] as number))).toBe(true);
    }
    expect(t("10").shape).toEqual([2, 5, 100]);
    expect(t("2").data).toBeInstanceOf(Int32Array);
    expect([...t("2").data]).toEqual([...ints]);
    expect(t("m.i64").data).toBeInstanceOf(BigInt64Array);
    expect([...t("m.i64").data]).toEqual([...bigs]);
    expect([...t("i64num").data]).toEqual([-(2n ** 53n) + 1n, 0n, 2n ** 53n - 1n]);
    expect(t("empty").shape).toEqual([0, 4]);
    expect(t("empty").data.length).toBe(0);
    expect(t("scalar").shape).toEqual([]);
    expect([...t("scalar").data]).toEqual([bf16Round(3.14159)]);
    expect(readSafetensors(path).size).toBe(8);
  });

  it("no metadata → empty map; no tensors → valid file", () => {
    const p = tmp();
    writeSafetensors(p, [{ name: "x", dtype: "F32", shape: [2], data: [1, 2] }]);
    expect(readFileSync(p).toString("utf8", 8)).not.toContain("__metadata__");
    expect(readSafetensorsFile(p).metadata).toEqual({});
    const q = tmp();
    writeSafetensors(q, []);
    expect(readSafetensors(q).size).toBe(0);
  });

  it("writer errors", () => {
    const p = tmp();
    expect(() => writeSafetensors(p, [{ name: "x", dtype: "F32", shape: [3], data: [1, 2] }])).toThrow(/tensor 'x': 2 values for shape \[3\]/);
    expect(() => writeSafetensors(p, [{ name: "x", dtype: "I32", shape: [1], data: [1.5] }])).toThrow(/not an int32/);
    expect(() => writeSafetensors(p, [{ name: "x", dtype: "I32", shape: [1], data: [2 ** 31] }])).toThrow(/not an int32/);
    expect(() =>
      writeSafetensors(p, [
        { name: "x", dtype: "F32", shape: [1], data: [1] },
        { name: "x", dtype: "F32", shape: [1], data: [1] },
      ]),
    ).toThrow(/duplicate tensor name 'x'/);
    expect(() => writeSafetensors(p, [{ name: "__metadata__", dtype: "F32", shape: [1], data: [1] }])).toThrow(/invalid tensor name/);
    expect(() => writeSafetensors(p, [{ name: "x", dtype: "F64" as never, shape: [1], data: [1] }])).toThrow(/unknown dtype "F64"/);
  });
});

describe("safetensors malformed files", () => {
  /** A file from a raw header object and a data section size. */
  function raw(header: unknown, dataBytes: number, opts: { hlenOverride?: bigint; truncate?: number } = {}): string {
    const h = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
    const b = Buffer.alloc(8 + h.length + dataBytes);
    b.writeBigUInt64LE(opts.hlenOverride ?? BigInt(h.length), 0);
    h.copy(b, 8);
    const p = tmp("bad");
    writeFileSync(p, opts.truncate !== undefined ? b.subarray(0, opts.truncate) : b);
    return p;
  }
  const ok = { x: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  const expectErr = (p: string, re: RegExp) => {
    let err: unknown;
    try {
      readSafetensors(p);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StrataError);
    expect((err as Error).message).toContain(p);
    expect((err as Error).message).toMatch(re);
  };

  it("gives specific errors naming the file", () => {
    expect(readSafetensors(raw(ok, 8)).get("x")!.data.length).toBe(2);
    expectErr(join(dir, "missing.safetensors"), /cannot open safetensors file/);
    expectErr(raw(ok, 8, { truncate: 5 }), /truncated safetensors file: 5 bytes, shorter than the 8-byte header length prefix/);
    expectErr(raw(ok, 8, { hlenOverride: 100_000_001n }), /header length 100000001 bytes exceeds the 100 MB limit/);
    expectErr(raw(ok, 8, { hlenOverride: 0xffffffffffffffffn }), /exceeds the 100 MB limit/);
    expectErr(raw(ok, 0, { hlenOverride: 1000n }), /truncated safetensors file: header length 1000 bytes but only \d+ bytes follow/);
    expectErr(raw(ok, 4), /tensor 'x': data_offsets \[0, 8\] extend beyond the data section \(4 bytes; file truncated\?\)/);
    expectErr(raw(ok, 12), /data section has 12 bytes but tensors cover only 8 \(trailing bytes/);
    expectErr(raw("{not json", 0), /header is not valid UTF-8 JSON/);
    expectErr(raw("[1,2]", 0), /header must be a JSON object, got array/);
    expectErr(raw({ x: 3 }, 0), /tensor 'x': header entry must be an object, got number/);
    expectErr(raw({ x: { dtype: "F64", shape: [1], data_offsets: [0, 8] } }, 8), /tensor 'x': unknown dtype "F64" \(supported: BF16, F16, F32, I32, I64\)/);
    expectErr(raw({ x: { shape: [1], data_offsets: [0, 4] } }, 4), /missing or non-string "dtype"/);
    expectErr(raw({ x: { dtype: "F32", data_offsets: [0, 4] } }, 4), /missing or non-array "shape"/);
    expectErr(raw({ x: { dtype: "F32", shape: [1], data_offsets: [0] } }, 4), /"data_offsets" must be an array \[begin, end\]/);
    expectErr(raw({ x: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4), /shape entries must be non-negative integers/);
    expectErr(raw({ x: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, 4), /out of order/);
    expectErr(raw({ x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8), /span 8 bytes but dtype F32 x shape \[3\] needs 12 bytes/);
    expectErr(
      raw({ x: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, y: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, 8),
      /tensor 'y' data_offsets \[4, 8\] overlap tensor 'x' \[0, 8\]/,
    );
    expectErr(raw({ x: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, 8), /gap in data section: bytes \[0, 4\) before tensor 'x'/);
    expectErr(raw({ __metadata__: { a: 1 }, ...ok }, 8), /"__metadata__" value for key 'a' must be a string, got number/);
    expectErr(raw({ __metadata__: [], ...ok }, 8), /"__metadata__" must be an object of strings/);
  });

  it("a truncated real file", () => {
    const p = tmp();
    writeSafetensors(p, [{ name: "w", dtype: "BF16", shape: [64], data: new Float32Array(64) }]);
    const b = readFileSync(p);
    writeFileSync(p, b.subarray(0, b.length - 3));
    expectErr(p, /tensor 'w': data_offsets \[0, 128\] extend beyond the data section \(125 bytes; file truncated\?\)/);
  });
});
