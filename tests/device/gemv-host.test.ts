/**
 * The decode GEMV (templates/include/gemv.cuh): its per-lane arithmetic (gemv_lane) compiled for
 * the host and run for every lane of every part of K (a random split of 1, 2, 4 or 8 parts, as
 * gemv_split picks per launch) of every column pair, summed as the warp and block reductions do, against
 * a float64 dot product — on fresh random shapes (K not a multiple of the lanes' stride, padded
 * row strides, every M up to 8) and data. The kernel itself runs in the GPU suite (every decode
 * step of the tiny models goes through it).
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { findNvcc } from "../../compiler/nvcc/driver.js";
import { INCLUDE_DIR } from "../../compiler/codegen/templates.js";
import { cachedNvcc } from "./host-build.js";

const SOURCE = String.raw`
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>
#include "gemv.cuh"
using namespace strata::gemv;
int main(int argc, char** argv) {
  std::mt19937 rng(std::strtoul(argv[1], nullptr, 10));
  std::normal_distribution<float> nd(0.f, 1.f);
  double worst = 0;
  int cases = 0;
  for (int trial = 0; trial < 24; ++trial) {
    const int M = 1 + rng() % kMaxRows, N = 2 * (1 + rng() % 12), K = 8 * (1 + rng() % 97), lda = K + 8 * (rng() % 3);
    std::vector<bf16> A(M * lda), W(N * K);
    for (auto& v : A) v = __float2bfloat16(nd(rng));
    for (auto& v : W) v = __float2bfloat16(nd(rng));
    for (int n0 = 0; n0 < N; n0 += 2) {
      // a launch splits K into 1, 2, 4 or 8 parts (gemv_split); every split must sum to the same
      const int split = 1 << (rng() % 4);
      double got[kMaxRows][2] = {};
      int covered = 0;
      for (int part = 0; part < split; ++part) {
        int b, e;
        gemv_part(K, split, part, b, e);
        if (b != covered) { std::printf("split %d part %d starts at chunk %d, not %d\n", split, part, b, covered); return 1; }
        covered = e;
        for (int lane = 0; lane < 32; ++lane) {
          float acc[kMaxRows][2];
          gemv_lane<false>(A.data(), lda, W.data(), M, K, n0, b, e, lane, acc);
          for (int m = 0; m < kMaxRows; ++m)
            for (int c = 0; c < 2; ++c) {
              if (m >= M && acc[m][c] != 0.f) { std::printf("row %d beyond M=%d touched\n", m, M); return 1; }
              got[m][c] += acc[m][c];
            }
        }
      }
      if (covered != K / 8) { std::printf("split %d covers %d of %d chunks\n", split, covered, K / 8); return 1; }
      for (int m = 0; m < M; ++m)
        for (int c = 0; c < 2; ++c) {
          double ref = 0, mag = 0;
          for (int k = 0; k < K; ++k) {
            const double t = (double)__bfloat162float(A[m * lda + k]) * __bfloat162float(W[(n0 + c) * K + k]);
            ref += t;
            mag += std::fabs(t);
          }
          const double err = std::fabs(got[m][c] - ref) / (mag + 1e-30);
          if (err > worst) worst = err;
          ++cases;
        }
    }
  }
  std::printf("cases %d worst %.3e\n", cases, worst);
  return worst < 1e-6 ? 0 : 1;
}
`;

describe.skipIf(!findNvcc())("decode GEMV (host)", () => {
  it("every lane split sums to the dot product (fresh shapes and data)", async () => {
    const b = await cachedNvcc(SOURCE, [INCLUDE_DIR], ["-std=c++17", "-O1", "-x", "cu", "-o", "gemv_host"], "gemv host check");
    const seed = process.env.STRATA_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
    const out = execFileSync(path.join(b.dir, "gemv_host"), [seed], { encoding: "utf8" });
    console.log(`[device/gemv-host] seed ${seed}: ${out.trim()}`);
    const m = /cases (\d+) worst ([0-9.e+-]+)/.exec(out);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(100);
    expect(Number(m![2])).toBeLessThan(1e-6);
  }, 180_000);
});
