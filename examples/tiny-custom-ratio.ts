/** Tiny hybrid from ratios (Megatron's allocation): 6 layers, 1/6 attention, 1/3 MLP → "MM-*M-"; SwiGLU MLP, rope, MQA. */
import { attention, mamba2, mlp, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "tiny-custom-ratio",
  vocab: 256,
  dModel: 64,
  seqLen: 64,
  layers: stack({
    layers: 6,
    ratios: { attention: 1 / 6, mlp: 1 / 3 },
    M: mamba2({ dState: 16, headDim: 16, groups: 2, chunk: 16 }),
    "*": attention({ heads: 4, kvHeads: 1, rope: true }),
    "-": mlp({ hidden: 128, act: "swiglu" }),
  }),
});
