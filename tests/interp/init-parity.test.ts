import { describe, expect, it } from "vitest";
import {
  fillInit,
  fnv1a64,
  initRandomWord,
  initStreamKey,
  initTensor,
  initUniform01,
  mix64,
  parseInitSpec,
  randomParams,
} from "../../compiler/interp/interp.js";
import type { Graph } from "../../compiler/ir/graph.js";
import type { AttrValue } from "../../compiler/ir/node.js";
import { mkNode } from "../../compiler/ir/node.js";
import { alloc } from "../../compiler/interp/tensor.js";

const f32bits = (v: number) => {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, v, true);
  return b.getUint32(0, true);
};
const hex = (n: number) => "0x" + n.toString(16).padStart(8, "0");

function draw(spec: Record<string, AttrValue>, seed: number | bigint, name: string, n: number): Float32Array {
  const out = new Float32Array(n);
  initTensor(out, parseInitSpec(spec, name), seed, name);
  return out;
}
const bits = (a: ArrayLike<number>) => Array.from(a, (v) => hex(f32bits(v)));

/** Independent BigInt implementation of INIT.md §5 (per element, slow). */
function refElement(spec: Record<string, number | string>, seed: bigint, name: string, i: number): number {
  const k = initStreamKey(seed, name);
  const u = initUniform01(initRandomWord(k, 2n * BigInt(i)));
  const n = (f: string, d?: number) => (spec[f] ?? d) as number;
  switch (spec.kind) {
    case "normal": {
      const u2 = initUniform01(initRandomWord(k, 2n * BigInt(i) + 1n));
      return Math.fround(n("mean", 0) + n("std") * (Math.sqrt(-2.0 * Math.log(u)) * Math.cos(6.283185307179586 * u2)));
    }
    case "uniform":
      return Math.fround(n("low") + (n("high") - n("low")) * u);
    case "alog_uniform":
      return Math.fround(Math.log(n("low", 1) + (n("high", 16) - n("low", 1)) * u));
    case "alog_arange":
      return Math.fround(Math.log((i % n("n")) + 1));
    case "dt_bias": {
      const lmin = Math.log(n("dtMin", 0.001)), lmax = Math.log(n("dtMax", 0.1));
      let dt = Math.exp(lmin + (lmax - lmin) * u);
      if (dt < n("floor", 1e-4)) dt = n("floor", 1e-4);
      return Math.fround(dt + Math.log(-Math.expm1(-dt)));
    }
    case "kaiming_uniform": {
      const b = 1.0 / Math.sqrt(n("fanIn"));
      return Math.fround(-b + (b + b) * u);
    }
  }
  throw new Error("kind");
}

describe("param init parity with the runtime (runtime/INIT.md §6)", () => {
  it("integer part: fnv1a64, key, words", () => {
    expect(fnv1a64("")).toBe(0xcbf29ce484222325n);
    expect(fnv1a64("embed.weight")).toBe(0x9ac37bcac2dc8a00n);
    const k = initStreamKey(42n, "embed.weight");
    expect(k).toBe(0xd0841ea1aae681den);
    expect(initRandomWord(k, 0n)).toBe(0x1073b36acfe0a90en);
    expect(initRandomWord(k, 1n)).toBe(0x1a912cadb4f20870n);
    expect(initUniform01(0n)).toBe(2 ** -53);
    expect(initUniform01((1n << 64n) - 1n)).toBe(1);
    expect(mix64(0n)).toBe(0n);
  });

  it("pinned test vectors, every kind", () => {
    expect(bits(draw({ kind: "normal", std: 1 }, 42, "embed.weight", 3))).toEqual(["0x3fee5f12", "0xbfe01fba", "0xbf35d7e8"]);
    expect(bits(draw({ kind: "uniform", low: -1, high: 1 }, 7, "t", 2))).toEqual(["0x3e528e47", "0xbecf64ba"]);
    expect(bits(draw({ kind: "alog_uniform", low: 1, high: 16 }, 7, "t", 2))).toEqual(["0x4013a27a", "0x3fd95210"]);
    expect(bits(draw({ kind: "alog_uniform" }, 7, "t", 2))).toEqual(["0x4013a27a", "0x3fd95210"]); // defaults
    expect(bits(draw({ kind: "dt_bias" }, 7, "t", 2))).toEqual(["0xc083f51f", "0xc0b12617"]);
    expect(bits(draw({ kind: "dt_bias", dtMin: 0.001, dtMax: 0.1, floor: 1e-4 }, 7, "t", 2))).toEqual(["0xc083f51f", "0xc0b12617"]);
    expect(bits(draw({ kind: "kaiming_uniform", fanIn: 16 }, 7, "t", 2))).toEqual(["0x3d528e47", "0xbdcf64ba"]);
    expect([...draw({ kind: "const", value: 0.1 }, 7, "t", 3)]).toEqual([Math.fround(0.1), Math.fround(0.1), Math.fround(0.1)]);
    expect([...draw({ kind: "zeros" }, 7, "t", 2)]).toEqual([0, 0]);
    expect([...draw({ kind: "ones" }, 7, "t", 2)]).toEqual([1, 1]);
    // alog_arange (Mamba-1 S4D-real): log((i mod n) + 1), independent of seed and name
    const arange4 = ["0x00000000", "0x3f317218", "0x3f8c9f54", "0x3fb17218", "0x00000000", "0x3f317218"];
    expect(bits(draw({ kind: "alog_arange", n: 4 }, 7, "t", 6))).toEqual(arange4);
    expect(bits(draw({ kind: "alog_arange", n: 4 }, 0xffffffffffffffffn, "layers.0.mixer.A_log", 6))).toEqual(arange4);
    expect(bits(draw({ kind: "alog_arange", n: 16 }, 7, "t", 17).subarray(14))).toEqual(["0x402d50b2", "0x40317218", "0x00000000"]);
    expect(bits(draw({ kind: "alog_arange", n: 1 }, 7, "t", 3))).toEqual(["0x00000000", "0x00000000", "0x00000000"]);
    const a64 = new Float64Array(9);
    initTensor(a64, parseInitSpec({ kind: "alog_arange", n: 3 }, "A_log"), 1, "A_log");
    expect([...a64]).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2].map((k) => Math.fround(Math.log(k + 1))));
    // bigint seed is the same uint64
    expect(bits(draw({ kind: "normal", std: 1 }, 42n, "embed.weight", 1))).toEqual(["0x3fee5f12"]);
    // randomParams stores the same float32 values in f64 / f32
    const g: Graph = { name: "p", outputs: { w: mkNode("param", [], { name: "embed.weight", init: { kind: "normal", std: 1 } }, { dtype: "f32", shape: [3] }) }, meta: {} };
    expect(bits(randomParams(g, 42)["embed.weight"]!.data)).toEqual(["0x3fee5f12", "0xbfe01fba", "0xbf35d7e8"]);
    const p32 = randomParams(g, 42, "f32");
    expect(p32["embed.weight"]!.data).toBeInstanceOf(Float32Array);
    expect(bits(p32["embed.weight"]!.data)).toEqual(["0x3fee5f12", "0xbfe01fba", "0xbf35d7e8"]);
  });

  it("fast path equals the BigInt reference on many elements, names, seeds and kinds", () => {
    const specs: Record<string, number | string>[] = [
      { kind: "normal", std: 0.02, mean: 0.5 },
      { kind: "uniform", low: -3, high: 5 },
      { kind: "alog_uniform", low: 2, high: 9 },
      { kind: "alog_arange", n: 7 },
      { kind: "dt_bias", dtMin: 0.01, dtMax: 0.2, floor: 0.05 },
      { kind: "kaiming_uniform", fanIn: 37 },
    ];
    const seeds = [0n, 1n, 42n, 0xffffffffffffffffn, 0x123456789abcdef0n];
    const names = ["", "a", "layers.3.mixer.in_proj.weight", "ünï©ødé"];
    for (const spec of specs)
      for (const seed of seeds)
        for (const name of names) {
          const got = draw(spec, seed, name, 300);
          for (let i = 0; i < 300; i += 7) expect(f32bits(got[i]!), `${spec.kind} ${seed} ${name} ${i}`).toBe(f32bits(refElement(spec, seed, name, i)));
        }
  });

  it("prefix property, determinism, name and seed dependence", () => {
    const spec = { kind: "normal", std: 1 };
    const long = draw(spec, 5, "w", 1000);
    expect([...draw(spec, 5, "w", 17)]).toEqual([...long.subarray(0, 17)]);
    expect([...draw(spec, 5, "w", 1000)]).toEqual([...long]);
    expect([...draw(spec, 6, "w", 1000)]).not.toEqual([...long]);
    expect([...draw(spec, 5, "w2", 1000)]).not.toEqual([...long]);
    // a tensor's values don't depend on which other params exist or their order
    const mk = (name: string) => mkNode("param", [], { name, init: spec }, { dtype: "f32", shape: [4, 8] });
    const g1: Graph = { name: "a", outputs: { x: mk("x"), y: mk("y") }, meta: {} };
    const g2: Graph = { name: "b", outputs: { y: mk("y") }, meta: {} };
    expect([...randomParams(g1, 3).y!.data]).toEqual([...randomParams(g2, 3).y!.data]);
    // statistics
    let s = 0, s2 = 0;
    for (const v of long) (s += v), (s2 += v * v);
    expect(Math.abs(s / 1000)).toBeLessThan(0.15);
    expect(Math.abs(Math.sqrt(s2 / 1000) - 1)).toBeLessThan(0.1);
  });

  it("range checks of every kind", () => {
    const u = draw({ kind: "uniform", low: 2, high: 3 }, 1, "u", 5000);
    expect(u.every((v) => v >= 2 && v <= 3)).toBe(true);
    const k = draw({ kind: "kaiming_uniform", fanIn: 64 }, 1, "k", 5000);
    expect(k.every((v) => Math.abs(v) <= Math.fround(1 / 8))).toBe(true);
    const a = draw({ kind: "alog_uniform" }, 1, "a", 5000);
    expect(a.every((v) => v >= 0 && v <= Math.fround(Math.log(16)))).toBe(true);
    const d = draw({ kind: "dt_bias", dtMin: 0.001, dtMax: 0.1, floor: 0.01 }, 1, "d", 5000);
    const sp = (v: number) => Math.log1p(Math.exp(v));
    expect(d.every((v) => sp(v) >= 0.01 * (1 - 1e-5) && sp(v) <= 0.1 * (1 + 1e-5))).toBe(true);
    expect(d.some((v) => Math.abs(sp(v) - 0.01) < 1e-6)).toBe(true); // floor hit
  });

  it("rejects what the runtime's manifest loader rejects", () => {
    const bad: [Record<string, AttrValue>, RegExp][] = [
      [{ kind: "weird" }, /unknown init kind "weird" \(known: .*alog_arange/],
      [{ kind: "normal", std: 1, sd: 2 }, /unknown init field "sd" for kind "normal"/],
      [{ kind: "zeros", value: 1 }, /unknown init field "value" for kind "zeros"/],
      [{ kind: "normal" }, /init\.std must be a finite number/],
      [{ kind: "normal", std: -1 }, /std must be >= 0/],
      [{ kind: "uniform", low: 1, high: 0 }, /low <= high/],
      [{ kind: "kaiming_uniform", fanIn: 0 }, /fanIn must be > 0/],
      [{ kind: "alog_uniform", low: 0 }, /0 < low <= high/],
      [{ kind: "dt_bias", dtMin: 0.2, dtMax: 0.1 }, /0 < dtMin <= dtMax/],
      [{ kind: "dt_bias", floor: -1 }, /floor must be >= 0/],
      [{ kind: "alog_arange" }, /init\.n must be a finite number/],
      [{ kind: "alog_arange", n: 0 }, /alog_arange needs n to be a positive integer/],
      [{ kind: "alog_arange", n: -4 }, /alog_arange needs n to be a positive integer/],
      [{ kind: "alog_arange", n: 2.5 }, /alog_arange needs n to be a positive integer/],
      [{ kind: "alog_arange", n: 2 ** 53 }, /alog_arange needs n to be a positive integer/],
      [{ kind: "alog_arange", n: "4" }, /init\.n must be a finite number/],
      [{ kind: "alog_arange", n: 4, low: 1 }, /unknown init field "low" for kind "alog_arange" \(allowed: n\)/],
    ];
    for (const [spec, re] of bad) expect(() => parseInitSpec(spec, "p"), JSON.stringify(spec)).toThrow(re);
    expect(() => fillInit(alloc([2], "f64"), undefined, 1, "p")).toThrow(/no init spec object/);
    const g: Graph = { name: "p", outputs: { w: mkNode("param", [], { name: "w", init: { kind: "ones" } }, { dtype: "f32", shape: [2] }) }, meta: {} };
    expect(() => randomParams(g, -1)).toThrow(/seed must be a non-negative integer/);
    expect(() => randomParams(g, 1.5)).toThrow(/seed must be a non-negative integer/);
  });

  it("is fast: 1M-element normal tensor well under a second", () => {
    const out = new Float32Array(1 << 20);
    const spec = parseInitSpec({ kind: "normal", std: 0.02 }, "big");
    initTensor(out, spec, 1, "warm"); // JIT warm-up
    const t0 = performance.now();
    initTensor(out, spec, 1, "big");
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(1000);
  });
});
