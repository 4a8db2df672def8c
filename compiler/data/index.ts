/** Training data: token files, tokenizers, real text and the synthetic probes (`strata data`). */
export * from "./tokenfile.js";
export * from "./tokenizers.js";
export * from "./text.js";
export * from "./probes.js";
export * from "./batches.js";
