/** The names of the IR's ops, as types: a `switch` or a table over them is checked for exhaustiveness. */
/** Every op of the IR. */
export const OP_NAMES = [
  // sources
  "param", "input", "arange", "full",
  // elementwise
  "neg", "exp", "log", "sqrt", "rsqrt", "square", "tanh", "sigmoid", "silu", "softplus", "relu", "relu2", "gelu", "mish",
  "scale", "addScalar", "cast", "add", "sub", "mul", "div",
  // row-wise (one token's features)
  "rope", "rmsnorm", "layernorm", "gatedRmsnorm", "softmax",
  // reductions
  "reduceMean",
  // anchors
  "linear", "matmul", "embedding", "conv1d", "attention", "ssdScan", "selectiveScan", "crossEntropy",
  // state companions and caches
  "convState", "ssdState", "selectiveState", "cacheAppend", "concat",
  // views
  "reshape", "slice", "transpose",
  // backward ops (autodiff; ops-backward.ts)
  "sumTo", "expandTo", "activationGrad", "embeddingGrad", "crossEntropyGrad", "conv1dGrad", "attentionGrad", "ssdScanGrad", "selectiveScanGrad",
] as const;
export type OpName = (typeof OP_NAMES)[number];

/** Ops whose output element i depends only on input element i (NumPy broadcasting). */
export const ELEMENTWISE_OPS = [
  "neg", "exp", "log", "sqrt", "rsqrt", "square", "tanh", "sigmoid", "silu", "softplus", "relu", "relu2", "gelu", "mish",
  "scale", "addScalar", "cast", "add", "sub", "mul", "div", "activationGrad",
] as const satisfies readonly OpName[];
export type ElementwiseOp = (typeof ELEMENTWISE_OPS)[number];
