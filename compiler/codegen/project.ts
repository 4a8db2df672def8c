/**
 * strata compile: model → fused groups → kernels → a self-contained project folder:
 *
 *   manifest.json      config, weights table (+ init specs), memory plan, kernels, launches
 *   kernels/*.cu       one file per distinct kernel (groups that render identically share it)
 *   include/*.cuh      the header-only device library the kernels use
 *   model.cu           the generated host schedule (a launch table over the arena)
 *   main.cpp           bin/model's entry point
 *   runtime/           the generic C++ runtime (C ABI, safetensors, init, CLI)
 *   Makefile           builds bin/model and lib/libmodel.so with nvcc alone
 */
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { graphParams, toJsonText, type Graph } from "../ir/graph.js";
import { StrataError } from "../ir/errors.js";
import { DTYPE_BYTES, type Node } from "../ir/node.js";
import type { ModelDef } from "../dsl/model.js";
import { fuse, explainFusion, type FusionPlan } from "../passes/fuse.js";
import { planMemory, type MemoryPlan } from "../passes/plan-memory.js";
import { renderAttention, renderConv1d, renderEmbedding, renderGemm, renderSelectiveScan, renderSsd } from "./anchors.js";
import { KernelSpecSchema, nodeSummary, type BufferArg, type KernelBody, type KernelSpec } from "./kernel.js";
import { renderRowKernel, type RowContext } from "./row.js";
import { INCLUDE_DIR, KERNEL_NAME, renderTemplate } from "./templates.js";
import { resolveRef, type BufferKind } from "./tensors.js";

export interface EmitOptions {
  maxBatch?: number;
  maxSeq?: number;
  arch?: "sm_90a" | "sm_80" | "sm_90";
}

export interface EmittedKernel {
  name: string;
  file: string;
  source: string;
  spec: KernelSpec;
}

export interface Launch {
  kernel: string;
  group: number;
  scope: string;
  buffers: BufferArg[];
  once: boolean;
}

export interface EmittedProject {
  name: string;
  graph: Graph;
  plan: FusionPlan;
  memory: MemoryPlan;
  kernels: EmittedKernel[];
  launches: Launch[];
  manifest: Record<string, unknown>;
  files: Record<string, string>;
}

const SAFETENSORS_DTYPE: Record<string, string> = { bf16: "BF16", f16: "F16", f32: "F32", i32: "I32", i64: "I64" };

function renderGroup(kind: string, g: Parameters<typeof renderGemm>[0], ctx: RowContext): KernelBody {
  switch (kind) {
    case "gemm": return renderGemm(g, ctx);
    case "attention": return renderAttention(g, ctx);
    case "ssd": return renderSsd(g, ctx);
    case "selective_scan": return renderSelectiveScan(g, ctx);
    case "conv1d": return renderConv1d(g, ctx);
    case "embedding": return renderEmbedding(g, ctx);
    default: return renderRowKernel(g, ctx);
  }
}

export function emitProject(def: ModelDef, opts: EmitOptions = {}): EmittedProject {
  const g = def.toGraph();
  const maxBatch = opts.maxBatch ?? 1;
  const maxSeq = opts.maxSeq ?? def.config.seqLen;
  const plan = fuse(g);
  const logits = g.outputs.logits;
  if (!logits) throw new StrataError("compile: the model graph has no 'logits' output");
  const memory = planMemory(plan, [logits], { maxBatch, maxSeq });
  const slotOf = new Map(memory.slots.map((s) => [s.key, s]));
  const slotByName = new Map(memory.slots.map((s) => [s.name, s]));
  const params = graphParams(g);
  const weightIndex = new Map(params.map((p, i) => [p.attrs.name as string, i]));

  const owner = (n: Node): { kind: BufferKind; buffer: string } | undefined => {
    if (n.op === "param") return { kind: "weight", buffer: n.attrs.name as string };
    if (n.op === "input") return { kind: "input", buffer: n.attrs.name as string };
    const s = slotOf.get(n.key);
    return s ? { kind: "slot", buffer: s.name } : undefined;
  };
  const ctx: RowContext = { ref: (n) => resolveRef(n, owner), outRef: (n) => resolveRef(n, owner), arch: opts.arch ?? "sm_90a" };

  // render every group, then share kernels whose bodies are identical
  const byHash = new Map<string, { name: string; body: KernelBody; groups: KernelBody[] }>();
  const launches: Launch[] = [];
  for (const grp of plan.groups) {
    const kb = renderGroup(grp.kind, grp, ctx);
    const h = createHash("sha256").update(kb.body).digest("hex").slice(0, 8);
    const base = kb.template.replace(/\.cu\.hbs$/, "");
    let k = byHash.get(h);
    if (!k) {
      k = { name: `${base}_${h}`, body: kb, groups: [] };
      byHash.set(h, k);
    }
    k.groups.push(kb);
    const a = grp.anchor ?? grp.nodes[grp.nodes.length - 1]!;
    launches.push({ kernel: k.name, group: grp.id, scope: a.scope ?? "model", buffers: kb.buffers, once: grp.kind === "param_prep" });
  }

  const kernels: EmittedKernel[] = [...byHash.values()].map(({ name, body, groups }) => {
    const spec: KernelSpec = KernelSpecSchema.parse({
      name,
      template: body.template,
      group: body.group.id,
      kind: body.group.kind,
      nodes: groups.flatMap((kb) => nodeSummary(kb.group.nodes)),
      tiles: body.tiles,
      buffers: body.buffers,
      once: body.group.kind === "param_prep",
    } satisfies KernelSpec); // specs are plain data, checked against their schema
    const header = [
      `// ${name} — generated by Strata from templates/${body.template}; do not edit.`,
      `// tiles: ${JSON.stringify(body.tiles)}`,
      `// used by ${groups.length} group${groups.length > 1 ? "s" : ""} (IR nodes, DSL source lines):`,
      ...groups.map((kb) => {
        const s = nodeSummary(kb.group.nodes);
        const srcs = [...new Set(s.map((n) => n.src).filter(Boolean))];
        return `//   group ${kb.group.id} ${s[0]?.scope ?? ""}: ${s.map((n) => `${n.op}#${n.key.slice(0, 6)}`).join(" ")}${srcs.length ? `  (${srcs.join(", ")})` : ""}`;
      }),
      `// launcher buffers (first group): ${body.buffers.map((b, i) => `[${i}] ${b.kind}:${b.name}`).join(", ")}`,
      "",
    ].join("\n");
    return { name, file: `kernels/${name}.cu`, source: header + body.body.replaceAll(KERNEL_NAME, name), spec };
  });

  // the launch table: buffers flattened into (kind, value) refs
  const bufs: { kind: string; value: number }[] = [];
  const table = launches.map((l) => {
    const first = bufs.length;
    for (const b of l.buffers) {
      if (b.kind === "slot") bufs.push({ kind: "kArena", value: slotByName.get(b.name)!.offset });
      else if (b.kind === "weight") bufs.push({ kind: "kWeight", value: weightIndex.get(b.name)! });
      else bufs.push({ kind: "kTokens", value: 0 });
    }
    return { kernel: l.kernel, scope: l.scope, first, count: l.buffers.length, once: l.once };
  });
  if (Math.max(...launches.map((l) => l.buffers.length)) > 16) throw new Error("compile: a kernel takes more than 16 buffers");
  const logitsSlot = slotOf.get(logits.key)!;
  if (logits.dtype !== "bf16") throw new StrataError(`compile: logits must be bf16 (got ${logits.dtype})`, logits.src);

  const manifest = {
    format: "strata-project/1",
    name: def.config.name,
    vocabSize: def.config.vocab,
    maxBatch,
    maxSeqlen: maxSeq,
    arenaBytes: memory.peakBytes,
    arch: opts.arch ?? "sm_90a",
    config: def.config,
    pattern: def.pattern,
    /** Each block's mixer and its options, in order (for tools: e.g. the GPU suite's PyTorch reference). */
    blocks: def.layers.map((l) => ({ kind: l.kind, ...l.config })),
    weights: params.map((p) => ({
      name: p.attrs.name,
      dtype: SAFETENSORS_DTYPE[p.dtype],
      shape: p.shape,
      init: p.attrs.init,
      bytes: (p.shape as number[]).reduce((a, b) => a * b, DTYPE_BYTES[p.dtype]),
    })),
    buffers: memory.slots.map((s) => ({ name: s.name, dtype: s.dtype, bytes: s.bytes, offset: s.offset, live: [s.from, s.to] })),
    kernels: kernels.map((k) => ({ ...k.spec, file: k.file })),
    launches: launches.map((l) => ({ kernel: l.kernel, group: l.group, scope: l.scope, once: l.once, buffers: l.buffers })),
    logits: { buffer: logitsSlot.name, offset: logitsSlot.offset, dtype: "bf16" },
  };

  const files: Record<string, string> = {};
  for (const k of kernels) files[k.file] = k.source;
  files["model.cu"] = renderTemplate("model.cu.hbs", {
    name: def.config.name,
    kernels: kernels.map((k) => k.name),
    bufs,
    launches: table,
    arenaBytes: memory.peakBytes,
    logitsOffset: logitsSlot.offset,
    maxTokens: maxBatch * maxSeq,
  });
  files["main.cpp"] = renderTemplate("main.cpp.hbs", { name: def.config.name });
  files["Makefile"] = renderTemplate("Makefile.hbs", { name: def.config.name, arch: opts.arch ?? "sm_90a" });
  files["manifest.json"] = JSON.stringify(manifest, null, 1) + "\n";
  return { name: def.config.name, graph: g, plan, memory, kernels, launches, manifest, files };
}

const RUNTIME_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../runtime");

/** Write the project folder: generated files plus copies of the device library and runtime. */
export function writeProject(p: EmittedProject, dir: string): void {
  for (const [rel, text] of Object.entries(p.files)) {
    const f = path.join(dir, rel);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, text);
  }
  mkdirSync(path.join(dir, "include"), { recursive: true });
  for (const h of readdirSync(INCLUDE_DIR)) cpSync(path.join(INCLUDE_DIR, h), path.join(dir, "include", h), { recursive: true, filter: (src) => !path.extname(src) || src.endsWith(".cuh") });
  for (const sub of ["include", "src"]) cpSync(path.join(RUNTIME_DIR, sub), path.join(dir, "runtime", sub), { recursive: true });
  cpSync(path.join(RUNTIME_DIR, "Makefile.fragment"), path.join(dir, "runtime", "Makefile.fragment"));
}

/** IR before and after fusion, the kernel specs and sources, for `strata compile --dump DIR`. */
export function dumpProject(p: EmittedProject, dir: string): void {
  mkdirSync(path.join(dir, "kernels"), { recursive: true });
  writeFileSync(path.join(dir, "ir.json"), toJsonText(p.graph) + "\n");
  const groups = p.plan.groups.map((g) => ({
    id: g.id,
    kind: g.kind,
    anchor: g.anchor ? { op: g.anchor.op, key: g.anchor.key, scope: g.anchor.scope } : null,
    nodes: g.nodes.map((n) => ({ op: n.op, key: n.key })),
    outputs: g.outputs.map((n) => n.key),
  }));
  writeFileSync(path.join(dir, "fused.json"), JSON.stringify({ groups, decisions: p.plan.decisions.map((d) => ({ group: d.group, node: d.node.key, op: d.node.op, accepted: d.accepted, what: d.what, reason: d.reason })) }, null, 1) + "\n");
  writeFileSync(path.join(dir, "fusion.txt"), explainFusion(p.plan) + "\n");
  writeFileSync(path.join(dir, "kernel-specs.json"), JSON.stringify(p.kernels.map((k) => k.spec), null, 1) + "\n");
  writeFileSync(path.join(dir, "memory-plan.json"), JSON.stringify(p.memory, null, 1) + "\n");
  for (const k of p.kernels) writeFileSync(path.join(dir, k.file), k.source);
}
