/** Tiny Mamba-2-Hybrid for tests and the GPU suite: all three layer kinds, GQA without position embedding. */
import { attention, mamba2, mlp, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "tiny-hybrid",
  vocab: 512,
  dModel: 128,
  seqLen: 64,
  layers: stack({
    pattern: "M*-M-",
    M: mamba2({ dState: 64, headDim: 64, groups: 2, expand: 4, chunk: 64 }),
    "*": attention({ heads: 4, kvHeads: 2, headDim: 32 }),
    "-": mlp({ hidden: 512, act: "relu2" }),
  }),
});
