/**
 * plan-memory: every value a kernel group stores gets a slot in one device arena. Slots are
 * sized for the largest batch·sequence the project is compiled for, live from the group that
 * writes them to the last group that reads them, and are packed first-fit by size (largest
 * first) among slots whose lifetimes overlap. Values computed once from parameters live forever.
 * The peak is known before anything is allocated.
 */
import { evalShape } from "../ir/dims.js";
import { DTYPE_BYTES, type Node } from "../ir/node.js";
import type { FusionPlan } from "./fuse.js";
import { isView } from "./fuse.js";

export interface BufferSlot {
  /** Key of the node whose value the slot holds. */
  key: string;
  name: string;
  dtype: Node["dtype"];
  /** Bytes at the maximum batch and sequence length. */
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
  maxBatch: number;
  maxSeq: number;
}

const ALIGN = 256;
const alignUp = (x: number) => Math.ceil(x / ALIGN) * ALIGN;

export function planMemory(plan: FusionPlan, outputs: readonly Node[], opts: { maxBatch: number; maxSeq: number }): MemoryPlan {
  const bindings = { B: opts.maxBatch, T: opts.maxSeq };
  const last = plan.groups.length - 1;
  const slots: BufferSlot[] = [];
  const slotOf = new Map<string, BufferSlot>();
  plan.groups.forEach((g, gi) => {
    for (const n of g.outputs) {
      const numel = evalShape(n.shape, bindings).reduce((a, b) => a * b, 1);
      const s: BufferSlot = {
        key: n.key,
        name: `${(n.scope ?? "v").replace(/[^A-Za-z0-9]+/g, "_")}_${n.op}_${n.key.slice(0, 6)}`,
        dtype: n.dtype,
        bytes: alignUp(numel * DTYPE_BYTES[n.dtype]),
        offset: 0,
        from: gi,
        to: g.kind === "param_prep" ? last : gi,
      };
      slots.push(s);
      slotOf.set(n.key, s);
    }
  });
  // extend lifetimes to the last reader (through views)
  plan.groups.forEach((g, gi) => {
    const read = (n: Node) => {
      if (isView(n)) return read(n.inputs[0]!);
      const s = slotOf.get(n.key);
      if (s && s.to < gi) s.to = gi;
    };
    for (const n of g.nodes) for (const i of n.inputs) read(i);
  });
  for (const o of outputs) {
    const s = slotOf.get(o.key);
    if (s) s.to = last;
  }
  // first-fit, largest first
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
  return { slots, peakBytes: peak, alignment: ALIGN, maxBatch: opts.maxBatch, maxSeq: opts.maxSeq };
}
