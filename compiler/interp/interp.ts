/**
 * The reference interpreter: evaluates a graph's outputs on concrete tensors with each op's
 * reference implementation (ref.ts), in float64 (default) or float32. Inputs and params are bound
 * by name; symbolic dims are given by `bindings`. Every bound value and every op output is checked
 * against the node's evaluated shape, and intermediates are dropped after their last use.
 */
import type { InitSpec } from "../ir/init.js";
import { evalShape, shapeStr } from "../ir/dims.js";
import { StrataError } from "../ir/errors.js";
import { graphParams, topo, type Graph } from "../ir/graph.js";
import type { AttrValue, Node } from "../ir/node.js";
import "../ir/ops.js";
import { REFS } from "./refs.js";
import { alloc, numel, type Precision, type RefCtx, type Tensor } from "./tensor.js";

export type { Precision, Tensor } from "./tensor.js";

export interface EvaluateOptions {
  /** Values of the symbolic dims, e.g. {B: 2, T: 7}. */
  bindings?: Readonly<Record<string, number>>;
  /** Graph inputs by their `input` node's attrs.name. */
  inputs?: Readonly<Record<string, Tensor>>;
  /** Weights by their `param` node's attrs.name. */
  params?: Readonly<Record<string, Tensor>>;
  /** Interpreter precision (default "f64"). */
  precision?: Precision;
  /** SSD algorithm (default "chunked"). */
  ssdMode?: "chunked" | "recurrent";
  /** When given, filled with the peak number of live tensors / elements held during evaluation. */
  stats?: { peakLiveTensors: number; peakLiveElements: number };
}

const fmt = (s: readonly number[]) => `[${s.join(", ")}]`;

function nodeLabel(n: Node): string {
  const name = typeof n.attrs.name === "string" ? ` '${n.attrs.name}'` : "";
  const scope = n.scope ? ` in ${n.scope}` : "";
  return `${n.op}${name}${scope}`;
}

function bindingStr(shape: readonly (number | string)[], bindings: Readonly<Record<string, number>>): string {
  const syms = [...new Set(shape.filter((d): d is string => typeof d === "string").flatMap((d) => d.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []))];
  return syms.length ? ` with ${syms.map((s) => `${s}=${bindings[s] ?? "?"}`).join(", ")}` : "";
}

/** Copy into the interpreter's precision when the caller's buffer type differs. */
function toPrecision(t: Tensor, p: Precision): Tensor {
  if ((p === "f64") === t.data instanceof Float64Array) return t;
  const out = alloc(t.shape, p);
  out.data.set(t.data);
  return out;
}

function outputsOf(g: Graph | readonly Node[] | Readonly<Record<string, Node>>): [string, Node][] {
  if (Array.isArray(g)) return (g as readonly Node[]).map((n, i) => [String(i), n]);
  const r = g as Graph | Record<string, Node>;
  if ("outputs" in r && typeof r.outputs === "object" && r.outputs !== null && !("key" in r.outputs)) return Object.entries((r as Graph).outputs);
  return Object.entries(r as Record<string, Node>);
}

/**
 * Evaluate the graph's outputs. `g` is a Graph (results keyed by output name), an array of nodes
 * (keyed "0", "1", …) or a record of nodes (keyed like the record).
 */
export function evaluate(g: Graph | readonly Node[] | Readonly<Record<string, Node>>, opts: EvaluateOptions = {}): Record<string, Tensor> {
  const bindings = opts.bindings ?? {};
  const precision: Precision = opts.precision ?? "f64";
  const ssdMode = opts.ssdMode ?? "chunked";
  if (precision !== "f32" && precision !== "f64") throw new StrataError(`evaluate: precision must be "f32" or "f64", got ${JSON.stringify(precision)}`);
  if (ssdMode !== "chunked" && ssdMode !== "recurrent") throw new StrataError(`evaluate: ssdMode must be "chunked" or "recurrent", got ${JSON.stringify(ssdMode)}`);
  for (const [k, v] of Object.entries(bindings))
    if (!Number.isInteger(v) || v < 0) throw new StrataError(`evaluate: binding ${k}=${v} must be a non-negative integer`);
  const inputs = opts.inputs ?? {};
  const params = opts.params ?? {};

  const outs = outputsOf(g);
  const order = topo(outs.map(([, n]) => n));
  const isOutput = new Set(outs.map(([, n]) => n.key));
  const lastUse = new Map<string, number>();
  order.forEach((n, i) => n.inputs.forEach((x) => lastUse.set(x.key, i)));

  const values = new Map<string, Tensor>();
  let live = 0;
  if (opts.stats) {
    opts.stats.peakLiveTensors = 0;
    opts.stats.peakLiveElements = 0;
  }
  for (let i = 0; i < order.length; i++) {
    const n = order[i]!;
    let shape: number[];
    try {
      shape = evalShape(n.shape, bindings);
    } catch (e) {
      throw new StrataError(`evaluate: cannot size ${nodeLabel(n)} of shape ${shapeStr(n.shape)}: ${(e as Error).message}`, n.src);
    }
    if (shape.some((d) => !Number.isInteger(d) || d < 0))
      throw new StrataError(`evaluate: ${nodeLabel(n)} of shape ${shapeStr(n.shape)} evaluates to ${fmt(shape)}${bindingStr(n.shape, bindings)}, which is not a valid shape`, n.src);

    let value: Tensor;
    if (n.op === "input" || n.op === "param") {
      const kind = n.op;
      const name = n.attrs.name;
      if (typeof name !== "string") throw new StrataError(`evaluate: ${kind} node has no string attrs.name`, n.src);
      const pool = kind === "input" ? inputs : params;
      const t = pool[name];
      if (!t) {
        const have = Object.keys(pool).sort();
        throw new StrataError(`evaluate: no value bound for ${kind} '${name}' (${kind}s bound: ${have.length ? have.join(", ") : "none"})`, n.src);
      }
      if (t.shape.length !== shape.length || t.shape.some((d, k) => d !== shape[k]))
        throw new StrataError(
          `evaluate: ${kind} '${name}' has shape ${fmt(t.shape)} but the graph expects ${fmt(shape)} (declared ${shapeStr(n.shape)}${bindingStr(n.shape, bindings)})`,
          n.src,
        );
      if (t.data.length !== numel(t.shape))
        throw new StrataError(`evaluate: ${kind} '${name}' holds ${t.data.length} values for its shape ${fmt(t.shape)} (${numel(t.shape)} expected)`, n.src);
      value = toPrecision(t, precision);
    } else {
      const ref = REFS[n.op];
      const args = n.inputs.map((x) => {
        const v = values.get(x.key);
        if (!v) throw new Error(`evaluate: internal error: value of ${nodeLabel(x)} missing when evaluating ${nodeLabel(n)}`);
        return v;
      });
      const ctx: RefCtx = { precision, outShape: shape, ssdMode };
      try {
        value = ref(args, n.attrs, ctx);
      } catch (e) {
        if (e instanceof StrataError) throw e;
        const got = args.map((a) => fmt(a.shape)).join(", ");
        throw new StrataError(`evaluate: ${nodeLabel(n)} failed: ${(e as Error).message} (input shapes: ${got})`, n.src);
      }
      if (value.shape.length !== shape.length || value.shape.some((d, k) => d !== shape[k]))
        throw new StrataError(`evaluate: ${nodeLabel(n)} produced shape ${fmt(value.shape)} but the node's shape is ${fmt(shape)} (${shapeStr(n.shape)})`, n.src);
      if (value.data.length !== numel(shape)) throw new StrataError(`evaluate: ${nodeLabel(n)} produced ${value.data.length} values for shape ${fmt(shape)}`, n.src);
    }
    values.set(n.key, value);
    live += value.data.length;
    if (opts.stats) {
      opts.stats.peakLiveTensors = Math.max(opts.stats.peakLiveTensors, values.size);
      opts.stats.peakLiveElements = Math.max(opts.stats.peakLiveElements, live);
    }
    // free inputs after their last use (outputs are kept)
    for (const x of n.inputs)
      if (lastUse.get(x.key) === i && !isOutput.has(x.key) && values.has(x.key)) {
        live -= values.get(x.key)!.data.length;
        values.delete(x.key);
      }
  }
  const result: Record<string, Tensor> = {};
  for (const [name, n] of outs) result[name] = values.get(n.key)!;
  return result;
}

// ---- deterministic random values ----------------------------------------------------------

/** 32-bit string hash (FNV-1a followed by a murmur3 finalizer). Seeds `Rng`; not used by param init. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A seeded stream of doubles for test data (randomTensor, test helpers): mulberry32, two draws per
 * 53-bit uniform in [0, 1). Parameter initialisation does NOT use it — see initTensor (runtime/INIT.md).
 */
export class Rng {
  private s: number;
  private spare: number | undefined;
  constructor(seed: number | string) {
    this.s = typeof seed === "number" ? hash32(`n:${seed}`) : hash32(seed);
  }
  private u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1). */
  uniform(): number {
    return ((this.u32() >>> 5) * 67108864 + (this.u32() >>> 6)) / 9007199254740992;
  }
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }
  /** Standard normal (Box–Muller, polar-free form). */
  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

/** A tensor of standard-normal values times `scale`, deterministic in `seed`. */
export function randomTensor(shape: readonly number[], seed: number | string, precision: Precision = "f64", scale = 1): Tensor {
  const t = alloc(shape, precision);
  const rng = new Rng(typeof seed === "number" ? `tensor:${seed}` : seed);
  for (let i = 0; i < t.data.length; i++) t.data[i] = scale * rng.normal();
  return t;
}

// ---- parameter init: bit-compatible with the C++ runtime (runtime/INIT.md, src/init.cpp) ----
// The BigInt functions are the readable reference (INIT.md §5); initTensor uses the same
// arithmetic on 32-bit halves (Math.imul and exact doubles), with no per-element allocation.

const M64 = (1n << 64n) - 1n;
const GOLDEN = 0x9e3779b97f4a7c15n;
const TWO_PI = 6.283185307179586;

/** FNV-1a 64 over the UTF-8 bytes of `name` (INIT.md §1). */
export function fnv1a64(name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(name)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & M64;
  return h;
}

/** splitmix64 finaliser (INIT.md §1). */
export function mix64(z: bigint): bigint {
  z &= M64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}

/** Per-tensor stream key: mix64(seed XOR mix64(fnv1a64(name))). */
export function initStreamKey(seed: bigint, name: string): bigint {
  return mix64(BigInt.asUintN(64, seed) ^ mix64(fnv1a64(name)));
}

/** The c-th random word of a stream: mix64(key + (c + 1) * golden). */
export function initRandomWord(key: bigint, c: bigint): bigint {
  return mix64((key + (c + 1n) * GOLDEN) & M64);
}

/** Uniform in (0, 1], exact: double((w >> 11) + 1) * 2^-53. */
export function initUniform01(w: bigint): number {
  return Number((BigInt.asUintN(64, w) >> 11n) + 1n) * 2 ** -53;
}

// The fast path: 64-bit values as (hi, lo) uint32 halves in doubles. Products mod 2^64 use
// Math.imul for the low words and 16-bit limbs for the high word of lo×lo (every partial sum
// stays below 2^32). ~110 ms per 1M-element normal tensor on Node 20, no allocation per element.
const C1H = 0xbf58476d, C1L = 0x1ce4e5b9, C1L0 = C1L & 0xffff, C1L1 = C1L >>> 16;
const C2H = 0x94d049bb, C2L = 0x133111eb, C2L0 = C2L & 0xffff, C2L1 = C2L >>> 16;
const GH = 0x9e3779b9, GL = 0x7f4a7c15; // golden = 0x9E3779B97F4A7C15
const G2H = 0x3c6ef372, G2L = 0xfe94f82a; // 2 * golden mod 2^64

/** u01(mix64(h:l)) = ((w >> 11) + 1) * 2^-53 for w = mix64 of the 64-bit word (h:l). */
function u01h(h: number, l: number): number {
  // z ^= z >> 30; z *= C1
  let xl = (l ^ ((l >>> 30) | (h << 2))) >>> 0;
  let xh = (h ^ (h >>> 30)) >>> 0;
  let a0 = xl & 0xffff, a1 = xl >>> 16;
  let ll = a0 * C1L0, hl = a1 * C1L0, lh = a0 * C1L1;
  let cross = (ll >>> 16) + (hl & 0xffff) + lh;
  let hi = (hl >>> 16) + (cross >>> 16) + a1 * C1L1;
  h = (hi + Math.imul(xh, C1L) + Math.imul(xl, C1H)) >>> 0;
  l = Math.imul(xl, C1L) >>> 0;
  // z ^= z >> 27; z *= C2
  xl = (l ^ ((l >>> 27) | (h << 5))) >>> 0;
  xh = (h ^ (h >>> 27)) >>> 0;
  a0 = xl & 0xffff;
  a1 = xl >>> 16;
  ll = a0 * C2L0;
  hl = a1 * C2L0;
  lh = a0 * C2L1;
  cross = (ll >>> 16) + (hl & 0xffff) + lh;
  hi = (hl >>> 16) + (cross >>> 16) + a1 * C2L1;
  h = (hi + Math.imul(xh, C2L) + Math.imul(xl, C2H)) >>> 0;
  l = Math.imul(xl, C2L) >>> 0;
  // z ^= z >> 31; ((z >> 11) + 1) * 2^-53 (exact: at most 2^53)
  l = (l ^ ((l >>> 31) | (h << 1))) >>> 0;
  h = (h ^ (h >>> 31)) >>> 0;
  return (h * 2097152 + (l >>> 11) + 1) * 1.1102230246251565e-16;
}

/** Spec fields after validation (INIT.md §2), with defaults filled in (normal gets its mean). */
export type InitSpecResolved = Exclude<InitSpec, { kind: "normal" }> | { kind: "normal"; std: number; mean: number };

const INIT_KINDS = "normal, uniform, const, zeros, ones, alog_uniform, alog_arange, dt_bias, kaiming_uniform";

/**
 * Validate an init spec exactly as the runtime's manifest loader does (unknown fields, required
 * fields, finite numbers, std ≥ 0, low ≤ high, fanIn > 0, 0 < dtMin ≤ dtMax, floor ≥ 0, alog low > 0,
 * alog_arange n a positive integer ≤ 2^53 − 1).
 * zeros / ones become const 0 / 1.
 */
export function parseInitSpec(spec: AttrValue | undefined, name: string): InitSpecResolved {
  if (spec === undefined || spec === null || typeof spec !== "object" || Array.isArray(spec))
    throw new StrataError(`randomParams: param '${name}' has no init spec object (attrs.init), got ${JSON.stringify(spec)}`);
  const kind = spec.kind;
  const fields: Record<string, readonly string[]> = {
    normal: ["std", "mean"],
    uniform: ["low", "high"],
    const: ["value"],
    zeros: [],
    ones: [],
    alog_uniform: ["low", "high"],
    alog_arange: ["n"],
    dt_bias: ["dtMin", "dtMax", "floor"],
    kaiming_uniform: ["fanIn"],
  };
  if (typeof kind !== "string" || !Object.prototype.hasOwnProperty.call(fields, kind))
    throw new StrataError(`randomParams: param '${name}' has unknown init kind ${JSON.stringify(kind)} (known: ${INIT_KINDS})`);
  const allowed = fields[kind]!;
  for (const k of Object.keys(spec))
    if (k !== "kind" && !allowed.includes(k))
      throw new StrataError(
        `randomParams: param '${name}': unknown init field "${k}" for kind "${kind}" (allowed: ${allowed.length ? allowed.join(", ") : "none"})`,
      );
  const num = (k: string, dflt?: number) => initNum(spec, k, name, dflt);
  const req = (ok: boolean, what: string) => {
    if (!ok) throw new StrataError(`randomParams: param '${name}': invalid init spec: ${what}`);
  };
  switch (kind) {
    case "normal": {
      const s = { kind, std: num("std"), mean: num("mean", 0) } as const;
      req(s.std >= 0, `std must be >= 0, got ${s.std}`);
      return s;
    }
    case "uniform": {
      const s = { kind, low: num("low"), high: num("high") } as const;
      req(s.low <= s.high, `uniform needs low <= high, got [${s.low}, ${s.high}]`);
      return s;
    }
    case "const":
      return { kind, value: num("value") };
    case "zeros":
    case "ones":
      return { kind: "const", value: kind === "ones" ? 1 : 0 };
    case "alog_uniform": {
      const s = { kind, low: num("low", 1), high: num("high", 16) } as const;
      req(s.low > 0 && s.low <= s.high, `alog_uniform needs 0 < low <= high, got [${s.low}, ${s.high}]`);
      return s;
    }
    case "alog_arange": {
      const s = { kind, n: num("n") } as const;
      req(Number.isSafeInteger(s.n) && s.n >= 1, `alog_arange needs n to be a positive integer (<= 2^53 - 1), got ${s.n}`);
      return s;
    }
    case "dt_bias": {
      const s = { kind, dtMin: num("dtMin", 0.001), dtMax: num("dtMax", 0.1), floor: num("floor", 1e-4) } as const;
      req(s.dtMin > 0 && s.dtMin <= s.dtMax, `dt_bias needs 0 < dtMin <= dtMax, got [${s.dtMin}, ${s.dtMax}]`);
      req(s.floor >= 0, `dt_bias floor must be >= 0, got ${s.floor}`);
      return s;
    }
    default: {
      const s = { kind: "kaiming_uniform", fanIn: num("fanIn") } as const;
      req(s.fanIn > 0, `fanIn must be > 0, got ${s.fanIn}`);
      return s;
    }
  }
}

function initNum(spec: Record<string, AttrValue>, k: string, name: string, dflt?: number): number {
  const v = spec[k] ?? dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new StrataError(`randomParams: param '${name}': init.${k} must be a finite number, got ${JSON.stringify(spec[k])}`);
  return v;
}

/** A seed as the runtime's uint64: a non-negative safe integer or a bigint (taken mod 2^64). */
export function initSeed(seed: number | bigint): bigint {
  if (typeof seed === "bigint") return BigInt.asUintN(64, seed);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new StrataError(`randomParams: seed must be a non-negative integer (uint64), got ${seed}`);
  return BigInt(seed);
}

/**
 * Fill `out` with elements 0..out.length-1 of the tensor `name` (INIT.md): each value computed in
 * double exactly as the runtime does, then rounded once to float32.
 */
export function initTensor(out: Float32Array | Float64Array, spec: InitSpecResolved, seed: number | bigint, name: string): void {
  const n = out.length;
  if (spec.kind === "const") {
    out.fill(Math.fround(spec.value));
    return;
  }
  if (spec.kind === "alog_arange") {
    // Mamba-1 S4D-real: log((i mod n) + 1), no random words. Period n: compute one row, copy it.
    const m = Math.min(n, spec.n);
    for (let i = 0; i < m; i++) out[i] = Math.fround(Math.log((i % spec.n) + 1));
    for (let i = m; i < n; i++) out[i] = out[i - spec.n]!;
    return;
  }
  const key = initStreamKey(initSeed(seed), name);
  // Element i's words are mix64(s) for s = key + (2i+1)·golden and key + (2i+2)·golden (mod 2^64):
  // s advances by golden per word, i.e. by 2·golden per element.
  let sH = Number(key >> 32n), sL = Number(key & 0xffffffffn);
  let lo = sL + GL;
  sL = lo >>> 0;
  sH = (sH + GH + (lo > 0xffffffff ? 1 : 0)) >>> 0; // s = key + golden: word 0
  if (spec.kind === "normal") {
    const { mean, std } = spec;
    for (let i = 0; i < n; i++) {
      const u1 = u01h(sH, sL);
      lo = sL + GL;
      sL = lo >>> 0;
      sH = (sH + GH + (lo > 0xffffffff ? 1 : 0)) >>> 0;
      const u2 = u01h(sH, sL);
      lo = sL + GL;
      sL = lo >>> 0;
      sH = (sH + GH + (lo > 0xffffffff ? 1 : 0)) >>> 0;
      out[i] = Math.fround(mean + std * (Math.sqrt(-2.0 * Math.log(u1)) * Math.cos(TWO_PI * u2)));
    }
    return;
  }
  // The other kinds use only word 2i (word 2i+1 is owned by element i but unused).
  const lmin = spec.kind === "dt_bias" ? Math.log(spec.dtMin) : 0;
  const lmax = spec.kind === "dt_bias" ? Math.log(spec.dtMax) : 0;
  const b = spec.kind === "kaiming_uniform" ? 1.0 / Math.sqrt(spec.fanIn) : 0;
  for (let i = 0; i < n; i++) {
    const u = u01h(sH, sL);
    lo = sL + G2L;
    sL = lo >>> 0;
    sH = (sH + G2H + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    let v: number;
    switch (spec.kind) {
      case "uniform":
        v = spec.low + (spec.high - spec.low) * u;
        break;
      case "alog_uniform":
        v = Math.log(spec.low + (spec.high - spec.low) * u);
        break;
      case "dt_bias": {
        let dt = Math.exp(lmin + (lmax - lmin) * u);
        if (dt < spec.floor) dt = spec.floor;
        v = dt + Math.log(-Math.expm1(-dt)); // inverse softplus
        break;
      }
      default: // kaiming_uniform
        v = -b + (b + b) * u;
    }
    out[i] = Math.fround(v);
  }
}

/** Fill `t` per its init spec, bit-identical to strata_model_init_weights(seed) for tensor `name`. */
export function fillInit(t: Tensor, spec: AttrValue | undefined, seed: number | bigint, name: string): void {
  initTensor(t.data, parseInitSpec(spec, name), seed, name);
}

/**
 * Draw every param of the graph from its attrs.init spec, deterministically in (seed, param name),
 * bit-identical to the runtime's strata_model_init_weights(model, seed) (float32 values; stored in
 * the requested precision). Param shapes are normally concrete; symbolic ones need `bindings`.
 */
export function randomParams(g: Graph, seed: number | bigint, precision: Precision = "f64", bindings: Readonly<Record<string, number>> = {}): Record<string, Tensor> {
  initSeed(seed);
  const out: Record<string, Tensor> = {};
  for (const n of graphParams(g)) {
    const name = n.attrs.name;
    if (typeof name !== "string") throw new StrataError(`randomParams: param node has no string attrs.name`, n.src);
    if (out[name]) continue;
    let shape: number[];
    try {
      shape = evalShape(n.shape, bindings);
    } catch (e) {
      throw new StrataError(`randomParams: cannot size param '${name}' of shape ${shapeStr(n.shape)}: ${(e as Error).message}`, n.src);
    }
    const t = alloc(shape, precision);
    fillInit(t, n.attrs.init, seed, name);
    out[name] = t;
  }
  return out;
}
