/**
 * recompute (activation checkpointing): in a training graph, the backward reads the values the
 * forward computed inside a layer (its norm output, the MLP's hidden activation, the attention
 * output, the scan's inputs …), so they all stay in memory from the forward until the backward
 * reaches that layer. For the layer kinds chosen here, the backward reads recomputed copies
 * instead — the layer's forward run again from its input (the residual stream, which is kept
 * anyway) just before its backward — so the forward's own values die as soon as the forward is
 * done with them. Memory for FLOPs: about one more forward of those layers.
 *
 * The copies carry the attribute `recompute: 1`, which keeps their content keys apart from the
 * forward's nodes (the IR merges identical nodes). Values are unchanged: the same ops on the same
 * inputs, so the gradients are bit-identical to the graph without recomputation.
 */
import { StrataError } from "../ir/errors.js";
import { topo, type Graph } from "../ir/graph.js";
import { withInputs, type Node } from "../ir/node.js";
import { isSource } from "../ir/registry.js";

export interface RecomputeOptions {
  /** The forward graph the training graph was built from (its nodes are the forward's). */
  forward: Graph;
  /** Layer kind of each block, in order (ModelDef.layers[i].kind). */
  layerKinds: readonly string[];
  /** Kinds whose layers are recomputed, or "all". */
  kinds: readonly string[] | "all";
}

/** The layer index of a node computed inside a block (its norm or mixer), else undefined. */
function layerOf(n: Node): number | undefined {
  const m = /^layers\.(\d+)\.(norm|mixer)(\.|$)/.exec(n.scope ?? "");
  return m ? Number(m[1]) : undefined;
}

/** The training graph `g` with the backward reading recomputed copies of the chosen layers' values. */
export function recompute(g: Graph, o: RecomputeOptions): Graph {
  const known = new Set(o.layerKinds);
  if (o.kinds !== "all")
    for (const k of o.kinds)
      if (!known.has(k))
        throw new StrataError(`recompute: this model has no '${k}' layer`, undefined, `its layer kinds: ${[...known].join(", ")} (or "all")`);
  const chosen = (i: number) => o.kinds === "all" || o.kinds.includes(o.layerKinds[i]!);
  if (o.kinds !== "all" && o.kinds.length === 0) return g;

  const forwardKeys = new Set(topo(Object.values(o.forward.outputs)).map((n) => n.key));
  const recomputable = (n: Node) => {
    if (!forwardKeys.has(n.key) || isSource(n)) return false;
    const l = layerOf(n);
    return l !== undefined && chosen(l);
  };

  // a copy of forward value n computed again from the layer's inputs (sources and values from
  // outside the layer are read as they are)
  const copies = new Map<string, Node>();
  const copy = (n: Node): Node => {
    if (!recomputable(n)) return n;
    let c = copies.get(n.key);
    if (!c) {
      c = withInputs(n, n.inputs.map(copy), { ...n.attrs, recompute: 1 });
      copies.set(n.key, c);
    }
    return c;
  };

  // rebuild the backward with its reads of recomputable forward values redirected
  const rebuilt = new Map<string, Node>();
  const order = topo(Object.values(g.outputs));
  for (const n of order) {
    if (forwardKeys.has(n.key)) {
      rebuilt.set(n.key, n); // the forward itself is unchanged
      continue;
    }
    const ins = n.inputs.map((x) => (forwardKeys.has(x.key) ? copy(x) : rebuilt.get(x.key)!));
    rebuilt.set(n.key, ins.every((x, i) => x === n.inputs[i]) ? n : withInputs(n, ins));
  }
  const outputs = Object.fromEntries(Object.entries(g.outputs).map(([k, n]) => [k, rebuilt.get(n.key)!]));
  const count = copies.size;
  return { name: g.name, outputs, meta: { ...g.meta, recompute: { kinds: o.kinds === "all" ? "all" : [...o.kinds], nodes: count } } };
}
