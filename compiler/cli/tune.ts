/**
 * `strata tune <arch.ts>`: autotuning of the GEMM families' tile configurations, in two halves
 * because the GPU machine has no Node:
 *   here    `strata tune arch.ts [-o DIR]` enumerates the model's tuned kernel signatures and token
 *           buckets and writes a bundle (compiler/tune/bundle.ts) with a timing program per
 *           candidate and run_tune.py;
 *   there   `python3 run_tune.py` builds, checks, times and writes results.json;
 *   here    `strata tune --import results.json [--db FILE]` merges the choices into the database
 *           (default: strata-tuning.json next to the architecture file) that `strata compile` reads.
 */
import { existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { StrataError } from "../ir/errors.js";
import type { EmittedKernel } from "../pipeline.js";
import { planBundle, writeBundle } from "../tune/bundle.js";
import { tileName, type Arch } from "../tune/configs.js";
import { DEFAULT_DB_NAME, mergeEntries, readTuningDb, writeTuningDb, type TuningDb } from "../tune/db.js";
import { readResults, resultsToEntries } from "../tune/results.js";
import { signatureRecorder } from "../tune/signatures.js";
import { emitChecked } from "./emit.js";
import { loadModel } from "./load.js";
import { checkOutDir, shownPath } from "./output.js";

function positiveInt(v: string): number {
  const n = /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive whole number in decimal digits (e.g. 4096), got '${v}'`);
  return n;
}


/** The database next to an architecture file. */
export const defaultDbPath = (arch: string) => path.join(path.dirname(path.resolve(arch)), DEFAULT_DB_NAME);

/**
 * The database `strata compile` uses: --tuning FILE (which must exist), else strata-tuning.json
 * next to the architecture file when there is one, else none. Ignored entries warn on stderr.
 */
export function loadTuning(arch: string, explicit?: string): TuningDb | undefined {
  const file = explicit ? path.resolve(explicit) : defaultDbPath(arch);
  if (!existsSync(file)) {
    if (explicit) throw new StrataError(`--tuning ${explicit}: no such file`, undefined, "make one with `strata tune --import results.json --db FILE`, or leave --tuning out");
    return undefined;
  }
  return { ...readTuningDb(file), warn: (m) => console.error(m) };
}

/** One line for compile: how many tuned-family kernels took tuned tiles. */
export function tuningSummary(kernels: readonly EmittedKernel[], db: TuningDb): string {
  const tk = kernels.filter((k) => k.spec.tiles.tilesFrom !== undefined);
  const tuned = tk.filter((k) => k.spec.tiles.tilesFrom === "tuned").length;
  return `tuning: ${tuned} of ${tk.length} GEMM kernels use tuned tiles from ${db.source ?? "the tuning database"}`;
}

export function registerTuneCommand(program: Command): void {
  program
    .command("tune")
    .description("autotune GEMM tile configurations: write a timing bundle for a GPU machine (run_tune.py there), or --import its results.json into the tuning database")
    .argument("[arch]", "architecture file (.ts)")
    .option("-o, --out <dir>", "bundle folder (default: build/tune/<model>-<gpu arch>)")
    .option("--arch <sm>", "GPU target: sm_90a, sm_90 or sm_80", "sm_90a")
    .option("--max-batch <n>", "largest batch the project serves (as compile)", positiveInt, 1)
    .option("--max-seq <n>", "longest sequence the project serves (as compile; default: the model's seqLen)", positiveInt)
    .option("--max-tokens <n>", "largest batch × tokens of one call (as compile): the token buckets tuned go up to it", positiveInt)
    .option("--train", "also tune the training graph's GEMMs (the matmul family)")
    .option("--candidates <names>", "only these tile candidates (comma-separated names such as wgmma_128x256x4; the default always runs)")
    .option("--import <results>", "merge a results.json from run_tune.py into the tuning database")
    .option("--db <file>", `tuning database for --import (default: ${DEFAULT_DB_NAME} next to the architecture file)`)
    .option("--no-check", "skip the TypeScript type check")
    .action(
      async (
        arch: string | undefined,
        o: { out?: string; arch: string; maxBatch: number; maxSeq?: number; maxTokens?: number; train?: boolean; candidates?: string; import?: string; db?: string; check: boolean; inPlaceConcat?: boolean; foldCasts?: boolean },
      ) => {
        if (!["sm_90a", "sm_90", "sm_80"].includes(o.arch)) throw new StrataError(`unknown --arch '${o.arch}'`, undefined, "valid: sm_90a, sm_90, sm_80");
        if (o.import) {
          if (!o.db && !arch) throw new StrataError("tune --import: say where the database goes", undefined, `give the architecture file (its folder's ${DEFAULT_DB_NAME}) or --db FILE`);
          const dbFile = o.db ? path.resolve(o.db) : defaultDbPath(arch!);
          const res = readResults(o.import);
          const old = existsSync(dbFile) ? readTuningDb(dbFile).entries : [];
          const { entries, lines, slowDefaults } = resultsToEntries(res);
          writeTuningDb(dbFile, mergeEntries(old, entries));
          console.log(`${res.model} on ${res.device} (${res.arch}), measured ${res.measuredAt}:`);
          for (const l of lines) console.log(l);
          console.log(`imported ${entries.length} of ${res.results.length} results into ${dbFile}${slowDefaults ? `; ${slowDefaults} default${slowDefaults > 1 ? "s are" : " is"} more than 10% slower than the tuned tiles` : ""}`);
          return;
        }
        if (!arch) throw new StrataError("tune: which architecture file?", undefined, "strata tune examples/tiny-hybrid.ts, or strata tune --import results.json");
        const def = await loadModel(arch, { check: o.check });
        const a = o.arch as Arch;
        const maxSeq = o.maxSeq ?? def.config.seqLen;
        const maxTokens = o.maxTokens ?? o.maxBatch * maxSeq;
        // compile's checks and pipeline, with a database that records each tuned kernel's signature
        const rec = signatureRecorder();
        emitChecked(def, { maxBatch: o.maxBatch, maxSeq, maxTokens, arch: a, train: o.train ?? false, tuning: rec.db, inPlaceConcat: o.inPlaceConcat, foldCasts: o.foldCasts });
        const kernels = rec.kernels();
        if (kernels.length === 0) throw new StrataError(`tune: ${def.config.name} has no GEMM kernels to tune`);
        const only = o.candidates?.split(",").map((s) => s.trim()).filter(Boolean);
        const plan = planBundle(def.config.name, a, kernels, maxTokens, only);
        const known = new Set([...plan.candidates.gemm, ...plan.candidates.matmul].map((c) => c.name));
        const unknown = (only ?? []).filter((n) => !known.has(n));
        if (unknown.length) throw new StrataError(`tune --candidates: no valid candidate named ${unknown.join(", ")} for ${a}`);
        const dir = path.resolve(o.out ?? path.join("build", "tune", `${def.config.name}-${a}`));
        checkOutDir(dir, "-o", false);
        if (existsSync(dir) && readdirSync(dir).length > 0) {
          // replaced as a whole, so only a folder that is a bundle already
          if (!existsSync(path.join(dir, "tune.json"))) throw new StrataError(`-o ${dir}: this folder holds other files (no tune.json of a tuning bundle)`, undefined, "pass a new or empty folder, or a bundle folder a previous `strata tune` wrote");
          rmSync(dir, { recursive: true, force: true });
        }
        writeBundle(dir, plan);
        for (const k of kernels) console.log(`  ${k.sig.family.padEnd(6)} ${k.key}  (${k.uses} group${k.uses > 1 ? "s" : ""})`);
        const nc = (f: "gemm" | "matmul") => `${plan.candidates[f].length} ${f} candidates (default ${tileName(plan.candidates[f].find((c) => c.isDefault)!.tiles)})`;
        console.log(
          `wrote ${shownPath(dir)}: ${kernels.length} signatures × token buckets = ${plan.problems.length} problems, ${plan.programs.length} timing programs; ${nc("gemm")}${o.train ? `, ${nc("matmul")}` : ""}`,
        );
        console.log(`next: carry the folder to the GPU machine, run \`python3 run_tune.py\` in it, bring results.json back and run \`strata tune --import results.json${o.db ? ` --db ${o.db}` : ""}\``);
      },
    );
}
