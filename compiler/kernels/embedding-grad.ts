/**
 * The embedding_grad family (training): `embeddingGrad(ids [B,T], gy [B,T,d])` → the table's
 * gradient [vocab, d] (f32), a scatter-add made deterministic (include/train_ops.cuh
 * embedding_grad): an integer histogram of the ids, its scan, the token positions placed in
 * per-id buckets (scratch), then one block per vocabulary row adds its tokens' gradient rows in
 * increasing position order (the bucket sorted in shared memory, or for a very frequent id
 * collected by walking the ids in order). Rows of ids that do not occur are written as 0.
 */
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { renderTemplate } from "../codegen/templates.js";
import { CTYPE } from "../codegen/tensors.js";
import { enforce, need } from "./common.js";
import type { KernelFamilyModule, Unsupported } from "./family.js";

/** Columns a block's 256 threads hold in registers: d up to this many. */
const MAX_D = 16384;

function check(n: Node): Unsupported | undefined {
  const [ids, gy] = n.inputs as [Node, Node];
  const d = gy.shape[2];
  if (ids.shape.length !== 2 || ids.shape[0] !== "B" || ids.shape[1] !== "T" || ids.dtype !== "i32")
    return { message: `embeddingGrad: the kernel takes token ids i32 [B, T], got ${ids.dtype} [${ids.shape}]` };
  if (gy.shape.length !== 3 || typeof d !== "number") return { message: `embeddingGrad: the gradient must be [B, T, d] with a concrete d, got [${gy.shape}]` };
  if (d > MAX_D) return { message: `embeddingGrad: d = ${d} is larger than the kernel's ${MAX_D} columns per row`, hint: `d_model ≤ ${MAX_D}` };
  if (!["bf16", "f32"].includes(gy.dtype) || !["bf16", "f32"].includes(n.dtype)) return { message: `embeddingGrad: gy and the result must be bf16 or f32 (got ${gy.dtype} → ${n.dtype})` };
  return undefined;
}

export const embeddingGrad: KernelFamilyModule = {
  family: "embedding_grad",
  check,
  render(g, ctx) {
    const e = g.anchor!;
    enforce(e, check(e));
    const [ids, gy] = e.inputs as [Node, Node];
    const vocab = e.shape[0] as number;
    const d = e.shape[1] as number;
    const bufs = new BufferTable();
    const ir = ctx.ref(ids);
    need(ir.rowStride <= 1 && ir.offset === 0, e, "embeddingGrad: ids must be a contiguous [B, T] tensor");
    const gr = ctx.ref(gy);
    need(gr.tokenDims === 2 && gr.capacityStride === undefined, e, "embeddingGrad: gy must be a per-token tensor");
    const o = ctx.outRef(e);
    need(o.offset === 0 && o.tokenDims === 0, e, "embeddingGrad: the result must be a contiguous [vocab, d] tensor");
    const view = {
      vocab,
      d,
      ids: bufs.slot(ir),
      gy: bufs.slot(gr),
      gyOffset: gr.offset,
      gyStride: gr.rowStride,
      out: bufs.slot(o, true),
      // counts[V] | offsets[V + 1] | cursor[V] | order[B·T] (train_ops.cuh embedding_grad_scratch_bytes)
      scratch: bufs.scratch(4, (3 * vocab + 1) * 4, "i32"),
      TG: CTYPE[gy.dtype],
      TO: CTYPE[e.dtype],
      decls: "",
    };
    view.decls = bufs.declarations();
    const body = renderTemplate("embedding_grad.cu.hbs", view);
    return { group: g, template: "embedding_grad.cu.hbs", body, buffers: bufs.args, tiles: { threads: 256, sortMax: 2048 }, scratch: bufs.scratchRequests };
  },
};
