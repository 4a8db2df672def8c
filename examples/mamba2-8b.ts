/**
 * 8B Mamba-2 of Waleffe et al. 2024 (arXiv:2406.07887, Table 1): 56 Mamba-2 layers, d_model 4096,
 * expand 2, head dim 64, 8 groups, state 128, conv 4, chunk 128, RMSNorm (eps 1e-5). ≈ 8.24B parameters.
 */
import { model, stack } from "../compiler/dsl/index.js";
import { PAPER_BASE, paperMamba2 } from "./lib/paper.js";

export default model({
  ...PAPER_BASE,
  name: "mamba2-8b",
  norm: "rmsnorm",
  normEps: 1e-5,
  layers: stack({ pattern: "M".repeat(56), M: paperMamba2() }),
});
