/**
 * The kernel families, one module each. Adding a family: a module here (anchor op's `family`
 * trait in the registry, fusion patterns, shape rules, render), a template and a `.cuh`.
 */
import type { KernelFamily } from "../ir/registry.js";
import { attention } from "./attention.js";
import { cacheAppend } from "./cache-append.js";
import { conv1d } from "./conv1d.js";
import { embedding } from "./embedding.js";
import type { KernelFamilyModule } from "./family.js";
import { gemm } from "./gemm.js";
import { row } from "./row.js";
import { selectiveScan, ssd } from "./scans.js";

export const FAMILIES = {
  gemm,
  attention,
  ssd,
  selective_scan: selectiveScan,
  conv1d,
  embedding,
  cache_append: cacheAppend,
  row,
} satisfies Record<KernelFamily, KernelFamilyModule>;

export function familyModule(f: KernelFamily | "param_prep"): KernelFamilyModule {
  return FAMILIES[f === "param_prep" ? "row" : f];
}

export type { FuseContext, FusionGroup, GroupKind, KernelBody, KernelFamilyModule, RenderContext, Unsupported } from "./family.js";
