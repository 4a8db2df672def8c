/**
 * Activation recomputation (passes/recompute.ts): the backward reads recomputed copies of the
 * chosen layers' values — the same loss and gradients, bit for bit (the same ops on the same
 * inputs), and a smaller train arena.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ModelDef } from "../../compiler/dsl/model.js";
import { evaluate, randomParams, Rng } from "../../compiler/interp/interp.js";
import { fromArray } from "../../compiler/interp/tensor.js";
import { topo } from "../../compiler/ir/graph.js";
import { autodiff, withTrainingLoss } from "../../compiler/passes/autodiff.js";
import { recompute } from "../../compiler/passes/recompute.js";
import { compileProgram } from "../../compiler/pipeline.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const load = async (f: string) => ((await import(path.join(REPO, "examples", f))) as { default: ModelDef }).default;

describe("recompute", () => {
  it("tiny-hybrid: recomputing every layer gives the same loss and gradients, bit for bit", async () => {
    const def = await load("tiny-hybrid.ts");
    const fwd = def.toGraph();
    const tg = autodiff(withTrainingLoss(fwd, { weighted: true }), { loss: "loss" });
    const rg = recompute(tg, { forward: fwd, layerKinds: def.layers.map((l) => l.kind), kinds: "all" });
    const copies = topo(Object.values(rg.outputs)).filter((n) => n.attrs.recompute === 1);
    expect(copies.length).toBeGreaterThan(10);
    // every copy is computed inside a block, and the forward graph's nodes are untouched
    for (const c of copies) expect(c.scope).toMatch(/^layers\.\d+\.(norm|mixer)/);
    const B = 1, T = 9, V = def.config.vocab;
    const rng = new Rng("recompute-test");
    const ids = (n: number) => Int32Array.from({ length: n }, () => Math.floor(rng.uniform() * V));
    const inputs = {
      tokens: fromArray([B, T], ids(B * T)),
      targets: fromArray([B, T], ids(B * T)),
      weights: fromArray([B, T], Float64Array.from({ length: B * T }, () => 0.5 + rng.uniform())),
    };
    const params = randomParams(fwd, 5, "f64");
    const a = evaluate(tg, { bindings: { B, T }, inputs, params, precision: "f64" });
    const b = evaluate(rg, { bindings: { B, T }, inputs, params, precision: "f64" });
    expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
    for (const k of Object.keys(a)) expect(Array.from(b[k]!.data), k).toEqual(Array.from(a[k]!.data));
  });

  it("shrinks the train arena (with the memory-aware group order, recomputed copies run right before their readers)", async () => {
    const def = await load("tiny-transformer.ts");
    const arena = (recomputeKinds: readonly string[] | "all") =>
      compileProgram(def, { maxBatch: 4, maxSeq: 256, train: true, recompute: recomputeKinds }).schedules.find((s) => s.name === "train")!.memory.peakBytes;
    const none = arena([]);
    const mlp = arena(["mlp"]);
    const all = arena("all");
    expect(mlp).toBeLessThan(none);
    expect(all).toBeLessThan(none);
  });

  it("names an unknown layer kind and refuses recompute without the train entry", async () => {
    const def = await load("tiny-transformer.ts");
    expect(() => compileProgram(def, { maxBatch: 1, maxSeq: 16, train: true, recompute: ["mamba2"] })).toThrow(/no 'mamba2' layer.*|its layer kinds/);
    expect(() => compileProgram(def, { maxBatch: 1, maxSeq: 16, recompute: ["mlp"] })).toThrow(/--train/);
  });
});
