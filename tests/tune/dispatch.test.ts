/**
 * Per-bucket tile dispatch: a project whose --max-tokens falls in a larger bucket than a tuned
 * entry still runs the smaller bucket's tuned tiles when the run-time M is that small (decode
 * batches), through a branch in the GEMM launcher; buckets without an entry (and projects without a
 * database) take the untuned wave-model tiles of their size (tiles.ts defaultSmallerBuckets).
 */
import { execa } from "execa";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { emitProject } from "../../compiler/codegen/project.js";
import { defaultSmallerBuckets, defaultTiles, gemmConfigType } from "../../compiler/kernels/tiles.js";
import { findNvcc } from "../../compiler/nvcc/driver.js";
import type { TuningDb } from "../../compiler/tune/db.js";
import { readResults, resultsToEntries } from "../../compiler/tune/results.js";
import tinyHybrid from "../../examples/tiny-hybrid.js";
import hybrid8b from "../../examples/mamba2-hybrid-8b.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// made-up numbers (a fixture, not a measurement): tiny-hybrid's in_proj (N 1288) tuned at 64 rows
const FIXTURE = path.join(ROOT, "tests/tune/fixtures/results-tiny-hybrid.fixture.json");

describe("per-bucket tile dispatch", () => {
  const db: TuningDb = { entries: resultsToEntries(readResults(FIXTURE)).entries, source: "fixture" };
  const bigProject = emitProject(tinyHybrid, { maxBatch: 4, tuning: db }); // 256 tokens per call: bucket m512
  const big = bigProject.program;
  const inProj = big.kernels.filter((k) => k.spec.template === "gemm.cu.hbs" && k.spec.tiles.n === 1288);

  it("the launcher takes the m64 tiles for up to 64 rows and its own bucket's tiles above", () => {
    expect(inProj.length).toBeGreaterThan(0);
    const own = defaultTiles("forward", "wgmma", (bigProject.manifest.maxTokens as number), 1288);
    for (const k of inProj) {
      expect(k.spec.tiles).toMatchObject({ ...own, tilesFrom: "default", dispatch: "M≤64: 64×128×4" });
      const lines = k.source.split("\n");
      const gemv = lines.findIndex((l) => l.includes("gemv_launch"));
      const small = lines.findIndex((l) => l.includes("if (M <= 64) return strata::gemm::gemm_launch<strata::gemm::WgmmaConfig<64, 128, 4>, Epi>"));
      const rest = lines.findIndex((l) => l.includes(`return strata::gemm::gemm_launch<${gemmConfigType(own)}, Epi>`));
      expect(gemv).toBeGreaterThan(0);
      expect(small).toBeGreaterThan(gemv); // ≤ 8 rows still take the GEMV first
      expect(rest).toBeGreaterThan(small);
    }
    // kernels with no smaller-bucket entry dispatch to the untuned tiles of the smaller buckets
    // where those differ from their own (tiles.ts defaultSmallerBuckets)
    const others = big.kernels.filter((k) => k.spec.template === "gemm.cu.hbs" && k.spec.tiles.n === 256);
    expect(others.length).toBeGreaterThan(0);
    for (const k of others) {
      const want = defaultSmallerBuckets("wgmma", (bigProject.manifest.maxTokens as number), 256, defaultTiles("forward", "wgmma", (bigProject.manifest.maxTokens as number), 256), 8);
      for (const d of want) expect(k.source).toContain(`if (M <= ${d.maxM}) return strata::gemm::gemm_launch<${gemmConfigType(d.tiles)}, Epi>`);
      if (!want.length) expect(k.source).not.toMatch(/if \(M <= \d+\) return strata::gemm::gemm_launch/);
    }
  });

  it("the project's own bucket is not dispatched twice; no database dispatches to the untuned tiles of smaller buckets", () => {
    const own = emitProject(tinyHybrid, { tuning: db }).program; // bucket m64 itself
    for (const k of own.kernels.filter((x) => x.spec.template === "gemm.cu.hbs")) expect(k.spec.tiles.dispatch).toBeUndefined();
    const plainProject = emitProject(tinyHybrid, { maxBatch: 4 });
    const plain = plainProject.program;
    const gemms = plain.kernels.filter((x) => x.spec.template === "gemm.cu.hbs");
    expect(gemms.length).toBeGreaterThan(0);
    for (const k of gemms) {
      const n = k.spec.tiles.n as number;
      const want = defaultSmallerBuckets("wgmma", (plainProject.manifest.maxTokens as number), n, defaultTiles("forward", "wgmma", (plainProject.manifest.maxTokens as number), n), 8);
      const got = [...k.source.matchAll(/if \(M <= (\d+)\) return strata::gemm::gemm_launch<([^>]+>), Epi>/g)].map((m) => [Number(m[1]), m[2]]);
      expect(got).toEqual(want.map((d) => [d.maxM, gemmConfigType(d.tiles)]));
      expect(k.spec.tiles.tilesFrom).toBeUndefined();
    }
  });

  it("the 8B hybrid compiled for 4096-token prompts dispatches decode batches of 9–64 rows to smaller untuned tiles", () => {
    const p = emitProject(hybrid8b, { maxSeq: 4096 });
    const outProj = p.program.kernels.find((k) => k.spec.template === "gemm.cu.hbs" && k.spec.tiles.n === 4096 && k.spec.tiles.k === 8192)!;
    expect(outProj).toBeDefined();
    // 4096 prompt rows: the ping-pong 128×128 tiles (tiles.ts wave model)
    expect(outProj.spec.tiles).toMatchObject({ bm: 128, bn: 128, stages: 6, pp: true });
    // 64 rows × 4096: 32 tiles of 128×128 would leave 100 of 132 SMs idle
    expect(outProj.source).toContain("if (M <= 64) return strata::gemm::gemm_launch<strata::gemm::WsConfig<128, 64, 4>, Epi>");
    expect(outProj.source).toContain("if (M <= 512) return strata::gemm::gemm_launch<strata::gemm::WsConfig<128, 128, 5>, Epi>");
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
