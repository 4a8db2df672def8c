// A host stand-in for templates/include/train_ops.cuh, for tests/kernels/train_ops_host_test.cpp:
// the same entry points (and scratch sizes) as the device library, computed by plain loops on the
// CPU, so the kernels' generated part — the functors fusion splices in, their index arithmetic,
// the launcher's buffer wiring and scratch sizes — runs without a GPU against the interpreter's
// float64 values. The device algorithms themselves are checked on the GPU (tests/gpu/).
// Scratch is written with the device layouts, so a scratch slot smaller than the kernel needs
// overruns the canary the test puts after it.
// The token reductions' pass 1 adds each column's rows in the device order (row lanes, then the
// lanes in order); where a launcher takes the vectorized pass (column_sums_vec, its base pointers
// 16-byte aligned) both passes run and must agree bit for bit — every Src8 element with Src's, and
// every partial — else a FAIL line is printed. g_column_sums counts which pass ran (for
// train_ops_host/reduce_vec_test.cpp); a vector load of a misaligned address traps.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "strata/math.cuh"

inline float rsqrtf(float x) { return 1.f / sqrtf(x); }

namespace st {
inline float ld(const __nv_bfloat16* p) { return __bfloat162float(*p); }
inline float ld(const float* p) { return *p; }
inline float ld(const int* p) { return static_cast<float>(*p); }
inline void st(__nv_bfloat16* p, float v) { *p = __float2bfloat16(v); }
inline void st(float* p, float v) { *p = v; }
using namespace strata::math;

// strata_ops.cuh's vec8 / ld8 / aligned16 (the vectorized Src8 functors' loads)
inline long long g_vec_loads = 0;
template <class T>
struct vec8;
template <>
struct vec8<__nv_bfloat16> {
  __nv_bfloat16 e[8];
  float operator[](int j) const { return __bfloat162float(e[j]); }
};
template <>
struct vec8<float> {
  float e[8];
  float operator[](int j) const { return e[j]; }
};
inline void check_aligned16(const void* p) {
  if (reinterpret_cast<uintptr_t>(p) & 15u) __builtin_trap();
  ++g_vec_loads;
}
template <class T>
vec8<T> ld8(const T* p) {
  check_aligned16(p);
  vec8<T> v;
  memcpy(v.e, p, sizeof v.e);
  return v;
}
template <class... P>
bool aligned16(const P*... p) {
  return ((reinterpret_cast<uintptr_t>(p) | ... | uintptr_t(0)) & 15u) == 0;
}
}  // namespace st

namespace strata {
namespace train {

template <class Src, class Out>
cudaError_t reduce_warp(Src src, Out out, long long outputs, long long count, float denom, cudaStream_t) {
  for (long long o = 0; o < outputs; ++o) {
    float acc = 0.f;
    for (long long j = 0; j < count; ++j) acc += src(o, j);
    out(o, acc / denom);
  }
  return cudaSuccess;
}

template <int kCols>
struct ColumnTiling {
  static constexpr int kRowLanes = 256 / kCols;
  static constexpr int kRowsPerLane = kCols >= 32 ? 16 : 8;
  static constexpr int kRowsPerChunk = kRowLanes * kRowsPerLane;
};

constexpr int kColumnVec = 8;
constexpr int column_vec_threads(int cols) {
  int x = 1;
  while (x < 32 && x * kColumnVec < cols) x *= 2;
  return x;
}

// How often each pass 1 ran: scalar (column_sums, or column_sums_vec falling back), vector.
struct ColumnSumsCount { long long scalar = 0, vec = 0, fallback = 0; };
inline ColumnSumsCount g_column_sums;

// Pass 1 in the device order (column_partials_kernel): row lane y adds rows y, y + kRowLanes, …
// of the chunk from 0.f, then the lanes are added in order from 0.f.
template <int kCols, class Src>
void column_partials_host(Src src, long long rows, int cols, float* partial) {
  using Tl = ColumnTiling<kCols>;
  const long long chunks = (rows + Tl::kRowsPerChunk - 1) / Tl::kRowsPerChunk;
  for (long long ch = 0; ch < chunks; ++ch)
    for (int c = 0; c < cols; ++c) {
      float t = 0.f;
      for (int y = 0; y < Tl::kRowLanes; ++y) {
        float a = 0.f;
        for (int i = 0; i < Tl::kRowsPerLane; ++i) {
          const long long r = ch * Tl::kRowsPerChunk + y + (long long)i * Tl::kRowLanes;
          if (r < rows) a += src(r, c);
        }
        t += a;
      }
      partial[ch * cols + c] = t;
    }
}

// The vectorized pass 1 (column_partials_vec_kernel): 8 columns at a time through src8, the same
// order per column.
template <int kCols, class Src8>
void column_partials_vec_host(Src8 src8, long long rows, int cols, float* partial) {
  using Tl = ColumnTiling<kCols>;
  const long long chunks = (rows + Tl::kRowsPerChunk - 1) / Tl::kRowsPerChunk;
  for (long long ch = 0; ch < chunks; ++ch)
    for (int c0 = 0; c0 < cols; c0 += kColumnVec) {
      float t[kColumnVec] = {};
      for (int y = 0; y < Tl::kRowLanes; ++y) {
        float a[kColumnVec] = {};
        for (int i = 0; i < Tl::kRowsPerLane; ++i) {
          const long long r = ch * Tl::kRowsPerChunk + y + (long long)i * Tl::kRowLanes;
          if (r >= rows) continue;
          float v[kColumnVec];
          src8(r, c0, v);
          for (int k = 0; k < kColumnVec; ++k) a[k] += v[k];
        }
        for (int k = 0; k < kColumnVec; ++k) t[k] += a[k];
      }
      for (int k = 0; k < kColumnVec; ++k) partial[ch * cols + c0 + k] = t[k];
    }
}

template <class Col, class Out>
void finish_partials_host(const float* partial, long long chunks, int cols, int perOut, Col col, Out out, long long outputs, float denom) {
  for (long long o = 0; o < outputs; ++o) {
    float acc = 0.f;
    for (long long ch = 0; ch < chunks; ++ch)
      for (int j = 0; j < perOut; ++j) acc += partial[ch * cols + col(o, j)];
    out(o, acc / denom);
  }
}

template <int kCols, class Src, class Col, class Out>
cudaError_t column_sums(Src src, long long rows, int cols, Col col, int perOut, Out out, long long outputs, float denom, float* partial, cudaStream_t) {
  const long long R = ColumnTiling<kCols>::kRowsPerChunk, chunks = (rows + R - 1) / R;
  ++g_column_sums.scalar;
  column_partials_host<kCols>(src, rows, cols, partial);
  finish_partials_host(partial, chunks, cols, perOut, col, out, outputs, denom);
  return cudaSuccess;
}

template <int kCols, int kVecX, class Src, class Src8, class Col, class Out>
cudaError_t column_sums_vec(Src src, Src8 src8, bool aligned, long long rows, int cols, Col col, int perOut, Out out, long long outputs, float denom, float* partial, cudaStream_t stream) {
  static_assert(kVecX >= 1 && kVecX <= 32 && (kVecX & (kVecX - 1)) == 0, "kVecX: a power of two ≤ 32");
  if (!aligned || cols % kColumnVec != 0) {
    ++g_column_sums.fallback;
    return column_sums<kCols>(src, rows, cols, col, perOut, out, outputs, denom, partial, stream);
  }
  ++g_column_sums.vec;
  const long long R = ColumnTiling<kCols>::kRowsPerChunk, chunks = (rows + R - 1) / R;
  // every element: Src8 as Src, bit for bit
  long long bad = 0;
  for (long long r = 0; r < rows; ++r)
    for (int c0 = 0; c0 < cols; c0 += kColumnVec) {
      float v[kColumnVec];
      src8(r, c0, v);
      for (int k = 0; k < kColumnVec; ++k) {
        const float s = src(r, c0 + k);
        if (memcmp(&s, &v[k], sizeof s) != 0 && bad++ == 0) printf("FAIL column_sums_vec %lld×%d: Src8(%lld, %d)[%d] = %a, Src = %a\n", rows, cols, r, c0, k, v[k], s);
      }
    }
  // the partials of both passes, bit for bit (the scalar set on the heap: the slot holds one)
  float* scalar = new float[chunks * cols > 0 ? chunks * cols : 1];
  column_partials_host<kCols>(src, rows, cols, scalar);
  column_partials_vec_host<kCols>(src8, rows, cols, partial);
  if (memcmp(scalar, partial, sizeof(float) * chunks * cols) != 0) {
    ++bad;
    printf("FAIL column_sums_vec %lld×%d: the vector pass 1's partials differ from the scalar pass's\n", rows, cols);
  }
  delete[] scalar;
  if (!bad) printf("VEC column_sums_vec %lld×%d (%d threads across): Src8 and the partials bit-identical to the scalar pass\n", rows, cols, kVecX);
  finish_partials_host(partial, chunks, cols, perOut, col, out, outputs, denom);
  return cudaSuccess;
}

template <class F>
cudaError_t for_each(F f, long long n, cudaStream_t) {
  for (long long i = 0; i < n; ++i) f(i);
  return cudaSuccess;
}

struct CrossEntropyParams {
  long long rows = 0;
  int vocab = 0;
  const void* logits = nullptr;
  long long logits_row_stride = 0;
  const int* targets = nullptr;
  const void* gy = nullptr;
  float* loss = nullptr;
  void* dlogits = nullptr;
  long long dlogits_row_stride = 0;
};

template <class TL, class TG, class TD>
cudaError_t cross_entropy_rows(const CrossEntropyParams& p, cudaStream_t) {
  for (long long r = 0; r < p.rows; ++r) {
    const TL* lg = static_cast<const TL*>(p.logits) + r * p.logits_row_stride;
    float m = -INFINITY, s = 0.f;
    for (int v = 0; v < p.vocab; ++v) m = fmaxf(m, st::ld(lg + v));
    for (int v = 0; v < p.vocab; ++v) s += expf(st::ld(lg + v) - m);
    const int t = p.targets[r];
    const bool bad = t < 0 || t >= p.vocab;
    if (p.loss) p.loss[r] = bad ? NAN : m + logf(s) - st::ld(lg + t);
    if (!p.dlogits) continue;
    const float g = bad ? NAN : st::ld(static_cast<const TG*>(p.gy) + r);
    TD* dl = static_cast<TD*>(p.dlogits) + r * p.dlogits_row_stride;
    for (int v = 0; v < p.vocab; ++v) {
      const float e = g * expf(st::ld(lg + v) - m) / s;
      st::st(dl + v, v == t ? e - g : e);
    }
  }
  return cudaSuccess;
}

struct EmbeddingGradParams {
  long long tokens = 0;
  int vocab = 0;
  const int* ids = nullptr;
  const void* gy = nullptr;
  long long gy_row_stride = 0;
  void* out = nullptr;
  void* scratch = nullptr;
};

template <int kD, class TG, class TO>
cudaError_t embedding_grad(const EmbeddingGradParams& p, cudaStream_t) {
  int* counts = static_cast<int*>(p.scratch);
  int* offsets = counts + p.vocab;
  int* cursor = offsets + p.vocab + 1;
  int* order = cursor + p.vocab;
  for (int v = 0; v < p.vocab; ++v) counts[v] = 0;
  for (long long i = 0; i < p.tokens; ++i) if (p.ids[i] >= 0 && p.ids[i] < p.vocab) ++counts[p.ids[i]];
  int run = 0;
  for (int v = 0; v < p.vocab; ++v) { offsets[v] = cursor[v] = run; run += counts[v]; }
  offsets[p.vocab] = run;
  for (long long i = 0; i < p.tokens; ++i) if (p.ids[i] >= 0 && p.ids[i] < p.vocab) order[cursor[p.ids[i]]++] = (int)i;
  const TG* gy = static_cast<const TG*>(p.gy);
  for (int v = 0; v < p.vocab; ++v)
    for (int c = 0; c < kD; ++c) {
      float a = 0.f;
      for (int k = offsets[v]; k < offsets[v + 1]; ++k) a += st::ld(gy + (long long)order[k] * p.gy_row_stride + c);
      st::st(static_cast<TO*>(p.out) + (long long)v * kD + c, a);
    }
  return cudaSuccess;
}

struct Conv1dGradParams {
  int batch = 0, seqlen = 0, channels = 0;
  const void* gy = nullptr; long long gy_row_stride = 0;
  const void* x = nullptr; long long x_row_stride = 0;
  const void* w = nullptr;
  const void* prefix = nullptr;
  void* dx = nullptr; long long dx_row_stride = 0;
  void* dw = nullptr;
  void* dprefix = nullptr;
  float* scratch = nullptr;
};

constexpr int kConvRows = 128;  // as the device library: one dw partial per chunk of 128 token rows

template <int K, class TG, class TX, class TW, class TP, class TDX, class TDW, class TDP>
cudaError_t conv1d_bwd(const Conv1dGradParams& p, cudaStream_t) {
  constexpr int P = K - 1;
  const int C = p.channels, T = p.seqlen;
  const long long rows = (long long)p.batch * T, chunks = (rows + kConvRows - 1) / kConvRows;
  auto G = [&](long long r, int c) { return st::ld(static_cast<const TG*>(p.gy) + r * p.gy_row_stride + c); };
  auto W = [&](int c, int k) { return st::ld(static_cast<const TW*>(p.w) + (long long)c * K + k); };
  for (long long r = 0; r < rows; ++r) {
    const long long b = r / T;
    const int t = (int)(r % T);
    for (int c = 0; c < C; ++c) {
      if (p.dw)
        for (int k = 0; k < K; ++k) {
          const int tp = t + k - P;
          float xv = 0.f;
          if (tp >= 0) xv = st::ld(static_cast<const TX*>(p.x) + (r + k - P) * p.x_row_stride + c);
          else if (p.prefix) xv = st::ld(static_cast<const TP*>(p.prefix) + (b * P + t + k) * C + c);
          float* part = p.scratch + ((r / kConvRows) * K + k) * C + c;  // the device layout [chunk][k][c]
          if (r % kConvRows == 0) *part = 0.f;
          *part += G(r, c) * xv;
        }
      if (p.dx) {
        float a = 0.f;
        for (int k = 0; k < K; ++k) if (t + P - k < T) a += G(r + P - k, c) * W(c, k);
        st::st(static_cast<TDX*>(p.dx) + r * p.dx_row_stride + c, a);
      }
    }
  }
  if (p.dw)
    for (int c = 0; c < C; ++c)
      for (int k = 0; k < K; ++k) {
        float a = 0.f;
        for (long long ch = 0; ch < chunks; ++ch) a += p.scratch[(ch * K + k) * C + c];
        st::st(static_cast<TDW*>(p.dw) + (long long)c * K + k, a);
      }
  if (p.dprefix)
    for (long long b = 0; b < p.batch; ++b)
      for (int pp = 0; pp < P; ++pp)
        for (int c = 0; c < C; ++c) {
          float a = 0.f;
          for (int k = 0; k <= pp; ++k) if (pp - k < T) a += G(b * T + pp - k, c) * W(c, k);
          st::st(static_cast<TDP*>(p.dprefix) + (b * P + pp) * C + c, a);
        }
  return cudaSuccess;
}

}  // namespace train
}  // namespace strata
