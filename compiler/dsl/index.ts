/** The public DSL: what an architecture file imports. */
export * as ops from "./ops.js";
export { init, type InitSpec } from "./init.js";
export { model, stack, layer, allocateLayers, roundHalfEven, BuildCtx, type ModelDef, type LayerDef, type StackDef, type ModelConfig, type ModelOptions } from "./model.js";
export { mlp, attention, mamba, mamba2, type MlpOptions, type AttentionOptions, type MambaOptions, type Mamba2Options } from "./layers.js";
