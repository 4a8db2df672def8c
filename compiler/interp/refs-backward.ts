/**
 * References of the backward ops (ir/ops-backward.ts), exact in float64: the semantics every
 * backward kernel is checked against.
 */
import type { Attrs } from "../ir/node.js";
import { erfc } from "./erf.js";
import { alloc, numel, type RefCtx, type RefFn, type Tensor } from "./tensor.js";

// ---- shared helpers -----------------------------------------------------------------------

const shp = (s: readonly number[]) => `[${s.join(", ")}]`;

/** Strides of `s` aligned to `out` (0 on broadcast axes). */
function bstrides(s: readonly number[], out: readonly number[]): number[] {
  const n = out.length;
  const st = new Array<number>(n).fill(0);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[n - s.length + i] = s[i] === 1 ? 0 : acc;
    acc *= s[i]!;
  }
  return st;
}

/** Calls f(outIndex, smallIndex) for every element of `big`, smallIndex following broadcasting. */
function forBroadcast(small: readonly number[], big: readonly number[], f: (o: number, s: number) => void): void {
  const n = numel(big);
  if (n === 0) return;
  const st = bstrides(small, big);
  const r = big.length;
  const idx = new Array<number>(r).fill(0);
  let s = 0;
  for (let o = 0; o < n; o++) {
    f(o, s);
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax]!++;
      s += st[ax]!;
      if (idx[ax]! < big[ax]!) break;
      s -= st[ax]! * big[ax]!;
      idx[ax] = 0;
    }
  }
}

const f64 = (n: number) => new Float64Array(n);

function out(ctx: RefCtx, data: Float64Array): Tensor {
  const t = alloc(ctx.outShape, ctx.precision);
  if (data.length !== t.data.length) throw new Error(`internal: ${data.length} values for output ${shp(ctx.outShape)}`);
  t.data.set(data);
  return t;
}

// ---- the records ----------------------------------------------------------------------------

/** sumTo */
export const sumTo: RefFn = ([x], _a, ctx) => {
    const o = f64(numel(ctx.outShape));
    forBroadcast(ctx.outShape, x!.shape, (i, s) => (o[s]! += x!.data[i]!));
    return out(ctx, o);
};

/** expandTo */
export const expandTo: RefFn = ([x], a, ctx) => {
    const n = numel(ctx.outShape);
    const k = a.mean === true && x!.data.length > 0 ? x!.data.length / n : 1;
    const o = f64(n);
    forBroadcast(x!.shape, ctx.outShape, (i, s) => (o[i] = x!.data[s]! * k));
    return out(ctx, o);
};

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const ACT_GRADS: Record<string, (x: number) => number> = {
  relu: (x) => (x > 0 ? 1 : 0),
  // d/dx 0.5·x·erfc(−x/√2) = Φ(x) + x·φ(x)
  gelu: (x) => 0.5 * erfc(-x * Math.SQRT1_2) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x),
  gelu_tanh: (x) => {
    const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    const t = Math.tanh(u);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
  },
};

/** activationGrad */
export const activationGrad: RefFn = ([x], a, ctx) => {
    const f = ACT_GRADS[a.fn as string]!;
    const o = f64(x!.data.length);
    for (let i = 0; i < o.length; i++) o[i] = f(x!.data[i]!);
    return out(ctx, o);
};

/** embeddingGrad */
export const embeddingGrad: RefFn = ([ids, gy], _a, ctx) => {
    const [V, d] = ctx.outShape as [number, number];
    const o = f64(V * d);
    for (let i = 0; i < ids!.data.length; i++) {
      const id = ids!.data[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`embeddingGrad: token id ${id} at ${i} is out of range [0, ${V})`);
      for (let j = 0; j < d; j++) o[id * d + j]! += gy!.data[i * d + j]!;
    }
    return out(ctx, o);
};

/** crossEntropyGrad */
export const crossEntropyGrad: RefFn = ([gy, logits, targets], _a, ctx) => {
    const V = logits!.shape[logits!.shape.length - 1]!;
    const o = f64(logits!.data.length);
    const ld = logits!.data;
    for (let r = 0; r < targets!.data.length; r++) {
      const base = r * V;
      let m = -Infinity;
      for (let i = 0; i < V; i++) m = Math.max(m, ld[base + i]!);
      let s = 0;
      for (let i = 0; i < V; i++) s += Math.exp(ld[base + i]! - m);
      const g = gy!.data[r]!;
      for (let i = 0; i < V; i++) o[base + i] = (g * Math.exp(ld[base + i]! - m)) / s;
      const t = targets!.data[r]!;
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new Error(`crossEntropyGrad: target ${t} at ${r} is out of range [0, ${V})`);
      o[base + t]! -= g;
    }
    return out(ctx, o);
};

/** conv1dGrad */
export const conv1dGrad: RefFn = ([gy, x, w, prefix], a, ctx) => {
    const [B, T, C] = x!.shape as [number, number, number];
    const K = w!.shape[1]!;
    const P = K - 1;
    const dx = f64(B * T * C), dw = f64(C * K), dp = f64(B * P * C);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let c = 0; c < C; c++) {
          const g = gy!.data[(b * T + t) * C + c]!;
          for (let k = 0; k < K; k++) {
            const tp = t + k;
            const wv = w!.data[c * K + k]!;
            if (tp >= P) {
              const xi = (b * T + tp - P) * C + c;
              dw[c * K + k]! += g * x!.data[xi]!;
              dx[xi]! += g * wv;
            } else if (prefix) {
              const pi = (b * P + tp) * C + c;
              dw[c * K + k]! += g * prefix.data[pi]!;
              dp[pi]! += g * wv;
            }
          }
        }
    return out(ctx, a.wrt === "x" ? dx : a.wrt === "w" ? dw : dp);
};

const ATTN_WRT = ["q", "k", "v"] as const;

/** attentionGrad */
export const attentionGrad: RefFn = ([gy, q, k, v], a, ctx) => {
    const [B, T, H, D] = q!.shape as [number, number, number, number];
    const [, S, Hk] = k!.shape as [number, number, number];
    const sc = a.scale as number;
    const rep = H / Hk;
    const qd = q!.data, kd = k!.data, vd = v!.data, gd = gy!.data;
    const dq = f64(qd.length), dk = f64(kd.length), dv = f64(vd.length);
    const p = f64(S);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const hk = Math.floor(h / rep);
        for (let i = 0; i < T; i++) {
          const last = Math.min(S - 1, i + S - T);
          if (last < 0) continue; // output defined as 0: no gradient
          const qo = ((b * T + i) * H + h) * D;
          let m = -Infinity;
          for (let j = 0; j <= last; j++) {
            const ko = ((b * S + j) * Hk + hk) * D;
            let s = 0;
            for (let d = 0; d < D; d++) s += qd[qo + d]! * kd[ko + d]!;
            p[j] = s * sc;
            if (p[j]! > m) m = p[j]!;
          }
          let z = 0;
          for (let j = 0; j <= last; j++) z += p[j] = Math.exp(p[j]! - m);
          // dp_j = gy·v_j; Σ p_j dp_j = gy·o
          let pdp = 0;
          const dp = f64(last + 1);
          for (let j = 0; j <= last; j++) {
            p[j] = p[j]! / z;
            const vo = ((b * S + j) * Hk + hk) * D;
            let s = 0;
            for (let d = 0; d < D; d++) s += gd[qo + d]! * vd[vo + d]!;
            dp[j] = s;
            pdp += p[j]! * s;
          }
          for (let j = 0; j <= last; j++) {
            const ds = p[j]! * (dp[j]! - pdp) * sc;
            const ko = ((b * S + j) * Hk + hk) * D;
            for (let d = 0; d < D; d++) {
              dq[qo + d]! += ds * kd[ko + d]!;
              dk[ko + d]! += ds * qd[qo + d]!;
              dv[ko + d]! += p[j]! * gd[qo + d]!;
            }
          }
        }
      }
    return out(ctx, a.wrt === "q" ? dq : a.wrt === "k" ? dk : dv);
};

const SSD_WRT = ["x", "dt", "A", "B", "C", "h0"] as const;

/** ssdScanGrad */
export const ssdScanGrad: RefFn = (ins, a, ctx) => {
    const [gy, x, dt, A, Bm, Cm, h0] = ins as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor | undefined];
    const [B, T, H, P] = x.shape as [number, number, number, number];
    const G = Bm.shape[2]!, N = Bm.shape[3]!;
    const PN = P * N;
    const g: Record<(typeof SSD_WRT)[number], Float64Array> = {
      x: f64(x.data.length), dt: f64(dt.data.length), A: f64(H), B: f64(Bm.data.length), C: f64(Cm.data.length), h0: f64(B * H * PN),
    };
    const states = f64((T + 1) * PN);
    const dS = f64(PN);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const grp = Math.floor(h / (H / G));
        const av = A.data[h]!;
        // forward: states[t+1] = state after step t; states[0] = h0
        for (let i = 0; i < PN; i++) states[i] = h0 ? h0.data[(b * H + h) * PN + i]! : 0;
        for (let t = 0; t < T; t++) {
          const dtv = dt.data[(b * T + t) * H + h]!;
          const e = Math.exp(dtv * av);
          const xo = ((b * T + t) * H + h) * P, bo = ((b * T + t) * G + grp) * N;
          const s0 = t * PN, s1 = (t + 1) * PN;
          for (let p = 0; p < P; p++)
            for (let n = 0; n < N; n++) states[s1 + p * N + n] = e * states[s0 + p * N + n]! + dtv * x.data[xo + p]! * Bm.data[bo + n]!;
        }
        dS.fill(0);
        for (let t = T - 1; t >= 0; t--) {
          const dtv = dt.data[(b * T + t) * H + h]!;
          const e = Math.exp(dtv * av);
          const xo = ((b * T + t) * H + h) * P, bo = ((b * T + t) * G + grp) * N;
          const s0 = t * PN, s1 = (t + 1) * PN;
          // readout y_t = S_t·C_t
          for (let p = 0; p < P; p++) {
            const gyv = gy.data[xo + p]!;
            for (let n = 0; n < N; n++) {
              dS[p * N + n]! += gyv * Cm.data[bo + n]!;
              g.C[bo + n]! += gyv * states[s1 + p * N + n]!;
            }
          }
          // S_t = e·S_{t−1} + dt·x_t⊗B_t
          let de = 0, dtDirect = 0;
          for (let p = 0; p < P; p++) {
            const xv = x.data[xo + p]!;
            let sx = 0;
            for (let n = 0; n < N; n++) {
              const d = dS[p * N + n]!;
              de += d * states[s0 + p * N + n]!;
              sx += d * Bm.data[bo + n]!;
              dtDirect += d * xv * Bm.data[bo + n]!;
              g.B[bo + n]! += dtv * d * xv;
            }
            g.x[xo + p]! += dtv * sx;
          }
          g.dt[(b * T + t) * H + h]! += de * av * e + dtDirect;
          g.A[h]! += de * dtv * e;
          for (let i = 0; i < PN; i++) dS[i] = e * dS[i]!;
        }
        g.h0.set(dS, (b * H + h) * PN);
      }
    return out(ctx, g[a.wrt as (typeof SSD_WRT)[number]]);
};

const SEL_WRT = ["u", "delta", "A", "B", "C", "h0"] as const;

/** selectiveScanGrad */
export const selectiveScanGrad: RefFn = (ins, a, ctx) => {
    const [gy, u, delta, A, Bm, Cm, h0] = ins as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor | undefined];
    const [B, T, D] = u.shape as [number, number, number];
    const N = A.shape[1]!;
    const DN = D * N;
    const g: Record<(typeof SEL_WRT)[number], Float64Array> = {
      u: f64(u.data.length), delta: f64(delta.data.length), A: f64(DN), B: f64(Bm.data.length), C: f64(Cm.data.length), h0: f64(B * DN),
    };
    const states = f64((T + 1) * DN);
    const dS = f64(DN);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < DN; i++) states[i] = h0 ? h0.data[b * DN + i]! : 0;
      for (let t = 0; t < T; t++) {
        const bo = (b * T + t) * N;
        for (let d = 0; d < D; d++) {
          const dv = delta.data[(b * T + t) * D + d]!, w = dv * u.data[(b * T + t) * D + d]!;
          for (let n = 0; n < N; n++)
            states[(t + 1) * DN + d * N + n] = Math.exp(dv * A.data[d * N + n]!) * states[t * DN + d * N + n]! + w * Bm.data[bo + n]!;
        }
      }
      dS.fill(0);
      for (let t = T - 1; t >= 0; t--) {
        const bo = (b * T + t) * N;
        for (let d = 0; d < D; d++) {
          const ti = (b * T + t) * D + d;
          const gyv = gy.data[ti]!, dv = delta.data[ti]!, uv = u.data[ti]!;
          let dDelta = 0, dU = 0;
          for (let n = 0; n < N; n++) {
            const si = d * N + n;
            dS[si]! += gyv * Cm.data[bo + n]!;
            g.C[bo + n]! += gyv * states[(t + 1) * DN + si]!;
            const av = A.data[si]!;
            const e = Math.exp(dv * av);
            const ds = dS[si]!;
            const de = ds * states[t * DN + si]!;
            dDelta += de * av * e + ds * uv * Bm.data[bo + n]!;
            g.A[si]! += de * dv * e;
            dU += ds * Bm.data[bo + n]!;
            g.B[bo + n]! += ds * dv * uv;
            dS[si] = e * ds;
          }
          g.delta[ti]! += dDelta;
          g.u[ti]! += dv * dU;
        }
      }
      g.h0.set(dS, b * DN);
    }
    return out(ctx, g[a.wrt as (typeof SEL_WRT)[number]]);
};
