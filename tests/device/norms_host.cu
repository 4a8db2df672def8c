// norms_host.cu — runs the device library's row-kernel pieces on the host (tests/device/host_block.h
// plays the thread block), for tests/device/norms-host.test.ts. Each row is one emulated block of
// 256 threads doing what templates/row.cu.hbs does for a norm group: the norm's input into
// shared memory, st::row_stats<centered> over `groups` groups, then (x − mean)·rstd·w (+ b).
// Rope applies st::rope per element with the partner rot/2 away and position = row.
//
// Input (binary): int32 kind (0 rmsnorm, 1 layernorm, 2 gatedRmsnorm, 3 rope), rows, cols,
// groups, oneP, hasBias, rot, heads; float32 eps, theta, pos0; then x[rows·cols], z[rows·cols],
// w[cols], b[cols]. Output: y[rows·cols] float32.
#include "host_block.h"
#include "strata_ops.cuh"

#include <cstdio>
#include <vector>

namespace {

constexpr int kThreads = 256;

struct Header {
  int kind, rows, cols, groups, oneP, hasBias, rot, heads;
  float eps, theta, pos0;
};

template <bool kCentered>
void norm_row(const Header& h, const float* x, const float* z, const float* w, const float* b, float* y, float* s_pre) {
  static float s_mean[64], s_rstd[64];
  hostblock::run_block(kThreads, [&] {
    for (int c = threadIdx.x; c < h.cols; c += kThreads) s_pre[c] = h.kind == 2 ? x[c] * st::silu(z[c]) : x[c];
    __syncthreads();
    st::row_stats<kCentered>(s_pre, h.cols, h.groups, h.eps, s_mean, s_rstd);
    for (int c = threadIdx.x; c < h.cols; c += kThreads) {
      const int g = c / (h.cols / h.groups);
      const float wv = h.oneP ? (1.0f + w[c]) : w[c];
      float v = (s_pre[c] - s_mean[g]) * s_rstd[g] * wv;
      if (h.hasBias) v = v + b[c];
      y[c] = v;
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  FILE* f = std::fopen(argv[1], "rb");
  Header h{};
  if (!f || std::fread(&h, sizeof h, 1, f) != 1 || h.rows <= 0 || h.cols <= 0 || h.groups <= 0 || h.groups > 64) return 2;
  const size_t n = (size_t)h.rows * h.cols;
  std::vector<float> x(n), z(n), w(h.cols), b(h.cols), y(n), s_pre(h.cols);
  if (std::fread(x.data(), 4, n, f) != n || std::fread(z.data(), 4, n, f) != n || std::fread(w.data(), 4, h.cols, f) != (size_t)h.cols ||
      std::fread(b.data(), 4, h.cols, f) != (size_t)h.cols)
    return 2;
  std::fclose(f);
  for (int r = 0; r < h.rows; ++r) {
    const float* xr = x.data() + (size_t)r * h.cols;
    float* yr = y.data() + (size_t)r * h.cols;
    if (h.kind == 1) {
      norm_row<true>(h, xr, nullptr, w.data(), b.data(), yr, s_pre.data());
    } else if (h.kind == 0 || h.kind == 2) {
      norm_row<false>(h, xr, z.data() + (size_t)r * h.cols, w.data(), b.data(), yr, s_pre.data());
    } else {
      const int D = h.cols / h.heads;
      for (int c = 0; c < h.cols; ++c) {
        const int i = c % D;
        if (i < h.rot) {
          const int pc = i < h.rot / 2 ? c + h.rot / 2 : c - h.rot / 2;
          yr[c] = st::rope(xr[c], xr[pc], i, h.rot, h.pos0 + (float)r, h.theta);
        } else {
          yr[c] = xr[c];
        }
      }
    }
  }
  FILE* o = std::fopen(argv[2], "wb");
  if (!o || std::fwrite(y.data(), 4, n, o) != n) return 2;
  std::fclose(o);
  return 0;
}
