/** Tiny Transformer for tests and the GPU suite: transformer-8b's layout (MHA + half RoPE, relu² MLP, LayerNorm-1p) at d 128. */
import { attention, mlp, model, stack } from "../compiler/dsl/index.js";

export default model({
  name: "tiny-transformer",
  vocab: 512,
  dModel: 128,
  norm: "layernorm1p",
  seqLen: 64,
  layers: stack({
    pattern: "*-*-",
    "*": attention({ heads: 4, headDim: 32, rope: { fraction: 0.5, theta: 10000 } }),
    "-": mlp({ hidden: 512, act: "relu2" }),
  }),
});
