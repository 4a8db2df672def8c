/** Shared checks for the DSL tests. */
import { expect } from "vitest";
import { graphParams } from "../../compiler/ir/graph.js";
import type { Graph } from "../../compiler/ir/graph.js";
import type { ModelDef } from "../../compiler/dsl/index.js";

const NAME_RE = /^(embedding\.weight|lm_head\.weight|final_norm\.(weight|bias)|layers\.\d+\.norm\.(weight|bias)|layers\.\d+\.mixer\.[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*)$/i;
const OUT_PROJ_RE = /\.(o_proj|fc2|out_proj)\.weight$/;
const IN_PROJ_RE = /\.(qkv|fc1|in_proj|x_proj)\.weight$|^(embedding|lm_head)\.weight$/;

/** Unique, well-formed names; an init spec on every param; Megatron's scaled init on out projections. */
export function checkParams(m: ModelDef, g: Graph = m.toGraph()): void {
  const params = graphParams(g);
  const names = params.map((p) => p.attrs.name as string);
  expect(new Set(names).size).toBe(names.length);
  const L = m.config.initLayers ?? m.layers.length; // Megatron-style scaled init counts these
  for (const p of params) {
    const name = p.attrs.name as string;
    expect(name).toMatch(NAME_RE);
    const init = p.attrs.init as { kind: string; std?: number } | undefined;
    expect(init && typeof init.kind === "string", `${name} has an init spec`).toBe(true);
    if (OUT_PROJ_RE.test(name)) expect(init, name).toEqual({ kind: "normal", std: m.config.initStd / Math.sqrt(2 * L) });
    else if (IN_PROJ_RE.test(name)) expect(init, name).toEqual({ kind: "normal", std: m.config.initStd });
  }
  const layersSeen = new Set(names.filter((n) => n.startsWith("layers.")).map((n) => Number(n.split(".")[1])));
  expect(layersSeen.size).toBe(m.layers.length);
}

export function paramCount(g: Graph): number {
  return graphParams(g).reduce((a, p) => a + p.shape.reduce<number>((x, y) => x * (y as number), 1), 0);
}
