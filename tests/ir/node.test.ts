/** Node content keys, and shape-rule errors that point at the DSL line which made the bad node. */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ops } from "../../compiler/dsl/index.js";
import { StrataError } from "../../compiler/ir/errors.js";
import { contentKey, mkNode, stableJson } from "../../compiler/ir/node.js";

const THIS_FILE = fileURLToPath(import.meta.url);
const LINES = readFileSync(THIS_FILE, "utf8").split("\n");

/** 1-based line of the call tagged with the comment `// @marker` in this file. */
function lineOf(marker: string): number {
  const i = LINES.findIndex((l) => l.includes(`// @${marker}`) && !l.includes("${"));
  expect(i, `marker ${marker}`).toBeGreaterThanOrEqual(0);
  return i + 1;
}

function catchErr(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StrataError);
    return e as StrataError;
  }
  throw new Error("expected a StrataError");
}

describe("content keys", () => {
  const x = ops.input("x", "f32", ["B", "T", 8]);

  it("equal content gives the same key whatever the attr key order", () => {
    const a = mkNode("rmsnorm", [x, ops.input("w", "f32", [8])], { eps: 1e-5, oneP: false });
    const b = mkNode("rmsnorm", [x, ops.input("w", "f32", [8])], { oneP: false, eps: 1e-5 });
    expect(a).not.toBe(b);
    expect(a.key).toBe(b.key);
    expect(a.key).toMatch(/^[0-9a-f]{16}$/);
    // nested objects too
    const p1 = mkNode("param", [], { name: "w", init: { kind: "normal", std: 0.02 } }, { dtype: "f32", shape: [8, 8] });
    const p2 = mkNode("param", [], { init: { std: 0.02, kind: "normal" }, name: "w" }, { dtype: "f32", shape: [8, 8] });
    expect(p1.key).toBe(p2.key);
    expect(stableJson({ b: 1, a: { d: [1, 2], c: null } })).toBe('{"a":{"c":null,"d":[1,2]},"b":1}');
  });

  it("different attrs, inputs, dtype or shape give different keys", () => {
    const s1 = ops.scale(x, 2);
    expect(ops.scale(x, 2).key).toBe(s1.key);
    expect(ops.scale(x, 3).key).not.toBe(s1.key);
    expect(ops.addScalar(x, 2).key).not.toBe(s1.key);
    const y = ops.input("y", "f32", ["B", "T", 8]);
    expect(ops.scale(y, 2).key).not.toBe(s1.key);
    expect(ops.input("x", "bf16", ["B", "T", 8]).key).not.toBe(x.key);
    expect(ops.input("x", "f32", ["B", "T", 16]).key).not.toBe(x.key);
    expect(ops.add(x, y).key).not.toBe(ops.add(y, x).key);
  });

  it("provenance (source line, scope) is not part of the key", () => {
    const a = ops.exp(x);
    const b = ops.exp(x);
    expect(a.src?.line).not.toBe(b.src?.line);
    expect(a.key).toBe(b.key);
    expect(contentKey("exp", a.dtype, a.shape, a.attrs, [x])).toBe(a.key);
  });
});

describe("shape-rule errors carry the DSL source location", () => {
  it("linear with a mismatched weight names this file and line, and what would be valid", () => {
    const x = ops.input("x", "bf16", ["B", "T", 64]);
    const w = ops.input("w", "bf16", [128, 32]);
    const e = catchErr(() => ops.linear(x, w)); // @bad-linear
    expect(e.loc?.file).toBe(THIS_FILE);
    expect(e.loc?.line).toBe(lineOf("bad-linear"));
    expect(e.message).toContain(`${THIS_FILE}:${lineOf("bad-linear")}:`);
    expect(e.message).toMatch(/^.*: linear: weight is \[out, in\] = \[128, 32\] but the input's last dim is 64; valid: weight \[N, 64\]/);
    expect(e.message).toContain("inputs: input[B, T, 64]:bf16, input[128, 32]:bf16");
  });

  it("broadcast and arity errors also point at the calling line", () => {
    const a = ops.input("a", "f32", ["B", 4]);
    const b = ops.input("b", "f32", ["B", 5]);
    const e = catchErr(() => ops.add(a, b)); // @bad-add
    expect(e.loc).toMatchObject({ file: THIS_FILE, line: lineOf("bad-add") });
    expect(e.message).toMatch(/add: shapes \[B, 4\] and \[B, 5\] do not broadcast/);

    const e2 = catchErr(() => mkNode("exp", [a, b])); // @bad-arity
    expect(e2.loc).toMatchObject({ file: THIS_FILE, line: lineOf("bad-arity") });
    expect(e2.message).toContain("exp: takes 1 inputs, got 2");
  });

  it("a good node records its source line too", () => {
    const x = ops.input("x", "f32", [2, 3]);
    const y = ops.relu(x); // @good
    expect(y.src).toMatchObject({ file: THIS_FILE, line: lineOf("good") });
  });
});
