/**
 * Exact cast rewrites (passes/fold-casts.ts; on by default, `--no-fold-casts`): round trips through a wider float
 * folded, exact widenings copied per fusing reader. Every value is unchanged: the training
 * graph's loss and gradients are the same, bit for bit, in the interpreter.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ModelDef } from "../../compiler/dsl/model.js";
import { evaluate, randomParams, Rng } from "../../compiler/interp/interp.js";
import { fromArray } from "../../compiler/interp/tensor.js";
import { topo } from "../../compiler/ir/graph.js";
import { getOp } from "../../compiler/ir/registry.js";
import { autodiff, withTrainingLoss } from "../../compiler/passes/autodiff.js";
import { exactWidening, foldCasts } from "../../compiler/passes/fold-casts.js";
import { compileProgram } from "../../compiler/pipeline.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const load = async (f: string) => ((await import(path.join(REPO, "examples", f))) as { default: ModelDef }).default;

describe("fold-casts", () => {
  it("exact widenings: narrow floats to wider ones only", () => {
    expect(exactWidening("bf16", "f32")).toBe(true);
    expect(exactWidening("f16", "f64")).toBe(true);
    expect(exactWidening("f32", "f64")).toBe(true);
    expect(exactWidening("f32", "bf16")).toBe(false);
    expect(exactWidening("bf16", "f16")).toBe(false); // neither holds the other's values
    expect(exactWidening("f32", "f32")).toBe(false);
    expect(exactWidening("i32", "f64")).toBe(false);
  });

  for (const file of ["tiny-mamba2.ts", "tiny-hybrid.ts"]) {
    it(`${file}: the training graph loses its cast round trips, and its loss and gradients are bit-identical`, async () => {
      const def = await load(file);
      const fwd = def.toGraph();
      const tg = autodiff(withTrainingLoss(fwd, { weighted: true }), { loss: "loss" });
      const fg = foldCasts(tg);
      const stats = fg.meta!.foldCasts as { roundTrips: number; copies: number };
      expect(stats.roundTrips).toBeGreaterThan(0);
      expect(stats.copies).toBeGreaterThan(0);
      const nodes = topo(Object.values(fg.outputs));
      // no round trip left, and every widening with several readers is read by kernels that cannot fuse it
      for (const n of nodes) {
        if (n.op !== "cast") continue;
        const x = n.inputs[0]!;
        expect(x.dtype === n.dtype, `a no-op cast ${n.key}`).toBe(false);
        if (x.op === "cast") expect(x.inputs[0]!.dtype === n.dtype && exactWidening(n.dtype, x.dtype), `a round trip ${n.key}`).toBe(false);
      }
      const readers = new Map<string, string[]>();
      for (const n of nodes) for (const x of n.inputs) readers.set(x.key, [...(readers.get(x.key) ?? []), n.op]);
      for (const n of nodes)
        if (n.op === "cast" && exactWidening(n.inputs[0]!.dtype, n.dtype) && (readers.get(n.key)?.length ?? 0) > 1)
          for (const op of readers.get(n.key)!) expect(getOp(op).kind === "elementwise" || op === "sumTo" || op === "reduceMean", `${n.key} read by ${op}`).toBe(false);

      const B = 2, T = 7, V = def.config.vocab;
      const rng = new Rng("fold-casts-test");
      const ids = (k: number) => Int32Array.from({ length: k }, () => Math.floor(rng.uniform() * V));
      const inputs = {
        tokens: fromArray([B, T], ids(B * T)),
        targets: fromArray([B, T], ids(B * T)),
        weights: fromArray([B, T], Float64Array.from({ length: B * T }, () => 0.5 + rng.uniform())),
      };
      const params = randomParams(fwd, 11, "f64");
      for (const precision of ["f64", "f32"] as const) {
        const a = evaluate(tg, { bindings: { B, T }, inputs, params, precision });
        const b = evaluate(fg, { bindings: { B, T }, inputs, params, precision });
        expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
        for (const k of Object.keys(a)) expect(Array.from(b[k]!.data), `${k} (${precision})`).toEqual(Array.from(a[k]!.data));
      }
    });
  }

  it("fold-casts: on by default, fewer train launches; --no-fold-casts turns it off", async () => {
    const def = await load("tiny-mamba2.ts");
    const opts = { maxBatch: 2, maxSeq: 64, maxContext: 64, train: true } as const;
    const plain = compileProgram(def, { ...opts, foldCasts: false }).schedules.find((s) => s.name === "train")!;
    const folded = compileProgram(def, opts).schedules.find((s) => s.name === "train")!;
    expect(plain.graph.meta?.foldCasts).toBeUndefined();
    expect(folded.graph.meta?.foldCasts).toBeDefined();
    expect(folded.launches.length).toBeLessThan(plain.launches.length);
  });
});
