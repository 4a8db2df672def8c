/**
 * A graph: named outputs over immutable nodes, plus the model config it came from. Nodes are
 * reached from the outputs; `topo` orders them (inputs first) and deduplicates by content key.
 * The serialized form is defined by zod schemas and round-trips exactly through JSON.
 */
import { z } from "zod";
import type { Dim } from "./dims.js";
import { StrataError } from "./errors.js";
import { contentKey, stableJson, type AttrValue, type DType, type Node, type TensorType } from "./node.js";
import { getOp, type OpName } from "./registry.js";

export interface Graph {
  readonly name: string;
  readonly outputs: Readonly<Record<string, Node>>;
  /** Free-form model description (family, sizes, pattern) carried for tools; JSON values only. */
  readonly meta: Readonly<Record<string, AttrValue>>;
}

export function topo(outputs: Iterable<Node>): Node[] {
  const entered = new Set<string>();
  const order: Node[] = [];
  // iterative post-order DFS: graphs of deep models are long chains
  for (const root of outputs) {
    if (entered.has(root.key)) continue;
    entered.add(root.key);
    const stack: { n: Node; i: number }[] = [{ n: root, i: 0 }];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.i < top.n.inputs.length) {
        const c = top.n.inputs[top.i++]!;
        if (!entered.has(c.key)) {
          entered.add(c.key);
          stack.push({ n: c, i: 0 });
        }
      } else {
        stack.pop();
        order.push(top.n);
      }
    }
  }
  return order;
}

/** Each node's readers among `nodes` (key → the nodes that take it as an input, once per input slot). */
export function consumersOf(nodes: readonly Node[]): Map<string, Node[]> {
  const out = new Map<string, Node[]>();
  for (const n of nodes)
    for (const i of n.inputs) {
      const l = out.get(i.key);
      if (l) l.push(n);
      else out.set(i.key, [n]);
    }
  return out;
}

export function graphNodes(g: Graph): Node[] {
  return topo(Object.values(g.outputs));
}

export function graphParams(g: Graph): Node[] {
  return graphNodes(g).filter((n) => n.op === "param");
}

export function graphInputs(g: Graph): Node[] {
  return graphNodes(g).filter((n) => n.op === "input");
}

// ---- serialized form ----------------------------------------------------------------------

const DTypeSchema = z.enum(["f32", "f64", "bf16", "f16", "i32", "i64"]);
const DimSchema = z.union([z.number().int(), z.string()]);
const AttrSchema: z.ZodType<AttrValue> = z.lazy(() =>
  z.union([z.number(), z.string(), z.boolean(), z.null(), z.array(AttrSchema), z.record(z.string(), AttrSchema)]),
);
const LocSchema = z.object({ file: z.string(), line: z.number().int(), col: z.number().int() });

export const NodeJsonSchema = z.object({
  id: z.number().int().nonnegative(),
  key: z.string(),
  op: z.string(), // checked against the registry when the graph is rebuilt (naming the unknown op)
  dtype: DTypeSchema,
  shape: z.array(DimSchema),
  inputs: z.array(z.number().int().nonnegative()),
  attrs: z.record(z.string(), AttrSchema),
  src: LocSchema.optional(),
  scope: z.string().optional(),
});

export const GraphJsonSchema = z.object({
  format: z.literal("strata-ir/1"),
  name: z.string(),
  meta: z.record(z.string(), AttrSchema),
  nodes: z.array(NodeJsonSchema),
  outputs: z.record(z.string(), z.number().int().nonnegative()),
});

export type GraphJson = z.infer<typeof GraphJsonSchema>;

/** Deterministic: attrs with sorted keys, node ids in topological order. */
export function toJson(g: Graph): GraphJson {
  const nodes = graphNodes(g);
  const id = new Map(nodes.map((n, i) => [n.key, i]));
  return {
    format: "strata-ir/1",
    name: g.name,
    meta: JSON.parse(stableJson(g.meta as AttrValue)),
    nodes: nodes.map((n, i) => ({
      id: i,
      key: n.key,
      op: n.op,
      dtype: n.dtype,
      shape: [...n.shape],
      inputs: n.inputs.map((x) => id.get(x.key)!),
      attrs: JSON.parse(stableJson(n.attrs as AttrValue)),
      ...(n.src ? { src: { ...n.src } } : {}),
      ...(n.scope ? { scope: n.scope } : {}),
    })),
    outputs: Object.fromEntries(Object.entries(g.outputs).map(([k, n]) => [k, id.get(n.key)!])),
  };
}

export function toJsonText(g: Graph): string {
  return JSON.stringify(toJson(g), null, 1);
}

/**
 * Parse and check a serialized graph: schema, input references, each op's shape rule, and
 * that every stored key equals the content hash recomputed from the node.
 */
export function fromJson(raw: unknown): Graph {
  const parsed = GraphJsonSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new StrataError(`invalid IR JSON at ${first.path.join(".") || "<root>"}: ${first.message}`);
  }
  const j = parsed.data;
  const built: Node[] = [];
  for (const nj of j.nodes) {
    if (nj.id !== built.length) throw new StrataError(`invalid IR JSON: node ids must be 0..n−1 in order (node ${nj.id})`);
    const inputs = nj.inputs.map((i) => {
      const n = built[i];
      if (!n) throw new StrataError(`invalid IR JSON: node ${nj.id} reads node ${i}, which is not defined before it`);
      return n;
    });
    // Name the node in every rejection: an unknown op, a wrong input count or a failing shape rule.
    let type: TensorType;
    try {
      const def = getOp(nj.op);
      const [lo, hi] = def.arity;
      if (inputs.length < lo || inputs.length > hi) throw new Error(`takes ${lo === hi ? lo : `${lo}..${hi}`} inputs, got ${inputs.length}`);
      type = def.infer(inputs, nj.attrs, { dtype: nj.dtype as DType, shape: nj.shape as Dim[] });
    } catch (e) {
      throw new StrataError(`invalid IR JSON: node ${nj.id} (${nj.op}): ${(e as Error).message}`);
    }
    if (type.dtype !== nj.dtype || type.shape.join() !== nj.shape.join())
      throw new StrataError(`invalid IR JSON: node ${nj.id} (${nj.op}) stores ${nj.dtype}[${nj.shape}] but its rule gives ${type.dtype}[${type.shape}]`);
    const op = nj.op as OpName; // getOp above accepted it
    const key = contentKey(op, nj.dtype as DType, nj.shape, nj.attrs, inputs);
    if (key !== nj.key) throw new StrataError(`invalid IR JSON: node ${nj.id} key ${nj.key} does not match its content (${key})`);
    built.push(
      Object.freeze({
        key,
        op,
        dtype: nj.dtype as DType,
        shape: Object.freeze([...nj.shape]),
        inputs: Object.freeze(inputs),
        attrs: Object.freeze(nj.attrs),
        ...(nj.src ? { src: nj.src } : {}),
        ...(nj.scope ? { scope: nj.scope } : {}),
      }),
    );
  }
  const outputs: Record<string, Node> = {};
  for (const [k, i] of Object.entries(j.outputs)) {
    const n = built[i];
    if (!n) throw new StrataError(`invalid IR JSON: output '${k}' names node ${i}, which does not exist`);
    outputs[k] = n;
  }
  return { name: j.name, outputs, meta: j.meta };
}
