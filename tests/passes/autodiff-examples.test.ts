/**
 * Autodiff on every tiny example (examples/tiny-*.ts): loss = mean crossEntropy(logits, random
 * targets) at B = 1, T = 5, in float64. Parameters are the model's init plus N(0, 0.1²) noise: the
 * init's near-uniform logits make many gradients ~1e-9, below what finite differences in float64
 * resolve to GRAD_RTOL; the noise moves the check to a point where they are well above it. Compared: one
 * random entry of each of a random subset of weights, and one random direction through all weights
 * at once (every entry of every gradient contributes to it).
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ModelDef } from "../../compiler/dsl/index.js";
import { autodiff } from "../../compiler/passes/autodiff.js";
import { evaluate, hash32, randomParams, Rng } from "../../compiler/interp/interp.js";
import { alloc, type Tensor } from "../../compiler/interp/tensor.js";
import * as op from "../../compiler/dsl/ops.js";
import { msg, SEED } from "../interp/helpers.js";
import { checkGrad, fdDirectional, GRAD_FLOOR, GRAD_RTOL, unitNorm } from "./autodiff-helpers.js";

const EXAMPLES = path.resolve(__dirname, "../../examples");
const TINY = readdirSync(EXAMPLES).filter((f) => /^tiny-.*\.ts$/.test(f)).sort();
const B = 1, T = 5;
/** Weights checked per example (a fresh random subset each run). */
const WEIGHTS_PER_EXAMPLE = 6;

describe(`autodiff of the tiny examples vs finite differences (seed ${SEED})`, () => {
  it("finds the tiny examples", () => expect(TINY.length).toBeGreaterThanOrEqual(5));

  for (const file of TINY)
    it(file, async () => {
      const def = (await import(path.join(EXAMPLES, file))).default as ModelDef;
      const fwd = def.toGraph();
      const targets = op.input("targets", "i32", ["B", "T"]);
      const loss = op.reduceMean(op.crossEntropy(fwd.outputs.logits!, targets));
      const graph = { ...fwd, outputs: { loss } };
      const g = autodiff(graph, { loss: "loss" });

      const seed = hash32(`${SEED}:${file}`); // per example, so `-t name` replays it
      const rng = new Rng(seed);
      const V = def.config.vocab;
      const ids = (): Tensor => {
        const t = alloc([B, T], "f64");
        for (let i = 0; i < t.data.length; i++) t.data[i] = Math.floor(rng.uniform() * V);
        return t;
      };
      const params = randomParams(graph, seed);
      for (const p of Object.values(params)) for (let i = 0; i < p.data.length; i++) p.data[i]! += 0.1 * rng.normal();
      const opts = { bindings: { B, T }, inputs: { tokens: ids(), targets: ids() }, params };
      const grads = evaluate(g, opts);
      const lossAt = () => evaluate(graph, opts).loss!.data[0]!;

      const names = Object.keys(params);
      expect(Object.keys(grads).filter((k) => k.startsWith("grad.")).sort()).toEqual(names.map((n) => `grad.${n}`).sort());
      // a random subset of weights: one random entry each
      const picked = [...names].sort(() => rng.uniform() - 0.5).slice(0, WEIGHTS_PER_EXAMPLE);
      for (const name of picked) {
        const t = params[name]!;
        checkGrad(`${file} ${name}`, lossAt, t, grads[`grad.${name}`]!, rng, { entries: [Math.floor(rng.uniform() * t.data.length)] });
      }
      // one random direction through every weight at once
      const dirs = names.map((n) => Float64Array.from(params[n]!.data, () => rng.normal()));
      unitNorm(dirs);
      let ad = 0, scale = 0;
      names.forEach((n, k) => {
        const gd = grads[`grad.${n}`]!.data;
        for (let i = 0; i < gd.length; i++) {
          ad += gd[i]! * dirs[k]![i]!;
          scale += Math.abs(gd[i]! * dirs[k]![i]!);
        }
      });
      const all = { shape: [1], data: new Float64Array(1) };
      const fd = fdDirectional(() => {
        const s = all.data[0]!;
        const saved = names.map((n) => Float64Array.from(params[n]!.data));
        names.forEach((n, k) => {
          const d = params[n]!.data;
          for (let i = 0; i < d.length; i++) d[i]! += s * dirs[k]![i]!;
        });
        const v = lossAt();
        names.forEach((n, k) => params[n]!.data.set(saved[k]!));
        return v;
      }, all, 0);
      const err = Math.abs(ad - fd) / Math.max(Math.abs(fd), GRAD_FLOOR * scale);
      expect(err, msg(`${file}: all weights along one random direction: autodiff ${ad} vs finite difference ${fd}`)).toBeLessThan(GRAD_RTOL);
    });
});
