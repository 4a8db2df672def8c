// The benchmark report (tests/gpu/report.ts) on the CPU: log parsers on fixture excerpts, the FLOP
// and byte formulas on known shapes (against the rates the GPU harnesses printed), the roofline
// SVG's well-formedness, and "not measured" for whatever the logs lack.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  attentionCost,
  attentionPairs,
  buildReport,
  conv1dCost,
  costOf,
  DEFAULT_INPUTS,
  EXPECTED_KERNELS,
  gemmCost,
  main,
  parseBenchTable,
  parseDecodeJson,
  parseDecodeLog,
  parseForward,
  parseProbes,
  parseTrainBench,
  renderMarkdown,
  renderRoofline,
  rooflinePoints,
  scanCost,
  ssdCost,
  type InputNames,
} from "./report.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIX = path.join(HERE, "..", "fixtures", "report");
const fixture = (f: string) => fs.readFileSync(path.join(FIX, f), "utf8");
const NAMES: InputNames = { suite: "suite.log", trainSuite: "train.log", decode: "decode.json", trainBench: "train-bench.log", probes: "probes.log" };

/** A small XML well-formedness check: one root, tags balanced and nested, attributes quoted, entities known. */
function checkXml(text: string): { ok: boolean; why?: string; elements: Map<string, number> } {
  const elements = new Map<string, number>();
  const body = text.replace(/^<\?xml[^?]*\?>\s*/, "");
  const stack: string[] = [];
  let roots = 0;
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<|&(?!amp;|lt;|gt;|quot;|apos;|#\d+;)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body))) {
    if (m[0] === "<") return { ok: false, why: `malformed tag at ${m.index}: ${body.slice(m.index, m.index + 40)}`, elements };
    if (m[0] === "&") return { ok: false, why: `bare & at ${m.index}`, elements };
    const [, close, name, , selfClose] = m;
    if (close) {
      if (stack.pop() !== name) return { ok: false, why: `</${name}> closes the wrong element`, elements };
      continue;
    }
    if (stack.length === 0) roots++;
    elements.set(name, (elements.get(name) ?? 0) + 1);
    if (!selfClose) stack.push(name);
  }
  if (stack.length) return { ok: false, why: `unclosed ${stack.join(", ")}`, elements };
  if (roots !== 1) return { ok: false, why: `${roots} root elements`, elements };
  return { ok: true, elements };
}

describe("log parsers", () => {
  it("reads every well-formed row of the benchmark tables and skips the rest", () => {
    const rows = parseBenchTable(fixture("suite-excerpt.log"));
    expect(rows.map((r) => r.family)).toEqual(["gemm", "gemm", "attention", "attention", "attention", "ssd", "fancy"]);
    expect(rows[0]).toEqual({ family: "gemm", shape: "16384x18560x4096", config: "wgmma256x128s4", ms: 4.584, peer: "cuBLAS", peerMs: 3.434, rate: "543 TFLOP/s", ratio: 0.749 });
    expect(rows[5].peer).toBe("torch einsum float32");
    expect(rows[5].shape).toBe("B2 T8192 H128 P64 G8 N128 L128");
    expect(parseBenchTable(undefined)).toEqual([]);
    expect(parseBenchTable("no table here\n| a | b |")).toEqual([]);
  });

  it("reads the 8B forward line with its median", () => {
    expect(parseForward(fixture("suite-excerpt.log"))).toEqual([
      { model: "mamba2-hybrid-8b", T: 4096, ms: 131.174, medianMs: 131.552, tflops: 483, fraction: 0.61, peakTflops: 790 },
    ]);
    expect(parseForward(undefined)).toEqual([]);
  });

  it("reads the decode JSON and the training JSON lines, ignoring failed and broken lines", () => {
    const d = parseDecodeJson(fixture("decode-excerpt.json"))!;
    expect(d.copyBandwidth).toBeCloseTo(4.2897e12, -9);
    expect(d.decode).toHaveLength(2);
    expect(d.decode[1].fits).toBe(false);
    expect(parseDecodeJson("{not json")).toBeUndefined();
    const t = parseTrainBench(fixture("train-bench-excerpt.log"));
    expect(t.map((r) => r.impl)).toEqual(["strata", "pytorch"]);
    expect(t[0].flopsPerToken).toBe(4.89e9); // from the table header
    expect(t[0].batch).toBe(4);
    expect(t[1].flopsPerToken).toBe(4890260736);
    expect(parseProbes("probe-hybrid on mqar: accuracy 2.6%, final loss 4.8180, 1474408 tokens/s, 3.5s\nnoise")).toEqual([
      { model: "probe-hybrid", task: "mqar", accuracy: 2.6, loss: 4.818, tokPerS: 1474408, seconds: 3.5 },
    ]);
  });
  it("falls back on the suite log's decode lines when the JSON is missing", () => {
    const d = parseDecodeLog(fixture("suite-excerpt.log"))!;
    expect(d.copyBandwidth).toBe(4.29e12);
    expect(d.decode).toEqual([
      { model: "mamba2-hybrid-8b", batch: 1, context: 4096, tokPerS: 174, msPerStep: 5.76, rooflineTokPerS: 244, fraction: 0.71 },
      { model: "transformer-8b", batch: 64, context: 4096, fits: false },
    ]);
    expect(d.paper[0]).toMatchObject({ model: "mamba2-hybrid-8b", context: 4096, batch: 256, tokPerS: 5175 });
    expect(d.ttft).toEqual([{ model: "mamba2-hybrid-8b", context: 4096, ttftMs: 126 }]);
    expect(d.tiny[1]).toEqual({ model: "tiny-mamba2", strataTokPerS: 10526, hfError: "ValueError: no cache length" });
    expect(parseDecodeLog("nothing here")).toBeUndefined();
    const r = buildReport({ suite: fixture("suite-excerpt.log") }, NAMES);
    expect(r.decodeSource).toMatch(/suite.log \(decode lines/);
    expect(r.copyBandwidth).toBe(4.29e12);
    expect(renderMarkdown(r)).toContain("| mamba2-hybrid-8b | 1 | 174 | 5.76 | 244 | 0.71 |");
  });
});

describe("FLOP and byte formulas", () => {
  it("GEMM: 2·M·N·K FLOPs, A + B + C once in bf16", () => {
    expect(gemmCost(2, 3, 4)).toMatchObject({ flops: 48, bytes: 2 * (8 + 12 + 6), ceiling: "tensor" });
    // the harness printed 543 TFLOP/s for 16384x18560x4096 at 4.584 ms
    expect(gemmCost(16384, 18560, 4096).flops / 4.584e-3 / 1e12).toBeCloseTo(543, 0);
  });

  it("attention: visible pairs as the harness counts them, and its printed rate", () => {
    expect(attentionPairs(8, 8, true)).toBe(32);
    expect(attentionPairs(1, 8192, true)).toBe(8192);
    expect(attentionPairs(1, 8192, false)).toBe(8192);
    expect(attentionPairs(2, 10, true)).toBe(2 * 8 + 3);
    const c = attentionCost(2, 8192, 8192, 32, 8, 128, true);
    expect(c.flops / 3.357e-3 / 1e12).toBeCloseTo(327.5, 1);
    // GQA: K and V at 8 heads, Q and O at 32
    expect(c.bytes).toBe(2 * (2 * 2 * 8192 * 32 * 128 + 2 * 2 * 8192 * 8 * 128));
    expect(costOf("attention", "B8_T1_S8192_H32_Hk8_D128")!.flops / 0.324e-3 / 1e12).toBeCloseTo(3.3, 1);
  });

  it("SSD: the harness's useful FLOPs (118 TFLOP/s at 1.017 ms)", () => {
    const c = ssdCost(2, 8192, 128, 64, 8, 128, 128);
    expect(c.flops / 1.017e-3 / 1e12).toBeCloseTo(118, 0);
    expect(costOf("ssd", "B2 T8192 H128 P64 G8 N128 L128")).toEqual(c);
  });

  it("scan and conv1d: fp32 ceiling; conv1d's bytes agree with the harness's GB/s", () => {
    expect(scanCost(1, 4096, 8192, 128)).toMatchObject({ flops: 6 * 4096 * 8192 * 128, ceiling: "fp32" });
    const cv = conv1dCost(4, 2, 8192, 18432);
    // ssm_test.cu counted x-read + y-write: 1.97 TB/s at 0.615 ms; ours adds weights and state (< 1 %)
    expect(cv.bytes / 0.615e-3 / 1e12).toBeGreaterThan(1.96);
    expect(cv.bytes / 0.615e-3 / 1e12).toBeLessThan(1.99);
    expect(costOf("conv1d", "K4 B2 T8192 C18432 +silu")).toEqual(cv);
    expect(costOf("gemm", "not a shape")).toBeUndefined();
    expect(costOf("unknown", "1x2x3")).toBeUndefined();
  });
});

describe("report", () => {
  const inputs = { suite: fixture("suite-excerpt.log"), decode: fixture("decode-excerpt.json"), trainBench: fixture("train-bench-excerpt.log") };

  it("measured kernels get floors; missing rows and peers are 'not measured', unknown rows are kept", () => {
    const r = buildReport(inputs, NAMES);
    expect(r.missing).toEqual(["train.log", "probes.log"]);
    const byShape = (s: string) => r.kernels.find((k) => k.shape === s)!;
    const g = byShape("16384x18560x4096");
    expect(g.measured).toBe(true);
    expect(g.floorBound).toBe("compute");
    expect(g.floorMs).toBeCloseTo((gemmCost(16384, 18560, 4096).flops / 790e12) * 1e3, 6);
    const dec = byShape("B8_T1_S8192_H32_Hk8_D128");
    expect(dec.floorBound).toBe("memory");
    expect(dec.floorMs).toBeCloseTo((dec.cost!.bytes / 4289732749615.135) * 1e3, 6);
    expect(dec.peers.find((p) => p.peer === "torch-sdpa-flash")!.measured).toBe(false);
    const conv = byShape("K4 B2 T8192 C18432 +silu");
    expect(conv.measured).toBe(false);
    expect(conv.ms).toBeUndefined();
    expect(r.kernels).toHaveLength(EXPECTED_KERNELS.length + 1);
    expect(r.kernels.at(-1)).toMatchObject({ family: "fancy", measured: true, ms: 1 });
    const md = renderMarkdown(r);
    expect(md).toMatch(/\| causal conv1d \+ SiLU \| K4 B2 T8192 C18432 \+silu \| not measured \|/);
    expect(md).toMatch(/\| pytorch torch.compile \| — \| not measured \|/);
    expect(md).toMatch(/Missing inputs[^\n]*`train.log`, `probes.log`/);
    expect(md).toContain("| mamba2-hybrid-8b | 1 | 174 | 5.76 | 244 | 0.71 |");
  });

  it("with no inputs every row says 'not measured' and no figure is made up", () => {
    const r = buildReport({}, NAMES);
    expect(r.kernels.every((k) => !k.measured && k.ms === undefined && k.floorMs === undefined)).toBe(true);
    expect(r.copyBandwidth).toBeUndefined();
    const md = renderMarkdown(r);
    for (const e of EXPECTED_KERNELS) expect(md).toMatch(new RegExp(`\\| ${e.what.replace(/[()+|]/g, "\\$&")} \\| [^|]+ \\| not measured \\|`));
    // no achieved rate, forward time, decode or training figure in the output
    expect(md).not.toMatch(/\d TFLOP\/s \(/);
    expect(md).not.toMatch(/\| \d+(\.\d+)? \| \d+(\.\d+)? \| [\d.]+ \| 0\.\d\d \|/);
    expect(rooflinePoints(r)).toEqual([]);
  });

  it("without a measured bandwidth the floors against it are not given", () => {
    const r = buildReport({ suite: inputs.suite.replace(/device-to-device[^\n]*\n/, "") }, NAMES);
    const g = r.kernels[0];
    expect(g.measured).toBe(true);
    expect(g.floorMs).toBeUndefined();
    expect(g.floorSpecMs).toBeDefined();
    expect(r.copyBandwidthSource).toMatch(/not measured/);
  });
});

describe("roofline SVG", () => {
  it("is well-formed, one circle per point, axes labelled, ceilings drawn", () => {
    const r = buildReport({ suite: fixture("suite-excerpt.log"), decode: fixture("decode-excerpt.json") }, NAMES);
    const pts = rooflinePoints(r);
    expect(pts).toHaveLength(5); // 2 GEMMs, 2 attention, SSD (the unknown row has no formula)
    const svg = renderRoofline(pts, r.copyBandwidth);
    const x = checkXml(svg);
    expect(x.why).toBeUndefined();
    expect(x.ok).toBe(true);
    expect(x.elements.get("svg")).toBe(1);
    expect(x.elements.get("circle")).toBe(pts.length);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg).toContain("arithmetic intensity (FLOP / byte");
    expect(svg).toContain("achieved TFLOP/s");
    expect(x.elements.get("polyline")).toBe(3); // spec, measured, fp32
    expect(svg).not.toMatch(/href=|<script|<image/); // self-contained
  });

  it("stays well-formed with no points and with text that needs escaping", () => {
    const empty = renderRoofline([], undefined);
    expect(checkXml(empty).ok).toBe(true);
    expect(checkXml(empty).elements.get("circle") ?? 0).toBe(0);
    expect(empty).toContain("not measured");
    const odd = renderRoofline([{ label: "a < b & \"c\"", detail: "x>y", intensity: 10, tflops: 5 }], 4e12);
    const x = checkXml(odd);
    expect(x.ok).toBe(true);
    expect(x.elements.get("circle")).toBe(1);
  });

  it("the checker itself rejects broken XML", () => {
    expect(checkXml("<svg><g></svg>").ok).toBe(false);
    expect(checkXml("<svg>a & b</svg>").ok).toBe(false);
    expect(checkXml("<svg x=1></svg>").ok).toBe(false);
  });
});

describe("several tile configs of one shape", () => {
  it("the row of the config the code generator emits for the shape is reported (tiles.ts defaultTiles)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-report-"));
    const repo = path.resolve(HERE, "..", "..");
    const log = path.join(dir, "suite.log");
    const row = (cfg: string, ms: string, ratio: string) => `| gemm | 16384x4096x4096 (${cfg}) | ${ms} | cuBLAS | 0.740 | 1 TFLOP/s | ${ratio} |`;
    fs.writeFileSync(log, ["== benchmarks (same run)", "| kernel | shape | Strata ms | peer | peer ms | Strata rate | ratio |", "|---|---|---|---|---|---|---|", row("wgmma256x128s4", "1.091", "0.678"), row("ws128x256s4", "0.809", "0.915"), row("pp128x128s6", "0.733", "1.010"), ""].join("\n"));
    const out = main(["--out", dir, "--suite", log, "--train-suite", "no/such/file.log"], repo);
    // K = 4096: the ping-pong tile (a deep K such as 16384 would take ws128x256s4)
    expect(out.markdown).toMatch(/\| GEMM, attention out 4096→4096 \| 16384x4096x4096 \(pp128x128s6\) \| 0\.733 \|/);
    expect(out.markdown).toMatch(/\| GEMM, attention out 4096→4096 \| 16384x4096x4096 \| cuBLAS[^|]*\| 0\.740 \| 1\.010 \|/);
    fs.rmSync(dir, { recursive: true });
  });
});

describe("CLI", () => {
  it("writes BENCHMARKS.md and roofline.svg; a missing log is reported, not invented", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-report-"));
    const repo = path.resolve(HERE, "..", "..");
    const out = main(["--out", dir, "--suite", "tests/fixtures/report/suite-excerpt.log", "--decode", "tests/fixtures/report/decode-excerpt.json", "--probes", "no/such/file.log"], repo);
    expect(fs.readFileSync(path.join(dir, "BENCHMARKS.md"), "utf8")).toBe(out.markdown);
    expect(checkXml(fs.readFileSync(path.join(dir, "roofline.svg"), "utf8")).ok).toBe(true);
    expect(out.markdown).toContain("`no/such/file.log`");
    expect(out.markdown).toMatch(/## Probe experiment[^]*\| — \| — \| not measured \|/);
    expect(() => main(["--bogus"], repo)).toThrow(/unknown argument --bogus/);
    fs.rmSync(dir, { recursive: true });
    // the defaults are the committed logs (npm run gpu:report regenerates docs/BENCHMARKS.md from them)
    for (const f of Object.values(DEFAULT_INPUTS)) expect(fs.existsSync(path.join(repo, f)), f).toBe(true);
  });
});
