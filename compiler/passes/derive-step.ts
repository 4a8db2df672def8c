/**
 * derive-step: from a full-sequence model graph, the graphs that serve generation.
 *
 * - `prefill`: the full graph plus, for every sequence op, its outgoing state as an output
 *   (SSM state via the op's stateOp, conv state via convState, KV cache = the k/v it attended).
 * - `step`: the graph for `tokens` new tokens (1 by default: decode; "T" for any number, which
 *   serves prefill and chunked prefill too) continuing from explicit state inputs: scans take h0,
 *   conv1d takes its prefix, attention attends cacheAppend(cache, k/v) of length P + tokens (the
 *   cache extended in place), rope uses input `positions`. Every state comes back out updated.
 *
 * States are named `<scope>.<kind>` (e.g. `layers.3.mixer.ssm`, `layers.7.mixer.k`), the same in
 * both graphs, so a runtime feeds prefill's outputs into step's inputs by name.
 */
import { substDim, type Dim } from "../ir/dims.js";
import { StrataError } from "../ir/errors.js";
import { graphNodes, type Graph } from "../ir/graph.js";
import { getOp } from "../ir/registry.js";
import { mkNodeLike, withInputs, type Node, type TensorType } from "../ir/node.js";

export interface StateInfo {
  name: string;
  kind: "ssm" | "conv" | "k" | "v";
  dtype: Node["dtype"];
  /** Shape of the state in the step graph (KV caches have the symbolic past length P). */
  shape: readonly Dim[];
}

export interface StepGraphs {
  prefill: Graph;
  step: Graph;
  states: StateInfo[];
}

/** Each sequence op's state prefix: its scope, numbered when a scope holds several of a kind. */
function statePrefixes(nodes: readonly Node[]): Map<string, string> {
  const names = new Map<string, string>();
  const used = new Map<string, number>();
  for (const n of nodes) {
    const spec = getOp(n.op).state;
    if (!spec) continue;
    const scope = n.scope ?? "model";
    const id = `${scope}/${spec.kind}`;
    const k = used.get(id) ?? 0;
    used.set(id, k + 1);
    names.set(n.key, k === 0 ? scope : `${scope}#${k}`);
  }
  return names;
}

function stateName(prefix: string, kind: StateInfo["kind"]): string {
  return `${prefix}.${kind}`;
}

export function deriveStep(full: Graph, opts: { tokens?: Dim } = {}): StepGraphs {
  const tokens: Dim = opts.tokens ?? 1;
  const nodes = graphNodes(full);
  const names = statePrefixes(nodes);

  // ---- prefill: the same graph, states as extra outputs -----------------------------------
  const prefillOut: Record<string, Node> = { ...full.outputs };
  const states: StateInfo[] = [];
  for (const n of nodes) {
    const base = names.get(n.key);
    if (!base) continue;
    const spec = getOp(n.op).state!;
    if (spec.kind === "kv") {
      prefillOut[stateName(base, "k")] = n.inputs[1]!;
      prefillOut[stateName(base, "v")] = n.inputs[2]!;
    } else if (spec.kind === "conv") {
      if (n.inputs.length > spec.stateInput!) throw new StrataError(`derive-step: ${n.op} already has a state input`, n.src);
      prefillOut[stateName(base, "conv")] = mkNodeLike(n, "convState", [n.inputs[0]!], { k: n.inputs[1]!.shape[1]! as number });
    } else {
      if (n.inputs.length > spec.stateInput!) throw new StrataError(`derive-step: ${n.op} already has a state input`, n.src);
      prefillOut[stateName(base, "ssm")] = mkNodeLike(n, spec.stateOp!, n.inputs.slice(0, 4), n.op === "ssdScan" ? n.attrs : {});
    }
  }

  // ---- step: rebuild with T → tokens and explicit state inputs ------------------------------
  const subs = { T: tokens };
  const map = new Map<string, Node>();
  const stepOut: Record<string, Node> = {};
  const stateIn = (like: Node, name: string, type: TensorType, kind: StateInfo["kind"]): Node => {
    states.push({ name, kind, dtype: type.dtype, shape: type.shape });
    return mkNodeLike(like, "input", [], { name: `state.${name}` }, type);
  };
  for (const n of nodes) {
    const ins = n.inputs.map((i) => map.get(i.key)!);
    const base = names.get(n.key);
    let out: Node;
    if (n.op === "input") {
      out = withInputs(n, [], n.attrs, { dtype: n.dtype, shape: n.shape.map((d) => substDim(d, subs)) });
    } else if (n.op === "arange") {
      out = mkNodeLike(n, "input", [], { name: "positions" }, { dtype: "i32", shape: [substDim(n.shape[0]!, subs)] });
    } else if (n.op === "reshape") {
      out = withInputs(n, ins, { ...n.attrs, shape: (n.attrs.shape as Dim[]).map((d) => substDim(d, subs)) });
    } else if (base) {
      const spec = getOp(n.op).state!;
      if (spec.kind === "kv") {
        const [q, k, v] = ins as [Node, Node, Node];
        const cacheShape = (t: Node): Dim[] => [t.shape[0]!, "P", t.shape[2]!, t.shape[3]!];
        const kc = stateIn(n, stateName(base, "k"), { dtype: k.dtype, shape: cacheShape(k) }, "k");
        const vc = stateIn(n, stateName(base, "v"), { dtype: v.dtype, shape: cacheShape(v) }, "v");
        // the caches grow in place by this call's rows: no O(P) copy per token
        const kAll = mkNodeLike(n, "cacheAppend", [kc, k]);
        const vAll = mkNodeLike(n, "cacheAppend", [vc, v]);
        stepOut[stateName(base, "k")] = kAll;
        stepOut[stateName(base, "v")] = vAll;
        out = withInputs(n, [q, kAll, vAll]);
      } else if (spec.kind === "conv") {
        const x = ins[0]!;
        const k = n.inputs[1]!.shape[1] as number;
        const prefix = stateIn(n, stateName(base, "conv"), { dtype: "f32", shape: [x.shape[0]!, k - 1, x.shape[2]!] }, "conv");
        out = withInputs(n, [...ins, prefix]);
        stepOut[stateName(base, "conv")] = mkNodeLike(n, "convState", [x, prefix], { k });
      } else {
        const stateType = getOp(spec.stateOp!).infer(ins.slice(0, 4), n.attrs);
        const h0 = stateIn(n, stateName(base, "ssm"), stateType, "ssm");
        out = withInputs(n, [...ins, h0]);
        stepOut[stateName(base, "ssm")] = mkNodeLike(n, spec.stateOp!, [...ins.slice(0, 4), h0], n.op === "ssdScan" ? n.attrs : {});
      }
    } else {
      out = n.inputs.length === 0 ? n : withInputs(n, ins);
    }
    map.set(n.key, out);
  }
  for (const [k, n] of Object.entries(full.outputs)) stepOut[k] = map.get(n.key)!;
  // model outputs first, then states in a stable order
  const ordered = (o: Record<string, Node>) => {
    const model = Object.keys(full.outputs);
    return Object.fromEntries([...model, ...Object.keys(o).filter((k) => !model.includes(k)).sort()].map((k) => [k, o[k]!]));
  };
  return {
    prefill: { name: `${full.name}.prefill`, outputs: ordered(prefillOut), meta: full.meta },
    step: { name: `${full.name}.step`, outputs: ordered(stepOut), meta: { ...full.meta, stepTokens: tokens } },
    states,
  };
}
