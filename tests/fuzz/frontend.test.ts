/**
 * Property-based fuzzing of the front end (fast-check). Every random model definition either
 *   - builds, the interpreter runs it on a tiny shape (finite logits of the right shape), and it
 *     emits (kernel rules, sizes, fusion, codegen) or is rejected by a StrataError with a location;
 *   - or is rejected by a StrataError with a location (the user's line);
 * never an internal error (any other exception). Random `strata` command lines (over random
 * architecture files, in-process through main()) exit 0, 1 or 2 with no "internal error", no stack
 * trace, and write nothing outside their output folder.
 *
 * Bounded for CI; STRATA_FUZZ_RUNS=N runs more, STRATA_FUZZ_SEED=S replays a run (the seed is
 * printed, and fast-check prints the shrunk counterexample on failure).
 */
import { afterAll, describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { StrataError } from "../../compiler/ir/errors.js";
import { graphParams, type Graph } from "../../compiler/ir/graph.js";
import type { ModelDef } from "../../compiler/dsl/model.js";
import { checkKernelRules } from "../../compiler/dsl/model.js";
import { evaluate, randomParams } from "../../compiler/interp/interp.js";
import { fromArray } from "../../compiler/interp/tensor.js";
import { emitProject } from "../../compiler/codegen/project.js";
import { checkGraphSizes } from "../../compiler/cli/limits.js";
import { main } from "../../compiler/cli/main.js";
import { buildModel, modelSpec, specToSource, type ModelSpec } from "./spec.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RUNS = Number(process.env.STRATA_FUZZ_RUNS ?? 60);
const SEED = Number(process.env.STRATA_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`[fuzz] front end: seed ${SEED} (STRATA_FUZZ_SEED=${SEED} replays), ${RUNS} runs (STRATA_FUZZ_RUNS)`);

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A user-facing rejection: a StrataError that says where. */
function expectLocated(e: unknown, what: string): asserts e is StrataError {
  if (!(e instanceof StrataError)) throw new Error(`${what}: not a StrataError (an internal error): ${(e as Error)?.stack ?? String(e)}`);
  if (!e.loc) throw new Error(`${what}: StrataError without a location: ${e.message}`);
  expect(e.message).not.toMatch(/\[object Object\]|undefined:\d/);
}

interface Outcome {
  built: boolean;
  ran: boolean;
  emitted: boolean;
}

/** The whole front end on one spec; throws (failing the property) on anything but a located StrataError. */
function frontEnd(spec: ModelSpec, seed: number): Outcome {
  let def;
  try {
    def = buildModel(spec);
  } catch (e) {
    expectLocated(e, "building the model");
    return { built: false, ran: false, emitted: false };
  }
  let g;
  try {
    g = def.toGraph();
  } catch (e) {
    expectLocated(e, "lowering to the IR");
    return { built: false, ran: false, emitted: false };
  }
  // the interpreter on a tiny shape (models too large to interpret in a fuzz case still emit)
  const elements = graphParams(g).reduce((a, p) => a + (p.shape as number[]).reduce((x, y) => x * y, 1), 0);
  if (elements > 4e6) return { built: true, ran: false, emitted: emits(def, g) };
  const T = 1 + (seed % 3);
  const vocab = def.config.vocab;
  const tokens = fromArray([1, T], Array.from({ length: T }, (_, i) => (seed * 31 + i * 7) % vocab), "f32");
  const params = randomParams(g, seed, "f32");
  const out = evaluate(g, { bindings: { B: 1, T }, inputs: { tokens }, params, precision: "f32" }).logits!;
  expect(out.shape).toEqual([1, T, vocab]);
  for (const v of out.data) if (!Number.isFinite(v)) throw new Error(`non-finite logit ${v}`);
  return { built: true, ran: true, emitted: emits(def, g) };
}

/** compile's checks and the emit pipeline: true when it emits, false for a located StrataError. */
function emits(def: ModelDef, g: Graph): boolean {
  try {
    checkKernelRules(def);
    checkGraphSizes(g);
    const p = emitProject(def, { maxBatch: 1, maxSeq: def.config.seqLen });
    expect(p.kernels.length).toBeGreaterThan(0);
    return true;
  } catch (e) {
    expectLocated(e, "emitting");
    return false;
  }
}

describe("front-end fuzzing", () => {
  it("random model definitions: build + interpret + emit, or a located StrataError", { timeout: 120_000 }, () => {
    const tally = { cases: 0, built: 0, ran: 0, emitted: 0 };
    fc.assert(
      fc.property(modelSpec, fc.nat(1000), (spec, seed) => {
        const t0 = performance.now();
        const o = frontEnd(spec, seed);
        const ms = performance.now() - t0;
        if (ms > 20_000) throw new Error(`one case took ${(ms / 1000).toFixed(1)} s (a hang in the making)`);
        tally.cases++;
        tally.built += Number(o.built);
        tally.ran += Number(o.ran);
        tally.emitted += Number(o.emitted);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`[fuzz] models: ${JSON.stringify(tally)}`);
    // the generator must reach both sides, or the property proves little
    expect(tally.built).toBeGreaterThan(0);
    expect(tally.cases - tally.built).toBeGreaterThan(0);
  });

  it("random command lines: exit 0/1/2, no internal error or stack trace, nothing written outside -o", { timeout: 180_000 }, async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), "strata-fuzz-cli-"));
    dirs.push(root);
    const dsl = path.join(ROOT, "compiler/dsl/index.js");
    const rootListing = () => readdirSync(ROOT).sort().join(",");
    const before = rootListing();
    let n = 0;
    const arg = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom("1", "2", "16", "64", "sm_90a", "sm_80", "ssd", "gemm") },
      { weight: 1, arbitrary: fc.constantFrom("0", "-1", "1e5", "abc", "100000", "99999999999999999999", "", "sm_75") },
      { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
    );
    // mostly the command's own flags, sometimes any flag (usage errors)
    const FLAGS: Record<string, string[]> = {
      info: ["--json", "--context", "--batch", "--verbose"],
      ir: ["--json", "--step", "--prefill", "--verbose"],
      check: ["--max-batch", "--max-seq", "--verbose"],
      compile: ["--explain", "--arch", "--max-batch", "--max-seq", "--dump", "-o", "-j", "--verbose"],
      emit: ["--kernel", "--list", "--verbose"],
      frobnicate: ["--verbose"],
    };
    const ALL = [...new Set(Object.values(FLAGS).flat()), "--bogus", "--emit-only"];
    const command = fc.constantFrom("info", "ir", "check", "compile", "compile", "emit", "frobnicate");
    const archKind = fc.constantFrom("spec", "spec", "spec", "example", "missing", "folder");
    const captured: string[] = [];
    const codes: Record<number, number> = {};
    const spies = [
      vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void captured.push(`OUT ${a.join(" ")}`)),
      vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void captured.push(`ERR ${a.join(" ")}`)),
      vi.spyOn(process.stdout, "write").mockImplementation((c: string | Uint8Array) => (captured.push(`OUT ${String(c)}`), true)),
      vi.spyOn(process.stderr, "write").mockImplementation((c: string | Uint8Array) => (captured.push(`ERR ${String(c)}`), true)),
    ];
    try {
      await fc.assert(
        fc.asyncProperty(command, archKind, modelSpec, fc.array(fc.tuple(fc.nat(), fc.nat(9), arg), { maxLength: 3 }), async (cmd, kind, spec, picks) => {
          const flags = picks.map(([i, odd, v]) => [odd === 0 ? ALL[i % ALL.length]! : FLAGS[cmd]![i % FLAGS[cmd]!.length]!, v] as const);
          const dir = path.join(root, `case${n++}`);
          mkdirSync(dir);
          const out = path.join(dir, "out");
          let file: string;
          if (kind === "spec") {
            file = path.join(dir, "arch.ts");
            writeFileSync(file, specToSource(spec, dsl));
          } else if (kind === "example") file = path.join(ROOT, "examples/tiny-mamba2.ts");
          else if (kind === "missing") file = path.join(dir, "missing.ts");
          else file = dir;
          const argv = [cmd, file, "--no-check"];
          for (const [f, v] of flags) {
            if (f === "-o" || f === "--dump") argv.push(f, path.join(out, v.replace(/[/\\]|\.\./g, "_") || "x"));
            else if (["--json", "--step", "--prefill", "--emit-only", "--explain", "--list", "--verbose", "--bogus"].includes(f)) argv.push(f);
            else argv.push(f, v);
          }
          if (cmd === "compile") argv.push("--emit-only", "-o", out); // never run nvcc here; always inside the case folder
          captured.length = 0;
          process.exitCode = undefined;
          const code = await main(argv);
          process.exitCode = undefined;
          codes[code] = (codes[code] ?? 0) + 1;
          const text = captured.join("");
          const errText = captured.filter((l) => l.startsWith("ERR ")).join("");
          expect([0, 1, 2], `exit code for strata ${argv.join(" ")}\n${text}`).toContain(code);
          expect(errText, `strata ${argv.join(" ")}`).not.toContain("internal error");
          if (!argv.includes("--verbose")) expect(errText, `strata ${argv.join(" ")}`).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m);
          if (code === 1) expect(errText, `strata ${argv.join(" ")}`).toMatch(/(^|\n)ERR error: /);
          // nothing outside the case folder: the folder holds only the arch file and `out`
          for (const e of readdirSync(dir)) expect(["arch.ts", "out"], `strata ${argv.join(" ")} wrote ${e}`).toContain(e);
          expect(readdirSync(root).length, "nothing beside the case folders").toBe(n);
          expect(rootListing(), `strata ${argv.join(" ")} wrote into the repository root`).toBe(before);
        }),
        { numRuns: Math.max(10, Math.round(RUNS / 3)), seed: SEED, endOnFailure: true },
      );
    } finally {
      for (const s of spies) s.mockRestore();
      process.exitCode = undefined;
    }
    console.log(`[fuzz] command lines by exit code: ${JSON.stringify(codes)}`);
    expect(Object.values(codes).reduce((a, b) => a + b, 0)).toBe(n);
  });
});
