/**
 * results.json (written by a bundle's run_tune.py on the GPU machine) → tuning database entries,
 * and the report `strata tune --import` prints: per problem the tuned and the default time, with
 * the defaults more than 10% slower than the tuned choice flagged (the issue's target: the
 * untuned default within 10% of the tuned result).
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { StrataError } from "../ir/errors.js";
import { defaultTiles } from "../kernels/tiles.js";
import { backendFor, TileConfigSchema, tileName } from "./configs.js";
import { BUCKETS, type TuningEntry } from "./db.js";

export const RESULTS_SCHEMA = "strata-tune-results";
export const RESULTS_VERSION = 1;
/** A default slower than the tuned choice by more than this is flagged. */
export const DEFAULT_SLACK = 0.1;

const CandidateRowSchema = z.object({ name: z.string(), ms: z.number().nullable(), relErr: z.number().nullable(), status: z.string() });

const ResultSchema = z.object({
  family: z.enum(["gemm", "matmul"]),
  signature: z.string().min(1),
  bucket: z.enum(BUCKETS.map((b) => b.name) as [string, ...string[]]),
  tokens: z.number().int().positive(),
  M: z.number().int(),
  N: z.number().int(),
  K: z.number().int(),
  defaultName: z.string(),
  defaultTiles: TileConfigSchema,
  defaultMs: z.number().positive().nullable(),
  bestName: z.string().nullable(),
  tiles: TileConfigSchema.nullable(),
  ms: z.number().positive().nullable(),
  candidates: z.array(CandidateRowSchema),
});

export const ResultsFileSchema = z.object({
  schema: z.literal(RESULTS_SCHEMA),
  version: z.literal(RESULTS_VERSION),
  model: z.string(),
  arch: z.enum(["sm_90a", "sm_90", "sm_80"]),
  device: z.string(),
  measuredAt: z.string(),
  results: z.array(ResultSchema),
});
export type ResultsFile = z.infer<typeof ResultsFileSchema>;

export function readResults(file: string): ResultsFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new StrataError(`cannot read tuning results ${file}: ${(e as Error).message}`, undefined, "pass the results.json that run_tune.py wrote in the bundle");
  }
  const r = ResultsFileSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues
      .slice(0, 8)
      .map((i) => `  at ${i.path.length ? i.path.join(".") : "(top level)"}: ${i.message}`)
      .join("\n");
    throw new StrataError(`${file} is not a ${RESULTS_SCHEMA} v${RESULTS_VERSION} file:\n${issues}`, undefined, "pass the results.json that run_tune.py wrote in the bundle");
  }
  return r.data;
}

/** The entries of the tuned problems, and one report line per problem. */
export function resultsToEntries(res: ResultsFile): { entries: TuningEntry[]; lines: string[]; slowDefaults: number } {
  const entries: TuningEntry[] = [];
  const lines: string[] = [];
  let slowDefaults = 0;
  for (const r of res.results) {
    const what = `${r.family} ${r.signature} @${r.bucket} (${r.tokens} tokens)`;
    if (!r.tiles || r.ms === null || r.defaultMs === null || !r.bestName) {
      const why = r.candidates.find((c) => c.name === r.defaultName)?.status ?? "no result";
      lines.push(`  ${what}: not tuned (default: ${why})`);
      continue;
    }
    entries.push({
      arch: res.arch,
      family: r.family,
      signature: r.signature,
      bucket: r.bucket as TuningEntry["bucket"],
      tiles: r.tiles,
      ms: r.ms,
      defaultTiles: r.defaultTiles,
      defaultMs: r.defaultMs,
      tokens: r.tokens,
      device: res.device,
      measuredAt: res.measuredAt,
    });
    // the default compared is this version's untuned choice for the shape (tiles.ts defaultTiles)
    // when the run measured it — a results file from before the shape-dependent defaults names the
    // family's one default — else the file's
    const kind = r.signature.split(".")[0] as "forward" | "dgrad" | "wgrad";
    const now = ["forward", "dgrad", "wgrad"].includes(kind) ? tileName(defaultTiles(kind, backendFor(res.arch), r.M, r.N, r.K)) : r.defaultName;
    const row = r.candidates.find((c) => c.name === now && c.status === "ok" && c.ms !== null);
    const [defName, defMs] = row ? [now, row.ms!] : [tileName(r.defaultTiles), r.defaultMs];
    const slower = defMs / r.ms - 1;
    const flag = slower > DEFAULT_SLACK ? `  << default ${(slower * 100).toFixed(0)}% slower than tuned (target ≤ ${DEFAULT_SLACK * 100}%)` : "";
    if (flag) slowDefaults++;
    lines.push(`  ${what}: tuned ${tileName(r.tiles)} ${r.ms.toFixed(4)} ms, default ${defName} ${defMs.toFixed(4)} ms${flag}`);
  }
  return { entries, lines, slowDefaults };
}
