/**
 * Parser for the resource report `ptxas -v` (nvcc `-Xptxas -v`) writes to stderr, and for the
 * `file(line): error: ...` diagnostics nvcc's front end writes. Pure string functions, no I/O,
 * so they can be tested against fixture text without a toolkit.
 *
 * Report shape (nvcc 11–13; the last line's comma-separated parts vary by version and kernel):
 *
 *   ptxas info    : Compiling entry function '_Z3addPfPKfi' for 'sm_90a'
 *   ptxas info    : Function properties for _Z3addPfPKfi
 *       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
 *   ptxas info    : Used 40 registers, used 1 barriers, 8192 bytes smem, 400 bytes cmem[0]
 *   ptxas info    : Compile time = 3.459 ms
 *
 * Non-inlined `__device__` functions only get a "Function properties for" block (no "Compiling
 * entry function"); they are reported with kind "function".
 */

export interface PtxasReport {
  /** Demangled name when a demangler was available ("add(float*, float const*, int)"), else the mangled one. */
  name: string;
  /** Symbol as ptxas prints it (mangled for C++ kernels, plain for extern "C"). */
  mangled: string;
  /** Demangled signature, when the symbol is mangled and a demangler was available. */
  demangled?: string;
  /** Target, e.g. "sm_90a" (from "Compiling entry function ... for 'sm_90a'"); "" for device functions. */
  arch: string;
  kind: "entry" | "function";
  registers: number;
  barriers: number;
  /** Static shared memory in bytes ("N bytes smem"). */
  smemBytes: number;
  /** Sum over constant banks ("N bytes cmem[K]"). */
  cmemBytes: number;
  /** Per constant bank, e.g. { 0: 400 }. */
  cmem: Record<number, number>;
  stackFrameBytes: number;
  spillStoreBytes: number;
  spillLoadBytes: number;
  /** "N bytes cumulative stack size" (stack including callees), 0 when not printed. */
  cumulativeStackBytes: number;
  /** ptxas "Compile time = X ms" for this function, when printed. */
  compileMs?: number;
}

const RE_ENTRY = /^ptxas info\s*:\s*Compiling entry function '([^']+)' for '([^']+)'/;
const RE_PROPS = /^ptxas info\s*:\s*Function properties for (\S+)/;
const RE_FRAME = /^\s*(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/;
const RE_USED = /^ptxas info\s*:\s*Used (\d+) registers(.*)$/;
const RE_TIME = /^ptxas info\s*:\s*Compile time = ([\d.]+) ms/;

function blank(mangled: string, arch: string, kind: PtxasReport["kind"]): PtxasReport {
  return {
    name: mangled,
    mangled,
    arch,
    kind,
    registers: 0,
    barriers: 0,
    smemBytes: 0,
    cmemBytes: 0,
    cmem: {},
    stackFrameBytes: 0,
    spillStoreBytes: 0,
    spillLoadBytes: 0,
    cumulativeStackBytes: 0,
  };
}

/** Parse every per-function block of a `ptxas -v` report, in the order ptxas printed them. */
export function parsePtxasOutput(text: string): PtxasReport[] {
  const out: PtxasReport[] = [];
  const byKey = new Map<string, PtxasReport>();
  let entry: PtxasReport | undefined; // last "Compiling entry function" (target of "Used N registers")
  let props: PtxasReport | undefined; // last "Function properties for" (target of the frame line)
  let arch = "";

  const get = (mangled: string, a: string, kind: PtxasReport["kind"]): PtxasReport => {
    const key = `${mangled}@${a}`;
    let r = byKey.get(key);
    if (!r) {
      r = blank(mangled, a, kind);
      byKey.set(key, r);
      out.push(r);
    }
    return r;
  };

  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    let m: RegExpMatchArray | null;
    if ((m = line.match(RE_ENTRY))) {
      arch = m[2]!;
      entry = get(m[1]!, arch, "entry");
      entry.kind = "entry";
      props = undefined;
    } else if ((m = line.match(RE_PROPS))) {
      const name = m[1]!;
      // The properties block of the entry just announced, or of a non-inlined device function.
      props = entry && entry.mangled === name ? entry : get(name, "", "function");
    } else if ((m = line.match(RE_FRAME))) {
      if (props) {
        props.stackFrameBytes = Number(m[1]);
        props.spillStoreBytes = Number(m[2]);
        props.spillLoadBytes = Number(m[3]);
      }
    } else if ((m = line.match(RE_USED))) {
      if (!entry) continue;
      entry.registers = Number(m[1]);
      for (const part of m[2]!.split(",")) {
        const p = part.trim();
        let q: RegExpMatchArray | null;
        if ((q = p.match(/^used (\d+) barriers?$/))) entry.barriers = Number(q[1]);
        else if ((q = p.match(/^(\d+) bytes smem$/))) entry.smemBytes = Number(q[1]);
        else if ((q = p.match(/^(\d+) bytes cmem\[(\d+)\]$/))) {
          entry.cmem[Number(q[2])] = Number(q[1]);
          entry.cmemBytes += Number(q[1]);
        } else if ((q = p.match(/^(\d+) bytes cumulative stack size$/))) entry.cumulativeStackBytes = Number(q[1]);
      }
    } else if ((m = line.match(RE_TIME))) {
      const target = entry ?? props;
      if (target && target.compileMs === undefined) target.compileMs = Number(m[1]);
    }
  }
  return out;
}

/** One nvcc/cudafe/ptxas diagnostic location. */
export interface NvccDiagnostic {
  file: string;
  line: number;
  severity: "error" | "warning";
  message: string;
}

const RE_DIAG = /^(.+?)\((\d+)\): (error|warning)( #[\w-]+)?: (.*)$/;

/** Front-end diagnostics ("k.cu(12): error: expected an expression"), in order. */
export function parseDiagnostics(text: string): NvccDiagnostic[] {
  const out: NvccDiagnostic[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = line.match(RE_DIAG);
    if (m) out.push({ file: m[1]!, line: Number(m[2]), severity: m[3] as "error" | "warning", message: m[5]! });
  }
  return out;
}

/** Rewrite nvcc's "file(12): error" to the conventional, clickable "file:12: error". */
export function toFileColonLine(text: string): string {
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/^(.+?)\((\d+)\): (error|warning|remark)/, "$1:$2: $3"))
    .join("\n");
}

/**
 * Warnings worth surfacing: front-end warnings (with their source excerpt lines) and
 * "ptxas warning" lines. ptxas "info" lines are the resource report, not warnings.
 */
export function extractWarnings(stderr: string): string[] {
  const lines = stderr.split(/\r?\n/);
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^ptxas warning\s*:/.test(l) || /^nvcc warning\s*:/.test(l)) {
      out.push(l.trim());
    } else if (RE_DIAG.test(l) && RE_DIAG.exec(l)![3] === "warning") {
      // The front end follows each diagnostic with the source line and a caret line.
      const block = [toFileColonLine(l)];
      for (let j = i + 1; j < lines.length && j <= i + 2 && lines[j]!.trim() !== ""; j++) block.push(lines[j]!);
      out.push(block.join("\n"));
    }
  }
  return out;
}
