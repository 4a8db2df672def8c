/**
 * 8B Transformer baseline of Waleffe et al. 2024 (arXiv:2406.07887, Table 1 / Megatron-LM):
 * 32 transformer layers (each an attention block "*" then an MLP block "-"), d_model 4096,
 * 32-head MHA with head dim 128, RoPE on half of each head, squared-ReLU MLP 16384,
 * LayerNorm-1p, 256K vocab, untied, bf16, 4K context. ≈ 8.54B parameters.
 */
import { attention, model, stack } from "../compiler/dsl/index.js";
import { PAPER_BASE, paperMlp } from "./lib/paper.js";

export default model({
  ...PAPER_BASE,
  name: "transformer-8b",
  norm: "layernorm1p",
  initLayers: 32, // Megatron counts attention + MLP as one transformer layer in the scaled init
  layers: stack({
    pattern: "*-".repeat(32),
    "*": attention({ heads: 32, headDim: 128, rope: { fraction: 0.5, theta: 10000 } }),
    "-": paperMlp(),
  }),
});
