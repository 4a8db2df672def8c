import { describe, expect, it } from "vitest";
import * as R from "../../compiler/interp/ref.js";
import type { Tensor } from "../../compiler/interp/tensor.js";
import { call, expectClose, get, msg, rnd, rndInt, set, tensor, zeros } from "./helpers.js";

describe("linear / matmul / embedding / crossEntropy", () => {
  it("linear y = x·Wᵀ", () => {
    const x = rnd([2, 3, 10]);
    const w = rnd([6, 10]);
    const want = zeros([2, 3, 6]);
    for (let b = 0; b < 2; b++)
      for (let t = 0; t < 3; t++)
        for (let o = 0; o < 6; o++) {
          let s = 0;
          for (let i = 0; i < 10; i++) s += get(x, b, t, i) * get(w, o, i);
          set(want, s, b, t, o);
        }
    expectClose(call(R.linear, [x, w], {}, [2, 3, 6]), want, 1e-13, "linear");
    expectClose(call(R.linear, [x, w], {}, [2, 3, 6], "f32"), want, 1e-6, "linear f32");
    expect(() => call(R.linear, [x, rnd([6, 9])], {}, [2, 3, 6])).toThrow(/last dim must be 9/);
  });

  it("batched matmul", () => {
    const a = rnd([2, 3, 4, 5]);
    const b = rnd([2, 3, 5, 7]);
    const want = zeros([2, 3, 4, 7]);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++)
        for (let m = 0; m < 4; m++)
          for (let n = 0; n < 7; n++) {
            let s = 0;
            for (let k = 0; k < 5; k++) s += get(a, i, j, m, k) * get(b, i, j, k, n);
            set(want, s, i, j, m, n);
          }
    expectClose(call(R.matmul, [a, b], {}, [2, 3, 4, 7]), want, 1e-13, "matmul");
    expectClose(call(R.matmul, [a, b], {}, [2, 3, 4, 7], "f32"), want, 1e-6, "matmul f32");
  });

  it("embedding gathers rows and names a bad id", () => {
    const table = rnd([11, 4]);
    const ids = rndInt([2, 5], 11);
    const got = call(R.embedding, [ids, table], {}, [2, 5, 4]);
    for (let b = 0; b < 2; b++)
      for (let t = 0; t < 5; t++) for (let d = 0; d < 4; d++) expect(get(got, b, t, d), msg("embedding")).toBe(get(table, get(ids, b, t), d));
    const bad = tensor([2], [3, 11]);
    expect(() => call(R.embedding, [bad, table], {}, [2, 4])).toThrow(/token id 11 .*vocab size 11/);
    expect(() => call(R.embedding, [tensor([1], [-1]), table], {}, [1, 4])).toThrow(/token id -1/);
  });

  it("crossEntropy = −log softmax[target], stable", () => {
    const logits = rnd([2, 3, 17], 4);
    logits.data[5] = 1000;
    const tg = rndInt([2, 3], 17);
    const want = zeros([2, 3]);
    for (let b = 0; b < 2; b++)
      for (let t = 0; t < 3; t++) {
        let m = -Infinity;
        for (let v = 0; v < 17; v++) m = Math.max(m, get(logits, b, t, v));
        let z = 0;
        for (let v = 0; v < 17; v++) z += Math.exp(get(logits, b, t, v) - m);
        set(want, -(get(logits, b, t, get(tg, b, t)) - m - Math.log(z)), b, t);
      }
    const got = call(R.crossEntropy, [logits, tg], {}, [2, 3]);
    expect(got.data.every(Number.isFinite)).toBe(true);
    expectClose(got, want, 1e-12, "crossEntropy");
    expectClose(call(R.crossEntropy, [logits, tg], {}, [2, 3], "f32"), want, 1e-5, "crossEntropy f32");
  });
});

// ---- conv1d -------------------------------------------------------------------------------

/** Naive conv: pad with prefix/zeros, PyTorch-style cross-correlation, keep the first T outputs. */
function convNaive(x: Tensor, w: Tensor, bias: Tensor, prefix?: Tensor): Tensor {
  const [B, T, C] = x.shape as number[];
  const K = w.shape[1]!;
  const y = zeros([B!, T!, C!]);
  for (let b = 0; b < B!; b++)
    for (let c = 0; c < C!; c++) {
      const seq: number[] = [];
      for (let i = 0; i < K - 1; i++) seq.push(prefix ? get(prefix, b, i, c) : 0);
      for (let t = 0; t < T!; t++) seq.push(get(x, b, t, c));
      for (let t = 0; t < T!; t++) {
        let s = bias.data[c]!;
        for (let k = 0; k < K; k++) s += get(w, c, k) * seq[t + k]!;
        set(y, s, b, t, c);
      }
    }
  return y;
}

describe("conv1d / convState", () => {
  const [B, T, C, K] = [2, 9, 5, 4];
  it("conv1d without and with prefix", () => {
    const x = rnd([B, T, C]);
    const w = rnd([C, K]);
    const bias = rnd([C]);
    const pre = rnd([B, K - 1, C]);
    expectClose(call(R.conv1d, [x, w, bias], {}, [B, T, C]), convNaive(x, w, bias), 1e-13, "conv1d");
    expectClose(call(R.conv1d, [x, w, bias, pre], {}, [B, T, C]), convNaive(x, w, bias, pre), 1e-13, "conv1d prefix");
    expectClose(call(R.conv1d, [x, w, bias, pre], {}, [B, T, C], "f32"), convNaive(x, w, bias, pre), 1e-6, "conv1d f32");
    // w[c, K−1] multiplies the current token
    const one = zeros([1, 3, 1]);
    one.data.set([0, 1, 0]);
    const y = call(R.conv1d, [one, tensor([1, 3], [10, 20, 30]), tensor([1], [0])], {}, [1, 3, 1]);
    expect([...y.data]).toEqual([0, 30, 20]);
  });

  it("convState: last K−1 inputs, with and without prefix, short T", () => {
    for (const t of [T, 2]) {
      const x = rnd([B, t, C]);
      const pre = rnd([B, K - 1, C]);
      for (const p of [undefined, pre]) {
        const want = zeros([B, K - 1, C]);
        for (let b = 0; b < B; b++)
          for (let c = 0; c < C; c++) {
            const seq: number[] = [];
            for (let i = 0; i < K - 1; i++) seq.push(p ? get(p, b, i, c) : 0);
            for (let i = 0; i < t; i++) seq.push(get(x, b, i, c));
            for (let i = 0; i < K - 1; i++) set(want, seq[seq.length - (K - 1) + i]!, b, i, c);
          }
        const got = call(R.convState, p ? [x, p] : [x], { k: K }, [B, K - 1, C]);
        expect([...got.data], msg(`convState T=${t} prefix=${!!p}`)).toEqual([...want.data]);
      }
    }
  });

  it("splitting the sequence: conv(x1) ; state ; conv(x2, prefix=state) = conv(x)", () => {
    const x = rnd([B, T, C]);
    const w = rnd([C, K]);
    const bias = rnd([C]);
    const full = call(R.conv1d, [x, w, bias], {}, [B, T, C]);
    for (const cut of [1, 2, 5]) {
      const x1 = zeros([B, cut, C]);
      const x2 = zeros([B, T - cut, C]);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) for (let c = 0; c < C; c++) (t < cut ? set(x1, get(x, b, t, c), b, t, c) : set(x2, get(x, b, t, c), b, t - cut, c));
      const y1 = call(R.conv1d, [x1, w, bias], {}, [B, cut, C]);
      const st = call(R.convState, [x1], { k: K }, [B, K - 1, C]);
      const y2 = call(R.conv1d, [x2, w, bias, st], {}, [B, T - cut, C]);
      const joined: number[] = [];
      for (let b = 0; b < B; b++) {
        joined.push(...y1.data.subarray(b * cut * C, (b + 1) * cut * C));
        joined.push(...y2.data.subarray(b * (T - cut) * C, (b + 1) * (T - cut) * C));
      }
      expectClose(tensor([B, T, C], joined), full, 1e-15, `conv split at ${cut}`);
    }
  });
});

// ---- rope ---------------------------------------------------------------------------------

describe("rope", () => {
  for (const fraction of [1, 0.5])
    it(`half-split rotary on fraction ${fraction}`, () => {
      const [B, T, H, D] = [2, 5, 3, 16];
      const theta = 10000;
      const x = rnd([B, T, H, D]);
      const pos = tensor([T], [0, 3, 7, 8, 100]);
      const rot = Math.round(D * fraction);
      const want = zeros([B, T, H, D]);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++)
          for (let h = 0; h < H; h++) {
            for (let d = 0; d < D; d++) set(want, get(x, b, t, h, d), b, t, h, d);
            for (let i = 0; i < rot / 2; i++) {
              const ang = pos.data[t]! / theta ** ((2 * i) / rot);
              const a = get(x, b, t, h, i);
              const c = get(x, b, t, h, i + rot / 2);
              set(want, a * Math.cos(ang) - c * Math.sin(ang), b, t, h, i);
              set(want, c * Math.cos(ang) + a * Math.sin(ang), b, t, h, i + rot / 2);
            }
          }
      const got = call(R.rope, [x, pos], { fraction, theta }, [B, T, H, D]);
      expectClose(got, want, 1e-12, `rope ${fraction}`);
      expectClose(call(R.rope, [x, pos], { fraction, theta }, [B, T, H, D], "f32"), want, 1e-5, `rope f32 ${fraction}`);
      // each rotated pair keeps its norm; pass-through dims are untouched; position 0 is identity
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++)
          for (let h = 0; h < H; h++) {
            for (let i = 0; i < rot / 2; i++) {
              const n0 = Math.hypot(get(x, b, t, h, i), get(x, b, t, h, i + rot / 2));
              const n1 = Math.hypot(get(got, b, t, h, i), get(got, b, t, h, i + rot / 2));
              expect(Math.abs(n0 - n1), msg("rope pair norm")).toBeLessThan(1e-14 * Math.max(1, n0));
            }
            for (let d = rot; d < D; d++) expect(get(got, b, t, h, d)).toBe(get(x, b, t, h, d));
            if (t === 0) for (let d = 0; d < D; d++) expect(get(got, b, t, h, d)).toBe(get(x, b, t, h, d));
          }
    });
});

// ---- attention ----------------------------------------------------------------------------

function attnNaive(q: Tensor, k: Tensor, v: Tensor, scale?: number): Tensor {
  const [B, T, H, D] = q.shape as [number, number, number, number];
  const [, S, Hk] = k.shape as [number, number, number];
  const sc = scale ?? 1 / Math.sqrt(D);
  const out = zeros([B, T, H, D]);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / (H / Hk));
      for (let i = 0; i < T; i++) {
        const s: number[] = [];
        for (let j = 0; j < S; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += get(q, b, i, h, d) * get(k, b, j, g, d);
          s.push(j <= i + S - T ? dot * sc : -Infinity);
        }
        const m = Math.max(...s);
        const p = s.map((x) => Math.exp(x - m));
        const z = p.reduce((a, c) => a + c, 0);
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < S; j++) acc += (p[j]! / z) * get(v, b, j, g, d);
          set(out, acc, b, i, h, d);
        }
      }
    }
  return out;
}

describe("attention", () => {
  it("GQA, causal, S = T and S > T (offset), custom scale", () => {
    const [B, H, Hk, D] = [2, 6, 2, 8];
    for (const [T, S] of [[7, 7], [4, 9], [1, 5]] as const) {
      const q = rnd([B, T, H, D]);
      const k = rnd([B, S, Hk, D]);
      const v = rnd([B, S, Hk, D]);
      expectClose(call(R.attention, [q, k, v], {}, [B, T, H, D]), attnNaive(q, k, v), 1e-12, `attention T=${T} S=${S}`);
      expectClose(call(R.attention, [q, k, v], { scale: 0.3 }, [B, T, H, D]), attnNaive(q, k, v, 0.3), 1e-12, "attention scale");
      expectClose(call(R.attention, [q, k, v], {}, [B, T, H, D], "f32"), attnNaive(q, k, v), 1e-5, "attention f32");
    }
  });

  it("decode step (T=1, S=P+1) equals the last row of full attention", () => {
    const [B, S, H, Hk, D] = [2, 8, 4, 1, 8];
    const q = rnd([B, S, H, D]);
    const k = rnd([B, S, Hk, D]);
    const v = rnd([B, S, Hk, D]);
    const full = call(R.attention, [q, k, v], {}, [B, S, H, D]);
    const qLast = zeros([B, 1, H, D]);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) set(qLast, get(q, b, S - 1, h, d), b, 0, h, d);
    const step = call(R.attention, [qLast, k, v], {}, [B, 1, H, D]);
    const lastRow = zeros([B, 1, H, D]);
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) set(lastRow, get(full, b, S - 1, h, d), b, 0, h, d);
    expectClose(step, lastRow, 1e-14, "attention decode step");
  });

  it("rejects kv heads that do not divide query heads", () => {
    expect(() => call(R.attention, [rnd([1, 2, 3, 4]), rnd([1, 2, 2, 4]), rnd([1, 2, 2, 4])], {}, [1, 2, 3, 4])).toThrow(/must divide/);
  });
});
