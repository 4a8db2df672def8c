/** Embedding family: a row gather table[ids] (one block per token, 16-byte copies). */
import type { Node } from "../ir/node.js";
import { BufferTable } from "../codegen/buffers.js";
import { renderTemplate } from "../codegen/templates.js";
import { enforce } from "./common.js";
import type { KernelFamilyModule } from "./family.js";

export const embedding: KernelFamilyModule = {
  family: "embedding",
  check(e) {
    const table = e.inputs[1]!;
    const cols = table.shape[1] as number;
    if (cols % 8 !== 0 || table.dtype !== "bf16") return { message: `embedding rows must be bf16 with d_model a multiple of 8 (got ${table.dtype} [${table.shape}])` };
    return undefined;
  },
  render(g, ctx) {
    const e = g.anchor!;
    enforce(e, embedding.check!(e));
    const [ids, table] = e.inputs as [Node, Node];
    const bufs = new BufferTable();
    const cols = table.shape[1] as number;
    const view = { cols, ids: bufs.slot(ctx.ref(ids)), table: bufs.slot(ctx.ref(table)), out: bufs.slot(ctx.outRef(g.outputs[0]!), true) };
    return { group: g, template: "embedding.cu.hbs", body: renderTemplate("embedding.cu.hbs", view), buffers: bufs.args, tiles: { threads: 128 } };
  },
};
