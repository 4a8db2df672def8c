/**
 * Hardening of the `strata` CLI (issue 11), run as a subprocess like a user would: names that would
 * escape the output folder, concurrent compiles into one folder, size limits, filesystem errors,
 * `check` agreeing with `compile`, load errors and time limits, --version, --step/--prefill.
 * Architecture files are written fresh into a temporary folder (they import the DSL by path).
 */
import { afterAll, describe, expect, it } from "vitest";
import { execa } from "execa";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { makeCompiles, makeStepName } from "../../compiler/codegen/build.js";
import { fmtCount, fmtFlops } from "../../compiler/cli/info.js";
import { withDirLock, replaceDir } from "../../compiler/cli/output.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DSL = JSON.stringify(path.join(ROOT, "compiler/dsl/index.js"));
const STACK_LINE = /^\s+at .+/m;

interface Run {
  stdout: string;
  stderr: string;
  code: number;
}

async function strata(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await execa("node", [path.join(ROOT, "bin/strata.js"), ...args], { cwd: ROOT, reject: false, env: { NO_COLOR: "1", FORCE_COLOR: "0", ...env } });
  return { stdout: r.stdout, stderr: r.stderr, code: r.exitCode ?? -1 };
}

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "strata-hard-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) {
    try {
      chmodSync(d, 0o755);
    } catch {
      /* gone */
    }
    rmSync(d, { recursive: true, force: true });
  }
});

/** Write an arch file; returns its path and the 1-based line of the first line containing `mark`. */
function arch(dir: string, name: string, body: string, mark?: string): { file: string; line: number } {
  const file = path.join(dir, name);
  const text = `import { attention, mamba2, mlp, model, stack, layer } from ${DSL};\nvoid attention; void mamba2; void mlp; void stack; void layer;\n${body}\n`;
  writeFileSync(file, text);
  const line = mark ? text.split("\n").findIndex((l) => l.includes(mark)) + 1 : 0;
  return { file, line };
}

/** A small model every kernel family of which compiles: Mamba-2 (8 heads of 64) + MLP. */
const SMALL = (name: string) =>
  `export default model({ name: ${JSON.stringify(name)}, vocab: 256, dModel: 128, seqLen: 64, layers: stack({ pattern: "M-", M: mamba2({ dState: 64, headDim: 64, expand: 4, chunk: 64 }), "-": mlp({ hidden: 256 }) }) });`;

function expectUserError(r: Run): void {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/^error: /);
  expect(r.stderr).not.toContain("internal error");
  expect(r.stderr).not.toMatch(STACK_LINE);
}

// subprocess tests run concurrently: each uses its own temporary folder
describe.concurrent("names and the filesystem", () => {
  it("a model name that would escape build/ is rejected at its line; nothing is written", async () => {
    const d = tmp();
    const work = path.join(d, "a", "b");
    mkdirSync(work, { recursive: true });
    const a = arch(d, "escape.ts", SMALL("../../escaped"), "export default");
    const r = await execa("node", [path.join(ROOT, "bin/strata.js"), "compile", a.file, "--emit-only", "--no-check"], { cwd: work, reject: false });
    expectUserError({ stdout: r.stdout, stderr: r.stderr, code: r.exitCode ?? -1 });
    expect(r.stderr).toContain(`${a.file}:${a.line}:`);
    expect(r.stderr).toContain(`model: name "../../escaped" contains '..'`);
    expect(r.stderr).toMatch(/hint: a name is 1 to 64 characters from A-Z a-z 0-9 \. _ -/);
    expect(readdirSync(d).sort()).toEqual(["a", "escape.ts"]);
    expect(readdirSync(work)).toEqual([]);
  });

  it("-o pointing at a file, or below a file: says so, exit 1", async () => {
    const d = tmp();
    const a = arch(d, "ok.ts", SMALL("ok"));
    const f = path.join(d, "afile");
    writeFileSync(f, "x");
    let r = await strata(["compile", a.file, "--emit-only", "--no-check", "-o", f]);
    expectUserError(r);
    expect(r.stderr).toContain(`-o ${f}: this is a file, not a folder`);
    r = await strata(["compile", a.file, "--emit-only", "--no-check", "-o", path.join(f, "sub")]);
    expectUserError(r);
    expect(r.stderr).toContain(`${f} is a file, so no folder can be created under it`);
    expect(readFileSync(f, "utf8")).toBe("x");
  });

  it("-o is replaced as a whole, so a folder with other files, or the current folder, is refused", async () => {
    const d = tmp();
    const a = arch(d, "ok.ts", SMALL("ok"));
    let r = await strata(["compile", a.file, "--emit-only", "--no-check", "-o", d]); // holds ok.ts
    expectUserError(r);
    expect(r.stderr).toContain(`-o ${d}: this folder holds other files (it has no Strata manifest.json)`);
    expect(readdirSync(d)).toEqual(["ok.ts"]);
    const inside = path.join(d, "work");
    mkdirSync(inside);
    const r2 = await execa("node", [path.join(ROOT, "bin/strata.js"), "compile", a.file, "--emit-only", "--no-check", "-o", "."], { cwd: inside, reject: false });
    expect(r2.exitCode).toBe(1);
    expect(r2.stderr).toContain("this is the current folder or one above it");
    // a project folder from a previous compile is replaced
    r = await strata(["compile", a.file, "--emit-only", "--no-check", "-o", path.join(d, "p")]);
    expect(r.code, r.stderr).toBe(0);
    r = await strata(["compile", a.file, "--emit-only", "--no-check", "-o", path.join(d, "p")]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(d).sort()).toEqual(["ok.ts", "p", "work"]);
  });

  it("a folder that cannot be written: what could not be written and why", async () => {
    const d = tmp();
    const a = arch(d, "ok.ts", SMALL("ok"));
    // root ignores permission bits; /sys refuses new files even to root
    const root = process.getuid?.() === 0;
    const ro = root ? "/sys/strata-test-out" : path.join(d, "ro");
    if (!root) {
      mkdirSync(ro);
      chmodSync(ro, 0o555);
    }
    const out = root ? ro : path.join(ro, "p");
    const r = await strata(["compile", a.file, "--emit-only", "--no-check", "-o", out]);
    expectUserError(r);
    expect(r.stderr).toMatch(new RegExp(`cannot write the project to ${out.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: (permission denied|operation not permitted|the file system is read-only) \\[E[A-Z]+\\]`));
    expect(r.stderr).toContain("hint: choose a folder you can write with -o DIR");
  });

  it("two compiles into one folder at once: both succeed, a reader never sees a half-written project", { timeout: 60_000 }, async () => {
    const d = tmp();
    const a = arch(d, "ok.ts", SMALL("conc"));
    const out = path.join(d, "proj");
    let stop = false;
    let reads = 0;
    const problems: string[] = [];
    // the reader: whenever a manifest is visible, every kernel it lists must be there too — in the
    // same folder: a compile swaps the finished project in by two renames (replaceDir), so a folder
    // that moved while it was read (another inode, or none) is read again, not judged
    const folder = () => (existsSync(out) ? statSync(out).ino : undefined);
    const reader = (async () => {
      while (!stop) {
        try {
          const before = folder();
          const m = JSON.parse(readFileSync(path.join(out, "manifest.json"), "utf8")) as { kernels: { file: string }[] };
          const found = m.kernels.filter((k) => !existsSync(path.join(out, k.file))).map((k) => `manifest lists ${k.file}, which is missing`);
          if (!existsSync(path.join(out, "Makefile"))) found.push("manifest without Makefile");
          if (before !== undefined && folder() === before) {
            reads++;
            problems.push(...found);
          }
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== "ENOENT") problems.push(`reading: ${String(e)}`);
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const runs = await Promise.all([0, 1, 2].map(() => strata(["compile", a.file, "--emit-only", "--no-check", "-o", out])));
    stop = true;
    await reader;
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(problems).toEqual([]);
    expect(reads).toBeGreaterThan(0);
    const m = JSON.parse(readFileSync(path.join(out, "manifest.json"), "utf8")) as { kernels: { file: string }[] };
    for (const k of m.kernels) expect(existsSync(path.join(out, k.file)), k.file).toBe(true);
    expect(readdirSync(out).sort()).toEqual(["Makefile", "include", "kernels", "main.cpp", "manifest.json", "model.cu", "runtime"]);
    expect(readdirSync(d).sort(), "no temporary folders or locks left").toEqual(["ok.ts", "proj"]);
  });

  it("--dump prints where it wrote", async () => {
    const d = tmp();
    const a = arch(d, "ok.ts", SMALL("dumped"));
    const r = await strata(["compile", a.file, "--emit-only", "--no-check", "-o", path.join(d, "p"), "--dump", path.join(d, "dump")]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`dumped the IR before and after fusion, fusion decisions, kernel specs, memory plan and \\d+ kernel sources to ${path.join(d, "dump").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
    expect(existsSync(path.join(d, "dump", "fused.json"))).toBe(true);
  });
});

describe.concurrent("sizes and check = compile", () => {
  it("--max-batch × --max-seq beyond the generated int is rejected; 1e5 is not a decimal integer", async () => {
    const d = tmp();
    const a = arch(d, "ok.ts", SMALL("sizes"));
    const r = await strata(["compile", a.file, "--emit-only", "--no-check", "-o", path.join(d, "p"), "--max-batch", "100000", "--max-seq", "100000"]);
    expectUserError(r);
    expect(r.stderr).toContain("--max-batch 100000 × --max-seq 100000 = 10,000,000,000 tokens, more than the generated code's 32-bit token count holds (2,147,483,647)");
    expect(existsSync(path.join(d, "p"))).toBe(false);
    const u = await strata(["compile", a.file, "--emit-only", "--no-check", "--max-batch", "1e5"]);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain("expected a positive whole number in decimal digits (e.g. 4096), got '1e5'");
  });

  it("check reports what compile rejects, with the same message (mamba2 defaults at dModel 128)", async () => {
    const d = tmp();
    const a = arch(d, "m2.ts", `export default model({ name: "m2", vocab: 256, dModel: 128, seqLen: 64,\n  layers: stack({ pattern: "MM", M: mamba2() }) });`, "M: mamba2()");
    const [c, k, i] = await Promise.all([strata(["check", a.file]), strata(["compile", a.file, "--emit-only", "--no-check", "-o", path.join(d, "p")]), strata(["info", a.file, "--no-check"])]);
    expect(i.code, i.stderr).toBe(0); // info describes it (the interpreter runs it) and says compile would not take it
    expect(i.stdout).toMatch(/^kernels {4}`strata compile` rejects this model \(the interpreter runs it\): mamba2: in_proj's width .* = 772 is not a multiple of 8/m);
    expectUserError(c);
    expectUserError(k);
    expect(c.stderr).toBe(k.stderr);
    expect(c.stderr).toContain(`${a.file}:${a.line}:`);
    expect(c.stderr).toContain("mamba2: in_proj's width 2·d_inner + 2·groups·dState + heads = 2·256 + 2·1·128 + 4 = 772 is not a multiple of 8");
    expect(c.stderr).toContain("hint: change expand: 4 (d_inner 512, 8 heads), or dModel a multiple of 256 with these options");
  });

  it("a 13-trillion-parameter model: T units in info, and the memory is stated up front", async () => {
    const d = tmp();
    const a = arch(d, "big.ts", `export default model({ name: "big", vocab: 256000, dModel: 65536, seqLen: 4096, layers: stack({ pattern: "-".repeat(50), "-": mlp({ hidden: 2097152 }) }) });`);
    const [info, check] = await Promise.all([strata(["info", a.file, "--no-check"]), strata(["check", a.file])]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain(`parameters 13.777T (${(50 * 2 * 2097152 * 65536 + 2 * 256000 * 65536 + 51 * 65536).toLocaleString("en-US")})`);
    expect(info.stdout).toMatch(/forward 27\.\d\d TFLOP\s+training 8\d\.\d\d TFLOP/); // ≈ 2 FLOPs per non-embedding weight; one unit
    expect(info.stdout).toContain("more than the largest single GPU holds (141.00 GiB, an H200)");
    expect(info.stdout).toMatch(/^kernels {4}\d+ CUDA kernels \(sm_90a\); `strata compile` accepts this model$/m);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stderr).toMatch(/^warning: big needs 25\.\d\d TiB of GPU memory \(weights 25\.06 TiB \+ activations [\d.]+ GiB\)/);
  });
});

describe.concurrent("loading", () => {
  it("an exception while loading: the user's file:line once, no 'at at'", async () => {
    const d = tmp();
    const a = arch(d, "throws.ts", `const cfg: any = undefined;\nexport default model({ name: "x", vocab: 8, dModel: 8, layers: cfg.layers });`, "cfg.layers");
    const r = await strata(["info", a.file, "--no-check"]);
    expectUserError(r);
    expect(r.stderr).toMatch(new RegExp(`^error: ${a.file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:${a.line}:\\d+: loading threw: Cannot read properties of undefined \\(reading 'layers'\\)`));
    expect(r.stderr).not.toContain("at at");
  });

  it("a missing import: the module-not-found text once, with a hint", async () => {
    const d = tmp();
    const a = arch(d, "missing.ts", `import { x } from "./nope.js";\nexport default x;`);
    const r = await strata(["info", a.file, "--no-check"]);
    expectUserError(r);
    expect(r.stderr.match(/Cannot find module/g)).toHaveLength(1);
    expect(r.stderr).toContain("nope.js");
    expect(r.stderr).toContain("hint: check the import path");
  });

  it("an endless loop at top level stops at the time limit with a clear message", { timeout: 30_000 }, async () => {
    const d = tmp();
    const a = arch(d, "loop.ts", `let i = 0;\nwhile (i >= 0) i = (i + 1) % 7;\nexport default model({ name: "x", vocab: 8, dModel: 8, layers: [] });`);
    const t0 = Date.now();
    const r = await strata(["info", a.file, "--no-check"], { STRATA_LOAD_TIMEOUT: "1.5" });
    expectUserError(r);
    expect(r.stderr).toContain(`${a.file}: loading the architecture file and building its model did not finish within 1.5 s`);
    expect(r.stderr).toContain("hint: set STRATA_LOAD_TIMEOUT=SECONDS");
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});

describe.concurrent("the command line itself", () => {
  it("--version prints package.json's version; the package has its own name and the strata bin", async () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { name: string; version: string; bin: Record<string, string> };
    const r = await strata(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
    expect(pkg.name).not.toBe("strata"); // npm's `strata` is another project
    expect(pkg.bin.strata).toBe("bin/strata.js");
  });

  it("ir --step --prefill together is a usage error", async () => {
    const r = await strata(["ir", "examples/tiny-mamba2.ts", "--step", "--prefill", "--no-check"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error: option '--step' cannot be used with option '--prefill'");
    expect(r.stdout).toBe("");
  });

  it("make progress: the step name of each nvcc command make echoes", () => {
    expect(makeStepName("/usr/local/bin/nvcc -std=c++17 -O2 -Iruntime/include -c runtime/src/json.cpp -o build/runtime/json.o")).toBe("runtime/src/json.cpp");
    expect(makeStepName("nvcc -shared build/runtime/json.o build/model.o -o lib/libmodel.so -lcudart")).toBe("link lib/libmodel.so");
    expect(makeStepName("make: Nothing to be done for 'all'.")).toBeUndefined();
  });

  it("cached host objects: make's compile commands split into source, object, flags and include dirs", () => {
    const dry = [
      "mkdir -p build/runtime/",
      "/opt/cuda/bin/nvcc -std=c++17 -O2 -Xcompiler -fPIC -Xcompiler -fvisibility=hidden -Iruntime/include -Iruntime/src -Iinclude -c runtime/src/json.cpp -o build/runtime/json.o",
      "/opt/cuda/bin/nvcc -std=c++17 -O2 -Xcompiler -fPIC -I runtime/include -gencode arch=compute_90a,code=sm_90a -c model.cu -o build/model.o",
      "/opt/cuda/bin/nvcc -shared build/runtime/json.o build/model.o -o lib/libmodel.so -lcudart",
    ].join("\n");
    expect(makeCompiles(dry)).toEqual([
      { source: "runtime/src/json.cpp", object: "build/runtime/json.o", flags: ["-std=c++17", "-O2", "-Xcompiler", "-fPIC", "-Xcompiler", "-fvisibility=hidden"], includeDirs: ["runtime/include", "runtime/src", "include"] },
      { source: "model.cu", object: "build/model.o", flags: ["-std=c++17", "-O2", "-Xcompiler", "-fPIC"], includeDirs: ["runtime/include"] },
    ]);
  });
});

describe("in-process pieces", () => {
  it("info's numbers: T for trillions, one FLOP unit per line", () => {
    expect(fmtCount(8e12)).toBe("8.000T");
    expect(fmtCount(8.655e9)).toBe("8.655B");
    expect(fmtFlops(878467)).toBe("878.47 kFLOP");
    expect(fmtFlops(3 * 878467, 878467)).toBe("2635.40 kFLOP"); // training scaled like forward
    expect(fmtFlops(15.48e9)).toBe("15.48 GFLOP");
  });

  it("a lock left by a process that exited is taken over; a live holder is waited for", { timeout: 20_000 }, async () => {
    const d = tmp();
    const dir = path.join(d, "proj");
    const dead = await execa("node", ["-e", "console.log(process.pid)"]);
    writeFileSync(`${dir}.strata-lock`, `${dead.stdout.trim()}\n`);
    expect(await withDirLock(dir, async () => "ran")).toBe("ran");
    expect(existsSync(`${dir}.strata-lock`)).toBe(false);

    writeFileSync(`${dir}.strata-lock`, `${process.pid}\n`); // "another" live compile: us
    const logs: string[] = [];
    let ran = false;
    const waiting = withDirLock(dir, async () => void (ran = true), { log: (l) => logs.push(l) });
    await new Promise((r) => setTimeout(r, 400));
    expect(ran).toBe(false);
    expect(logs.join("")).toContain(`waiting for another compile (pid ${process.pid}) writing ${dir}`);
    rmSync(`${dir}.strata-lock`);
    await waiting;
    expect(ran).toBe(true);
  });

  it("replaceDir: a failure before anything is written leaves the old folder untouched", async () => {
    const d = tmp();
    const dir = path.join(d, "proj");
    mkdirSync(dir);
    writeFileSync(path.join(dir, "old.txt"), "old");
    await expect(replaceDir(dir, async (t) => {
      writeFileSync(path.join(t, "half.txt"), "x");
      throw new Error("boom");
    })).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(["old.txt"]);
    expect(readdirSync(d)).toEqual(["proj"]);
    mkdirSync(path.join(dir, "bin"));
    writeFileSync(path.join(dir, "manifest.json"), "{}");
    await replaceDir(dir, async (t) => writeFileSync(path.join(t, "manifest.json"), "new"));
    // the user's own file moves along; generated ones (bin/, the old manifest) do not
    expect(readdirSync(dir).sort()).toEqual(["manifest.json", "old.txt"]);
    expect(readFileSync(path.join(dir, "manifest.json"), "utf8")).toBe("new");
    expect(readdirSync(d)).toEqual(["proj"]);
  });
});
