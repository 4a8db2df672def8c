/**
 * 8B Mamba (Mamba-1) of Waleffe et al. 2024 (arXiv:2406.07887, Table 1): 56 Mamba layers,
 * d_model 4096, expand 2, state 128, dt rank 256, conv 4, RMSNorm, 256K vocab. ≈ 8.15B parameters.
 */
import { mamba, model, stack } from "../compiler/dsl/index.js";
import { PAPER_BASE } from "./lib/paper.js";

export default model({
  ...PAPER_BASE,
  name: "mamba-8b",
  norm: "rmsnorm",
  layers: stack({ pattern: "M".repeat(56), M: mamba({ dState: 128, expand: 2, dtRank: 256, dConv: 4 }) }),
});
