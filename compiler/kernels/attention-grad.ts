/**
 * Attention-gradient family (training): the backward of causal GQA attention
 * (include/attention_bwd.cuh, templates/attention_grad.cu.hbs). Autodiff emits one
 * `attentionGrad` node per gradient (wrt q, k, v) on the same inputs (gy, q, k, v); `absorb`
 * groups the three into ONE group, rendered as one fixed sequence of two launches: a kernel over
 * query blocks that recomputes the row log-sum-exp and D = rowsum(dO ∘ O) and accumulates dQ, then
 * a kernel over key blocks that accumulates dK and dV over every query head of the KV group and
 * every query tile in a fixed order. No atomics: bit-identical outputs run to run.
 *
 * Operands are read in place through row and batch strides (q/k/v are usually column slices of
 * the fused QKV projection, gy the reshaped dgrad of the output projection). A gradient the graph
 * does not need (e.g. dq when q is not differentiated) is written to launch scratch. The row
 * statistics (lse, D: fp32 [B, H, T]) live in launch scratch too: 8·H bytes per token.
 *
 * Paths: head dim 64 or 128 run on tensor cores — on sm_90a wgmma kernels (dQ over 64 query rows
 * of two heads of a KV group per CTA, dK/dV over 128 keys, each tile's products overlapped with the
 * next tile's), elsewhere mma.sync m16n8k16 (tiles in BwdTiles<D>), chosen by attention_bwd_launch
 * from the compiled target; other multiples of 32 up to 256 (the tiny examples' 32) run on a
 * scalar path (one warp per query row, one per key row: the same statistics and fixed orders, slow,
 * meant for small models).
 */
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { floatLiteral } from "../codegen/expr.js";
import { renderTemplate } from "../codegen/templates.js";
import type { TensorRef } from "../codegen/tensors.js";
import { enforce, need, operand, stride8, tokenRef } from "./common.js";
import type { FuseContext, FusionGroup, KernelFamilyModule, RenderContext, Unsupported } from "./family.js";

const WRT = ["q", "k", "v"] as const;
type Wrt = (typeof WRT)[number];

/** Head dims with a tensor-core kernel; other multiples of 32 up to 256 take the scalar path. */
export const ATTENTION_GRAD_TC_HEAD_DIMS: readonly number[] = [64, 128];

export interface AttentionGradTiles {
  headDim: number;
  path: "mma" | "scalar";
  /** mma: attention_bwd.cuh's defaults (BwdTiles<D>: 64-key tiles for dQ, 32/64-query tiles for dK/dV). */
  tiles: "BwdTiles" | "rows";
}

const sameInputs = (a: Node, b: Node) => a.inputs.length === b.inputs.length && a.inputs.every((x, i) => x.key === b.inputs[i]!.key);

function check(at: Node): Unsupported | undefined {
  const [gy, q, k, v] = at.inputs as [Node, Node, Node, Node];
  const D = q.shape[3];
  if (typeof D !== "number" || D % 32 !== 0 || D > 256)
    return {
      message: `attentionGrad: head dim ${String(D)} is not supported by the attention backward kernels`,
      hint: `use headDim 64 or 128 (tensor cores); other multiples of 32 up to 256 run on a slow scalar path`,
    };
  for (const [what, n] of [["gradient", gy], ["q", q], ["k", k], ["v", v]] as const)
    if (n.dtype !== "bf16")
      return { message: `attentionGrad: ${what} must be bf16 for the attention backward kernels (got ${n.dtype})`, hint: "keep attention's q, k, v and its output in bf16" };
  if (k.shape[1] !== q.shape[1])
    return {
      message: `attentionGrad: keys must span the queries' ${String(q.shape[1])} tokens (got ${String(k.shape[1])}); training differentiates the full-sequence graph`,
      hint: "differentiate the model's full-sequence graph, not a cached (decode) graph",
    };
  const scale = at.attrs.scale;
  if (typeof scale !== "number" || !(scale > 0) || !Number.isFinite(scale)) return { message: `attentionGrad: scale must be a positive number (got ${String(scale)})` };
  return undefined;
}

/** The three gradients of one attention share their inputs: one group, one launch sequence. */
function absorb(grp: FusionGroup, f: FuseContext): void {
  const a = grp.anchor!;
  const [gy, q, k, v] = a.inputs as [Node, Node, Node, Node];
  Object.assign(grp.roles, { gy, q, k, v, [`d${a.attrs.wrt as Wrt}`]: a });
  for (const u of f.uses(gy)) {
    if (u === a || u.op !== "attentionGrad" || !sameInputs(u, a) || u.attrs.scale !== a.attrs.scale) continue;
    const role = `d${u.attrs.wrt as Wrt}`;
    if (grp.roles[role]) continue;  // the same gradient twice cannot happen (content keys); be safe
    if (!f.free(u) || f.wouldCycle(grp, u)) {
      f.log(grp, u, false, `gradient wrt ${u.attrs.wrt as string}`, !f.free(u) ? "already computed by another group" : "grouping would make the groups' dependencies cyclic");
      continue;
    }
    f.add(grp, u);
    grp.roles[role] = u;
    f.log(grp, u, true, `gradient wrt ${u.attrs.wrt as string}`, "same inputs: the attention backward kernels write dq, dk and dv in one launch sequence");
  }
}

export const attentionGrad: KernelFamilyModule = {
  family: "attention_grad",
  check,
  absorb,

  render(g: FusionGroup, ctx: RenderContext) {
    const at = g.anchor!;
    enforce(at, check(at));
    const r = g.roles;
    const [gy, q, k, v] = at.inputs as [Node, Node, Node, Node];
    const bufs = new BufferTable();
    const inRefs = { gy: tokenRef(ctx, gy, at, "the attention gradient"), q: tokenRef(ctx, q, at, "q"), k: tokenRef(ctx, k, at, "k"), v: tokenRef(ctx, v, at, "v") };
    for (const [what, ref] of Object.entries(inRefs) as [string, TensorRef][])
      need(stride8(ref), at, `attentionGrad: ${what} needs a row stride and offset that are multiples of 8 (got stride ${ref.rowStride}, offset ${ref.offset})`);
    const H = q.shape[2] as number;
    const Hk = k.shape[2] as number;
    const D = q.shape[3] as number;
    const outputs = new Set(g.outputs.map((n) => n.key));
    // each gradient: its node's buffer, or launch scratch when the graph does not read it
    const out = (w: Wrt) => {
      const n = r[`d${w}`];
      if (n && outputs.has(n.key)) {
        const ref = tokenRef(ctx, n, at, `d${w}`);
        need(ref.rowStride % 2 === 0 && ref.offset % 2 === 0, at, `attentionGrad: d${w} needs an even row stride and offset (got stride ${ref.rowStride}, offset ${ref.offset})`);
        return operand(bufs, ref, true);
      }
      const heads = w === "q" ? H : Hk;
      return { buf: bufs.scratch(heads * D * 2, 0, "bf16"), offset: 0, stride: heads * D, batchStride: `(long long)T * ${heads * D}` };
    };
    const view = {
      gy: operand(bufs, inRefs.gy),
      q: operand(bufs, inRefs.q),
      k: operand(bufs, inRefs.k),
      v: operand(bufs, inRefs.v),
      dq: out("q"),
      dk: out("k"),
      dv: out("v"),
      stats: bufs.scratch(8 * H, 0, "f32"),  // lse and D, fp32 [B, H, T] each
      heads: H,
      kvHeads: Hk,
      headDim: D,
      scale: floatLiteral(at.attrs.scale as number),
      scalar: !ATTENTION_GRAD_TC_HEAD_DIMS.includes(D),
      decls: "",
    };
    view.decls = bufs.declarations();
    const tiles: AttentionGradTiles = view.scalar ? { headDim: D, path: "scalar", tiles: "rows" } : { headDim: D, path: "mma", tiles: "BwdTiles" };
    const body = renderTemplate("attention_grad.cu.hbs", view);
    return { group: g, template: "attention_grad.cu.hbs", body, buffers: bufs.args, tiles: { ...tiles }, scratch: [...bufs.scratchRequests] };
  },
};
