/**
 * 8B Mamba-2-Hybrid of Waleffe et al. 2024 (arXiv:2406.07887): 56 layers, 24 Mamba-2 + 4 GQA
 * attention (no position embedding) + 28 MLP, spread by Megatron-LM's allocation
 * (--hybrid-attention-ratio 0.08 --hybrid-mlp-ratio 0.5), RMSNorm, 256K vocab. ≈ 8.66B parameters.
 */
import { model } from "../compiler/dsl/index.js";
import { PAPER_BASE, hybridStack } from "./lib/paper.js";

export default model({
  ...PAPER_BASE,
  name: "mamba2-hybrid-8b",
  norm: "rmsnorm",
  layers: hybridStack(),
});
