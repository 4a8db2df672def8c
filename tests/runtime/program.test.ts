/** The generic Program executor (runtime/src/program.cpp) on host memory: tests/runtime/program_host_test.cpp. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "../..");

describe("program executor (host)", () => {
  it("forward, prefill, step, chunked prefill, copies, once-launches and errors on a toy program", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "strata-program-"));
    try {
      const exe = path.join(dir, "program_host_test");
      execFileSync(process.env.CXX ?? "g++", [
        "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror",
        "-I", path.join(ROOT, "runtime/include"), "-I", path.join(ROOT, "runtime/src"), "-I", path.join(ROOT, "templates/include"),
        path.join(ROOT, "tests/runtime/program_host_test.cpp"), path.join(ROOT, "runtime/src/program.cpp"), path.join(ROOT, "runtime/src/json.cpp"),
        "-o", exe,
      ]);
      const out = execFileSync(exe, { encoding: "utf8" });
      console.log(out.trim());
      const m = /(\d+) passed, (\d+) failed/.exec(out);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(40);
      expect(Number(m![2])).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
