/**
 * Matmul family: the GEMMs of the backward pass (include/matmul.cuh, templates/matmul.cu.hbs).
 * Every forward `linear(x [B,T,K], W [N,K])` gives two GEMMs in the training graph:
 *   dgrad  linear(gy [B,T,N], transpose(W)) → [B,T,K]: gemm.ts hands `linear`s whose weight is not
 *          a plain param here. A = gy (K-major), B = W read in place as an MN-major operand.
 *          Its epilogue chain (cast, the `add` of a value read twice) fuses as in the forward GEMM.
 *   wgrad  sumTo(matmul(transpose(gy, [0,2,1]), x), [N,K]) → f32 [N,K]: this module's `absorb`
 *          claims the sumTo (and the cast/elementwise chain after it), so the whole weight
 *          gradient is ONE kernel contracting over all B·T tokens (the sum over the batch is the
 *          same contraction). A = gy, B = x, both MN-major (token-major rows read in place).
 *   other  any other `matmul` (batched, operands possibly transposed views of stored tensors): a
 *          general strided kernel (correct for any strides and dtypes; not tuned), with a chain of
 *          unary elementwise ops fused into its store.
 * Numerics: tensor-core inputs are bf16; an f32 operand (a gradient kept in f32) is rounded to bf16
 * as it is loaded into shared memory; accumulation is always fp32. Deterministic: each output
 * tile is owned by one CTA that walks the contraction in a fixed order, no atomics; a weight
 * gradient with few output tiles splits its tokens in a number of parts fixed by the shape
 * (partials in launch scratch, added in a fixed order by a second pass).
 * Tiles: wgmma on sm_90a, mma.sync elsewhere (the configs of gemm.cuh, measured in
 * tests/gpu/matmul_test.cu).
 */
import type { Dim } from "../ir/dims.js";
import type { DType, Node } from "../ir/node.js";
import { getOp } from "../ir/registry.js";
import { BufferTable } from "../codegen/buffers.js";
import { elementwiseExpr } from "../codegen/expr.js";
import { renderTemplate } from "../codegen/templates.js";
import { CTYPE, elementIndex, type TensorRef } from "../codegen/tensors.js";
import { batchStride, enforce, need, stride8 } from "./common.js";
import type { FuseContext, FusionGroup, KernelBody, KernelFamilyModule, RenderContext, Unsupported } from "./family.js";
import { tunedTiles, type KernelSignature } from "../tune/db.js";
import { DEFAULT_GEMM_TILES, defaultTiles, gemmConfigType, type GemmTiles } from "./tiles.js";
import { epilogueReads } from "../tune/epilogue.js";

/** Tile configurations of include/matmul.cuh: gemm.cuh's configs (tiles.ts), the same defaults. */
export type MatmulTiles = GemmTiles;
export const DEFAULT_MATMUL_TILES = DEFAULT_GEMM_TILES;

/** Operand dtypes of the tensor-core kernels (f32 is rounded to bf16 in shared memory). */
const TC_DTYPES: ReadonlySet<DType> = new Set(["bf16", "f32"]);
/** Operand and output dtypes of the general kernel. */
const GEN_DTYPES: ReadonlySet<DType> = new Set(["bf16", "f32", "f16"]);

const isTokenShape = (s: readonly Dim[]) => s.length >= 2 && s[0] === "B" && s[1] === "T";
const mult8 = (d: Dim | undefined): d is number => typeof d === "number" && d > 0 && d % 8 === 0;

/** The input of a transpose that swaps the last two axes (and keeps the others), else undefined. */
function swapLastInput(n: Node): Node | undefined {
  if (n.op !== "transpose") return undefined;
  const p = n.attrs.perm as number[];
  const r = p.length;
  const ok = r >= 2 && p.every((v, i) => (i < r - 2 ? v === i : v === (i === r - 2 ? r - 1 : r - 2)));
  return ok ? n.inputs[0] : undefined;
}

/** wgrad: matmul(transpose(gy [B,T,N]), x [B,T,K]) with N, K multiples of 8 and bf16/f32 operands. */
function wgradOperands(mm: Node): { gy: Node; x: Node; n: number; k: number } | undefined {
  if (mm.op !== "matmul") return undefined;
  const gy = swapLastInput(mm.inputs[0]!);
  const x = mm.inputs[1]!;
  if (!gy || gy.shape.length !== 3 || x.shape.length !== 3 || !isTokenShape(gy.shape) || !isTokenShape(x.shape)) return undefined;
  const [n, k] = [gy.shape[2], x.shape[2]];
  if (!mult8(n) || !mult8(k) || !TC_DTYPES.has(gy.dtype) || !TC_DTYPES.has(x.dtype)) return undefined;
  return { gy, x, n, k };
}

/** The sumTo of a wgrad group (absorbed by `absorb`), if any. */
function wgradSum(g: FusionGroup): Node | undefined {
  const mm = g.anchor!;
  return g.nodes.find((m) => m.op === "sumTo" && m.inputs[0] === mm);
}

/** dgrad (a `linear` whose weight is not a param): B operand = W read MN-major, or the weight K-major. */
function linearOperands(lin: Node): { x: Node; b: Node; mnB: boolean; n: number; k: number } | Unsupported {
  const [x, w] = lin.inputs as [Node, Node];
  if (w.shape.length !== 2 || w.shape.some((d) => typeof d !== "number") || isTokenShape(w.shape))
    return { message: `the matmul kernel takes a linear's weight as a fixed-size matrix [N, K]; got [${w.shape}] (${w.op})` };
  const [n, k] = w.shape as [number, number];
  if (!mult8(n) || !mult8(k))
    return {
      message: `the GEMM kernels need weight rows N and columns K that are multiples of 8; this linear's weight (${w.op}) is [${n}, ${k}]`,
      hint: "choose layer sizes that make each projection's widths multiples of 8",
    };
  const base = swapLastInput(w);
  const b = base ?? w;
  if (!TC_DTYPES.has(x.dtype) || !TC_DTYPES.has(b.dtype)) return { message: `the GEMM kernels take bf16 or f32 operands, got ${x.dtype} · ${b.dtype}` };
  if (!isTokenShape(x.shape)) return { message: `the GEMM kernels need a per-token input [B, T, ...], got [${x.shape}]` };
  return { x, b, mnB: base !== undefined, n, k };
}

const dimOk = (d: Dim) => typeof d === "number" || d === "B" || d === "T";

// ---- the epilogue chain ------------------------------------------------------------------------

/** Is e a node the store can apply after `cur` (same shape, elementwise, operands ready)? */
function epilogueVeto(e: Node, cur: Node, anchor: Node, f: FuseContext, unaryOnly: boolean): string | undefined {
  const d = getOp(e.op);
  if (!d.epilogue) return `${e.op} is not an elementwise op an epilogue can apply`;
  if (!f.free(e)) return "already computed by another group";
  if (e.shape.join() !== cur.shape.join()) return `it changes the shape [${cur.shape}] → [${e.shape}]`;
  const others = e.inputs.filter((o) => o.key !== cur.key);
  if (unaryOnly && others.length) return "the general matmul kernel fuses only unary ops";
  for (const o of others) {
    if (isTokenShape(o.shape) && !isTokenShape(e.shape)) return `operand ${o.op} is per token`;
    if (f.position(o) > f.position(anchor) && !f.paramOnly(o)) return `operand ${o.op} is computed after the anchor`;
  }
  return undefined;
}

/** Absorb the single-consumer chain after `from` while `epilogueVeto` allows. */
function absorbChain(grp: FusionGroup, f: FuseContext, from: Node, unaryOnly: boolean): void {
  f.absorbChain(grp, (e, cur) => epilogueVeto(e, cur, grp.anchor!, f, unaryOnly), { from });
}

/**
 * dgrad's epilogue (gemm.ts hands `linear`s with a non-param weight here): the chain of ops the
 * store can apply that read no other per-token tensor (a cast, a unary op, a weight-only operand).
 * A store that reads a [tokens, N] operand — an activation's derivative recomputed from the stored
 * pre-activation, a stored gradient added — stalls both consumer warpgroups of the
 * warp-specialized kernel while the tensor cores idle: on the H200 the 0.85B hybrid's MLP dgrad
 * (16384 × 8192 × 2048) took 1322 µs with gelu′(h) in its store, against 786 µs plain plus 259 µs
 * for the vectorized row kernel that multiplies by gelu′(h) (tests/gpu/epilogue_bench.cu, PERF-NOTES).
 */
export function absorbLinearEpilogue(grp: FusionGroup, f: FuseContext): void {
  f.absorbChain(grp, (e, cur) => {
    const why = epilogueVeto(e, cur, grp.anchor!, f, false);
    if (why) return why;
    const read = e.inputs.find((o) => o.key !== cur.key && isTokenShape(o.shape));
    return read ? `operand ${read.op} is per token: reading it in the GEMM's store stalls its tensor cores (a row kernel is faster)` : undefined;
  });
}

/**
 * The C++ of the store for two adjacent outputs (acc0, acc1 at (row, col), (row, col + 1)):
 * `acc` nodes hold the accumulator; `index(ref, c)` addresses a tensor at output column c.
 */
function pairEpilogue(g: FusionGroup, ctx: RenderContext, bufs: BufferTable, acc: ReadonlySet<Node>, index: (r: TensorRef, col: string) => string): string {
  const out = g.outputs[0]!;
  need(g.outputs.length === 1 && out === g.nodes[g.nodes.length - 1], g.anchor!, "a matmul group must have a single output at the end of its epilogue chain");
  const inside = new Map(g.nodes.map((m, i) => [m.key, i]));
  const lines: string[] = [];
  for (const half of [0, 1]) {
    const col = half ? "(col + 1)" : "col";
    const val = (m: Node): string => {
      if (acc.has(m)) return `acc${half}`;
      if (inside.has(m.key)) return `e${half}_${inside.get(m.key)}`;
      const r = ctx.ref(m);
      return `st::ld(p.p${bufs.slot(r)} + ${index(r, col)})`;
    };
    for (const m of g.nodes) if (!acc.has(m)) lines.push(`    const float e${half}_${inside.get(m.key)} = ${elementwiseExpr(m, m.inputs.map(val))};`);
    lines.push(`    const float r${half} = ${val(out)};`);
  }
  const o = ctx.outRef(out);
  const oi = bufs.slot(o, true);
  const oIdx = index(o, "col");
  if (o.dtype === "bf16") lines.push(`    strata::store_bf16x2(p.p${oi} + ${oIdx}, r0, r1);`);
  else if (o.dtype === "f32") lines.push(`    strata::store_f32x2(p.p${oi} + ${oIdx}, r0, r1);`);
  else lines.push(`    st::st(p.p${oi} + ${oIdx}, r0);`, `    st::st(p.p${oi} + ${index(o, "(col + 1)")}, r1);`);
  return lines.join("\n");
}

const fieldsOf = (bufs: BufferTable) =>
  bufs
    .params()
    .split(", ")
    .map((fl) => `    ${fl.replace(" __restrict__", "")};`)
    .join("\n");

/** Split-K of weight gradients: tiles · splits ≤ one wave of an H200 (include/matmul.cuh's matmul_splits). */
const SPLIT_WAVE = 132;
const MAX_SPLITS = 8;

/**
 * The default tiles — the wave model's for this shape (tiles.ts defaultTiles: a weight gradient's
 * M × N is the weight's, a data gradient's M the project's max tokens) — or the tuning database's
 * choice for this signature (tune/db.ts).
 */
function tilesFor(ctx: RenderContext, sig: Omit<KernelSignature, "family" | "path"> & { path: "dgrad" | "wgrad" }): { tiles: MatmulTiles; provenance: Record<string, string> } {
  const backend = ctx.arch === "sm_90a" ? "wgmma" : "mma";
  const m = sig.path === "wgrad" ? sig.m : ctx.maxTokens;
  const defaults = m ? defaultTiles(sig.path, backend, m, sig.n) : DEFAULT_MATMUL_TILES[backend];
  return tunedTiles(ctx.tuning, ctx.arch, { family: "matmul", ...sig }, defaults);
}

/** A weight gradient's largest token split for these tiles (the scratch holds this many partials). */
export function wgradMaxSplits(m: number, n: number, tiles: { bm: number; bn: number }): number {
  const outTiles = Math.ceil(m / tiles.bm) * Math.ceil(n / tiles.bn);
  return Math.min(MAX_SPLITS, Math.max(1, Math.floor(SPLIT_WAVE / outTiles)));
}

// ---- the three renderings ----------------------------------------------------------------------

function renderTensorCore(
  g: FusionGroup,
  ctx: RenderContext,
  bufs: BufferTable,
  a: { ref: TensorRef; ld: number; mn: boolean },
  b: { ref: TensorRef; ld: number; mn: boolean },
  dims: { M: string; N: string; K: string },
  epilogue: string,
  path: "dgrad" | "wgrad",
  picked: { tiles: MatmulTiles; provenance: Record<string, string> },
  split?: { maxSplits: number; scratch: number },
): KernelBody {
  const anchor = g.anchor!;
  for (const [what, r] of [["A", a.ref], ["B", b.ref]] as const)
    need(r.offset % 8 === 0 && a.ld % 8 === 0 && b.ld % 8 === 0, anchor, `matmul operand ${what}: offset ${r.offset} and row strides (${a.ld}, ${b.ld}) must be multiples of 8 elements (16-byte aligned rows)`);
  const { tiles, provenance } = picked;
  const [ai, bi] = [bufs.slot(a.ref), bufs.slot(b.ref)]; // before the declarations are rendered
  const body = renderTemplate("matmul.cu.hbs", {
    general: false,
    fields: fieldsOf(bufs),
    epilogue,
    decls: bufs.declarations(),
    callArgs: bufs.callArgs(),
    config: gemmConfigType(tiles),
    ta: CTYPE[a.ref.dtype],
    tb: CTYPE[b.ref.dtype],
    mnA: a.mn,
    mnB: b.mn,
    a: ai,
    aOffset: a.ref.offset,
    lda: a.ld,
    b: bi,
    bOffset: b.ref.offset,
    ldb: b.ld,
    ...dims,
    split: split !== undefined,
    maxSplits: split?.maxSplits ?? 1,
    scratch: split?.scratch ?? -1,
  });
  return {
    group: g,
    template: "matmul.cu.hbs",
    body,
    buffers: bufs.args,
    tiles: { path, ...tiles, ...(split ? { maxSplits: split.maxSplits } : {}), ...provenance },
    ...(bufs.scratchRequests.length ? { scratch: [...bufs.scratchRequests] } : {}),
  };
}

function renderLinear(g: FusionGroup, ctx: RenderContext): KernelBody {
  const lin = g.anchor!;
  const ops = linearOperands(lin);
  if ("message" in ops) return enforce(lin, ops) as never;
  const bufs = new BufferTable();
  const xr = ctx.ref(ops.x);
  need(xr.tokenDims === 2 && stride8(xr), lin, `GEMM input row stride ${xr.rowStride} and offset ${xr.offset} must be multiples of 8 elements`);
  need(xr.capacityStride === undefined, lin, "a GEMM input cannot be a KV cache");
  const a = { ref: xr, ld: xr.rowStride, mn: false };
  bufs.slot(xr);
  const br = ctx.ref(ops.b);
  need(br.tokenDims === 0, lin, "a linear's weight must not be per token");
  // MN-major: W [N, K] stored, read as B(k_out, n) = W[n·K + k_out]; K-major: the [K_out, N] weight as stored
  const b = { ref: br, ld: ops.mnB ? ops.n : ops.k, mn: ops.mnB };
  // out [B,T,N]: rows are tokens, columns the weight's rows
  const epi = pairEpilogue(g, ctx, bufs, new Set([lin]), (r, col) => elementIndex(r, [ops.n], true, col));
  const picked = tilesFor(ctx, { path: "dgrad", n: ops.n, k: ops.k, ta: xr.dtype, tb: br.dtype, mnA: false, mnB: ops.mnB, out: ctx.outRef(g.outputs[0]!).dtype, ...epilogueReads(g, new Set([lin]), ctx) });
  return renderTensorCore(g, ctx, bufs, a, b, { M: "B * T", N: String(ops.n), K: String(ops.k) }, epi, "dgrad", picked);
}

function renderWgrad(g: FusionGroup, ctx: RenderContext, s: Node): KernelBody {
  const mm = g.anchor!;
  const w = wgradOperands(mm)!;
  const bufs = new BufferTable();
  const gr = ctx.ref(w.gy);
  const xr = ctx.ref(w.x);
  for (const r of [gr, xr]) {
    need(r.tokenDims === 2 && r.capacityStride === undefined && stride8(r), mm, `wgrad operands must be token-major tensors with row strides and offsets that are multiples of 8 (got stride ${r.rowStride}, offset ${r.offset})`);
    bufs.slot(r);
  }
  // out [N, K] (not per token): element (row, col) is row·K + col of the flat [N, K]
  const F = [w.n, w.k];
  const epi = pairEpilogue(g, ctx, bufs, new Set([mm, s]), (r, col) => elementIndex(r, F, false, `((long long)row * ${w.k} + ${col})`));
  // few output tiles (a small weight): split the tokens to fill a wave of CTAs (matmul_splits picks
  // the count at run time from the shape and B·T; the scratch holds the most it may pick)
  const picked = tilesFor(ctx, { path: "wgrad", m: w.n, n: w.k, ta: gr.dtype, tb: xr.dtype, mnA: true, mnB: true, out: ctx.outRef(g.outputs[0]!).dtype, ...epilogueReads(g, new Set([mm, s]), ctx) });
  const maxSplits = wgradMaxSplits(w.n, w.k, picked.tiles);
  const split = maxSplits > 1 ? { maxSplits, scratch: bufs.scratch(0, maxSplits * w.n * w.k * 4, "f32") } : undefined;
  return renderTensorCore(g, ctx, bufs, { ref: gr, ld: gr.rowStride, mn: true }, { ref: xr, ld: xr.rowStride, mn: true }, { M: String(w.n), N: String(w.k), K: "B * T" }, epi, "wgrad", picked, split);
}

/** A tensor seen through transposes: its buffer slot, element offset, and each axis's size and stride (C++). */
interface Strided {
  slot: number;
  dtype: DType;
  offset: number;
  dims: string[];
  strides: string[];
}

function contiguousStrides(dims: readonly string[]): string[] {
  const s: string[] = [];
  let acc = "1";
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc = acc === "1" ? `(long long)${dims[i]}` : `${acc} * ${dims[i]}`;
  }
  return s;
}

function strided(ctx: RenderContext, bufs: BufferTable, n: Node, output = false): Strided {
  const perms: number[][] = [];
  let cur = n;
  while (cur.op === "transpose") {
    perms.push(cur.attrs.perm as number[]);
    cur = cur.inputs[0]!;
  }
  const r = output ? ctx.outRef(cur) : ctx.ref(cur);
  let dims = r.shape.map(String);
  let strides =
    r.tokenDims === 2 ? [`(${batchStride(r)})`, `(long long)${r.rowStride}`, ...contiguousStrides(dims.slice(2))] : contiguousStrides(dims);
  for (const p of perms.reverse()) {
    dims = p.map((i) => dims[i]!);
    strides = p.map((i) => strides[i]!);
  }
  return { slot: bufs.slot(r, output), dtype: r.dtype, offset: r.offset, dims, strides };
}

/** `long long o = offset + Σ batch index · stride` over the batch axes of z (last fastest). */
function batchOffset(v: string, t: Strided, nb: number): string[] {
  const lines = [`    ${v} = ${t.offset};`, "    {", "      int z_ = z;"];
  for (let i = nb - 1; i >= 0; i--) {
    if (i > 0) lines.push(`      ${v} += (long long)(z_ % (${t.dims[i]})) * ${t.strides[i]};`, `      z_ /= (${t.dims[i]});`);
    else lines.push(`      ${v} += (long long)z_ * ${t.strides[i]};`);
  }
  lines.push("    }");
  return lines;
}

function renderGeneral(g: FusionGroup, ctx: RenderContext): KernelBody {
  const mm = g.anchor!;
  const bufs = new BufferTable();
  const a = strided(ctx, bufs, mm.inputs[0]!);
  const b = strided(ctx, bufs, mm.inputs[1]!);
  const out = g.outputs[0]!;
  need(g.outputs.length === 1 && out === g.nodes[g.nodes.length - 1], mm, "a matmul group must have a single output at the end of its epilogue chain");
  const o = strided(ctx, bufs, out, true);
  const r = mm.shape.length;
  const nb = r - 2;
  const inside = new Map(g.nodes.map((m, i) => [m.key, i]));
  const val = (m: Node) => (m === mm ? "acc" : `e${inside.get(m.key)}`);
  const store = [
    "    long long oc;",
    ...batchOffset("oc", o, nb),
    `    oc += (long long)m * ${o.strides[r - 2]} + (long long)n * ${o.strides[r - 1]};`,
    ...g.nodes.filter((m) => m !== mm).map((m) => `    const float e${inside.get(m.key)} = ${elementwiseExpr(m, m.inputs.map(val))};`),
    `    st::st(p.p${o.slot} + oc, ${val(out)});`,
  ];
  const batches = a.dims.slice(0, nb).map((d) => `(${d})`).join(" * ") || "1";
  const body = renderTemplate("matmul.cu.hbs", {
    general: true,
    fields: fieldsOf(bufs),
    offsets: [...batchOffset("oa", a, nb), ...batchOffset("ob", b, nb)].join("\n"),
    store1: store.join("\n"),
    decls: bufs.declarations(),
    callArgs: bufs.callArgs(),
    strides: [a.strides[r - 2], a.strides[r - 1], b.strides[r - 2], b.strides[r - 1]].join(", "),
    ta: CTYPE[a.dtype],
    tb: CTYPE[b.dtype],
    a: a.slot,
    b: b.slot,
    M: a.dims[r - 2],
    N: b.dims[r - 1],
    K: a.dims[r - 1],
    batches,
  });
  return { group: g, template: "matmul.cu.hbs", body, buffers: bufs.args, tiles: { path: "general", tile: 64 } };
}

// ---- the module --------------------------------------------------------------------------------

export const matmul: KernelFamilyModule = {
  family: "matmul",

  /** `matmul` anchors, and `linear`s that gemm.ts hands over (weight not a param). */
  check(n) {
    if (n.op === "linear") {
      const ops = linearOperands(n);
      return "message" in ops ? ops : undefined;
    }
    for (const x of [...n.inputs, n])
      if (!GEN_DTYPES.has(x.dtype)) return { message: `the matmul kernel takes bf16, f16 or f32 tensors; ${x.op} is ${x.dtype}` };
    for (const x of [...n.inputs, n])
      if (!x.shape.every(dimOk)) return { message: `the matmul kernel takes fixed sizes and the batch/sequence axes B, T; ${x.op} is [${x.shape}]` };
    return undefined;
  },

  absorb(grp, f) {
    const mm = grp.anchor!;
    const w = wgradOperands(mm);
    if (w) {
      const us = f.uses(mm);
      const s = us.length === 1 ? us[0]! : undefined;
      const fits = s && s.op === "sumTo" && s.shape.join() === `${w.n},${w.k}` && f.free(s) && !f.isOutput(mm);
      if (fits) {
        f.add(grp, s);
        f.log(grp, s, true, "reduction sumTo", "the weight gradient's sum over the batch is the same contraction over all B·T tokens");
        absorbChain(grp, f, s, false);
        return;
      }
      f.log(grp, s ?? mm, false, "reduction sumTo", "the product is not reduced to [N, K] by a single sumTo: the general kernel stores it");
    }
    absorbChain(grp, f, mm, true);
  },

  render(g: FusionGroup, ctx: RenderContext): KernelBody {
    const n = g.anchor!;
    enforce(n, matmul.check!(n));
    if (n.op === "linear") return renderLinear(g, ctx);
    const s = wgradOperands(n) ? wgradSum(g) : undefined;
    return s ? renderWgrad(g, ctx, s) : renderGeneral(g, ctx);
  },
};
