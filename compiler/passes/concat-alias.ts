/**
 * concat-alias — in-place concats in training graphs (on by default; `strata compile
 * --no-in-place-concat` turns it off; the forward and cached graphs keep their concat kernels).
 * Checked on the H200 against the interpreter (every tiny family's train gradients) and timed:
 * −5 ms a 0.85B step together with fold-casts (docs/PERF-NOTES.md).
 *
 * The training graph's gradient of a fused projection's input is a concat of its slices' gradients
 * (autodiff's mergePadded: the Mamba-2 in_proj's dz | dxBC | ddt, the conv's dx | dB | dC, the
 * attention's dq | dk | dv). A row kernel then copies every piece into the concat's buffer: in the
 * 0.85B hybrid's step two such kernels a Mamba layer, ~3 ms a step of pure copying.
 *
 * Here a concat whose every piece is stored by a kernel that writes through its output's offset
 * and row stride (row kernels, the GEMMs, conv1d's, the SSD's and the attention's backward) and
 * read by nothing but the concat gets no kernel: each piece lives in its columns of the concat's buffer (a
 * `BufferOwner.alias`), so its kernel writes them in place. The concat's group leaves the plan;
 * plan-memory gives the concat's slot a lifetime from its first piece's group on.
 *
 * Conditions, each checked (a concat that fails one keeps its kernel):
 *   - the group is the concat alone, along a feature axis, per token ([B, T, …]), the feature
 *     axes before it of size 1 (each piece is a contiguous column range of a row);
 *   - every piece is a stored value (through reshapes only) of a group of an allowed family, of
 *     the concat's dtype, not a graph output, not persistent state, read only by the concat, and
 *     not twice in it;
 *   - every piece's first column and the row width are multiples of 8 elements (the writers'
 *     16-byte vector and TMA alignment).
 */
import type { Node } from "../ir/node.js";
import { getOp, isSource, isView, viewBase, type KernelFamily } from "../ir/registry.js";
import { consumersOf } from "../ir/graph.js";
import { prod } from "../codegen/tensors.js";  // of fixed feature sizes: the callers check they are numbers
import type { FusionPlan } from "./fuse.js";

/** Where a piece of an in-place concat lives: `offset` elements into each row of `into`'s buffer. */
export interface ConcatAlias {
  into: Node;
  offset: number;
}

/** Families whose kernels write every output through its TensorRef's offset and row stride. */
const WRITES_STRIDED: ReadonlySet<KernelFamily> = new Set(["row", "gemm", "matmul", "conv1d_grad", "ssd_grad", "attention_grad"]);

const isTokenShape = (s: readonly unknown[]) => s.length >= 3 && s[0] === "B" && s[1] === "T";

export interface ConcatAliasResult {
  plan: FusionPlan;
  /** Piece node key → its place in the concat's buffer. */
  aliases: Map<string, ConcatAlias>;
  /** Why each concat that qualified by its group kept its kernel. */
  kept: { concat: Node; reason: string }[];
}

/**
 * The plan with in-place concats' groups removed, and the pieces' aliases. `nodes`: every node of
 * the graph (for the consumers); `outputs`: the graph's outputs; `persistent`: node keys stored in
 * state buffers.
 */
export function aliasConcats(plan: FusionPlan, nodes: readonly Node[], outputs: readonly Node[], persistent: ReadonlySet<string>): ConcatAliasResult {
  const consumers = consumersOf(nodes);
  const outputKeys = new Set(outputs.flatMap((o) => [o.key, viewBase(o).key]));
  const groupById = new Map(plan.groups.map((g) => [g.id, g]));
  const aliases = new Map<string, ConcatAlias>();
  const kept: { concat: Node; reason: string }[] = [];
  const removed = new Set<number>();

  for (const grp of plan.groups) {
    if (grp.kind !== "row" || grp.nodes.length !== 1 || grp.nodes[0]!.op !== "concat") continue;
    const c = grp.nodes[0]!;
    const why = check(c);
    if (typeof why === "string") {
      kept.push({ concat: c, reason: why });
      continue;
    }
    for (const [k, a] of why) aliases.set(k, a);
    removed.add(grp.id);
  }

  function check(c: Node): string | Map<string, ConcatAlias> {
    if (!isTokenShape(c.shape)) return "not a per-token [B, T, …] value";
    if (!c.shape.slice(2).every((d) => typeof d === "number")) return "its feature axes are not all fixed";
    const axis = c.attrs.axis as number;
    if (!(axis >= 2)) return "it concatenates along a token axis";
    for (let a = 2; a < axis; a++) if (c.shape[a] !== 1) return `its pieces are not contiguous per token (axis ${a} before the concat axis has size ${String(c.shape[a])})`;
    const width = prod(c.shape.slice(2));
    const inner = prod(c.shape.slice(axis + 1));
    if (width % 8 !== 0) return `its row width ${width} is not a multiple of 8`;
    if (persistent.has(c.key)) return "it is persistent state";
    const out = new Map<string, ConcatAlias>();
    let start = 0;
    for (const x of c.inputs) {
      const span = x.shape[axis] as number;
      const offset = start * inner;
      start += span;
      // the stored value behind reshapes; each link read by nothing else
      let p = x;
      const chain: Node[] = [];
      while (p.op === "reshape") {
        chain.push(p);
        p = p.inputs[0]!;
      }
      if (isView(p)) return `a piece is a ${p.op} view`;
      if (isSource(p)) return `a piece is a ${p.op}`;
      if (getOp(p.op).inPlace !== undefined) return `a piece is written in place (${p.op})`;
      const gid = plan.groupOf.get(p.key);
      const g = gid === undefined ? undefined : groupById.get(gid);
      if (!g || !g.outputs.includes(p)) return `a piece (${p.op}) is not stored by a kernel`;
      if (!WRITES_STRIDED.has(g.kind as KernelFamily)) return `a piece is stored by a ${g.kind} kernel, which writes contiguous outputs`;
      if (g.kind === "param_prep") return "a piece is computed from parameters once";
      if (p.dtype !== c.dtype) return `a piece is ${p.dtype}, the concat ${c.dtype}`;
      if (!isTokenShape(p.shape) || prod(p.shape.slice(2)) !== span * inner) return `a piece (${p.op}) is not a per-token block of ${span * inner} columns`;
      if (outputKeys.has(p.key) || persistent.has(p.key)) return `a piece (${p.op}) is a graph output or state`;
      if (out.has(p.key)) return `a piece (${p.op}) appears twice`;
      if (offset % 8 !== 0) return `a piece starts at column ${offset}, not a multiple of 8`;
      const link = [p, ...chain.reverse()];
      for (let i = 0; i < link.length; i++) {
        const next = i + 1 < link.length ? link[i + 1]! : c;
        const us = consumers.get(link[i]!.key) ?? [];
        if (us.length !== 1 || us[0] !== next) return `a piece (${p.op}) is also read by ${us.filter((u) => u !== next).map((u) => u.op).join(", ") || "nothing"}`;
      }
      out.set(p.key, { into: c, offset });
    }
    return out;
  }

  if (removed.size === 0) return { plan, aliases, kept };
  return { plan: { ...plan, groups: plan.groups.filter((g) => !removed.has(g.id)) }, aliases, kept };
}
