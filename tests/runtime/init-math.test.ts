/**
 * runtime/src/init_math.h — the per-element init arithmetic shared by the host (init.cpp) and
 * the GPU path (init_device.cu). init_math_host_test.cpp compiles the header as plain C++ and
 * checks it against init.cpp's pre-header values for every InitKind on random names, seeds and
 * indices, its bf16/f16 conversions against dtype.cpp, and the radius test that sends the rare
 * ambiguous elements back to the host. With nvcc on the PATH, init_device.cu and the GPU harness
 * (tests/gpu/init_test.cu) must compile too (nothing runs on a GPU here).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { onPath } from "./on-path.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SRC = path.join(ROOT, "runtime/src");

const cxx = process.env.CXX ?? "g++";
const dir = mkdtempSync(path.join(tmpdir(), "strata-init-math-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!onPath(cxx))("init_math.h on the host", () => {
  it("equals init.cpp's values for every kind; conversions equal dtype.cpp", { timeout: 120_000 }, async () => {
    const exe = path.join(dir, "init_math_host_test");
    const srcs = ["init", "json", "dtype"].map((s) => path.join(SRC, `${s}.cpp`));
    const build = await execa(
      cxx,
      ["-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-pthread", `-I${path.join(ROOT, "runtime/include")}`, `-I${SRC}`,
        path.join(ROOT, "tests/runtime/init_math_host_test.cpp"), ...srcs, "-o", exe],
      { reject: false, all: true },
    );
    expect(build.exitCode, String(build.all)).toBe(0);
    const run = await execa(exe, [], { reject: false, all: true });
    expect(run.exitCode, String(run.all)).toBe(0);
    expect(String(run.all)).toMatch(/OK: 0 failure/);
  });
});

describe.skipIf(!onPath("nvcc"))("init_device.cu compiles", () => {
  it("the runtime unit and the GPU harness build with nvcc (sm_90a)", { timeout: 300_000 }, async () => {
    const flags = ["-std=c++17", "-O2", "-gencode", "arch=compute_90a,code=sm_90a", `-I${path.join(ROOT, "runtime/include")}`, `-I${SRC}`];
    const unit = await execa("nvcc", [...flags, "-c", path.join(SRC, "init_device.cu"), "-o", path.join(dir, "init_device.o")], { reject: false, all: true });
    expect(unit.exitCode, String(unit.all)).toBe(0);
    const harness = await execa(
      "nvcc",
      [...flags, path.join(ROOT, "tests/gpu/init_test.cu"), path.join(dir, "init_device.o"), ...["init", "json", "dtype"].map((s) => path.join(SRC, `${s}.cpp`)),
        "-o", path.join(dir, "init_test")],
      { reject: false, all: true },
    );
    expect(harness.exitCode, String(harness.all)).toBe(0);
  });
});
