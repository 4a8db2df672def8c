/**
 * Renders a row group (norms, elementwise chains, rope, parameter prep) into a CUDA kernel from
 * templates/row.cu.hbs. Values are named v<i> per group node; operands from outside the group are
 * loaded through their TensorRef with broadcasting resolved at compile time, so the only runtime
 * sizes are B and T.
 */
import { StrataError } from "../ir/errors.js";
import type { Node } from "../ir/node.js";
import type { FusionGroup } from "../passes/fuse.js";
import { BufferTable } from "./buffers.js";
import { elementwiseExpr } from "./expr.js";
import type { KernelBody } from "./kernel.js";
import { KERNEL_NAME, renderTemplate } from "./templates.js";
import { elementIndex, prod, type TensorRef } from "./tensors.js";

const NORMS = new Set(["rmsnorm", "layernorm", "gatedRmsnorm"]);


export interface RowContext {
  ref(n: Node): TensorRef;
  /** Slot that stores node n's value (for group outputs). */
  outRef(n: Node): TensorRef;
  /** GPU target: decides e.g. wgmma (sm_90a only) vs mma.sync GEMM tiles. */
  arch: "sm_90a" | "sm_90" | "sm_80";
}

export function renderRowKernel(g: FusionGroup, ctx: RowContext): KernelBody {
  const sink = g.anchor ?? g.nodes[g.nodes.length - 1]!;
  const rowTokens = sink.shape[0] === "B" && sink.shape[1] === "T";
  const main = g.outputs.find((o) => o.shape.join() === sink.shape.join()) ?? sink;
  const F = rowTokens ? main.shape.slice(2) : main.shape;
  const cols = prod(F);
  const inside = new Map(g.nodes.map((n, i) => [n.key, i]));
  const bufs = new BufferTable();

  const load = (n: Node, col = "c"): string => {
    const r = ctx.ref(n);
    const i = bufs.slot(r);
    return `st::ld(p${i} + ${elementIndex(r, F, rowTokens, col)})`;
  };
  const operand = (n: Node): string => (inside.has(n.key) ? `v${inside.get(n.key)}` : load(n));

  const stmt = (n: Node): string => {
    const i = inside.get(n.key)!;
    if (n.op === "rope") {
      const [x, pos] = n.inputs as [Node, Node];
      if (inside.has(x.key)) throw new StrataError("codegen: rope must read its input from memory (it needs each element's partner)", n.src);
      if (pos.op !== "arange") throw new StrataError("codegen: rope positions must be arange(T) in a forward graph", n.src);
      const D = x.shape[x.shape.length - 1] as number;
      const rot = Math.round(D * ((n.attrs.fraction as number) ?? 1));
      const theta = (n.attrs.theta as number) ?? 10000;
      return [
        `    float v${i};`,
        `    { const int i = c % ${D};`,
        `      if (i < ${rot}) { const int pc = i < ${rot / 2} ? c + ${rot / 2} : c - ${rot / 2};`,
        `        v${i} = st::rope(${load(x)}, ${load(x, "pc")}, i, ${rot}, (float)t, ${theta}.0f); }`,
        `      else v${i} = ${load(x)}; }`,
      ].join("\n");
    }
    return `    const float v${i} = ${elementwiseExpr(n, n.inputs.map(operand))};`;
  };
  const store = (n: Node, value: string): string => {
    const r = ctx.outRef(n);
    const i = bufs.slot(r, true);
    return `    st::st(p${i} + ${elementIndex(r, F, rowTokens, "c")}, ${value});`;
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

  const norm = g.nodes.find((n) => NORMS.has(n.op));
  let view: Record<string, unknown>;
  if (!norm) {
    const lines = emit(g.outputs, new Set());
    for (const o of g.outputs) lines.push(store(o, `v${inside.get(o.key)}`));
    view = { body: lines.join("\n") };
  } else {
    const ni = inside.get(norm.key)!;
    const [x, a1, a2] = norm.inputs as Node[];
    const pre: string[] = [];
    const preNodes = norm.op === "gatedRmsnorm" ? [x!, a1!] : [x!];
    const prologue = g.nodes.filter((n) => n !== norm && g.nodes.indexOf(n) < g.nodes.indexOf(norm) && !isDescendant(n, norm, inside));
    pre.push(...emit(preNodes, new Set()));
    for (const p of prologue) if (outputs.has(p.key)) {
      if (!pre.some((l) => l.includes(`v${inside.get(p.key)} =`))) pre.push(...emit([p], new Set()));
      pre.push(store(p, `v${inside.get(p.key)}`));
    }
    const xv = operand(x!);
    pre.push(norm.op === "gatedRmsnorm" ? `    s_pre[c] = ${xv} * st::silu(${operand(a1!)});` : `    s_pre[c] = ${xv};`);
    const groups = norm.op === "gatedRmsnorm" ? cols / (norm.attrs.groupSize as number) : 1;
    const w = norm.op === "gatedRmsnorm" ? a2! : a1!;
    const wv = norm.attrs.oneP ? `(1.0f + ${load(w)})` : load(w);
    const bias = norm.op === "layernorm" && a2 ? ` + ${load(a2)}` : "";
    const post = [`    const int g = c / ${cols / groups};`, `    const float v${ni} = (s_pre[c] - s_mean[g]) * s_rstd[g] * ${wv}${bias};`, `    (void)g;`];
    const after = g.nodes.filter((n) => isDescendant(n, norm, inside) && n !== norm);
    post.push(...emit(after, new Set([norm.key])));
    for (const o of g.outputs) if (o === norm || after.includes(o)) post.push(store(o, `v${inside.get(o.key)}`));
    view = {
      norm: {
        pre: pre.join("\n"),
        post: post.join("\n"),
        groups,
        centered: norm.op === "layernorm",
        eps: `${norm.attrs.eps as number}f`,
      },
    };
  }

  const smemBytes = norm ? cols * 4 : 0;
  const body = renderTemplate("row.cu.hbs", {
    name: KERNEL_NAME,
    cols,
    threads: 256,
    params: bufs.params(),
    decls: bufs.declarations(),
    callArgs: bufs.callArgs(),
    rowsExpr: rowTokens ? "B * T" : "1",
    smemBytes,
    bigSmem: smemBytes > 48 * 1024,
    ...view,
  });
  return { group: g, template: "row.cu.hbs", body, buffers: bufs.args, tiles: { threads: 256, cols } };
}

/** Is `n` computed from `root` within the group? */
function isDescendant(n: Node, root: Node, inside: Map<string, number>): boolean {
  if (n === root) return true;
  return n.inputs.some((i) => inside.has(i.key) && isDescendant(i, root, inside));
}
