import { describe, expect, it } from "vitest";
import * as R from "../../compiler/interp/ref.js";
import type { Tensor } from "../../compiler/interp/tensor.js";
import { call, expectClose, get, msg, rnd, rndU, set, zeros } from "./helpers.js";

// ---- Mamba-2 SSD --------------------------------------------------------------------------

interface SsdIn {
  x: Tensor;
  dt: Tensor;
  A: Tensor;
  Bm: Tensor;
  Cm: Tensor;
  h0: Tensor;
}

function ssdInputs(B: number, T: number, H: number, P: number, G: number, N: number): SsdIn {
  return {
    x: rnd([B, T, H, P]),
    dt: rndU([B, T, H], 0.01, 0.6), // after softplus: positive
    A: rndU([H], -2, -0.1), // −exp(A_log): negative
    Bm: rnd([B, T, G, N]),
    Cm: rnd([B, T, G, N]),
    h0: rnd([B, H, P, N]),
  };
}

/** Explicit loop over every index of the recurrence; returns y and the final state. */
function ssdNaive(i: SsdIn, withH0: boolean): { y: Tensor; h: Tensor } {
  const [B, T, H, P] = i.x.shape as [number, number, number, number];
  const [, , G, N] = i.Bm.shape as [number, number, number, number];
  const y = zeros([B, T, H, P]);
  const h = zeros([B, H, P, N]);
  for (let b = 0; b < B; b++)
    for (let hh = 0; hh < H; hh++) {
      const g = Math.floor(hh / (H / G));
      for (let p = 0; p < P; p++) for (let n = 0; n < N; n++) set(h, withH0 ? get(i.h0, b, hh, p, n) : 0, b, hh, p, n);
      for (let t = 0; t < T; t++) {
        const dt = get(i.dt, b, t, hh);
        for (let p = 0; p < P; p++) {
          let acc = 0;
          for (let n = 0; n < N; n++) {
            const v = Math.exp(dt * i.A.data[hh]!) * get(h, b, hh, p, n) + dt * get(i.x, b, t, hh, p) * get(i.Bm, b, t, g, n);
            set(h, v, b, hh, p, n);
            acc += v * get(i.Cm, b, t, g, n);
          }
          set(y, acc, b, t, hh, p);
        }
      }
    }
  return { y, h };
}

/** The closed (quadratic, attention-like) form: y_t = Σ_{s≤t} (C_t·B_s)·e^{Σ_{s<k≤t} dt_k A}·dt_s·x_s + C_t·e^{Σ_{k≤t} dt_k A}·h0. */
function ssdQuadratic(i: SsdIn): Tensor {
  const [B, T, H, P] = i.x.shape as [number, number, number, number];
  const [, , G, N] = i.Bm.shape as [number, number, number, number];
  const y = zeros([B, T, H, P]);
  for (let b = 0; b < B; b++)
    for (let hh = 0; hh < H; hh++) {
      const g = Math.floor(hh / (H / G));
      const a = i.A.data[hh]!;
      for (let t = 0; t < T; t++)
        for (let p = 0; p < P; p++) {
          let acc = 0;
          for (let s = 0; s <= t; s++) {
            let seg = 0;
            for (let k = s + 1; k <= t; k++) seg += get(i.dt, b, k, hh) * a;
            let cb = 0;
            for (let n = 0; n < N; n++) cb += get(i.Cm, b, t, g, n) * get(i.Bm, b, s, g, n);
            acc += cb * Math.exp(seg) * get(i.dt, b, s, hh) * get(i.x, b, s, hh, p);
          }
          let all = 0;
          for (let k = 0; k <= t; k++) all += get(i.dt, b, k, hh) * a;
          for (let n = 0; n < N; n++) acc += get(i.Cm, b, t, g, n) * Math.exp(all) * get(i.h0, b, hh, p, n);
          set(y, acc, b, t, hh, p);
        }
    }
  return y;
}

function sliceT(t: Tensor, t0: number, t1: number): Tensor {
  const [B, T] = t.shape as [number, number];
  const inner = t.data.length / (B * T);
  const out = zeros([B, t1 - t0, ...t.shape.slice(2)]);
  for (let b = 0; b < B; b++) out.data.set(t.data.subarray((b * T + t0) * inner, (b * T + t1) * inner), b * (t1 - t0) * inner);
  return out;
}

function catT(a: Tensor, c: Tensor): Tensor {
  const [B, T1] = a.shape as [number, number];
  const T2 = c.shape[1]!;
  const inner = a.data.length / (B * T1);
  const out = zeros([B, T1 + T2, ...a.shape.slice(2)]);
  for (let b = 0; b < B; b++) {
    out.data.set(a.data.subarray(b * T1 * inner, (b + 1) * T1 * inner), b * (T1 + T2) * inner);
    out.data.set(c.data.subarray(b * T2 * inner, (b + 1) * T2 * inner), (b * (T1 + T2) + T1) * inner);
  }
  return out;
}

describe("ssdScan / ssdState (Mamba-2)", () => {
  const [B, T, H, P, G, N] = [2, 23, 4, 3, 2, 5];
  const chunk = 8; // T not a multiple of the chunk

  it("chunked (dual form) and recurrent agree to 1e-12 (T % chunk ≠ 0, h0, G < H)", () => {
    const s = ssdInputs(B, T, H, P, G, N);
    const ins = [s.x, s.dt, s.A, s.Bm, s.Cm];
    for (const c of [chunk, 1, 5, 64, 2 ** 40]) { // a chunk far longer than T (any positive integer is a valid attribute) is one chunk
      for (const h0 of [false, true]) {
        const all = h0 ? [...ins, s.h0] : ins;
        const yc = call(R.ssdScan, all, { chunk: c }, [B, T, H, P], "f64", "chunked");
        const yr = call(R.ssdScan, all, { chunk: c }, [B, T, H, P], "f64", "recurrent");
        expectClose(yc, yr, 1e-12, `ssdScan chunked vs recurrent, chunk ${c}, h0=${h0}`);
        const stIns = h0 ? [s.x, s.dt, s.A, s.Bm, s.h0] : [s.x, s.dt, s.A, s.Bm];
        const sc = call(R.ssdState, stIns, { chunk: c }, [B, H, P, N], "f64", "chunked");
        const sr = call(R.ssdState, stIns, { chunk: c }, [B, H, P, N], "f64", "recurrent");
        expectClose(sc, sr, 1e-12, `ssdState chunked vs recurrent, chunk ${c}, h0=${h0}`);
      }
    }
  });

  it("matches the naive loop and the quadratic closed form; ssdState is the final state", () => {
    const s = ssdInputs(B, T, H, P, G, N);
    const naive = ssdNaive(s, true);
    const quad = ssdQuadratic(s);
    expectClose(naive.y, quad, 1e-12, "naive loop vs quadratic form (test self-check)");
    for (const mode of ["chunked", "recurrent"] as const) {
      const y = call(R.ssdScan, [s.x, s.dt, s.A, s.Bm, s.Cm, s.h0], { chunk }, [B, T, H, P], "f64", mode);
      expectClose(y, naive.y, 1e-12, `ssdScan ${mode} vs naive`);
      const st = call(R.ssdState, [s.x, s.dt, s.A, s.Bm, s.h0], { chunk }, [B, H, P, N], "f64", mode);
      expectClose(st, naive.h, 1e-12, `ssdState ${mode} vs naive final state`);
      expectClose(call(R.ssdScan, [s.x, s.dt, s.A, s.Bm, s.Cm, s.h0], { chunk }, [B, T, H, P], "f32", mode), naive.y, 1e-5, `ssdScan ${mode} f32`);
    }
    const n0 = ssdNaive(s, false);
    expectClose(call(R.ssdScan, [s.x, s.dt, s.A, s.Bm, s.Cm], {}, [B, T, H, P]), n0.y, 1e-12, "ssdScan without h0, default chunk");
    expectClose(call(R.ssdState, [s.x, s.dt, s.A, s.Bm], {}, [B, H, P, N]), n0.h, 1e-12, "ssdState without h0");
  });

  it("split sequence: scan(x1) → state → scan(x2, h0=state) equals scan(x)", () => {
    const s = ssdInputs(B, T, H, P, G, N);
    for (const mode of ["chunked", "recurrent"] as const) {
      const full = call(R.ssdScan, [s.x, s.dt, s.A, s.Bm, s.Cm, s.h0], { chunk }, [B, T, H, P], "f64", mode);
      for (const cut of [1, 8, 13]) {
        const part = (t0: number, t1: number) => [s.x, s.dt, s.Bm, s.Cm].map((t) => sliceT(t, t0, t1));
        const [x1, dt1, B1, C1] = part(0, cut) as [Tensor, Tensor, Tensor, Tensor];
        const [x2, dt2, B2, C2] = part(cut, T) as [Tensor, Tensor, Tensor, Tensor];
        const y1 = call(R.ssdScan, [x1, dt1, s.A, B1, C1, s.h0], { chunk }, [B, cut, H, P], "f64", mode);
        const st = call(R.ssdState, [x1, dt1, s.A, B1, s.h0], { chunk }, [B, H, P, N], "f64", mode);
        const y2 = call(R.ssdScan, [x2, dt2, s.A, B2, C2, st], { chunk }, [B, T - cut, H, P], "f64", mode);
        expectClose(catT(y1, y2), full, 1e-12, `ssd split at ${cut} (${mode})`);
      }
    }
  });

  it("rejects a mis-shaped h0", () => {
    const s = ssdInputs(1, 4, 2, 2, 1, 3);
    expect(() => call(R.ssdScan, [s.x, s.dt, s.A, s.Bm, s.Cm, rnd([1, 2, 2, 4])], {}, [1, 4, 2, 2])).toThrow(/h0 must have shape \[1, 2, 2, 3\]/);
  });
});

// ---- Mamba-1 selective scan ---------------------------------------------------------------

describe("selectiveScan / selectiveState (Mamba-1)", () => {
  const [B, T, D, N] = [2, 13, 6, 4];
  const mk = () => ({
    u: rnd([B, T, D]),
    delta: rndU([B, T, D], 0.01, 0.5),
    A: rndU([D, N], -3, -0.2),
    Bm: rnd([B, T, N]),
    Cm: rnd([B, T, N]),
    h0: rnd([B, D, N]),
  });

  function naive(s: ReturnType<typeof mk>, withH0: boolean): { y: Tensor; h: Tensor } {
    const y = zeros([B, T, D]);
    const h = zeros([B, D, N]);
    for (let b = 0; b < B; b++)
      for (let d = 0; d < D; d++) {
        const st = new Array<number>(N).fill(0).map((_, n) => (withH0 ? get(s.h0, b, d, n) : 0));
        for (let t = 0; t < T; t++) {
          const dl = get(s.delta, b, t, d);
          let acc = 0;
          for (let n = 0; n < N; n++) {
            st[n] = Math.exp(dl * get(s.A, d, n)) * st[n]! + dl * get(s.u, b, t, d) * get(s.Bm, b, t, n);
            acc += st[n]! * get(s.Cm, b, t, n);
          }
          set(y, acc, b, t, d);
        }
        for (let n = 0; n < N; n++) set(h, st[n]!, b, d, n);
      }
    return { y, h };
  }

  it("matches the naive recurrence, with and without h0; state is the final h", () => {
    const s = mk();
    for (const withH0 of [false, true]) {
      const n = naive(s, withH0);
      const ins = [s.u, s.delta, s.A, s.Bm, s.Cm, ...(withH0 ? [s.h0] : [])];
      expectClose(call(R.selectiveScan, ins, {}, [B, T, D]), n.y, 1e-12, `selectiveScan h0=${withH0}`);
      expectClose(call(R.selectiveScan, ins, {}, [B, T, D], "f32"), n.y, 1e-5, `selectiveScan f32 h0=${withH0}`);
      const sIns = [s.u, s.delta, s.A, s.Bm, ...(withH0 ? [s.h0] : [])];
      expectClose(call(R.selectiveState, sIns, {}, [B, D, N]), n.h, 1e-12, `selectiveState h0=${withH0}`);
    }
  });

  it("split sequence: scan(x1) → state → scan(x2, h0=state) equals scan(x)", () => {
    const s = mk();
    const full = call(R.selectiveScan, [s.u, s.delta, s.A, s.Bm, s.Cm], {}, [B, T, D]);
    for (const cut of [1, 6]) {
      const p1 = [s.u, s.delta, s.Bm, s.Cm].map((t) => sliceT(t, 0, cut)) as [Tensor, Tensor, Tensor, Tensor];
      const p2 = [s.u, s.delta, s.Bm, s.Cm].map((t) => sliceT(t, cut, T)) as [Tensor, Tensor, Tensor, Tensor];
      const y1 = call(R.selectiveScan, [p1[0], p1[1], s.A, p1[2], p1[3]], {}, [B, cut, D]);
      const st = call(R.selectiveState, [p1[0], p1[1], s.A, p1[2]], {}, [B, D, N]);
      const y2 = call(R.selectiveScan, [p2[0], p2[1], s.A, p2[2], p2[3], st], {}, [B, T - cut, D]);
      expectClose(catT(y1, y2), full, 1e-13, `selective split at ${cut}`);
    }
    expect(full.data.some((v) => v !== 0), msg("nonzero output")).toBe(true);
  });
});
