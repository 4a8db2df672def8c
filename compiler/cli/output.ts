/**
 * Writing a project folder safely: one compile at a time per folder (a lock file beside it), the
 * project written and built in a temporary sibling folder and renamed into place, so a reader sees
 * the old project or the new one, never a half-written mix. Filesystem failures become
 * StrataErrors saying what could not be written and why.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import path from "node:path";
import { StrataError } from "../ir/errors.js";

const REASONS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "the file system is read-only",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  ENOTDIR: "a part of the path is a file, not a folder",
  EISDIR: "it is a folder",
  EEXIST: "it already exists",
  ENAMETOOLONG: "the path is too long",
  ELOOP: "too many symbolic links",
  ENOENT: "a folder on the path does not exist and cannot be created there",
  EMFILE: "too many open files",
};

/** A folder as messages show it: relative to the working directory when it lies below it. */
export function shownPath(dir: string): string {
  const rel = path.relative(process.cwd(), dir);
  return rel && !rel.startsWith("..") ? rel : dir;
}

/** A filesystem error as a StrataError: what (`what`, e.g. "write the project to build/x"), the path, and why. */
export function fsError(e: unknown, what: string, hint?: string): StrataError {
  if (e instanceof StrataError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? "";
  const reason = REASONS[code] ?? String(err?.message ?? e).replace(/^\w+: /, "");
  const at = err?.path ? ` (at ${err.path})` : "";
  return new StrataError(`cannot ${what}: ${reason}${code ? ` [${code}]` : ""}${at}`, undefined, hint ?? "choose a folder you can write with -o DIR");
}

/** A folder a previous compile wrote (its manifest says so): safe to replace as a whole. */
export function isProjectDir(dir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(path.join(dir, "manifest.json"), "utf8")) as { format?: unknown };
    return typeof m.format === "string" && m.format.startsWith("strata-project/");
  } catch {
    return false;
  }
}

/**
 * The output folder must be a folder (or not exist yet) under a parent we can create. `-o` is
 * replaced as a whole, so it must be new, empty, or a project a previous compile wrote — never
 * the folder you are in (or one above it), nor one holding other files.
 */
export function checkOutDir(dir: string, flag = "-o", replaced = flag === "-o"): void {
  if (existsSync(dir) && !statSync(dir).isDirectory())
    throw new StrataError(`${flag} ${dir}: this is a file, not a folder; the project is a folder of sources, a Makefile and the built binaries`, undefined, `pass a folder path (it is created if missing), e.g. ${flag} build/my-model`);
  if (replaced) {
    const rel = path.relative(dir, process.cwd());
    if (!rel.startsWith("..") && !path.isAbsolute(rel))
      throw new StrataError(`${flag} ${dir}: this is the current folder or one above it; the output folder is replaced as a whole`, undefined, `pass a new folder, e.g. ${flag} build/my-model`);
    if (existsSync(dir) && readdirSync(dir).length > 0 && !isProjectDir(dir))
      throw new StrataError(`${flag} ${dir}: this folder holds other files (it has no Strata manifest.json); the output folder is replaced as a whole, so they would be lost`, undefined, `pass a new or empty folder, or a project folder a previous compile wrote, e.g. ${flag} build/my-model`);
  }
  let p = path.dirname(dir);
  while (!existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
  if (existsSync(p) && !statSync(p).isDirectory())
    throw new StrataError(`${flag} ${dir}: ${p} is a file, so no folder can be created under it`, undefined, "pass a folder path whose parents are folders");
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Hold `<dir>.strata-lock` (an exclusively created file with our pid) while `fn` runs. Another live
 * compile of the same folder makes us wait (polling, `log` says so once); a lock left by a process
 * that no longer exists is taken over.
 */
export async function withDirLock<T>(dir: string, fn: () => Promise<T>, opts: { log?: (l: string) => void; timeoutMs?: number } = {}): Promise<T> {
  const lock = `${dir}.strata-lock`;
  const t0 = Date.now();
  let told = false;
  try {
    mkdirSync(path.dirname(lock), { recursive: true });
  } catch (e) {
    throw fsError(e, `create the folder for ${dir}`);
  }
  for (;;) {
    try {
      const fd = openSync(lock, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw fsError(e, `write the project to ${dir}`);
      let holder = NaN;
      try {
        holder = Number(readFileSync(lock, "utf8").trim());
      } catch {
        continue; // released between our open and read
      }
      if (Number.isInteger(holder) && holder > 0 && !pidAlive(holder)) {
        rmSync(lock, { force: true }); // a compile that died holding it
        continue;
      }
      if (Date.now() - t0 > (opts.timeoutMs ?? 30 * 60_000))
        throw new StrataError(`another compile (pid ${holder}) has held ${lock} for over ${Math.round((Date.now() - t0) / 1000)} s`, undefined, `wait for it, or delete ${lock} if no compile is running`);
      if (!told) opts.log?.(`waiting for another compile (pid ${holder}) writing ${dir} …`);
      told = true;
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Top-level entries a compile or its build makes (older outputs are dropped with the old project). */
const GENERATED = ["build", "bin", "lib", "kernels", "include", "runtime", "manifest.json", "model.cu", "main.cpp", "Makefile"];

/**
 * Write (and optionally build) into a fresh temporary sibling of `dir`, then put it in place with
 * renames: the old folder moves aside and the new one takes its name. `fn` gets the temporary path;
 * if it throws, what it wrote is still put in place when `keepOnError` says so (e.g. sources
 * written but `make` failed: the user fixes and runs make there), else removed.
 */
export async function replaceDir<T>(dir: string, fn: (tmp: string) => Promise<T>, keepOnError: (e: unknown) => boolean = () => false): Promise<T> {
  const parent = path.dirname(dir);
  const base = path.basename(dir);
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const tmp = path.join(parent, `.${base}.tmp-${tag}`);
  const old = path.join(parent, `.${base}.old-${tag}`);
  try {
    mkdirSync(tmp, { recursive: true });
  } catch (e) {
    throw fsError(e, `write the project to ${dir}`);
  }
  let result: T | undefined;
  let failure: unknown;
  try {
    result = await fn(tmp);
  } catch (e) {
    failure = e;
    if (!keepOnError(e)) {
      rmSync(tmp, { recursive: true, force: true });
      // filesystem errors (with an errno code) become messages; anything else is a bug and stays one
      throw typeof (e as NodeJS.ErrnoException)?.code === "string" && (e as NodeJS.ErrnoException).syscall ? fsError(e, `write the project to ${dir}`) : e;
    }
  }
  try {
    if (existsSync(dir)) {
      // files of the user's in the old project (weights, token files, logs) move to the new one;
      // what a compile writes or a build makes is the new project's own
      const fresh = new Set([...readdirSync(tmp), ...GENERATED]);
      for (const e of readdirSync(dir)) if (!fresh.has(e)) renameSync(path.join(dir, e), path.join(tmp, e));
      renameSync(dir, old);
    }
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(dir)) renameSync(old, dir);
    throw fsError(e, `replace ${dir}`);
  }
  rmSync(old, { recursive: true, force: true });
  if (failure !== undefined) throw failure;
  return result as T;
}
