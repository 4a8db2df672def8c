/**
 * Fuzzing of the C++ runtime's file readers (safetensors, .npy, manifest JSON): readers_fuzz.sh
 * builds tests/fuzz/readers_fuzz.cpp with g++ -fsanitize=address,undefined and runs mutated and
 * truncated files from a corpus of valid ones for a bounded time. Zero crashes (a sanitizer report
 * fails the run), every rejection a strata::Error naming the file. STRATA_FUZZ_SECONDS (default 4)
 * and STRATA_FUZZ_SEED (printed) control the run. Skipped without g++.
 */
import { accessSync, constants } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const cxx = process.env.CXX ?? "g++";
const onPath = (bin: string) =>
  (process.env.PATH ?? "").split(path.delimiter).some((d) => {
    try {
      accessSync(path.join(d, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

const SECONDS = Number(process.env.STRATA_FUZZ_SECONDS ?? 4);
const SEED = Number(process.env.STRATA_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

describe.skipIf(!onPath(cxx) || !onPath("bash"))("runtime file readers under ASan + UBSan", () => {
  it("mutated safetensors / .npy / manifest files: zero crashes, every rejection a named error", { timeout: 300_000 }, async () => {
    console.log(`[fuzz] readers: seed ${SEED} (STRATA_FUZZ_SEED=${SEED} replays), ${SECONDS} s (STRATA_FUZZ_SECONDS)`);
    const r = await execa("bash", [path.join(ROOT, "tests/fuzz/readers_fuzz.sh"), String(SECONDS), String(SEED)], { reject: false, all: true, cwd: ROOT });
    const out = String(r.all ?? "");
    if (r.exitCode !== 0) console.log(out.split("\n").slice(-80).join("\n"));
    expect(out, "no sanitizer report").not.toMatch(/ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer/);
    expect(r.exitCode, `readers_fuzz exited ${r.exitCode}`).toBe(0);
    const m = /readers fuzz: seed \d+, (\d+) inputs .*: (\d+) accepted, (\d+) rejected with a named error, (\d+) failures/.exec(out);
    expect(m, out.slice(-2000)).not.toBeNull();
    console.log(`[fuzz] ${m![0]}`);
    expect(Number(m![1])).toBeGreaterThan(100);
    expect(Number(m![2])).toBeGreaterThan(0); // some mutants stay valid: the accepting paths are walked too
    expect(Number(m![3])).toBeGreaterThan(0);
    expect(Number(m![4])).toBe(0);
  });
});
