/**
 * Fusion decisions (compiler/passes/fuse.ts) on the tiny examples and on small hand-built models,
 * structural invariants of every plan, and the memory plan (compiler/passes/plan-memory.ts).
 */
import { describe, expect, it } from "vitest";
import { attention, layer, mamba, mamba2, mlp, model, ops, stack, type LayerDef, type ModelDef } from "../../compiler/dsl/index.js";
import { graphNodes } from "../../compiler/ir/graph.js";
import type { Node } from "../../compiler/ir/node.js";
import { explainFusion, fuse, type FusionGroup, type FusionPlan } from "../../compiler/passes/fuse.js";
import { isSource, isView, viewBase } from "../../compiler/ir/registry.js";
import { planMemory } from "../../compiler/passes/plan-memory.js";
import { emitProject } from "../../compiler/codegen/project.js";
import tinyHybrid from "../../examples/tiny-hybrid.js";
import tinyMamba from "../../examples/tiny-mamba.js";
import tinyMamba2 from "../../examples/tiny-mamba2.js";
import tinyTransformer from "../../examples/tiny-transformer.js";
import tinyCustom from "../../examples/tiny-custom-ratio.js";
import hybrid8b from "../../examples/mamba2-hybrid-8b.js";

// ---- helpers ------------------------------------------------------------------------------

const one = (symbol: string, l: LayerDef, extra: Partial<Parameters<typeof model>[0]> = {}): ModelDef =>
  model({ name: `one-${l.kind}`, vocab: 64, dModel: 128, seqLen: 16, layers: stack({ pattern: symbol, [symbol]: l }), ...extra });

const opsOf = (g: FusionGroup) => g.nodes.map((n) => n.op);
const scopeOf = (g: FusionGroup) => (g.anchor ?? g.nodes[g.nodes.length - 1]!).scope ?? "";
/** Groups whose anchor (or sink) was created in `scope`, in plan order. */
const groupsIn = (p: FusionPlan, scope: string, kind?: FusionGroup["kind"]) =>
  p.groups.filter((g) => scopeOf(g) === scope && (!kind || g.kind === kind));
const decisionsOf = (p: FusionPlan, g: FusionGroup) => p.decisions.filter((d) => d.group === g.id);
const paramName = (n: Node | undefined) => (n ? (viewBase(n).attrs.name as string | undefined) : undefined);

const plans = new Map<ModelDef, FusionPlan>();
const planOf = (m: ModelDef) => {
  let p = plans.get(m);
  if (!p) plans.set(m, (p = fuse(m.toGraph())));
  return p;
};

// ---- hand-built models ----------------------------------------------------------------------

const m2 = one("M", mamba2({ dState: 64, headDim: 64, groups: 2, expand: 2, chunk: 64 }));
const mlpRelu2 = one("-", mlp({ hidden: 256, act: "relu2" }));
const attnRope = one("*", attention({ heads: 4, kvHeads: 2, headDim: 32, rope: true }));
const m1 = one("M", mamba({ dState: 16, expand: 2 }));
const swishmix = model({
  name: "swishmix",
  vocab: 64,
  dModel: 128,
  seqLen: 16,
  layers: stack({ pattern: "SS", S: layer("swishmix", {}, (_ctx, x) => ops.silu(x)) }),
});
/** The normalised value has two readers, so the norm cannot take the mixer as its epilogue. */
const gluish = model({
  name: "gluish",
  vocab: 64,
  dModel: 128,
  seqLen: 16,
  layers: stack({ pattern: "GG", G: layer("gluish", {}, (_ctx, x) => ops.mul(ops.silu(x), x)) }),
});

const ALL: Record<string, ModelDef> = {
  "tiny-hybrid": tinyHybrid,
  "tiny-mamba": tinyMamba,
  "tiny-mamba2": tinyMamba2,
  "tiny-transformer": tinyTransformer,
  "tiny-custom-ratio": tinyCustom,
  "mamba2-hybrid-8b": hybrid8b,
  "hand: mamba2": m2,
  "hand: mlp relu2": mlpRelu2,
  "hand: attention+rope": attnRope,
  "hand: mamba1": m1,
  "hand: swishmix": swishmix,
  "hand: gluish": gluish,
};

// ---- Mamba-2 --------------------------------------------------------------------------------

describe.each([
  ["hand-built", m2, "layers.0.mixer"],
  ["tiny-hybrid layer 0", tinyHybrid, "layers.0.mixer"],
  ["tiny-hybrid layer 3", tinyHybrid, "layers.3.mixer"],
  ["tiny-mamba2 layer 1", tinyMamba2, "layers.1.mixer"],
] as const)("Mamba-2 block (%s)", (_what, m, scope) => {
  const p = planOf(m);
  const layerScope = scope.replace(/\.mixer$/, "");

  it("in_proj: a GEMM without epilogue (3 consumers: z, xBC, dt), the rejection recorded", () => {
    const [inProj] = groupsIn(p, scope, "gemm");
    expect(opsOf(inProj!)).toEqual(["linear"]);
    expect(paramName(inProj!.anchor!.inputs[1])).toBe(`${scope}.in_proj.weight`);
    const ds = decisionsOf(p, inProj!);
    expect(ds).toHaveLength(1);
    expect(ds[0]).toMatchObject({ accepted: false, what: "epilogue" });
    expect(ds[0]!.reason).toMatch(/3 consumers/);
  });

  it("conv1d + silu in one group", () => {
    const convs = groupsIn(p, scope, "conv1d");
    expect(convs).toHaveLength(1);
    expect(opsOf(convs[0]!)).toEqual(["conv1d", "silu"]);
    expect(decisionsOf(p, convs[0]!).find((d) => d.accepted)?.what).toBe("epilogue silu");
  });

  it("SSD group owns softplus(dt + dt_bias), the D skip and the cast", () => {
    const ssd = groupsIn(p, scope, "ssd");
    expect(ssd).toHaveLength(1);
    const g = ssd[0]!;
    expect(opsOf(g)).toEqual(["add", "softplus", "ssdScan", "mul", "add", "cast"]);
    expect(paramName(g.roles.dtBias)).toBe(`${scope}.dt_bias`);
    expect(paramName(g.roles.D)).toBe(`${scope}.D`);
    expect(g.roles.dtRaw!.op).toBe("slice"); // dt read in place from in_proj's output
    expect(viewBase(g.roles.dtRaw!)).toBe(groupsIn(p, scope, "gemm")[0]!.anchor);
    const sp = g.nodes.find((n) => n.op === "softplus")!;
    expect(sp.inputs[0]!.op).toBe("add");
    expect(sp.inputs[0]!.inputs).toContain(g.roles.dtBias);
    // A is not in the group: it is prepared once from A_log
    expect(g.nodes).not.toContain(g.roles.A);
    expect(g.outputs.map((n) => n.op)).toEqual(["cast"]);
    const acc = decisionsOf(p, g).filter((d) => d.accepted).map((d) => d.what);
    expect(acc).toEqual(["prologue softplus(dt + dt_bias)", "epilogue D skip (y + D·x)", "epilogue cast"]);
  });

  it("gated RMSNorm is a row kernel of its own", () => {
    const rows = groupsIn(p, scope, "row");
    expect(rows.map(opsOf)).toEqual([["gatedRmsnorm"]]);
    expect(rows[0]!.anchor!.op).toBe("gatedRmsnorm");
  });

  it("out_proj: a GEMM with the residual add in its epilogue", () => {
    const gemms = groupsIn(p, scope, "gemm");
    expect(gemms).toHaveLength(2);
    const out = gemms[1]!;
    expect(paramName(out.anchor!.inputs[1])).toBe(`${scope}.out_proj.weight`);
    expect(opsOf(out)).toEqual(["linear", "add"]);
    const add = out.nodes[1]!;
    expect(add.scope).toBe(layerScope); // the block's residual add, not the mixer's
    expect(decisionsOf(p, out).find((d) => d.accepted)).toMatchObject({ what: "epilogue add", reason: expect.stringMatching(/single consumer/) });
    expect(out.outputs).toEqual([add]);
  });

  it("A = −exp(A_log): one param_prep group, launched once", () => {
    const prep = p.groups.filter((g) => g.kind === "param_prep" && scopeOf(g) === scope);
    expect(prep).toHaveLength(1);
    expect(opsOf(prep[0]!)).toEqual(["exp", "neg"]);
    expect(paramName(prep[0]!.nodes[0]!.inputs[0])).toBe(`${scope}.A_log`);
    const ssd = groupsIn(p, scope, "ssd")[0]!;
    expect(prep[0]!.anchor).toBe(ssd.roles.A);
    expect(decisionsOf(p, prep[0]!)).toEqual([expect.objectContaining({ accepted: true, reason: expect.stringMatching(/once/) })]);
  });

  it("the pre-norm is a row kernel", () => {
    expect(groupsIn(p, `${layerScope}.norm`).map(opsOf)).toEqual([["rmsnorm"]]);
  });
});

describe("param prep", () => {
  it("param_prep groups come first and their launches are marked once (and only they)", () => {
    for (const m of [tinyHybrid, tinyMamba]) {
      const e = emitProject(m);
      const kinds = e.plan.groups.map((g) => g.kind);
      const nPrep = kinds.filter((k) => k === "param_prep").length;
      expect(nPrep).toBe([...m.pattern].filter((c, i) => c === "M" && m.layers[i]!.kind.startsWith("mamba")).length);
      expect(kinds.slice(0, nPrep).every((k) => k === "param_prep")).toBe(true);
      for (const s of e.program.schedules)
        for (const l of s.launches) if (l.kind === "kernel") expect(l.once, `${s.name}: ${l.kernel} group ${l.group}`).toBe(s.plan.groups.find((g) => g.id === l.group)!.kind === "param_prep");
      const onceKernels = e.kernels.filter((k) => k.spec.once);
      expect(onceKernels).toHaveLength(1); // the layers' A preps render identically: one kernel, in both schedules
      expect(onceKernels[0]!.spec.nodes.map((n) => n.op)).toEqual(Array(nPrep * e.program.schedules.length).fill(["exp", "neg"]).flat());
      // both schedules read the prepared values from one shared buffer each (computed once per load)
      expect(e.program.preps).toHaveLength(nPrep);
    }
  });
});

// ---- MLP --------------------------------------------------------------------------------------

describe.each([
  ["hand-built", mlpRelu2, "layers.0.mixer"],
  ["tiny-hybrid", tinyHybrid, "layers.2.mixer"],
  ["tiny-transformer", tinyTransformer, "layers.3.mixer"],
] as const)("MLP relu² (%s)", (_what, m, scope) => {
  const p = planOf(m);
  it("fc1 GEMM carries relu² in its epilogue, stopping at fc2", () => {
    const [fc1, fc2] = groupsIn(p, scope, "gemm");
    expect(paramName(fc1!.anchor!.inputs[1])).toBe(`${scope}.fc1.weight`);
    expect(opsOf(fc1!)).toEqual(["linear", "relu2"]);
    expect(decisionsOf(p, fc1!).map((d) => [d.accepted, d.what])).toEqual([
      [true, "epilogue relu2"],
      [false, "epilogue linear"],
    ]);
    expect(decisionsOf(p, fc1!)[1]!.reason).toMatch(/not an elementwise op/);
    expect(paramName(fc2!.anchor!.inputs[1])).toBe(`${scope}.fc2.weight`);
    expect(opsOf(fc2!)).toEqual(["linear", "add"]);
    expect(groupsIn(p, scope)).toHaveLength(2);
  });
});

describe("SwiGLU MLP (tiny-custom-ratio, layers 2 and 5)", () => {
  const p = planOf(tinyCustom);
  it.each(["layers.2.mixer", "layers.5.mixer"])("%s: fc1 stored (2 readers), silu(gate)·up one row kernel, fc2 + residual", (scope) => {
    const [fc1, fc2] = groupsIn(p, scope, "gemm");
    expect(opsOf(fc1!)).toEqual(["linear"]);
    expect(decisionsOf(p, fc1!)).toEqual([expect.objectContaining({ accepted: false, reason: expect.stringMatching(/2 consumers/) })]);
    const rows = groupsIn(p, scope, "row");
    expect(rows.map(opsOf)).toEqual([["silu", "mul"]]);
    const [silu, mul] = rows[0]!.nodes;
    // both halves are read in place from fc1's output: gate = [0, hidden), up = [hidden, 2·hidden)
    expect(silu!.inputs[0]!.op).toBe("slice");
    expect(viewBase(silu!.inputs[0]!)).toBe(fc1!.anchor);
    const up = mul!.inputs.find((i) => i !== silu)!;
    expect(up.op).toBe("slice");
    expect(up.attrs.start).toBe(256);
    expect(rows[0]!.outputs).toEqual([mul]);
    expect(decisionsOf(p, rows[0]!)).toEqual([expect.objectContaining({ accepted: true, what: "prologue silu" })]);
    expect(opsOf(fc2!)).toEqual(["linear", "add"]);
  });
});

// ---- attention --------------------------------------------------------------------------------

describe("attention", () => {
  it.each([
    ["tiny-hybrid", tinyHybrid, "layers.1.mixer", 0],
    ["hand-built with rope", attnRope, "layers.0.mixer", 2],
    ["tiny-transformer (half rope)", tinyTransformer, "layers.2.mixer", 2],
    ["tiny-custom-ratio (MQA + rope)", tinyCustom, "layers.3.mixer", 2],
  ] as const)("%s: qkv GEMM, attention group, o_proj + residual, rope as row kernels", (_w, m, scope, ropes) => {
    const p = planOf(m);
    const [qkv, oProj] = groupsIn(p, scope, "gemm");
    expect(paramName(qkv!.anchor!.inputs[1])).toBe(`${scope}.qkv.weight`);
    expect(opsOf(qkv!)).toEqual(["linear"]);
    expect(decisionsOf(p, qkv!)[0]!.reason).toMatch(/3 consumers/);
    const at = groupsIn(p, scope, "attention");
    expect(at.map(opsOf)).toEqual([["attention"]]);
    expect(paramName(oProj!.anchor!.inputs[1])).toBe(`${scope}.o_proj.weight`);
    expect(opsOf(oProj!)).toEqual(["linear", "add"]);
    const rows = groupsIn(p, scope, "row");
    expect(rows).toHaveLength(ropes);
    for (const r of rows) {
      expect(opsOf(r)).toEqual(["rope"]);
      expect(r.anchor).toBe(r.nodes[0]); // a leftover elementwise sink anchors its row group
      // rope reads q / k in place from the qkv output and stores for attention
      expect(viewBase(r.nodes[0]!.inputs[0]!)).toBe(qkv!.anchor);
      expect(r.outputs).toEqual(r.nodes);
    }
    if (ropes) {
      const [q, k] = at[0]!.anchor!.inputs;
      expect(new Set(rows.map((r) => r.nodes[0]))).toEqual(new Set([q, k]));
    }
  });
});

// ---- Mamba-1 ---------------------------------------------------------------------------------

describe.each([
  ["hand-built", m1, "layers.0.mixer"],
  ["tiny-mamba", tinyMamba, "layers.2.mixer"],
] as const)("Mamba-1 block (%s)", (_what, m, scope) => {
  const p = planOf(m);
  it("the selective-scan group owns softplus(dt_proj + bias), the D skip and the silu(z) gate", () => {
    const scans = groupsIn(p, scope, "selective_scan");
    expect(scans).toHaveLength(1);
    const g = scans[0]!;
    expect(opsOf(g)).toEqual(["add", "softplus", "selectiveScan", "mul", "add", "cast", "silu", "mul"]);
    expect(paramName(g.roles.dtBias)).toBe(`${scope}.dt_proj.bias`);
    expect(g.roles.dtRaw!.op).toBe("linear");
    expect(paramName(g.roles.dtRaw!.inputs[1])).toBe(`${scope}.dt_proj.weight`);
    expect(paramName(g.roles.D)).toBe(`${scope}.D`);
    expect(g.roles.z!.op).toBe("slice");
    expect(g.outputs.map((n) => n.op)).toEqual(["mul"]);
    expect(decisionsOf(p, g).filter((d) => d.accepted).map((d) => d.what)).toEqual([
      "prologue softplus(dt + dt_bias)",
      "epilogue D skip (y + D·x)",
      "epilogue cast",
      "epilogue gate y·silu(z)",
    ]);
  });

  it("GEMMs: in_proj, x_proj, dt_proj (its bias add taken by the scan), out_proj + residual", () => {
    const gemms = groupsIn(p, scope, "gemm");
    expect(gemms.map((g) => paramName(g.anchor!.inputs[1]))).toEqual(
      ["in_proj", "x_proj", "dt_proj", "out_proj"].map((w) => `${scope}.${w}.weight`),
    );
    expect(gemms.map(opsOf)).toEqual([["linear"], ["linear"], ["linear"], ["linear", "add"]]);
    const dtRej = decisionsOf(p, gemms[2]!);
    expect(dtRej).toEqual([expect.objectContaining({ accepted: false, what: "epilogue add", reason: "already computed by another group" })]);
    expect(groupsIn(p, scope, "conv1d").map(opsOf)).toEqual([["conv1d", "silu"]]);
    const prep = p.groups.filter((g) => g.kind === "param_prep" && scopeOf(g) === scope);
    expect(prep.map(opsOf)).toEqual([["exp", "neg"]]);
  });
});

// ---- lm_head ---------------------------------------------------------------------------------

describe("lm_head", () => {
  it.each(Object.entries(ALL))("%s: the logits GEMM rejects an epilogue: logits are a graph output", (_n, m) => {
    const p = planOf(m);
    const head = groupsIn(p, "lm_head", "gemm");
    expect(head).toHaveLength(1);
    expect(opsOf(head[0]!)).toEqual(["linear"]);
    expect(decisionsOf(p, head[0]!)).toEqual([expect.objectContaining({ accepted: false, what: "epilogue", reason: "the value is a graph output" })]);
    expect(p.groups[p.groups.length - 1]).toBe(head[0]); // nothing runs after the logits
    const fin = groupsIn(p, "final_norm");
    expect(fin).toHaveLength(1);
    expect(fin[0]!.anchor!.op).toBe(m.config.norm === "rmsnorm" ? "rmsnorm" : "layernorm");
  });
});

// ---- custom elementwise mixers ----------------------------------------------------------------

describe("custom elementwise mixers", () => {
  it("gluish (silu(x)·x): residual add + next RMSNorm in one row kernel storing the sum and the normalised value", () => {
    const p = planOf(gluish);
    const g = groupsIn(p, "layers.1.norm", "row");
    expect(g).toHaveLength(1);
    // layer 0's mixer (silu, mul) and residual add ride in front of layer 1's norm
    expect(opsOf(g[0]!)).toEqual(["silu", "mul", "add", "rmsnorm"]);
    const [, , add, norm] = g[0]!.nodes;
    expect(add!.scope).toBe("layers.0");
    expect(g[0]!.outputs).toEqual([add, norm]);
    expect(decisionsOf(p, g[0]!).find((d) => d.what === "prologue add")?.reason).toMatch(/also stored as an output/);
    // same for the final norm, whose residual sum has no other reader: one output
    const f = groupsIn(p, "final_norm", "row")[0]!;
    expect(opsOf(f)).toEqual(["silu", "mul", "add", "rmsnorm"]);
    expect(f.outputs.map((n) => n.op)).toEqual(["rmsnorm"]);
    // the kernel really stores twice
    const e = emitProject(gluish);
    const k = e.kernels.find((k) => k.spec.nodes.some((n) => n.key === norm!.key))!;
    expect(k.source.match(/st::st\(/g)).toHaveLength(2);
  });

  it("swishmix (silu(x)): the norm takes silu and the residual add as its epilogue: one row kernel per block storing only the sum", () => {
    const p = planOf(swishmix);
    for (const l of [0, 1]) {
      const g = groupsIn(p, `layers.${l}.norm`, "row");
      expect(g, `layer ${l}`).toHaveLength(1);
      expect(opsOf(g[0]!)).toEqual(["rmsnorm", "silu", "add"]);
      expect(g[0]!.anchor!.scope).toBe(`layers.${l}.norm`);
      expect(g[0]!.outputs.map((n) => n.op)).toEqual(["add"]); // normalised value never stored
      expect(decisionsOf(p, g[0]!).filter((d) => d.accepted).map((d) => d.what)).toEqual(["epilogue silu", "epilogue add"]);
    }
    expect(p.groups.map((g) => g.kind)).toEqual(["embedding", "row", "row", "row", "gemm"]);
  });
});

// ---- invariants of every plan ---------------------------------------------------------------

describe.each(Object.entries(ALL))("plan invariants: %s", (_name, m) => {
  const g = m.toGraph();
  const p = fuse(g);
  const nodes = graphNodes(g);

  it("groups are disjoint and every computed node is in exactly one group", () => {
    const count = new Map<string, number>();
    for (const grp of p.groups) for (const n of grp.nodes) count.set(n.key, (count.get(n.key) ?? 0) + 1);
    for (const [k, c] of count) expect(c, k).toBe(1);
    for (const n of nodes) {
      const needs = !isSource(n) && !isView(n);
      expect(count.get(n.key) ?? 0, `${n.op} ${n.key} @ ${n.scope}`).toBe(needs ? 1 : 0);
      if (needs) expect(p.groups.find((x) => x.id === p.groupOf.get(n.key))!.nodes).toContain(n);
    }
    expect(new Set(p.groups.map((x) => x.id)).size).toBe(p.groups.length);
  });

  it("group order respects dependencies; outputs are the values read outside", () => {
    const pos = new Map(p.groups.map((x, i) => [x.id, i]));
    const readers = new Map<string, Set<number>>();
    p.groups.forEach((grp, i) => {
      for (const n of grp.nodes) {
        for (const inp of n.inputs) {
          const b = viewBase(inp);
          const gi = p.groupOf.get(b.key);
          if (gi === undefined || gi === grp.id) continue;
          expect(pos.get(gi)!, `${n.op}@${n.scope} reads ${b.op}@${b.scope}`).toBeLessThan(i);
          if (!readers.has(b.key)) readers.set(b.key, new Set());
          readers.get(b.key)!.add(grp.id);
        }
      }
      // nodes in topological order within the group
      for (let j = 1; j < grp.nodes.length; j++) expect(p.order.get(grp.nodes[j]!.key)!).toBeGreaterThan(p.order.get(grp.nodes[j - 1]!.key)!);
      if (grp.anchor) expect(grp.nodes).toContain(grp.anchor);
    });
    const outs = new Set(Object.values(g.outputs).map((n) => n.key));
    for (const grp of p.groups) {
      const expected = grp.nodes.filter((n) => outs.has(n.key) || readers.has(n.key));
      expect(grp.outputs, `group ${grp.id}`).toEqual(expected);
      expect(grp.outputs.length, `group ${grp.id} stores nothing`).toBeGreaterThan(0);
    }
  });

  it("every decision has a non-empty reason and names a real group", () => {
    const ids = new Set(p.groups.map((x) => x.id));
    for (const d of p.decisions) {
      expect(d.reason.trim().length, d.what).toBeGreaterThan(0);
      expect(d.what.trim().length).toBeGreaterThan(0);
      expect(ids.has(d.group)).toBe(true);
    }
    expect(p.decisions.some((d) => !d.accepted)).toBe(true);
    const text = explainFusion(p);
    expect(text.split("\n").filter((l) => l.startsWith("group "))).toHaveLength(p.groups.length);
    expect(text).toContain("rejected epilogue: the value is a graph output");
  });

  it("memory plan: overlapping lifetimes never overlap in bytes; peak covers every slot; prep slots live to the end", () => {
    const mem = planMemory(p, [g.outputs.logits!], { maxBatch: 2, maxSeq: m.config.seqLen });
    const last = p.groups.length - 1;
    const s = mem.slots;
    expect(s.length).toBe(p.groups.reduce((a, x) => a + x.outputs.length, 0));
    expect(new Set(s.map((x) => x.name)).size).toBe(s.length);
    let bad = 0;
    for (let i = 0; i < s.length; i++) {
      const a = s[i]!;
      expect(a.offset % mem.alignment).toBe(0);
      expect(a.bytes % mem.alignment).toBe(0);
      expect(a.from).toBeLessThanOrEqual(a.to);
      expect(a.offset + a.bytes).toBeLessThanOrEqual(mem.peakBytes);
      for (let j = i + 1; j < s.length; j++) {
        const b = s[j]!;
        const live = a.from <= b.to && b.from <= a.to;
        const bytes = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes;
        if (live && bytes) {
          bad++;
          expect.fail(`${a.name} [${a.from},${a.to}] @${a.offset}+${a.bytes} overlaps ${b.name} [${b.from},${b.to}] @${b.offset}+${b.bytes}`);
        }
      }
    }
    expect(bad).toBe(0);
    expect(mem.peakBytes).toBeGreaterThanOrEqual(Math.max(...s.map((x) => x.bytes)));
    expect(mem.peakBytes).toBeLessThanOrEqual(s.reduce((a, x) => a + x.bytes, 0));
    const slotOf = new Map(s.map((x) => [x.key, x]));
    p.groups.forEach((grp, gi) => {
      for (const o of grp.outputs) {
        const slot = slotOf.get(o.key)!;
        expect(slot.from).toBe(gi);
        if (grp.kind === "param_prep") expect(slot.to, slot.name).toBe(last);
      }
      // every stored value a group reads is live while it runs
      for (const n of grp.nodes)
        for (const i of n.inputs) {
          const slot = slotOf.get(viewBase(i).key);
          if (slot) expect(slot.from <= gi && gi <= slot.to, `${slot.name} read by group ${grp.id}`).toBe(true);
        }
    });
    expect(slotOf.get(g.outputs.logits!.key)!.to).toBe(last);
  });
});
