/**
 * The synthetic probes of Waleffe et al. (2024) §3 for copying and in-context recall, each as
 * fixed-length rows with a loss mask on the answers, a training set and a held-out evaluation set
 * (independent draws; no evaluation row equals a training row). Deterministic in the seed.
 *
 * - mqar (multi-query associative recall, Arora et al. 2023): `k1 v1 k2 v2 … kP vP` then queries
 *   `q1 a1 … qQ aQ`, each q one of the keys (distinct) and a its value. Keys are ids
 *   [1, 1 + K), values [1 + K, vocab), K = ⌊(vocab − 1)/2⌋; id 0 is unused. Answers masked.
 * - copy: `BOS x1 … xL SEP x1 … xL` with BOS = 0, SEP = 1, x in [2, vocab). The copy is masked.
 * - phonebook: text through a tokenizer (byte-level by default): `Name: 555-0134\n` lines, a blank
 *   line, then `Name:` of one entry; the answer ` 555-0134\n` is masked. Rows are padded to the
 *   longest (or to seqLen) with the end-of-document id (0 for byte-level), unmasked.
 */
import { Rng } from "../interp/interp.js";
import { StrataError } from "../ir/errors.js";
import { idBytesFor, type TokenData } from "./tokenfile.js";
import { byteTokenizer, type TextTokenizer } from "./tokenizers.js";

export const PROBE_KINDS = ["mqar", "copy", "phonebook"] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];

export interface ProbeOptions {
  kind: ProbeKind;
  /** Rows in the training and evaluation sets. */
  train: number;
  eval: number;
  seed: number;
  /** mqar / copy: vocabulary size (default 256). */
  vocab?: number;
  /** mqar: key–value pairs (default 16) and queries (default = pairs). */
  pairs?: number;
  queries?: number;
  /** copy: tokens to copy (default 32). */
  length?: number;
  /** phonebook: entries per book (default 8). */
  entries?: number;
  /** phonebook: pad rows to this many tokens (default: the longest row). */
  seqLen?: number;
  /** phonebook: text tokenizer (default byte-level). */
  tokenizer?: TextTokenizer;
}

export interface ProbeSet {
  train: TokenData;
  eval: TokenData;
  /** The resolved configuration (written next to the files). */
  config: Record<string, string | number>;
}

interface Row {
  ids: number[];
  mask: number[];
}

const int = (rng: Rng, n: number) => Math.min(n - 1, Math.floor(rng.uniform() * n));

/** k distinct values of [0, n) in random order (partial Fisher–Yates). */
function distinct(rng: Rng, n: number, k: number): number[] {
  const pool = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const j = i + int(rng, n - i);
    const vj = pool.get(j) ?? j;
    pool.set(j, pool.get(i) ?? i);
    out.push(vj);
  }
  return out;
}

function posInt(v: number | undefined, dflt: number, what: string, hint: string): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n <= 0) throw new StrataError(`probe: ${what} must be a positive integer, got ${v}`, undefined, hint);
  return n;
}

function mqarRow(rng: Rng, vocab: number, pairs: number, queries: number): Row {
  const K = Math.floor((vocab - 1) / 2);
  const keys = distinct(rng, K, pairs).map((k) => 1 + k);
  const vals = keys.map(() => 1 + K + int(rng, vocab - 1 - K));
  const ids: number[] = [];
  const mask: number[] = [];
  keys.forEach((k, i) => {
    ids.push(k, vals[i]!);
    mask.push(0, 0);
  });
  for (const j of distinct(rng, pairs, queries)) {
    ids.push(keys[j]!, vals[j]!);
    mask.push(0, 1);
  }
  return { ids, mask };
}

function copyRow(rng: Rng, vocab: number, length: number): Row {
  const xs = Array.from({ length }, () => 2 + int(rng, vocab - 2));
  return { ids: [0, ...xs, 1, ...xs], mask: [0, ...xs.map(() => 0), 0, ...xs.map(() => 1)] };
}

const FIRST = ["Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace", "Hedy", "Ivan", "John", "Ken", "Leslie", "Margaret", "Niklaus", "Ole", "Peter", "Radia", "Shafi", "Tony", "Ursula", "Vint", "Whitfield", "Yann"];
const LAST = ["Allen", "Backus", "Cerf", "Dijkstra", "Engelbart", "Floyd", "Goldwasser", "Hamilton", "Hopper", "Iverson", "Knuth", "Lamport", "Liskov", "McCarthy", "Naur", "Perlman", "Ritchie", "Shannon", "Thompson", "Turing", "Valiant", "Wirth", "Yao", "Zuse"];

function phoneRow(rng: Rng, tok: TextTokenizer, entries: number): Row {
  const names = distinct(rng, FIRST.length * LAST.length, entries).map((k) => `${FIRST[k % FIRST.length]} ${LAST[Math.floor(k / FIRST.length)]}`);
  const numbers = names.map(() => `${100 + int(rng, 900)}-${String(int(rng, 10000)).padStart(4, "0")}`);
  const q = int(rng, entries);
  const book = names.map((n, i) => `${n}: ${numbers[i]}\n`).join("");
  const prompt = tok.encode(`${book}\n${names[q]}:`);
  const answer = tok.encode(` ${numbers[q]}\n`);
  return { ids: [...prompt, ...answer], mask: [...prompt.map(() => 0), ...answer.map(() => 1)] };
}

function pack(rows: Row[], vocab: number, rowLength: number, pad: number, eos: number | undefined): TokenData {
  const n = rows.length * rowLength;
  const ids = idBytesFor(vocab) === 2 ? new Uint16Array(n) : new Uint32Array(n);
  const mask = new Uint8Array(n);
  rows.forEach((r, i) => {
    ids.fill(pad, i * rowLength, (i + 1) * rowLength);
    ids.set(r.ids, i * rowLength);
    mask.set(r.mask, i * rowLength);
  });
  return { ids, vocab, rowLength, mask, ...(eos !== undefined ? { eos } : {}) };
}

/** Generate the training and held-out evaluation sets of a probe. */
export function generateProbe(o: ProbeOptions): ProbeSet {
  if (!PROBE_KINDS.includes(o.kind)) throw new StrataError(`unknown probe '${o.kind}'`, undefined, `valid: ${PROBE_KINDS.join(", ")}`);
  const nTrain = posInt(o.train, 1000, "train (rows)", "e.g. --train 10000");
  const nEval = posInt(o.eval, 200, "eval (rows)", "e.g. --eval 1000");
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) throw new StrataError(`probe: seed must be a non-negative integer, got ${o.seed}`);
  let make: (rng: Rng) => Row;
  let vocab: number;
  let eos: number | undefined;
  let pad = 0;
  const config: Record<string, string | number> = { kind: o.kind, seed: o.seed, train: nTrain, eval: nEval };
  if (o.kind === "phonebook") {
    const tok = o.tokenizer ?? byteTokenizer();
    const entries = posInt(o.entries, 8, "entries", "e.g. --entries 8");
    if (entries > FIRST.length * LAST.length) throw new StrataError(`probe: at most ${FIRST.length * LAST.length} entries per phonebook (distinct names), got ${entries}`);
    vocab = tok.vocab;
    eos = tok.eos;
    pad = tok.eos ?? 0;
    make = (rng) => phoneRow(rng, tok, entries);
    Object.assign(config, { entries, tokenizer: tok.name });
  } else {
    vocab = posInt(o.vocab, 256, "vocab", "e.g. --vocab 256");
    if (o.kind === "mqar") {
      const K = Math.floor((vocab - 1) / 2);
      if (vocab < 5) throw new StrataError(`probe mqar: vocab ${vocab} is too small (needs ≥ 5: id 0, keys, values)`);
      const pairs = posInt(o.pairs, Math.min(16, K), "pairs", "e.g. --pairs 16");
      const queries = posInt(o.queries, pairs, "queries", `1 … pairs (${pairs})`);
      if (pairs > K) throw new StrataError(`probe mqar: ${pairs} distinct keys need vocab ≥ ${2 * pairs + 1}, got vocab ${vocab}`, undefined, `keys come from [1, ${1 + K}); lower --pairs to ≤ ${K} or raise --vocab`);
      if (queries > pairs) throw new StrataError(`probe mqar: ${queries} queries but only ${pairs} keys (queries ask distinct keys)`, undefined, `use --queries ≤ ${pairs}`);
      make = (rng) => mqarRow(rng, vocab, pairs, queries);
      Object.assign(config, { vocab, pairs, queries, keys: `[1, ${1 + K})`, values: `[${1 + K}, ${vocab})` });
    } else {
      if (vocab < 3) throw new StrataError(`probe copy: vocab ${vocab} is too small (needs ≥ 3: BOS 0, SEP 1, content)`);
      const length = posInt(o.length, 32, "length", "e.g. --length 32");
      make = (rng) => copyRow(rng, vocab, length);
      Object.assign(config, { vocab, length, bos: 0, sep: 1 });
    }
  }
  const trainRng = new Rng(`probe:${o.kind}:${o.seed}:train`);
  const evalRng = new Rng(`probe:${o.kind}:${o.seed}:eval`);
  const train = Array.from({ length: nTrain }, () => make(trainRng));
  const seen = new Set(train.map((r) => r.ids.join(",")));
  const evalRows: Row[] = [];
  for (let tries = 0; evalRows.length < nEval; tries++) {
    if (tries > 20 * nEval + 1000)
      throw new StrataError(`probe ${o.kind}: could not draw ${nEval} evaluation rows that differ from the training rows`, undefined, "the configuration has too few distinct rows; raise --vocab, --pairs, --length or --entries");
    const r = make(evalRng);
    const k = r.ids.join(",");
    if (seen.has(k)) continue;
    seen.add(k);
    evalRows.push(r);
  }
  const longest = Math.max(...train.map((r) => r.ids.length), ...evalRows.map((r) => r.ids.length));
  const rowLength = o.seqLen ?? longest;
  if (!Number.isInteger(rowLength) || rowLength < longest)
    throw new StrataError(`probe ${o.kind}: rows need ${longest} tokens but seqLen is ${o.seqLen}`, undefined, `raise --seq-len to ≥ ${longest} or shrink the probe`);
  config.rowLength = rowLength;
  return { train: pack(train, vocab, rowLength, pad, eos), eval: pack(evalRows, vocab, rowLength, pad, eos), config };
}
