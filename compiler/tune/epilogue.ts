/**
 * The epilogue part of a tuned kernel's signature: how many operands its store reads besides the
 * accumulator, one value per output element (a residual, a gate: memory traffic as large as the
 * output's) or one per output column (a bias). The operators themselves cost little next to
 * that traffic, so they are not part of the signature (kernels that differ only in them share
 * their tuning).
 */
import type { Node } from "../ir/node.js";
import type { FusionGroup, RenderContext } from "../kernels/family.js";

export function epilogueReads(g: FusionGroup, acc: ReadonlySet<Node>, ctx: RenderContext): { elemReads: number; colReads: number } {
  const inside = new Set(g.nodes.map((n) => n.key));
  const seen = new Set<string>();
  let elemReads = 0;
  let colReads = 0;
  for (const m of g.nodes) {
    if (acc.has(m)) continue;
    for (const x of m.inputs) {
      if (inside.has(x.key) || seen.has(x.key)) continue;
      seen.add(x.key);
      const r = ctx.ref(x);
      if (r.tokenDims > 0 || r.shape.length >= 2) elemReads++;
      else colReads++;
    }
  }
  return { elemReads, colReads };
}
