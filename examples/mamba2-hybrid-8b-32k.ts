/** Mamba-2-Hybrid 8B extended to a 32768-token context (Waleffe et al. 2024, §long-context): same layers, seqLen = maxContext = 32768. */
import { model } from "../compiler/dsl/index.js";
import base from "./mamba2-hybrid-8b.js";
import { longContext } from "./lib/paper.js";

export default model(longContext(base, 32768));
