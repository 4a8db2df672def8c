/** A new hybrid ratio in a few lines: 10% attention, 50% MLP, the rest Mamba-2 (Megatron's allocation). */
import { attention, mamba2, mlp, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "my-hybrid",
  vocab: 32000,
  dModel: 1024,
  layers: stack({
    layers: 24,
    ratios: { attention: 0.1, mlp: 0.5 },
    M: mamba2({ dState: 128, headDim: 64 }),
    "*": attention({ heads: 16, kvHeads: 4 }),
    "-": mlp({ hidden: 4096, act: "relu2" }),
  }),
});
