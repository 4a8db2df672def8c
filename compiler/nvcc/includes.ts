/**
 * Finds the project headers a .cu source depends on, for the compile cache key.
 *
 * Follows `#include "x"` (including file's directory first, then includeDirs, like nvcc -I) and
 * `#include <x>` (includeDirs only) recursively. Headers that resolve nowhere in includeDirs are
 * toolkit/system headers (cuda_fp16.h, cstdint, cute/...) and are covered by the nvcc version in
 * the key; they are recorded by name only. Over-approximation is harmless (an include inside
 * `#if 0` just adds bytes to the hash); under-approximation would give stale cache hits.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";

export interface HeaderDep {
  /** The include spec as written in the first file that included it (e.g. "strata/gemm.cuh"). */
  spec: string;
  /** Absolute path it resolved to; undefined for headers outside includeDirs (system/toolkit). */
  path?: string;
  /** sha256 of the file contents; undefined when unresolved. */
  sha256?: string;
}

const RE_INCLUDE = /^[ \t]*#[ \t]*include[ \t]*(?:"([^"\n]+)"|<([^>\n]+)>)/gm;

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Every header reachable from `source`, depth-first in include order, each resolved file once.
 * `sourceDir` is the directory the source is compiled from (for quoted includes relative to it).
 */
export function collectHeaders(source: string, sourceDir: string | undefined, includeDirs: readonly string[]): HeaderDep[] {
  const out: HeaderDep[] = [];
  const seenPaths = new Set<string>();
  const seenUnresolved = new Set<string>();
  const dirs = includeDirs.map((d) => resolve(d));

  const visit = (text: string, fromDir: string | undefined): void => {
    for (const m of text.matchAll(RE_INCLUDE)) {
      const quoted = m[1] !== undefined;
      const spec = (m[1] ?? m[2])!.trim();
      let found: string | undefined;
      if (isAbsolute(spec)) {
        if (isFile(spec)) found = spec;
      } else {
        const candidates = [...(quoted && fromDir ? [fromDir] : []), ...dirs];
        for (const d of candidates) {
          const p = resolve(d, spec);
          if (isFile(p)) {
            found = p;
            break;
          }
        }
      }
      if (!found) {
        if (!seenUnresolved.has(spec)) {
          seenUnresolved.add(spec);
          out.push({ spec });
        }
        continue;
      }
      if (seenPaths.has(found)) continue;
      seenPaths.add(found);
      const content = readFileSync(found);
      out.push({ spec, path: found, sha256: createHash("sha256").update(content).digest("hex") });
      visit(content.toString("utf8"), dirname(found));
    }
  };

  visit(source, sourceDir && existsSync(sourceDir) ? resolve(sourceDir) : sourceDir);
  return out;
}
