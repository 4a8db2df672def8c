/**
 * fuse: partition a forward graph into kernel groups. Anchors (GEMM, attention, scans, conv1d,
 * embedding) each start a group and absorb what can ride along (epilogues, prologues); norms
 * become row kernels that absorb the elementwise work feeding them (e.g. the residual add); the
 * remaining elementwise nodes form row kernels; views (slice along the feature axis, reshapes of
 * the feature axes) cost nothing: kernels read them through offsets and strides; work that reads
 * only parameters is done once at load time ("param_prep").
 *
 * Legality (`canFuse*`) is kept apart from priority (the fixed order below), and every decision,
 * accepted or rejected, is logged with its reason for `strata compile --explain`.
 */
import { graphNodes, type Graph } from "../ir/graph.js";
import { getOp } from "../ir/registry.js";
import type { Node } from "../ir/node.js";
import { StrataError } from "../ir/errors.js";

export type GroupKind = "gemm" | "attention" | "ssd" | "selective_scan" | "conv1d" | "embedding" | "row" | "param_prep";

export interface FusionGroup {
  id: number;
  kind: GroupKind;
  anchor?: Node;
  /** Every node this group computes, in topological order. */
  nodes: Node[];
  /** Nodes whose values leave the group: read by later groups or graph outputs. */
  outputs: Node[];
  /** Named operands of anchor templates (e.g. ssd: x, dtRaw, dtBias, A, B, C, D). */
  roles: Record<string, Node>;
}

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

const ANCHOR_KIND: Record<string, GroupKind> = {
  linear: "gemm",
  attention: "attention",
  ssdScan: "ssd",
  selectiveScan: "selective_scan",
  conv1d: "conv1d",
  embedding: "embedding",
};

/** Ops a GEMM epilogue can apply per output element (unary, or with one more operand). */
const GEMM_EPILOGUE_OPS = new Set(["add", "sub", "mul", "relu", "relu2", "gelu", "silu", "sigmoid", "softplus", "tanh", "cast", "scale", "addScalar"]);
const ROW_OPS = new Set(["add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "rsqrt", "square", "tanh", "sigmoid", "silu", "softplus", "relu", "relu2", "gelu", "scale", "addScalar", "cast", "rope", "rmsnorm", "layernorm", "gatedRmsnorm"]);
const NORMS = new Set(["rmsnorm", "layernorm", "gatedRmsnorm"]);

export const isView = (n: Node) => getOp(n.op).kind === "view";
export const isSource = (n: Node) => getOp(n.op).kind === "source";

/** Look through views to the node that holds the data. */
export function viewBase(n: Node): Node {
  while (isView(n)) n = n.inputs[0]!;
  return n;
}

const sameShape = (a: Node, b: Node) => a.shape.join() === b.shape.join();

export function fuse(g: Graph): FusionPlan {
  const nodes = graphNodes(g);
  const order = new Map(nodes.map((n, i) => [n.key, i]));
  const consumers = new Map<string, Node[]>();
  for (const n of nodes) for (const i of n.inputs) consumers.set(i.key, [...(consumers.get(i.key) ?? []), n]);
  const graphOut = new Set(Object.values(g.outputs).map((n) => n.key));
  const groupOf = new Map<string, number>();
  const groups: FusionGroup[] = [];
  const decisions: FusionDecision[] = [];

  const uses = (n: Node) => consumers.get(n.key) ?? [];
  /** Consumers through views: the nodes that really read n's data. */
  const realUses = (n: Node): Node[] => uses(n).flatMap((c) => (isView(c) ? realUses(c) : [c]));

  // Param-only values (e.g. A = −exp(A_log)) are computed once at load time.
  const paramOnly = new Set<string>();
  for (const n of nodes) {
    const k = getOp(n.op).kind;
    if (n.op === "param" || n.op === "full") paramOnly.add(n.key);
    else if (k !== "source" && n.inputs.length && n.inputs.every((i) => paramOnly.has(i.key))) paramOnly.add(n.key);
  }

  const newGroup = (kind: GroupKind, anchor?: Node): FusionGroup => {
    const grp: FusionGroup = { id: groups.length, kind, anchor, nodes: [], outputs: [], roles: {} };
    groups.push(grp);
    if (anchor) add(grp, anchor);
    return grp;
  };
  const add = (grp: FusionGroup, n: Node) => {
    grp.nodes.push(n);
    groupOf.set(n.key, grp.id);
  };
  const log = (grp: FusionGroup, node: Node, accepted: boolean, what: string, reason: string) =>
    decisions.push({ group: grp.id, node, accepted, what, reason });
  const free = (n: Node) => !groupOf.has(n.key) && !isSource(n) && !isView(n) && !paramOnly.has(n.key);

  /** Can `e` (consuming `cur`, the group's running output) be applied in the group's epilogue? */
  const canFuseEpilogue = (grp: FusionGroup, cur: Node, e: Node, allowed: Set<string>): string | undefined => {
    if (!allowed.has(e.op)) return `${e.op} is not an elementwise op this ${grp.kind} epilogue can apply`;
    if (!free(e)) return "already computed by another group";
    if (!sameShape(e, cur)) return `it changes the shape [${cur.shape}] → [${e.shape}] (broadcast of the anchor output)`;
    const anchorIdx = order.get(grp.anchor!.key)!;
    for (const other of e.inputs) {
      if (other.key === cur.key) continue;
      if (!sameShape(other, e) && other.shape.length > 1 && !paramOnly.has(other.key)) return `operand ${other.op}[${other.shape}] would need a broadcast the epilogue does not index`;
      if (order.get(other.key)! > anchorIdx && !paramOnly.has(other.key)) return `operand ${other.op} is computed after the anchor`;
    }
    return undefined;
  };

  const absorbEpilogue = (grp: FusionGroup, allowed: Set<string>): void => {
    let cur = grp.anchor!;
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
      const why = canFuseEpilogue(grp, cur, e, allowed);
      if (why) {
        log(grp, e, false, `epilogue ${e.op}`, why);
        return;
      }
      add(grp, e);
      log(grp, e, true, `epilogue ${e.op}`, "single consumer, elementwise, same shape");
      cur = e;
    }
  };

  // ---- 1. anchors, in topological order; scans first: their kernels apply dt's bias and
  // softplus while loading, which beats the producing GEMM's epilogue (one less store of dt).
  const scansFirst = [...nodes.filter((n) => n.op === "ssdScan" || n.op === "selectiveScan"), ...nodes.filter((n) => n.op !== "ssdScan" && n.op !== "selectiveScan")];
  for (const n of scansFirst) {
    const kind = ANCHOR_KIND[n.op];
    if (!kind || !free(n)) continue;
    const grp = newGroup(kind, n);
    if (kind === "gemm") {
      absorbEpilogue(grp, GEMM_EPILOGUE_OPS);
    } else if (kind === "conv1d") {
      absorbEpilogue(grp, new Set(["silu"]));
    } else if (kind === "ssd") {
      fuseScanOperands(grp, n, "ssd");
    } else if (kind === "selective_scan") {
      fuseScanOperands(grp, n, "selective_scan");
    }
  }

  /**
   * Scans: the kernels take dt before its bias and softplus, A precomputed, and apply the D skip
   * (and for Mamba-1 the silu(z) gate) themselves, so those nodes join the group.
   */
  function fuseScanOperands(grp: FusionGroup, scan: Node, kind: "ssd" | "selective_scan") {
    const [x, dt, A, Bm, Cm] = scan.inputs as Node[];
    Object.assign(grp.roles, { x: x!, A: A!, B: Bm!, C: Cm! });
    // dt = softplus(dtRaw + dtBias)
    const sp = dt!;
    const addN = sp.op === "softplus" ? sp.inputs[0]! : undefined;
    const bias = addN?.op === "add" ? addN.inputs.find((i) => i.op === "param" && i.shape.length === 1) : undefined;
    if (sp.op === "softplus" && addN?.op === "add" && bias && uses(sp).length === 1 && uses(addN).length === 1 && free(sp) && free(addN)) {
      grp.roles.dtRaw = addN.inputs.find((i) => i !== bias)!;
      grp.roles.dtBias = bias;
      add(grp, addN);
      add(grp, sp);
      log(grp, sp, true, "prologue softplus(dt + dt_bias)", "the scan kernel applies the bias and softplus while loading dt");
    } else {
      throw new StrataError(`${scan.op}: the CUDA scan kernels need dt = softplus(dt_raw + dt_bias) with a [${x!.shape[2]}] bias parameter; got ${sp.op}`, scan.src, "write dt as ops.softplus(ops.add(dtRaw, dtBias))");
    }
    if (!paramOnly.has(A!.key)) throw new StrataError(`${scan.op}: A must be computed from parameters only (e.g. −exp(A_log))`, scan.src);
    // D skip: y + x·D (D reshaped for broadcasting), optionally cast
    let cur = scan;
    const us = uses(scan);
    if (us.length === 1 && us[0]!.op === "add") {
      const addY = us[0]!;
      const other = addY.inputs.find((i) => i !== scan)!;
      const dParam = other.op === "mul" ? other.inputs.find((i) => paramOnly.has(i.key)) : undefined;
      const xIn = other.op === "mul" ? other.inputs.find((i) => i !== dParam) : undefined;
      const xMatches = xIn && viewBase(xIn).key === viewBase(x!).key;
      if (dParam && xMatches && uses(other).length === 1) {
        grp.roles.D = dParam;
        add(grp, other);
        add(grp, addY);
        log(grp, addY, true, "epilogue D skip (y + D·x)", "the scan kernel adds D·x per head/channel");
        cur = addY;
      } else log(grp, addY, false, "epilogue D skip", "operand is not x·D with D a parameter");
    }
    const next = uses(cur);
    if (next.length === 1 && next[0]!.op === "cast" && free(next[0]!)) {
      add(grp, next[0]!);
      log(grp, next[0]!, true, "epilogue cast", "the kernel stores in the output dtype");
      cur = next[0]!;
    }
    if (kind === "selective_scan") {
      const g2 = uses(cur);
      const m = g2.length === 1 && g2[0]!.op === "mul" ? g2[0]! : undefined;
      const gate = m?.inputs.find((i) => i !== cur);
      if (m && gate?.op === "silu" && uses(gate).length === 1 && free(gate)) {
        grp.roles.z = gate.inputs[0]!;
        add(grp, gate);
        add(grp, m);
        log(grp, m, true, "epilogue gate y·silu(z)", "the scan kernel gates while storing y");
      } else if (m) log(grp, m, false, "epilogue gate", "operand is not silu(z) with a single consumer");
    }
  }

  // ---- 2. norms: row kernels absorbing their elementwise producers ----------------------
  const absorbProducers = (grp: FusionGroup, n: Node, rowShape: readonly unknown[]) => {
    for (const p of n.inputs) {
      if (!free(p) || !ROW_OPS.has(p.op) || NORMS.has(p.op) || p.op === "rope") continue;
      if (p.shape.join() !== rowShape.join()) {
        log(grp, p, false, `prologue ${p.op}`, `shape [${p.shape}] differs from the row shape [${rowShape}]`);
        continue;
      }
      add(grp, p);
      log(grp, p, true, `prologue ${p.op}`, realUses(p).length > 1 ? "elementwise, same rows; also stored as an output for its other readers" : "elementwise, same rows");
      absorbProducers(grp, p, rowShape);
    }
  };
  for (const n of nodes) {
    if (!NORMS.has(n.op) || !free(n)) continue;
    const grp = newGroup("row", n);
    absorbProducers(grp, n, n.inputs[0]!.shape);
    // a following elementwise chain (e.g. cast) rides along
    let cur = n;
    for (;;) {
      const us = uses(cur);
      if (graphOut.has(cur.key) || us.length !== 1 || !free(us[0]!) || !ROW_OPS.has(us[0]!.op) || NORMS.has(us[0]!.op) || !sameShape(us[0]!, cur)) break;
      const e = us[0]!;
      if (e.inputs.some((i) => i !== cur && order.get(i.key)! > order.get(n.key)! && !paramOnly.has(i.key))) break;
      add(grp, e);
      log(grp, e, true, `epilogue ${e.op}`, "single consumer, elementwise, same rows");
      cur = e;
    }
  }

  // ---- 3. leftover elementwise work: row kernels, sinks first -----------------------------
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!free(n)) continue;
    const k = getOp(n.op).kind;
    if (k !== "elementwise") throw new StrataError(`codegen has no kernel for op '${n.op}' (${k})`, n.src, "supported anchors: linear, attention, ssdScan, selectiveScan, conv1d, embedding; plus elementwise ops and norms");
    const grp = newGroup("row", n);
    absorbProducers(grp, n, n.shape);
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

  // ---- outputs of each group, and group order -------------------------------------------
  for (const grp of groups) {
    grp.nodes.sort((a, b) => order.get(a.key)! - order.get(b.key)!);
    const inside = new Set(grp.nodes.map((n) => n.key));
    grp.outputs = grp.nodes.filter((n) => graphOut.has(n.key) || realUses(n).some((c) => !inside.has(c.key)));
  }
  return { groups: orderGroups(groups, groupOf, order), decisions, order, groupOf };
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

export function explainFusion(plan: FusionPlan): string {
  const lines: string[] = [];
  for (const g of plan.groups) {
    const a = g.anchor;
    lines.push(`group ${g.id} [${g.kind}] ${a ? `${a.op}${a.scope ? ` @ ${a.scope}` : ""}` : ""}: ${g.nodes.map((n) => n.op).join(" → ")}`);
    for (const d of plan.decisions.filter((d) => d.group === g.id)) lines.push(`    ${d.accepted ? "fused   " : "rejected"} ${d.what}: ${d.reason}`);
  }
  return lines.join("\n");
}
