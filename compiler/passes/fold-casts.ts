/**
 * fold-casts — exact cast rewrites of a training graph (on by default; `strata compile
 * --no-fold-casts` turns it off; run on the H200 with the in-place concats, docs/PERF-NOTES.md).
 *
 * Autodiff casts gradients to their operands' dtypes (gradDtype): a bf16 activation's gradient
 * that meets an f32 parameter (Mamba-2's D) is widened to f32 for the parameter's sum and narrowed
 * back for the activation's path. In the 0.85B hybrid's step that is one row kernel a Mamba-2
 * layer that reads a bf16 tensor and writes an f32 copy and a bf16 copy of it (153 µs), and two
 * readers of the 4-byte copy. Both rewrites here are exact, so every value is unchanged:
 *   1. a round trip through a wider float, cast(cast(x, wide), x.dtype), is x (bf16 / f16 → f32 /
 *      f64 → back, f32 → f64 → f32: the widening is exact, the narrowing returns x);
 *      a cast to the value's own dtype is the value;
 *   2. an exact widening read by several nodes gets a copy per reader whose kernel fuses its
 *      elementwise producers (attribute `remat`, which keeps the copies' content keys apart), so
 *      each such kernel widens in registers what it reads at the narrow width, instead of one
 *      kernel storing the wide copy for all.
 */
import { withInputs, type DType, type Node } from "../ir/node.js";
import { consumersOf, topo, type Graph } from "../ir/graph.js";
import { isElementwise } from "../ir/registry.js";

const WIDTH: Partial<Record<DType, number>> = { bf16: 1, f16: 1, f32: 2, f64: 3 };

/** Is casting a `from` value to `to` exact (every `from` value representable in `to`)? */
export function exactWidening(from: DType, to: DType): boolean {
  const a = WIDTH[from], b = WIDTH[to];
  return a !== undefined && b !== undefined && b > a;
}

const isCast = (n: Node) => n.op === "cast";

/** The graph with exact cast round trips folded and exact widenings copied per reader. */
export function foldCasts(g: Graph): Graph {
  // 1. round trips and no-op casts
  const folded = new Map<string, Node>();
  let roundTrips = 0;
  for (const n of topo(Object.values(g.outputs))) {
    const ins = n.inputs.map((x) => folded.get(x.key)!);
    let m = ins.every((x, i) => x === n.inputs[i]) ? n : withInputs(n, ins);
    if (isCast(m)) {
      const x = m.inputs[0]!;
      const f = x.dtype === m.dtype ? x : isCast(x) && x.inputs[0]!.dtype === m.dtype && exactWidening(m.dtype, x.dtype) ? x.inputs[0]! : undefined;
      if (f) {
        m = f;
        roundTrips++;
      }
    }
    folded.set(n.key, m);
  }
  const outs1 = Object.fromEntries(Object.entries(g.outputs).map(([k, n]) => [k, folded.get(n.key)!]));

  // 2. exact widenings with several readers: a copy for each reader whose kernel fuses its
  //    elementwise producers (elementwise ops and the token reductions: row and reduce kernels);
  //    other readers (a GEMM operand, a scan's input) share the original, stored as before
  const order = topo(Object.values(outs1));
  const readers = consumersOf(order);
  const outputKeys = new Set(Object.values(outs1).map((n) => n.key));
  const widening = (n: Node) => isCast(n) && exactWidening(n.inputs[0]!.dtype, n.dtype) && (readers.get(n.key)?.length ?? 0) > 1 && !outputKeys.has(n.key);
  const fusesProducers = (u: Node) => isElementwise(u) || u.op === "sumTo" || u.op === "reduceMean";
  const rebuilt = new Map<string, Node>();
  let copies = 0;
  for (const n of order) {
    const ins = n.inputs.map((x) => {
      const r = rebuilt.get(x.key)!;
      if (!widening(x) || !fusesProducers(n)) return r;
      copies++;
      return withInputs(r, r.inputs, { ...r.attrs, remat: copies });
    });
    rebuilt.set(n.key, ins.every((x, i) => x === n.inputs[i]) ? n : withInputs(n, ins));
  }
  const outputs = Object.fromEntries(Object.entries(outs1).map(([k, n]) => [k, rebuilt.get(n.key)!]));
  return { name: g.name, outputs, meta: { ...g.meta, foldCasts: { roundTrips, copies } } };
}
