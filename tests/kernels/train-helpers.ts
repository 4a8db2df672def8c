/**
 * The training graph of an example as the pipeline builds it (`autodiff(withTrainingLoss(model,
 * {weighted: true}), {loss: "loss"})`), fused, and every group rendered the way compiler/pipeline.ts
 * does (buffers named per node: parameters are weights, graph inputs inputs, everything else an
 * arena slot), for the training-kernel tests.
 */
import { createHash } from "node:crypto";
import type { ModelDef } from "../../compiler/dsl/index.js";
import type { Graph } from "../../compiler/ir/graph.js";
import type { Node } from "../../compiler/ir/node.js";
import { autodiff, withTrainingLoss } from "../../compiler/passes/autodiff.js";
import { fuse, type FusionPlan } from "../../compiler/passes/fuse.js";
import { familyModule, type FusionGroup, type KernelBody, type RenderContext } from "../../compiler/kernels/index.js";
import { resolveRef, type BufferOwner } from "../../compiler/codegen/tensors.js";
import { KERNEL_NAME } from "../../compiler/codegen/templates.js";
import tinyHybrid from "../../examples/tiny-hybrid.js";
import tinyMamba from "../../examples/tiny-mamba.js";
import tinyMamba2 from "../../examples/tiny-mamba2.js";
import tinyTransformer from "../../examples/tiny-transformer.js";
import tinyCustom from "../../examples/tiny-custom-ratio.js";

/** Every examples/tiny-*.ts. */
export const TINY: Record<string, ModelDef> = {
  "tiny-hybrid": tinyHybrid,
  "tiny-mamba": tinyMamba,
  "tiny-mamba2": tinyMamba2,
  "tiny-transformer": tinyTransformer,
  "tiny-custom-ratio": tinyCustom,
};

export function trainingGraph(def: ModelDef): Graph {
  return autodiff(withTrainingLoss(def.toGraph(), { weighted: true }), { loss: "loss" });
}

const owner = (n: Node): BufferOwner =>
  n.op === "param" ? { kind: "weight", buffer: n.attrs.name as string } : n.op === "input" ? { kind: "input", buffer: n.attrs.name as string } : { kind: "slot", buffer: `v_${n.key.slice(0, 12)}` };

export function renderContext(arch: RenderContext["arch"] = "sm_90a"): RenderContext {
  return { ref: (n) => resolveRef(n, owner), outRef: (n) => resolveRef(n, owner), arch };
}

export interface Rendered {
  group: FusionGroup;
  body?: KernelBody;
  error?: Error;
}

export function renderAll(plan: FusionPlan, arch: RenderContext["arch"] = "sm_90a"): Rendered[] {
  const ctx = renderContext(arch);
  return plan.groups.map((group) => {
    try {
      return { group, body: familyModule(group.kind).render(group, ctx) };
    } catch (e) {
      return { group, error: e as Error };
    }
  });
}

export function fusedTraining(def: ModelDef): { graph: Graph; plan: FusionPlan } {
  const graph = trainingGraph(def);
  return { graph, plan: fuse(graph) };
}

/** A kernel's source under its content name, as the pipeline names them (template_hash). */
export function namedSource(kb: KernelBody): { name: string; source: string } {
  const name = `${kb.template.replace(/\.cu\.hbs$/, "")}_${createHash("sha256").update(kb.body).digest("hex").slice(0, 10)}`;
  return { name, source: kb.body.replaceAll(KERNEL_NAME, name) };
}
