/** Tiny Mamba-2 for tests and the GPU suite: d_inner 512 = 8 heads of 64, 2 groups, state 64, chunk 64 (sizes the CUDA SSD and GEMM kernels take: head dim, state and chunk multiples of 64; projection widths multiples of 8). */
import { mamba2, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "tiny-mamba2",
  vocab: 512,
  dModel: 128,
  seqLen: 64,
  layers: stack({ pattern: "MMM", M: mamba2({ dState: 64, headDim: 64, groups: 2, expand: 4, dConv: 4, chunk: 64 }) }),
});
