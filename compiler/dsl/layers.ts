/**
 * The built-in mixers: MLP, (grouped-query) attention, Mamba-1 and Mamba-2, written with the
 * low-level DSL ops. Each factory records where the user called it, checks its own options at
 * once, checks them against the model in `validate`, and names its params relative to the
 * mixer (the model prefixes `layers.{i}.mixer.`).
 *
 * Conventions (Megatron-LM / mamba_ssm, as in Waleffe et al. 2024): linear weights [out, in]
 * with no biases; input projections init normal(std), output projections (fc2, o_proj,
 * out_proj) normal(std/sqrt(2·layers)); SSM parameters (A_log, D, dt_bias, dt_proj.bias) f32.
 */
import { captureUserLoc, StrataError, type AttrValue, type Node, type SourceLoc } from "../ir/index.js";
import type { BuildCtx, LayerDef, ModelConfig } from "./model.js";
import * as op from "./ops.js";
import { init, type InitSpec } from "./init.js";

// ---- option checks ------------------------------------------------------------------------

function fail(kind: string, what: string, loc: SourceLoc | undefined, hint?: string): never {
  throw new StrataError(`${kind}: ${what}`, loc, hint);
}

function posInt(kind: string, name: string, v: unknown, loc: SourceLoc | undefined, hint?: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0)
    fail(kind, `${name} must be a positive integer, got ${String(v)}`, loc, hint);
  return v;
}

function posNum(kind: string, name: string, v: unknown, loc: SourceLoc | undefined, hint?: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) fail(kind, `${name} must be a positive number, got ${String(v)}`, loc, hint);
  return v;
}

/** Divisors of n (sorted), for "valid values" hints; capped for readability. */
function divisors(n: number, max = 16): string {
  // pairs (i, n/i) up to √n: a fuzzed 2^40 must not loop 2^40 times
  const lo: number[] = [];
  const hi: number[] = [];
  for (let i = 1; i * i <= n && i <= 1e6; i++)
    if (n % i === 0) {
      lo.push(i);
      if (i !== n / i) hi.unshift(n / i);
    }
  const out = [...lo, ...hi];
  if (out.length <= max) return out.join(", ");
  return `${out.slice(0, max / 2).join(", ")}, …, ${out.slice(-max / 2).join(", ")}`;
}

function unknownKeys(kind: string, o: object, known: readonly string[], loc: SourceLoc | undefined): void {
  for (const k of Object.keys(o))
    if (!known.includes(k)) fail(kind, `unknown option '${k}'`, loc, `valid options: ${known.join(", ")}`);
}

/** d_inner = expand·dModel, which must be a whole number. */
function innerDim(kind: string, expand: number, dModel: number, loc: SourceLoc | undefined): number {
  const d = expand * dModel;
  if (!Number.isInteger(d))
    fail(kind, `d_inner = expand·dModel = ${expand}·${dModel} = ${d} is not an integer`, loc, "choose expand so that expand·dModel is a whole number (e.g. expand: 2)");
  return d;
}

// ---- MLP ----------------------------------------------------------------------------------

export type MlpAct = "relu2" | "gelu" | "swiglu";

export interface MlpOptions {
  /** Hidden width (per branch for swiglu). */
  hidden: number;
  /** Activation: squared ReLU (Megatron's 8B models), GELU, or SwiGLU (silu(gate)·up). */
  act?: MlpAct;
}

const MLP_ACTS: readonly MlpAct[] = ["relu2", "gelu", "swiglu"];

/** Feed-forward block: fc1.weight [hidden (·2 for swiglu: [gate; up]), d] → act → fc2.weight [d, hidden]. */
export function mlp(o: MlpOptions): LayerDef {
  const src = captureUserLoc();
  const K = "mlp";
  unknownKeys(K, o, ["hidden", "act"], src);
  const hidden = posInt(K, "hidden", o.hidden, src, "e.g. hidden: 4·dModel");
  const act = o.act ?? "relu2";
  if (!MLP_ACTS.includes(act)) fail(K, `unknown activation '${String(act)}'`, src, `valid: ${MLP_ACTS.map((a) => `"${a}"`).join(", ")}`);
  return {
    kind: K,
    config: { hidden, act },
    src,
    build(ctx: BuildCtx, x: Node): Node {
      const d = ctx.config.dModel;
      const axis = x.shape.length - 1;
      const fc1 = ctx.param("fc1.weight", [act === "swiglu" ? 2 * hidden : hidden, d], ctx.inInit());
      let h = op.linear(x, fc1);
      if (act === "swiglu") {
        const [gate, up] = op.split(h, axis, [hidden, hidden]);
        h = op.mul(op.silu(gate!), up!);
      } else h = act === "gelu" ? op.gelu(h) : op.relu2(h);
      return op.linear(h, ctx.param("fc2.weight", [d, hidden], ctx.outInit()));
    },
  };
}

// ---- attention ----------------------------------------------------------------------------

export interface RopeOptions {
  /** Fraction of each head's dims that rotate (Megatron's rotary-percent), default 1. */
  fraction?: number;
  theta?: number;
}

export interface AttentionOptions {
  heads: number;
  /** Key/value heads (GQA); default = heads (MHA). Must divide heads. */
  kvHeads?: number;
  /** Default dModel / heads. */
  headDim?: number;
  /** Rotary position embedding; default false (no position embedding, as in the hybrids). */
  rope?: RopeOptions | boolean;
}

/** Causal self-attention with a fused qkv projection [(H + 2·Hk)·hd, d], optional rope, o_proj [d, H·hd]. */
export function attention(o: AttentionOptions): LayerDef {
  const src = captureUserLoc();
  const K = "attention";
  unknownKeys(K, o, ["heads", "kvHeads", "headDim", "rope"], src);
  const heads = posInt(K, "heads", o.heads, src);
  const kvHeads = posInt(K, "kvHeads", o.kvHeads ?? heads, src, `kvHeads must divide heads ${heads}: ${divisors(heads)}`);
  if (heads % kvHeads !== 0) fail(K, `kvHeads ${kvHeads} does not divide heads ${heads}`, src, `valid kvHeads: ${divisors(heads)}`);
  const explicitHeadDim = o.headDim === undefined ? undefined : posInt(K, "headDim", o.headDim, src);
  let rope: { fraction: number; theta: number } | false = false;
  if (o.rope === true) rope = { fraction: 1, theta: 10000 };
  else if (o.rope && typeof o.rope === "object") {
    unknownKeys(`${K}: rope`, o.rope, ["fraction", "theta"], src);
    const fraction = o.rope.fraction ?? 1;
    if (typeof fraction !== "number" || !(fraction > 0 && fraction <= 1)) fail(K, `rope.fraction must be in (0, 1], got ${String(fraction)}`, src, "e.g. fraction: 0.5 rotates half of each head");
    rope = { fraction, theta: posNum(K, "rope.theta", o.rope.theta ?? 10000, src, "e.g. theta: 10000") };
  } else if (o.rope !== undefined && o.rope !== false) fail(K, `rope must be false, true or { fraction, theta }, got ${String(o.rope)}`, src);

  const headDimOf = (m: ModelConfig) => explicitHeadDim ?? m.dModel / heads;
  const config: Record<string, AttrValue> = { heads, kvHeads, rope };
  if (explicitHeadDim !== undefined) config.headDim = explicitHeadDim;
  return {
    kind: K,
    config,
    src,
    validate(m: ModelConfig) {
      if (explicitHeadDim === undefined && m.dModel % heads !== 0)
        fail(K, `headDim defaults to dModel/heads = ${m.dModel}/${heads}, which is not an integer`, src, `give headDim explicitly, or use heads dividing ${m.dModel}: ${divisors(m.dModel)}`);
      const hd = headDimOf(m);
      if (rope) {
        const rot = Math.round(hd * rope.fraction);
        if (rot <= 0 || rot % 2 !== 0)
          fail(K, `rope rotates headDim·fraction = ${hd}·${rope.fraction} = ${rot} dims, which must be a positive even number`, src, `choose fraction so that ${hd}·fraction is even (e.g. 1 or 0.5)`);
      }
    },
    build(ctx: BuildCtx, x: Node): Node {
      const d = ctx.config.dModel;
      const hd = headDimOf(ctx.config);
      const [b, t] = x.shape;
      const qkv = op.linear(x, ctx.param("qkv.weight", [(heads + 2 * kvHeads) * hd, d], ctx.inInit()));
      const [q0, k0, v0] = op.split(qkv, x.shape.length - 1, [heads * hd, kvHeads * hd, kvHeads * hd]);
      let q = op.reshape(q0!, [b!, t!, heads, hd]);
      let k = op.reshape(k0!, [b!, t!, kvHeads, hd]);
      const v = op.reshape(v0!, [b!, t!, kvHeads, hd]);
      if (rope) {
        q = op.rope(q, ctx.positions, rope);
        k = op.rope(k, ctx.positions, rope);
      }
      const y = op.attention(q, k, v, { scale: 1 / Math.sqrt(hd) });
      return op.linear(op.reshape(y, [b!, t!, heads * hd]), ctx.param("o_proj.weight", [d, heads * hd], ctx.outInit()));
    },
  };
}

// ---- Mamba-2 ------------------------------------------------------------------------------

export interface Mamba2Options {
  /** SSM state size N, default 128. */
  dState?: number;
  /** Head dim P, default 64; heads H = d_inner / headDim. */
  headDim?: number;
  /** Optional explicit head count; must equal d_inner / headDim. */
  heads?: number;
  /** B/C groups G (like GQA for SSMs), default 1; must divide the heads. */
  groups?: number;
  /** d_inner = expand·dModel, default 2. */
  expand?: number;
  /** Causal conv width, default 4. */
  dConv?: number;
  /** SSD chunk length, default 128. */
  chunk?: number;
  /** Epsilon of the gated RMSNorm, default 1e-5. */
  normEps?: number;
}

/** Mamba-2 (SSD) mixer, Megatron-LM's MambaMixer layout. */
export function mamba2(o: Mamba2Options = {}): LayerDef {
  const src = captureUserLoc();
  const K = "mamba2";
  unknownKeys(K, o, ["dState", "headDim", "heads", "groups", "expand", "dConv", "chunk", "normEps"], src);
  const dState = posInt(K, "dState", o.dState ?? 128, src, "e.g. dState: 128");
  const headDim = posInt(K, "headDim", o.headDim ?? 64, src, "e.g. headDim: 64");
  const explicitHeads = o.heads === undefined ? undefined : posInt(K, "heads", o.heads, src);
  const groups = posInt(K, "groups", o.groups ?? 1, src, "e.g. groups: 1 or 8");
  const expand = posNum(K, "expand", o.expand ?? 2, src, "e.g. expand: 2");
  const dConv = posInt(K, "dConv", o.dConv ?? 4, src, "e.g. dConv: 4");
  const chunk = posInt(K, "chunk", o.chunk ?? 128, src, "e.g. chunk: 128");
  const normEps = posNum(K, "normEps", o.normEps ?? 1e-5, src);
  if (explicitHeads !== undefined && explicitHeads % groups !== 0)
    fail(K, `groups ${groups} does not divide heads ${explicitHeads}`, src, `valid groups: ${divisors(explicitHeads)}`);

  const sizes = (m: ModelConfig) => {
    const dInner = innerDim(K, expand, m.dModel, src);
    return { dInner, H: dInner / headDim, convDim: dInner + 2 * groups * dState };
  };
  const config: Record<string, AttrValue> = { dState, headDim, groups, expand, dConv, chunk, normEps };
  if (explicitHeads !== undefined) config.heads = explicitHeads;
  return {
    kind: K,
    config,
    src,
    validate(m: ModelConfig) {
      const dInner = innerDim(K, expand, m.dModel, src);
      if (explicitHeads !== undefined && explicitHeads * headDim !== dInner)
        fail(K, `heads·headDim = ${explicitHeads}·${headDim} = ${explicitHeads * headDim} but d_inner = expand·dModel = ${expand}·${m.dModel} = ${dInner}`, src, `valid headDim values divide ${dInner} (heads = ${dInner}/headDim): ${divisors(dInner)}`);
      if (dInner % headDim !== 0)
        fail(K, `headDim ${headDim} does not divide d_inner = expand·dModel = ${expand}·${m.dModel} = ${dInner}`, src, `valid headDim values divide ${dInner}: ${divisors(dInner)}`);
      const H = dInner / headDim;
      if (H % groups !== 0) fail(K, `groups ${groups} does not divide heads = d_inner/headDim = ${dInner}/${headDim} = ${H}`, src, `valid groups: ${divisors(H)}`);
    },
    kernelCheck(m: ModelConfig) {
      // The GEMM kernels need projection widths that are multiples of 8: in_proj's is
      // 2·d_inner + 2·groups·dState + heads, so in practice heads must be a multiple of 8.
      const dInner = innerDim(K, expand, m.dModel, src);
      const H = dInner / headDim;
      const width = (di: number, h: number) => 2 * di + 2 * groups * dState + h;
      if (width(dInner, H) % 8 === 0 && dInner % 8 === 0) return;
      const fixes: string[] = [];
      for (let di = dInner + 1; di <= 16 * dInner && fixes.length === 0; di++) {
        const e = di / m.dModel;
        if (di % headDim !== 0 || (di / headDim) % groups !== 0 || width(di, di / headDim) % 8 !== 0 || di % 8 !== 0 || !Number.isInteger(e * 2)) continue;
        fixes.push(`expand: ${e} (d_inner ${di}, ${di / headDim} heads)`);
      }
      const step = (8 * headDim) / expand;
      if (Number.isInteger(step)) fixes.push(`dModel a multiple of ${step} with these options`);
      fail(K, `in_proj's width 2·d_inner + 2·groups·dState + heads = 2·${dInner} + 2·${groups}·${dState} + ${H} = ${width(dInner, H)} is not a multiple of 8, which the CUDA GEMM kernels need (heads = d_inner/headDim = ${dInner}/${headDim} = ${H}; make it a multiple of 8)`, src, `change ${fixes.join(", or ")}; the interpreter (strata ir / info) runs this model as it is`);
    },
    build(ctx: BuildCtx, x: Node): Node {
      const d = ctx.config.dModel;
      const { dInner, H, convDim } = sizes(ctx.config);
      const G = groups;
      const N = dState;
      const P = headDim;
      const [b, t] = x.shape;
      const ax = x.shape.length - 1;
      const zxbcdt = op.linear(x, ctx.param("in_proj.weight", [2 * dInner + 2 * G * N + H, d], ctx.inInit()));
      const [z, xBC0, dtRaw] = op.split(zxbcdt, ax, [dInner, convDim, H]);
      const convW = ctx.param("conv1d.weight", [convDim, dConv], init.kaimingUniform(dConv));
      const convB = ctx.param("conv1d.bias", [convDim], init.kaimingUniform(dConv));
      const xBC = op.silu(op.conv1d(xBC0!, convW, convB));
      const [xs, Bs, Cs] = op.split(xBC, ax, [dInner, G * N, G * N]);
      const xh = op.reshape(xs!, [b!, t!, H, P]);
      const Bm = op.reshape(Bs!, [b!, t!, G, N]);
      const Cm = op.reshape(Cs!, [b!, t!, G, N]);
      const dtBias = ctx.param("dt_bias", [H], init.dtBias(), "f32");
      const dt = op.softplus(op.add(dtRaw!, dtBias));
      const A = op.neg(op.exp(ctx.param("A_log", [H], init.aLog(1, 16), "f32")));
      const D = ctx.param("D", [H], init.ones(), "f32");
      let y = op.ssdScan(xh, dt, A, Bm, Cm, { chunk });
      y = op.cast(op.add(y, op.mul(xh, op.reshape(D, [H, 1]))), ctx.config.dtype);
      const yFlat = op.reshape(y, [b!, t!, dInner]);
      const normed = op.gatedRmsnorm(yFlat, z!, ctx.param("norm.weight", [dInner], init.ones()), { eps: normEps, groupSize: dInner / G });
      return op.linear(normed, ctx.param("out_proj.weight", [d, dInner], ctx.outInit()));
    },
  };
}

// ---- Mamba-1 ------------------------------------------------------------------------------

export interface MambaOptions {
  /** SSM state size N, default 16. */
  dState?: number;
  /** d_inner = expand·dModel, default 2. */
  expand?: number;
  /** Rank of the dt projection, default "auto" = ceil(dModel/16). */
  dtRank?: number | "auto";
  /** Causal conv width, default 4. */
  dConv?: number;
}

/** Mamba-1 (selective scan) mixer, mamba_ssm's Mamba layout without linear biases. */
export function mamba(o: MambaOptions = {}): LayerDef {
  const src = captureUserLoc();
  const K = "mamba";
  unknownKeys(K, o, ["dState", "expand", "dtRank", "dConv"], src);
  const dState = posInt(K, "dState", o.dState ?? 16, src, "e.g. dState: 16");
  const expand = posNum(K, "expand", o.expand ?? 2, src, "e.g. expand: 2");
  const dtRankOpt = o.dtRank ?? "auto";
  if (dtRankOpt !== "auto") posInt(K, "dtRank", dtRankOpt, src, 'a positive integer or "auto" (= ceil(dModel/16))');
  const dConv = posInt(K, "dConv", o.dConv ?? 4, src, "e.g. dConv: 4");
  const rankOf = (m: ModelConfig) => (dtRankOpt === "auto" ? Math.ceil(m.dModel / 16) : dtRankOpt);
  return {
    kind: K,
    config: { dState, expand, dtRank: dtRankOpt, dConv },
    src,
    validate(m: ModelConfig) {
      innerDim(K, expand, m.dModel, src);
    },
    build(ctx: BuildCtx, x: Node): Node {
      const d = ctx.config.dModel;
      const dInner = innerDim(K, expand, d, src);
      const N = dState;
      const R = rankOf(ctx.config);
      const ax = x.shape.length - 1;
      const xz = op.linear(x, ctx.param("in_proj.weight", [2 * dInner, d], ctx.inInit()));
      const [x0, z] = op.split(xz, ax, [dInner, dInner]);
      const convW = ctx.param("conv1d.weight", [dInner, dConv], init.kaimingUniform(dConv));
      const convB = ctx.param("conv1d.bias", [dInner], init.kaimingUniform(dConv));
      const u = op.silu(op.conv1d(x0!, convW, convB));
      const dbc = op.linear(u, ctx.param("x_proj.weight", [R + 2 * N, dInner], ctx.inInit()));
      const [dtLow, Bm, Cm] = op.split(dbc, ax, [R, N, N]);
      const dtInit: InitSpec = { kind: "uniform", low: -(R ** -0.5), high: R ** -0.5 };
      const dtW = ctx.param("dt_proj.weight", [dInner, R], dtInit);
      const dt = op.softplus(op.add(op.linear(dtLow!, dtW), ctx.param("dt_proj.bias", [dInner], init.dtBias(), "f32")));
      // mamba_ssm's S4D-real init: A_log = log(1..N) in every channel row (A = −[1..N]), deterministic.
      const A = op.neg(op.exp(ctx.param("A_log", [dInner, N], init.aLogArange(N), "f32")));
      const D = ctx.param("D", [dInner], init.ones(), "f32");
      let y = op.selectiveScan(u, dt, A, Bm!, Cm!);
      y = op.cast(op.add(y, op.mul(u, D)), ctx.config.dtype);
      y = op.mul(y, op.silu(z!));
      return op.linear(y, ctx.param("out_proj.weight", [d, dInner], ctx.outInit()));
    },
  };
}
