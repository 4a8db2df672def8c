/**
 * The tuning database: measured tile choices keyed by (GPU target, family, kernel signature,
 * token bucket), read by `strata compile` and written by `strata tune --import`.
 *
 *   signature  what a kernel's speed depends on besides its tiles: the family's path, the GEMM's
 *              fixed sizes (N, K; a weight gradient's M, N), operand and output dtypes, and the
 *              epilogue's memory traffic (operands it reads per output element and per column). The
 *              families compute it (kernels/gemm.ts, kernels/matmul.ts) and hand it to
 *              `tunedTiles`, so the signatures `strata tune` enumerates are the ones compile looks
 *              up, by construction.
 *   bucket     the tokens of one call (B·T), bucketed: ≤ 8, ≤ 64, ≤ 512, ≤ 4096, larger.
 *              A kernel is rendered once for every call size, so compile takes the entry of the
 *              bucket that holds the project's --max-tokens (its largest calls, where the time goes).
 *
 * The file is JSON, versioned, checked with zod on read; an entry whose tiles are no longer a
 * valid configuration is ignored with a warning and the family's default is used.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { z } from "zod";
import { StrataError } from "../ir/errors.js";
import { TileConfigSchema, tileName, tileProblem, type Arch, type TileConfig, type TunedFamily } from "./configs.js";

export const TUNING_SCHEMA = "strata-tuning";
export const TUNING_VERSION = 1;
/** The database next to an architecture file when no --tuning / --db is given. */
export const DEFAULT_DB_NAME = "strata-tuning.json";

// ---- buckets -----------------------------------------------------------------------------------

export const BUCKETS = [
  { name: "m8", max: 8 },
  { name: "m64", max: 64 },
  { name: "m512", max: 512 },
  { name: "m4096", max: 4096 },
  { name: "large", max: Infinity },
] as const;
export type BucketName = (typeof BUCKETS)[number]["name"];
const BUCKET_NAMES = BUCKETS.map((b) => b.name) as [BucketName, ...BucketName[]];

export function bucketOf(tokens: number): BucketName {
  return BUCKETS.find((b) => tokens <= b.max)!.name;
}

/**
 * The buckets a project with this --max-tokens reaches, each with the token count it is timed at
 * (the bucket's top, or max tokens itself for its own bucket; the largest capped at 16384).
 */
export function reachedBuckets(maxTokens: number): { bucket: BucketName; tokens: number }[] {
  const out: { bucket: BucketName; tokens: number }[] = [];
  let lo = 0;
  for (const b of BUCKETS) {
    if (maxTokens <= lo) break;
    out.push({ bucket: b.name, tokens: Math.min(b.max, maxTokens, 16384) });
    lo = b.max;
  }
  return out;
}

// ---- signatures --------------------------------------------------------------------------------

/** What a tuned kernel's speed depends on besides its tiles (see the file header). */
export interface KernelSignature {
  family: TunedFamily;
  /** gemm: the forward GEMM; matmul: dgrad (M = tokens) or wgrad (K = tokens). */
  path: "forward" | "dgrad" | "wgrad";
  /** Fixed sizes: forward / dgrad: n, k (M = tokens); wgrad: m, n (K = tokens). */
  m?: number;
  n: number;
  k?: number;
  ta: string;
  tb: string;
  /** MN-major operands (matmul.cuh's kMnA / kMnB). */
  mnA: boolean;
  mnB: boolean;
  out: string;
  /** Operands the epilogue reads: one value per output element (residual, gate) or per column (bias). */
  elemReads: number;
  colReads: number;
}

/** The signature's key in the database: readable and stable. */
export function signatureKey(s: KernelSignature): string {
  const size = s.path === "wgrad" ? `m${s.m}.n${s.n}` : `n${s.n}.k${s.k}`;
  return `${s.path}.${size}.${s.ta}${s.mnA ? "^T" : ""}.${s.tb}${s.mnB ? "^T" : ""}.${s.out}.epi${s.elemReads}e${s.colReads}c`;
}

// ---- the file ----------------------------------------------------------------------------------

const ArchSchema = z.enum(["sm_90a", "sm_90", "sm_80"]);

export const TuningEntrySchema = z
  .object({
    arch: ArchSchema,
    family: z.enum(["gemm", "matmul"]),
    signature: z.string().min(1),
    bucket: z.enum(BUCKET_NAMES),
    tiles: TileConfigSchema,
    /** Mean time of one launch with the chosen tiles, and with the family's default, at `tokens`. */
    ms: z.number().positive(),
    defaultTiles: TileConfigSchema,
    defaultMs: z.number().positive(),
    tokens: z.number().int().positive(),
    device: z.string(),
    measuredAt: z.string(),
  })
  .strict();
export type TuningEntry = z.infer<typeof TuningEntrySchema>;

export const TuningFileSchema = z
  .object({
    schema: z.literal(TUNING_SCHEMA),
    version: z.literal(TUNING_VERSION),
    entries: z.array(TuningEntrySchema),
  })
  .strict();
export type TuningFile = z.infer<typeof TuningFileSchema>;

/** A database in memory: its entries plus where it came from and where its warnings go. */
export interface TuningDb {
  entries: TuningEntry[];
  /** The file (for messages). */
  source?: string;
  /** Called once per ignored entry (default: console.error). */
  warn?: (message: string) => void;
  /** Called with every signature a family looks up (`strata tune` enumerates through this). */
  observe?: (arch: Arch, sig: KernelSignature) => void;
}

/** What the render context carries: the database and the project's largest call. */
export interface RenderTuning {
  db: TuningDb;
  maxTokens: number;
}

export const entryKey = (e: Pick<TuningEntry, "arch" | "family" | "signature" | "bucket">) => `${e.arch}|${e.family}|${e.signature}|${e.bucket}`;

function zodIssues(e: z.ZodError): string {
  return e.issues
    .slice(0, 8)
    .map((i) => `  at ${i.path.length ? i.path.join(".") : "(top level)"}: ${i.message}`)
    .join("\n");
}

/** Parse a database file's text; errors say which field is wrong and what is expected. */
export function parseTuningDb(text: string, file: string): TuningDb {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new StrataError(`tuning database ${file} is not valid JSON: ${(e as Error).message}`, undefined, "fix or delete the file; `strata tune --import results.json` writes a new one");
  }
  const v = (raw as { version?: unknown } | null)?.version;
  if (raw && typeof raw === "object" && (raw as { schema?: unknown }).schema === TUNING_SCHEMA && v !== TUNING_VERSION)
    throw new StrataError(`tuning database ${file} has version ${String(v)}; this Strata reads version ${TUNING_VERSION}`, undefined, "re-import the tuning results with this version: `strata tune --import results.json`");
  const r = TuningFileSchema.safeParse(raw);
  if (!r.success)
    throw new StrataError(`tuning database ${file} does not match the schema ${TUNING_SCHEMA} v${TUNING_VERSION}:\n${zodIssues(r.error)}`, undefined, "fix the listed fields, or delete the file and re-import the results");
  return { entries: r.data.entries, source: file };
}

export function readTuningDb(file: string): TuningDb {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new StrataError(`cannot read tuning database ${file}: ${(e as Error).message}`);
  }
  return parseTuningDb(text, file);
}

export function writeTuningDb(file: string, entries: TuningEntry[]): void {
  const sorted = [...entries].sort((a, b) => (entryKey(a) < entryKey(b) ? -1 : entryKey(a) > entryKey(b) ? 1 : 0));
  const data: TuningFile = { schema: TUNING_SCHEMA, version: TUNING_VERSION, entries: sorted };
  writeFileSync(file, JSON.stringify(data, null, 1) + "\n");
}

/** New entries replace old ones with the same key. */
export function mergeEntries(old: TuningEntry[], add: TuningEntry[]): TuningEntry[] {
  const m = new Map(old.map((e) => [entryKey(e), e]));
  for (const e of add) m.set(entryKey(e), e);
  return [...m.values()];
}

// ---- the lookup hook the families call ---------------------------------------------------------

const warned = new WeakMap<TuningDb, Set<string>>();

function warnOnce(db: TuningDb, key: string, message: string): void {
  let s = warned.get(db);
  if (!s) warned.set(db, (s = new Set()));
  if (s.has(key)) return;
  s.add(key);
  (db.warn ?? ((m: string) => console.error(m)))(message);
}

/**
 * The tiles a family renders for this signature: the database's choice for the bucket of the
 * project's max tokens when there is a valid one, else the default. `provenance` goes into the
 * kernel's tiles (manifest, file header): empty without a database, so untuned output is unchanged.
 */
/**
 * The tuned tiles of the smaller buckets a project reaches below its own (its --max-tokens
 * bucket is `tunedTiles`'): a launcher dispatches on the run-time M to these, smallest first, so
 * a decode batch of 9–64 rows runs the tiles tuned for 64 rows, not the prefill's; a bucket with
 * no entry takes `untuned(bucket's rows)` when given (else it runs the tiles above it). Only
 * buckets whose tiles differ from the bucket above them are returned; none without a database.
 */
export function tunedSmallerBuckets<T extends TileConfig>(
  tuning: RenderTuning | undefined,
  arch: Arch,
  sig: KernelSignature,
  defaults: T,
  own: T,
  skipBelow = 0,
  untuned?: (maxM: number) => T,
): { maxM: number; tiles: T; bucket: BucketName }[] {
  if (!tuning) return [];
  const { db } = tuning;
  return smallerBuckets(tuning.maxTokens, own, skipBelow, (b) => {
    const e = db.entries.find((x) => entryKey(x) === entryKey({ arch, family: sig.family, signature: signatureKey(sig), bucket: b.name }));
    // no valid entry for this bucket: the untuned tiles for its size, when the caller has them
    if (!e || e.tiles.backend !== defaults.backend || tileProblem(e.tiles, arch, sig.family)) return untuned?.(b.max);
    return e.tiles as T;
  });
}

/**
 * The buckets below the one that holds `maxTokens` (those of ≤ skipBelow rows left out), each with
 * the tiles `pick` gives it (undefined: left out, it runs the tiles above it), smallest first, minus
 * every bucket whose tiles equal the next larger one's (`own` above the last): the same kernel
 * would run either way. The launcher dispatches on the run-time M to what remains.
 */
export function smallerBuckets<T extends TileConfig>(
  maxTokens: number,
  own: T,
  skipBelow: number,
  pick: (bucket: (typeof BUCKETS)[number]) => T | undefined,
): { maxM: number; tiles: T; bucket: BucketName }[] {
  const ownBucket = bucketOf(maxTokens);
  const out: { maxM: number; tiles: T; bucket: BucketName }[] = [];
  for (const b of BUCKETS) {
    if (b.name === ownBucket) break;
    if (b.max <= skipBelow) continue; // e.g. the forward GEMM's ≤ 8 rows run the GEMV
    const tiles = pick(b);
    if (tiles) out.push({ maxM: b.max, tiles, bucket: b.name });
  }
  const same = (x: T, y: T) => JSON.stringify(x) === JSON.stringify(y);
  return out.filter((d, i) => !same(d.tiles, out[i + 1]?.tiles ?? own));
}

export function tunedTiles<T extends TileConfig>(
  tuning: RenderTuning | undefined,
  arch: Arch,
  sig: KernelSignature,
  defaults: T,
): { tiles: T; provenance: Record<string, string> } {
  if (!tuning) return { tiles: defaults, provenance: {} };
  const { db } = tuning;
  db.observe?.(arch, sig);
  const key = { arch, family: sig.family, signature: signatureKey(sig), bucket: bucketOf(tuning.maxTokens) };
  const e = db.entries.find((x) => entryKey(x) === entryKey(key));
  if (!e) return { tiles: defaults, provenance: { tilesFrom: "default" } };
  const problem = tileProblem(e.tiles, arch, sig.family) ?? (e.tiles.backend !== defaults.backend ? `the ${defaults.backend} back-end is rendered, not ${e.tiles.backend}` : undefined);
  if (problem) {
    warnOnce(db, entryKey(e), `warning: tuning database${db.source ? ` ${db.source}` : ""}: ignoring ${tileName(e.tiles)} for ${sig.family} ${key.signature} (${key.bucket}, ${arch}): ${problem}; using the default ${tileName(defaults)}`);
    return { tiles: defaults, provenance: { tilesFrom: "default" } };
  }
  return { tiles: e.tiles as T, provenance: { tilesFrom: "tuned", tunedBucket: key.bucket } };
}
