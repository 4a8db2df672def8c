import { describe, expect, it } from "vitest";
import * as R from "../../compiler/interp/ref.js";
import { call, expectClose, get, rnd, set, zeros } from "./helpers.js";

describe("norms", () => {
  for (const oneP of [false, true])
    it(`rmsnorm (oneP=${oneP})`, () => {
      const [B, T, D] = [2, 5, 24];
      const x = rnd([B, T, D], 2);
      const w = rnd([D], 0.5);
      const eps = 1e-6;
      const want = zeros([B, T, D]);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          let ms = 0;
          for (let d = 0; d < D; d++) ms += get(x, b, t, d) ** 2 / D;
          for (let d = 0; d < D; d++) set(want, (get(x, b, t, d) / Math.sqrt(ms + eps)) * (oneP ? 1 + w.data[d]! : w.data[d]!), b, t, d);
        }
      expectClose(call(R.rmsnorm, [x, w], { eps, oneP }, [B, T, D]), want, 1e-12, "rmsnorm");
      expectClose(call(R.rmsnorm, [x, w], { eps, oneP }, [B, T, D], "f32"), want, 1e-5, "rmsnorm f32");
    });

  it("rmsnorm default eps is 1e-5", () => {
    const x = rnd([1, 4], 1e-3);
    const w = rnd([4]);
    let ms = 0;
    for (const v of x.data) ms += v * v / 4;
    const got = call(R.rmsnorm, [x, w], {}, [1, 4]);
    for (let d = 0; d < 4; d++) expect(Math.abs(got.data[d]! - (x.data[d]! / Math.sqrt(ms + 1e-5)) * w.data[d]!)).toBeLessThan(1e-14);
  });

  for (const [oneP, bias] of [[false, true], [true, false], [false, false]] as const)
    it(`layernorm (oneP=${oneP}, bias=${bias})`, () => {
      const [M, D] = [7, 33];
      const x = rnd([M, D], 3);
      for (let i = 0; i < x.data.length; i++) x.data[i] = Math.fround(x.data[i]! + 2); // nonzero mean
      const w = rnd([D]);
      const b = rnd([D]);
      const want = zeros([M, D]);
      for (let m = 0; m < M; m++) {
        let mean = 0;
        for (let d = 0; d < D; d++) mean += get(x, m, d) / D;
        let v = 0;
        for (let d = 0; d < D; d++) v += (get(x, m, d) - mean) ** 2 / D;
        for (let d = 0; d < D; d++)
          set(want, ((get(x, m, d) - mean) / Math.sqrt(v + 1e-5)) * (oneP ? 1 + w.data[d]! : w.data[d]!) + (bias ? b.data[d]! : 0), m, d);
      }
      const ins = bias ? [x, w, b] : [x, w];
      expectClose(call(R.layernorm, ins, { eps: 1e-5, oneP }, [M, D]), want, 1e-12, "layernorm");
      expectClose(call(R.layernorm, ins, { eps: 1e-5, oneP }, [M, D], "f32"), want, 1e-5, "layernorm f32");
    });

  for (const groupSize of [32, 8])
    it(`gatedRmsnorm groupSize=${groupSize}`, () => {
      const [B, T, D] = [2, 3, 32];
      const x = rnd([B, T, D], 2);
      const z = rnd([B, T, D], 2);
      const w = rnd([D]);
      const eps = 1e-5;
      const want = zeros([B, T, D]);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++)
          for (let g = 0; g < D / groupSize; g++) {
            const y: number[] = [];
            for (let i = 0; i < groupSize; i++) {
              const d = g * groupSize + i;
              const zz = get(z, b, t, d);
              y.push((get(x, b, t, d) * zz) / (1 + Math.exp(-zz)));
            }
            const ms = y.reduce((s, v) => s + v * v, 0) / groupSize;
            for (let i = 0; i < groupSize; i++) {
              const d = g * groupSize + i;
              set(want, (y[i]! / Math.sqrt(ms + eps)) * w.data[d]!, b, t, d);
            }
          }
      expectClose(call(R.gatedRmsnorm, [x, z, w], { eps, groupSize }, [B, T, D]), want, 1e-12, "gatedRmsnorm");
      expectClose(call(R.gatedRmsnorm, [x, z, w], { eps, groupSize }, [B, T, D], "f32"), want, 1e-5, "gatedRmsnorm f32");
    });

  it("rejects a weight of the wrong length", () => {
    expect(() => call(R.rmsnorm, [rnd([2, 8]), rnd([7])], {}, [2, 8])).toThrow(/weight must have shape \[8\], got \[7\]/);
  });
});
