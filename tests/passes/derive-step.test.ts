/**
 * derive-step: prefill T tokens, then decode token by token through the step graph with explicit
 * state, must equal evaluating the full sequence — for every tiny example, in float64.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { deriveStep } from "../../compiler/passes/derive-step.js";
import { evaluate, randomParams } from "../../compiler/interp/interp.js";
import { fromArray, type Tensor } from "../../compiler/interp/tensor.js";
import { graphInputs } from "../../compiler/ir/graph.js";
import type { ModelDef } from "../../compiler/dsl/model.js";

const EXAMPLES = path.resolve(__dirname, "../../examples");
const tiny = readdirSync(EXAMPLES).filter((f) => f.includes("tiny") && f.endsWith(".ts"));

function relErr(a: Tensor, b: Tensor): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.data.length; i++) {
    num += (a.data[i]! - b.data[i]!) ** 2;
    den += b.data[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

/** logits[:, t, :] of a [B, T, V] tensor as [B, 1, V]. */
function column(x: Tensor, t: number): Tensor {
  const [B, T, V] = x.shape as [number, number, number];
  const out = new Float64Array(B * V);
  for (let b = 0; b < B; b++) out.set(x.data.subarray((b * T + t) * V, (b * T + t + 1) * V), b * V);
  return fromArray([B, 1, V], out);
}

function sliceTokens(tokens: number[][], from: number, to: number): Tensor {
  return fromArray([tokens.length, to - from], tokens.flatMap((r) => r.slice(from, to)));
}

describe("derive-step", () => {
  it("finds the tiny examples", () => {
    expect(tiny.length).toBeGreaterThanOrEqual(5);
  });

  for (const file of tiny) {
    it(`${file}: prefill + token-by-token decode equals the full sequence (f64)`, async () => {
      const def = ((await import(path.join(EXAMPLES, file))) as { default: ModelDef }).default;
      const g = def.toGraph();
      const { prefill, step, states } = deriveStep(g);
      expect(states.length).toBeGreaterThan(0);
      const seed = Date.now() % 1_000_000;
      const params = randomParams(g, seed);
      const B = 2;
      const T0 = 11; // not a multiple of any chunk size the tiny models use
      const K = 4;
      let s = seed;
      const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
      const tokens = Array.from({ length: B }, () => Array.from({ length: T0 + K }, () => Math.floor(rand() * def.config.vocab)));

      const full = evaluate(g, { bindings: { B, T: T0 + K }, inputs: { tokens: sliceTokens(tokens, 0, T0 + K) }, params }).logits!;
      const pre = evaluate(prefill, { bindings: { B, T: T0 }, inputs: { tokens: sliceTokens(tokens, 0, T0) }, params });

      // the prefill logits are the first T0 positions of the full run
      for (let t = 0; t < T0; t += 5) expect(relErr(column(pre.logits!, t), column(full, t)), `seed ${seed} prefill t=${t}`).toBeLessThan(1e-10);

      let state: Record<string, Tensor> = {};
      for (const st of states) state[`state.${st.name}`] = pre[st.name]!;
      for (let t = T0; t < T0 + K; t++) {
        const inputs: Record<string, Tensor> = { ...state, tokens: sliceTokens(tokens, t, t + 1), positions: fromArray([1], [t]) };
        const names = new Set(graphInputs(step).map((n) => n.attrs.name as string));
        for (const k of Object.keys(inputs)) if (!names.has(k)) delete inputs[k];
        const out = evaluate(step, { bindings: { B, P: t }, inputs, params });
        const err = relErr(out.logits!, column(full, t));
        expect(err, `seed ${seed} ${file} step t=${t}`).toBeLessThan(1e-10);
        state = {};
        for (const st of states) state[`state.${st.name}`] = out[st.name]!;
      }
    });
  }

  it("names states after the layer scope, with KV caches growing by the step length", async () => {
    const def = ((await import(path.join(EXAMPLES, "tiny-hybrid.ts"))) as { default: ModelDef }).default;
    const { states, step } = deriveStep(def.toGraph());
    const kinds = states.map((s) => `${s.name}:${s.kind}`);
    expect(kinds.some((k) => /^layers\.\d+\.mixer\.ssm:ssm$/.test(k))).toBe(true);
    expect(kinds.some((k) => /^layers\.\d+\.mixer\.conv:conv$/.test(k))).toBe(true);
    expect(kinds.some((k) => /^layers\.\d+\.mixer\.k:k$/.test(k))).toBe(true);
    const kOut = Object.entries(step.outputs).find(([k]) => k.endsWith(".k"))![1];
    expect(kOut.shape[1]).toBe("P+1");
    expect(step.outputs.logits!.shape).toEqual(["B", 1, def.config.vocab]);
  });

  it("derives a multi-token continuation graph (chunked prefill) when asked", async () => {
    const def = ((await import(path.join(EXAMPLES, "tiny-transformer.ts"))) as { default: ModelDef }).default;
    const { step } = deriveStep(def.toGraph(), { tokens: "T" });
    const kOut = Object.entries(step.outputs).find(([k]) => k.endsWith(".k"))![1];
    expect(kOut.shape[1]).toBe("P+T");
  });
});
