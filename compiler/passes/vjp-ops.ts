/**
 * The backward ops autodiff needs that the forward IR cannot express: one record per op, in the
 * registry's form (arity, shape/dtype rule, exact float64 reference). Everything else in a
 * backward graph is built from existing forward ops (vjp.ts).
 *
 * Why each is new:
 * - sumTo / expandTo: reductions over broadcast axes (and their transpose); the IR has no
 *   reduction over chosen axes (reduceMean reduces everything).
 * - activationGrad: f′(x) of relu (a step) and gelu (needs erf); not composable from the
 *   elementwise ops.
 * - embeddingGrad: scatter-add of rows (no one-hot or scatter op).
 * - crossEntropyGrad: softmax − onehot(target) (no one-hot op); fused later with the LM head.
 * - conv1dGrad: the anti-causal correlation (dx) and the reduction over tokens (dw, dprefix).
 * - attentionGrad, ssdScanGrad, selectiveScanGrad: the sequence ops' backward (recompute).
 *
 * Until these records are in the IR registry (OP_NAMES, ops.ts, the interpreter's refs), autodiff
 * builds their nodes here (`mkBackwardNode`) and `evaluateWithBackward` evaluates graphs holding
 * them: it runs `evaluate` for the registered part and these references for the rest. Once the
 * lead registers them (same name, rule and reference), both fall through to the registry.
 */
import { evalShape, shapeStr, type Dim } from "../ir/dims.js";
import { ShapeError, StrataError } from "../ir/errors.js";
import { topo, type Graph } from "../ir/graph.js";
import { contentKey, mkNode, mkNodeLike, withInputs, type Attrs, type Node, type TensorType } from "../ir/node.js";
import { getOp } from "../ir/registry.js";
import { erfc } from "../interp/erf.js";
import { evaluate, type EvaluateOptions } from "../interp/interp.js";
import { alloc, numel, type RefCtx, type Tensor } from "../interp/tensor.js";

export interface BackwardOpDef {
  name: string;
  arity: readonly [number, number];
  doc: string;
  infer(inputs: readonly Node[], attrs: Attrs): TensorType;
  /** Exact reference in float64 (output rounded to ctx.precision). */
  ref(inputs: readonly Tensor[], attrs: Attrs, ctx: RefCtx): Tensor;
}

// ---- shared helpers -----------------------------------------------------------------------

const shp = (s: readonly number[]) => `[${s.join(", ")}]`;
const sameShape = (a: readonly Dim[], b: readonly Dim[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** NumPy broadcasting of `small` to `big`: true when every trailing axis is equal or 1. */
function broadcastsTo(small: readonly Dim[], big: readonly Dim[]): boolean {
  if (small.length > big.length) return false;
  const off = big.length - small.length;
  return small.every((d, i) => d === 1 || d === big[off + i]);
}

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

function str(a: Attrs, k: string, allowed: readonly string[]): string {
  const v = a[k];
  if (typeof v !== "string" || !allowed.includes(v)) throw new ShapeError(`attribute '${k}' must be one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
  return v;
}

function num(a: Attrs, k: string, dflt?: number): number {
  const v = a[k] ?? dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ShapeError(`attribute '${k}' must be a finite number, got ${JSON.stringify(a[k])}`);
  return v;
}

const f64 = (n: number) => new Float64Array(n);

function out(ctx: RefCtx, data: Float64Array): Tensor {
  const t = alloc(ctx.outShape, ctx.precision);
  if (data.length !== t.data.length) throw new Error(`internal: ${data.length} values for output ${shp(ctx.outShape)}`);
  t.data.set(data);
  return t;
}

// ---- the records ----------------------------------------------------------------------------

const sumTo: BackwardOpDef = {
  name: "sumTo",
  arity: [1, 1],
  doc: "Sum x over its broadcast axes down to attrs.shape (the shape that NumPy-broadcast to x's): the transpose of broadcasting.",
  infer([x], a) {
    const shape = a.shape as Dim[];
    if (!Array.isArray(shape) || !broadcastsTo(shape, x!.shape))
      throw new ShapeError(`target shape ${JSON.stringify(shape)} must broadcast to the input's ${shapeStr(x!.shape)}`);
    return { dtype: x!.dtype, shape };
  },
  ref([x], _a, ctx) {
    const o = f64(numel(ctx.outShape));
    forBroadcast(ctx.outShape, x!.shape, (i, s) => (o[s]! += x!.data[i]!));
    return out(ctx, o);
  },
};

const expandTo: BackwardOpDef = {
  name: "expandTo",
  arity: [1, 1],
  doc: "Broadcast x to attrs.shape (NumPy rules); attrs.mean divides by the number of copies (the backward of a mean).",
  infer([x], a) {
    const shape = a.shape as Dim[];
    if (!Array.isArray(shape) || !broadcastsTo(x!.shape, shape))
      throw new ShapeError(`input ${shapeStr(x!.shape)} does not broadcast to ${JSON.stringify(shape)}`);
    return { dtype: x!.dtype, shape };
  },
  ref([x], a, ctx) {
    const n = numel(ctx.outShape);
    const k = a.mean === true && x!.data.length > 0 ? x!.data.length / n : 1;
    const o = f64(n);
    forBroadcast(x!.shape, ctx.outShape, (i, s) => (o[i] = x!.data[s]! * k));
    return out(ctx, o);
  },
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

const activationGrad: BackwardOpDef = {
  name: "activationGrad",
  arity: [1, 1],
  doc: "f′(x) elementwise for attrs.fn ∈ relu (0 at 0), gelu (exact erf form), gelu_tanh.",
  infer([x], a) {
    str(a, "fn", Object.keys(ACT_GRADS));
    return { dtype: x!.dtype, shape: x!.shape };
  },
  ref([x], a, ctx) {
    const f = ACT_GRADS[a.fn as string]!;
    const o = f64(x!.data.length);
    for (let i = 0; i < o.length; i++) o[i] = f(x!.data[i]!);
    return out(ctx, o);
  },
};

const embeddingGrad: BackwardOpDef = {
  name: "embeddingGrad",
  arity: [2, 2],
  doc: "Scatter-add: out[ids[i]] += gy[i]; ids [...], gy [..., d] → [attrs.vocab, d].",
  infer([ids, gy], a) {
    const v = num(a, "vocab");
    if (!sameShape(gy!.shape.slice(0, -1), ids!.shape)) throw new ShapeError(`gradient ${shapeStr(gy!.shape)} must be the ids' shape ${shapeStr(ids!.shape)} plus a feature axis`);
    return { dtype: gy!.dtype, shape: [v, gy!.shape[gy!.shape.length - 1]!] };
  },
  ref([ids, gy], _a, ctx) {
    const [V, d] = ctx.outShape as [number, number];
    const o = f64(V * d);
    for (let i = 0; i < ids!.data.length; i++) {
      const id = ids!.data[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`embeddingGrad: token id ${id} at ${i} is out of range [0, ${V})`);
      for (let j = 0; j < d; j++) o[id * d + j]! += gy!.data[i * d + j]!;
    }
    return out(ctx, o);
  },
};

const crossEntropyGrad: BackwardOpDef = {
  name: "crossEntropyGrad",
  arity: [3, 3],
  doc: "d logits of crossEntropy: gy[...]·(softmax(logits) − onehot(target)); gy [...], logits [..., V], targets [...].",
  infer([gy, logits, targets]) {
    if (!sameShape(gy!.shape, targets!.shape) || !sameShape(logits!.shape.slice(0, -1), targets!.shape))
      throw new ShapeError(`gy ${shapeStr(gy!.shape)} and targets ${shapeStr(targets!.shape)} must equal logits ${shapeStr(logits!.shape)} without the vocab axis`);
    return { dtype: logits!.dtype, shape: logits!.shape };
  },
  ref([gy, logits, targets], _a, ctx) {
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
  },
};

const conv1dGrad: BackwardOpDef = {
  name: "conv1dGrad",
  arity: [3, 4],
  doc: "Backward of the causal depthwise conv1d: inputs (gy, x, w, prefix?), attrs.wrt ∈ x (anti-causal correlation), w (sum over tokens), prefix.",
  infer([gy, x, w, prefix], a) {
    const wrt = str(a, "wrt", ["x", "w", "prefix"]);
    if (!sameShape(gy!.shape, x!.shape)) throw new ShapeError(`gradient ${shapeStr(gy!.shape)} must have the input's shape ${shapeStr(x!.shape)}`);
    if (wrt === "prefix" && !prefix) throw new ShapeError("wrt 'prefix' needs the prefix input");
    const t = wrt === "x" ? x! : wrt === "w" ? w! : prefix!;
    return { dtype: t.dtype, shape: t.shape };
  },
  ref([gy, x, w, prefix], a, ctx) {
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
  },
};

const ATTN_WRT = ["q", "k", "v"] as const;

const attentionGrad: BackwardOpDef = {
  name: "attentionGrad",
  arity: [4, 4],
  doc: "Backward of causal GQA attention by recomputation: inputs (gy, q, k, v), attrs {wrt ∈ q|k|v, scale}; key heads accumulate over their query group.",
  infer([gy, q, k, v], a) {
    const wrt = str(a, "wrt", ATTN_WRT);
    num(a, "scale");
    if (!sameShape(gy!.shape, q!.shape)) throw new ShapeError(`gradient ${shapeStr(gy!.shape)} must have q's shape ${shapeStr(q!.shape)}`);
    const t = wrt === "q" ? q! : wrt === "k" ? k! : v!;
    return { dtype: t.dtype, shape: t.shape };
  },
  ref([gy, q, k, v], a, ctx) {
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
  },
};

const SSD_WRT = ["x", "dt", "A", "B", "C", "h0"] as const;

const ssdScanGrad: BackwardOpDef = {
  name: "ssdScanGrad",
  arity: [6, 7],
  doc: "Backward of ssdScan (reverse recurrence over stored states): inputs (gy, x, dt, A, B, C, h0?), attrs {wrt ∈ x|dt|A|B|C|h0}.",
  infer(ins, a) {
    const wrt = str(a, "wrt", SSD_WRT);
    const [gy, x] = ins;
    if (!sameShape(gy!.shape, x!.shape)) throw new ShapeError(`gradient ${shapeStr(gy!.shape)} must have x's shape ${shapeStr(x!.shape)}`);
    const i = SSD_WRT.indexOf(wrt as (typeof SSD_WRT)[number]) + 1;
    const t = ins[i];
    if (!t) throw new ShapeError("wrt 'h0' needs the h0 input");
    return { dtype: t.dtype, shape: t.shape };
  },
  ref(ins, a, ctx) {
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
  },
};

const SEL_WRT = ["u", "delta", "A", "B", "C", "h0"] as const;

const selectiveScanGrad: BackwardOpDef = {
  name: "selectiveScanGrad",
  arity: [6, 7],
  doc: "Backward of selectiveScan (reverse recurrence over stored states): inputs (gy, u, delta, A, B, C, h0?), attrs {wrt ∈ u|delta|A|B|C|h0}.",
  infer(ins, a) {
    const wrt = str(a, "wrt", SEL_WRT);
    const [gy, u] = ins;
    if (!sameShape(gy!.shape, u!.shape)) throw new ShapeError(`gradient ${shapeStr(gy!.shape)} must have u's shape ${shapeStr(u!.shape)}`);
    const t = ins[SEL_WRT.indexOf(wrt as (typeof SEL_WRT)[number]) + 1];
    if (!t) throw new ShapeError("wrt 'h0' needs the h0 input");
    return { dtype: t.dtype, shape: t.shape };
  },
  ref(ins, a, ctx) {
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
  },
};

export const BACKWARD_OPS: Readonly<Record<string, BackwardOpDef>> = Object.fromEntries(
  [sumTo, expandTo, activationGrad, embeddingGrad, crossEntropyGrad, conv1dGrad, attentionGrad, ssdScanGrad, selectiveScanGrad].map((d) => [d.name, d]),
);

// ---- building and evaluating graphs that hold them --------------------------------------------

const registeredCache = new Map<string, boolean>();
function registered(op: string): boolean {
  let r = registeredCache.get(op);
  if (r === undefined) {
    try {
      getOp(op as Node["op"]);
      r = true;
    } catch {
      r = false;
    }
    registeredCache.set(op, r);
  }
  return r;
}

/** True when `op` is one of the records above and the IR registry does not (yet) know it. */
export function isPendingBackwardOp(op: string): boolean {
  return op in BACKWARD_OPS && !registered(op);
}

/**
 * A node of a forward op (through the registry) or of a backward op (through the registry once
 * registered, else by the record above), attributed to `like`'s source line and scope.
 */
export function mkBackwardNode(like: Node, op: string, inputs: readonly Node[], attrs: Attrs = {}, explicit?: TensorType): Node {
  if (!isPendingBackwardOp(op)) return mkNodeLike(like, op as Node["op"], inputs, attrs, explicit);
  const def = BACKWARD_OPS[op]!;
  let type: TensorType;
  try {
    const [lo, hi] = def.arity;
    if (inputs.length < lo || inputs.length > hi) throw new ShapeError(`takes ${lo === hi ? lo : `${lo}..${hi}`} inputs, got ${inputs.length}`);
    type = def.infer(inputs, attrs);
  } catch (e) {
    if (e instanceof ShapeError) throw new StrataError(`autodiff: ${op} for ${like.op}${like.scope ? ` in ${like.scope}` : ""}: ${e.message}`, like.src);
    throw e;
  }
  const shape = Object.freeze([...type.shape]);
  return Object.freeze({
    key: contentKey(op as Node["op"], type.dtype, shape, attrs, inputs),
    op: op as Node["op"],
    dtype: type.dtype,
    shape,
    inputs: Object.freeze([...inputs]),
    attrs: Object.freeze({ ...attrs }),
    src: like.src,
    scope: like.scope,
  });
}

/**
 * Evaluate a graph that may hold backward ops the registry does not know yet: in waves, each wave
 * evaluating (with the interpreter) the inputs of the pending backward nodes whose own pending
 * ancestors are done, then running their references; finished nodes, and registered values later
 * waves read, re-enter as bound inputs (so the forward runs once).
 * With no pending op this is exactly `evaluate`.
 */
export function evaluateWithBackward(g: Graph, opts: EvaluateOptions = {}): Record<string, Tensor> {
  const order = topo(Object.values(g.outputs));
  const pending = order.filter((n) => isPendingBackwardOp(n.op));
  if (pending.length === 0) return evaluate(g, opts);
  // wave of a pending node = 1 + the largest wave among pending nodes it depends on
  const reach = new Map<string, number>(); // highest wave a node depends on
  const wave = new Map<string, number>();
  for (const n of order) {
    let w = 0;
    for (const x of n.inputs) w = Math.max(w, wave.get(x.key) ?? reach.get(x.key) ?? 0);
    if (isPendingBackwardOp(n.op)) wave.set(n.key, w + 1);
    else reach.set(n.key, w);
  }
  const bound: Record<string, Tensor> = { ...(opts.inputs ?? {}) };
  const done = new Map<string, Node>(); // pending node key → input node standing for its value
  const bindings = opts.bindings ?? {};
  const precision = opts.precision ?? "f64";
  const substitute = (roots: readonly Node[]): Node[] => {
    const memo = new Map<string, Node>();
    for (const n of topo(roots)) {
      const d = done.get(n.key);
      if (d) {
        memo.set(n.key, d);
        continue;
      }
      const ins = n.inputs.map((x) => memo.get(x.key)!);
      const same = ins.every((x, i) => x === n.inputs[i]);
      if (same) memo.set(n.key, n);
      else if (isPendingBackwardOp(n.op)) memo.set(n.key, mkBackwardNode(n, n.op, ins, n.attrs));
      else memo.set(n.key, withInputs(n, ins));
    }
    return roots.map((r) => memo.get(r.key)!);
  };
  // Registered values read across waves (the forward activations the backward reads, say) are
  // evaluated once, in the first wave that can, and re-enter later waves as bound inputs.
  const level = (n: Node) => wave.get(n.key) ?? reach.get(n.key)!;
  const frontier = new Map<number, Node[]>();
  const inFrontier = new Set<string>();
  for (const c of order)
    for (const x of c.inputs) {
      if (wave.has(x.key) || inFrontier.has(x.key) || x.op === "input" || x.op === "param" || level(c) <= reach.get(x.key)!) continue;
      inFrontier.add(x.key);
      const r = reach.get(x.key)!;
      frontier.set(r, [...(frontier.get(r) ?? []), x]);
    }
  const bindValue = (n: Node, v: Tensor, prefix: string) => {
    const name = `${prefix}:${n.key}`;
    bound[name] = v;
    done.set(n.key, mkNode("input", [], { name }, { dtype: n.dtype, shape: n.shape }));
  };
  const maxWave = Math.max(...wave.values());
  for (let w = 1; w <= maxWave; w++) {
    const nodes = pending.filter((n) => wave.get(n.key) === w);
    const want = new Map([...nodes.flatMap((n) => n.inputs), ...(frontier.get(w - 1) ?? [])].map((x) => [x.key, x]));
    const argNodes = [...want.values()];
    const subst = substitute(argNodes);
    const vals = evaluate(Object.fromEntries(subst.map((s, i) => [argNodes[i]!.key, s])), { ...opts, inputs: bound });
    for (const x of argNodes) if (!done.has(x.key) && x.op !== "input" && x.op !== "param") bindValue(x, vals[x.key]!, "@value");
    for (const n of nodes) {
      const def = BACKWARD_OPS[n.op]!;
      const outShape = evalShape(n.shape, bindings);
      let v: Tensor;
      try {
        v = def.ref(n.inputs.map((x) => vals[x.key]!), n.attrs, { precision, outShape, ssdMode: opts.ssdMode ?? "chunked" });
      } catch (e) {
        throw new StrataError(`evaluate: ${n.op}${n.scope ? ` in ${n.scope}` : ""} failed: ${(e as Error).message}`, n.src);
      }
      bindValue(n, v, "@backward");
    }
  }
  const names = Object.keys(g.outputs);
  const outs = substitute(names.map((k) => g.outputs[k]!));
  return evaluate(Object.fromEntries(names.map((k, i) => [k, outs[i]!])), { ...opts, inputs: bound });
}
