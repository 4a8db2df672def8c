/**
 * The store of a GEMM's fused elementwise chain for two adjacent outputs (row, col), (row, col + 1)
 * — shared by the forward GEMM (kernels/gemm.ts) and the backward GEMMs (kernels/matmul.ts).
 *
 * The chain's reads of other tensors (a residual, the pre-activation an activation's derivative
 * needs) are split from the arithmetic into `load2`, which fills an `Epi::Loaded` of floats, so
 * that the warp-specialized kernels (include/gemm.cuh `store_fragment`) issue the loads of many
 * column pairs before any of their stores: the store may alias a read (an in-place residual), so
 * the compiler keeps a load that follows a store after it, and an epilogue that reads memory per
 * pair would wait one global-memory round trip per pair.
 *
 * Rendered C++ (inside `struct Epi`, after `Params`):
 *   struct Loaded { float v[L]; };                      (only when the chain reads memory)
 *   static Loaded load2(p, row, col)                    the L values, loaded
 *   static void store2(p, row, col, acc0, acc1, l)      the arithmetic and the store
 *   static void store2(p, row, col, acc0, acc1)         both (the other kernels' hook)
 */
import type { Node } from "../ir/node.js";
import { elementwiseExpr } from "./expr.js";

export interface PairEpilogueSpec {
  /** The group's nodes in order; the chain's result is `out`. */
  nodes: readonly Node[];
  /** Nodes whose value is the accumulator (the GEMM anchor, a wgrad's absorbed sumTo). */
  acc: ReadonlySet<Node>;
  out: Node;
  /** C++ of one element read of a tensor outside the group at output column `col`. */
  read: (m: Node, col: string) => string;
  /** C++ statements that store r0, r1 at (row, col) (indented by 4); called after every `read`. */
  store: () => string[];
}

/** The C++ members of `struct Epi` after its Params: [Loaded, load2,] store2 (both overloads). */
export function renderPairEpilogue(s: PairEpilogueSpec): string {
  const inside = new Map(s.nodes.map((m, i) => [m.key, i]));
  const loads: string[] = [];  // C++ of each loaded value, by slot
  const slotOf = new Map<string, number>();
  const lines: string[] = [];
  for (const half of [0, 1]) {
    const col = half ? "(col + 1)" : "col";
    const val = (m: Node): string => {
      if (s.acc.has(m)) return `acc${half}`;
      if (inside.has(m.key)) return `e${half}_${inside.get(m.key)}`;
      const expr = s.read(m, col);
      let k = slotOf.get(expr);
      if (k === undefined) {
        k = loads.length;
        slotOf.set(expr, k);
        loads.push(expr);
      }
      return `l.v[${k}]`;
    };
    for (const m of s.nodes) if (!s.acc.has(m)) lines.push(`    const float e${half}_${inside.get(m.key)} = ${elementwiseExpr(m, m.inputs.map(val))};`);
    lines.push(`    const float r${half} = ${val(s.out)};`);
  }
  const body = [...lines, ...s.store()].join("\n");
  if (!loads.length)
    return [
      "  __device__ static void store2(const Params& p, int row, int col, float acc0, float acc1) {",
      body,
      "  }",
    ].join("\n");
  return [
    "  // the values the store reads, loaded apart from it (a warp-specialized kernel issues the loads",
    "  // of many column pairs before their stores: include/gemm.cuh store_fragment)",
    `  struct Loaded { float v[${loads.length}]; };`,
    "  __device__ static Loaded load2(const Params& p, int row, int col) {",
    "    Loaded l;",
    ...loads.map((e, k) => `    l.v[${k}] = ${e};`),
    "    return l;",
    "  }",
    "  __device__ static void store2(const Params& p, int row, int col, float acc0, float acc1, const Loaded& l) {",
    body,
    "  }",
    "  template <int = 0>  // a template: no unused-function warning in a file whose kernels all load first",
    "  __device__ static void store2(const Params& p, int row, int col, float acc0, float acc1) {",
    "    store2(p, row, col, acc0, acc1, load2(p, row, col));",
    "  }",
  ].join("\n");
}
