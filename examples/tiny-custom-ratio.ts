/** Tiny hybrid from ratios (Megatron's allocation): 6 layers, 1/6 attention, 1/3 MLP → "MM-*M-"; SwiGLU MLP, rope, MQA. */
import { attention, mamba2, mlp, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "tiny-custom-ratio",
  vocab: 256,
  dModel: 128,
  seqLen: 64,
  layers: stack({
    layers: 6,
    ratios: { attention: 1 / 6, mlp: 1 / 3 },
    M: mamba2({ dState: 64, headDim: 64, groups: 2, expand: 4, chunk: 64 }),
    "*": attention({ heads: 2, kvHeads: 1, headDim: 32, rope: true }),
    "-": mlp({ hidden: 256, act: "swiglu" }),
  }),
});
