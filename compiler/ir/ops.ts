/**
 * Every op of the IR, one record each (see registry.ts). Conventions:
 * - activations are token-major: [B, T, ...features]; linear weights are [out, in] (y = x·Wᵀ);
 * - sequence ops (attention, conv1d, scans) read axis 1 as time; their optional trailing input is
 *   the incoming state, which makes the same op serve prefill and decode (derive-step);
 * - dtype rules promote bf16/f16 < f32 < f64 for floating inputs.
 */
import { dimAdd, shapeStr, shapeVolume, type Dim } from "./dims.js";
import { ShapeError } from "./errors.js";
import type { Attrs, DType, Node, TensorType } from "./types.js";
import { defineOp, type OpName } from "./registry.js";

// ---- rule helpers -------------------------------------------------------------------------

const RANK: Record<DType, number> = { bf16: 0, f16: 0, f32: 1, f64: 2, i32: -1, i64: -1 };

function isFloat(t: DType): boolean {
  return RANK[t] >= 0;
}

function promote(ts: readonly DType[]): DType {
  let best: DType = ts[0]!;
  for (const t of ts) if (RANK[t] > RANK[best]) best = t;
  return best;
}

function needFloat(n: Node, what: string): void {
  if (!isFloat(n.dtype)) throw new ShapeError(`${what} must be a floating tensor, got ${n.dtype}`);
}

function needInt(n: Node, what: string): void {
  if (isFloat(n.dtype)) throw new ShapeError(`${what} must be an integer tensor (i32/i64), got ${n.dtype}`);
}

function needRank(n: Node, r: number, what: string, layout: string): void {
  if (n.shape.length !== r) throw new ShapeError(`${what} must have rank ${r} ${layout}, got ${shapeStr(n.shape)}`);
}

function sameDim(a: Dim, b: Dim, what: string): void {
  if (a !== b) throw new ShapeError(`${what}: ${a} ≠ ${b}`);
}

function num(attrs: Attrs, k: string, dflt?: number): number {
  const v = attrs[k] ?? dflt;
  if (typeof v !== "number") throw new ShapeError(`attribute '${k}' must be a number`);
  return v;
}

function conc(d: Dim, what: string): number {
  if (typeof d !== "number") throw new ShapeError(`${what} must be a concrete size, got symbolic '${d}'`);
  return d;
}

export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === y || y === 1) out.push(x);
    else if (x === 1) out.push(y);
    else throw new ShapeError(`shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast (axis ${i}: ${x} vs ${y})`);
  }
  return out;
}

const numelOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

// ---- sources ------------------------------------------------------------------------------

function explicitType(name: string) {
  return (_: readonly Node[], __: Attrs, explicit?: TensorType): TensorType => {
    if (!explicit) throw new ShapeError(`${name} needs an explicit dtype and shape`);
    return explicit;
  };
}

defineOp({ name: "param", kind: "source", arity: [0, 0], doc: "A trainable weight; attrs {name, init}.", infer: explicitType("param") });
defineOp({ name: "input", kind: "source", arity: [0, 0], doc: "A graph input (tokens, positions, incoming state); attrs {name}.", infer: explicitType("input") });
defineOp({
  name: "arange",
  kind: "source",
  arity: [0, 0],
  doc: "0, 1, …, n−1 along a rank-1 shape (positions).",
  infer: (_i, _a, e) => {
    if (!e || e.shape.length !== 1) throw new ShapeError("arange needs an explicit rank-1 shape");
    return e;
  },
});
defineOp({ name: "full", kind: "source", arity: [0, 0], doc: "A constant-filled tensor; attrs {value}.", infer: explicitType("full") });

// ---- elementwise --------------------------------------------------------------------------

function unary(name: OpName, doc: string, flopsPerElt = 1): void {
  defineOp({
    name,
    kind: "elementwise",
    arity: [1, 1],
    doc,
    infer: ([x]) => {
      needFloat(x!, "input");
      return { dtype: x!.dtype, shape: x!.shape };
    },
    flops: (_i, out) => flopsPerElt * numelOf(out),
  });
}

unary("neg", "−x");
unary("exp", "eˣ");
unary("log", "ln x");
unary("sqrt", "√x");
unary("rsqrt", "1/√x");
unary("square", "x²");
unary("tanh", "tanh x");
unary("sigmoid", "1/(1+e⁻ˣ)", 4);
unary("silu", "x·sigmoid(x)", 5);
unary("softplus", "ln(1+eˣ) (linear above 20, as in PyTorch)", 4);
unary("relu", "max(x, 0)");
unary("relu2", "squared ReLU: max(x, 0)²", 2);
unary("mish", "x·tanh(softplus(x)) (Misra 2019)", 7);
unary("gelu", "GELU, exact erf form (attrs {approximate: 'tanh'} for the tanh form)", 8);
unary("scale", "x·value; attrs {value}");
unary("addScalar", "x + value; attrs {value}");

defineOp({
  name: "cast",
  kind: "elementwise",
  arity: [1, 1],
  doc: "Convert to attrs.to (numerics: the interpreter keeps its own precision).",
  infer: ([x], a) => ({ dtype: a.to as DType, shape: x!.shape }),
});

function binary(name: OpName, doc: string): void {
  defineOp({
    name,
    kind: "elementwise",
    arity: [2, 2],
    doc,
    infer: ([a, b]) => {
      needFloat(a!, "left operand");
      needFloat(b!, "right operand");
      return { dtype: promote([a!.dtype, b!.dtype]), shape: broadcastShapes(a!.shape, b!.shape) };
    },
    flops: (_i, out) => numelOf(out),
  });
}

binary("add", "a + b (NumPy broadcasting)");
binary("sub", "a − b (NumPy broadcasting)");
binary("mul", "a · b (NumPy broadcasting)");
binary("div", "a / b (NumPy broadcasting)");

// ---- norms and reductions -----------------------------------------------------------------

function lastDimWeight(x: Node, w: Node, what: string): void {
  needRank(w, 1, what, "[features]");
  sameDim(w.shape[0]!, x.shape[x.shape.length - 1]!, `${what} length must equal the last dim of the input`);
}

defineOp({
  name: "rmsnorm",
  kind: "rowwise",
  rowReduction: "norm",
  arity: [2, 2],
  doc: "x / sqrt(mean(x²) + eps) · w over the last axis; attrs {eps, oneP} (oneP: scale = 1 + w).",
  infer: ([x, w]) => {
    needFloat(x!, "input");
    lastDimWeight(x!, w!, "weight");
    return { dtype: x!.dtype, shape: x!.shape };
  },
  flops: (_i, out) => 4 * numelOf(out),
});

defineOp({
  name: "layernorm",
  kind: "rowwise",
  rowReduction: "norm",
  arity: [2, 3],
  doc: "(x − mean) / sqrt(var + eps) · w (+ b) over the last axis; attrs {eps, oneP} (Megatron's LayerNorm-1p: scale = 1 + w).",
  infer: ([x, w, b]) => {
    needFloat(x!, "input");
    lastDimWeight(x!, w!, "weight");
    if (b) lastDimWeight(x!, b, "bias");
    return { dtype: x!.dtype, shape: x!.shape };
  },
  flops: (_i, out) => 6 * numelOf(out),
});

defineOp({
  name: "gatedRmsnorm",
  kind: "rowwise",
  rowReduction: "norm",
  arity: [3, 3],
  doc: "Mamba-2's gated RMSNorm: y = x·silu(z), then RMSNorm over groups of attrs.groupSize features, times w; attrs {eps, groupSize}.",
  infer: ([x, z, w], a) => {
    needFloat(x!, "input");
    if (shapeStr(x!.shape) !== shapeStr(z!.shape)) throw new ShapeError(`gate z must have the input's shape ${shapeStr(x!.shape)}, got ${shapeStr(z!.shape)}`);
    lastDimWeight(x!, w!, "weight");
    const d = conc(x!.shape[x!.shape.length - 1]!, "feature dim");
    const g = num(a, "groupSize");
    if (d % g !== 0) throw new ShapeError(`groupSize ${g} must divide the feature dim ${d}`);
    return { dtype: x!.dtype, shape: x!.shape };
  },
  flops: (_i, out) => 10 * numelOf(out),
});

defineOp({
  name: "softmax",
  kind: "rowwise",
  rowReduction: "softmax",
  arity: [1, 1],
  doc: "softmax over the last axis.",
  infer: ([x]) => ({ dtype: x!.dtype, shape: x!.shape }),
  flops: (_i, out) => 5 * numelOf(out),
});

defineOp({
  name: "reduceMean",
  kind: "reduction",
  family: "reduce",
  arity: [1, 1],
  doc: "Mean of all elements (a scalar, shape []).",
  infer: ([x]) => ({ dtype: promote([x!.dtype, "f32"]), shape: [] }),
  flops: (i) => numelOf(i[0]!),
});

// ---- anchors ------------------------------------------------------------------------------

defineOp({
  name: "linear",
  kind: "anchor",
  family: "gemm",
  arity: [2, 2],
  doc: "y = x·Wᵀ with W stored [out, in] (PyTorch nn.Linear layout).",
  infer: ([x, w]) => {
    needFloat(x!, "input");
    needRank(w!, 2, "weight", "[out, in]");
    const k = x!.shape[x!.shape.length - 1]!;
    if (w!.shape[1] !== k) throw new ShapeError(`weight is [out, in] = ${shapeStr(w!.shape)} but the input's last dim is ${k}; valid: weight [N, ${k}]`);
    return { dtype: promote([x!.dtype, w!.dtype]), shape: [...x!.shape.slice(0, -1), w!.shape[0]!] };
  },
  flops: ([x, w]) => 2 * numelOf(x!) * w![0]!,
});

defineOp({
  name: "matmul",
  kind: "anchor",
  family: "matmul",
  arity: [2, 2],
  doc: "Batched a[..., M, K] · b[..., K, N] (batch dims equal).",
  infer: ([a, b]) => {
    if (a!.shape.length < 2 || a!.shape.length !== b!.shape.length) throw new ShapeError(`need equal ranks ≥ 2, got ${shapeStr(a!.shape)} and ${shapeStr(b!.shape)}`);
    const r = a!.shape.length;
    for (let i = 0; i < r - 2; i++) sameDim(a!.shape[i]!, b!.shape[i]!, `batch dim ${i}`);
    sameDim(a!.shape[r - 1]!, b!.shape[r - 2]!, "contraction dim (a's last vs b's second-to-last)");
    return { dtype: promote([a!.dtype, b!.dtype]), shape: [...a!.shape.slice(0, -1), b!.shape[r - 1]!] };
  },
  flops: ([a, b]) => 2 * numelOf(a!) * b![b!.length - 1]!,
});

defineOp({
  name: "embedding",
  kind: "anchor",
  family: "embedding",
  arity: [2, 2],
  doc: "Row gather: table[ids] for ids [...] and table [vocab, d].",
  infer: ([ids, table]) => {
    needInt(ids!, "ids");
    needRank(table!, 2, "table", "[vocab, d]");
    return { dtype: table!.dtype, shape: [...ids!.shape, table!.shape[1]!] };
  },
});

defineOp({
  name: "conv1d",
  kind: "anchor",
  family: "conv1d",
  arity: [3, 4],
  doc: "Depthwise causal conv over time: x [B,T,C], w [C,K], bias [C], optional prefix [B,K−1,C] (the previous K−1 inputs; zeros when absent).",
  infer: ([x, w, b, prefix]) => {
    needRank(x!, 3, "input", "[B, T, C]");
    needRank(w!, 2, "weight", "[C, K]");
    sameDim(w!.shape[0]!, x!.shape[2]!, "weight channels vs input channels");
    lastDimWeight(x!, b!, "bias");
    const k = conc(w!.shape[1]!, "kernel size");
    if (prefix) {
      needRank(prefix, 3, "prefix state", "[B, K−1, C]");
      sameDim(prefix.shape[1]!, k - 1, "prefix length must be K−1");
      sameDim(prefix.shape[2]!, x!.shape[2]!, "prefix channels");
    }
    return { dtype: x!.dtype, shape: x!.shape };
  },
  flops: ([x, w]) => 2 * numelOf(x!) * w![1]!,
  state: { kind: "conv", stateInput: 3, stateOp: "convState" },
});

defineOp({
  name: "convState",
  kind: "state",
  companionOf: "conv1d",
  arity: [1, 2],
  doc: "The last K−1 inputs of concat(prefix, x) along time: conv1d's state after x. attrs {k}.",
  infer: ([x, prefix], a) => {
    needRank(x!, 3, "input", "[B, T, C]");
    const k = num(a, "k");
    if (prefix) sameDim(prefix.shape[1]!, k - 1, "prefix length must be K−1");
    return { dtype: "f32", shape: [x!.shape[0]!, k - 1, x!.shape[2]!] };
  },
});

defineOp({
  name: "rope",
  kind: "rowwise",
  needsNeighbour: true,
  defaults: { fraction: 1, theta: 10000 },
  arity: [2, 2],
  doc: "Rotary embedding, half-split layout, on the first `fraction` of each head: x [B,T,H,D], positions [T]; attrs {fraction, theta}.",
  infer: ([x, pos], a) => {
    needRank(x!, 4, "input", "[B, T, H, D]");
    needInt(pos!, "positions");
    needRank(pos!, 1, "positions", "[T]");
    sameDim(pos!.shape[0]!, x!.shape[1]!, "positions length vs sequence length");
    const d = conc(x!.shape[3]!, "head dim");
    const rot = Math.round(d * num(a, "fraction", 1));
    if (rot % 2 !== 0 || rot <= 0) throw new ShapeError(`rotary dims = headDim·fraction = ${rot} must be a positive even number`);
    return { dtype: x!.dtype, shape: x!.shape };
  },
  flops: (_i, out) => 3 * numelOf(out),
});

defineOp({
  name: "attention",
  kind: "anchor",
  family: "attention",
  arity: [3, 3],
  doc: "Causal softmax attention with GQA: q [B,T,H,D], k/v [B,S,Hk,D]; query i sees keys j ≤ i + S − T. attrs {scale}.",
  infer: ([q, k, v]) => {
    needRank(q!, 4, "q", "[B, T, H, D]");
    needRank(k!, 4, "k", "[B, S, Hk, D]");
    needRank(v!, 4, "v", "[B, S, Hk, D]");
    if (shapeStr(k!.shape) !== shapeStr(v!.shape)) throw new ShapeError(`k ${shapeStr(k!.shape)} and v ${shapeStr(v!.shape)} must have equal shapes`);
    sameDim(q!.shape[0]!, k!.shape[0]!, "batch of q vs k");
    sameDim(q!.shape[3]!, k!.shape[3]!, "head dim of q vs k");
    const h = conc(q!.shape[2]!, "heads");
    const hk = conc(k!.shape[2]!, "kv heads");
    if (h % hk !== 0) throw new ShapeError(`kv heads (${hk}) must divide query heads (${h})`);
    return { dtype: q!.dtype, shape: q!.shape };
  },
  flops: ([q, k]) => {
    const [b, t, h, d] = q as number[];
    const s = k![1]!;
    let keys = 0; // exact causal count: query i sees min(S, i + 1 + S − T) keys
    for (let i = 0; i < t!; i++) keys += Math.min(s, i + 1 + s - t!);
    return 4 * b! * h! * d! * keys;
  },
  state: { kind: "kv" },
});

function scanShapes(kindName: string, x: Node, dt: Node, A: Node, Bm: Node) {
  needRank(x, 4, "x", "[B, T, H, P]");
  needRank(dt, 3, "dt", "[B, T, H]");
  needRank(A, 1, "A", "[H]");
  needRank(Bm, 4, "B", "[B, T, G, N]");
  sameDim(dt.shape[2]!, x.shape[2]!, `${kindName}: dt heads vs x heads`);
  sameDim(A.shape[0]!, x.shape[2]!, `${kindName}: A length vs heads`);
  sameDim(Bm.shape[1]!, x.shape[1]!, `${kindName}: B time vs x time`);
  const h = conc(x.shape[2]!, "heads");
  const g = conc(Bm.shape[2]!, "groups");
  if (h % g !== 0) throw new ShapeError(`groups (${g}) must divide heads (${h})`);
}

defineOp({
  name: "ssdScan",
  kind: "anchor",
  family: "ssd",
  defaults: { chunk: 64 },
  arity: [5, 6],
  doc: "Mamba-2 SSD: h_t = exp(dt_t·A)·h_{t−1} + dt_t·x_t⊗B_t, y_t = h_t·C_t. x [B,T,H,P], dt [B,T,H] (after softplus), A [H], B/C [B,T,G,N], optional h0 [B,H,P,N]. attrs {chunk}.",
  infer: ([x, dt, A, Bm, Cm, h0]) => {
    scanShapes("ssdScan", x!, dt!, A!, Bm!);
    if (shapeStr(Bm!.shape) !== shapeStr(Cm!.shape)) throw new ShapeError(`B ${shapeStr(Bm!.shape)} and C ${shapeStr(Cm!.shape)} must have equal shapes`);
    if (h0) needRank(h0, 4, "h0", "[B, H, P, N]");
    return { dtype: x!.dtype, shape: x!.shape };
  },
  flops: ([x, , , bm]) => {
    const [b, t, h, p] = x as number[];
    const n = bm![3]!;
    return 5 * b! * t! * h! * p! * n; // state update (3) + readout (2) per element of h
  },
  state: { kind: "ssm", stateInput: 5, stateOp: "ssdState" },
});

defineOp({
  name: "ssdState",
  kind: "state",
  companionOf: "ssdScan",
  defaults: { chunk: 64 },
  arity: [4, 5],
  doc: "The SSD state after the sequence: inputs x, dt, A, B, optional h0 → [B,H,P,N] (f32).",
  infer: ([x, dt, A, Bm]) => {
    scanShapes("ssdState", x!, dt!, A!, Bm!);
    return { dtype: "f32", shape: [x!.shape[0]!, x!.shape[2]!, x!.shape[3]!, Bm!.shape[3]!] };
  },
});

function selShapes(u: Node, delta: Node, A: Node, Bm: Node) {
  needRank(u, 3, "u", "[B, T, D]");
  if (shapeStr(delta.shape) !== shapeStr(u.shape)) throw new ShapeError(`delta ${shapeStr(delta.shape)} must have u's shape ${shapeStr(u.shape)}`);
  needRank(A, 2, "A", "[D, N]");
  sameDim(A.shape[0]!, u.shape[2]!, "A rows vs channels");
  needRank(Bm, 3, "B", "[B, T, N]");
  sameDim(Bm.shape[2]!, A.shape[1]!, "B state size vs A columns");
}

defineOp({
  name: "selectiveScan",
  kind: "anchor",
  family: "selective_scan",
  arity: [5, 6],
  doc: "Mamba-1 selective scan: h_t = exp(Δ_t·A)⊙h_{t−1} + Δ_t·u_t·B_t, y_t = h_t·C_t. u, Δ [B,T,D] (Δ after softplus), A [D,N], B/C [B,T,N], optional h0 [B,D,N].",
  infer: ([u, delta, A, Bm, Cm, h0]) => {
    selShapes(u!, delta!, A!, Bm!);
    if (shapeStr(Bm!.shape) !== shapeStr(Cm!.shape)) throw new ShapeError(`B and C must have equal shapes`);
    if (h0) needRank(h0, 3, "h0", "[B, D, N]");
    return { dtype: u!.dtype, shape: u!.shape };
  },
  flops: ([u, , a]) => 5 * numelOf(u!) * a![1]!,
  state: { kind: "ssm", stateInput: 5, stateOp: "selectiveState" },
});

defineOp({
  name: "selectiveState",
  kind: "state",
  companionOf: "selectiveScan",
  arity: [4, 5],
  doc: "The selective-scan state after the sequence: u, Δ, A, B, optional h0 → [B,D,N] (f32).",
  infer: ([u, delta, A, Bm]) => {
    selShapes(u!, delta!, A!, Bm!);
    return { dtype: "f32", shape: [u!.shape[0]!, u!.shape[2]!, A!.shape[1]!] };
  },
});

defineOp({
  name: "crossEntropy",
  kind: "anchor",
  family: "cross_entropy",
  arity: [2, 2],
  doc: "Per-token loss −log softmax(logits)[target]: logits [..., V], targets [...] → [...] (f32).",
  infer: ([logits, targets]) => {
    needInt(targets!, "targets");
    const s = logits!.shape.slice(0, -1);
    if (shapeStr(s) !== shapeStr(targets!.shape)) throw new ShapeError(`targets ${shapeStr(targets!.shape)} must match logits without the vocab axis ${shapeStr(s)}`);
    return { dtype: "f32", shape: s };
  },
  flops: ([l]) => 5 * numelOf(l!),
});

// ---- views --------------------------------------------------------------------------------

defineOp({
  name: "reshape",
  kind: "view",
  arity: [1, 1],
  doc: "Same elements, new shape (row-major); attrs {shape} may use the input's symbolic dims.",
  infer: ([x], a) => {
    const shape = a.shape as Dim[];
    const v0 = shapeVolume(x!.shape);
    const v1 = shapeVolume(shape);
    if (v0.c !== v1.c || v0.syms.join() !== v1.syms.join())
      throw new ShapeError(`cannot reshape ${shapeStr(x!.shape)} to ${shapeStr(shape)}: element counts differ`);
    return { dtype: x!.dtype, shape };
  },
});

defineOp({
  name: "slice",
  kind: "view",
  arity: [1, 1],
  doc: "x[..., start:end, ...] along attrs.axis.",
  infer: ([x], a) => {
    const axis = num(a, "axis");
    const start = num(a, "start");
    const end = num(a, "end");
    if (axis < 0 || axis >= x!.shape.length) throw new ShapeError(`axis ${axis} out of range for ${shapeStr(x!.shape)}`);
    const d = x!.shape[axis]!;
    if (start < 0 || end <= start || (typeof d === "number" && end > d))
      throw new ShapeError(`slice [${start}, ${end}) is not inside axis ${axis} of size ${d}`);
    const shape = [...x!.shape];
    shape[axis] = end - start;
    return { dtype: x!.dtype, shape };
  },
});

defineOp({
  name: "concat",
  kind: "rowwise",
  // an output element reads one input element at another index (row kernels along feature axes)
  needsNeighbour: true,
  arity: [1, 64],
  doc: "Concatenate along attrs.axis (sizes add, symbolically too).",
  infer: (xs, a) => {
    const axis = num(a, "axis");
    const r = xs[0]!.shape.length;
    let total: Dim = 0;
    for (const x of xs) {
      if (x.shape.length !== r) throw new ShapeError(`all inputs need rank ${r}`);
      for (let i = 0; i < r; i++) if (i !== axis) sameDim(x.shape[i]!, xs[0]!.shape[i]!, `axis ${i} of concatenated inputs`);
      total = dimAdd(total, x.shape[axis]!);
    }
    const shape = [...xs[0]!.shape];
    shape[axis] = total;
    return { dtype: promote(xs.map((x) => x.dtype)), shape };
  },
});

defineOp({
  name: "transpose",
  kind: "view",
  arity: [1, 1],
  doc: "Permute axes by attrs.perm.",
  infer: ([x], a) => {
    const perm = a.perm as number[];
    if (perm.length !== x!.shape.length || [...perm].sort().some((p, i) => p !== i))
      throw new ShapeError(`perm ${JSON.stringify(perm)} is not a permutation of ${x!.shape.length} axes`);
    return { dtype: x!.dtype, shape: perm.map((p) => x!.shape[p]!) };
  },
});

// ---- caches -------------------------------------------------------------------------------

defineOp({
  name: "cacheAppend",
  kind: "state",
  family: "cache_append",
  inPlace: 0,
  arity: [2, 2],
  doc: "A cache extended by new rows along time: cache [B, P, ...], new [B, T, ...] → [B, P+T, ...]. Semantically concat(cache, new) on axis 1; the kernel writes only the new rows, in place, into the cache's buffer.",
  infer: ([cache, x]) => {
    if (cache!.shape.length < 2 || cache!.shape.length !== x!.shape.length) throw new ShapeError(`cache ${shapeStr(cache!.shape)} and new rows ${shapeStr(x!.shape)} need equal ranks ≥ 2 ([B, time, ...])`);
    sameDim(cache!.shape[0]!, x!.shape[0]!, "batch of cache vs new rows");
    for (let i = 2; i < x!.shape.length; i++) sameDim(cache!.shape[i]!, x!.shape[i]!, `axis ${i} of cache vs new rows`);
    if (cache!.dtype !== x!.dtype) throw new ShapeError(`cache dtype ${cache!.dtype} ≠ new rows dtype ${x!.dtype}`);
    const shape = [...cache!.shape];
    shape[1] = dimAdd(cache!.shape[1]!, x!.shape[1]!);
    return { dtype: cache!.dtype, shape };
  },
});
import "./ops-backward.js";
