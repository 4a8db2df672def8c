/**
 * strata/tma.cuh's host-side tensor-map builders (2-D and 3-D) reject bad shapes with a named
 * reason before the driver is asked; run on this machine's CPU (tests/device/tma_map_host.cu).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { findNvcc } from "../../compiler/nvcc/driver.js";
import { INCLUDE_DIR } from "../../compiler/codegen/templates.js";
import { cachedNvcc } from "./host-build.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));

describe.skipIf(!findNvcc())("tensor maps (strata/tma.cuh, host)", () => {
  it("every bad shape is rejected with its reason, by both the 2-D and the 3-D builder", { timeout: 180_000 }, async () => {
    const b = await cachedNvcc(readFileSync(path.join(HERE, "tma_map_host.cu"), "utf8"), [INCLUDE_DIR], ["-std=c++17", "-o", "t"], "tma-map-host");
    const { stdout } = await execa(path.join(b.dir, "t"));
    const lines = stdout.trim().split("\n");
    expect(lines.slice(0, 8)).toEqual([
      "2d 1 tensor map: null map or base pointer",
      "2d 1 tensor map: base must be 16-byte aligned",
      "2d 1 tensor map: need rows, cols > 0 and row_stride >= cols",
      "2d 1 tensor map: need rows, cols > 0 and row_stride >= cols",
      "2d 1 tensor map: the row stride must be a multiple of 16 bytes",
      "2d 1 tensor map: box dims must be in 1..256",
      "2d 1 tensor map: the box's inner extent must be a multiple of 16 bytes",
      "2d 1 tensor map: the box's inner extent exceeds the swizzle span",
    ]);
    expect(lines.slice(9, 13)).toEqual([
      "3d 1 tensor map: need batches, rows, cols > 0 and row_stride >= cols",
      "3d 1 tensor map: batches must not overlap (batch_stride >= rows * row_stride)",
      "3d 1 tensor map: strides must be multiples of 16 bytes",
      "3d 1 tensor map: box dims must be in 1..256",
    ]);
    // the valid shapes pass every check and reach the driver (which this GPU-less machine lacks: not 1 = invalid value)
    for (const i of [8, 13]) expect(lines[i]).toMatch(/^[23]d (\d+) -$/);
    expect(lines[8]).not.toMatch(/^2d 1 /);
    expect(lines[13]).not.toMatch(/^3d 1 /);
  });
});
