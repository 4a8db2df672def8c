/**
 * The compiler's pipeline, in order, and the Program it produces: one artifact with several
 * entry points compiled together that share the weights, the kernels and the persistent buffers.
 *
 *   lower       DSL model → Graph IR (the forward graph: tokens → logits)
 *   deriveStep  forward → the cached graph: T new tokens after P past ones, SSM / conv / KV state
 *               in and out (scans take h0, conv1d its prefix, attention the KV caches extended in
 *               place by cacheAppend)
 *   autodiff    (with `train`) forward + the weighted cross-entropy loss → the train graph with the
 *               f32 gradient of every weight (passes/autodiff.ts; backward ops in ir/ops-backward.ts)
 *   fuse        each graph → kernel groups (the kernel-family modules in compiler/kernels/)
 *   planMemory  per graph: arena slots for per-call values; the state lives in persistent
 *               buffers shared by the entries (a scan's final state written over its initial one,
 *               caches appended in place; a conv state copied back after its kernel)
 *   render      groups → kernels, de-duplicated by their full body across graphs; kernel scratch
 *               (BufferTable.scratch) is placed in the arena, live during its launch only
 *   schedule    launch tables per graph (buffers as plain data) + the entry points
 *
 * Entry points: `forward` (tokens [B,T] → logits of every position, no state), `prefill` (starts
 * B sequences: resets their state and runs T prompt tokens; also continues them, for chunked
 * prefill), `step` (one new token per sequence) and, compiled with `train`, `train` (tokens,
 * targets and loss weights → the loss and every weight's gradient, left in the train arena).
 */
import { createHash } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ModelDef } from "./dsl/model.js";
import { evalShape } from "./ir/dims.js";
import { StrataError } from "./ir/errors.js";
import { graphNodes, type Graph } from "./ir/graph.js";
import { DTYPE_BYTES, type Node } from "./ir/node.js";
import { deriveStep, type StateInfo } from "./passes/derive-step.js";
import { fuse, type FusionPlan } from "./passes/fuse.js";
import { nodeBytes, planMemory, withScratch, type BufferSlot, type MemoryPlan, type ScratchSlot } from "./passes/plan-memory.js";
import { autodiff, withTrainingLoss } from "./passes/autodiff.js";
import { recompute } from "./passes/recompute.js";
import { aliasConcats, type ConcatAlias } from "./passes/concat-alias.js";
import { foldCasts } from "./passes/fold-casts.js";
import { familyModule, type KernelBody, type RenderContext } from "./kernels/index.js";
import { KernelSpecSchema, nodeSummary, type BufferArg, type KernelSpec } from "./codegen/kernel.js";
import { KERNEL_NAME } from "./codegen/templates.js";
import { resolveRef, type BufferOwner } from "./codegen/tensors.js";
import type { TuningDb } from "./tune/db.js";

/** The passes, in the order compileProgram runs them (written to the manifest). */
export const PIPELINE = ["lower", "deriveStep", "autodiff", "fuse", "planMemory", "render", "schedule"] as const;

export type Arch = "sm_90a" | "sm_90" | "sm_80";

export interface ProgramOptions {
  /** Largest batch any entry accepts (default 1). */
  maxBatch?: number;
  /** Largest T of one forward / prefill call (default: the model's seqLen). */
  maxSeq?: number;
  /** Largest B·T of one call (default maxBatch · maxSeq): sizes the activation arena, so a
   * project can take long single sequences and wide decode batches without paying for both. */
  maxTokens?: number;
  /** Longest sequence (past + new tokens) the state caches hold (default: the model's maxContext, at least maxSeq). */
  maxContext?: number;
  arch?: Arch;
  /** Also compile the `train` entry: forward + loss + backward (autodiff), gradients of every weight. */
  train?: boolean;
  /** train: layer kinds whose activations the backward recomputes instead of keeping (passes/recompute.ts), or "all". */
  recompute?: readonly string[] | "all";
  /** Tile choices measured by `strata tune` (the GEMM families fall back to their defaults). */
  tuning?: TuningDb;
  /**
   * train: in-place concats (passes/concat-alias.ts): the pieces' kernels write into the concat's
   * buffer and the concat's copy kernel goes. On by default (`--no-in-place-concat` turns it off).
   */
  inPlaceConcat?: boolean;
  /**
   * train: exact cast rewrites (passes/fold-casts.ts): round trips through a wider float folded,
   * exact widenings recomputed by each fusing reader instead of stored. On by default
   * (`--no-fold-casts` turns it off).
   */
  foldCasts?: boolean;
}

/** A persistent buffer: one per state of the cached graph, sized per sequence. */
export interface StateBuffer {
  name: string;
  kind: StateInfo["kind"];
  dtype: Node["dtype"];
  /** Shape at the maximum batch, with the KV caches' P at the context capacity. */
  shape: number[];
  /** Bytes of one sequence's state at the compiled max context (a handle for b sequences and a
   * context of c tokens holds b · (fixed + c · bytesPerToken)). */
  bytesPerSeq: number;
  /** KV caches grow with the handle's context: bytes per token (0 for SSM / conv states). */
  bytesPerToken: number;
  /** Elements per token (KV caches), the batch stride's factor of the run-time context. */
  tokenStride: number;
}

export type Launch =
  | { kind: "kernel"; kernel: string; group: number; scope: string; buffers: BufferArg[]; once: boolean }
  /** Copy a state computed in the arena back into its persistent buffer (bytes per sequence). */
  | { kind: "copy"; scope: string; src: BufferArg; dst: BufferArg; bytesPerSeq: number };

export interface Schedule {
  name: "forward" | "cached" | "train";
  graph: Graph;
  plan: FusionPlan;
  memory: MemoryPlan;
  launches: Launch[];
  /** forward / cached: the bf16 logits [B, T, V]; train: the f32 loss (a scalar). */
  logits: BufferSlot;
  /** train: where each weight's f32 gradient lands (undefined: the loss does not reach it, the gradient is 0). */
  grads?: { weight: string; slot?: BufferSlot; elementOffset: number }[];
}

export interface EntryPoint {
  name: "forward" | "prefill" | "step" | "train";
  schedule: Schedule["name"];
  doc: string;
  /** New tokens per sequence: any T in 1..maxSeq, or exactly 1. */
  tokens: "1..maxSeq" | 1;
  /** What the entry does with the state: none, reset (or continue) then write, continue. */
  state: "none" | "reset-or-continue" | "continue";
  inputs: Record<string, string>;
  outputs: Record<string, string>;
}

export interface EmittedKernel {
  name: string;
  file: string;
  source: string;
  spec: KernelSpec;
}

/** A value computed once from the weights (param prep), in the prepared-values region. */
export interface PrepBuffer {
  key: string;
  name: string;
  bytes: number;
  offset: number;
}

export interface Program {
  name: string;
  def: ModelDef;
  options: Required<Omit<ProgramOptions, "tuning">>;
  states: StateBuffer[];
  preps: PrepBuffer[];
  prepBytes: number;
  schedules: Schedule[];
  entries: EntryPoint[];
  kernels: EmittedKernel[];
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function positiveInt(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 1) throw new StrataError(`compile: ${what} must be a positive integer, got ${v}`);
}

export function compileProgram(def: ModelDef, opts: ProgramOptions = {}): Program {
  const maxBatch = opts.maxBatch ?? 1;
  const maxSeq = opts.maxSeq ?? def.config.seqLen;
  const maxContext = Math.max(opts.maxContext ?? def.config.maxContext, maxSeq);
  positiveInt(maxBatch, "max batch");
  positiveInt(maxSeq, "max sequence length");
  positiveInt(maxContext, "max context");
  const maxTokens = opts.maxTokens ?? maxBatch * maxSeq;
  positiveInt(maxTokens, "max tokens per call");
  if (maxTokens > maxBatch * maxSeq || maxTokens < Math.max(maxBatch, maxSeq))
    throw new StrataError(`compile: max tokens per call ${maxTokens} must lie between max(max batch, max seq) = ${Math.max(maxBatch, maxSeq)} and max batch · max seq = ${maxBatch * maxSeq}`);
  const options: Required<Omit<ProgramOptions, "tuning">> = {
    maxBatch,
    maxSeq,
    maxTokens,
    maxContext,
    arch: opts.arch ?? "sm_90a",
    train: opts.train ?? false,
    recompute: opts.recompute ?? [],
    inPlaceConcat: opts.inPlaceConcat ?? true,
    foldCasts: opts.foldCasts ?? true,
  };

  // lower, deriveStep
  const forward = def.toGraph();
  if (!forward.outputs.logits) throw new StrataError("compile: the model graph has no 'logits' output");
  const { step: cached, states: stateInfos } = deriveStep(forward, { tokens: "T" });

  const states: StateBuffer[] = stateInfos.map((s) => {
    const shape = evalShape(s.shape, { B: maxBatch, P: maxContext, T: maxSeq });
    const perSeq = shape.slice(1).reduce((a, b) => a * b, 1);
    const kv = s.shape[1] === "P";
    const tokenStride = kv ? shape.slice(2).reduce((a, b) => a * b, 1) : 0;
    return { name: s.name, kind: s.kind, dtype: s.dtype, shape, bytesPerSeq: perSeq * DTYPE_BYTES[s.dtype], bytesPerToken: tokenStride * DTYPE_BYTES[s.dtype], tokenStride };
  });
  const stateByName = new Map(states.map((s) => [s.name, s]));

  // fuse, planMemory, render — per graph; kernels shared by their full body
  const kernels = new Map<string, { name: string; body: KernelBody; groups: { schedule: string; kb: KernelBody }[] }>();
  const usedNames = new Set<string>();
  const kernelFor = (schedule: string, kb: KernelBody): string => {
    let k = kernels.get(kb.body);
    if (!k) {
      const base = kb.template.replace(/\.cu\.hbs$/, "");
      const h = createHash("sha256").update(kb.body).digest("hex");
      let len = 8;
      while (usedNames.has(`${base}_${h.slice(0, len)}`)) len += 2;
      k = { name: `${base}_${h.slice(0, len)}`, body: kb, groups: [] };
      usedNames.add(k.name);
      kernels.set(kb.body, k);
    }
    k.groups.push({ schedule, kb });
    return k.name;
  };

  // values computed once from the weights (param prep): one buffer each, shared by the schedules
  const preps = new Map<string, PrepBuffer>();
  let prepBytes = 0;

  const schedule = (name: Schedule["name"], g: Graph): Schedule => {
    // training: a memory-aware order (each layer's weight gradients right after its input gradient)
    // cached: norms feeding a decode GEMV are computed in its prologue at ≤ 8 rows
    const fused = fuse(g, { order: name === "train" ? "memory" : "position", decodePrologues: name === "cached" });
    for (const grp of fused.groups)
      if (grp.kind === "param_prep")
        for (const n of grp.outputs)
          if (!preps.has(n.key)) {
            const bytes = Math.ceil(nodeBytes(n, {}) / 256) * 256;
            preps.set(n.key, { key: n.key, name: `${(n.scope ?? "v").replace(/[^A-Za-z0-9]+/g, "_")}_${n.op}_${n.key.slice(0, 6)}`, bytes, offset: prepBytes });
            prepBytes += bytes;
          }
    const train = name === "train";
    const logitsNode = train ? g.outputs.loss! : g.outputs.logits!;
    if (!train && logitsNode.dtype !== "bf16") throw new StrataError(`compile: logits must be bf16 (got ${logitsNode.dtype})`, logitsNode.src);
    const gradNodes = train ? Object.entries(g.outputs).filter(([k]) => k.startsWith("grad.")).map(([k, n]) => ({ weight: k.slice(5), node: n })) : [];
    // state outputs: written straight into the state buffer when the kernel allows it
    const persistent = new Map<string, string>(); // node key → state name
    const copies: { node: Node; state: string }[] = [];
    const groupOf = (n: Node) => fused.groups.find((gr) => gr.id === fused.groupOf.get(n.key));
    for (const [out, n] of Object.entries(g.outputs)) {
      const st = stateByName.get(out);
      if (!st) continue;
      if (n.op === "cacheAppend") continue; // in place by construction
      // the scans' final state and conv1d's outgoing window: their kernels update the state in place
      const roles = groupOf(n)?.roles;
      if (roles && (roles.hT === n || roles.stateOut === n)) persistent.set(n.key, out);
      else copies.push({ node: n, state: out });
    }
    const outNodes = [logitsNode, ...gradNodes.map((x) => x.node), ...copies.map((c) => c.node)];
    const persistentKeys = new Set([...persistent.keys(), ...preps.keys()]);
    // in-place concats (training graphs; on unless --no-in-place-concat): the pieces live in the
    // concat's buffer, its copy kernel goes. The forward and cached graphs keep their concats'
    // kernels: there the pieces would be forward GEMMs writing through the concat's row stride, a
    // path no GPU run has exercised yet (the training graphs' pieces are the backward kernels)
    const { plan, aliases } = options.inPlaceConcat && name === "train" ? aliasConcats(fused, graphNodes(g), Object.values(g.outputs), persistentKeys) : { plan: fused, aliases: new Map<string, ConcatAlias>() };
    let memory = planMemory(plan, outNodes, { maxBatch, maxSeq, maxTokens, maxPast: maxContext, persistent: persistentKeys, aliases });
    const slotOf = new Map(memory.slots.map((s) => [s.key, s]));
    const owner = (n: Node): BufferOwner | undefined => {
      const al = aliases.get(n.key);
      if (al) return { kind: "slot", buffer: slotOf.get(al.into.key)!.name, alias: al };
      if (n.op === "param") return { kind: "weight", buffer: n.attrs.name as string };
      if (n.op === "input") {
        const nm = n.attrs.name as string;
        if (nm.startsWith("state.")) {
          const st = stateByName.get(nm.slice(6))!;
          return { kind: "state", buffer: st.name, ...(st.tokenStride ? { capacityStride: st.tokenStride } : {}) };
        }
        return { kind: "input", buffer: nm };
      }
      const pr = preps.get(n.key);
      if (pr) return { kind: "prep", buffer: pr.name };
      const p = persistent.get(n.key);
      if (p) return { kind: "state", buffer: p };
      const s = slotOf.get(n.key);
      return s ? { kind: "slot", buffer: s.name } : undefined;
    };
    const ctx: RenderContext = {
      ref: (n) => resolveRef(n, owner),
      outRef: (n) => resolveRef(n, owner),
      arch: options.arch,
      maxTokens,
      ...(opts.tuning ? { tuning: { db: opts.tuning, maxTokens } } : {}),
    };
    const scratch: ScratchSlot[] = [];
    const launches: Launch[] = plan.groups.map((grp, gi) => {
      const kb = familyModule(grp.kind).render(grp, ctx);
      const a = grp.anchor ?? grp.nodes[grp.nodes.length - 1]!;
      // kernel scratch: a slot of this group's own, live during its launch alone
      const rename = new Map<string, string>();
      for (const r of kb.scratch ?? []) {
        const nm = `scratch_g${grp.id}_${r.name.slice(1)}`;
        rename.set(r.name, nm);
        scratch.push({ name: nm, group: gi, bytes: r.bytesPerToken * maxTokens + r.fixedBytes });
      }
      const buffers = kb.buffers.map((b) => (b.kind === "slot" && rename.has(b.name) ? { kind: b.kind, name: rename.get(b.name)! } : b));
      return { kind: "kernel", kernel: kernelFor(name, kb), group: grp.id, scope: a.scope ?? "model", buffers, once: grp.kind === "param_prep" };
    });
    memory = withScratch(memory, scratch);
    const slotByKey = new Map(memory.slots.map((sl) => [sl.key, sl]));
    for (const c of copies) {
      const src = ctx.ref(c.node);
      if (src.kind !== "slot" || src.offset !== 0) throw new StrataError(`compile: state ${c.state} is not stored contiguously (${src.kind})`, c.node.src);
      launches.push({ kind: "copy", scope: c.node.scope ?? "model", src: { kind: "slot", name: src.buffer }, dst: { kind: "state", name: c.state }, bytesPerSeq: stateByName.get(c.state)!.bytesPerSeq });
    }
    const logits = slotByKey.get(logitsNode.key);
    if (!logits) throw new StrataError(`compile: the ${train ? "loss" : "logits"} ${train ? "is" : "are"} not stored by a kernel`, logitsNode.src);
    const grads = gradNodes.map(({ weight, node }) => {
      if (node.op === "full") return { weight, elementOffset: 0 }; // the loss does not reach this weight
      const r = ctx.ref(node);
      const sl = r.kind === "slot" ? memory.slots.find((x) => x.name === r.buffer) : undefined;
      if (!sl || node.dtype !== "f32") throw new StrataError(`compile: the gradient of ${weight} is not an f32 value in the arena (${r.kind} ${node.dtype})`, node.src);
      return { weight, slot: sl, elementOffset: r.offset };
    });
    return { name, graph: g, plan, memory, launches, logits, ...(train ? { grads } : {}) };
  };

  const schedules = [schedule("forward", forward), schedule("cached", cached)];
  if (options.train) {
    const tg = autodiff(withTrainingLoss(forward, { weighted: true }), { loss: "loss" });
    const rg = recompute(tg, { forward, layerKinds: def.layers.map((l) => l.kind), kinds: options.recompute });
    schedules.push(schedule("train", options.foldCasts ? foldCasts(rg) : rg));
  } else if (options.recompute === "all" || options.recompute.length) throw new StrataError("compile: --recompute applies to the train entry; add --train");
  const V = def.config.vocab;
  const entries: EntryPoint[] = [
    { name: "forward", schedule: "forward", doc: "logits of every position; no state", tokens: "1..maxSeq", state: "none", inputs: { tokens: "i32 [B, T]" }, outputs: { logits: `f32 [B, T, ${V}]` } },
    {
      name: "prefill",
      schedule: "cached",
      doc: "starts B sequences (state reset) or continues them (chunked prefill) with T tokens each; logits of every position or of the last",
      tokens: "1..maxSeq",
      state: "reset-or-continue",
      inputs: { tokens: "i32 [B, T]" },
      outputs: { logits: `f32 [B, T, ${V}] or [B, ${V}]` },
    },
    { name: "step", schedule: "cached", doc: "one new token per sequence, state in and out", tokens: 1, state: "continue", inputs: { tokens: "i32 [B]" }, outputs: { logits: `f32 [B, ${V}]` } },
  ];
  if (options.train)
    entries.push({
      name: "train",
      schedule: "train",
      doc: "forward + loss (Σ w·CE / Σ w) + backward: the f32 gradient of every weight",
      tokens: "1..maxSeq",
      state: "none",
      inputs: { tokens: "i32 [B, T]", targets: "i32 [B, T]", weights: "f32 [B, T]" },
      outputs: { loss: "f32 []", grads: "f32, one per weight" },
    });

  const emitted: EmittedKernel[] = [...kernels.values()].map(({ name, body, groups }) => {
    const spec: KernelSpec = KernelSpecSchema.parse({
      name,
      template: body.template,
      group: body.group.id,
      kind: body.group.kind,
      nodes: groups.flatMap(({ kb }) => nodeSummary(kb.group.nodes, REPO_ROOT)),
      tiles: body.tiles,
      buffers: body.buffers,
      once: body.group.kind === "param_prep",
    } satisfies KernelSpec);
    const header = [
      `// ${name} — generated by Strata from templates/${body.template}; do not edit.`,
      `// tiles: ${JSON.stringify(body.tiles)}`,
      `// used by ${groups.length} group${groups.length > 1 ? "s" : ""} (IR nodes, DSL source lines):`,
      ...groups.map(({ schedule, kb }) => {
        const s = nodeSummary(kb.group.nodes, REPO_ROOT);
        const srcs = [...new Set(s.map((n) => n.src).filter(Boolean))];
        return `//   ${schedule} group ${kb.group.id} ${s[0]?.scope ?? ""}: ${s.map((n) => `${n.op}#${n.key.slice(0, 6)}`).join(" ")}${srcs.length ? `  (${srcs.join(", ")})` : ""}`;
      }),
      `// launcher buffers (first group): ${body.buffers.map((b, i) => `[${i}] ${b.kind}:${b.name}`).join(", ")}`,
      "",
    ].join("\n");
    return { name, file: `kernels/${name}.cu`, source: header + body.body.replaceAll(KERNEL_NAME, name), spec };
  });

  return { name: def.config.name, def, options, states, preps: [...preps.values()], prepBytes, schedules, entries, kernels: emitted };
}

