/**
 * Writes a compiled Program as a self-contained project folder:
 *
 *   manifest.json      config, weights table (+ init specs), state buffers, schedules (memory plan
 *                      + launches), entry points, kernels
 *   kernels/*.cu       one file per distinct kernel (groups that render identically share it)
 *   include/           the header-only device library the kernels use
 *   model.cu           the Program as data tables (launchers, buffers, launches, states); the
 *                      generic host code that runs them is runtime/src/program.cpp
 *   main.cpp           bin/model's entry point
 *   runtime/           the generic C++ runtime (C ABI, program executor, safetensors, init, CLI)
 *   Makefile           builds bin/model and lib/libmodel.so with nvcc alone
 *
 * This module only turns a Program (compiler/pipeline.ts) into files.
 */
import { cpSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelDef } from "../dsl/model.js";
import { toJsonText, graphParams, type Graph } from "../ir/graph.js";
import { DTYPE_BYTES } from "../ir/node.js";
import { explainFusion, type FusionPlan } from "../passes/fuse.js";
import type { MemoryPlan } from "../passes/plan-memory.js";
import { compileProgram, PIPELINE, type EmittedKernel, type Launch, type Program, type ProgramOptions } from "../pipeline.js";
import type { BufferArg } from "./kernel.js";
import { trainingFlopsPerToken } from "../ir/flops.js";

/** d(training FLOPs per token)/d(row length), from two row lengths (the per-token cost is linear in T). */
function flopsSlope(g: Parameters<typeof trainingFlopsPerToken>[0], T: number): number {
  const lo = Math.max(1, Math.floor(T / 2));
  return lo === T ? 0 : (trainingFlopsPerToken(g, T) - trainingFlopsPerToken(g, lo)) / (T - lo);
}
import { INCLUDE_DIR, renderTemplate } from "./templates.js";

export type EmitOptions = ProgramOptions;
export type { EmittedKernel, Launch } from "../pipeline.js";

export interface EmittedProject {
  name: string;
  program: Program;
  /** The forward graph, its fusion plan and memory plan (the other schedules are in `program`). */
  graph: Graph;
  plan: FusionPlan;
  memory: MemoryPlan;
  kernels: EmittedKernel[];
  /** Kernel launches of every schedule. */
  launches: Extract<Launch, { kind: "kernel" }>[];
  manifest: Record<string, unknown>;
  files: Record<string, string>;
}

const SAFETENSORS_DTYPE: Record<string, string> = { bf16: "BF16", f16: "F16", f32: "F32", i32: "I32", i64: "I64" };

/** Compile `def` into a Program and render the project's generated files. */
export function emitProject(def: ModelDef, opts: EmitOptions = {}): EmittedProject {
  const p = compileProgram(def, opts);
  const fwd = p.schedules.find((s) => s.name === "forward")!;
  const params = graphParams(fwd.graph);
  const weightIndex = new Map(params.map((n, i) => [n.attrs.name as string, i]));
  const stateIndex = new Map(p.states.map((s, i) => [s.name, i]));
  const kernelIndex = new Map(p.kernels.map((k, i) => [k.name, i]));

  // the launch tables: buffers flattened into (kind, value) refs, schedules one after the other
  const bufs: { kind: string; value: number }[] = [];
  const launches: Record<string, unknown>[] = [];
  const schedules: Record<string, unknown>[] = [];
  for (const s of p.schedules) {
    const slotByName = new Map(s.memory.slots.map((x) => [x.name, x]));
    const prepByName = new Map(p.preps.map((x) => [x.name, x]));
    const ref = (b: BufferArg) => {
      switch (b.kind) {
        case "slot": return { kind: "kArena", value: slotByName.get(b.name)!.offset };
        case "weight": return { kind: "kWeight", value: weightIndex.get(b.name)! };
        case "state": return { kind: "kState", value: stateIndex.get(b.name)! };
        case "prep": return { kind: "kPrep", value: prepByName.get(b.name)!.offset };
        case "input":
          if (b.name === "tokens") return { kind: "kTokens", value: 0 };
          if (b.name === "positions") return { kind: "kPositions", value: 0 };
          if (b.name === "targets") return { kind: "kTargets", value: 0 };
          if (b.name === "weights") return { kind: "kLossWeights", value: 0 };
          throw new Error(`compile: the runtime has no graph input '${b.name}'`);
        default: throw new Error(`compile: unexpected buffer kind ${b.kind}`);
      }
    };
    const firstLaunch = launches.length;
    for (const l of s.launches) {
      const first = bufs.length;
      if (l.kind === "kernel") {
        if (l.buffers.length > 16) throw new Error(`compile: kernel ${l.kernel} takes ${l.buffers.length} buffers (at most 16)`);
        for (const b of l.buffers) bufs.push(ref(b));
        launches.push({ op: "kLaunchKernel", kernel: kernelIndex.get(l.kernel)!, name: l.kernel, scope: l.scope, first, count: l.buffers.length, once: l.once, bytesPerSeq: 0 });
      } else {
        bufs.push(ref(l.src), ref(l.dst));
        launches.push({ op: "kLaunchCopy", kernel: -1, name: "copy", scope: l.scope, first, count: 2, once: false, bytesPerSeq: l.bytesPerSeq });
      }
    }
    schedules.push({ name: s.name, arenaBytes: s.memory.peakBytes, logitsOffset: s.logits.offset, firstLaunch, launchCount: launches.length - firstLaunch });
  }

  // train: where each weight's gradient lands in the train arena (manifest order; zero: not reached by the loss)
  const trainSchedule = p.schedules.find((s) => s.name === "train");
  const grads = trainSchedule
    ? params.map((n, i) => {
        const gr = trainSchedule.grads!.find((x) => x.weight === n.attrs.name);
        if (!gr) throw new Error(`compile: the train schedule has no gradient for ${n.attrs.name as string}`);
        return { weight: i, offset: gr.slot ? String(gr.slot.offset + gr.elementOffset * 4) : "~0ull" };
      })
    : [];

  const manifest = {
    format: "strata-project/2",
    name: p.name,
    /** The compiler passes that made this project, in order (compiler/pipeline.ts). */
    pipeline: PIPELINE,
    vocabSize: def.config.vocab,
    maxBatch: p.options.maxBatch,
    maxSeqlen: p.options.maxSeq,
    /** Largest batch · seqlen of one call (the arena is sized for it). */
    maxTokens: p.options.maxTokens,
    maxContext: p.options.maxContext,
    /** The largest arena of the schedules (they never run at the same time). */
    arenaBytes: Math.max(...p.schedules.map((s) => s.memory.peakBytes)),
    arch: p.options.arch,
    config: def.config,
    pattern: def.pattern,
    /** Each block's mixer and its options, in order (for tools: e.g. the GPU suite's PyTorch reference). */
    blocks: def.layers.map((l) => ({ kind: l.kind, ...l.config })),
    weights: params.map((n) => ({
      name: n.attrs.name,
      dtype: SAFETENSORS_DTYPE[n.dtype],
      shape: n.shape,
      init: n.attrs.init,
      bytes: (n.shape as number[]).reduce((a, b) => a * b, DTYPE_BYTES[n.dtype]),
    })),
    /** Persistent buffers: the state carried across prefill / step calls, per sequence. */
    states: p.states.map((s) => ({ name: s.name, kind: s.kind, dtype: s.dtype, shape: s.shape, bytesPerSeq: s.bytesPerSeq, bytesPerToken: s.bytesPerToken })),
    /** Values computed once from the weights when they are loaded (e.g. A = −exp(A_log)). */
    prepared: { bytes: p.prepBytes, buffers: p.preps.map((x) => ({ name: x.name, bytes: x.bytes, offset: x.offset })) },
    entries: Object.fromEntries(p.entries.map((e) => [e.name, { schedule: e.schedule, tokens: e.tokens, state: e.state, inputs: e.inputs, outputs: e.outputs, doc: e.doc }])),
    schedules: Object.fromEntries(
      p.schedules.map((s) => [
        s.name,
        {
          arenaBytes: s.memory.peakBytes,
          plannedFor: s.memory.bindings,
          logits: { buffer: s.logits.name, offset: s.logits.offset, dtype: "bf16" },
          buffers: s.memory.slots.map((x) => ({ name: x.name, dtype: x.dtype, bytes: x.bytes, offset: x.offset, live: [x.from, x.to] })),
          launches: s.launches.map((l) => (l.kind === "kernel" ? { kernel: l.kernel, group: l.group, scope: l.scope, once: l.once, buffers: l.buffers } : { copy: l.src.name, to: l.dst.name, scope: l.scope, bytesPerSeq: l.bytesPerSeq })),
        },
      ]),
    ),
    kernels: p.kernels.map((k) => ({ ...k.spec, file: k.file })),
    /** Training (compiled with --train): the loss and each weight's f32 gradient in the train arena. */
    ...(trainSchedule
      ? {
          train: {
            /** Training FLOPs per token at the compiled max sequence (3 × forward), for MFU. */
            flopsPerToken: trainingFlopsPerToken(fwd.graph, p.options.maxSeq),
            /** …at flopsAtSeq tokens per row; per extra token of row length (attention's causal share): */
            flopsAtSeq: p.options.maxSeq,
            flopsPerTokenPerRowToken: flopsSlope(fwd.graph, p.options.maxSeq),
            loss: { offset: trainSchedule.logits.offset, dtype: "f32" },
            grads: params.map((n, i) => ({ name: n.attrs.name, offset: grads[i]!.offset === "~0ull" ? null : Number(grads[i]!.offset) })),
          },
        }
      : {}),
  };

  const files: Record<string, string> = {};
  for (const k of p.kernels) files[k.file] = k.source;
  files["model.cu"] = renderTemplate("model.cu.hbs", {
    name: p.name,
    kernels: p.kernels.map((k) => k.name),
    bufs,
    launches,
    // fixed bytes per sequence, and bytes per token of context (KV caches)
    states: p.states.map((s, i) => ({ name: s.name, fixed: s.bytesPerToken ? 0 : s.bytesPerSeq, perToken: s.bytesPerToken, index: i })),
    schedules,
    maxBatch: p.options.maxBatch,
    maxSeq: p.options.maxSeq,
    maxContext: p.options.maxContext,
    maxTokens: p.options.maxTokens,
    prepBytes: p.prepBytes,
    grads,
  });
  files["main.cpp"] = renderTemplate("main.cpp.hbs", { name: p.name });
  files["Makefile"] = renderTemplate("Makefile.hbs", { name: p.name, arch: p.options.arch });
  files["manifest.json"] = JSON.stringify(manifest, null, 1) + "\n";
  return {
    name: p.name,
    program: p,
    graph: fwd.graph,
    plan: fwd.plan,
    memory: fwd.memory,
    kernels: p.kernels,
    launches: p.schedules.flatMap((s) => s.launches.filter((l): l is Extract<Launch, { kind: "kernel" }> => l.kind === "kernel")),
    manifest,
    files,
  };
}

const RUNTIME_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../runtime");

/** Write the project folder: generated files plus copies of the device library and runtime. */
export function writeProject(p: EmittedProject, dir: string): void {
  for (const [rel, text] of Object.entries(p.files)) {
    const f = path.join(dir, rel);
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, text);
  }
  // the device library, sub-folders included (include/strata/: PTX wrappers and math)
  cpSync(INCLUDE_DIR, path.join(dir, "include"), { recursive: true, filter: (src) => statSync(src).isDirectory() || src.endsWith(".cuh") });
  for (const sub of ["include", "src"]) cpSync(path.join(RUNTIME_DIR, sub), path.join(dir, "runtime", sub), { recursive: true });
  cpSync(path.join(RUNTIME_DIR, "Makefile.fragment"), path.join(dir, "runtime", "Makefile.fragment"));
}

/** IR before and after fusion, the kernel specs and sources, for `strata compile --dump DIR`. */
export function dumpProject(p: EmittedProject, dir: string): void {
  mkdirSync(path.join(dir, "kernels"), { recursive: true });
  for (const s of p.program.schedules) {
    const suffix = s.name === "forward" ? "" : `.${s.name}`;
    writeFileSync(path.join(dir, `ir${suffix}.json`), toJsonText(s.graph) + "\n");
    const groups = s.plan.groups.map((g) => ({
      id: g.id,
      kind: g.kind,
      anchor: g.anchor ? { op: g.anchor.op, key: g.anchor.key, scope: g.anchor.scope } : null,
      nodes: g.nodes.map((n) => ({ op: n.op, key: n.key })),
      outputs: g.outputs.map((n) => n.key),
    }));
    writeFileSync(path.join(dir, `fused${suffix}.json`), JSON.stringify({ groups, decisions: s.plan.decisions.map((d) => ({ group: d.group, node: d.node.key, op: d.node.op, accepted: d.accepted, what: d.what, reason: d.reason })) }, null, 1) + "\n");
    writeFileSync(path.join(dir, `fusion${suffix}.txt`), explainFusion(s.plan) + "\n");
    writeFileSync(path.join(dir, `memory-plan${suffix}.json`), JSON.stringify(s.memory, null, 1) + "\n");
  }
  writeFileSync(path.join(dir, "kernel-specs.json"), JSON.stringify(p.kernels.map((k) => k.spec), null, 1) + "\n");
  for (const k of p.kernels) writeFileSync(path.join(dir, k.file), k.source);
}
