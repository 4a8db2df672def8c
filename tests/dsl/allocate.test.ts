import { describe, expect, it } from "vitest";
import { allocateLayers, mamba2, attention, mlp, stack } from "../../compiler/dsl/index.js";
import { StrataError } from "../../compiler/ir/errors.js";

/** Python's round() on non-negative numbers, written independently of the compiler's. */
function pyRound(x: number): number {
  const lo = Math.floor(x);
  const frac = x - lo;
  if (frac === 0.5) return lo % 2 === 0 ? lo : lo + 1;
  return Math.round(x);
}

/** Megatron-LM's hybrid allocation, re-implemented from its description. */
function megatronAllocate(n: number, rAtt: number, rMlp: number): string {
  const layers = Array<string>(n).fill("M");
  const a = pyRound(n * rAtt);
  let mc = n - a;
  let s = mc / (a + 1);
  let x = s;
  if (a > 0)
    layers.forEach((_, i) => {
      if (x < 0.5) {
        layers[i] = "*";
        x += s;
      } else x -= 1;
    });
  const k = pyRound(n * rMlp);
  if (k > 0) {
    mc -= k;
    s = mc / k;
    x = s;
    layers.forEach((l, i) => {
      if (l !== "M") return;
      if (x < 0.5) {
        layers[i] = "-";
        x += s;
      } else x -= 1;
    });
  }
  return layers.join("");
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const count = (s: string, c: string) => [...s].filter((x) => x === c).length;

describe("allocateLayers (Megatron-LM hybrid allocation)", () => {
  it("reproduces the paper's 8B hybrid pattern", () => {
    const p = allocateLayers(56, 0.08, 0.5);
    expect(p).toBe("M-M-M--M-M*-M-M-M-M--M*-M-M-M-M-M*--M-M-M-M-M*-M--M-M-M-");
    expect([count(p, "M"), count(p, "*"), count(p, "-")]).toEqual([24, 4, 28]);
  });

  it.each([
    [24, 0.1, 0.5],
    [48, 0.08, 0.5],
    [10, 0, 0],
    [10, 1, 0],
    [10, 0, 1],
    [7, 0.5, 0.5],
    [1, 0.5, 0],
    [64, 0.25, 0.25],
  ])("N=%i att=%f mlp=%f matches the reference", (n, a, m) => {
    expect(allocateLayers(n, a, m)).toBe(megatronAllocate(n, a, m));
  });

  it("matches the reference over many random (N, ratios)", () => {
    const r = rng(1234);
    for (let trial = 0; trial < 1000; trial++) {
      const n = 1 + Math.floor(r() * 128);
      const a = Math.round(r() * 100) / 200; // [0, 0.5] on a 0.005 grid: hits .5 ties often
      const m = Math.round(r() * (1 - a) * 100) / 100;
      const got = allocateLayers(n, a, m);
      expect(got, `N=${n} att=${a} mlp=${m}`).toBe(megatronAllocate(n, a, m));
      expect(got).toHaveLength(n);
    }
  });

  it("rounds the layer counts half to even, like Python", () => {
    expect(count(allocateLayers(50, 0.01, 0), "*")).toBe(0); // round(0.5) = 0
    expect(count(allocateLayers(30, 0.05, 0), "*")).toBe(2); // round(1.5) = 2
    expect(count(allocateLayers(10, 0.25, 0), "*")).toBe(2); // round(2.5) = 2
    expect(count(allocateLayers(14, 0, 0.25), "-")).toBe(4); // round(3.5) = 4
    expect(allocateLayers(50, 0.01, 0)).toBe(megatronAllocate(50, 0.01, 0));
    expect(allocateLayers(30, 0.05, 0)).toBe(megatronAllocate(30, 0.05, 0));
  });

  it("rejects bad ratios and layer counts", () => {
    expect(() => allocateLayers(10, -0.1, 0)).toThrow(/ratio 'attention' = -0.1 is outside \[0, 1\]/);
    expect(() => allocateLayers(10, 0, 1.2)).toThrow(/ratio 'mlp' = 1.2 is outside \[0, 1\]/);
    expect(() => allocateLayers(10, 0.6, 0.5)).toThrow(/exceed 1/);
    expect(() => allocateLayers(0, 0.1, 0.1)).toThrow(StrataError);
    expect(() => allocateLayers(2.5, 0.1, 0.1)).toThrow(/positive integer/);
  });
});

describe("stack()", () => {
  const M = mamba2();
  it("names an unknown pattern symbol, its position and the valid symbols", () => {
    let err: unknown;
    try {
      stack({ pattern: "MM*X", M, "*": attention({ heads: 8 }) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StrataError);
    const msg = (err as StrataError).message;
    expect(msg).toContain("unknown symbol 'X' at layer 3");
    expect(msg).toContain("'M'");
    expect(msg).toContain("'*'");
    expect((err as StrataError).loc?.file).toMatch(/tests\/dsl\/allocate\.test\.ts$/);
  });

  it("rejects a pattern whose length differs from layers", () => {
    expect(() => stack({ pattern: "MM-", layers: 4, M, "-": mlp({ hidden: 64 }) })).toThrow(/pattern has 3 layers but layers: 4/);
  });

  it("resolves ratios through allocateLayers", () => {
    const s = stack({ layers: 56, ratios: { attention: 0.08, mlp: 0.5 }, M, "*": attention({ heads: 8 }), "-": mlp({ hidden: 64 }) });
    expect(s.pattern).toBe(allocateLayers(56, 0.08, 0.5));
    expect(() => stack({ layers: 10, ratios: { attention: 1.2 }, M, "*": attention({ heads: 8 }) })).toThrow(/outside \[0, 1\]/);
  });
});
