/**
 * The kernel families, one module each. Adding a family: a module here (anchor op's `family`
 * trait in the registry, fusion patterns, shape rules, render), a template and a `.cuh`.
 */
import type { KernelFamily } from "../ir/registry.js";
import { attention } from "./attention.js";
import { attentionGrad } from "./attention-grad.js";
import { cacheAppend } from "./cache-append.js";
import { conv1d } from "./conv1d.js";
import { conv1dGrad } from "./conv1d-grad.js";
import { crossEntropy } from "./cross-entropy.js";
import { embedding } from "./embedding.js";
import { embeddingGrad } from "./embedding-grad.js";
import type { KernelFamilyModule } from "./family.js";
import { gemm } from "./gemm.js";
import { matmul } from "./matmul.js";
import { reduce } from "./reduce.js";
import { row } from "./row.js";
import { selectiveScan, ssd } from "./scans.js";
import { selectiveScanGrad } from "./selective-scan-grad.js";
import { ssdGrad } from "./ssd-grad.js";

export const FAMILIES = {
  gemm,
  attention,
  ssd,
  selective_scan: selectiveScan,
  conv1d,
  embedding,
  cache_append: cacheAppend,
  row,
  // training
  matmul,
  reduce,
  cross_entropy: crossEntropy,
  embedding_grad: embeddingGrad,
  conv1d_grad: conv1dGrad,
  attention_grad: attentionGrad,
  ssd_grad: ssdGrad,
  selective_scan_grad: selectiveScanGrad,
} satisfies Record<KernelFamily, KernelFamilyModule>;

export function familyModule(f: KernelFamily | "param_prep"): KernelFamilyModule {
  return FAMILIES[f === "param_prep" ? "row" : f];
}

export type { FuseContext, FusionGroup, GroupKind, KernelBody, KernelFamilyModule, RenderContext, Unsupported } from "./family.js";
