/** The serialized IR: exact JSON round trips for every example, and fromJson's rejections. */
import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { fromJson, graphNodes, toJson, toJsonText, type GraphJson } from "../../compiler/ir/graph.js";
import { StrataError } from "../../compiler/ir/errors.js";
import { isModelDef, type ModelDef } from "../../compiler/dsl/model.js";
import { deriveStep } from "../../compiler/passes/derive-step.js";
import tinyHybrid from "../../examples/tiny-hybrid.js";

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../examples");
const exampleFiles = readdirSync(EXAMPLES).filter((f) => f.endsWith(".ts")).sort();

async function loadExample(f: string): Promise<ModelDef> {
  const m = ((await import(pathToFileURL(path.join(EXAMPLES, f)).href)) as { default: unknown }).default;
  if (!isModelDef(m)) throw new Error(`${f} does not export a model`);
  return m;
}

function roundTrip(text: string): string {
  return toJsonText(fromJson(JSON.parse(text)));
}

describe("JSON round trip", () => {
  it("covers every example (tiny ones and the 8B models)", () => {
    expect(exampleFiles).toEqual(expect.arrayContaining(["tiny-hybrid.ts", "tiny-mamba2.ts", "mamba2-hybrid-8b.ts", "transformer-8b.ts"]));
    expect(exampleFiles.length).toBeGreaterThanOrEqual(10);
  });

  it.each(exampleFiles)("%s: toJsonText(fromJson(JSON.parse(text))) === text", async (f) => {
    const g = (await loadExample(f)).toGraph();
    const text = toJsonText(g);
    expect(roundTrip(text)).toBe(text);
    const back = fromJson(JSON.parse(text));
    expect(back.outputs.logits!.key).toBe(g.outputs.logits!.key);
    expect(graphNodes(back).length).toBe(graphNodes(g).length);
  });

  it("decode-step and prefill graphs (with state inputs, symbolic P+1) round-trip too", () => {
    const s = deriveStep(tinyHybrid.toGraph());
    expect(toJsonText(s.step)).toMatch(/"P\+1"/);
    expect(graphNodes(s.step).some((n) => n.op === "input" && String(n.attrs.name).startsWith("state."))).toBe(true);
    for (const g of [s.step, s.prefill]) {
      const text = toJsonText(g);
      expect(roundTrip(text)).toBe(text);
    }
  });
});

describe("fromJson rejects tampered IR, naming the node", () => {
  const text = toJsonText(tinyHybrid.toGraph());
  const fresh = (): GraphJson => JSON.parse(text) as GraphJson;
  const firstOf = (j: GraphJson, op: string) => j.nodes.find((n) => n.op === op)!;

  function rejects(j: GraphJson): string {
    try {
      fromJson(j);
    } catch (e) {
      expect(e).toBeInstanceOf(StrataError);
      return (e as Error).message;
    }
    throw new Error("fromJson accepted tampered IR");
  }

  it("a tampered key", () => {
    const j = fresh();
    const n = firstOf(j, "rmsnorm");
    const real = n.key;
    n.key = "0123456789abcdef";
    expect(rejects(j)).toBe(`invalid IR JSON: node ${n.id} key 0123456789abcdef does not match its content (${real})`);
  });

  it("a changed attribute (the stored key no longer matches)", () => {
    const j = fresh();
    const n = firstOf(j, "rmsnorm");
    n.attrs.eps = 1e-3;
    expect(rejects(j)).toMatch(new RegExp(`^invalid IR JSON: node ${n.id} key ${n.key} does not match its content`));
  });

  it("a dangling input reference", () => {
    const j = fresh();
    const n = firstOf(j, "linear");
    n.inputs[1] = j.nodes.length + 5;
    expect(rejects(j)).toBe(`invalid IR JSON: node ${n.id} reads node ${j.nodes.length + 5}, which is not defined before it`);
  });

  it("a forward input reference (not topologically ordered)", () => {
    const j = fresh();
    const n = firstOf(j, "linear");
    n.inputs[0] = n.id;
    expect(rejects(j)).toMatch(new RegExp(`^invalid IR JSON: node ${n.id} reads node ${n.id}, which is not defined before it`));
  });

  it("a wrong stored shape", () => {
    const j = fresh();
    const n = firstOf(j, "linear");
    const good = [...n.shape];
    n.shape = [...good.slice(0, -1), 999];
    expect(rejects(j)).toBe(`invalid IR JSON: node ${n.id} (linear) stores ${n.dtype}[${n.shape}] but its rule gives ${n.dtype}[${good}]`);
  });

  it("a wrong stored dtype", () => {
    const j = fresh();
    const n = firstOf(j, "rmsnorm");
    n.dtype = n.dtype === "f32" ? "f64" : "f32";
    expect(rejects(j)).toMatch(new RegExp(`^invalid IR JSON: node ${n.id} \\(rmsnorm\\) stores ${n.dtype}`));
  });

  it("an unknown op", () => {
    const j = fresh();
    const n = firstOf(j, "softplus");
    n.op = "frobnicate";
    const msg = rejects(j);
    expect(msg).toMatch(new RegExp(`^invalid IR JSON: node ${n.id} \\(frobnicate\\): unknown op 'frobnicate'`));
    expect(msg).toContain("known: ");
  });

  it("an input that breaks the op's shape rule, and a wrong input count", () => {
    const j = fresh();
    const n = firstOf(j, "linear");
    const tokens = j.nodes.find((x) => x.op === "input")!;
    n.inputs[0] = tokens.id; // i32 tokens [B, T] into linear
    expect(rejects(j)).toMatch(new RegExp(`^invalid IR JSON: node ${n.id} \\(linear\\): input must be a floating tensor, got i32`));

    const j2 = fresh();
    const m = firstOf(j2, "linear");
    m.inputs = [m.inputs[0]!];
    expect(rejects(j2)).toBe(`invalid IR JSON: node ${m.id} (linear): takes 2 inputs, got 1`);
  });

  it("schema violations and a dangling output", () => {
    const j = fresh() as unknown as { nodes: { dtype: string }[] };
    j.nodes[0]!.dtype = "f8";
    expect(rejects(j as unknown as GraphJson)).toMatch(/^invalid IR JSON at nodes\.0\.dtype: /);

    const j2 = fresh();
    j2.outputs.logits = j2.nodes.length;
    expect(rejects(j2)).toBe(`invalid IR JSON: output 'logits' names node ${j2.nodes.length}, which does not exist`);

    const j3 = fresh() as unknown as { format: string };
    j3.format = "strata-ir/0";
    expect(rejects(j3 as unknown as GraphJson)).toMatch(/^invalid IR JSON at format: /);
  });

  it("toJson is deterministic: ids in topological order, inputs before users", () => {
    const j = toJson(tinyHybrid.toGraph());
    j.nodes.forEach((n, i) => {
      expect(n.id).toBe(i);
      for (const x of n.inputs) expect(x).toBeLessThan(i);
    });
    expect(toJsonText(tinyHybrid.toGraph())).toBe(text);
  });
});
