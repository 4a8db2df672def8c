/**
 * `strata train` without a GPU: a stand-in bin/model (a Node script that answers like the real
 * one: progress on stderr, one JSON record per logged step / evaluation on stdout with --json)
 * checks the arguments passed through, the parsed records and summary, and the errors (bad
 * data files, a project without the train entry, no binary, no GPU, a failing run). The real
 * binary's training is checked on the GPU (tests/gpu/).
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatTrainSummary, train, trainArgs, type TrainOptions } from "../../compiler/cli/train.js";
import { writeTokenFile } from "../../compiler/data/tokenfile.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "strata-train-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A probe-like token file: `rows` rows of `rowLength` ids below `vocab`. */
function tokFile(name: string, vocab: number, rowLength = 9, rows = 4): string {
  const f = path.join(dir, name);
  const ids = new Uint16Array(rows * rowLength).map((_, i) => i % vocab);
  writeTokenFile(f, { ids, vocab, rowLength });
  return f;
}

/** A project folder with a manifest and a stand-in bin/model; `script` is the body run after the arguments are recorded. */
function fakeProject(script: string, o: { vocab?: number; train?: boolean; bin?: boolean } = {}): string {
  const p = path.join(dir, `fake-${Math.random().toString(36).slice(2)}`);
  mkdirSync(path.join(p, "bin"), { recursive: true });
  const entries: Record<string, unknown> = { forward: {}, prefill: {}, step: {} };
  if (o.train ?? true) entries.train = {};
  writeFileSync(path.join(p, "manifest.json"), JSON.stringify({ name: "fake", vocabSize: o.vocab ?? 256, entries }));
  if (o.bin ?? true) {
    writeFileSync(
      path.join(p, "bin", "model"),
      `#!/usr/bin/env node
require("fs").writeFileSync(${JSON.stringify(path.join(p, "args.json"))}, JSON.stringify(process.argv.slice(2)));
${script}
`,
    );
    chmodSync(path.join(p, "bin", "model"), 0o755);
  }
  return p;
}

const RUN = `
const out = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
for (let s = 1; s <= 4; s++) {
  process.stderr.write("\\rstep " + s + "/4  loss " + (3 - s * 0.5).toFixed(3));
  out({ step: s, loss: 3 - s * 0.5, lr: 1e-3 * s, grad_norm: 0.5, tokens_per_s: s === 1 ? 100 : 1000, mfu: s === 1 ? 0.01 : 0.4 });
  if (s % 2 === 0) out({ step: s, eval_loss: 2.5 - s * 0.25, accuracy: s / 8 });
}
process.stdout.write("done\\n");
process.stderr.write("\\n");
`;

const base = (data: string, more: Partial<TrainOptions> = {}): TrainOptions => ({ data, steps: 4, batch: 2, ...more });

describe("strata train", () => {
  it("passes the flags through, streams the progress and reads the JSON records", async () => {
    const p = fakeProject(RUN);
    const data = tokFile("mqar.tok", 200);
    const ev = tokFile("mqar.eval.tok", 200);
    const progress: string[] = [];
    const r = await train(p, base(data, { evalData: ev, lr: 0.001, warmup: 2, seed: 7, evalEvery: 2, out: path.join(dir, "run"), clip: 0.5, extra: ["--eval-batches", "3"] }), { progress: (s) => progress.push(s), log: () => {} });
    const args = JSON.parse(readFileSync(path.join(p, "args.json"), "utf8")) as string[];
    expect(args.slice(0, 3)).toEqual(["train", "--data", data]);
    expect(args).toEqual(expect.arrayContaining(["--eval-data", ev, "--steps", "4", "--batch", "2", "--lr", "0.001", "--warmup", "2", "--seed", "7", "--eval-every", "2", "--clip", "0.5", "--out", path.join(dir, "run"), "--json"]));
    expect(args.slice(-2)).toEqual(["--eval-batches", "3"]);
    expect(args).not.toContain("--accum");
    expect(progress.join("")).toContain("step 4/4");
    expect(r.steps.map((s) => s.step)).toEqual([1, 2, 3, 4]);
    expect(r.evals).toEqual([
      { step: 2, eval_loss: 2, accuracy: 0.25 },
      { step: 4, eval_loss: 1.5, accuracy: 0.5 },
    ]);
    expect(r.other).toEqual(["done"]);
    const text = formatTrainSummary(r, { out: path.join(dir, "run"), batch: 2 });
    expect(text).toMatch(/loss {7}2\.5000 at step 1 → 1\.0000 at step 4/);
    expect(text).toMatch(/1000 tokens\/s, MFU 40\.0% \(mean of 3 steps\)/); // the first (warm-up) step left out
    expect(text).toMatch(/\n +4 +1\.5000 +50\.00%/);
  });

  it("a token stream without --seq trains on rows of the compiled sequence length (the documented default)", async () => {
    const p = fakeProject(RUN);
    const m = JSON.parse(readFileSync(path.join(p, "manifest.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(path.join(p, "manifest.json"), JSON.stringify({ ...m, maxSeqlen: 64 }));
    const stream = path.join(dir, "stream.tok");
    writeTokenFile(stream, { ids: new Uint16Array(1000).map((_, i) => i % 50), vocab: 50, rowLength: 0 });
    await train(p, base(stream), { log: () => {} });
    const args = JSON.parse(readFileSync(path.join(p, "args.json"), "utf8")) as string[];
    expect(args[args.indexOf("--seq") + 1]).toBe("64");
    // --seq given, a probe file (bin/model defaults to its rows) or a resumed run (its stored --seq): passed as is
    await train(p, base(stream, { seq: 16 }), { log: () => {} });
    expect(JSON.parse(readFileSync(path.join(p, "args.json"), "utf8"))).toEqual(expect.arrayContaining(["--seq", "16"]));
    await train(p, base(tokFile("rows.tok", 50)), { log: () => {} });
    expect(JSON.parse(readFileSync(path.join(p, "args.json"), "utf8"))).not.toContain("--seq");
    await train(p, base(stream, { resume: path.join(dir, "run") }), { log: () => {} });
    expect(JSON.parse(readFileSync(path.join(p, "args.json"), "utf8"))).not.toContain("--seq");
  });

  it("makes paths absolute for bin/model", () => {
    const a = trainArgs({ data: "d.tok", steps: 1, batch: 1, resume: "runs/a", weights: "w.safetensors" });
    expect(a[2]).toBe(path.resolve("d.tok"));
    expect(a).toEqual(expect.arrayContaining(["--resume", path.resolve("runs/a"), "--weights", path.resolve("w.safetensors")]));
  });

  it("checks the token files before running anything", async () => {
    const p = fakeProject(RUN, { vocab: 100 });
    await expect(train(p, base(path.join(dir, "nope.tok")), { log: () => {} })).rejects.toThrow(/--data .*nope\.tok does not exist/);
    const junk = path.join(dir, "junk.tok");
    writeFileSync(junk, "x".repeat(100));
    await expect(train(p, base(junk), { log: () => {} })).rejects.toThrow(/is not a Strata token file/);
    await expect(train(p, base(tokFile("big.tok", 300)), { log: () => {} })).rejects.toThrow(/vocabulary 300, larger than fake's 100/);
    await expect(train(p, base(tokFile("a.tok", 90), { evalData: tokFile("b.tok", 80) }), { log: () => {} })).rejects.toThrow(/--eval-data .* has vocabulary 80 but --data .* has 90/);
  });

  it("a project without the train entry, without a binary, or not a project says what to do", async () => {
    const data = tokFile("ok.tok", 50);
    await expect(train(fakeProject(RUN, { train: false }), base(data), { log: () => {} })).rejects.toThrow(/compiled without the train entry[\s\S]*strata compile --train/);
    await expect(train(fakeProject(RUN, { bin: false }), base(data), { log: () => {} })).rejects.toThrow(/bin\/model is missing: the project is not built/);
    const empty = path.join(dir, "empty");
    mkdirSync(empty, { recursive: true });
    await expect(train(empty, base(data), { log: () => {} })).rejects.toThrow(/has no manifest\.json/);
    await expect(train(path.join(dir, "nope"), base(data), { log: () => {} })).rejects.toThrow(/does not exist/);
    await expect(train(data, base(data), { log: () => {} })).rejects.toThrow(/is neither a project folder nor an architecture file \(\.ts\)/);
  });

  it("an architecture file with --no-compile trains its compiled project (or says it is not compiled)", async () => {
    const arch = path.resolve(__dirname, "../../examples/tiny-hybrid.ts");
    const data = tokFile("arch.tok", 50);
    await expect(train(arch, base(data, { compile: false, check: false, project: path.join(dir, "not-there") }), { log: () => {} })).rejects.toThrow(/tiny-hybrid is not compiled yet .*--no-compile was given/);
    const p = fakeProject(RUN);
    const r = await train(arch, base(data, { compile: false, check: false, project: p }), { progress: () => {}, log: () => {} });
    expect(r.project).toBe(p);
    expect(r.steps).toHaveLength(4);
  });

  it("no GPU: an error that says so and how to run it elsewhere", async () => {
    const p = fakeProject(`process.stderr.write("error: CUDA error in cudaGetDeviceCount(&n) at program_model.cu:40: cudaErrorNoDevice (no CUDA-capable device is detected)\\n"); process.exit(1);`);
    const e = (await train(p, base(tokFile("g.tok", 50)), { progress: () => {}, log: () => {} }).then(
      () => undefined,
      (x: unknown) => x,
    )) as Error & { hint?: string };
    expect(e.message).toMatch(/no usable GPU on this machine \(.*cudaErrorNoDevice/);
    expect(String(e.hint)).toMatch(/needs no Node/);
  });

  it("a failing run reports bin/model's last lines and its exit code", async () => {
    const p = fakeProject(`process.stderr.write("step 3: loss is nan\\nerror: train: non-finite gradient at step 3 in layers.1.mixer.in_proj.weight\\n"); process.exit(1);`);
    await expect(train(p, base(tokFile("n.tok", 50)), { progress: () => {}, log: () => {} })).rejects.toThrow(/train failed \(exit 1\): .*non-finite gradient at step 3 in layers\.1\.mixer\.in_proj\.weight/);
  });

  it("the command line: required flags and bad numbers are argument errors (exit 2); arguments after -- pass through", async () => {
    const { main } = await import("../../compiler/cli/main.js");
    const p = fakeProject(RUN);
    const data = tokFile("cli.tok", 50);
    const err: string[] = [];
    const log: string[] = [];
    const origLog = console.log;
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof process.stderr.write;
    try {
      expect(await main(["train", p, "--steps", "2", "--batch", "1"])).toBe(2);
      expect(await main(["train", p, "--data", data, "--steps", "0", "--batch", "1"])).toBe(2);
      expect(await main(["train", p, "--data", data, "--steps", "2", "--batch", "1", "--lr", "fast"])).toBe(2);
      // after --: passed to bin/model as they are, after the known flags
      console.log = (s: string) => void log.push(String(s));
      expect(await main(["train", p, "--data", data, "--steps", "4", "--batch", "1", "--accum", "2", "--", "--new-flag", "3"])).toBe(0);
    } finally {
      process.stderr.write = orig;
      console.log = origLog;
    }
    const all = err.join("");
    const args = JSON.parse(readFileSync(path.join(p, "args.json"), "utf8")) as string[];
    expect(args).toEqual(["train", "--data", data, "--steps", "4", "--batch", "1", "--accum", "2", "--json", "--new-flag", "3"]);
    expect(log.join("\n")).toMatch(/loss {7}2\.5000 at step 1 → 1\.0000 at step 4/);
    expect(all).toMatch(/required option '--data <file>' not specified/);
    expect(all).toMatch(/--steps must be a positive whole number, got '0'/);
    expect(all).toMatch(/--lr must be a non-negative number, got 'fast'/);
  });
});
