/**
 * The compile cache key follows the device library's nested headers: a kernel that includes
 * gemm.cuh (or any family header) depends on the strata/ foundation headers it pulls in, each
 * resolved relative to the including header's folder, so editing strata/ptx.cuh or
 * strata/math.cuh invalidates every cached object that uses it.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { INCLUDE_DIR } from "../../compiler/codegen/templates.js";
import { collectHeaders } from "../../compiler/nvcc/driver.js";

const rel = (p: string | undefined) => (p ? path.relative(INCLUDE_DIR, p) : undefined);

describe("collectHeaders over templates/include", () => {
  it.each([
    ["gemm.cuh", ["strata/base.cuh", "strata/bf16.cuh", "strata/ptx.cuh", "strata/tma.cuh"]],
    ["attention.cuh", ["strata/base.cuh", "strata/bf16.cuh", "strata/math.cuh", "strata/ptx.cuh", "strata/tma.cuh"]],
    ["ssd.cuh", ["strata/base.cuh", "strata/bf16.cuh", "strata/math.cuh", "strata/pdl.cuh", "strata/ptx.cuh"]],
    ["selective_scan.cuh", ["strata/base.cuh", "strata/math.cuh"]],
    ["conv1d.cuh", ["strata/base.cuh", "strata/math.cuh", "strata/pdl.cuh"]],
    ["strata_ops.cuh", ["strata/base.cuh", "strata/bf16.cuh", "strata/math.cuh"]],
    ["strata_common.cuh", ["strata/base.cuh", "strata/bf16.cuh", "strata/math.cuh", "strata/ptx.cuh"]],
  ])("%s reaches its strata/ headers", (header, want) => {
    const deps = collectHeaders(`#include "${header}"\n`, undefined, [INCLUDE_DIR]);
    const found = deps.map((d) => rel(d.path)).filter((p): p is string => !!p);
    expect(found[0]).toBe(header);
    expect(found.filter((p) => p.startsWith("strata/")).sort()).toEqual(want);
    for (const d of deps.filter((x) => x.path)) expect(d.sha256).toMatch(/^[0-9a-f]{64}$/);
    // toolkit headers are recorded by name only
    expect(deps.some((d) => d.spec === "cuda_bf16.h" && d.path === undefined)).toBe(true);
  });

  it("a nested quoted include resolves next to the including header first, and a change there changes the hash", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "strata-includes-"));
    try {
      mkdirSync(path.join(dir, "lib", "strata"), { recursive: true });
      // lib/strata/base.cuh shadows nothing: the top-level base.cuh must not be picked for "base.cuh" inside strata/
      writeFileSync(path.join(dir, "lib", "base.cuh"), "// top-level\n");
      writeFileSync(path.join(dir, "lib", "strata", "base.cuh"), "// nested v1\n");
      writeFileSync(path.join(dir, "lib", "strata", "ptx.cuh"), '#include "base.cuh"\n');
      writeFileSync(path.join(dir, "lib", "k.cuh"), '#include "strata/ptx.cuh"\n');
      const hashes = () => collectHeaders('#include "k.cuh"\n', undefined, [path.join(dir, "lib")]).map((d) => [path.relative(dir, d.path!), d.sha256]);
      const a = hashes();
      expect(a.map(([p]) => p)).toEqual(["lib/k.cuh", "lib/strata/ptx.cuh", "lib/strata/base.cuh"]);
      writeFileSync(path.join(dir, "lib", "strata", "base.cuh"), "// nested v2\n");
      const b = hashes();
      expect(b[2]![1]).not.toBe(a[2]![1]);
      expect(b.slice(0, 2)).toEqual(a.slice(0, 2));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
