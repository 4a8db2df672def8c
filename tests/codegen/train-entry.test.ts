/**
 * The train entry of a Program (compile --train): the schedule's memory plan holds every weight's
 * f32 gradient at its own place, kernel scratch lives only during its launch, and the tables the
 * runtime reads (manifest train section, model.cu kGrads) agree with the plan.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { emitProject } from "../../compiler/codegen/project.js";
import type { ModelDef } from "../../compiler/dsl/model.js";
import { withScratch, type MemoryPlan } from "../../compiler/passes/plan-memory.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const load = async (f: string) => ((await import(path.join(REPO, "examples", f))) as { default: ModelDef }).default;

type Weight = { name: string; shape: number[]; bytes: number; dtype: string };

describe("train entry", () => {
  it.each(["tiny-transformer.ts", "tiny-hybrid.ts", "tiny-mamba.ts"])("%s: gradients of every weight, disjoint, inside the train arena", async (file) => {
    const def = await load(file);
    const p = emitProject(def, { maxBatch: 2, maxSeq: 64, train: true });
    const m = p.manifest as Record<string, any>;
    expect(Object.keys(m.entries)).toEqual(["forward", "prefill", "step", "train"]);
    expect(m.entries.train.inputs).toEqual({ tokens: "i32 [B, T]", targets: "i32 [B, T]", weights: "f32 [B, T]" });
    const weights = m.weights as Weight[];
    const grads = m.train.grads as { name: string; offset: number | null }[];
    expect(grads.map((g) => g.name)).toEqual(weights.map((w) => w.name));
    const train = m.schedules.train;
    const spans = grads.map((g, i) => {
      expect(g.offset, `${g.name} reached by the loss`).not.toBeNull();
      const numel = weights[i]!.shape.reduce((a, b) => a * b, 1);
      return [g.offset!, g.offset! + numel * 4, g.name] as const;
    });
    for (const [a, b, name] of spans) {
      expect(a % 4, name).toBe(0);
      expect(b, name).toBeLessThanOrEqual(train.arenaBytes);
    }
    const sorted = [...spans].sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]![0], `${sorted[i - 1]![2]} overlaps ${sorted[i]![2]}`).toBeGreaterThanOrEqual(sorted[i - 1]![1]);
    expect(m.arenaBytes).toBe(Math.max(m.schedules.forward.arenaBytes, m.schedules.cached.arenaBytes, train.arenaBytes));
    expect(m.train.flopsPerToken).toBeGreaterThan(0);
    // MFU at a shorter row length: the per-token cost is linear in T (attention's causal share)
    expect(m.train.flopsAtSeq).toBe(64);
    // (no attention: a per-sequence term amortised over T can make it slightly negative)
    if (file === "tiny-mamba.ts") expect(Math.abs(m.train.flopsPerTokenPerRowToken)).toBeLessThan(1e-3 * m.train.flopsPerToken);
    else expect(m.train.flopsPerTokenPerRowToken).toBeGreaterThan(0);
    // the loss: an f32 slot live to the end
    expect(m.train.loss.offset).toBeLessThan(train.arenaBytes);
    // model.cu's gradient table matches the manifest
    const cu = p.files["model.cu"]!;
    for (const g of grads.slice(0, 5)) expect(cu).toContain(`${g.offset} }`);
    // scratch slots exist and live for one launch only
    const scratch = (train.buffers as { name: string; live: [number, number] }[]).filter((b) => b.name.startsWith("scratch_"));
    if (file !== "tiny-transformer.ts") expect(scratch.length).toBeGreaterThan(0);
    for (const s of scratch) expect(s.live[0]).toBe(s.live[1]);
  });

  it("a program compiled without --train has no train entry and an empty gradient table", async () => {
    const p = emitProject(await load("tiny-mamba2.ts"), { maxBatch: 1, maxSeq: 32 });
    const m = p.manifest as Record<string, any>;
    expect(m.entries.train).toBeUndefined();
    expect(m.train).toBeUndefined();
    expect(p.files["model.cu"]).toMatch(/kGrads\[\] = \{\s*\{-1, 0u\},/);
  });

  it("withScratch places scratch beside the values live at its launch and nowhere else", () => {
    const m: MemoryPlan = {
      slots: [
        { key: "a", name: "a", dtype: "f32", bytes: 1024, offset: 0, from: 0, to: 2 },
        { key: "b", name: "b", dtype: "f32", bytes: 512, offset: 1024, from: 1, to: 1 },
      ],
      peakBytes: 1536,
      alignment: 256,
      bindings: { B: 1, T: 1, P: 0 },
      maxBatch: 1,
      maxSeq: 1,
    };
    const w = withScratch(m, [{ name: "s1", group: 1, bytes: 700 }, { name: "s3", group: 3, bytes: 4096 }]);
    const at = Object.fromEntries(w.slots.map((s) => [s.name, s]));
    const overlaps = (x: typeof at.a, y: typeof at.a) => x!.from <= y!.to && y!.from <= x!.to && x!.offset < y!.offset + y!.bytes && y!.offset < x!.offset + x!.bytes;
    for (const x of w.slots) for (const y of w.slots) if (x !== y) expect(overlaps(x, y), `${x.name} / ${y.name}`).toBe(false);
    expect(at.s1!.bytes).toBe(768); // aligned to 256
    expect(at.s3!.offset).toBe(0); // nothing else is live at group 3
    expect(w.peakBytes).toBe(4096);
    expect(withScratch(m, [])).toBe(m);
  });
});
