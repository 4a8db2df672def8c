/**
 * The C++ runtime's host-only tests (tests/runtime/runtime_host_test.cpp: JSON, dtype,
 * safetensors, init, manifest, npy, CLI parsing, C ABI errors) built with g++ and run by
 * build_and_run.sh; no CUDA needed. Skipped when no C++ compiler is found.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { onPath } from "./on-path.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

const cxx = process.env.CXX ?? "g++";

describe.skipIf(!onPath(cxx) || !onPath("bash"))("C++ runtime host tests (build_and_run.sh)", () => {
  it("build and run: every test passes", { timeout: 300_000 }, async () => {
    const t0 = performance.now();
    const r = await execa("bash", [path.join(ROOT, "tests/runtime/build_and_run.sh")], { reject: false, all: true, cwd: ROOT });
    const out = String(r.all ?? "");
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (r.exitCode !== 0) console.log(out.split("\n").slice(-60).join("\n"));
    expect(r.exitCode, `build_and_run.sh exited ${r.exitCode}`).toBe(0);
    const m = /(\d+) passed, (\d+) failed/.exec(out);
    expect(m, `no "N passed, 0 failed" line in:\n${out.slice(-2000)}`).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![2])).toBe(0);
    console.log(`[runtime host tests] ${m![0]} in ${secs}s (compile + run)`);
  });
});
