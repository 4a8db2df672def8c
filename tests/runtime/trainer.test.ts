/**
 * The training runtime on the CPU: tests/runtime/trainer_host_test.cpp (built with g++ by
 * trainer_build_and_run.sh) runs the trainer, the host twin of the AdamW kernels, checkpoints,
 * token files and `model train`'s arguments over a fake model in host memory; and, when nvcc is
 * installed, trainer_nvcc_check.sh compiles adamw.cu and the trainer into a libmodel.so as a
 * generated project does and smoke-runs `model train` (no GPU needed).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { onPath } from "./on-path.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const cxx = process.env.CXX ?? "g++";

describe.skipIf(!(cxx.includes("/") || onPath(cxx)) || !onPath("bash"))("training runtime host tests (trainer_build_and_run.sh)", () => {
  it("AdamW vs a float64 reference, loss falls, bit-exact resume, non-finite stop, kill -9 during checkpoints, token files, CLI", { timeout: 300_000 }, async () => {
    const r = await execa("bash", [path.join(ROOT, "tests/runtime/trainer_build_and_run.sh")], { reject: false, all: true, cwd: ROOT });
    const out = String(r.all ?? "");
    if (r.exitCode !== 0) console.log(out.split("\n").slice(-60).join("\n"));
    const m = /(\d+) passed, (\d+) failed/.exec(out);
    expect(m, `no "N passed, N failed" line in:\n${out.slice(-2000)}`).not.toBeNull();
    expect(Number(m![2])).toBe(0);
    expect(Number(m![1])).toBeGreaterThan(150);
    expect(r.exitCode).toBe(0);
  });
});

describe.skipIf(!onPath(process.env.NVCC ?? "nvcc") || !onPath("bash"))("training runtime under nvcc (trainer_nvcc_check.sh)", () => {
  it("adamw.cu and the trainer build into libmodel.so; model train --help and argument errors run without a GPU", { timeout: 600_000 }, async () => {
    const r = await execa("bash", [path.join(ROOT, "tests/runtime/trainer_nvcc_check.sh")], { reject: false, all: true, cwd: ROOT });
    const out = String(r.all ?? "");
    if (r.exitCode !== 0) console.log(out.split("\n").slice(-60).join("\n"));
    expect(r.exitCode).toBe(0);
    expect(out).toContain("trainer nvcc check OK");
  });
});
