import "./ops.js";
export * from "./dims.js";
export * from "./errors.js";
export * from "./node.js";
export * from "./registry.js";
export * from "./graph.js";
