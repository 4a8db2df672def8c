/**
 * Parameter counts of the paper's 8B models (Waleffe et al. 2024, Table 1), pinned to a closed form
 * written here from the layer sizes (Megatron-LM conventions: no linear biases, conv bias,
 * per-head dt_bias / A_log / D for Mamba-2, gated-norm weight, untied 256K embeddings).
 */
import { describe, expect, it } from "vitest";
import type { Graph } from "../../compiler/ir/graph.js";
import { checkParams, paramCount } from "./helpers.js";
import type { ModelDef } from "../../compiler/dsl/index.js";
import transformer8b from "../../examples/transformer-8b.js";
import mamba8b from "../../examples/mamba-8b.js";
import mamba28b from "../../examples/mamba2-8b.js";
import hybrid8b from "../../examples/mamba2-hybrid-8b.js";
import hybrid16k from "../../examples/mamba2-hybrid-8b-16k.js";
import hybrid32k from "../../examples/mamba2-hybrid-8b-32k.js";
import hybrid128k from "../../examples/mamba2-hybrid-8b-128k.js";

const D = 4096;
const V = 256000;

const mlpParams = (d: number, hidden: number) => d * hidden + hidden * d;
const attnParams = (d: number, h: number, hk: number, hd: number) => (h + 2 * hk) * hd * d + d * h * hd;
function mamba2Params(d: number, o: { expand: number; P: number; G: number; N: number; K: number }): number {
  const di = o.expand * d;
  const H = di / o.P;
  const conv = di + 2 * o.G * o.N;
  return (2 * di + 2 * o.G * o.N + H) * d /* in_proj */ + conv * o.K + conv /* conv1d w, b */ + 3 * H /* dt_bias, A_log, D */ + di /* norm */ + d * di; /* out_proj */
}
function mambaParams(d: number, o: { expand: number; N: number; R: number; K: number }): number {
  const di = o.expand * d;
  return 2 * di * d /* in_proj */ + di * o.K + di /* conv */ + (o.R + 2 * o.N) * di /* x_proj */ + di * o.R + di /* dt_proj w, b */ + di * o.N /* A_log */ + di /* D */ + d * di; /* out_proj */
}

/** Build each 8B graph once: count its params, check their names and inits, and time the build. */
const buildMs: Record<string, number> = {};
function total(m: ModelDef): number {
  const t0 = performance.now();
  const g: Graph = m.toGraph();
  buildMs[m.config.name] = performance.now() - t0;
  checkParams(m, g);
  return paramCount(g);
}

const billions = (n: number) => (n / 1e9).toFixed(2);

describe("8B parameter counts", () => {
  it("Transformer: 32 × (MHA + relu² MLP), LayerNorm-1p (weight + bias) → 8.54B", () => {
    const norm = 2 * D;
    const expected = 2 * V * D + 32 * (attnParams(D, 32, 32, 128) + norm + mlpParams(D, 16384) + norm) + norm;
    expect(expected).toBe(8_540_135_424);
    expect(total(transformer8b)).toBe(expected);
    expect(billions(expected)).toBe("8.54");
  });

  it("Mamba: 56 × Mamba-1 (N 128, dt rank 256), RMSNorm → 8.15B", () => {
    const expected = 2 * V * D + 56 * (mambaParams(D, { expand: 2, N: 128, R: 256, K: 4 }) + D) + D;
    expect(expected).toBe(8_148_783_104);
    expect(total(mamba8b)).toBe(expected);
    expect(billions(expected)).toBe("8.15");
  });

  it("Mamba-2: 56 × Mamba-2 (P 64, G 8, N 128), RMSNorm → 8.24B", () => {
    const expected = 2 * V * D + 56 * (mamba2Params(D, { expand: 2, P: 64, G: 8, N: 128, K: 4 }) + D) + D;
    expect(expected).toBe(8_236_999_680);
    expect(total(mamba28b)).toBe(expected);
    expect(billions(expected)).toBe("8.24");
  });

  it("Mamba-2-Hybrid: 24 Mamba-2 + 4 GQA attention + 28 MLP → 8.6545B (paper: 8.66B)", () => {
    expect(hybrid8b.pattern).toBe("M-M-M--M-M*-M-M-M-M--M*-M-M-M-M-M*--M-M-M-M-M*-M--M-M-M-");
    const expected =
      2 * V * D +
      24 * (mamba2Params(D, { expand: 2, P: 64, G: 8, N: 128, K: 4 }) + D) +
      4 * (attnParams(D, 32, 8, 128) + D) +
      28 * (mlpParams(D, 16384) + D) +
      D;
    expect(expected).toBe(8_654_517_248);
    expect(total(hybrid8b)).toBe(expected);
    // With Megatron's own conventions (--disable-bias-linear, conv bias, per-head D) the count is
    // 8.6545B: 0.48M short of the 8.655B that rounds to the paper's "8.66B". It rounds to 8.66
    // only via 3-then-2 decimal rounding; no other model of the paper changes under that rule.
    expect((expected / 1e9).toFixed(3)).toBe("8.655");
    expect(Math.abs(expected - 8.66e9)).toBeLessThan(0.01e9);
  });

  it("long-context hybrids share the base layers and raise seqLen = maxContext", () => {
    for (const [m, ctx] of [[hybrid16k, 16384], [hybrid32k, 32768], [hybrid128k, 131072]] as const) {
      expect(m.config.seqLen).toBe(ctx);
      expect(m.config.maxContext).toBe(ctx);
      expect(m.pattern).toBe(hybrid8b.pattern);
      expect(m.layers).toEqual(hybrid8b.layers);
      expect(m.config.name).toBe(`mamba2-hybrid-8b-${ctx / 1024}k`);
    }
  });

  it("builds each 8B graph quickly", () => {
    console.log(`8B toGraph times (ms): ${JSON.stringify(Object.fromEntries(Object.entries(buildMs).map(([k, v]) => [k, Math.round(v)])))}`);
    expect(Object.keys(buildMs)).toHaveLength(4);
    // ~0.2–0.5 s on an idle machine; most of it is captureUserLoc's stack capture per node.
    for (const ms of Object.values(buildMs)) expect(ms).toBeLessThan(5000);
  });
});
