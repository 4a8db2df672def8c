/**
 * The reference interpreter: evaluates a graph's outputs on concrete tensors with each op's
 * reference implementation (ref.ts), in float64 (default) or float32. Inputs and params are bound
 * by name; symbolic dims are given by `bindings`. Every bound value and every op output is checked
 * against the node's evaluated shape, and intermediates are dropped after their last use.
 */
import { evalShape, shapeStr } from "../ir/dims.js";
import { StrataError } from "../ir/errors.js";
import { graphParams, topo, type Graph } from "../ir/graph.js";
import type { AttrValue, Node } from "../ir/node.js";
import { getOp } from "../ir/registry.js";
import "../ir/ops.js";
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
      const ref = getOp(n.op).ref;
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

/** 32-bit string hash (FNV-1a followed by a murmur3 finalizer). */
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

/** A seeded stream of doubles: mulberry32, two draws per 53-bit uniform in [0, 1). */
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

function initNum(spec: Record<string, AttrValue>, k: string, name: string, dflt?: number): number {
  const v = spec[k] ?? dflt;
  if (typeof v !== "number" || !Number.isFinite(v)) throw new StrataError(`randomParams: param '${name}': init.${k} must be a finite number, got ${JSON.stringify(spec[k])}`);
  return v;
}

/** Fill `t` per an init spec (see randomParams). */
export function fillInit(t: Tensor, spec: AttrValue | undefined, rng: Rng, name: string): void {
  if (spec === undefined || spec === null || typeof spec !== "object" || Array.isArray(spec))
    throw new StrataError(`randomParams: param '${name}' has no init spec object (attrs.init), got ${JSON.stringify(spec)}`);
  const d = t.data;
  const kind = spec.kind;
  switch (kind) {
    case "normal": {
      const mean = initNum(spec, "mean", name, 0);
      const std = initNum(spec, "std", name);
      for (let i = 0; i < d.length; i++) d[i] = mean + std * rng.normal();
      return;
    }
    case "const":
      d.fill(initNum(spec, "value", name));
      return;
    case "zeros":
      d.fill(0);
      return;
    case "ones":
      d.fill(1);
      return;
    case "uniform": {
      const lo = initNum(spec, "low", name), hi = initNum(spec, "high", name);
      for (let i = 0; i < d.length; i++) d[i] = rng.range(lo, hi);
      return;
    }
    case "alog_uniform": {
      const lo = initNum(spec, "low", name, 1), hi = initNum(spec, "high", name, 16);
      if (!(lo > 0 && hi >= lo)) throw new StrataError(`randomParams: param '${name}': alog_uniform needs 0 < low ≤ high, got [${lo}, ${hi}]`);
      for (let i = 0; i < d.length; i++) d[i] = Math.log(rng.range(lo, hi));
      return;
    }
    case "dt_bias": {
      const dtMin = initNum(spec, "dtMin", name, 0.001), dtMax = initNum(spec, "dtMax", name, 0.1), floor = initNum(spec, "floor", name, 1e-4);
      if (!(dtMin > 0 && dtMax >= dtMin)) throw new StrataError(`randomParams: param '${name}': dt_bias needs 0 < dtMin ≤ dtMax, got [${dtMin}, ${dtMax}]`);
      const l0 = Math.log(dtMin), l1 = Math.log(dtMax);
      for (let i = 0; i < d.length; i++) {
        const dt = Math.max(Math.exp(rng.range(l0, l1)), floor);
        d[i] = dt + Math.log(-Math.expm1(-dt)); // inverse softplus
      }
      return;
    }
    case "kaiming_uniform": {
      const fanIn = initNum(spec, "fanIn", name);
      const b = 1 / Math.sqrt(fanIn);
      for (let i = 0; i < d.length; i++) d[i] = rng.range(-b, b);
      return;
    }
    default:
      throw new StrataError(
        `randomParams: param '${name}' has unknown init kind ${JSON.stringify(kind)} (known: normal, const, zeros, ones, uniform, alog_uniform, dt_bias, kaiming_uniform)`,
      );
  }
}

/**
 * Draw every param of the graph from its attrs.init spec, deterministically in (seed, param name).
 * Param shapes are normally concrete; symbolic ones need `bindings`.
 */
export function randomParams(g: Graph, seed: number, precision: Precision = "f64", bindings: Readonly<Record<string, number>> = {}): Record<string, Tensor> {
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
    fillInit(t, n.attrs.init, new Rng(`param:${seed}:${name}`), name);
    out[name] = t;
  }
  return out;
}
