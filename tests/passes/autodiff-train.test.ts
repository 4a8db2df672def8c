/**
 * The pieces of training that exist today, end to end in the interpreter: a copy probe from
 * `strata data`, batches with the loss-mask convention (compiler/data/batches.ts), the masked
 * training loss, autodiff, and plain SGD on a micro hybrid (Mamba-2, attention, MLP). The held-out
 * masked loss must fall (a wrong sign or a lost gradient path shows here; the mask convention itself
 * is checked in tests/data).
 */
import { describe, expect, it } from "vitest";
import { attention, mamba2, mlp, model, stack } from "../../compiler/dsl/index.js";
import { autodiff, withTrainingLoss } from "../../compiler/passes/autodiff.js";
import { evaluate, randomParams } from "../../compiler/interp/interp.js";
import type { Tensor } from "../../compiler/interp/tensor.js";
import { generateProbe, makeBatch, type Batch } from "../../compiler/data/index.js";
import { msg, SEED } from "../interp/helpers.js";

const asInputs = (b: Batch): Record<string, Tensor> => ({
  tokens: { shape: [b.B, b.T], data: Float64Array.from(b.tokens) },
  targets: { shape: [b.B, b.T], data: Float64Array.from(b.targets) },
  weights: { shape: [b.B, b.T], data: Float64Array.from(b.weights) },
});

describe(`training smoke test (seed ${SEED})`, () => {
  it("SGD on the copy probe lowers the held-out masked loss of a micro hybrid", () => {
    const m = model({
      name: "micro",
      vocab: 16,
      dModel: 16,
      seqLen: 16,
      dtype: "f32",
      layers: stack({ pattern: "M*-", M: mamba2({ dState: 4, headDim: 8, expand: 2, chunk: 4 }), "*": attention({ heads: 2, headDim: 8 }), "-": mlp({ hidden: 32 }) }),
    });
    const fwd = withTrainingLoss(m.toGraph(), { weighted: true });
    expect(Object.keys(fwd.outputs)).toEqual(["loss"]);
    const g = autodiff(fwd, { loss: "loss" });
    const probe = generateProbe({ kind: "copy", train: 256, eval: 32, seed: SEED % 100_000, vocab: 16, length: 4 });
    const params = randomParams(fwd, SEED % 100_000);
    const heldOut = () => {
      const b = makeBatch(probe.eval, 0, 32);
      return evaluate(fwd, { bindings: { B: 32, T: b.T }, inputs: asInputs(b), params }).loss!.data[0]!;
    };
    const before = heldOut();
    // 50 steps: with 15, about 3 in 10 random seeds did not lower the held-out loss by 0.02 (the
    // test was flaky); over 20 seeds, 50 steps lowered it by at least 0.04
    for (let k = 0; k < 50; k++) {
      const b = makeBatch(probe.train, k, 16);
      const r = evaluate(g, { bindings: { B: 16, T: b.T }, inputs: asInputs(b), params });
      for (const [n, t] of Object.entries(params)) {
        const gr = r[`grad.${n}`]!.data;
        for (let i = 0; i < t.data.length; i++) t.data[i]! -= 0.5 * gr[i]!;
      }
    }
    const after = heldOut();
    expect(Number.isFinite(after)).toBe(true);
    expect(after, msg(`held-out masked loss ${before} → ${after}`)).toBeLessThan(before - 0.02);
  });
});
