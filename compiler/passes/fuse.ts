/**
 * fuse: partition a graph into kernel groups — a generic driver over the kernel-family modules
 * (compiler/kernels/). Anchors (ops with a `family` trait: GEMM, attention, scans, conv1d,
 * embedding, cache append) each start a group and their module absorbs what rides along
 * (epilogues, prologues, a state companion as a second output); norms become row kernels that
 * absorb the elementwise work feeding them; the remaining elementwise and row-wise nodes form
 * row kernels; views cost nothing (kernels read them through offsets and strides); work that reads
 * only parameters is done once at load time ("param_prep"); the cache appends one attention reads
 * (K and V) are one group. In the cached graph, decode fusions (`decodePrologues`) mark what the
 * GEMV computes itself at ≤ 8 rows: the norm before it, the conv1d or cache append after it.
 *
 * Legality lives in the modules, priority here (scans first: their kernels take dt's bias and
 * softplus while loading, which beats the producing GEMM's epilogue). A pattern that does not
 * match is never an error: the work stays in another kernel. Every decision, accepted or
 * rejected, is logged with its reason for `strata compile --explain`.
 */
import { StrataError } from "../ir/errors.js";
import { consumersOf, graphNodes, type Graph } from "../ir/graph.js";
import type { Node } from "../ir/node.js";
import { getOp, isNorm, isSource, isView, viewBase, type KernelFamily } from "../ir/registry.js";
import { FAMILIES, type FuseContext, type FusionGroup, type GroupKind } from "../kernels/index.js";
import { absorbProducers, row } from "../kernels/row.js";

export type { FusionGroup, GroupKind } from "../kernels/index.js";

export interface FusionDecision {
  group: number;
  node: Node;
  accepted: boolean;
  what: string;
  reason: string;
}

export interface FusionPlan {
  groups: FusionGroup[];
  decisions: FusionDecision[];
  /** Position of each node in the graph's topological order. */
  order: Map<string, number>;
  /** For each node key, the group that computes it (absent for sources and views). */
  groupOf: Map<string, number>;
}

/** Fusion priority of an anchor family: higher claims its operands first. */
const PRIORITY: Partial<Record<KernelFamily, number>> = { ssd: 2, selective_scan: 2 };

const sameShape = (a: Node, b: Node) => a.shape.join() === b.shape.join();

export interface FuseOptions {
  /**
   * How the groups are ordered: "position" (default) by the graph's topological order;
   * "memory" greedily runs, among the groups whose inputs are ready, the one that frees the most
   * memory (the last reader of large values first) — for training graphs, where a layer's weight
   * gradient then runs right after its input gradient instead of at the end, so the layer's
   * activations and upstream gradient die early.
   */
  order?: "position" | "memory";
  /**
   * The cached graph (prefill and decode): a row group whose single value is read only by the
   * next group's kernel, when that kernel's module can compute it itself at decode
   * (`decodePrologue`: the GEMV's prologue at ≤ 8 rows), and the group after a GEMM that reads
   * its value, when the GEMM's module can do that work in its store (`decodeStep`: a conv1d or
   * the K/V cache appends, per column), are skipped then — one launch fewer per step each.
   * Larger calls run every kernel as before.
   */
  decodePrologues?: boolean;
}

export function fuse(g: Graph, opts: FuseOptions = {}): FusionPlan {
  const nodes = graphNodes(g);
  const order = new Map(nodes.map((n, i) => [n.key, i]));
  const consumers = consumersOf(nodes);
  // a graph output that is a view (e.g. a reshaped gradient) is stored by the node it views
  const graphOut = new Set(Object.values(g.outputs).map((n) => viewBase(n).key));
  const groupOf = new Map<string, number>();
  const groups: FusionGroup[] = [];
  const decisions: FusionDecision[] = [];

  const uses = (n: Node) => consumers.get(n.key) ?? [];
  /** Consumers through views: the nodes that really read n's data. */
  const realUses = (n: Node): Node[] => uses(n).flatMap((c) => (isView(c) ? realUses(c) : [c]));

  // Param-only values (e.g. A = −exp(A_log)) are computed once at load time. A value whose shape
  // involves the run-time sizes (B, T, …: e.g. the loss gradient broadcast over the tokens) is
  // not, even when it reads only constants: its size is known only per call.
  const paramOnly = new Set<string>();
  const fixedSize = (n: Node) => n.shape.every((d) => typeof d === "number");
  for (const n of nodes) {
    if ((n.op === "param" || n.op === "full") && fixedSize(n)) paramOnly.add(n.key);
    else if (!isSource(n) && n.inputs.length && fixedSize(n) && n.inputs.every((i) => paramOnly.has(i.key))) paramOnly.add(n.key);
  }

  const add = (grp: FusionGroup, n: Node) => {
    grp.nodes.push(n);
    groupOf.set(n.key, grp.id);
  };
  const newGroup = (kind: GroupKind, anchor?: Node): FusionGroup => {
    const grp: FusionGroup = { id: groups.length, kind, anchor, nodes: [], outputs: [], roles: {} };
    groups.push(grp);
    if (anchor) add(grp, anchor);
    return grp;
  };
  const log = (grp: FusionGroup, node: Node, accepted: boolean, what: string, reason: string) => decisions.push({ group: grp.id, node, accepted, what, reason });
  const free = (n: Node) => !groupOf.has(n.key) && !isSource(n) && !isView(n) && !paramOnly.has(n.key);

  const ctx: FuseContext = {
    uses,
    free,
    paramOnly: (n) => paramOnly.has(n.key),
    isOutput: (n) => graphOut.has(n.key),
    position: (n) => order.get(n.key)!,
    add,
    log,
    wouldCycle(grp, p) {
      // p joins grp: a cycle appears when a path leaves the group and comes back through nodes
      // outside it — from p's other consumers into the group, or from the group into p's inputs
      const inGroup = new Set(grp.nodes.map((n) => n.key));
      const pos = grp.nodes.map((n) => order.get(n.key)!);
      const lo = Math.min(...pos), hi = Math.max(...pos);
      const walk = (start: Node[], next: (n: Node) => readonly Node[], inRange: (n: Node) => boolean): boolean => {
        const seen = new Set<string>();
        const stack = start.filter((n) => !inGroup.has(n.key));
        while (stack.length) {
          const u = stack.pop()!;
          if (seen.has(u.key) || !inRange(u)) continue;
          seen.add(u.key);
          for (const v of next(u)) {
            if (inGroup.has(v.key)) return true;
            stack.push(v);
          }
        }
        return false;
      };
      return (
        walk(uses(p), uses, (n) => order.get(n.key)! <= hi) ||
        walk([...p.inputs], (n) => n.inputs, (n) => order.get(n.key)! >= lo)
      );
    },
    absorbEpilogue(grp, allowed, opts = {}) {
      const anchorIdx = order.get(grp.anchor!.key)!;
      ctx.absorbChain(grp, (e, cur) =>
        allowed(e) ??
        (!free(e) ? "already computed by another group" : undefined) ??
        (!sameShape(e, cur) ? `it changes the shape [${cur.shape}] → [${e.shape}] (broadcast of the anchor output)` : undefined) ??
        e.inputs
          .filter((o) => o.key !== cur.key)
          .map((o) =>
            !opts.broadcast && !sameShape(o, e) && o.shape.length > 1 && !paramOnly.has(o.key)
              ? `operand ${o.op}[${o.shape}] would need a broadcast the epilogue does not index`
              : order.get(o.key)! > anchorIdx && !paramOnly.has(o.key)
                ? `operand ${o.op} is computed after the anchor`
                : undefined,
          )
          .find((r) => r !== undefined),
      );
    },
    absorbChain(grp, veto, opts = {}) {
      let cur = opts.from ?? grp.anchor!;
      for (;;) {
        if (graphOut.has(cur.key)) {
          log(grp, cur, false, "epilogue", "the value is a graph output");
          return;
        }
        const us = uses(cur);
        if (us.length !== 1) {
          if (us.length > 1) log(grp, us[0]!, false, "epilogue", `the value has ${us.length} consumers, so it must be stored`);
          return;
        }
        const e = us[0]!;
        const why = veto(e, cur);
        if (why) {
          log(grp, e, false, `epilogue ${e.op}`, why);
          return;
        }
        add(grp, e);
        log(grp, e, true, `epilogue ${e.op}`, "single consumer, elementwise, same shape");
        cur = e;
      }
    },
  };

  // ---- 1. anchors: by family priority, then in topological order ---------------------------
  const anchors = nodes
    .filter((n) => getOp(n.op).family)
    .map((n, i) => ({ n, i, p: PRIORITY[getOp(n.op).family!] ?? 1 }))
    .sort((a, b) => b.p - a.p || a.i - b.i);
  for (const { n } of anchors) {
    if (!free(n)) continue;
    const family = getOp(n.op).family!;
    const grp = newGroup(family, n);
    FAMILIES[family].absorb?.(grp, ctx);
  }

  // ---- 2. norms: row kernels absorbing their elementwise producers and the chain after -------
  for (const n of nodes) {
    if (!isNorm(n) || !free(n)) continue;
    row.absorb!(newGroup("row", n), ctx);
  }

  // ---- 3. leftover elementwise / row-wise work: row kernels, sinks first ---------------------
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!free(n)) continue;
    const d = getOp(n.op);
    if (d.kind !== "elementwise" && !(d.kind === "rowwise" && d.needsNeighbour))
      throw new StrataError(
        `codegen has no kernel for op '${n.op}' (${d.kind})${d.companionOf ? `: it is computed only as a second output of the ${d.companionOf} that reads the same inputs` : ""}`,
        n.src,
        "kernels exist for linear, attention, ssdScan, selectiveScan, conv1d, embedding and cacheAppend anchors, norms, rope and elementwise ops",
      );
    const grp = newGroup("row", n);
    absorbProducers(grp, n, n.shape, ctx);
  }

  // ---- 4. param-only computations: once at load time, one group per value read by the model
  const prepSinks = nodes.filter((n) => paramOnly.has(n.key) && !isSource(n) && !isView(n) && realUses(n).some((c) => !paramOnly.has(c.key)));
  for (const sink of prepSinks) {
    if (groupOf.has(sink.key)) continue;
    const grp = newGroup("param_prep", sink);
    const pull = (n: Node) => {
      for (const p of n.inputs) {
        const b = viewBase(p);
        if (paramOnly.has(b.key) && !isSource(b) && !groupOf.has(b.key)) {
          add(grp, b);
          pull(b);
        }
      }
    };
    pull(sink);
    log(grp, sink, true, `param prep ${grp.nodes.map((n) => n.op).join(", ")}`, "reads only parameters: computed once when weights are loaded");
  }

  // ---- 5. the cache appends one attention reads (its K and V): one launch ------------------
  const merged = new Set<number>();
  for (const grp of groups) {
    if (grp.kind !== "cache_append" || merged.has(grp.id)) continue;
    const reader = uses(grp.anchor!);
    if (reader.length !== 1) continue;
    for (const other of groups) {
      if (other === grp || other.kind !== "cache_append" || merged.has(other.id)) continue;
      const r = uses(other.anchor!);
      if (r.length !== 1 || r[0] !== reader[0]) continue;
      add(grp, other.anchor!);
      merged.add(other.id);
      log(grp, other.anchor!, true, "sibling cacheAppend", `the other cache ${reader[0]!.op} reads: both appended by one launch`);
    }
  }
  if (merged.size) groups.splice(0, groups.length, ...groups.filter((g) => !merged.has(g.id)));

  // ---- outputs of each group, and group order -------------------------------------------
  for (const grp of groups) {
    grp.nodes.sort((a, b) => order.get(a.key)! - order.get(b.key)!);
    const inside = new Set(grp.nodes.map((n) => n.key));
    grp.outputs = grp.nodes.filter((n) => graphOut.has(n.key) || realUses(n).some((c) => !inside.has(c.key)));
  }
  const ordered = opts.order === "memory" ? orderGroupsForMemory(groups, groupOf, order) : orderGroups(groups, groupOf, order);
  if (opts.decodePrologues) attachDecodePrologues(ordered, realUses, graphOut, log);
  return { groups: ordered, decisions, order, groupOf };
}

/**
 * Decode prologues: a row group R whose one value is read only by the group right after it (in
 * launch order, so nothing runs between them that could overwrite what R reads), when that
 * group's module takes R as its decode prologue. R is kept (larger calls run it) and marked.
 * Decode steps: the group right after a GEMM, reading its value, when the GEMM's module can do
 * its work in the store (`decodeStep`: a conv1d or cache appends over column slices, per column).
 */
function attachDecodePrologues(
  ordered: FusionGroup[],
  realUses: (n: Node) => Node[],
  graphOut: ReadonlySet<string>,
  log: (grp: FusionGroup, node: Node, accepted: boolean, what: string, reason: string) => void,
): void {
  for (let i = 0; i + 1 < ordered.length; i++) {
    const r = ordered[i]!, g = ordered[i + 1]!;
    // a step of the next group's work done in this group's store (a conv1d after its projection)
    const step = FAMILIES[r.kind as KernelFamily]?.decodeStep;
    if (step && g.anchor && !g.skipAtDecode && r.outputs.some((o) => g.anchor!.inputs.some((x) => viewBase(x) === o))) {
      const why = step(r, g);
      if (why !== false) log(r, g.anchor, !why, `decode step ${g.nodes.map((n) => n.op).join(", ")}`, why ?? "at ≤ 8 rows the GEMV does it per column in its store; its own kernel is skipped then");
      if (why === undefined) {
        r.decodeStep = g;
        g.skipAtDecode = true;
      }
    }
    if (r.kind !== "row" || r.outputs.length !== 1 || !g.anchor) continue;
    const v = r.outputs[0]!;
    const readers = realUses(v);
    if (!readers.length || readers.some((c) => !g.nodes.includes(c))) continue;
    const mod = FAMILIES[g.kind as KernelFamily];
    const why = graphOut.has(v.key) ? "the value is a graph output" : mod?.decodePrologue ? mod.decodePrologue(g, r) : `the ${g.kind} kernel has no decode prologue`;
    log(g, v, !why, `decode prologue ${r.nodes.map((n) => n.op).join(", ")}`, why ?? "at ≤ 8 rows the GEMV computes its input row itself; the row kernel is skipped then");
    if (why) continue;
    g.prologue = r;
    r.skipAtDecode = true;
  }
}

/** Topologically order groups (a group runs after every group whose outputs it reads). */
function orderGroups(groups: FusionGroup[], groupOf: Map<string, number>, order: Map<string, number>): FusionGroup[] {
  const deps = (grp: FusionGroup): Set<number> => {
    const s = new Set<number>();
    const visit = (n: Node) => {
      if (isView(n)) return visit(n.inputs[0]!);
      const gi = groupOf.get(n.key);
      if (gi !== undefined && gi !== grp.id) s.add(gi);
    };
    for (const n of grp.nodes) for (const i of n.inputs) visit(i);
    return s;
  };
  const depMap = new Map(groups.map((g) => [g.id, deps(g)]));
  const done = new Set<number>();
  const out: FusionGroup[] = [];
  // param_prep first, then by position of the group's first node: a stable, readable order
  const pending = [...groups].sort((a, b) => (a.kind === "param_prep" ? -1 : 0) - (b.kind === "param_prep" ? -1 : 0) || order.get(a.nodes[0]!.key)! - order.get(b.nodes[0]!.key)!);
  while (pending.length) {
    const idx = pending.findIndex((g) => [...depMap.get(g.id)!].every((d) => done.has(d)));
    if (idx < 0) throw new Error(`fuse: cyclic group dependencies among ${pending.map((g) => `${g.id}(${g.kind}:${g.nodes.map((n) => n.op).join(",")} deps ${[...depMap.get(g.id)!].join(",")})`).join("; ")}`);
    const [g] = pending.splice(idx, 1);
    done.add(g!.id);
    out.push(g!);
  }
  return out;
}

/** The groups a group reads values from (through views), and the values (base nodes) it reads. */
function groupReads(grp: FusionGroup, groupOf: Map<string, number>): { deps: Set<number>; values: Map<string, Node> } {
  const deps = new Set<number>();
  const values = new Map<string, Node>();
  const inside = new Set(grp.nodes.map((n) => n.key));
  const visit = (n: Node) => {
    if (isView(n)) return visit(n.inputs[0]!);
    if (inside.has(n.key)) return;
    const gi = groupOf.get(n.key);
    if (gi !== undefined) {
      deps.add(gi);
      values.set(n.key, n);
    }
  };
  for (const n of grp.nodes) for (const i of n.inputs) visit(i);
  return { deps, values };
}

/** Relative size of a value: symbolic dims (B, T, …) count as large. */
function sizeEstimate(n: Node): number {
  return n.shape.reduce<number>((a, d) => a * (typeof d === "number" ? d : 4096), 1);
}

/**
 * Topological order by a greedy list schedule: param_prep first; then, among the ready groups,
 * the one whose run frees the most (sizes of the values it is the last reader of, minus the sizes
 * it writes); recomputed copies last; ties by graph position.
 */
function orderGroupsForMemory(groups: FusionGroup[], groupOf: Map<string, number>, order: Map<string, number>): FusionGroup[] {
  const byId = new Map(groups.map((g) => [g.id, g]));
  const reads = new Map(groups.map((g) => [g.id, groupReads(g, groupOf)]));
  const readers = new Map<string, number>(); // value key → groups still to read it
  for (const g of groups) for (const k of reads.get(g.id)!.values.keys()) readers.set(k, (readers.get(k) ?? 0) + 1);
  const pos = (g: FusionGroup) => Math.min(...g.nodes.map((n) => order.get(n.key)!));
  const written = new Map(groups.map((g) => [g.id, g.outputs.reduce((a, n) => a + sizeEstimate(n), 0)]));
  const waiting = new Map(groups.map((g) => [g.id, reads.get(g.id)!.deps.size]));
  const dependents = new Map<number, number[]>();
  for (const g of groups) for (const d of reads.get(g.id)!.deps) dependents.set(d, [...(dependents.get(d) ?? []), g.id]);
  const ready = new Set(groups.filter((g) => waiting.get(g.id) === 0).map((g) => g.id));
  const recomputed = new Set(groups.filter((g) => g.nodes.every((n) => n.attrs.recompute === 1)).map((g) => g.id));
  const out: FusionGroup[] = [];
  const score = (id: number) => {
    let freed = 0;
    for (const [k, n] of reads.get(id)!.values) if (readers.get(k) === 1) freed += sizeEstimate(n);
    return freed - written.get(id)!;
  };
  while (ready.size) {
    let best: FusionGroup | undefined;
    let bestScore = -Infinity;
    for (const id of ready) {
      const g = byId.get(id)!;
      // parameter prep always first, in position order; recomputed values (passes/recompute.ts)
      // as late as possible: only when nothing else can run, i.e. right before their reader
      const sc = g.kind === "param_prep" ? Infinity : recomputed.has(id) ? score(id) - 1e18 : score(id);
      if (sc > bestScore || (sc === bestScore && pos(g) < pos(best!))) {
        best = g;
        bestScore = sc;
      }
    }
    ready.delete(best!.id);
    out.push(best!);
    for (const k of reads.get(best!.id)!.values.keys()) readers.set(k, readers.get(k)! - 1);
    for (const d of dependents.get(best!.id) ?? []) {
      const w = waiting.get(d)! - 1;
      waiting.set(d, w);
      if (w === 0) ready.add(d);
    }
  }
  if (out.length !== groups.length) throw new Error(`fuse: cyclic group dependencies (${groups.length - out.length} groups never became ready)`);
  return out;
}

export function explainFusion(plan: FusionPlan): string {
  const lines: string[] = [];
  for (const g of plan.groups) {
    const a = g.anchor;
    lines.push(`group ${g.id} [${g.kind}] ${a ? `${a.op}${a.scope ? ` @ ${a.scope}` : ""}` : ""}: ${g.nodes.map((n) => n.op).join(" → ")}`);
    for (const d of plan.decisions.filter((d) => d.group === g.id)) lines.push(`    ${d.accepted ? "fused   " : "rejected"} ${d.what}: ${d.reason}`);
  }
  return lines.join("\n");
}
