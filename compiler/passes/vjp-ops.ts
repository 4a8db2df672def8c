/**
 * Building the nodes of a backward graph. The backward ops themselves (sumTo, expandTo,
 * activationGrad, embeddingGrad, crossEntropyGrad, conv1dGrad, attentionGrad, ssdScanGrad,
 * selectiveScanGrad) are IR ops like any other: records in ir/ops-backward.ts, references in
 * interp/refs-backward.ts, kernel families in compiler/kernels/. Graphs that hold them evaluate
 * with `evaluate` and compile with the forward's pipeline.
 */
import { ShapeError, StrataError } from "../ir/errors.js";
import { mkNodeLike, type Attrs, type Node, type TensorType } from "../ir/node.js";
import type { OpName } from "../ir/op-names.js";

/**
 * A node of op `op`, attributed to `like`'s source line and scope (so a NaN in the backward can
 * name the layer); a shape error names the forward op whose gradient it is.
 */
export function mkBackwardNode(like: Node, op: string, inputs: readonly Node[], attrs: Attrs = {}, explicit?: TensorType): Node {
  try {
    return mkNodeLike(like, op as OpName, inputs, attrs, explicit);
  } catch (e) {
    if (e instanceof ShapeError) throw new StrataError(`autodiff: ${op} for ${like.op}${like.scope ? ` in ${like.scope}` : ""}: ${e.message}`, like.src);
    throw e;
  }
}
