/** Tiny Mamba-2 for tests and the GPU suite: d_inner 256 = 8 heads of 32, 2 groups, state 16, chunk 16. */
import { mamba2, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "tiny-mamba2",
  vocab: 512,
  dModel: 128,
  seqLen: 64,
  layers: stack({ pattern: "MMM", M: mamba2({ dState: 16, headDim: 32, groups: 2, expand: 2, dConv: 4, chunk: 16 }) }),
});
