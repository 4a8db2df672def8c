/**
 * The whole training graph of every tiny example — autodiff(withTrainingLoss(model, {weighted:
 * true}), {loss: "loss"}), the graph `strata compile --train` compiles — goes through fusion and
 * every group renders through its kernel family (as compiler/pipeline.ts calls them). A group that
 * does not render is listed with its family, ops and the family's message.
 */
import { describe, expect, it } from "vitest";
import { graphNodes } from "../../compiler/ir/graph.js";
import { isSource, isView } from "../../compiler/ir/registry.js";
import { fusedTraining, renderAll, TINY } from "./train-helpers.js";

describe.each(Object.keys(TINY))("%s: the training graph fuses and renders", (name) => {
  const { graph, plan } = fusedTraining(TINY[name]!);

  it("has the loss and one f32 gradient per weight", () => {
    const grads = Object.keys(graph.outputs).filter((k) => k.startsWith("grad."));
    expect(graph.outputs.loss?.shape).toEqual([]);
    expect(grads.length).toBeGreaterThan(10);
    for (const k of grads) expect(graph.outputs[k]!.dtype, k).toBe("f32");
  });

  it("every computed node is in exactly one group, groups in dependency order", () => {
    const seen = new Map<string, number>();
    for (const g of plan.groups) for (const n of g.nodes) seen.set(n.key, (seen.get(n.key) ?? 0) + 1);
    for (const n of graphNodes(graph)) {
      if (isSource(n) || isView(n)) continue;
      expect(seen.get(n.key), `${n.op} ${n.scope ?? ""}`).toBe(1);
    }
    const done = new Set<string>();
    for (const g of plan.groups) {
      const inside = new Set(g.nodes.map((n) => n.key));
      for (const n of g.nodes)
        for (let i of n.inputs) {
          while (isView(i)) i = i.inputs[0]!;
          if (isSource(i) || inside.has(i.key) || plan.groupOf.get(i.key) === undefined) continue;
          expect(done.has(i.key), `group ${g.id} (${g.kind}) reads ${i.op} before it is computed`).toBe(true);
        }
      for (const n of g.nodes) done.add(n.key);
    }
  });

  it("every group renders", () => {
    const failed = renderAll(plan)
      .filter((r) => r.error)
      .map((r) => `${r.group.kind} group ${r.group.id} (${r.group.nodes.map((n) => n.op).join(", ")}${r.group.anchor?.scope ? ` @ ${r.group.anchor.scope}` : ""}): ${r.error!.message.split("\n")[0]}`);
    expect(failed).toEqual([]);
  });
});
