/**
 * `strata data`: make token files for training (compiler/data/tokenfile.ts documents the format).
 *
 *   strata data tokenize <files…> -o out.tok [--tokenizer byte|gpt2|tokenizer.json] [--eval-fraction f]
 *   strata data corpus <moby-dick|sotu> -o out.tok [--tokenizer …] [--eval-fraction f]
 *   strata data probe <mqar|copy|phonebook> -o DIR [--train N] [--eval N] [--seed S] [probe options]
 *   strata data inspect <file.tok> [--tokenizer …] [--rows N]
 *
 * Every written `.tok` gets a `.json` beside it: where the tokens came from and how they were made.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { StrataError } from "../ir/errors.js";
import {
  CORPORA,
  generateProbe,
  loadCorpus,
  loadTokenizer,
  PROBE_KINDS,
  readTextFiles,
  readTokenFile,
  tokenizeDocuments,
  TOKENIZER_HINT,
  writeTokenFile,
  type Document,
  type ProbeKind,
  type TokenData,
} from "../data/index.js";

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
}

function nonNegInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got '${v}'`);
  return n;
}

function fraction(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError(`expected a fraction in [0, 1), got '${v}'`);
  return n;
}

/** out.tok → out.eval.tok */
export function evalPath(out: string): string {
  const ext = path.extname(out) || ".tok";
  return `${out.slice(0, out.length - path.extname(out).length)}.eval${ext}`;
}

function write(file: string, d: TokenData, meta: Record<string, unknown>): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeTokenFile(file, d);
  const rows = d.rowLength ? `, ${d.ids.length / d.rowLength} rows of ${d.rowLength}` : "";
  writeFileSync(`${file}.json`, `${JSON.stringify({ format: "strata-tokens/1", ...meta, tokens: d.ids.length, vocab: d.vocab, rowLength: d.rowLength, eos: d.eos ?? null, mask: !!d.mask }, null, 1)}\n`);
  console.error(`wrote ${file}: ${d.ids.length} tokens (vocab ${d.vocab}${rows}${d.mask ? ", loss mask" : ""})`);
}

async function writeText(docs: Document[], o: { out: string; tokenizer: string; evalFraction: number }, source: Record<string, unknown>): Promise<void> {
  const tok = await loadTokenizer(o.tokenizer);
  const s = tokenizeDocuments(docs, tok, o.evalFraction);
  write(o.out, s.train, { ...source, tokenizer: tok.name, split: "train", documents: s.trainDocs });
  if (s.eval) write(evalPath(o.out), s.eval, { ...source, tokenizer: tok.name, split: "eval", documents: s.evalDocs });
}

export function registerDataCommand(program: Command): void {
  const data = program.command("data").description("make token files for training: tokenize text, npm corpora, synthetic probes (MQAR, copying, phonebook)");

  data
    .command("tokenize")
    .description("tokenize text files (one document each) into a token file")
    .argument("<files...>", "text files")
    .requiredOption("-o, --out <file>", "output token file (.tok)")
    .option("--tokenizer <spec>", TOKENIZER_HINT, "byte")
    .option("--eval-fraction <f>", "hold out the last documents (about this fraction) in <out>.eval.tok", fraction, 0)
    .action(async (files: string[], o: { out: string; tokenizer: string; evalFraction: number }) => {
      await writeText(readTextFiles(files), o, { source: files });
    });

  data
    .command("corpus")
    .description(`tokenize an npm text corpus, offline: ${Object.entries(CORPORA).map(([k, c]) => `${k} (${c.doc})`).join("; ")}`)
    .argument("<name>", Object.keys(CORPORA).join(" | "))
    .requiredOption("-o, --out <file>", "output token file (.tok)")
    .option("--tokenizer <spec>", TOKENIZER_HINT, "byte")
    .option("--eval-fraction <f>", "hold out the last documents (about this fraction) in <out>.eval.tok", fraction, 0.05)
    .action(async (name: string, o: { out: string; tokenizer: string; evalFraction: number }) => {
      await writeText(loadCorpus(name), o, { source: `corpus:${name}` });
    });

  data
    .command("probe")
    .description("generate a synthetic probe (training and held-out evaluation sets, loss mask on the answers)")
    .argument("<kind>", PROBE_KINDS.join(" | "))
    .requiredOption("-o, --out <dir>", "output folder: <kind>.train.tok and <kind>.eval.tok")
    .option("--train <n>", "training rows", positiveInt, 10000)
    .option("--eval <n>", "evaluation rows", positiveInt, 1000)
    .option("--seed <n>", "random seed", nonNegInt, 0)
    .option("--vocab <n>", "mqar/copy: vocabulary size", positiveInt, 256)
    .option("--pairs <n>", "mqar: key-value pairs per row", positiveInt)
    .option("--queries <n>", "mqar: queries per row (default: pairs)", positiveInt)
    .option("--length <n>", "copy: tokens to copy", positiveInt)
    .option("--entries <n>", "phonebook: entries per book", positiveInt)
    .option("--seq-len <n>", "phonebook: pad rows to this length", positiveInt)
    .option("--tokenizer <spec>", `phonebook: ${TOKENIZER_HINT}`, "byte")
    .action(async (kind: string, o: { out: string; train: number; eval: number; seed: number; vocab: number; pairs?: number; queries?: number; length?: number; entries?: number; seqLen?: number; tokenizer: string }) => {
      if (!(PROBE_KINDS as readonly string[]).includes(kind)) throw new StrataError(`unknown probe '${kind}'`, undefined, `valid: ${PROBE_KINDS.join(", ")}`);
      const tokenizer = kind === "phonebook" ? await loadTokenizer(o.tokenizer) : undefined;
      const p = generateProbe({ ...o, kind: kind as ProbeKind, tokenizer });
      write(path.join(o.out, `${kind}.train.tok`), p.train, { source: `probe:${kind}`, split: "train", config: p.config });
      write(path.join(o.out, `${kind}.eval.tok`), p.eval, { source: `probe:${kind}`, split: "eval", config: p.config });
    });

  data
    .command("inspect")
    .description("print a token file's header and its first tokens (decoded with --tokenizer)")
    .argument("<file>", "token file")
    .option("--tokenizer <spec>", `decode with this tokenizer: ${TOKENIZER_HINT}`)
    .option("--rows <n>", "rows (or 64-token chunks of a stream) to show", positiveInt, 2)
    .action(async (file: string, o: { tokenizer?: string; rows: number }) => {
      const d = readTokenFile(file);
      const width = d.rowLength || 64;
      console.log(`${file}: ${d.ids.length} ids, vocab ${d.vocab}, ${d.rowLength ? `${d.ids.length / d.rowLength} rows of ${d.rowLength}` : "one stream"}, eos ${d.eos ?? "none"}, ${d.mask ? `loss mask on ${d.mask.reduce((a, b) => a + b, 0)} tokens` : "no loss mask"}`);
      const tok = o.tokenizer ? await loadTokenizer(o.tokenizer) : undefined;
      for (let r = 0; r < o.rows && r * width < d.ids.length; r++) {
        const ids = [...d.ids.subarray(r * width, (r + 1) * width)];
        const mask = d.mask ? [...d.mask.subarray(r * width, (r + 1) * width)] : undefined;
        console.log(`[${r}] ${ids.map((v, i) => (mask?.[i] ? `*${v}` : `${v}`)).join(" ")}`);
        if (tok) console.log(`    ${JSON.stringify(tok.decode(ids))}`);
      }
    });
}
