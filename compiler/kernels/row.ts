/**
 * The row family: kernels over token rows (a norm's block is one row; an elementwise group's
 * vectorized loop spreads all rows' 8-column groups over blocks, several per thread: ROW_UNROLL).
 * Norms (RMSNorm, LayerNorm, gated RMSNorm) absorb the elementwise work that feeds them (e.g. the
 * residual add, stored too when others read it) and the chain after them; leftover elementwise
 * chains and rope become row kernels of their own. Bodies are rendered from the IR through the
 * expression table (codegen/expr.ts); operands outside the group are loaded through their
 * TensorRef with broadcasting resolved at compile time, so the only runtime sizes are B and T.
 */
import { StrataError } from "../ir/errors.js";
import type { Node } from "../ir/node.js";
import { getOp, isNorm } from "../ir/registry.js";
import { BufferTable } from "../codegen/buffers.js";
import { elementwiseExpr } from "../codegen/expr.js";
import type { KernelBody } from "./family.js";
import { KERNEL_NAME, renderTemplate } from "../codegen/templates.js";
import { CTYPE, elementIndex, prod, type TensorRef } from "../codegen/tensors.js";
import type { Dim } from "../ir/dims.js";
import type { FuseContext, FusionGroup, KernelFamilyModule, RenderContext } from "./family.js";

/** Can `p` be computed inside a row kernel from memory operands (elementwise, same row)? */
export function rowFusible(p: Node): boolean {
  return getOp(p.op).kind === "elementwise";
}

/** Pull the free elementwise producers of `n` that have the row's shape into the group. */
export function absorbProducers(grp: FusionGroup, n: Node, rowShape: readonly unknown[], f: FuseContext): void {
  // rope and concat read other elements of their inputs: those must come from memory
  if (getOp(n.op).needsNeighbour) return;
  for (const p of n.inputs) {
    if (!f.free(p) || !rowFusible(p)) continue;
    if (p.shape.join() !== rowShape.join()) {
      f.log(grp, p, false, `prologue ${p.op}`, `shape [${p.shape}] differs from the row shape [${rowShape}]`);
      continue;
    }
    if (f.wouldCycle(grp, p)) {
      f.log(grp, p, false, `prologue ${p.op}`, "another kernel between it and this group reads it or feeds it: fusing would make the kernels' order cyclic");
      continue;
    }
    f.add(grp, p);
    f.log(grp, p, true, `prologue ${p.op}`, f.uses(p).length > 1 ? "elementwise, same rows; also stored as an output for its other readers" : "elementwise, same rows");
    absorbProducers(grp, p, rowShape, f);
  }
}

export const row: KernelFamilyModule = {
  family: "row",
  /** A norm group: its elementwise producers, then the elementwise chain after it. */
  absorb(grp, f) {
    const n = grp.anchor!;
    absorbProducers(grp, n, n.inputs[0]!.shape, f);
    f.absorbEpilogue(grp, (e) => (rowFusible(e) ? undefined : `${e.op} is not elementwise`), { broadcast: true });
  },
  render: renderRow,
};

/** A row group's code: the body (no norm), or a norm's two passes; `ptr(i)` names buffer i. */
interface RowCode {
  cols: number;
  rowTokens: boolean;
  preludes: string[];
  body?: string;
  /** The vectorized body (elementwise groups whose columns allow it): see `VEC`. */
  vec?: VecLoop & { aligned: string };
  /**
   * A norm's passes; `vec`: both vectorized too (columns and operands allow it), taken when the
   * base pointers in `aligned` are, else the scalar passes (then indented to sit in an `else`).
   */
  norm?: { pre: string; post: string; groups: number; centered: boolean; eps: string; vec?: { aligned: string; pre: VecLoop; post: VecLoop } };
}

/** One vectorized loop over c0: vector loads, store arrays, the per-element statements, vector stores. */
interface VecLoop {
  /** Unrolled loops only: the arrays (one element per unit) the loads fill. */
  arrays?: string;
  loads: string;
  decls: string;
  body: string;
  stores: string;
}

function rowCode(g: FusionGroup, ctx: RenderContext, bufs: BufferTable, ptr: (i: number) => string, asPrologue = false, vectorize = true): RowCode {
  const sink = g.anchor ?? g.nodes[g.nodes.length - 1]!;
  const rowTokens = sink.shape[0] === "B" && sink.shape[1] === "T";
  const main = g.outputs.find((o) => o.shape.join() === sink.shape.join()) ?? sink;
  const F = rowTokens ? main.shape.slice(2) : main.shape;
  const cols = prod(F);
  const inside = new Map(g.nodes.map((n, i) => [n.key, i]));

  /** Set while rendering the vectorized body: operands read as vectors, by address. */
  let vec: VecPlan | undefined;
  const load = (n: Node, col = "c"): string => {
    const r = ctx.ref(n);
    const i = bufs.slot(r);
    if (vec && col === "c" && vectorizable(r, F)) return vectorLoad(i, `st::ld8(${ptr(i)} + ${elementIndex(r, F, rowTokens, "c0")})`, CTYPE[r.dtype]);
    return `st::ld(${ptr(i)} + ${elementIndex(r, F, rowTokens, col)})`;
  };
  /**
   * Element j of the vector `rhs` (a st::ld8 of buffer i, a st::vec8<ctype>) loaded once before the
   * loop over j; in an unrolled plan the vector is unit u's of an array of them (`x0[u][j]`).
   */
  const vectorLoad = (i: number, rhs: string, ctype: string): string => {
    let name = vec!.loads.get(rhs);
    if (!name) {
      name = `x${vec!.loads.size}`;
      vec!.loads.set(rhs, name);
      vec!.types.set(name, ctype);
      vec!.pointers.add(ptr(i));
    }
    return vec!.unrolled ? `${name}[u][j]` : `${name}[j]`;
  };
  /** A constant (full) is a literal; a value computed in the group is its variable; else a load. */
  const literal = (n: Node): string | undefined => (n.op === "full" ? `${Number(n.attrs.value)}f`.replace(/^(-?\d+)f$/, "$1.0f") : undefined);
  const operand = (n: Node): string => (inside.has(n.key) ? `v${inside.get(n.key)}` : (literal(n) ?? load(n)));
  /**
   * Rope's inverse frequencies θ^(−2j/rot), j < rot/2, as a double table at file scope: computed
   * here once (IEEE double, as the interpreter does) instead of a double pow per element.
   */
  const ropeTables = new Map<string, string>();
  const ropeTable = (rot: number, theta: number): string => {
    const key = `${rot}_${theta}`;
    let name = ropeTables.get(key);
    if (!name) {
      name = `kRopeInvFreq${ropeTables.size}`;
      ropeTables.set(key, name);
      const vals = Array.from({ length: rot / 2 }, (_, j) => Math.pow(theta, (-2 * j) / rot).toPrecision(17));
      preludes.push(`// rope: θ = ${theta}, ${rot} rotated dims: θ^(−2j/${rot}) for j < ${rot / 2}\n__device__ const double ${name}[${rot / 2}] = {${vals.join(", ")}};`);
    }
    return name;
  };
  const preludes: string[] = [];

  const stmt = (n: Node): string => {
    const i = inside.get(n.key)!;
    if (n.op === "rope") {
      const [x, pos] = n.inputs as [Node, Node];
      if (inside.has(x.key)) throw new StrataError("codegen: rope must read its input from memory (it needs each element's partner)", n.src);
      // positions: arange(T) in a forward graph (the token's index), else a [T] input (the runtime
      // fills it with P … P+T−1)
      const posExpr = pos.op === "arange" ? "(float)t" : `st::ld(${ptr(bufs.slot(ctx.ref(pos)))} + t)`;
      if (pos.op !== "arange" && !(pos.op === "input" && pos.shape.length === 1)) throw new StrataError("codegen: rope positions must be arange(T) or a [T] input", n.src);
      const D = x.shape[x.shape.length - 1] as number;
      const rot = Math.round(D * (n.attrs.fraction as number));
      const theta = n.attrs.theta as number;
      if (!Number.isFinite(theta)) throw new StrataError(`codegen: rope theta ${theta} is not a finite number`, n.src);
      return [
        `    float v${i};`,
        `    { const int i = c % ${D};`,
        `      if (i < ${rot}) { const int pc = i < ${rot / 2} ? c + ${rot / 2} : c - ${rot / 2};`,
        `        v${i} = st::rope_inv(${load(x)}, ${load(x, "pc")}, i, ${rot}, ${posExpr}, ${ropeTable(rot, theta)}[i < ${rot / 2} ? i : i - ${rot / 2}]); }`,
        `      else v${i} = ${load(x)}; }`,
      ].join("\n");
    }
    if (n.op === "concat") return `    const float v${i} = ${concatExpr(n)};`;
    return `    const float v${i} = ${elementwiseExpr(n, n.inputs.map(operand))};`;
  };
  /** concat along a feature axis: column c reads the piece that holds its coordinate on that axis. */
  const concatExpr = (n: Node): string => {
    const axis = n.attrs.axis as number;
    const tok = rowTokens ? 2 : 0;
    if (axis < tok) throw new StrataError(`codegen: concat along token axis ${axis} is not supported by the row kernels`, n.src);
    const Fc = n.shape.slice(tok) as number[];
    if (Fc.join() !== F.join()) throw new StrataError(`codegen: concat ${n.shape} must be its row kernel's main value`, n.src);
    const a = axis - tok;
    const inner = prod(Fc.slice(a + 1));
    const D = Fc[a]!;
    const coord = `((c / ${inner}) % ${D})`;
    let at = 0;
    const pieces = n.inputs.map((x) => {
      const dk = x.shape[axis] as number;
      const from = at;
      at += dk;
      if (inside.has(x.key)) throw new StrataError("codegen: concat must read its inputs from memory", n.src);
      const lit = literal(x);
      if (lit) return { from, to: at, expr: lit };
      const r = ctx.ref(x);
      const Fx = x.shape.slice(tok);
      // vectorized, a piece along the last axis whose bounds are multiples of VEC holds all VEC
      // columns of a group or none: one vector load, predicated on the group's coordinate
      if (vec && inner === 1 && D % VEC === 0 && from % VEC === 0 && at % VEC === 0 && vectorizable(r, Fx)) {
        const i = bufs.slot(r);
        const at0 = `${ptr(i)} + ${elementIndex(r, Fx, rowTokens, `((c0 / ${D}) * ${dk} + (c0 % ${D} - ${from}))`)}`;
        const rhs = `(c0 % ${D} >= ${from} && c0 % ${D} < ${at}) ? st::ld8(${at0}) : st::vec8<${CTYPE[r.dtype]}>{}`;
        return { from, to: at, expr: vectorLoad(i, rhs, CTYPE[r.dtype]) };
      }
      const col = `((c / ${inner * D}) * ${dk * inner} + (${coord} - ${from}) * ${inner} + c % ${inner})`;
      return { from, to: at, expr: `st::ld(${ptr(bufs.slot(r))} + ${elementIndex(r, Fx, rowTokens, col)})` };
    });
    return pieces.reduceRight((acc, p, k) => (k === pieces.length - 1 ? p.expr : `(${coord} < ${p.to} ? ${p.expr} : ${acc})`), "");
  };
  // as a GEMV's prologue the group's one value is handed over (`out = …`), not stored
  const store = (n: Node, value: string): string => {
    if (asPrologue) return `    out = ${value};`;
    const r = ctx.outRef(n);
    const i = bufs.slot(r, true);
    if (vec && vectorizable(r, F)) {
      const name = `y${vec.stores.length}`;
      vec.stores.push(`    st::st8(${ptr(i)} + ${elementIndex(r, F, rowTokens, "c0")}, ${name});`);
      vec.pointers.add(ptr(i));
      return `    ${name}[j] = ${value};`;
    }
    return `    st::st(${ptr(i)} + ${elementIndex(r, F, rowTokens, "c")}, ${value});`;
  };
  const outputs = new Set(g.outputs.map((o) => o.key));

  /** Statements computing `targets` (and whatever in the group they need), in order. */
  const emit = (targets: Node[], skip: Set<string>): string[] => {
    const need = new Set<string>();
    const visit = (n: Node) => {
      if (!inside.has(n.key) || need.has(n.key) || skip.has(n.key)) return;
      need.add(n.key);
      n.inputs.forEach(visit);
    };
    targets.forEach(visit);
    return g.nodes.filter((n) => need.has(n.key)).map(stmt);
  };

  const norm = g.nodes.find(isNorm);
  if (!norm) {
    const body = (): string => {
      const lines = emit(g.outputs, new Set());
      for (const o of g.outputs) lines.push(store(o, `v${inside.get(o.key)}`));
      return lines.join("\n");
    };
    const scalar = body();
    if (asPrologue || !vectorize || !vectorRow(g, cols)) return { cols, rowTokens, preludes, body: scalar };
    // the same statements per element j of the thread's VEC columns c0 … c0+VEC−1: operands of
    // the row's shape are read by vector loads before, outputs written by vector stores after
    const plan = newPlan(true);
    vec = plan;
    const vbody = body();
    vec = undefined;
    if (plan.loads.size === 0 && plan.stores.length === 0) return { cols, rowTokens, preludes, body: scalar };
    return { cols, rowTokens, preludes, body: scalar, vec: { ...vecPass(plan, vbody), aligned: `st::aligned16(${[...plan.pointers].join(", ")})` } };
  } else {
    const ni = inside.get(norm.key)!;
    const [x, a1, a2] = norm.inputs as Node[];
    const preNodes = norm.op === "gatedRmsnorm" ? [x!, a1!] : [x!];
    const prologue = g.nodes.filter((n) => n !== norm && g.nodes.indexOf(n) < g.nodes.indexOf(norm) && !isDescendant(n, norm, inside));
    const groups = norm.op === "gatedRmsnorm" ? cols / (norm.attrs.groupSize as number) : 1;
    const after = g.nodes.filter((n) => isDescendant(n, norm, inside) && n !== norm);
    /**
     * The two passes' statements for column c. Vectorized (`plans` set: one per pass, as each pass
     * has its own loop), the norm's input goes to `pre[j]` and is read back from `pre[j]`, which
     * the template fills from and stores to s_pre[c0 …] as float4s: s_pre stays by column.
     */
    const passes = (plans?: { pre: VecPlan; post: VecPlan }): { pre: string; post: string } => {
      const sPre = plans ? "pre[j]" : "s_pre[c]";
      vec = plans?.pre;
      const pre = emit(preNodes, new Set());
      for (const p of prologue) if (outputs.has(p.key)) {
        if (!pre.some((l) => l.includes(`v${inside.get(p.key)} =`))) pre.push(...emit([p], new Set()));
        pre.push(store(p, `v${inside.get(p.key)}`));
      }
      const xv = operand(x!);
      pre.push(norm.op === "gatedRmsnorm" ? `    ${sPre} = ${xv} * st::silu(${operand(a1!)});` : `    ${sPre} = ${xv};`);
      vec = plans?.post;
      const w = norm.op === "gatedRmsnorm" ? a2! : a1!;
      const wv = norm.attrs.oneP ? `(1.0f + ${load(w)})` : load(w);
      const bias = norm.op === "layernorm" && a2 ? ` + ${load(a2)}` : "";
      const post = [`    const int g = c / ${cols / groups};`, `    const float v${ni} = (${sPre} - s_mean[g]) * s_rstd[g] * ${wv}${bias};`, `    (void)g;`];
      post.push(...emit(after, new Set([norm.key])));
      for (const o of g.outputs) if (o === norm || after.includes(o)) post.push(store(o, `v${inside.get(o.key)}`));
      vec = undefined;
      return { pre: pre.join("\n"), post: post.join("\n") };
    };
    const scalar = passes();
    const base = { cols, rowTokens, preludes };
    const normInfo = { groups, centered: norm.op === "layernorm", eps: `${norm.attrs.eps as number}f` };
    if (asPrologue || !vectorize || !vectorRow(g, cols)) return { ...base, norm: { ...scalar, ...normInfo } };
    const plans = { pre: newPlan(), post: newPlan() };
    const vp = passes(plans);
    const pointers = new Set([...plans.pre.pointers, ...plans.post.pointers]);
    // no operand or output of the row's shape to read or write as vectors: the scalar passes
    if (pointers.size === 0) return { ...base, norm: { ...scalar, ...normInfo } };
    return {
      ...base,
      norm: {
        ...normInfo,
        pre: indent(scalar.pre, 2),
        post: indent(scalar.post, 2),
        vec: { aligned: `st::aligned16(${[...pointers].join(", ")})`, pre: vecPass(plans.pre, vp.pre), post: vecPass(plans.post, vp.post) },
      },
    };
  }
}

const newPlan = (unrolled = false): VecPlan => ({ loads: new Map(), types: new Map(), pointers: new Set(), stores: [], unrolled });

/**
 * A vectorized loop's pieces (as `RowCode.vec`), from its plan and its per-element statements.
 * Unrolled (an elementwise group: row.cu.hbs's kUnroll units per thread), `arrays` declares each
 * loaded vector as an array over the units and `loads` fills unit u's element of it.
 */
function vecPass(plan: VecPlan, body: string): VecLoop {
  if (plan.unrolled) {
    return {
      arrays: [...plan.loads.values()].map((name) => `      st::vec8<${plan.types.get(name)!}> ${name}[kUnroll];`).join("\n"),
      loads: [...plan.loads].map(([rhs, name]) => `          ${name}[u] = ${rhs};`).join("\n"),
      decls: plan.stores.length ? `          float ${plan.stores.map((_, k) => `y${k}[${VEC}]`).join(", ")};` : "",
      body: indent(body, 8),
      stores: plan.stores.length ? indent(plan.stores.join("\n"), 6) : "",
    };
  }
  return {
    loads: [...plan.loads].map(([rhs, name]) => `      const auto ${name} = ${rhs};`).join("\n"),
    decls: plan.stores.length ? `      float ${plan.stores.map((_, k) => `y${k}[${VEC}]`).join(", ")};` : "",
    body: indent(body, 4),
    stores: plan.stores.length ? indent(plan.stores.join("\n"), 2) : "",
  };
}

/**
 * Columns per thread and iteration of the vectorized loop: 16-byte loads and stores of bf16
 * operands (two of f32). The expression is still evaluated per element, by the same statements.
 */
export const VEC = 8;

/** The operands and outputs the vectorized body reads and writes as vectors. */
interface VecPlan {
  /** Load expression → the name of the vector it fills (one load per distinct expression). */
  loads: Map<string, string>;
  /** Vector name → its element type (st::vec8<type>), for the unrolled loop's arrays. */
  types: Map<string, string>;
  pointers: Set<string>;
  stores: string[];
  /** Elementwise groups: kUnroll units per thread, each loaded vector an array over the units. */
  unrolled: boolean;
}

/**
 * Can `r` be read (or written) VEC columns at a time? It must have the row's shape (no
 * broadcast: its element of column c is at base + c), a dtype of 2 or 4 bytes that st::ld8 / st8
 * know, and a start (offset, row stride) that keeps every VEC-column group 16-byte aligned given an
 * aligned base pointer (checked at run time). Others are read per element inside the loop.
 */
function vectorizable(r: TensorRef, F: readonly Dim[]): boolean {
  if (r.dtype !== "bf16" && r.dtype !== "f32") return false;
  if (r.capacityStride !== undefined) return false;
  if (r.shape.slice(r.tokenDims).join() !== F.join()) return false;
  const perVec = r.dtype === "bf16" ? VEC : VEC / 2;  // elements per 16 bytes
  return r.offset % perVec === 0 && (r.tokenDims === 0 || r.rowStride % perVec === 0);
}

/**
 * Does a row group get the vectorized loops (its scalar loops stay, for misaligned pointers)? A
 * norm's two passes each get one, s_pre still indexed by column (row_stats reads it as before:
 * the statistic, so every result, is bit-identical). Not with rope (reads a partner column); a
 * concat is evaluated per element from its column c = c0 + j, its pieces read per element, its
 * value stored as a vector (the zero padding of a slice's gradient is mostly stores).
 */
function vectorRow(g: FusionGroup, cols: number): boolean {
  return cols % VEC === 0 && !g.nodes.some((n) => getOp(n.op).needsNeighbour && n.op !== "concat");
}

/**
 * An elementwise group's vectorized loop: blocks of ROW_UNROLL_THREADS threads over the launch's
 * rows × cols/VEC groups of VEC columns, flattened; each thread takes ROW_UNROLL groups per pass,
 * ROW_UNROLL_THREADS groups apart (coalesced), and issues all their loads before any arithmetic:
 * several 16-byte loads per operand in flight per thread, and a block's life is several rows'
 * worth of work (not one load each and exit). The arithmetic per element is unchanged.
 */
export const ROW_UNROLL = 4;
export const ROW_UNROLL_THREADS = 256;

/** Threads of a row kernel: about 8 columns each (256 … 1024). */
export function rowThreads(cols: number): number {
  // a decode step has one row per sequence, so a block is all there is, and a wide row (a gated
  // norm over 8192) needs the threads to keep its loads in flight
  return Math.min(1024, Math.max(256, 2 ** Math.ceil(Math.log2(Math.ceil(cols / 8)))));
}

/**
 * Can `g` be a GEMV's decode prologue (a block of `threads` threads computes the row's value
 * itself)? One norm plus elementwise work, one bf16 value of the row's width, and the same
 * thread count as the row kernel, so the statistic is reduced in the same order: bit-identical.
 */
export function rowPrologueVeto(g: FusionGroup, threads: number): string | undefined {
  const norms = g.nodes.filter(isNorm);
  if (norms.length !== 1) return "the row group is not one norm";
  const odd = g.nodes.find((n) => !isNorm(n) && getOp(n.op).kind !== "elementwise");
  if (odd) return `${odd.op} is not elementwise`;
  const v = g.outputs[0]!;
  if (g.outputs.length !== 1 || v.dtype !== "bf16") return "the row group must store one bf16 value";
  const norm = norms[0]!;
  if (v.shape.length < 3 || v.shape[0] !== "B" || v.shape[1] !== "T" || v.shape.join() !== norm.inputs[0]!.shape.join()) return "the value must be per token, of the norm's shape";
  const cols = prod(v.shape.slice(2));
  if (rowThreads(cols) !== threads) return `a row of ${cols} columns takes ${rowThreads(cols)} threads, the GEMV's block has ${threads}`;
  return undefined;
}

/**
 * The row group as a GEMV prologue (gemm.cu.hbs's `Pro`): `rows(p, M, a)` writes the group's
 * value for rows 0 … M−1 into `a` (bf16, M × kCols) with the statistic computed as the row kernel
 * does; buffers are fields of the GEMM's Params (the same BufferTable).
 */
export function renderRowPrologue(g: FusionGroup, ctx: RenderContext, bufs: BufferTable): string {
  const code = rowCode(g, ctx, bufs, (i) => `p.p${i}`, true);
  const n = code.norm!;
  return [
    "struct Pro {",
    `  static constexpr int kCols = ${code.cols};`,
    "  __device__ static void rows(const Epi::Params& p, int M, __nv_bfloat16* a) {",
    `    __shared__ float s_pre[kCols];`,
    `    __shared__ float s_mean[${n.groups}], s_rstd[${n.groups}];`,
    "    for (int row = 0; row < M; ++row) {",
    "#pragma unroll 4",
    "      for (int c = threadIdx.x; c < kCols; c += blockDim.x) {",
    indent(n.pre, 4),
    "      }",
    "      __syncthreads();",
    `      st::row_stats<${n.centered}, ${n.groups}>(s_pre, kCols, ${n.groups}, ${n.eps}, s_mean, s_rstd);`,
    "#pragma unroll 4",
    "      for (int c = threadIdx.x; c < kCols; c += blockDim.x) {",
    "        float out;",
    indent(n.post, 4),
    "        a[row * kCols + c] = __float2bfloat16(out);",
    "      }",
    "      __syncthreads();  // s_pre is the next row's",
    "    }",
    "  }",
    "};",
  ].join("\n");
}

const indent = (lines: string, by: number) => lines.split("\n").map((l) => " ".repeat(by) + l).join("\n");

function renderRow(g: FusionGroup, ctx: RenderContext): KernelBody {
  return renderRowKernel(g, ctx);
}

/** A row group's kernel; `vectorize: false` renders the scalar loop alone (tests compare the two). */
export function renderRowKernel(g: FusionGroup, ctx: RenderContext, opts: { vectorize?: boolean } = {}): KernelBody {
  const bufs = new BufferTable();
  const { cols, rowTokens, preludes, body, vec, norm } = rowCode(g, ctx, bufs, (i) => `p${i}`, false, opts.vectorize ?? true);
  const view: Record<string, unknown> = norm ? { norm, vecCols: VEC } : { body, vec, vecCols: VEC };
  const smemBytes = norm ? cols * 4 : 0;
  // a norm keeps rowThreads whether vectorized or not: its statistic's reduction order (the block's
  // width) stays that of the scalar passes and of a GEMV's decode prologue (rowPrologueVeto)
  const threads = vec ? ROW_UNROLL_THREADS : rowThreads(cols);
  const source = renderTemplate("row.cu.hbs", {
    name: KERNEL_NAME,
    prelude: preludes.join("\n"),
    cols,
    threads,
    unroll: ROW_UNROLL,
    params: bufs.params(),
    decls: bufs.declarations(),
    callArgs: bufs.callArgs(),
    rowsExpr: rowTokens ? "B * T" : "1",
    smemBytes,
    bigSmem: smemBytes > 48 * 1024,
    skipAtDecode: g.skipAtDecode === true,
    ...view,
  });
  return { group: g, template: "row.cu.hbs", body: source, buffers: bufs.args, tiles: { threads, cols, ...(vec || norm?.vec ? { vec: VEC } : {}), ...(vec ? { unroll: ROW_UNROLL } : {}), ...(g.skipAtDecode ? { skipAtDecode: true } : {}) } };
}

/** Is `n` computed from `root` within the group? */
function isDescendant(n: Node, root: Node, inside: Map<string, number>): boolean {
  if (n === root) return true;
  return n.inputs.some((i) => inside.has(i.key) && isDescendant(i, root, inside));
}
