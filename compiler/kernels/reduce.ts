/**
 * The reduce family (training): `sumTo` (the sum over broadcast axes: norm backward's row sums,
 * weight and bias gradients summed over the tokens), `reduceMean` (the loss) and `expandTo` (a
 * broadcast, divided by the number of copies for the backward of a mean). Device code:
 * include/train_ops.cuh; the template splices the group's elementwise work in as functors.
 *
 * A reduction absorbs the elementwise producers of its input that nothing else reads (e.g.
 * sumTo(mul(gy, xhat)) reads gy and xhat, never stores the product) and the elementwise chain
 * after it (e.g. the cast of a gradient to f32, or rsqrt(mean + eps) after a row sum). Which
 * kernel it uses depends on the axes it reduces:
 *   - "tokens": both token axes B, T reduced (weight and bias gradients, the loss): per-chunk
 *     column partials into scratch, then a second pass adds the chunks in order. Where the column
 *     count is a multiple of 8 and an operand's offset and row stride keep 8-column groups 16-byte
 *     aligned, the partials pass also gets a vectorized Src8 (8 columns per thread, one st::ld8 per
 *     such operand and row), taken when the base pointers are aligned at run time; it adds each
 *     column's rows in the scalar pass's order, so the partials are bit-identical either way;
 *   - "warp": everything else (row sums [B, T, …] → [B, T, …, 1], the sum over a leading axis):
 *     one warp per output.
 * Both orders are fixed, so the result is bit-identical run to run (no float atomics).
 * An expandTo is an elementwise kernel over its output, with its epilogue chain.
 */
import type { Dim } from "../ir/dims.js";
import type { Node } from "../ir/node.js";
import { getOp } from "../ir/registry.js";
import { BufferTable } from "../codegen/buffers.js";
import { elementwiseExpr } from "../codegen/expr.js";
import { renderTemplate } from "../codegen/templates.js";
import { elementIndex, prod, type TensorRef } from "../codegen/tensors.js";
import { enforce } from "./common.js";
import type { FuseContext, FusionGroup, KernelBody, KernelFamilyModule, RenderContext, Unsupported } from "./family.js";

// ---- shapes ---------------------------------------------------------------------------------

const isTokenShape = (s: readonly Dim[]) => s.length >= 2 && s[0] === "B" && s[1] === "T";
const symbolic = (s: readonly Dim[]) => s.filter((d) => typeof d !== "number");
/** C expression of a dim inside the functors (B and T are long long locals there). */
const dimC = (d: Dim) => (typeof d === "number" ? `${d}LL` : d);

/** Left-pad `small` with 1s to `rank` (NumPy alignment). */
function align(small: readonly Dim[], rank: number): Dim[] {
  return [...new Array<Dim>(rank - small.length).fill(1), ...small];
}

/** Is the shape one the kernels can index: token-major [B, T, concrete…], or concrete with an optional leading B. */
function indexable(s: readonly Dim[]): boolean {
  if (isTokenShape(s)) return symbolic(s.slice(2)).length === 0;
  return s.every((d, i) => typeof d === "number" || (i === 0 && d === "B"));
}

export type ReduceMode = "tokens" | "warp" | "expand";

interface Plan {
  mode: ReduceMode;
  /** The reduced tensor (sumTo / reduceMean input), padded output shape, reduced axes. */
  X: readonly Dim[];
  O: Dim[];
  reduced: boolean[];
}

function reducePlan(n: Node): Plan {
  const X = n.inputs[0]!.shape;
  if (n.op === "expandTo") return { mode: "expand", X, O: [...n.shape], reduced: [] };
  const O = n.op === "reduceMean" ? new Array<Dim>(X.length).fill(1) : align(n.shape, X.length);
  const reduced = X.map((d, i) => O[i] === 1 && d !== 1);
  const tokens = isTokenShape(X) && reduced[0]! && reduced[1]!;
  return { mode: tokens ? "tokens" : "warp", X, O, reduced };
}

/** Columns per thread of include/train_ops.cuh's vectorized column pass (kColumnVec). */
const COLUMN_VEC = 8;

/**
 * Can the vectorized column pass read operand `r` COLUMN_VEC columns at a time? It must have the
 * reduced tensor's feature shape F (no broadcast: its element of column c is at base + c), a
 * dtype st::ld8 knows (bf16, f32), and an offset and row stride that keep every group of
 * COLUMN_VEC columns 16-byte aligned given an aligned base pointer (checked at run time). Other
 * operands are read per element inside the loop over the group.
 */
function vectorLoadable(r: TensorRef, F: readonly Dim[]): boolean {
  if (r.dtype !== "bf16" && r.dtype !== "f32") return false;
  if (r.capacityStride !== undefined) return false;
  if (r.shape.slice(r.tokenDims).join() !== F.join()) return false;
  const perVec = r.dtype === "bf16" ? 8 : 4; // elements per 16 bytes
  return r.offset % perVec === 0 && (r.tokenDims === 0 || r.rowStride % perVec === 0);
}

/** Rows per chunk of include/train_ops.cuh's column_partials for a column tile of kCols. */
export function columnTiling(cols: number): { kCols: number; rowsPerChunk: number } {
  let kCols = 1;
  while (kCols < cols && kCols < 32) kCols *= 2;
  return { kCols, rowsPerChunk: (256 / kCols) * (kCols >= 32 ? 16 : 8) };
}

function check(n: Node): Unsupported | undefined {
  const x = n.inputs[0]!;
  const what = `${n.op} ${JSON.stringify(x.shape)} → ${JSON.stringify(n.shape)}`;
  for (const t of [x, n])
    if (t.dtype !== "bf16" && t.dtype !== "f32") return { message: `the reduce kernels load and store bf16 or f32; ${what} has ${t.dtype}`, hint: "compute gradients in bf16 or f32" };
  for (const s of [x.shape, n.shape])
    if (!indexable(s))
      return {
        message: `the reduce kernels index token-major tensors [B, T, …features] and tensors of concrete sizes (a leading B allowed); ${what} is neither`,
        hint: "keep the batch and sequence axes first, the feature axes concrete",
      };
  if (n.op === "expandTo") {
    // the input either has both token axes (a feature broadcast) or none (broadcast over the tokens too)
    const xs = x.shape, o = align(xs, n.shape.length);
    if (isTokenShape(n.shape) && !isTokenShape(xs) && (o[0] !== 1 || o[1] !== 1))
      return { message: `expandTo broadcasts along a whole token axis pair only: ${what} keeps one of B, T`, hint: "expand from [] / [features] or from [B, T, …]" };
    if (!isTokenShape(n.shape) && symbolic(n.shape).length) return { message: `expandTo to ${JSON.stringify(n.shape)}: only token-major outputs may have symbolic sizes` };
  }
  return undefined;
}

// ---- fusion ---------------------------------------------------------------------------------

/** Free elementwise producers of `n` with the reduced tensor's shape that only this group reads. */
function absorbProducers(grp: FusionGroup, n: Node, shape: readonly Dim[], f: FuseContext): void {
  const inside = (u: Node) => grp.nodes.includes(u);
  for (const p of n.inputs) {
    if (!f.free(p) || getOp(p.op).kind !== "elementwise" || grp.nodes.includes(p)) continue;
    if (p.shape.join() !== shape.join()) {
      f.log(grp, p, false, `prologue ${p.op}`, `shape [${p.shape}] differs from the reduced tensor's [${shape}]`);
      continue;
    }
    if (f.isOutput(p) || !f.uses(p).every(inside)) {
      f.log(grp, p, false, `prologue ${p.op}`, "read by other kernels too: stored by its own kernel");
      continue;
    }
    if (f.wouldCycle(grp, p)) {
      f.log(grp, p, false, `prologue ${p.op}`, "fusing would make the kernels' order cyclic");
      continue;
    }
    f.add(grp, p);
    f.log(grp, p, true, `prologue ${p.op}`, "elementwise, read only by the reduction: evaluated while reducing");
    absorbProducers(grp, p, shape, f);
  }
}

// ---- rendering helpers --------------------------------------------------------------------------

/** C code that splits flat index `v` into the coordinates `x<axis>` of `axes` (row-major). */
function decompose(v: string, axes: { axis: number; size: Dim }[]): string[] {
  if (axes.length === 0) return [];
  const lines = [`long long q_${v} = ${v};`];
  for (let i = axes.length - 1; i > 0; i--) {
    const { axis, size } = axes[i]!;
    lines.push(`const long long x${axis} = q_${v} % ${dimC(size)}; q_${v} /= ${dimC(size)};`);
  }
  lines.push(`const long long x${axes[0]!.axis} = q_${v};`);
  return lines;
}

/** The group's elementwise work as C statements, evaluated at (row, c) of feature shape F. */
class Emitter {
  private readonly inside: Map<string, number>;
  /**
   * Set while rendering the vectorized Src8 (statements per element j of columns c0 … c0+7):
   * operands that `vectorLoadable` reads as one st::ld8 each, before the loop over j.
   */
  vec?: { loads: Map<string, string>; pointers: Set<string> };
  constructor(
    private readonly g: FusionGroup,
    private readonly ctx: RenderContext,
    private readonly bufs: BufferTable,
  ) {
    this.inside = new Map(g.nodes.map((n, i) => [n.key, i]));
  }
  index(n: Node): number {
    return this.inside.get(n.key)!;
  }
  /** An operand: a value of the group, a constant, or a load of element (row, c). */
  operand(n: Node, F: readonly Dim[], rowTokens: boolean): string {
    const i = this.inside.get(n.key);
    if (i !== undefined) return `v${i}`;
    if (n.op === "full") return literal(n.attrs.value as number);
    const r = this.ctx.ref(n);
    const slot = this.bufs.slot(r);
    if (this.vec && rowTokens && vectorLoadable(r, F)) {
      const rhs = `st::ld8(p${slot} + ${elementIndex(r, F, rowTokens, "c0")})`;
      let name = this.vec.loads.get(rhs);
      if (!name) {
        name = `vec${this.vec.loads.size}`;
        this.vec.loads.set(rhs, name);
        this.vec.pointers.add(`p${slot}`);
      }
      return `${name}[j]`;
    }
    return `st::ld(p${slot} + ${elementIndex(r, F, rowTokens, "c")})`;
  }
  /** Statements computing `targets` (and what they need inside the group, minus `skip`), in order. */
  statements(targets: readonly Node[], skip: ReadonlySet<string>, F: readonly Dim[], rowTokens: boolean): string[] {
    const need = new Set<string>();
    const visit = (n: Node) => {
      if (!this.inside.has(n.key) || need.has(n.key) || skip.has(n.key)) return;
      need.add(n.key);
      n.inputs.forEach(visit);
    };
    targets.forEach(visit);
    return this.g.nodes
      .filter((n) => need.has(n.key))
      .map((n) => `const float v${this.index(n)} = ${elementwiseExpr(n, n.inputs.map((x) => this.operand(x, F, rowTokens)))};`);
  }
  store(n: Node, value: string, F: readonly Dim[], rowTokens: boolean): string {
    const r = this.ctx.outRef(n);
    return `st::st(p${this.bufs.slot(r, true)} + ${elementIndex(r, F, rowTokens, "c")}, ${value});`;
  }
}

function literal(v: number): string {
  if (Number.isNaN(v)) return "__int_as_float(0x7fc00000)";
  if (!Number.isFinite(v)) return v > 0 ? "__int_as_float(0x7f800000)" : "__int_as_float(0xff800000)";
  const s = String(v);
  return /[.eE]/.test(s) ? `${s}f` : `${s}.0f`;
}

/** Row and column of flat element `o` of a tensor of shape S (token-major or not), as C lines. */
function rowCol(o: string, S: readonly Dim[]): { lines: string[]; F: Dim[]; rowTokens: boolean } {
  if (isTokenShape(S)) {
    const F = S.slice(2);
    const cols = prod(F);
    return { lines: [`const long long row = ${o} / ${cols}LL;`, `const long long c = ${o} - row * ${cols}LL;`, "(void)row; (void)c;"], F, rowTokens: true };
  }
  return { lines: [`const long long c = ${o};`, "(void)c;"], F: [...S], rowTokens: false };
}

// ---- the module --------------------------------------------------------------------------------

export const reduce: KernelFamilyModule = {
  family: "reduce",
  check,

  absorb(grp, f) {
    const n = grp.anchor!;
    if (n.op !== "expandTo") {
      const x = n.inputs[0]!;
      // producers are evaluated at the reduced tensor's coordinates: it must be loadable as rows
      if (isTokenShape(x.shape) || symbolic(x.shape).length === 0) absorbProducers(grp, n, x.shape, f);
    }
    if (isTokenShape(n.shape) || symbolic(n.shape).length === 0)
      f.absorbEpilogue(grp, (e) => (getOp(e.op).kind === "elementwise" ? undefined : `${e.op} is not elementwise`), { broadcast: true });
  },

  render(g, ctx) {
    const n = g.anchor!;
    enforce(n, check(n));
    const plan = reducePlan(n);
    const bufs = new BufferTable();
    const em = new Emitter(g, ctx, bufs);
    const anchorIdx = em.index(n);
    const epilogue = g.nodes.filter((m) => g.nodes.indexOf(m) > g.nodes.indexOf(n) || m === n);
    // what leaves the group (a value read only through a view that is a graph output is not among
    // the group's outputs: the chain's last value is then stored all the same)
    let outs = g.outputs.filter((o) => epilogue.includes(o));
    if (outs.length === 0) outs = [epilogue[epilogue.length - 1]!];
    const anchorSkip = new Set([n.key]);

    /** Out functor body: the output value `v` at flat output index o, the epilogue, the stores. */
    const outBody = (): string[] => {
      const rc = rowCol("o", n.shape);
      const lines = [...rc.lines, `const float v${anchorIdx} = v; (void)v${anchorIdx};`];
      lines.push(...em.statements(outs, anchorSkip, rc.F, rc.rowTokens));
      for (const o of outs) lines.push(em.store(o, `v${em.index(o)}`, rc.F, rc.rowTokens));
      return lines;
    };

    const x = n.inputs[0]!;
    const X = plan.X;
    const xTokens = isTokenShape(X);
    const featStride = (i: number) => prod(X.slice(i + 1));
    /** C lines: (row, c) of the reduced tensor from coordinates x<i> (all axes of X). */
    const xRowCol = (): string[] => {
      if (xTokens) {
        const terms = X.slice(2).map((_, k) => `x${k + 2} * ${featStride(k + 2)}LL`);
        return [`const long long row = x0 * T + x1;`, `const long long c = ${terms.length ? terms.join(" + ") : "0LL"};`, "(void)row;"];
      }
      const terms = X.map((_, i) => `x${i} * ${featStride(i)}LL`);
      return [`const long long c = ${terms.length ? terms.join(" + ") : "0LL"};`];
    };
    const srcValue = (F: readonly Dim[], rowTokens: boolean): string[] => {
      const inGroup = g.nodes.includes(x);
      if (!inGroup) {
        if (!xTokens && symbolic(X).length) {
          // [B, …] (e.g. a batched product): contiguous, read by flat index
          const xr = ctx.ref(x);
          return [`return st::ld(p${bufs.slot(xr)} + ${xr.offset}LL + c);`];
        }
        return [`return ${em.operand(x, F, rowTokens)};`];
      }
      return [...em.statements([x], new Set(), F, rowTokens), `return v${em.index(x)};`];
    };

    let view: Record<string, unknown>;
    let tiles: KernelBody["tiles"];
    const numelC = (s: readonly Dim[]) => (s.length ? s.map(dimC).join(" * ") : "1LL");
    if (plan.mode === "expand") {
      // out[i] = x[broadcast(i)] · inv, then the epilogue; x read at the output's (row, c)
      const rc = rowCol("o", n.shape);
      const xo = align(X, n.shape.length);
      const lines = [...rc.lines, `const float v${anchorIdx} = ${em.operand(x, rc.F, rc.rowTokens)} * inv;`];
      lines.push(...em.statements(outs, anchorSkip, rc.F, rc.rowTokens));
      for (const o of outs) lines.push(em.store(o, `v${em.index(o)}`, rc.F, rc.rowTokens));
      // copies per input element: the output's elements over the input's
      const copies = n.attrs.mean === true ? `(double)(${numelC(n.shape)}) / (double)(${numelC(xo)})` : "1.0";
      view = { expand: { body: lines.join("\n    "), count: numelC(n.shape), inv: `(float)(1.0 / (${copies}))` } };
      tiles = { mode: "expand" };
    } else if (plan.mode === "tokens") {
      const F = X.slice(2);
      const cols = prod(F);
      const { kCols, rowsPerChunk } = columnTiling(cols);
      // Col(o, j): the input column of the j-th reduced feature of output o
      const kept = F.map((size, k) => ({ axis: k + 2, size })).filter((a) => !plan.reduced[a.axis] && a.size !== 1);
      const red = F.map((size, k) => ({ axis: k + 2, size })).filter((a) => plan.reduced[a.axis]);
      const perOut = prod(red.map((a) => a.size));
      const colTerms = F.map((_, k) => `x${k + 2} * ${featStride(k + 2)}LL`);
      const colLines = [...decompose("o", kept), ...decompose("j", red), ...F.map((d, k) => (d === 1 ? `const long long x${k + 2} = 0;` : "")).filter(Boolean)];
      const col = [...colLines, `return (int)(${colTerms.length ? colTerms.join(" + ") : "0LL"});`];
      const scratch = bufs.scratch(Math.ceil((cols * 4) / rowsPerChunk), cols * 4);
      const src = ["(void)row;", ...srcValue(F, true)];
      // the vectorized pass 1: the same statements per column c = c0 + j of the thread's
      // COLUMN_VEC columns, operands of the row's shape read by one st::ld8 each before the loop
      let vec: { loads: string; body: string; aligned: string } | undefined;
      if (cols % COLUMN_VEC === 0) {
        em.vec = { loads: new Map(), pointers: new Set() };
        const body = srcValue(F, true).map((l) => l.replace(/^return (.*);$/, "v[j] = $1;"));
        const plan = em.vec;
        em.vec = undefined;
        if (plan.loads.size)
          vec = {
            loads: [...plan.loads].map(([rhs, name]) => `const auto ${name} = ${rhs};`).join("\n    "),
            body: body.join("\n      "),
            aligned: `st::aligned16(${[...plan.pointers].join(", ")})`,
          };
      }
      const outputs = prod(kept.map((a) => a.size));
      const denom = n.op === "reduceMean" ? `(float)((double)B * (double)T * ${cols}.0)` : "1.f";
      view = { tokens: { kCols, src: src.join("\n    "), vec, col: col.join("\n    "), perOut, cols, outputs: `${outputs}LL`, denom, scratch } };
      tiles = { mode: "tokens", kCols, rowsPerChunk, vectorized: vec !== undefined };
    } else {
      const keptAxes = X.map((size, axis) => ({ axis, size })).filter((a) => !plan.reduced[a.axis] && a.size !== 1);
      const redAxes = X.map((size, axis) => ({ axis, size })).filter((a) => plan.reduced[a.axis]);
      const ones = X.map((d, i) => (d === 1 ? `const long long x${i} = 0;` : "")).filter(Boolean);
      const rc = xTokens ? { F: X.slice(2), rowTokens: true } : { F: [...X], rowTokens: false };
      const src = [...decompose("o", keptAxes), ...decompose("j", redAxes), ...ones, ...xRowCol(), ...srcValue(rc.F, rc.rowTokens)];
      const count = numelC(redAxes.map((a) => a.size));
      const denom = n.op === "reduceMean" ? `(float)(double)(${numelC(X)})` : "1.f";
      view = {
        warp: {
          src: src.join("\n    "),
          outputs: numelC(keptAxes.map((a) => a.size)),
          count,
          denom,
        },
      };
      tiles = { mode: "warp" };
    }

    const out = plan.mode === "expand" ? "" : outBody().join("\n    ");
    const members = bufs
      .params()
      .split(", ")
      .filter(Boolean)
      .map((p) => `  ${p.replace(" __restrict__", "")};`)
      .join("\n");
    const unpack = bufs.args.map((_, i) => `const auto p${i} = a.p${i}; (void)p${i};`).join(" ");
    const body = renderTemplate("reduce.cu.hbs", {
      tokens: false,
      warp: false,
      expand: false,
      out,
      op: n.op,
      shapes: `${JSON.stringify(x.shape)} → ${JSON.stringify(n.shape)}`.replaceAll('"', ""),
      nodes: g.nodes.map((m) => m.op).join(", "),
      members,
      unpack,
      decls: bufs.declarations(),
      callArgs: bufs.callArgs(),
      ...view,
    });
    return { group: g, template: "reduce.cu.hbs", body, buffers: bufs.args, tiles, scratch: bufs.scratchRequests };
  },
};
