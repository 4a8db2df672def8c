/**
 * The high-level DSL: layers (mixers) stacked into pre-norm residual blocks, a stack given as a
 * Megatron-style pattern string or as target ratios, and `model()` which lowers to the Graph IR.
 *
 *   logits = lmHead(finalNorm(blocks(embedding(tokens))))      block: h = h + mixer(norm(h))
 */
import { mkNode, withProvenance, captureUserLoc, currentLoc, type DType, type Node, type SourceLoc, StrataError, type Graph, type AttrValue } from "../ir/index.js";
import * as op from "./ops.js";
import { init, initAttr, type InitSpec } from "./init.js";

// ---- build context ------------------------------------------------------------------------

export type NormKind = "rmsnorm" | "layernorm" | "layernorm1p";

export interface ModelConfig {
  name: string;
  vocab: number;
  dModel: number;
  dtype: DType;
  norm: NormKind;
  normEps: number;
  tiedEmbeddings: boolean;
  /** Training / default sequence length. */
  seqLen: number;
  /** Longest context the model is meant to serve (long-context variants raise this). */
  maxContext: number;
  initStd: number;
  /** Layer count in the output-projection init std/sqrt(2·initLayers) (Megatron's num_layers). */
  initLayers?: number;
}

/** What a layer sees while building: the model config, its position in the stack, and `param`. */
export class BuildCtx {
  readonly params = new Map<string, Node>();
  private positionsNode?: Node;
  constructor(
    readonly config: ModelConfig,
    readonly nLayers: number,
    private readonly prefix: string = "",
    private readonly shared?: BuildCtx,
  ) {}

  /** A child context whose params are named `<prefix><name>.`. */
  sub(name: string): BuildCtx {
    const root = this.shared ?? this;
    return new BuildCtx(this.config, this.nLayers, `${this.prefix}${name}.`, root);
  }

  get scopeName(): string {
    return this.prefix.replace(/\.$/, "");
  }

  /** Declare a weight; `dtype` defaults to the model's (fp32 for SSM parameters). */
  param(name: string, shape: number[], initSpec: InitSpec, dtype: DType = this.config.dtype): Node {
    const full = `${this.prefix}${name}`;
    if (typeof name !== "string" || !PARAM_NAME_RE.test(name) || name.includes("..") || full.length > 256)
      throw new StrataError(`parameter name ${JSON.stringify(name)} is not valid`, currentLoc(), "use letters, digits, '_', '-' and '.' (e.g. \"in_proj.weight\"); names reach the manifest, safetensors files and generated CUDA");
    const root = this.shared ?? this;
    if (root.params.has(full)) throw new StrataError(`parameter '${full}' declared twice`);
    for (const d of shape) {
      if (!Number.isInteger(d) || d <= 0) throw new StrataError(`parameter '${full}' has invalid shape [${shape}]: sizes must be positive integers`, currentLoc());
      if (d > INT32_MAX) throw new StrataError(`parameter '${full}' has shape [${shape}]: ${d} is more than ${INT32_MAX}, the largest size the generated kernels take`, currentLoc(), "choose smaller layer sizes");
    }
    const n = mkNode("param", [], { name: full, init: initAttr(initSpec) }, { dtype, shape });
    root.params.set(full, n);
    return n;
  }

  /** Token positions [T] (shared by every rope in the model). */
  get positions(): Node {
    const root = this.shared ?? this;
    root.positionsNode ??= op.arange("T");
    return root.positionsNode;
  }

  /** The output-projection init: normal(0, std/sqrt(2·layers)). */
  outInit(): InitSpec {
    return init.scaledNormal(this.config.initLayers ?? this.nLayers, this.config.initStd);
  }

  inInit(): InitSpec {
    return init.normal(this.config.initStd);
  }
}

/** A mixer: a sub-graph from [B,T,dModel] to [B,T,dModel], wrapped in a pre-norm residual block. */
export interface LayerDef {
  /** "mamba2", "mamba", "attention", "mlp", or a user's own name. */
  readonly kind: string;
  /** Plain-data config, shown by `strata info` and kept in the IR's meta. */
  readonly config: Readonly<Record<string, AttrValue>>;
  /** Where the user wrote it. */
  readonly src?: SourceLoc;
  /** Check the config against the model (e.g. heads·headDim vs dModel); throw StrataError. */
  validate?(model: ModelConfig): void;
  /**
   * Rules the CUDA kernels add on top of `validate` (the interpreter runs any valid model), with
   * advice naming the option to change; `check` and `compile` run them before code generation.
   */
  kernelCheck?(model: ModelConfig): void;
  build(ctx: BuildCtx, x: Node): Node;
}

/** Define a custom mixer from a build function (records the source line). */
export function layer(kind: string, config: Record<string, AttrValue>, build: (ctx: BuildCtx, x: Node) => Node, validate?: (m: ModelConfig) => void): LayerDef {
  const src = captureUserLoc();
  // the kind is shown by `info`, kept in the manifest and named in messages
  if (typeof kind !== "string" || !/^[A-Za-z][A-Za-z0-9_-]{0,63}$/.test(kind))
    throw new StrataError(`layer: kind ${JSON.stringify(kind)} is not a valid layer name`, src, "use 1 to 64 letters, digits, '_' or '-', starting with a letter (e.g. \"gated_mlp\")");
  if (typeof build !== "function") throw new StrataError(`layer '${kind}': the third argument must be a build function (ctx, x) => Node`, src);
  return { kind, config, src, build, validate };
}

// ---- stacks: pattern strings and ratio allocation -----------------------------------------

export interface StackDef {
  readonly pattern: string;
  readonly symbols: Readonly<Record<string, LayerDef>>;
  readonly ratios?: { attention: number; mlp: number };
  readonly src?: SourceLoc;
}

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Megatron-LM's hybrid layer allocation: attention layers spread evenly between Mamba layers,
 * then MLP layers spread evenly over the remaining Mamba positions.
 */
/** More blocks than any real model has; also keeps a typo (layers: 1e9) from allocating a huge pattern. */
export const MAX_LAYERS = 10_000;

export function allocateLayers(n: number, attention: number, mlp: number, loc?: SourceLoc): string {
  const bad = (what: string, hint: string) => new StrataError(what, loc, hint);
  if (!Number.isInteger(n) || n <= 0) throw bad(`layer count must be a positive integer, got ${n}`, "e.g. layers: 56");
  if (n > MAX_LAYERS) throw bad(`layer count ${n} is more than ${MAX_LAYERS}`, "e.g. layers: 56");
  for (const [name, r] of [["attention", attention], ["mlp", mlp]] as const)
    if (!(r >= 0 && r <= 1)) throw bad(`ratio '${name}' = ${r} is outside [0, 1]`, "ratios are fractions of the layer count, e.g. attention: 0.08");
  if (attention + mlp > 1 + 1e-12) throw bad(`ratios attention + mlp = ${attention + mlp} exceed 1`, "the rest of the layers are Mamba; keep attention + mlp ≤ 1");
  const out: string[] = new Array(n).fill("M");
  const a = roundHalfEven(n * attention);
  let mc = n - a;
  if (a > 0) {
    const s = mc / (a + 1);
    let x = s;
    for (let i = 0; i < n; i++) {
      if (x < 0.5) {
        out[i] = "*";
        x += s;
      } else x -= 1;
    }
  }
  const k = roundHalfEven(n * mlp);
  if (k > 0) {
    mc -= k;
    const s = mc / k;
    let x = s;
    for (let i = 0; i < n; i++) {
      if (out[i] !== "M") continue;
      if (x < 0.5) {
        out[i] = "-";
        x += s;
      } else x -= 1;
    }
  }
  return out.join("");
}

export interface StackOptions {
  /** A Megatron-style pattern: one symbol per layer (`M` Mamba-2, `*` attention, `-` MLP, or your own). */
  pattern?: string;
  /** Or: the layer count and target ratios, resolved by Megatron-LM's allocation. */
  layers?: number;
  ratios?: { attention?: number; mlp?: number };
  /** Symbol → layer definition. */
  [symbol: string]: LayerDef | string | number | { attention?: number; mlp?: number } | undefined;
}

export function stack(o: StackOptions): StackDef {
  const loc = captureUserLoc();
  const symbols: Record<string, LayerDef> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === "pattern" || k === "layers" || k === "ratios") continue;
    if (k.length !== 1 || /\s|[\u0000-\u001f\u007f]/.test(k))
      throw new StrataError(`stack: ${JSON.stringify(k)} is not a layer symbol; symbols are single printable characters such as M, *, -`, loc);
    if (!v || typeof v !== "object" || !("build" in v)) throw new StrataError(`stack: symbol '${k}' must map to a layer (e.g. mamba2({...}))`, loc);
    symbols[k] = v as LayerDef;
  }
  let pattern: string;
  let ratios: { attention: number; mlp: number } | undefined;
  if (o.pattern !== undefined) {
    if (o.ratios) throw new StrataError("stack: give either a pattern or ratios, not both", loc);
    pattern = o.pattern.replace(/\s+/g, "");
    if (o.layers !== undefined && o.layers !== pattern.length)
      throw new StrataError(`stack: pattern has ${pattern.length} layers but layers: ${o.layers}`, loc, "drop `layers` or make the pattern that long");
  } else {
    if (o.layers === undefined) throw new StrataError("stack: needs a pattern, or layers and ratios", loc);
    ratios = { attention: o.ratios?.attention ?? 0, mlp: o.ratios?.mlp ?? 0 };
    pattern = allocateLayers(o.layers, ratios.attention, ratios.mlp, loc);
  }
  if (pattern.length === 0) throw new StrataError("stack: the pattern is empty", loc);
  if (pattern.length > MAX_LAYERS) throw new StrataError(`stack: the pattern has ${pattern.length} layers, more than ${MAX_LAYERS}`, loc);
  const valid = Object.keys(symbols);
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (!symbols[c])
      throw new StrataError(`stack: unknown symbol '${c}' at layer ${i} of pattern ${JSON.stringify(pattern)}`, loc, `valid symbols here: ${valid.map((v) => `'${v}'`).join(", ") || "(none defined)"}`);
  }
  // A symbol mapped but never placed is almost always a typo in the pattern or a ratio that rounds to 0.
  const unused = valid.filter((c) => !pattern.includes(c));
  if (unused.length) {
    const list = unused.map((c) => `'${c}' (${symbols[c]!.kind})`).join(", ");
    const hint = ratios
      ? `with ${pattern.length} layers the ratios place no ${unused.map((c) => `'${c}'`).join(", ")} layer (Megatron's allocation rounds layers·ratio half to even, giving ${JSON.stringify(pattern)}); raise the ratio or remove the symbol`
      : "use the symbol in the pattern or remove it";
    throw new StrataError(`stack: symbol${unused.length > 1 ? "s" : ""} ${list} ${unused.length > 1 ? "are" : "is"} mapped but never used in the pattern ${JSON.stringify(pattern)}`, loc, hint);
  }
  return { pattern, symbols, ratios, src: loc };
}

// ---- model --------------------------------------------------------------------------------

export interface ModelOptions {
  name: string;
  vocab: number;
  dModel: number;
  layers: StackDef | LayerDef[];
  dtype?: DType;
  norm?: NormKind;
  normEps?: number;
  tiedEmbeddings?: boolean;
  seqLen?: number;
  maxContext?: number;
  initStd?: number;
  /**
   * Layers counted by the scaled output-projection init (default: the blocks in the stack).
   * Megatron's GPT counts a transformer layer (attention + MLP) once: pass 32 for "*-" × 32.
   */
  initLayers?: number;
}

export interface ModelDef {
  readonly config: ModelConfig;
  readonly pattern: string;
  readonly layers: readonly LayerDef[];
  readonly stack?: StackDef;
  readonly src?: SourceLoc;
  /** Lower to the Graph IR: input `tokens` [B,T] i32 → output `logits` [B,T,vocab]. */
  toGraph(): Graph;
}

export const isModelDef = (x: unknown): x is ModelDef =>
  !!x && typeof x === "object" && "toGraph" in x && "config" in x && "pattern" in x;

/** Sizes reach generated C++ as `int` constants. */
const INT32_MAX = 2 ** 31 - 1;

function positiveInt(v: number, what: string, loc?: SourceLoc): void {
  if (!Number.isInteger(v) || v <= 0) throw new StrataError(`model: ${what} must be a positive integer, got ${v}`, loc);
  if (v > INT32_MAX) throw new StrataError(`model: ${what} = ${v} is more than ${INT32_MAX}, the largest size the generated code takes`, loc);
}

/**
 * A model's name becomes a folder (`build/<name>`), a file name, a Makefile variable and text in
 * generated C++: a safe charset, one path component, no "..", at most 64 characters.
 */
export const MODEL_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkModelName(name: unknown, loc?: SourceLoc): string {
  const valid = "1 to 64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit, without '..' (e.g. \"my-hybrid-1b\")";
  if (typeof name !== "string") throw new StrataError(`model: name must be a string, got ${name === undefined ? "nothing" : typeof name}`, loc, `a name is ${valid}`);
  const why =
    name.length === 0 ? "is empty"
    : name.length > 64 ? `is ${name.length} characters long (at most 64)`
    : name.includes("..") ? "contains '..'"
    : /[\/\\]/.test(name) ? "contains a path separator"
    : /[\u0000-\u001f\u007f]/.test(name) ? "contains a control character (e.g. a newline)"
    : !/^[A-Za-z0-9]/.test(name) ? `starts with '${name[0]}'`
    : !MODEL_NAME_RE.test(name) ? `contains '${[...name].find((c) => !/[A-Za-z0-9._-]/.test(c))}'`
    : undefined;
  if (why) throw new StrataError(`model: name ${JSON.stringify(name)} ${why}; the name becomes the project's folder and appears in generated C++`, loc, `a name is ${valid}`);
  return name;
}

/** Weight names reach the manifest, safetensors files and comments in generated CUDA. */
const PARAM_NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export function model(o: ModelOptions): ModelDef {
  const loc = captureUserLoc();
  checkModelName(o.name, loc);
  positiveInt(o.vocab, "vocab", loc);
  positiveInt(o.dModel, "dModel", loc);
  const seqLen = o.seqLen ?? 4096;
  positiveInt(seqLen, "seqLen", loc);
  const config: ModelConfig = {
    name: o.name,
    vocab: o.vocab,
    dModel: o.dModel,
    dtype: o.dtype ?? "bf16",
    norm: o.norm ?? "rmsnorm",
    normEps: o.normEps ?? 1e-5,
    tiedEmbeddings: o.tiedEmbeddings ?? false,
    seqLen,
    maxContext: o.maxContext ?? seqLen,
    initStd: o.initStd ?? 0.02,
    ...(o.initLayers !== undefined ? { initLayers: o.initLayers } : {}),
  };
  const stackDef = Array.isArray(o.layers) ? undefined : (o.layers as StackDef);
  const layers: LayerDef[] = stackDef ? [...stackDef.pattern].map((c) => stackDef.symbols[c]!) : (o.layers as LayerDef[]);
  if (layers.length === 0) throw new StrataError("model: needs at least one layer", loc);
  const pattern = stackDef ? stackDef.pattern : layers.map((l) => symbolOf(l.kind)).join("");
  for (const l of new Set(layers)) {
    try {
      l.validate?.(config);
    } catch (e) {
      if (e instanceof StrataError && !e.loc && l.src) throw new StrataError(e.message.replace(/^[^:]*:\d+:\d+: /, ""), l.src, e.hint);
      throw e;
    }
  }
  let graph: Graph | undefined;
  const def: ModelDef = {
    config,
    pattern,
    layers,
    stack: stackDef,
    src: loc,
    toGraph: () => (graph ??= lowerModel(def)), // nodes are immutable: one lowering serves every caller
  };
  return def;
}

/** Run every distinct layer's kernel rules (`LayerDef.kernelCheck`); errors name the layer's line. */
export function checkKernelRules(def: ModelDef): void {
  for (const l of new Set(def.layers)) {
    try {
      l.kernelCheck?.(def.config);
    } catch (e) {
      if (e instanceof StrataError && !e.loc && l.src) throw new StrataError(e.message, l.src, e.hint);
      throw e;
    }
  }
}

const SYMBOL_OF: Record<string, string> = { mamba2: "M", mamba: "M", attention: "*", mlp: "-" };
export function symbolOf(kind: string): string {
  return SYMBOL_OF[kind] ?? "?";
}

function normLayer(ctx: BuildCtx, x: Node): Node {
  const { norm, normEps: eps, dModel } = ctx.config;
  if (norm === "rmsnorm") return op.rmsnorm(x, ctx.param("weight", [dModel], init.ones()), { eps });
  const oneP = norm === "layernorm1p";
  const w = ctx.param("weight", [dModel], oneP ? init.zeros() : init.ones());
  const b = ctx.param("bias", [dModel], init.zeros());
  return op.layernorm(x, w, b, { eps, oneP });
}

function lowerModel(m: ModelDef): Graph {
  const c = m.config;
  const root = new BuildCtx(c, m.layers.length);
  return withProvenance({ loc: m.src }, () => {
    const tokens = op.input("tokens", "i32", ["B", "T"]);
    const table = withProvenance({ scope: "embedding" }, () => root.sub("embedding").param("weight", [c.vocab, c.dModel], init.normal(c.initStd)));
    let h = withProvenance({ scope: "embedding" }, () => op.embedding(tokens, table));
    m.layers.forEach((l, i) => {
      const scope = `layers.${i}`;
      const lctx = root.sub(scope);
      h = withProvenance({ loc: l.src, scope }, () => {
        const normed = withProvenance({ scope: `${scope}.norm` }, () => normLayer(lctx.sub("norm"), h));
        const out = withProvenance({ scope: `${scope}.mixer` }, () => l.build(lctx.sub("mixer"), normed));
        if (out.shape.join() !== h.shape.join())
          throw new StrataError(`layer ${i} (${l.kind}) returned shape [${out.shape}] but a block must return [${h.shape}]`, l.src);
        return op.add(h, out);
      });
    });
    h = withProvenance({ scope: "final_norm" }, () => normLayer(root.sub("final_norm"), h));
    const head = c.tiedEmbeddings ? table : withProvenance({ scope: "lm_head" }, () => root.sub("lm_head").param("weight", [c.vocab, c.dModel], init.normal(c.initStd)));
    const logits = withProvenance({ scope: "lm_head" }, () => op.linear(h, head));
    const layerKinds: Record<string, AttrValue> = {};
    for (const [sym, l] of Object.entries(m.stack?.symbols ?? {})) layerKinds[sym] = { kind: l.kind, ...l.config };
    return {
      name: c.name,
      outputs: { logits },
      meta: { ...(c as unknown as Record<string, AttrValue>), pattern: m.pattern, layerKinds, ...(m.stack?.ratios ? { ratios: m.stack.ratios } : {}) },
    };
  });
}
