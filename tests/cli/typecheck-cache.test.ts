/**
 * The type check's content cache (compiler/cli/load.ts): a clean check of an architecture file is
 * remembered under STRATA_CACHE_DIR/typecheck/<key>, the key covering the file, every user file it
 * imports and Strata's own sources; diagnostics are never cached.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkKey, typecheck } from "../../compiler/cli/load.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const DSL = path.join(ROOT, "compiler/dsl/index.js");

describe("type-check cache", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "strata-tc-"));
  const cache = path.join(dir, "cache");
  const saved = process.env.STRATA_CACHE_DIR;
  const arch = path.join(dir, "arch.ts");
  const helper = path.join(dir, "lib", "sizes.ts");
  const write = (dModel: string) => {
    mkdirSync(path.dirname(helper), { recursive: true });
    writeFileSync(helper, `export const D_MODEL${dModel};\n`);
    writeFileSync(
      arch,
      `import { mlp, model, stack } from ${JSON.stringify(DSL)};\nimport { D_MODEL } from "./lib/sizes.js";\n` +
        `export default model({ name: "tc", vocab: 64, dModel: D_MODEL, seqLen: 8, layers: stack({ pattern: "-", "-": mlp({ hidden: 64 }) }) });\n`,
    );
  };
  const stamps = () => (existsSync(path.join(cache, "typecheck")) ? readdirSync(path.join(cache, "typecheck")) : []);
  beforeAll(() => {
    process.env.STRATA_CACHE_DIR = cache;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.STRATA_CACHE_DIR;
    else process.env.STRATA_CACHE_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  });

  it("a clean check leaves a stamp keyed by the file and the user files it imports; a change makes a new key", { timeout: 120_000 }, async () => {
    write(" = 32");
    const k1 = checkKey(arch)!;
    expect(k1).toMatch(/^[0-9a-f]{64}$/);
    expect(await typecheck(arch)).toEqual([]);
    expect(stamps()).toEqual([k1]);
    expect(checkKey(arch)).toBe(k1); // unchanged files: the same key
    write(" = 48"); // only the imported helper changes
    const k2 = checkKey(arch)!;
    expect(k2).not.toBe(k1);
    expect(await typecheck(arch)).toEqual([]);
    expect(stamps().sort()).toEqual([k1, k2].sort());
  });

  it("errors are never cached, and a stamp is what skips the check", { timeout: 120_000 }, async () => {
    write(': number = "wide"'); // a type error in the imported file
    const key = checkKey(arch)!;
    const errs = await typecheck(arch);
    expect(errs.some((d) => d.category === "error" && /sizes\.ts/.test(d.file))).toBe(true);
    expect(stamps()).not.toContain(key);
    // a stamp for exactly these contents short-circuits the check (how a recompile skips it)
    writeFileSync(path.join(cache, "typecheck", key), "");
    expect(await typecheck(arch)).toEqual([]);
    // STRATA_CHECK_CACHE=0 checks every time
    process.env.STRATA_CHECK_CACHE = "0";
    try {
      expect((await typecheck(arch)).some((d) => d.category === "error")).toBe(true);
    } finally {
      delete process.env.STRATA_CHECK_CACHE;
    }
  });

  it("an import the key cannot follow (a bare package, a missing file) turns the cache off for that file", () => {
    writeFileSync(path.join(dir, "bare.ts"), `import x from "some-package";\nexport default x;\n`);
    expect(checkKey(path.join(dir, "bare.ts"))).toBeUndefined();
    writeFileSync(path.join(dir, "missing.ts"), `import { y } from "./nowhere.js";\nexport default y;\n`);
    expect(checkKey(path.join(dir, "missing.ts"))).toBeUndefined();
    writeFileSync(path.join(dir, "node.ts"), `import fs from "node:fs";\nexport default fs;\n`);
    expect(checkKey(path.join(dir, "node.ts"))).toMatch(/^[0-9a-f]{64}$/);
  });
});
