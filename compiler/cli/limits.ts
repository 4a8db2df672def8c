/**
 * Sizes that reach generated code, checked before anything is emitted: the schedule counts tokens
 * (batch·sequence) in a 32-bit `int` (`kMaxTokens`, row-kernel grids), kernels take every fixed
 * dimension as an `int` constant, and byte counts must stay exact in the manifest's JSON numbers.
 * Memory beyond one GPU is stated up front (a warning: the runtime puts every weight on one device).
 */
import { graphNodes, type Graph } from "../ir/graph.js";
import { StrataError } from "../ir/errors.js";
import { DTYPE_BYTES } from "../ir/node.js";
import { fmtBytes, LARGEST_GPU_BYTES } from "./info.js";

export const INT32_MAX = 2 ** 31 - 1;

/** --max-batch × --max-seq must fit the generated code's int token count. */
export function checkTokenLimits(maxBatch: number, maxSeq: number, vocab: number): void {
  const tokens = maxBatch * maxSeq;
  if (tokens > INT32_MAX)
    throw new StrataError(
      `--max-batch ${maxBatch} × --max-seq ${maxSeq} = ${tokens.toLocaleString("en-US")} tokens, more than the generated code's 32-bit token count holds (${INT32_MAX.toLocaleString("en-US")})`,
      undefined,
      `lower --max-batch or --max-seq so that their product is at most ${INT32_MAX.toLocaleString("en-US")}`,
    );
  const logitsBytes = tokens * vocab * 4;
  if (!Number.isSafeInteger(logitsBytes))
    throw new StrataError(`--max-batch ${maxBatch} × --max-seq ${maxSeq} × vocab ${vocab} float32 logits = ${logitsBytes.toExponential(3)} bytes is too large to represent`, undefined, "lower --max-batch or --max-seq");
}

/** Every fixed dimension of the graph must fit an int constant; each weight's bytes must be exact. */
export function checkGraphSizes(g: Graph): void {
  for (const n of graphNodes(g)) {
    for (const d of n.shape)
      if (typeof d === "number" && d > INT32_MAX)
        throw new StrataError(`a ${n.op} of shape [${n.shape.join(", ")}]${n.scope ? ` in ${n.scope}` : ""} has a dimension of ${d.toLocaleString("en-US")}, more than the generated kernels' 32-bit sizes hold (${INT32_MAX.toLocaleString("en-US")})`, n.src, "choose smaller layer sizes");
    if (n.op === "param") {
      const bytes = (n.shape as number[]).reduce((a, b) => a * b, DTYPE_BYTES[n.dtype]);
      if (!Number.isSafeInteger(bytes))
        throw new StrataError(`weight '${String(n.attrs.name)}' [${n.shape.join(", ")}] has ${bytes.toExponential(3)} bytes, too many to address`, n.src, "choose smaller layer sizes");
    }
  }
}

/** A warning line when weights + activations exceed one GPU, or undefined. */
export function memoryWarning(name: string, weightBytes: number, arenaBytes: number, weightsLabel = "weights", hint = "lower --max-batch / --max-seq or the model's size"): string | undefined {
  const total = weightBytes + arenaBytes;
  if (!Number.isSafeInteger(arenaBytes))
    throw new StrataError(`${name}: the activation arena needs ${arenaBytes.toExponential(3)} bytes, too many to address`, undefined, "lower --max-batch or --max-seq");
  if (total <= LARGEST_GPU_BYTES) return undefined;
  return `warning: ${name} needs ${fmtBytes(total)} of GPU memory (${weightsLabel} ${fmtBytes(weightBytes)} + activations ${fmtBytes(arenaBytes)}), more than the largest single GPU holds (${fmtBytes(LARGEST_GPU_BYTES)}, an H200); bin/model runs on one GPU and will fail to allocate — ${hint}`;
}
