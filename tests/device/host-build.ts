/**
 * Builds small nvcc programs for the device-library tests, cached by content like the kernel
 * driver (compiler/nvcc/driver.ts): the key is a sha256 of the nvcc version, the flags, the source
 * and every header it reaches in the include dirs (compiler/nvcc/includes.ts), so a warm CI run
 * (or a rerun with another seed: the inputs are data, not source) reuses the binary. Entries live
 * in `<defaultCacheDir()>/device/<key>/`, written to a temp folder and renamed into place.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import { collectHeaders, defaultCacheDir, findNvcc, nvccVersion } from "../../compiler/nvcc/driver.js";

export interface BuildResult {
  /** Folder holding the build's outputs (read-only use). */
  dir: string;
  /** nvcc's stdout+stderr of the build that produced the entry. */
  log: string;
  cached: boolean;
  key: string;
}

/**
 * Runs `nvcc <args> <src.cu> ...` in a fresh folder (the source is written there as `src.cu`;
 * `args` may name outputs relative to it) unless an entry for the same inputs exists.
 */
export async function cachedNvcc(source: string, includeDirs: string[], args: string[], what: string): Promise<BuildResult> {
  const nvcc = findNvcc();
  if (!nvcc) throw new Error("nvcc not found");
  const headers = collectHeaders(source, undefined, includeDirs);
  const key = createHash("sha256")
    .update(JSON.stringify({ v: 1, what, nvcc: nvccVersion(nvcc), args, headers: headers.map((h) => [h.spec, h.sha256 ?? null]), source }))
    .digest("hex");
  const root = path.join(defaultCacheDir(), "device");
  const dir = path.join(root, key);
  if (existsSync(path.join(dir, "log.txt"))) return { dir, log: readFileSync(path.join(dir, "log.txt"), "utf8"), cached: true, key };
  const tmp = path.join(root, `${key}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  mkdirSync(tmp, { recursive: true });
  try {
    writeFileSync(path.join(tmp, "src.cu"), source);
    const r = await execa(nvcc, [...args, ...includeDirs.flatMap((d) => ["-I", path.resolve(d)]), "src.cu"], { cwd: tmp, all: true, reject: false });
    const log = String(r.all ?? "");
    if (r.exitCode !== 0) throw new Error(`nvcc failed building ${what}:\n${log.split("\n").slice(0, 40).join("\n")}`);
    writeFileSync(path.join(tmp, "log.txt"), log);  // the commit marker, written last
    try {
      renameSync(tmp, dir);
    } catch {
      // a concurrent run committed the same entry first: use theirs
      if (!existsSync(path.join(dir, "log.txt"))) throw new Error(`could not store the ${what} build in ${dir}`);
    }
    return { dir, log, cached: false, key };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
