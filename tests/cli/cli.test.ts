/**
 * The `strata` command line, run as a subprocess (`node bin/strata.js ...` from the repo root):
 * stdout, stderr and exit codes of info / ir / check / compile / emit, and the error format
 * (`error: file:line:col: message` + hint, no stack trace unless --verbose, exit 1; usage errors
 * exit 2). Each launch costs a few seconds (tsx + the ts-morph type check), so most use --no-check
 * and numeric detail is checked in-process with modelInfo().
 */
import { afterAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { fmtBytes, modelInfo, type ModelInfo } from "../../compiler/cli/info.js";
import { fromJson, toJsonText } from "../../compiler/ir/graph.js";
import hybrid8b from "../../examples/mamba2-hybrid-8b.js";
import transformer8b from "../../examples/transformer-8b.js";
import mamba8b from "../../examples/mamba-8b.js";
import mamba2_8b from "../../examples/mamba2-8b.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HYBRID_PATTERN = "M-M-M--M-M*-M-M-M-M--M*-M-M-M-M-M*--M-M-M-M-M*-M--M-M-M-";
const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

interface Run {
  stdout: string;
  stderr: string;
  code: number;
}

/** Run the CLI from the repo root; never throws on a non-zero exit. */
async function strata(...args: string[]): Promise<Run> {
  const r = await execa("node", ["bin/strata.js", ...args], { cwd: ROOT, reject: false, env: { NO_COLOR: "1", FORCE_COLOR: "0" } });
  return { stdout: r.stdout, stderr: r.stderr, code: r.exitCode ?? -1 };
}

const STACK_LINE = /^\s+at .+/m;

/** 1-based line of the first line of a fixture that contains `text`. */
function fixtureLine(fixture: string, text: string): number {
  const lines = readFileSync(path.join(ROOT, fixture), "utf8").split("\n");
  const i = lines.findIndex((l) => l.includes(text));
  if (i < 0) throw new Error(`${fixture} has no line containing ${text}`);
  return i + 1;
}

/** The line of `strata info` text output that starts with `prefix`. */
function line(out: string, prefix: string): string {
  const l = out.split("\n").find((x) => x.startsWith(prefix));
  if (l === undefined) throw new Error(`no line starting with '${prefix}' in:\n${out}`);
  return l;
}

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "strata-cli-"));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

// ---- info ---------------------------------------------------------------------------------

describe("strata info", () => {
  let hybridInfo: ModelInfo | undefined;
  /** modelInfo() of the 8B hybrid, computed once (about a second). */
  const hybrid = () => (hybridInfo ??= modelInfo(hybrid8b));

  it("mamba2-hybrid-8b: pattern, parameters, target vs actual ratios, FLOPs, KV cache and state", async () => {
    const r = await strata("info", "examples/mamba2-hybrid-8b.ts", "--no-check"); // the type check is covered by `check` and uses-helper below
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(line(out, "model")).toBe("model      mamba2-hybrid-8b");
    expect(line(out, "layers")).toBe("layers     56");
    expect(line(out, "pattern")).toBe(`pattern    ${HYBRID_PATTERN}`);
    expect(line(out, "parameters")).toBe("parameters 8.655B (8,654,517,248)");
    // target vs actual layer mix: 24 M, 28 -, 4 *
    expect(out).toMatch(/^\s+M\s+mamba2\s+24\s+42\.9%\s+42\.0%$/m);
    expect(out).toMatch(/^\s+-\s+mlp\s+28\s+50\.0%\s+50\.0%$/m);
    expect(out).toMatch(/^\s+\*\s+attention\s+4\s+7\.1%\s+8\.0%$/m);
    expect(out).toMatch(/^\s+embedding\s+1\.049B\s+12\.1%$/m);
    // the 28 MLPs use exact GeLU (examples/lib/paper.ts), counted with more FLOPs per element than squared ReLU
    expect(line(out, "FLOPs/token")).toMatch(/^FLOPs\/token \(context 4096\)\s+forward 15\.48 GFLOP\s+training 46\.44 GFLOP \(3× forward\)$/);
    expect(line(out, "weights")).toMatch(/^weights\s+16\.12 GiB$/);
    expect(line(out, "KV cache")).toMatch(/^KV cache\s+16\.00 KiB per token$/);
    expect(line(out, "SSM + conv state")).toMatch(/^SSM \+ conv state\s+98\.81 MiB per sequence$/);
    expect(line(out, "memory")).toBe(
      "memory at context 4096, batch 1: 16.28 GiB (weights 16.12 GiB + KV 64.00 MiB + state 98.81 MiB; activations not included)",
    );
  });

  it("--json is parseable and agrees with modelInfo()", async () => {
    const r = await strata("info", "examples/mamba2-hybrid-8b.ts", "--json", "--no-check");
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as ModelInfo;
    expect(j.params.total).toBe(8_654_517_248);
    expect(j.pattern).toBe(HYBRID_PATTERN);
    expect(j.kvBytesPerToken).toBe(16 * KiB);
    expect(j.memory).toMatchObject({ context: 4096, batch: 1, kvCache: 16 * KiB * 4096 });
    expect(j).toEqual(JSON.parse(JSON.stringify(hybrid())));
  });

  it("--train adds the memory of a train step: weights + 12 bytes per parameter + the train arena, smaller with --recompute", async () => {
    const r = await strata("info", "examples/tiny-transformer.ts", "--train", "--batch", "4", "--context", "256", "--json", "--no-check");
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as ModelInfo;
    const t = j.training!;
    expect(t).toMatchObject({ batch: 4, seq: 256 });
    expect(t.optimizer).toBe(12 * j.params.total);
    expect(t.weights).toBe(j.weightBytes);
    expect(t.arena.mlp!).toBeLessThan(t.arena.none);
    expect(t.arena.all).toBeLessThan(t.arena.none);
    expect(t.total.none).toBe(t.weights + t.optimizer + t.arena.none);
    const text = await strata("info", "examples/tiny-transformer.ts", "--train", "--batch", "4", "--context", "256", "--no-check");
    expect(text.stdout).toMatch(/^training at batch 4 × 256: .* \(weights .* \+ fp32 master and AdamW moments .* \+ train arena .*\)$/m);
    expect(text.stdout).toMatch(/the train arena with --recompute mlp .*, all /);
  });

  it("--context 16384 --batch 4 scales the memory line: KV = 16 KiB × context × batch, state × batch", async () => {
    const r = await strata("info", "examples/mamba2-hybrid-8b.ts", "--context", "16384", "--batch", "4", "--no-check");
    expect(r.code).toBe(0);
    const mem = line(r.stdout, "memory");
    const kv = 16 * KiB * 16384 * 4;
    expect(kv).toBe(1 * GiB);
    const { stateBytesPerSequence, weightBytes } = hybrid();
    const state = stateBytesPerSequence * 4;
    const total = weightBytes + kv + state;
    expect(mem).toBe(
      `memory at context 16384, batch 4: ${fmtBytes(total)} (weights ${fmtBytes(weightBytes)} + KV 1.00 GiB + state ${fmtBytes(state)}; activations not included)`,
    );
    expect(mem).toContain("state 395.25 MiB");
    expect(mem).toContain("17.51 GiB");
    // the decode roofline: weights + per sequence (state read and written, KV read, one row written)
    const step = weightBytes + 4 * (2 * stateBytesPerSequence + 16 * KiB * 16384 + 16 * KiB);
    expect(line(r.stdout, "decode")).toBe(
      `decode at context 16384, batch 4: ${fmtBytes(step)} per step (weights + state read and written + KV read) → at most ${((4 * 4.8e12) / step).toFixed(0)} tok/s at 4.8 TB/s (H200 HBM)`,
    );
    // per-token / per-sequence figures do not change; FLOPs/token grows with the context (attention)
    expect(line(r.stdout, "KV cache")).toMatch(/16\.00 KiB per token/);
    expect(line(r.stdout, "FLOPs/token")).toMatch(/^FLOPs\/token \(context 16384\)/);
  });

  it("the hybrid's numbers match an independent count of its layers", () => {
    const i = hybrid();
    const d = 4096, V = 256000;
    const attn = (32 + 2 * 8) * 128 * d + d * 32 * 128; // qkv + o_proj
    const mlp = 2 * 16384 * d;
    const dIn = 2 * d, H = dIn / 64, G = 8, N = 128, conv = dIn + 2 * G * N;
    const m2 = (2 * dIn + 2 * G * N + H) * d + conv * 4 + conv + 3 * H + dIn + d * dIn; // in_proj, conv w+b, dt_bias/A_log/D, norm, out_proj
    expect(i.params.byComponent).toEqual({ embedding: V * d, lm_head: V * d, attention: 4 * attn, mlp: 28 * mlp, mamba2: 24 * m2, norms: 57 * d });
    expect(i.params.total).toBe(8_654_517_248);
    expect(i.weightBytes).toBe(2 * i.params.total + 2 * 24 * 3 * H); // bf16, except f32 dt_bias / A_log / D
    expect(i.kvBytesPerToken).toBe(4 * 2 * 8 * 128 * 2); // 4 layers × (k, v) × 8 kv heads × 128 × bf16
    // per Mamba-2 layer: f32 SSM state H·P·N plus f32 conv state (dConv−1)·convDim
    expect(i.stateBytesPerSequence).toBe(24 * (H * 64 * N * 4 + 3 * conv * 4));
    expect(i.stateBytesPerSequence / MiB).toBeCloseTo(98.81, 2);
    // forward FLOPs ≈ 2 × non-embedding params (+ attention / scan terms), training = 3 × forward
    const dense = 2 * (i.params.total - V * d);
    expect(i.flopsPerToken.forward).toBeGreaterThan(dense);
    expect(i.flopsPerToken.forward).toBeLessThan(1.05 * dense);
    expect(i.flopsPerToken.training).toBe(3 * i.flopsPerToken.forward);
    expect(Object.values(i.counts).map((c) => [c.symbol, c.count, c.target])).toEqual([
      ["M", 24, expect.closeTo(0.42, 10)],
      ["-", 28, 0.5],
      ["*", 4, 0.08],
    ]);
  });

  it("the other 8B examples: transformer 8.54B, mamba 8.15B, mamba2 8.24B (in-process)", () => {
    const t = modelInfo(transformer8b);
    expect(t.params.total).toBe(8_540_135_424);
    expect(t.kvBytesPerToken).toBe(32 * 2 * 32 * 128 * 2); // MHA, 32 layers
    expect(t.stateBytesPerSequence).toBe(0);
    expect(t.pattern).toBe("*-".repeat(32));
    const m1 = modelInfo(mamba8b);
    expect(m1.params.total).toBe(8_148_783_104);
    expect(m1.kvBytesPerToken).toBe(0);
    expect(m1.memory.kvCache).toBe(0);
    const m2 = modelInfo(mamba2_8b);
    expect(m2.params.total).toBe(8_236_999_680);
    expect(m2.kvBytesPerToken).toBe(0);
    const fmt = (i: ModelInfo) => `${(i.params.total / 1e9).toFixed(2)}B`;
    expect([t, m1, m2].map(fmt)).toEqual(["8.54B", "8.15B", "8.24B"]);
  });

  it("an arch file importing a helper file of its own loads and type-checks (fixture pair)", async () => {
    const r = await strata("info", "tests/fixtures/uses-helper.ts"); // type check on: covers lib/my-layers.ts too
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(line(r.stdout, "pattern")).toBe("pattern    *G*G");
    expect(r.stdout).toMatch(/^\s+G\s+gated_mlp\s+2\s+50\.0%\s+-$/m);
  });

  it("a user's own folder with no package.json (CommonJS scope) loads as ES modules, with exact error lines", async () => {
    const dir = tmp();
    const dsl = path.join(ROOT, "compiler/dsl/index.js");
    mkdirSync(path.join(dir, "lib"));
    writeFileSync(path.join(dir, "lib/layers.ts"), `import { mlp } from ${JSON.stringify(dsl)};\nexport const myMlp = () => mlp({ hidden: 256, act: "gelu" });\n`);
    writeFileSync(path.join(dir, "arch.ts"), `import { model, stack } from ${JSON.stringify(dsl)};\nimport { myMlp } from "./lib/layers.js";\nexport default model({ name: "mine", vocab: 256, dModel: 64, layers: stack({ pattern: "--", "-": myMlp() }) });\n`);
    const ok = await strata("info", path.join(dir, "arch.ts"), "--no-check");
    expect(ok.stderr).toBe("");
    expect(line(ok.stdout, "pattern")).toBe("pattern    --");
    writeFileSync(path.join(dir, "bad.ts"), `import { attention, model, stack } from ${JSON.stringify(dsl)};\n\nexport default model({\n  name: "bad", vocab: 256, dModel: 64,\n  layers: stack({ pattern: "*", "*": attention({ heads: 4, kvHeads: 3 }) }),\n});\n`);
    const bad = await strata("info", path.join(dir, "bad.ts"), "--no-check");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${path.join(dir, "bad.ts")}:5:`);
    expect(bad.stderr).toContain("kvHeads 3 does not divide heads 4");
  });
});

// ---- ir -------------------------------------------------------------------------------------

describe("strata ir", () => {
  it("--json parses with fromJson and re-serialises byte-identically", async () => {
    const r = await strata("ir", "examples/tiny-hybrid.ts", "--json", "--no-check");
    expect(r.code).toBe(0);
    const g = fromJson(JSON.parse(r.stdout));
    expect(toJsonText(g)).toBe(r.stdout);
    expect(g.name).toBe("tiny-hybrid");
    expect(g.outputs.logits!.shape).toEqual(["B", "T", 512]);
  });

  it("--step prints the decode graph with explicit state inputs and outputs", async () => {
    const r = await strata("ir", "examples/tiny-hybrid.ts", "--step", "--no-check");
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/= input\(\) \{name="tokens"\} : i32\[B, 1\]/);
    for (const s of ["layers.0.mixer.conv", "layers.0.mixer.ssm", "layers.3.mixer.ssm"]) expect(out).toContain(`input() {name="state.${s}"} : f32[`);
    expect(out).toMatch(/input\(\) \{name="state\.layers\.1\.mixer\.k"\} : bf16\[B, P, 2, 32\]/);
    expect(out).toMatch(/input\(\) \{name="state\.layers\.1\.mixer\.v"\} : bf16\[B, P, 2, 32\]/);
    expect(out).toMatch(/^output logits = %\d+$/m);
    expect(out).toMatch(/^output layers\.0\.mixer\.ssm = %\d+$/m);
    expect(out).toContain("P+1");
  });
});

// ---- check ----------------------------------------------------------------------------------

describe("strata check", () => {
  it("accepts tiny-mamba2", async () => {
    const r = await strata("check", "examples/tiny-mamba2.ts");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^examples\/tiny-mamba2\.ts: ok \(tiny-mamba2: \d+ layers, \d+ IR nodes, \d+ kernels\)$/);
  });

  it("--no-fold-casts / --no-in-place-concat model the compile without those rewrites (more train kernels)", async () => {
    const kernels = async (...flags: string[]) => {
      const r = await strata("check", "examples/tiny-mamba2.ts", "--train", ...flags);
      expect(r.code, r.stderr).toBe(0);
      return Number(/(\d+) kernels\)/.exec(r.stdout)![1]);
    };
    const on = await kernels();
    expect(await kernels("--no-fold-casts")).toBeGreaterThan(on);
    expect(await kernels("--no-in-place-concat")).toBeGreaterThan(on);
  });

  it("reports a TypeScript type error as file:line:col - error and exits 1", async () => {
    const r = await strata("check", "tests/fixtures/bad-types.ts");
    expect(r.code).toBe(1);
    const ln = fixtureLine("tests/fixtures/bad-types.ts", 'seqLen: "64"');
    expect(r.stderr).toMatch(new RegExp(`^tests/fixtures/bad-types\\.ts:${ln}:3 - error: Type 'string' is not assignable to type 'number'\\.`, "m"));
    expect(r.stderr).not.toMatch(STACK_LINE);
    expect(r.stdout).toBe("");
  });
});

// ---- bad input --------------------------------------------------------------------------------

describe("bad input: clear message naming file and line, exit 1, no stack trace", () => {
  async function fails(args: string[]): Promise<string> {
    const r = await strata(...args);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^error: /);
    expect(r.stderr, "no stack trace without --verbose").not.toMatch(STACK_LINE);
    expect(r.stderr).not.toContain("internal error");
    return r.stderr;
  }

  const at = (fixture: string, text: string) => `${fixture}:${fixtureLine(fixture, text)}:`;

  it("missing file", async () => {
    const err = await fails(["info", "tests/fixtures/does-not-exist.ts"]);
    expect(err).toContain("architecture file not found: tests/fixtures/does-not-exist.ts");
    expect(err).toMatch(/hint: pass a path to a \.ts file/);
  });

  it("unknown pattern symbol", async () => {
    const f = "tests/fixtures/bad-symbol.ts";
    const err = await fails(["info", f, "--no-check"]);
    expect(err).toContain(`${at(f, "stack({")}`);
    expect(err).toContain(`stack: unknown symbol 'X' at layer 2 of pattern "*-X-"`);
    expect(err).toContain("hint: valid symbols here: '*', '-'");
  });

  it("ratio out of range", async () => {
    const f = "tests/fixtures/bad-ratio.ts";
    const err = await fails(["info", f, "--no-check"]);
    expect(err).toContain(at(f, "stack({"));
    expect(err).toContain("ratio 'attention' = 1.5 is outside [0, 1]");
    expect(err).toContain("hint: ");
  });

  it("kvHeads not dividing heads", async () => {
    const f = "tests/fixtures/bad-kvheads.ts";
    const err = await fails(["info", f, "--no-check"]);
    expect(err).toContain(at(f, "attention({ heads: 8, kvHeads: 3 })"));
    expect(err).toContain("attention: kvHeads 3 does not divide heads 8");
    expect(err).toContain("hint: valid kvHeads: 1, 2, 4, 8");
  });

  it("mamba2 heads·headDim ≠ d_inner", async () => {
    const f = "tests/fixtures/bad-mamba2-heads.ts";
    const err = await fails(["ir", f, "--no-check"]);
    expect(err).toContain(at(f, "mamba2({"));
    expect(err).toContain("mamba2: heads·headDim = 3·32 = 96 but d_inner = expand·dModel = 2·64 = 128");
    expect(err).toMatch(/hint: valid headDim values divide 128/);
  });

  it("a file that exports no model", async () => {
    const err = await fails(["info", "tests/fixtures/no-model.ts", "--no-check"]);
    expect(err).toContain("tests/fixtures/no-model.ts does not export a model");
    expect(err).toContain("hint: end the file with `export default model(");
  });

  it("--verbose adds the stack trace", async () => {
    const f = "tests/fixtures/bad-symbol.ts";
    const r = await strata("info", f, "--no-check", "--verbose");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${at(f, "stack({")}`);
    expect(r.stderr).toMatch(STACK_LINE);
    expect(r.stderr).toContain("bad-symbol.ts");
  });

  it("a usage error (unknown option) exits 2 with a usage hint", async () => {
    const r = await strata("info", "--bogus", "examples/tiny-hybrid.ts");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: unknown option '--bogus'");
    expect(r.stderr).toMatch(/Usage: strata info \[options\] <arch>/);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });
});

// ---- compile / emit -----------------------------------------------------------------------------

describe("strata compile / emit", () => {
  it("compile --emit-only -o DIR --explain --dump DIR2 writes the project and the dumps", async () => {
    const out = tmp();
    const dump = tmp();
    const r = await strata("compile", "examples/tiny-hybrid.ts", "--emit-only", "-o", out, "--explain", "--dump", dump, "--no-check");
    expect(r.code, r.stderr).toBe(0);
    // --explain: every fusion group, with fused / rejected reasons
    expect(r.stdout).toMatch(/^group \d+ \[gemm\] linear @ layers\.\d+\.mixer: linear/m);
    expect(r.stdout).toMatch(/^group \d+ \[ssd\] ssdScan @ layers\.0\.mixer: .*ssdScan/m);
    expect(r.stdout).toMatch(/^\s+fused\s+epilogue \w+/m);
    expect(r.stdout).toMatch(/^\s+rejected\s+epilogue.*: .+/m);
    const groups = r.stdout.split("\n").filter((l) => l.startsWith("group ")).length;
    expect(r.stderr).toMatch(new RegExp(`^tiny-hybrid: ${groups} fused groups → (\\d+) kernels, arena [\\d.]+ MiB; wrote `, "m"));
    expect(r.stderr).toMatch(new RegExp(`^dumped the IR before and after fusion, .* to ${dump.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`, "m"));
    const nKernels = Number(/→ (\d+) kernels/.exec(r.stderr)![1]);

    // the project folder
    for (const f of ["manifest.json", "model.cu", "Makefile"]) expect(existsSync(path.join(out, f)), f).toBe(true);
    const kernels = readdirSync(path.join(out, "kernels")).filter((f) => f.endsWith(".cu")).sort();
    expect(kernels.length).toBe(nKernels);
    expect(kernels.some((k) => k.startsWith("ssd_"))).toBe(true);
    expect(readdirSync(path.join(out, "include")).length).toBeGreaterThan(0);
    expect(readdirSync(path.join(out, "runtime")).length).toBeGreaterThan(0);
    const manifest = JSON.parse(readFileSync(path.join(out, "manifest.json"), "utf8")) as { name: string; pattern: string; kernels: { name: string }[] };
    expect(manifest).toMatchObject({ name: "tiny-hybrid", pattern: "M*-M-" });
    expect(manifest.kernels.map((k) => `${k.name}.cu`).sort()).toEqual(kernels);

    // the dump folder
    for (const f of ["ir.json", "fused.json", "kernel-specs.json"]) expect(existsSync(path.join(dump, f)), f).toBe(true);
    const ir = readFileSync(path.join(dump, "ir.json"), "utf8");
    expect(toJsonText(fromJson(JSON.parse(ir)))).toBe(ir.trimEnd());
    expect(JSON.parse(readFileSync(path.join(dump, "fused.json"), "utf8"))).toHaveProperty("groups");
    expect((JSON.parse(readFileSync(path.join(dump, "kernel-specs.json"), "utf8")) as unknown[]).length).toBe(nKernels);
    const dumped = readdirSync(path.join(dump, "kernels")).sort();
    expect(dumped).toEqual(kernels);
    for (const k of dumped) expect(readFileSync(path.join(dump, "kernels", k), "utf8"), k).toBe(readFileSync(path.join(out, "kernels", k), "utf8"));
  });

  it("emit --kernel ssd prints the SSD kernels (and only those)", async () => {
    const r = await strata("emit", "examples/tiny-hybrid.ts", "--kernel", "ssd", "--no-check");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^\/\/ ===== kernels\/ssd_[0-9a-f]+\.cu$/);
    expect(lines[1]).toMatch(/^\/\/ ssd_[0-9a-f]+ /); // the kernel source's own first line
    // one SSD kernel per distinct body (the full-sequence and the cached schedules may differ)
    const heads = r.stdout.match(/^\/\/ ===== .*$/gm) ?? [];
    expect(heads.length).toBeGreaterThan(0);
    for (const h of heads) expect(h).toMatch(/^\/\/ ===== kernels\/ssd_[0-9a-f]+\.cu$/);
    expect(r.stdout.match(/launch_ssd_[0-9a-f]+\(/g)?.length).toBeGreaterThanOrEqual(heads.length);
  });

  it("emit --kernel nope fails, listing the kernels", async () => {
    const r = await strata("emit", "examples/tiny-hybrid.ts", "--kernel", "nope", "--no-check");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: no kernel named 'nope'");
    expect(r.stderr).toMatch(/hint: kernels: (\w+_[0-9a-f]+, )+\w+_[0-9a-f]+/);
    expect(r.stderr).toMatch(/ssd_[0-9a-f]+/);
    expect(r.stderr).not.toMatch(STACK_LINE);
  });
});
