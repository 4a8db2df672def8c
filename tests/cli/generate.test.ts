/**
 * `strata generate` without a GPU: a stand-in bin/model (a Node script that answers like the real
 * one: one "step i: id" line per token, JSON timings on stderr) checks the tokenisation, the
 * arguments passed, the streamed detokenisation (multi-byte UTF-8 split across steps) and the
 * errors. The real binary's generation is checked on the GPU (tests/gpu/entries.py).
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generate, TextStream } from "../../compiler/cli/generate.js";
import { byteTokenizer } from "../../compiler/data/tokenizers.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "strata-generate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fakeProject(vocab: number, answer: string): string {
  const p = path.join(dir, `fake-${vocab}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(path.join(p, "bin"), { recursive: true });
  writeFileSync(path.join(p, "manifest.json"), JSON.stringify({ name: "fake", vocabSize: vocab }));
  const ids = [...new TextEncoder().encode(answer)];
  writeFileSync(
    path.join(p, "bin", "model"),
    `#!/usr/bin/env node
const fs = require("fs");
fs.writeFileSync(${JSON.stringify(path.join(p, "args.json"))}, JSON.stringify(process.argv.slice(2)));
const ids = ${JSON.stringify(ids)};
ids.forEach((id, i) => process.stdout.write("step " + i + ": " + id + " -\\n"));
process.stderr.write(JSON.stringify({ batch: 1, promptTokens: 3, generatedTokens: ids.length, steps: ids.length - 1, timeToFirstTokenMs: 1.5, prefillTokensPerS: 2000, decodeMs: 3, decodeTokensPerS: 900 }) + "\\n");
`,
  );
  chmodSync(path.join(p, "bin", "model"), 0o755);
  return p;
}

describe("strata generate", () => {
  it("tokenises, passes the sampling options, streams the decoded text (UTF-8 split across steps)", async () => {
    const answer = "héllo wörld ✓";
    const p = fakeProject(256, answer);
    const chunks: string[] = [];
    const r = await generate(p, { prompt: "Hi!", tokenizer: "byte", maxNew: 20, temperature: 0.7, topK: 5, sampleSeed: 3, seed: 9, stopAtEos: true }, (s) => chunks.push(s));
    expect(r.text).toBe(answer);
    expect(chunks.join("")).toBe(answer);
    expect(chunks.some((c) => c.includes("\uFFFD"))).toBe(false);
    expect(r.stats.decodeTokensPerS).toBe(900);
    const args = JSON.parse(readFileSync(path.join(p, "args.json"), "utf8")) as string[];
    expect(args.slice(0, 5)).toEqual(["generate", "--prompt", "72,105,33", "--max-new", "20"]);
    expect(args).toEqual(expect.arrayContaining(["--temperature", "0.7", "--top-k", "5", "--sample-seed", "3", "--seed", "9"]));
  });

  it("a token id outside the model's vocabulary is an error naming both", async () => {
    const p = fakeProject(100, "x");
    await expect(generate(p, { prompt: "é", tokenizer: "byte", maxNew: 4, stopAtEos: true })).rejects.toThrow(/byte tokenizer gives id 195, outside fake's vocabulary of 100/);
  });

  it("a folder that is not a built project says what to do", async () => {
    const empty = path.join(dir, "empty");
    mkdirSync(empty);
    await expect(generate(empty, { prompt: "a", tokenizer: "byte", maxNew: 1, stopAtEos: true })).rejects.toThrow(/has no manifest\.json/);
    const noBin = path.join(dir, "nobin");
    mkdirSync(noBin);
    writeFileSync(path.join(noBin, "manifest.json"), "{}");
    await expect(generate(noBin, { prompt: "a", tokenizer: "byte", maxNew: 1, stopAtEos: true })).rejects.toThrow(/bin\/model is missing: the project is not built/);
    await expect(generate(path.join(dir, "nope"), { prompt: "a", tokenizer: "byte", maxNew: 1, stopAtEos: true })).rejects.toThrow(/does not exist/);
  });

  it("TextStream never prints a partial character and ends with the full text", () => {
    const s = new TextStream(byteTokenizer());
    const bytes = [...new TextEncoder().encode("a€b")];
    const parts = bytes.map((b) => s.push(b));
    expect(parts).toEqual(["a", "", "", "€", "b"]);
    expect(s.text).toBe("a€b");
  });
});
