/**
 * The checkpoint commands as a user runs them (`node bin/strata.js …`): import-hf writes a file
 * that `strata info` accepts, import-megatron --use-arch maps onto an existing architecture, and
 * errors print a message and a hint, exit code 1, no stack trace.
 */
import { execa } from "execa";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { SEED, mambaConfig, writeHfModel } from "./fixtures.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const tmp = mkdtempSync(path.join(tmpdir(), "strata-interop-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const strata = (...args: string[]) => execa("node", ["bin/strata.js", ...args], { cwd: ROOT, reject: false, env: { NO_COLOR: "1" } });

describe("strata import-hf / export-hf (CLI)", () => {
  it("import-hf writes an architecture file strata info loads, and Strata-named weights", async () => {
    const dir = path.join(tmp, "mamba-hf");
    writeHfModel(dir, mambaConfig, { seed: SEED });
    const arch = path.join(tmp, "out", "mamba.ts");
    const r = await strata("import-hf", dir, "-o", arch, "--weights-out", path.join(tmp, "out", "w.safetensors"));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/MambaForCausalLM: wrote .*mamba\.ts and .*w\.safetensors \(22 tensors, 299,904 parameters\)/);
    const info = await strata("info", arch, "--no-check");
    expect(info.exitCode, info.stderr).toBe(0);
    expect(info.stdout).toContain("pattern    MM");
    const bad = await strata("export-hf", "examples/transformer-8b.ts", "--weights", path.join(tmp, "out", "w.safetensors"), "-o", path.join(tmp, "x"), "--no-check");
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/^error: transformer-8b: does not fit NemotronHForCausalLM:/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(path.join(tmp, "x"))).toBe(false);
  });

  it("import-megatron on a folder that is not a checkpoint says what it expected", async () => {
    const r = await strata("import-megatron", tmp, "-o", path.join(tmp, "m.safetensors"));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/no latest_checkpointed_iteration\.txt and no mp_rank_00\/ folder\n\s+hint: give the folder Megatron-LM saved/);
  });
});
