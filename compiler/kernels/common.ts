/** Helpers the kernel-family modules share: shape checks, operand references. */
import { StrataError } from "../ir/errors.js";
import type { Node } from "../ir/node.js";
import type { BufferTable } from "../codegen/buffers.js";
import type { TensorRef } from "../codegen/tensors.js";
import type { RenderContext, Unsupported } from "./family.js";

/** Throw the family's `check` verdict as a StrataError at the anchor's source line. */
export function enforce(anchor: Node, verdict: Unsupported | undefined): void {
  if (verdict) throw new StrataError(`codegen: ${verdict.message}`, anchor.src, verdict.hint);
}

export function need(cond: boolean, n: Node, what: string, hint?: string): void {
  if (!cond) throw new StrataError(`codegen: ${what}`, n.src, hint);
}

export const stride8 = (r: TensorRef) => r.rowStride % 8 === 0 && r.offset % 8 === 0;

export function tokenRef(ctx: RenderContext, n: Node, anchor: Node, what: string): TensorRef {
  const r = ctx.ref(n);
  need(r.tokenDims === 2, anchor, `${what} must be a per-token tensor [B, T, ...], got [${r.shape}]`);
  return r;
}

/** A strided operand as the templates use it: launcher buffer index, feature offset, row and batch stride. */
export function operand(bufs: BufferTable, r: TensorRef, output = false) {
  return { buf: bufs.slot(r, output), offset: r.offset, stride: r.rowStride, batchStride: batchStride(r) };
}

/** Elements between consecutive sequences (launcher code): a cache's d->C tokens, else T rows. */
export function batchStride(r: TensorRef): string {
  return r.capacityStride !== undefined ? `(long long)d->C * ${r.capacityStride}` : `(long long)T * ${r.rowStride}`;
}
