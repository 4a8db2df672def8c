/** The op registry covers every op the DSL exposes; every record is documented and has semantics. */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ops } from "../../compiler/dsl/index.js";
import { allOps, getOp, OP_NAMES, ELEMENTWISE_OPS } from "../../compiler/ir/registry.js";
import { REFS } from "../../compiler/interp/refs.js";
import "../../compiler/ir/ops.js";

const DSL_OPS_FILE = fileURLToPath(new URL("../../compiler/dsl/ops.ts", import.meta.url));

/** Each `export const|function NAME` in dsl/ops.ts with the op names its body passes to mkNode. */
function dslExports(): Map<string, string[]> {
  const src = readFileSync(DSL_OPS_FILE, "utf8");
  const out = new Map<string, string[]>();
  const parts = src.split(/^export (?:const|function) /m).slice(1);
  for (const part of parts) {
    const name = /^(\w+)/.exec(part)![1]!;
    out.set(name, [...part.matchAll(/mkNode\("(\w+)"/g)].map((m) => m[1]!));
  }
  return out;
}

/** DSL functions built from other DSL ops rather than one IR op. */
const COMPOSITES: Record<string, string[]> = { split: ["slice"], apply: [...OP_NAMES] };

describe("op registry", () => {
  const exported = dslExports();

  it("the source scan sees every function the DSL's ops module exports", () => {
    const runtime = Object.entries(ops)
      .filter(([, v]) => typeof v === "function")
      .map(([k]) => k)
      .sort();
    expect([...exported.keys()].sort()).toEqual(runtime);
    expect(runtime.length).toBeGreaterThan(40);
  });

  it("has a record for every op the DSL exposes", () => {
    const known = new Set(allOps().map((d) => d.name));
    for (const [fn, opNames] of exported) {
      const used = opNames.length ? opNames : COMPOSITES[fn];
      expect(used, `ops.${fn} makes no IR node and is not a known composite`).toBeDefined();
      expect(used!.length, `ops.${fn}`).toBeGreaterThan(0);
      for (const name of used!) expect(known.has(name as never), `ops.${fn} → op '${name}' has no registry record`).toBe(true);
    }
  });

  it("every record has a doc string, a reference implementation, a kind and a sane arity", () => {
    const defs = allOps();
    expect(defs.length).toBeGreaterThanOrEqual(45);
    for (const d of defs) {
      expect(typeof d.doc, d.name).toBe("string");
      expect(d.doc.trim().length, `${d.name} doc`).toBeGreaterThan(0);
      expect(typeof REFS[d.name], `${d.name} ref`).toBe("function");
      expect(typeof d.infer, `${d.name} infer`).toBe("function");
      expect(["source", "elementwise", "rowwise", "reduction", "anchor", "state", "view"]).toContain(d.kind);
      const [lo, hi] = d.arity;
      expect(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi >= lo, `${d.name} arity`).toBe(true);
      expect(getOp(d.name)).toBe(d);
    }
  });

  it("stateful ops name the op that computes their outgoing state", () => {
    for (const d of allOps().filter((x) => x.state)) {
      if (d.state!.stateOp) expect(() => getOp(d.state!.stateOp!), d.name).not.toThrow();
      expect(["ssm", "conv", "kv"]).toContain(d.state!.kind);
    }
    expect(allOps().filter((x) => x.state).map((x) => x.name)).toEqual(expect.arrayContaining(["attention", "conv1d", "ssdScan", "selectiveScan"]));
  });

  it("OP_NAMES and the registry agree; traits are consistent", () => {
    expect(allOps().map((d) => d.name).sort()).toEqual([...OP_NAMES].sort());
    for (const d of allOps()) {
      expect(d.kind === "elementwise", `${d.name} elementwise`).toBe((ELEMENTWISE_OPS as readonly string[]).includes(d.name));
      if (d.companionOf) expect(getOp(d.companionOf).state?.stateOp, `${d.name} companion`).toBe(d.name);
      if (d.family) expect(["anchor", "state", "reduction"]).toContain(d.kind);
      if (d.inPlace !== undefined) expect(d.inPlace).toBeLessThan(d.arity[0]);
    }
    // rope reads its rotation partner: never an elementwise epilogue
    expect(getOp("rope").needsNeighbour).toBe(true);
    expect(getOp("rope").kind).toBe("rowwise");
  });

  it("getOp names the unknown op and lists the known ones", () => {
    expect(() => getOp("nope")).toThrow(/unknown op 'nope' \(known: .*linear.*\)/);
  });
});
