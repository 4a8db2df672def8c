/**
 * The interpreter's implementation of every op, keyed by op name. Typed over `OpName`, so an op
 * added to the registry without a reference implementation is a compile error here.
 */
import type { OpName } from "../ir/registry.js";
import * as R from "./ref.js";
import type { RefFn } from "./tensor.js";

export const REFS = {
  param: R.source,
  input: R.source,
  arange: R.arange,
  full: R.full,
  neg: R.neg,
  exp: R.exp,
  log: R.log,
  sqrt: R.sqrt,
  rsqrt: R.rsqrt,
  square: R.square,
  tanh: R.tanh,
  sigmoid: R.sigmoid,
  silu: R.silu,
  softplus: R.softplus,
  relu: R.relu,
  relu2: R.relu2,
  mish: R.mish,
  gelu: R.gelu,
  scale: R.scale,
  addScalar: R.addScalar,
  cast: R.cast,
  add: R.add,
  sub: R.sub,
  mul: R.mul,
  div: R.div,
  rope: R.rope,
  rmsnorm: R.rmsnorm,
  layernorm: R.layernorm,
  gatedRmsnorm: R.gatedRmsnorm,
  softmax: R.softmax,
  reduceMean: R.reduceMean,
  linear: R.linear,
  matmul: R.matmul,
  embedding: R.embedding,
  conv1d: R.conv1d,
  attention: R.attention,
  ssdScan: R.ssdScan,
  selectiveScan: R.selectiveScan,
  crossEntropy: R.crossEntropy,
  convState: R.convState,
  ssdState: R.ssdState,
  selectiveState: R.selectiveState,
  // semantically a concat along time; only the kernel works in place
  cacheAppend: (inputs, _attrs, ctx) => R.concat(inputs, { axis: 1 }, ctx),
  concat: R.concat,
  reshape: R.reshape,
  slice: R.slice,
  transpose: R.transpose,
} satisfies Record<OpName, RefFn>;
