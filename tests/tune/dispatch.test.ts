/**
 * Per-bucket tile dispatch: a project whose --max-tokens falls in a larger bucket than a tuned
 * entry still runs the smaller bucket's tuned tiles when the run-time M is that small (decode
 * batches), through a branch in the GEMM launcher; without a database nothing changes.
 */
import { execa } from "execa";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { emitProject } from "../../compiler/codegen/project.js";
import { findNvcc } from "../../compiler/nvcc/driver.js";
import type { TuningDb } from "../../compiler/tune/db.js";
import { readResults, resultsToEntries } from "../../compiler/tune/results.js";
import tinyHybrid from "../../examples/tiny-hybrid.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// made-up numbers (a fixture, not a measurement): tiny-hybrid's in_proj (N 1288) tuned at 64 rows
const FIXTURE = path.join(ROOT, "tests/tune/fixtures/results-tiny-hybrid.fixture.json");

describe("per-bucket tile dispatch", () => {
  const db: TuningDb = { entries: resultsToEntries(readResults(FIXTURE)).entries, source: "fixture" };
  const big = emitProject(tinyHybrid, { maxBatch: 4, tuning: db }).program; // 256 tokens per call: bucket m512
  const inProj = big.kernels.filter((k) => k.spec.template === "gemm.cu.hbs" && k.spec.tiles.n === 1288);

  it("the launcher takes the m64 tiles for up to 64 rows and its own bucket's tiles above", () => {
    expect(inProj.length).toBeGreaterThan(0);
    for (const k of inProj) {
      expect(k.spec.tiles).toMatchObject({ bm: 128, bn: 256, stages: 4, ws: true, tilesFrom: "default", dispatch: "M≤64: 64×128×4" });
      const lines = k.source.split("\n");
      const gemv = lines.findIndex((l) => l.includes("gemv_launch"));
      const small = lines.findIndex((l) => l.includes("if (M <= 64) return strata::gemm::gemm_launch<strata::gemm::WgmmaConfig<64, 128, 4>, Epi>"));
      const rest = lines.findIndex((l) => l.includes("return strata::gemm::gemm_launch<strata::gemm::WsConfig<128, 256, 4>, Epi>"));
      expect(gemv).toBeGreaterThan(0);
      expect(small).toBeGreaterThan(gemv); // ≤ 8 rows still take the GEMV first
      expect(rest).toBeGreaterThan(small);
    }
    // kernels with no smaller-bucket entry keep one launch
    const others = big.kernels.filter((k) => k.spec.template === "gemm.cu.hbs" && k.spec.tiles.n === 256);
    for (const k of others) {
      expect(k.spec.tiles.dispatch).toBeUndefined();
      expect(k.source).not.toMatch(/if \(M <= \d+\) return strata::gemm::gemm_launch/);
    }
  });

  it("the project's own bucket is not dispatched twice, and no database means no dispatch", () => {
    const own = emitProject(tinyHybrid, { tuning: db }).program; // bucket m64 itself
    for (const k of own.kernels.filter((x) => x.spec.template === "gemm.cu.hbs")) expect(k.spec.tiles.dispatch).toBeUndefined();
    const plain = emitProject(tinyHybrid, { maxBatch: 4 }).program;
    for (const k of plain.kernels.filter((x) => x.spec.template === "gemm.cu.hbs")) expect(k.source).not.toMatch(/if \(M <= \d+\) return strata::gemm/);
  });

  const nvcc = findNvcc();
  it.skipIf(!nvcc)(
    "the dispatching launcher compiles for sm_90a",
    async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), "strata-dispatch-"));
      try {
        const f = path.join(dir, "k.cu");
        writeFileSync(f, inProj[0]!.source.replaceAll("__KERNEL__", "dispatch_test"));
        const r = await execa(nvcc!, ["-std=c++17", "-arch=sm_90a", "-I", path.join(ROOT, "templates/include"), "-c", f, "-o", path.join(dir, "k.o")], { reject: false });
        expect(r.exitCode, r.stderr).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    240_000,
  );
});
