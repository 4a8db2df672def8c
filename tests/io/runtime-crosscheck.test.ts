/**
 * Cross-check against the C++ runtime's host code (skipped without g++): a safetensors file
 * written here is read — and written back — by runtime/src/safetensors.cpp, and the runtime's
 * init_tensor + convert_from_f32 output is compared bit for bit with initTensor + bf16/f16 here.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { initTensor, parseInitSpec } from "../../compiler/interp/interp.js";
import type { AttrValue } from "../../compiler/ir/node.js";
import { bf16Bits, f16Bits, readSafetensorsFile, writeSafetensors } from "../../compiler/io/safetensors.js";

function hasGxx(): boolean {
  try {
    execFileSync("g++", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const PROGRAM = String.raw`
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include "dtype.h"
#include "init.h"
#include "json.h"
#include "safetensors.h"
using namespace strata;
int main(int argc, char** argv) {
  try {
    std::string mode = argv[1];
    if (mode == "copy") {
      SafetensorsFile f(argv[2]);
      std::vector<TensorWrite> ws;
      for (const auto& t : f.tensors()) ws.push_back({t.name, t.dtype, t.shape, f.data(t)});
      write_safetensors(argv[3], ws, f.metadata());
      return 0;
    }
    // init OUT N SPEC... : tensors "<i>/F32", "<i>/BF16", "<i>/F16" for spec i, seed 42, name "w<i>"
    size_t n = std::stoul(argv[3]);
    std::vector<std::vector<uint8_t>> bufs;
    std::vector<TensorWrite> ws;
    std::vector<std::string> names;
    for (int a = 4; a < argc; ++a) {
      InitSpec s = parse_init_spec(json::parse(argv[a], "spec"), "spec");
      std::vector<float> v(n);
      init_tensor(s, 42, "w" + std::to_string(a - 4), v.data(), n, 4);
      for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
        bufs.emplace_back(n * dtype_size(dt));
        convert_from_f32(v.data(), n, dt, bufs.back().data());
        names.push_back(std::to_string(a - 4) + "/" + dtype_name(dt));
      }
    }
    for (size_t i = 0; i < bufs.size(); ++i) ws.push_back({names[i], i % 3 == 0 ? DType::F32 : i % 3 == 1 ? DType::BF16 : DType::F16, {(int64_t)n}, bufs[i].data()});
    write_safetensors(argv[2], ws);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
`;

describe.skipIf(!hasGxx())("cross-check with the C++ runtime (g++)", () => {
  const dir = mkdtempSync(join(tmpdir(), "strata-xcheck-"));
  const exe = join(dir, "xcheck");
  const src = resolve("runtime/src");
  const build = () => {
    writeFileSync(join(dir, "xcheck.cpp"), PROGRAM);
    execFileSync(
      "g++",
      ["-std=c++17", "-O1", "-pthread", `-I${src}`, "-Iruntime/include", join(dir, "xcheck.cpp"), ...["json", "dtype", "safetensors", "init"].map((f) => join(src, `${f}.cpp`)), "-o", exe],
      { stdio: "pipe" },
    );
  };

  it("runtime reads (and rewrites) a TS-written file identically; init + dtype conversion match bit for bit", () => {
    build();
    // 1. TS → C++ → TS
    const n = 257;
    const floats = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 9) - 4));
    const ints = Int32Array.from({ length: n }, (_, i) => Math.imul(i, 0x9e3779b9));
    const bigs = BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * -0x123456789abn);
    const a = join(dir, "a.safetensors"), b = join(dir, "b.safetensors");
    const meta = { format: "pt", note: "ünï \"quoted\"" };
    writeSafetensors(
      a,
      [
        { name: "f32", dtype: "F32", shape: [n], data: floats },
        { name: "bf16", dtype: "BF16", shape: [1, n], data: floats },
        { name: "f16", dtype: "F16", shape: [n, 1], data: floats },
        { name: "i32", dtype: "I32", shape: [n], data: ints },
        { name: "i64", dtype: "I64", shape: [n], data: bigs },
      ],
      meta,
    );
    execFileSync(exe, ["copy", a, b], { stdio: "pipe" });
    const ra = readSafetensorsFile(a), rb = readSafetensorsFile(b);
    expect(rb.metadata).toEqual(meta);
    expect([...rb.tensors.keys()]).toEqual([...ra.tensors.keys()]);
    for (const [k, t] of ra.tensors) {
      const u = rb.tensors.get(k)!;
      expect(u.dtype).toBe(t.dtype);
      expect(u.shape).toEqual(t.shape);
      expect(Buffer.from(u.data.buffer).equals(Buffer.from(t.data.buffer)), k).toBe(true);
    }

    // 2. weight init + storage conversion
    const N = 20000;
    const specs: Record<string, AttrValue>[] = [
      { kind: "normal", std: 0.02 },
      { kind: "normal", std: 3, mean: -1 },
      { kind: "uniform", low: -0.5, high: 2 },
      { kind: "const", value: 0.1 },
      { kind: "ones" },
      { kind: "alog_uniform" },
      { kind: "alog_arange", n: 16 },
      { kind: "alog_arange", n: 7 },
      { kind: "dt_bias", dtMin: 0.001, dtMax: 0.1, floor: 0.005 },
      { kind: "kaiming_uniform", fanIn: 96 },
    ];
    const c = join(dir, "init.safetensors");
    execFileSync(exe, ["init", c, String(N), ...specs.map((s) => JSON.stringify(s))], { stdio: "pipe" });
    const rc = readSafetensorsFile(c).tensors;
    specs.forEach((spec, i) => {
      const mine = new Float32Array(N);
      initTensor(mine, parseInitSpec(spec, `w${i}`), 42, `w${i}`);
      const cf32 = rc.get(`${i}/F32`)!.data as Float32Array;
      let bad = 0;
      for (let j = 0; j < N; j++) if (!Object.is(cf32[j], mine[j])) bad++;
      expect(bad, `${JSON.stringify(spec)} F32 mismatches`).toBe(0);
      const cb = rc.get(`${i}/BF16`)!.data as Float32Array, ch = rc.get(`${i}/F16`)!.data as Float32Array;
      const bb = new Uint32Array(cb.buffer);
      for (let j = 0; j < N; j++) {
        if (bb[j]! >>> 16 !== bf16Bits(mine[j]!)) throw new Error(`${JSON.stringify(spec)} BF16 element ${j}`);
        if (f16Bits(ch[j]!) !== f16Bits(mine[j]!)) throw new Error(`${JSON.stringify(spec)} F16 element ${j}`);
      }
    });
  }, 120_000);
});
