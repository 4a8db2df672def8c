/**
 * plan-memory: every value a kernel group stores gets a place.
 * - Per-call values: a slot in one device arena, sized for the largest shapes the project is
 *   compiled for (`bindings`: B, T, P at their maxima), live from the group that writes it to the
 *   last group that reads it (through views and in-place writes), packed first-fit by size
 *   (largest first) among slots whose lifetimes overlap. Values computed once from parameters
 *   live forever. The peak is known before anything is allocated.
 * - Persistent values (`persistent`: node key → state name): the SSM / conv / KV state that
 *   outlives a call. They get no slot: kernels read and write the state buffer directly (a scan's
 *   final state may alias its initial state; a cache append writes in place).
 * - In-place nodes (cacheAppend) live in their input's buffer and get no slot either.
 */
import { evalShape } from "../ir/dims.js";
import { DTYPE_BYTES, type Node } from "../ir/node.js";
import { getOp, storageBase } from "../ir/registry.js";
import type { FusionPlan } from "./fuse.js";

export interface BufferSlot {
  /** Key of the node whose value the slot holds. */
  key: string;
  name: string;
  dtype: Node["dtype"];
  /** Bytes at the maximum sizes. */
  bytes: number;
  offset: number;
  /** First and last position (in the plan's group order) where the slot is live. */
  from: number;
  to: number;
}

export interface MemoryPlan {
  slots: BufferSlot[];
  peakBytes: number;
  alignment: number;
  /** The sizes slots were planned for (B, T and, for cached graphs, P). */
  bindings: Readonly<Record<string, number>>;
  maxBatch: number;
  maxSeq: number;
}

export interface PlanOptions {
  maxBatch: number;
  maxSeq: number;
  /** Largest B·T of one call (default maxBatch · maxSeq): per-token values are sized by it. */
  maxTokens?: number;
  /** Largest past length P (cached graphs). */
  maxPast?: number;
  /** Nodes stored in persistent state buffers instead of the arena. */
  persistent?: ReadonlySet<string>;
  /**
   * Pieces of in-place concats (passes/concat-alias.ts): a piece gets no slot of its own; its
   * concat's slot is created at the first piece's group, live from there.
   */
  aliases?: ReadonlyMap<string, { into: Node }>;
}

export const ARENA_ALIGN = 256;
const alignUp = (x: number) => Math.ceil(x / ARENA_ALIGN) * ARENA_ALIGN;

/** Bytes of a node's value at concrete sizes. */
export function nodeBytes(n: Node, bindings: Readonly<Record<string, number>>): number {
  return evalShape(n.shape, bindings).reduce((a, b) => a * b, 1) * DTYPE_BYTES[n.dtype];
}

/**
 * Largest bytes of a value over every call the project accepts (B ≤ maxBatch, T ≤ maxSeq,
 * B·T ≤ maxTokens): a per-token value [B, T, …] is sized by maxTokens, one with B or T alone
 * by its own maximum. Dims that are sums (P + T) are taken at their maxima.
 */
export function slotBytes(n: Node, o: PlanOptions): number {
  const maxTokens = o.maxTokens ?? o.maxBatch * o.maxSeq;
  const syms = new Set(n.shape.flatMap((d) => (typeof d === "string" ? d.split(/[^A-Za-z_]+/).filter(Boolean) : [])));
  const simple = n.shape.every((d) => typeof d === "number" || d === "B" || d === "T");
  if (!simple) return nodeBytes(n, { B: o.maxBatch, T: o.maxSeq, P: o.maxPast ?? 0 });
  const unit = nodeBytes(n, { B: 1, T: 1 });
  const bt = syms.has("B") && syms.has("T") ? Math.min(maxTokens, o.maxBatch * o.maxSeq) : syms.has("B") ? o.maxBatch : syms.has("T") ? o.maxSeq : 1;
  return unit * bt;
}

export function planMemory(plan: FusionPlan, outputs: readonly Node[], opts: PlanOptions): MemoryPlan {
  const bindings = { B: opts.maxBatch, T: opts.maxSeq, P: opts.maxPast ?? 0 };
  const persistent = opts.persistent ?? new Set<string>();
  const last = plan.groups.length - 1;
  const slots: BufferSlot[] = [];
  const slotOf = new Map<string, BufferSlot>();
  const newSlot = (n: Node, g: FusionPlan["groups"][number], gi: number) => {
    const s: BufferSlot = {
      key: n.key,
      name: `${(n.scope ?? "v").replace(/[^A-Za-z0-9]+/g, "_")}_${n.op}_${n.key.slice(0, 6)}`,
      dtype: n.dtype,
      bytes: alignUp(slotBytes(n, opts)),
      offset: 0,
      from: gi,
      to: g.kind === "param_prep" ? last : gi,
    };
    slots.push(s);
    slotOf.set(n.key, s);
  };
  plan.groups.forEach((g, gi) => {
    for (const n of g.outputs) {
      if (persistent.has(n.key) || getOp(n.op).inPlace !== undefined) continue;
      const alias = opts.aliases?.get(n.key);
      if (alias) {
        // written into its concat's buffer: that slot lives from the first piece written
        const s = slotOf.get(alias.into.key);
        if (!s) newSlot(alias.into, g, gi);
        else s.to = Math.max(s.to, gi);
        continue;
      }
      newSlot(n, g, gi);
    }
  });
  // extend lifetimes to the last reader (through views and in-place writes)
  // (a decode prologue's reads are its GEMM's too: the GEMV reads them while it writes its output)
  plan.groups.forEach((g, gi) => {
    for (const n of [...g.nodes, ...(g.prologue?.nodes ?? [])])
      for (const i of n.inputs) {
        const s = slotOf.get(storageBase(i).key);
        if (s && s.to < gi) s.to = gi;
      }
  });
  for (const o of outputs) {
    const s = slotOf.get(storageBase(o).key);
    if (s) s.to = last;
  }
  // a decode step's values are written by the GEMM before it (the GEMV's store): live from there
  plan.groups.forEach((g, gi) => {
    for (const n of g.decodeStep?.outputs ?? []) {
      const s = slotOf.get(n.key);
      if (s && s.from > gi) s.from = gi;
    }
  });
  const peak = placeFirstFit(slots);
  return { slots, peakBytes: peak, alignment: ARENA_ALIGN, bindings, maxBatch: opts.maxBatch, maxSeq: opts.maxSeq };
}

/** Place slots in the arena: first fit, largest first, among slots whose lifetimes overlap. Returns the peak. */
function placeFirstFit(slots: BufferSlot[]): number {
  const placed: BufferSlot[] = [];
  let peak = 0;
  for (const s of [...slots].sort((a, b) => b.bytes - a.bytes || a.from - b.from)) {
    const live = placed.filter((p) => p.from <= s.to && s.from <= p.to).sort((a, b) => a.offset - b.offset);
    let at = 0;
    for (const p of live) {
      if (at + s.bytes <= p.offset) break;
      at = Math.max(at, p.offset + p.bytes);
    }
    s.offset = at;
    placed.push(s);
    peak = Math.max(peak, at + s.bytes);
  }
  return peak;
}

/** Kernel scratch (BufferTable.scratch): live during one group's launch. */
export interface ScratchSlot {
  name: string;
  /** Position of the group in the plan's order. */
  group: number;
  bytes: number;
}

/**
 * The plan with scratch slots added (each live at its group alone) and every slot placed again.
 * Rendering refers to slots by name, so kernels rendered against `m` stay valid.
 */
export function withScratch(m: MemoryPlan, scratch: readonly ScratchSlot[]): MemoryPlan {
  if (scratch.length === 0) return m;
  const slots: BufferSlot[] = [
    ...m.slots.map((s) => ({ ...s })),
    ...scratch.map((x) => ({ key: x.name, name: x.name, dtype: "f32" as const, bytes: alignUp(x.bytes), offset: 0, from: x.group, to: x.group })),
  ];
  return { ...m, slots, peakBytes: placeFirstFit(slots) };
}
