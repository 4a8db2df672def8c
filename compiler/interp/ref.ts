/**
 * Reference implementations of every op (the semantics). See ../ir/ops.ts for each op's contract.
 *
 * Conventions: row-major buffers; outputs are allocated at ctx.precision (f32 mode rounds each
 * op's output to float32, internal accumulation is always in double); integer tensors (ids,
 * positions, targets) are exact floats. Only type imports from ../ir here: ops.ts imports this
 * module, so a runtime import of the IR would be circular.
 */
import type { Attrs } from "../ir/node.js";
import { erf, erfc } from "./erf.js";
import { alloc, numel, type RefCtx, type RefFn, type Tensor } from "./tensor.js";

// ---- helpers ------------------------------------------------------------------------------

const shp = (s: readonly number[]) => `[${s.join(", ")}]`;

function fail(op: string, msg: string): never {
  throw new Error(`${op}: ${msg}`);
}

function numAttr(attrs: Attrs, k: string, dflt: number): number {
  const v = attrs[k];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`attribute '${k}' must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

function needArity(op: string, inputs: readonly Tensor[], lo: number, hi: number): void {
  if (inputs.length < lo || inputs.length > hi) fail(op, `takes ${lo === hi ? lo : `${lo}..${hi}`} inputs, got ${inputs.length}`);
  for (let i = 0; i < inputs.length; i++) {
    const t = inputs[i]!;
    if (t.data.length !== numel(t.shape)) fail(op, `input ${i} has ${t.data.length} values for shape ${shp(t.shape)}`);
  }
}

function needShape(op: string, what: string, t: Tensor, want: readonly number[]): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) fail(op, `${what} must have shape ${shp(want)}, got ${shp(t.shape)}`);
}

function needRank(op: string, what: string, t: Tensor, r: number, layout: string): void {
  if (t.shape.length !== r) fail(op, `${what} must have rank ${r} ${layout}, got ${shp(t.shape)}`);
}

function checkOut(op: string, ctx: RefCtx, want: readonly number[]): void {
  if (ctx.outShape.length !== want.length || ctx.outShape.some((d, i) => d !== want[i]))
    fail(op, `output shape ${shp(ctx.outShape)} does not match the shape ${shp(want)} computed from the inputs`);
}

function toIndex(op: string, what: string, v: number, size: number): number {
  if (!Number.isInteger(v) || v < 0 || v >= size) fail(op, `${what} ${v} is out of range [0, ${size})`);
  return v;
}

// ---- sources ------------------------------------------------------------------------------

export const source: RefFn = () => {
  throw new Error("source ops (param, input) are bound by the interpreter, never computed: bind the value by name");
};

export const arange: RefFn = (_inputs, _attrs, ctx) => {
  const out = alloc(ctx.outShape, ctx.precision);
  for (let i = 0; i < out.data.length; i++) out.data[i] = i;
  return out;
};

export const full: RefFn = (_inputs, attrs, ctx) => {
  const v = attrs.value;
  if (typeof v !== "number") fail("full", `attribute 'value' must be a number, got ${JSON.stringify(v)}`);
  const out = alloc(ctx.outShape, ctx.precision);
  out.data.fill(v);
  return out;
};

// ---- elementwise --------------------------------------------------------------------------

function unary(name: string, f: (x: number, attrs: Attrs) => number): RefFn {
  return (inputs, attrs, ctx) => {
    needArity(name, inputs, 1, 1);
    const x = inputs[0]!;
    checkOut(name, ctx, x.shape);
    const out = alloc(ctx.outShape, ctx.precision);
    const xd = x.data;
    const od = out.data;
    for (let i = 0; i < od.length; i++) od[i] = f(xd[i]!, attrs);
    return out;
  };
}

const sigm = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function geluExact(x: number): number {
  // 0.5·x·(1 + erf(x/√2)); for x < 0 use erfc to keep relative accuracy in the tail
  return x >= 0 ? 0.5 * x * (1 + erf(x * SQRT1_2)) : 0.5 * x * erfc(-x * SQRT1_2);
}

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
}

export const neg = unary("neg", (x) => -x);
export const exp = unary("exp", Math.exp);
export const log = unary("log", Math.log);
export const sqrt = unary("sqrt", Math.sqrt);
export const rsqrt = unary("rsqrt", (x) => 1 / Math.sqrt(x));
export const square = unary("square", (x) => x * x);
export const tanh = unary("tanh", Math.tanh);
export const sigmoid = unary("sigmoid", sigm);
export const silu = unary("silu", (x) => x * sigm(x));
export const softplus = unary("softplus", (x) => (x > 20 ? x : Math.log1p(Math.exp(x))));
export const relu = unary("relu", (x) => (x > 0 ? x : 0));
export const relu2 = unary("relu2", (x) => (x > 0 ? x * x : 0));
export const mish = unary("mish", (x) => x * Math.tanh(x > 20 ? x : Math.log1p(Math.exp(x))));
export const scale = unary("scale", (x, a) => x * numAttr(a, "value", NaN));
export const addScalar = unary("addScalar", (x, a) => x + numAttr(a, "value", NaN));
export const cast = unary("cast", (x) => x);

export const gelu: RefFn = (inputs, attrs, ctx) => {
  const approx = attrs.approximate;
  if (approx !== undefined && approx !== null && approx !== "none" && approx !== "tanh")
    fail("gelu", `attribute 'approximate' must be 'none' or 'tanh', got ${JSON.stringify(approx)}`);
  return unary("gelu", approx === "tanh" ? geluTanh : geluExact)(inputs, attrs, ctx);
};

/** Output shape of NumPy broadcasting of a and b (throws when they do not broadcast). */
function broadcastShape(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else fail(op, `shapes ${shp(a)} and ${shp(b)} do not broadcast (axis ${i}: ${x} vs ${y})`);
  }
  return out;
}

/** Strides of `s` aligned to the (longer) output shape, 0 on broadcast axes. */
function bstrides(s: readonly number[], out: readonly number[]): number[] {
  const n = out.length;
  const st = new Array<number>(n).fill(0);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    const oi = n - s.length + i;
    st[oi] = s[i] === 1 ? 0 : acc;
    acc *= s[i]!;
  }
  return st;
}

function binary(name: string, f: (a: number, b: number) => number): RefFn {
  return (inputs, _attrs, ctx) => {
    needArity(name, inputs, 2, 2);
    const [a, b] = inputs as [Tensor, Tensor];
    const shape = broadcastShape(name, a.shape, b.shape);
    checkOut(name, ctx, shape);
    const out = alloc(shape, ctx.precision);
    const od = out.data;
    const ad = a.data;
    const bd = b.data;
    const n = od.length;
    if (ad.length === n && bd.length === n) {
      for (let i = 0; i < n; i++) od[i] = f(ad[i]!, bd[i]!);
      return out;
    }
    if (n === 0) return out;
    const r = shape.length;
    const sa = bstrides(a.shape, shape);
    const sb = bstrides(b.shape, shape);
    // iterate the last axis in an inner loop, odometer over the others
    const last = shape[r - 1]!;
    const la = sa[r - 1]!;
    const lb = sb[r - 1]!;
    const idx = new Array<number>(r).fill(0);
    let ia = 0;
    let ib = 0;
    for (let o = 0; o < n; o += last) {
      for (let j = 0; j < last; j++) od[o + j] = f(ad[ia + j * la]!, bd[ib + j * lb]!);
      for (let ax = r - 2; ax >= 0; ax--) {
        idx[ax]!++;
        ia += sa[ax]!;
        ib += sb[ax]!;
        if (idx[ax]! < shape[ax]!) break;
        ia -= sa[ax]! * shape[ax]!;
        ib -= sb[ax]! * shape[ax]!;
        idx[ax] = 0;
      }
    }
    return out;
  };
}

export const add = binary("add", (a, b) => a + b);
export const sub = binary("sub", (a, b) => a - b);
export const mul = binary("mul", (a, b) => a * b);
export const div = binary("div", (a, b) => a / b);

// ---- norms and reductions -----------------------------------------------------------------

function lastDimOp(op: string, x: Tensor, w: Tensor | undefined, what = "weight"): { rows: number; d: number } {
  if (x.shape.length < 1) fail(op, `input must have rank ≥ 1, got ${shp(x.shape)}`);
  const d = x.shape[x.shape.length - 1]!;
  if (w) needShape(op, what, w, [d]);
  return { rows: d === 0 ? 0 : x.data.length / d, d };
}

export const rmsnorm: RefFn = (inputs, attrs, ctx) => {
  needArity("rmsnorm", inputs, 2, 2);
  const [x, w] = inputs as [Tensor, Tensor];
  const { rows, d } = lastDimOp("rmsnorm", x, w);
  checkOut("rmsnorm", ctx, x.shape);
  const eps = numAttr(attrs, "eps", 1e-5);
  const oneP = attrs.oneP === true;
  const out = alloc(x.shape, ctx.precision);
  const xd = x.data, wd = w.data, od = out.data;
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let ss = 0;
    for (let i = 0; i < d; i++) ss += xd[o + i]! * xd[o + i]!;
    const inv = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) od[o + i] = xd[o + i]! * inv * (oneP ? 1 + wd[i]! : wd[i]!);
  }
  return out;
};

export const layernorm: RefFn = (inputs, attrs, ctx) => {
  needArity("layernorm", inputs, 2, 3);
  const [x, w, b] = inputs as [Tensor, Tensor, Tensor | undefined];
  const { rows, d } = lastDimOp("layernorm", x, w);
  if (b) needShape("layernorm", "bias", b, [d]);
  checkOut("layernorm", ctx, x.shape);
  const eps = numAttr(attrs, "eps", 1e-5);
  const oneP = attrs.oneP === true;
  const out = alloc(x.shape, ctx.precision);
  const xd = x.data, wd = w.data, od = out.data, bd = b?.data;
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let s = 0;
    for (let i = 0; i < d; i++) s += xd[o + i]!;
    const mean = s / d;
    let v = 0;
    for (let i = 0; i < d; i++) {
      const c = xd[o + i]! - mean;
      v += c * c;
    }
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let i = 0; i < d; i++) {
      const y = (xd[o + i]! - mean) * inv * (oneP ? 1 + wd[i]! : wd[i]!);
      od[o + i] = bd ? y + bd[i]! : y;
    }
  }
  return out;
};

export const gatedRmsnorm: RefFn = (inputs, attrs, ctx) => {
  needArity("gatedRmsnorm", inputs, 3, 3);
  const [x, z, w] = inputs as [Tensor, Tensor, Tensor];
  const { rows, d } = lastDimOp("gatedRmsnorm", x, w);
  needShape("gatedRmsnorm", "gate z", z, x.shape);
  checkOut("gatedRmsnorm", ctx, x.shape);
  const eps = numAttr(attrs, "eps", 1e-5);
  const g = numAttr(attrs, "groupSize", d);
  if (!Number.isInteger(g) || g <= 0 || d % g !== 0) fail("gatedRmsnorm", `groupSize ${g} must be a positive divisor of the feature dim ${d}`);
  const oneP = attrs.oneP === true;
  const out = alloc(x.shape, ctx.precision);
  const xd = x.data, zd = z.data, wd = w.data, od = out.data;
  const y = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    for (let i = 0; i < d; i++) {
      const zv = zd[o + i]!;
      y[i] = xd[o + i]! * zv * sigm(zv);
    }
    for (let g0 = 0; g0 < d; g0 += g) {
      let ss = 0;
      for (let i = g0; i < g0 + g; i++) ss += y[i]! * y[i]!;
      const inv = 1 / Math.sqrt(ss / g + eps);
      for (let i = g0; i < g0 + g; i++) od[o + i] = y[i]! * inv * (oneP ? 1 + wd[i]! : wd[i]!);
    }
  }
  return out;
};

export const softmax: RefFn = (inputs, _attrs, ctx) => {
  needArity("softmax", inputs, 1, 1);
  const x = inputs[0]!;
  const { rows, d } = lastDimOp("softmax", x, undefined);
  checkOut("softmax", ctx, x.shape);
  const out = alloc(x.shape, ctx.precision);
  const xd = x.data, od = out.data;
  const e = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let m = -Infinity;
    for (let i = 0; i < d; i++) m = Math.max(m, xd[o + i]!);
    let s = 0;
    for (let i = 0; i < d; i++) s += e[i] = Math.exp(xd[o + i]! - m);
    for (let i = 0; i < d; i++) od[o + i] = e[i]! / s;
  }
  return out;
};

export const reduceMean: RefFn = (inputs, _attrs, ctx) => {
  needArity("reduceMean", inputs, 1, 1);
  const x = inputs[0]!;
  checkOut("reduceMean", ctx, []);
  const out = alloc([], ctx.precision);
  let s = 0;
  for (let i = 0; i < x.data.length; i++) s += x.data[i]!;
  out.data[0] = s / x.data.length;
  return out;
};

// ---- anchors ------------------------------------------------------------------------------

export const linear: RefFn = (inputs, _attrs, ctx) => {
  needArity("linear", inputs, 2, 2);
  const [x, w] = inputs as [Tensor, Tensor];
  needRank("linear", "weight", w, 2, "[out, in]");
  const [n, k] = w.shape as [number, number];
  if (x.shape.length < 1 || x.shape[x.shape.length - 1] !== k)
    fail("linear", `weight is [out, in] = ${shp(w.shape)} but the input's shape is ${shp(x.shape)} (last dim must be ${k})`);
  const shape = [...x.shape.slice(0, -1), n];
  checkOut("linear", ctx, shape);
  const out = alloc(shape, ctx.precision);
  const xd = x.data, wd = w.data, od = out.data;
  const m = k === 0 ? numel(x.shape.slice(0, -1)) : xd.length / k;
  for (let r = 0; r < m; r++) {
    const xo = r * k;
    for (let j = 0; j < n; j++) {
      const wo = j * k;
      let s = 0;
      for (let i = 0; i < k; i++) s += xd[xo + i]! * wd[wo + i]!;
      od[r * n + j] = s;
    }
  }
  return out;
};

export const matmul: RefFn = (inputs, _attrs, ctx) => {
  needArity("matmul", inputs, 2, 2);
  const [a, b] = inputs as [Tensor, Tensor];
  const r = a.shape.length;
  if (r < 2 || b.shape.length !== r) fail("matmul", `need equal ranks ≥ 2, got ${shp(a.shape)} and ${shp(b.shape)}`);
  for (let i = 0; i < r - 2; i++) if (a.shape[i] !== b.shape[i]) fail("matmul", `batch dim ${i} differs: ${shp(a.shape)} vs ${shp(b.shape)}`);
  const M = a.shape[r - 2]!, K = a.shape[r - 1]!, N = b.shape[r - 1]!;
  if (b.shape[r - 2] !== K) fail("matmul", `contraction dim: a is ${shp(a.shape)}, b is ${shp(b.shape)}`);
  const shape = [...a.shape.slice(0, -1), N];
  checkOut("matmul", ctx, shape);
  const batch = numel(a.shape.slice(0, -2));
  const out = alloc(shape, ctx.precision);
  const acc = new Float64Array(N);
  const ad = a.data, bd = b.data, od = out.data;
  for (let bi = 0; bi < batch; bi++) {
    const ao = bi * M * K, bo = bi * K * N, oo = bi * M * N;
    for (let i = 0; i < M; i++) {
      acc.fill(0);
      for (let kk = 0; kk < K; kk++) {
        const av = ad[ao + i * K + kk]!;
        const br = bo + kk * N;
        for (let j = 0; j < N; j++) acc[j]! += av * bd[br + j]!;
      }
      for (let j = 0; j < N; j++) od[oo + i * N + j] = acc[j]!;
    }
  }
  return out;
};

export const embedding: RefFn = (inputs, _attrs, ctx) => {
  needArity("embedding", inputs, 2, 2);
  const [ids, table] = inputs as [Tensor, Tensor];
  needRank("embedding", "table", table, 2, "[vocab, d]");
  const [vocab, d] = table.shape as [number, number];
  const shape = [...ids.shape, d];
  checkOut("embedding", ctx, shape);
  const out = alloc(shape, ctx.precision);
  for (let i = 0; i < ids.data.length; i++) {
    const id = ids.data[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocab)
      fail("embedding", `token id ${id} (at flat position ${i}) is out of range for vocab size ${vocab}`);
    out.data.set(table.data.subarray(id * d, id * d + d), i * d);
  }
  return out;
};

export const crossEntropy: RefFn = (inputs, _attrs, ctx) => {
  needArity("crossEntropy", inputs, 2, 2);
  const [logits, targets] = inputs as [Tensor, Tensor];
  if (logits.shape.length < 1) fail("crossEntropy", `logits must have rank ≥ 1, got ${shp(logits.shape)}`);
  const shape = logits.shape.slice(0, -1);
  needShape("crossEntropy", "targets", targets, shape);
  checkOut("crossEntropy", ctx, shape);
  const V = logits.shape[logits.shape.length - 1]!;
  const out = alloc(shape, ctx.precision);
  const ld = logits.data;
  for (let r = 0; r < out.data.length; r++) {
    const t = toIndex("crossEntropy", "target", targets.data[r]!, V);
    const o = r * V;
    let m = -Infinity;
    for (let i = 0; i < V; i++) m = Math.max(m, ld[o + i]!);
    let s = 0;
    for (let i = 0; i < V; i++) s += Math.exp(ld[o + i]! - m);
    out.data[r] = m + Math.log(s) - ld[o + t]!;
  }
  return out;
};

/** Element of concat(prefix or zeros, x) along time at padded index tp (0 ≤ tp < K−1+T). */
function convCheck(op: string, x: Tensor, k: number, prefix: Tensor | undefined): [number, number, number] {
  needRank(op, "input", x, 3, "[B, T, C]");
  const [B, T, C] = x.shape as [number, number, number];
  if (!Number.isInteger(k) || k < 1) fail(op, `kernel size ${k} must be a positive integer`);
  if (prefix) needShape(op, "prefix state", prefix, [B, k - 1, C]);
  return [B, T, C];
}

export const conv1d: RefFn = (inputs, _attrs, ctx) => {
  needArity("conv1d", inputs, 3, 4);
  const [x, w, bias, prefix] = inputs as [Tensor, Tensor, Tensor, Tensor | undefined];
  needRank("conv1d", "weight", w, 2, "[C, K]");
  const K = w.shape[1]!;
  const [B, T, C] = convCheck("conv1d", x, K, prefix);
  needShape("conv1d", "weight", w, [C, K]);
  needShape("conv1d", "bias", bias, [C]);
  checkOut("conv1d", ctx, x.shape);
  const out = alloc(x.shape, ctx.precision);
  const xd = x.data, wd = w.data, bd = bias.data, pd = prefix?.data, od = out.data;
  const P = K - 1;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const oo = (b * T + t) * C;
      for (let c = 0; c < C; c++) {
        let s = bd[c]!;
        for (let kk = 0; kk < K; kk++) {
          const tp = t + kk; // index into the padded sequence of length P + T
          let v: number;
          if (tp >= P) v = xd[(b * T + tp - P) * C + c]!;
          else v = pd ? pd[(b * P + tp) * C + c]! : 0;
          s += wd[c * K + kk]! * v;
        }
        od[oo + c] = s;
      }
    }
  }
  return out;
};

export const convState: RefFn = (inputs, attrs, ctx) => {
  needArity("convState", inputs, 1, 2);
  const [x, prefix] = inputs as [Tensor, Tensor | undefined];
  const K = numAttr(attrs, "k", NaN);
  const [B, T, C] = convCheck("convState", x, K, prefix);
  const P = K - 1;
  const shape = [B, P, C];
  checkOut("convState", ctx, shape);
  const out = alloc(shape, ctx.precision);
  const xd = x.data, pd = prefix?.data, od = out.data;
  for (let b = 0; b < B; b++)
    for (let r = 0; r < P; r++) {
      const tp = T + r; // the last P rows of the padded sequence (length P + T)
      for (let c = 0; c < C; c++) {
        let v: number;
        if (tp >= P) v = xd[(b * T + tp - P) * C + c]!;
        else v = pd ? pd[(b * P + tp) * C + c]! : 0;
        od[(b * P + r) * C + c] = v;
      }
    }
  return out;
};

export const rope: RefFn = (inputs, attrs, ctx) => {
  needArity("rope", inputs, 2, 2);
  const [x, pos] = inputs as [Tensor, Tensor];
  needRank("rope", "input", x, 4, "[B, T, H, D]");
  const [B, T, H, D] = x.shape as [number, number, number, number];
  needShape("rope", "positions", pos, [T]);
  checkOut("rope", ctx, x.shape);
  const rot = Math.round(D * numAttr(attrs, "fraction", 1));
  if (rot % 2 !== 0 || rot <= 0 || rot > D) fail("rope", `rotary dims = headDim·fraction = ${rot} must be a positive even number ≤ ${D}`);
  const theta = numAttr(attrs, "theta", 10000);
  const half = rot / 2;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = Math.pow(theta, (-2 * i) / rot);
  const cos = new Float64Array(T * half);
  const sin = new Float64Array(T * half);
  for (let t = 0; t < T; t++) {
    const p = pos.data[t]!;
    for (let i = 0; i < half; i++) {
      const a = p * invFreq[i]!;
      cos[t * half + i] = Math.cos(a);
      sin[t * half + i] = Math.sin(a);
    }
  }
  const out = alloc(x.shape, ctx.precision);
  const xd = x.data, od = out.data;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < H; h++) {
        const o = ((b * T + t) * H + h) * D;
        for (let i = 0; i < half; i++) {
          const c = cos[t * half + i]!, s = sin[t * half + i]!;
          const x1 = xd[o + i]!, x2 = xd[o + i + half]!;
          od[o + i] = x1 * c - x2 * s;
          od[o + i + half] = x2 * c + x1 * s;
        }
        for (let i = rot; i < D; i++) od[o + i] = xd[o + i]!;
      }
  return out;
};

export const attention: RefFn = (inputs, attrs, ctx) => {
  needArity("attention", inputs, 3, 3);
  const [q, k, v] = inputs as [Tensor, Tensor, Tensor];
  needRank("attention", "q", q, 4, "[B, T, H, D]");
  needRank("attention", "k", k, 4, "[B, S, Hk, D]");
  needShape("attention", "v", v, k.shape);
  const [B, T, H, D] = q.shape as [number, number, number, number];
  const [Bk, S, Hk, Dk] = k.shape as [number, number, number, number];
  if (Bk !== B || Dk !== D) fail("attention", `k ${shp(k.shape)} does not match q ${shp(q.shape)} in batch or head dim`);
  if (Hk <= 0 || H % Hk !== 0) fail("attention", `kv heads (${Hk}) must divide query heads (${H})`);
  checkOut("attention", ctx, q.shape);
  const sc = typeof attrs.scale === "number" ? attrs.scale : 1 / Math.sqrt(D);
  const rep = H / Hk;
  const out = alloc(q.shape, ctx.precision);
  const qd = q.data, kd = k.data, vd = v.data, od = out.data;
  const p = new Float64Array(S);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const hk = Math.floor(h / rep);
      for (let i = 0; i < T; i++) {
        const qo = ((b * T + i) * H + h) * D;
        const last = Math.min(S - 1, i + S - T); // keys j ≤ i + S − T
        const oo = qo;
        if (last < 0) {
          for (let d = 0; d < D; d++) od[oo + d] = 0; // no visible key: defined as 0
          continue;
        }
        let m = -Infinity;
        for (let j = 0; j <= last; j++) {
          const ko = ((b * S + j) * Hk + hk) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += qd[qo + d]! * kd[ko + d]!;
          s *= sc;
          p[j] = s;
          if (s > m) m = s;
        }
        let z = 0;
        acc.fill(0);
        for (let j = 0; j <= last; j++) {
          const e = Math.exp(p[j]! - m);
          z += e;
          const vo = ((b * S + j) * Hk + hk) * D;
          for (let d = 0; d < D; d++) acc[d]! += e * vd[vo + d]!;
        }
        for (let d = 0; d < D; d++) od[oo + d] = acc[d]! / z;
      }
    }
  return out;
};

// ---- state-space scans --------------------------------------------------------------------

interface SsdDims {
  B: number;
  T: number;
  H: number;
  P: number;
  G: number;
  N: number;
}

function ssdCheck(op: string, x: Tensor, dt: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor | undefined, h0: Tensor | undefined): SsdDims {
  needRank(op, "x", x, 4, "[B, T, H, P]");
  const [B, T, H, P] = x.shape as [number, number, number, number];
  needShape(op, "dt", dt, [B, T, H]);
  needShape(op, "A", A, [H]);
  needRank(op, "B", Bm, 4, "[B, T, G, N]");
  const G = Bm.shape[2]!, N = Bm.shape[3]!;
  needShape(op, "B", Bm, [B, T, G, N]);
  if (Cm) needShape(op, "C", Cm, [B, T, G, N]);
  if (G <= 0 || H % G !== 0) fail(op, `groups (${G}) must divide heads (${H})`);
  if (h0) needShape(op, "h0", h0, [B, H, P, N]);
  return { B, T, H, P, G, N };
}

/**
 * Plain recurrence for one (b, h): h_t = exp(dt_t·A)·h_{t−1} + dt_t·x_t⊗B_t, y_t = h_t·C_t.
 * `state` (P×N) holds h0 on entry and the final state on exit; y (if given) gets the readout.
 */
function ssdRecurrent(dm: SsdDims, b: number, h: number, x: Tensor, dt: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor | undefined, state: Float64Array, y: Tensor | undefined): void {
  const { T, H, P, G, N } = dm;
  const g = Math.floor(h / (H / G));
  const a = A.data[h]!;
  const xd = x.data, dd = dt.data, bd = Bm.data, cd = Cm?.data;
  for (let t = 0; t < T; t++) {
    const dtv = dd[(b * T + t) * H + h]!;
    const decay = Math.exp(dtv * a);
    const xo = ((b * T + t) * H + h) * P;
    const bo = ((b * T + t) * G + g) * N;
    for (let p = 0; p < P; p++) {
      const u = dtv * xd[xo + p]!;
      const so = p * N;
      let acc = 0;
      for (let n = 0; n < N; n++) {
        const s = decay * state[so + n]! + u * bd[bo + n]!;
        state[so + n] = s;
        if (cd) acc += s * cd[bo + n]!;
      }
      if (y) y.data[xo + p] = acc;
    }
  }
}

/**
 * The SSD dual (chunked) form for one (b, h), chunk length L:
 *  1. per chunk, cumulative log-decay cum_i = Σ_{k≤i} dt_k·A and the segment sums
 *     seg[i,j] = Σ_{k=j+1..i} dt_k·A (j ≤ i);
 *  2. per chunk, the state the chunk builds from zero: S_c = Σ_j exp(cum_last − cum_j)·dt_j·x_j⊗B_j;
 *  3. inter-chunk passing: H_c = exp(cum_last(c))·H_{c−1} + S_c (H_{−1} = h0);
 *  4. outputs y_i = Σ_{j≤i} (C_i·B_j)·exp(seg[i,j])·dt_j·x_j  +  exp(cum_i)·C_i·H_{c−1}.
 */
function ssdChunked(dm: SsdDims, chunk: number, b: number, h: number, x: Tensor, dt: Tensor, A: Tensor, Bm: Tensor, Cm: Tensor | undefined, state: Float64Array, y: Tensor | undefined): void {
  const { T, H, P, G, N } = dm;
  const g = Math.floor(h / (H / G));
  const a = A.data[h]!;
  const xd = x.data, dd = dt.data, bd = Bm.data, cd = Cm?.data;
  const nChunks = Math.ceil(T / chunk);
  const PN = P * N;
  // 1–2: chunk-local states and total chunk decays (all chunks independent)
  const local = new Float64Array(nChunks * PN);
  const chunkDecay = new Float64Array(nChunks);
  const cumAll = new Float64Array(T); // cumulative log decay within each chunk, inclusive
  for (let c = 0; c < nChunks; c++) {
    const t0 = c * chunk;
    const t1 = Math.min(T, t0 + chunk);
    let cum = 0;
    for (let t = t0; t < t1; t++) {
      cum += dd[(b * T + t) * H + h]! * a;
      cumAll[t] = cum;
    }
    chunkDecay[c] = cum;
    const lo = c * PN;
    for (let j = t0; j < t1; j++) {
      // decay from step j to the chunk's end: Σ_{k=j+1..t1−1} dt_k·A
      let segEnd = 0;
      for (let k = j + 1; k < t1; k++) segEnd += dd[(b * T + k) * H + h]! * a;
      const w = Math.exp(segEnd) * dd[(b * T + j) * H + h]!;
      const xo = ((b * T + j) * H + h) * P;
      const bo = ((b * T + j) * G + g) * N;
      for (let p = 0; p < P; p++) {
        const u = w * xd[xo + p]!;
        for (let n = 0; n < N; n++) local[lo + p * N + n]! += u * bd[bo + n]!;
      }
    }
  }
  // 3: inter-chunk state passing; keep the state entering each chunk for the readout
  const entering = y ? new Float64Array(nChunks * PN) : undefined;
  for (let c = 0; c < nChunks; c++) {
    if (entering) entering.set(state, c * PN);
    const dec = Math.exp(chunkDecay[c]!);
    const lo = c * PN;
    for (let i = 0; i < PN; i++) state[i] = dec * state[i]! + local[lo + i]!;
  }
  if (!y || !cd || !entering) return;
  // 4: outputs, intra-chunk (quadratic, masked by the decay matrix) + inter-chunk
  // a chunk longer than the sequence holds T steps (the attribute may be any positive integer)
  const seg = new Float64Array(Math.min(chunk, T));
  const cb = new Float64Array(Math.min(chunk, T));
  const accP = new Float64Array(P);
  for (let c = 0; c < nChunks; c++) {
    const t0 = c * chunk;
    const t1 = Math.min(T, t0 + chunk);
    const eo = c * PN;
    for (let i = t0; i < t1; i++) {
      const co = ((b * T + i) * G + g) * N;
      // L[i,j] = exp(Σ_{k=j+1..i} dt_k·A), computed as a running segment sum from i down to t0
      let s = 0;
      for (let j = i; j >= t0; j--) {
        seg[j - t0] = Math.exp(s) * dd[(b * T + j) * H + h]!; // L[i,j]·dt_j
        s += dd[(b * T + j) * H + h]! * a;
        const bo = ((b * T + j) * G + g) * N;
        let dot = 0;
        for (let n = 0; n < N; n++) dot += cd[co + n]! * bd[bo + n]!;
        cb[j - t0] = dot;
      }
      const inter = Math.exp(cumAll[i]!);
      const yo = ((b * T + i) * H + h) * P;
      accP.fill(0);
      for (let j = t0; j <= i; j++) {
        const wj = cb[j - t0]! * seg[j - t0]!; // (C_i·B_j)·L[i,j]·dt_j
        const xo = ((b * T + j) * H + h) * P;
        for (let p = 0; p < P; p++) accP[p]! += wj * xd[xo + p]!;
      }
      for (let p = 0; p < P; p++) {
        let st = 0;
        for (let n = 0; n < N; n++) st += cd[co + n]! * entering[eo + p * N + n]!;
        y.data[yo + p] = accP[p]! + inter * st;
      }
    }
  }
}

function ssdRun(op: string, inputs: readonly Tensor[], attrs: Attrs, ctx: RefCtx, withY: boolean): Tensor {
  const [x, dt, A, Bm] = inputs as [Tensor, Tensor, Tensor, Tensor];
  const Cm = withY ? inputs[4] : undefined;
  const h0 = withY ? inputs[5] : inputs[4];
  const dm = ssdCheck(op, x, dt, A, Bm, Cm, h0);
  const { B, H, P, N } = dm;
  const chunk = numAttr(attrs, "chunk", 64);
  if (!Number.isInteger(chunk) || chunk < 1) fail(op, `chunk ${chunk} must be a positive integer`);
  const outShape = withY ? x.shape : [B, H, P, N];
  checkOut(op, ctx, outShape);
  const out = alloc(outShape, ctx.precision);
  const y = withY ? alloc(x.shape, "f64") : undefined;
  const PN = P * N;
  const state = new Float64Array(PN);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const so = (b * H + h) * PN;
      if (h0) for (let i = 0; i < PN; i++) state[i] = h0.data[so + i]!;
      else state.fill(0);
      if (ctx.ssdMode === "recurrent") ssdRecurrent(dm, b, h, x, dt, A, Bm, Cm, state, y);
      else ssdChunked(dm, chunk, b, h, x, dt, A, Bm, Cm, state, y);
      if (!withY) out.data.set(state, so);
    }
  if (y) out.data.set(y.data);
  return out;
}

export const ssdScan: RefFn = (inputs, attrs, ctx) => {
  needArity("ssdScan", inputs, 5, 6);
  return ssdRun("ssdScan", inputs, attrs, ctx, true);
};

export const ssdState: RefFn = (inputs, attrs, ctx) => {
  needArity("ssdState", inputs, 4, 5);
  return ssdRun("ssdState", inputs, attrs, ctx, false);
};

function selRun(op: string, inputs: readonly Tensor[], ctx: RefCtx, withY: boolean): Tensor {
  const [u, delta, A, Bm] = inputs as [Tensor, Tensor, Tensor, Tensor];
  const Cm = withY ? inputs[4] : undefined;
  const h0 = withY ? inputs[5] : inputs[4];
  needRank(op, "u", u, 3, "[B, T, D]");
  const [B, T, D] = u.shape as [number, number, number];
  needShape(op, "delta", delta, u.shape);
  needRank(op, "A", A, 2, "[D, N]");
  const N = A.shape[1]!;
  needShape(op, "A", A, [D, N]);
  needShape(op, "B", Bm, [B, T, N]);
  if (Cm) needShape(op, "C", Cm, [B, T, N]);
  if (h0) needShape(op, "h0", h0, [B, D, N]);
  const outShape = withY ? u.shape : [B, D, N];
  checkOut(op, ctx, outShape);
  const out = alloc(outShape, ctx.precision);
  const ud = u.data, dd = delta.data, ad = A.data, bd = Bm.data, cd = Cm?.data;
  const st = new Float64Array(D * N);
  for (let b = 0; b < B; b++) {
    const so = b * D * N;
    if (h0) for (let i = 0; i < D * N; i++) st[i] = h0.data[so + i]!;
    else st.fill(0);
    for (let t = 0; t < T; t++) {
      const bo = (b * T + t) * N;
      for (let d = 0; d < D; d++) {
        const dv = dd[(b * T + t) * D + d]!;
        const w = dv * ud[(b * T + t) * D + d]!;
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const s = Math.exp(dv * ad[d * N + n]!) * st[d * N + n]! + w * bd[bo + n]!;
          st[d * N + n] = s;
          if (cd) acc += s * cd[bo + n]!;
        }
        if (withY) out.data[(b * T + t) * D + d] = acc;
      }
    }
    if (!withY) out.data.set(st, so);
  }
  return out;
}

export const selectiveScan: RefFn = (inputs, _attrs, ctx) => {
  needArity("selectiveScan", inputs, 5, 6);
  return selRun("selectiveScan", inputs, ctx, true);
};

export const selectiveState: RefFn = (inputs, _attrs, ctx) => {
  needArity("selectiveState", inputs, 4, 5);
  return selRun("selectiveState", inputs, ctx, false);
};

// ---- views --------------------------------------------------------------------------------

export const reshape: RefFn = (inputs, _attrs, ctx) => {
  needArity("reshape", inputs, 1, 1);
  const x = inputs[0]!;
  if (numel(ctx.outShape) !== x.data.length) fail("reshape", `cannot reshape ${shp(x.shape)} (${x.data.length} elements) to ${shp(ctx.outShape)}`);
  const out = alloc(ctx.outShape, ctx.precision);
  out.data.set(x.data);
  return out;
};

export const slice: RefFn = (inputs, attrs, ctx) => {
  needArity("slice", inputs, 1, 1);
  const x = inputs[0]!;
  const axis = numAttr(attrs, "axis", NaN);
  const start = numAttr(attrs, "start", NaN);
  const end = numAttr(attrs, "end", NaN);
  if (!Number.isInteger(axis) || axis < 0 || axis >= x.shape.length) fail("slice", `axis ${axis} out of range for ${shp(x.shape)}`);
  const d = x.shape[axis]!;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > d)
    fail("slice", `slice [${start}, ${end}) is not inside axis ${axis} of size ${d}`);
  const shape = [...x.shape];
  shape[axis] = end - start;
  checkOut("slice", ctx, shape);
  const out = alloc(shape, ctx.precision);
  const outer = numel(x.shape.slice(0, axis));
  const inner = numel(x.shape.slice(axis + 1));
  const len = (end - start) * inner;
  for (let o = 0; o < outer; o++) {
    const src = (o * d + start) * inner;
    out.data.set(x.data.subarray(src, src + len), o * len);
  }
  return out;
};

export const concat: RefFn = (inputs, attrs, ctx) => {
  if (inputs.length < 1) fail("concat", "needs at least one input");
  needArity("concat", inputs, 1, inputs.length);
  const axis = numAttr(attrs, "axis", NaN);
  const x0 = inputs[0]!;
  const r = x0.shape.length;
  if (!Number.isInteger(axis) || axis < 0 || axis >= r) fail("concat", `axis ${axis} out of range for rank ${r}`);
  let total = 0;
  for (const [k, x] of inputs.entries()) {
    if (x.shape.length !== r || x.shape.some((d, i) => i !== axis && d !== x0.shape[i]))
      fail("concat", `input ${k} ${shp(x.shape)} does not match input 0 ${shp(x0.shape)} off axis ${axis}`);
    total += x.shape[axis]!;
  }
  const shape = [...x0.shape];
  shape[axis] = total;
  checkOut("concat", ctx, shape);
  const out = alloc(shape, ctx.precision);
  const outer = numel(x0.shape.slice(0, axis));
  const inner = numel(x0.shape.slice(axis + 1));
  const rowOut = total * inner;
  let off = 0;
  for (const x of inputs) {
    const len = x.shape[axis]! * inner;
    for (let o = 0; o < outer; o++) out.data.set(x.data.subarray(o * len, o * len + len), o * rowOut + off);
    off += len;
  }
  return out;
};

export const transpose: RefFn = (inputs, attrs, ctx) => {
  needArity("transpose", inputs, 1, 1);
  const x = inputs[0]!;
  const perm = attrs.perm;
  const r = x.shape.length;
  if (!Array.isArray(perm) || perm.length !== r || [...perm].map(Number).sort((a, b) => a - b).some((p, i) => p !== i))
    fail("transpose", `perm ${JSON.stringify(perm)} is not a permutation of ${r} axes`);
  const pm = perm as number[];
  const shape = pm.map((p) => x.shape[p]!);
  checkOut("transpose", ctx, shape);
  const out = alloc(shape, ctx.precision);
  const n = out.data.length;
  if (n === 0) return out;
  const inStride = new Array<number>(r);
  let acc = 1;
  for (let i = r - 1; i >= 0; i--) {
    inStride[i] = acc;
    acc *= x.shape[i]!;
  }
  const st = pm.map((p) => inStride[p]!); // input stride of each output axis
  const idx = new Array<number>(r).fill(0);
  let src = 0;
  for (let o = 0; o < n; o++) {
    out.data[o] = x.data[src]!;
    for (let ax = r - 1; ax >= 0; ax--) {
      idx[ax]!++;
      src += st[ax]!;
      if (idx[ax]! < shape[ax]!) break;
      src -= st[ax]! * shape[ax]!;
      idx[ax] = 0;
    }
  }
  return out;
};
