// selective_scan.cuh — Mamba-1 selective scan, forward, for Hopper (sm_90a).
//
// Definition (per batch b, channel d; state h in R^N, fp32):
//   delta_t = softplus(delta_raw_t + delta_bias[d])
//   h_t = exp(delta_t * A[d,:]) (.) h_{t-1} + delta_t * u_t * B_t          (B_t in R^N, shared by all d)
//   y_t = sum_n h_t[n] C_t[n] + Dskip[d] * u_t ;  optionally y_t *= silu(z_t)
//
// Parallelisation: one thread group of NT = N / NPT lanes (same warp) per (b, d); each lane
// keeps NPT states in registers (NPT = 16 for N >= 64, 4 for N = 16), so N = 128 uses 8
// lanes x 16 states and never spills. Lane j of a group owns states
// n = q*(4*NT) + 4*j + e (q < NPT/4, e < 4), so the float4 shared-memory reads of B_t / C_t of
// a warp cover one contiguous 128-byte line (conflict-free, broadcast across channels).
// Each step: NPT ex2.approx + 2*NPT FMA per lane, then an xor-shuffle reduction of the
// partial y over the NT lanes. A block of 128 threads covers CH = 128 / NT channels; T is
// walked in chunks of TC tokens: B/C (TC x N) are staged in smem as fp32, delta = softplus and
// delta*u for the block's channels are precomputed per chunk into smem, y partial sums are
// collected in smem and written (with D*u and the silu(z) gate) coalesced at the end of the chunk.
// T = 1 (decode) is the same kernel. hT may alias h0 (each element read and written by one thread).
//
// Layouts: token-major. u, delta_raw, z, y: [B,T,D] bf16 (base + batch stride + token row stride,
// elements); Bm, Cm: [B,T,N] bf16 (strided, e.g. slices of the x_proj output); A [D,N] fp32
// (= -exp(A_log)); delta_bias, Dskip [D] fp32 (optional); h0 / hT [B,D,N] fp32 contiguous.
#pragma once

#include "strata/base.cuh"
#include "strata/math.cuh"

namespace strata {
namespace sscan {

struct SelectiveScanParams {
  int batch = 0, seqlen = 0, dim = 0;  // N (d_state) is a template parameter
  const __nv_bfloat16* u = nullptr;     long long u_batch_stride = 0, u_row_stride = 0;
  const __nv_bfloat16* delta = nullptr; long long delta_batch_stride = 0, delta_row_stride = 0;
  const float* delta_f32 = nullptr;  // instead of delta: an f32 delta (a stored softplus(delta + bias)), same strides
  const float* delta_bias = nullptr;    // [D], optional
  bool delta_softplus = true;  // false: delta is already softplus(delta_raw + bias) (stored for the backward)
  const float* A = nullptr;             // [D,N]
  const __nv_bfloat16* B = nullptr;     long long B_batch_stride = 0, B_row_stride = 0;
  const __nv_bfloat16* C = nullptr;     long long C_batch_stride = 0, C_row_stride = 0;
  const float* Dskip = nullptr;         // [D], optional
  const __nv_bfloat16* z = nullptr;     long long z_batch_stride = 0, z_row_stride = 0;  // optional gate
  const float* h0 = nullptr;            // [B,D,N], optional
  float* hT = nullptr;                  // [B,D,N], optional
  __nv_bfloat16* y = nullptr;           long long y_batch_stride = 0, y_row_stride = 0;
};

namespace detail {

// fast_exp2 (ex2.approx), fast_softplus and fast_silu (__expf forms): strata/math.cuh.

template <int N>
struct ScanCfg {
  static constexpr int NPT = (N >= 64) ? 16 : 4;  // states per lane
  static constexpr int NT = N / NPT;               // lanes per channel
  static constexpr int THREADS = 128;
  static constexpr int CH = THREADS / NT;          // channels per block
  static constexpr int TC = 32;                    // tokens per smem chunk
  static constexpr size_t kSmem = sizeof(float) * (size_t)(2 * TC * N + 3 * TC * CH);
  static_assert(N % NPT == 0 && NPT % 4 == 0 && (NT & (NT - 1)) == 0 && NT <= 32, "bad N");
};

template <int N>
__global__ void __launch_bounds__(128, 4) selective_scan_fwd_kernel(const SelectiveScanParams p, const bool vec2) {
  using Cfg = ScanCfg<N>;
  constexpr int NPT = Cfg::NPT, NT = Cfg::NT, CH = Cfg::CH, TC = Cfg::TC;
  extern __shared__ __align__(16) float sm[];
  float* sB = sm;                 // [TC][N]
  float* sC = sB + TC * N;        // [TC][N]
  float* sDl = sC + TC * N;       // [TC][CH] delta
  float* sDu = sDl + TC * CH;     // [TC][CH] delta * u
  float* sY = sDu + TC * CH;      // [TC][CH] y partial (state part)

  const int tid = threadIdx.x;
  const int b = blockIdx.y;
  const int d0 = blockIdx.x * CH;
  const int cl = tid / NT, j = tid % NT;
  const int d = d0 + cl;
  const bool dvalid = d < p.dim;
  const int T = p.seqlen;

  float A2[NPT], hs[NPT];
#pragma unroll
  for (int q = 0; q < NPT / 4; ++q)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int n = q * 4 * NT + 4 * j + e;
      A2[q * 4 + e] = dvalid ? p.A[(size_t)d * N + n] * kLog2e : 0.f;
      hs[q * 4 + e] = (dvalid && p.h0) ? p.h0[((size_t)b * p.dim + d) * N + n] : 0.f;
    }

  const __nv_bfloat16* Bg = p.B + (long long)b * p.B_batch_stride;
  const __nv_bfloat16* Cg = p.C + (long long)b * p.C_batch_stride;

  for (int t0 = 0; t0 < T; t0 += TC) {
    const int Tv = min(TC, T - t0);
    __syncthreads();  // previous chunk fully consumed
    // stage B, C (fp32)
    if (vec2) {
      for (int i = tid; i < TC * N / 2; i += 128) {
        const int r = i / (N / 2), n2 = (i % (N / 2)) * 2;
        float2 bv = make_float2(0.f, 0.f), cv = bv;
        if (r < Tv) {
          bv = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(Bg + (long long)(t0 + r) * p.B_row_stride + n2));
          cv = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(Cg + (long long)(t0 + r) * p.C_row_stride + n2));
        }
        *reinterpret_cast<float2*>(sB + r * N + n2) = bv;
        *reinterpret_cast<float2*>(sC + r * N + n2) = cv;
      }
    } else {
      for (int i = tid; i < TC * N; i += 128) {
        const int r = i / N, n = i % N;
        float bv = 0.f, cv = 0.f;
        if (r < Tv) {
          bv = __bfloat162float(Bg[(long long)(t0 + r) * p.B_row_stride + n]);
          cv = __bfloat162float(Cg[(long long)(t0 + r) * p.C_row_stride + n]);
        }
        sB[r * N + n] = bv;
        sC[r * N + n] = cv;
      }
    }
    // per-channel delta, delta*u
    for (int i = tid; i < TC * CH; i += 128) {
      const int r = i / CH, c = i % CH;
      const int dd = d0 + c;
      float dl = 0.f, du = 0.f;
      if (r < Tv && dd < p.dim) {
        const long long t = t0 + r;
        const long long di = (long long)b * p.delta_batch_stride + t * p.delta_row_stride + dd;
        float raw = p.delta_f32 ? p.delta_f32[di] : __bfloat162float(p.delta[di]);
        if (p.delta_bias) raw += p.delta_bias[dd];
        dl = (p.delta_softplus ? fast_softplus(raw) : raw);
        du = dl * __bfloat162float(p.u[(long long)b * p.u_batch_stride + t * p.u_row_stride + dd]);
      }
      sDl[r * CH + c] = dl;
      sDu[r * CH + c] = du;
    }
    __syncthreads();
    // recurrence
    for (int r = 0; r < Tv; ++r) {
      const float dl = sDl[r * CH + cl];
      const float du = sDu[r * CH + cl];
      float acc = 0.f;
#pragma unroll
      for (int q = 0; q < NPT / 4; ++q) {
        const float4 bv = *reinterpret_cast<const float4*>(sB + r * N + q * 4 * NT + 4 * j);
        const float4 cv = *reinterpret_cast<const float4*>(sC + r * N + q * 4 * NT + 4 * j);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float bb = e == 0 ? bv.x : e == 1 ? bv.y : e == 2 ? bv.z : bv.w;
          const float cc = e == 0 ? cv.x : e == 1 ? cv.y : e == 2 ? cv.z : cv.w;
          hs[q * 4 + e] = fast_exp2(dl * A2[q * 4 + e]) * hs[q * 4 + e] + du * bb;
          acc += hs[q * 4 + e] * cc;
        }
      }
#pragma unroll
      for (int o = NT / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
      if (j == 0) sY[r * CH + cl] = acc;
    }
    __syncthreads();
    // output
    for (int i = tid; i < Tv * CH; i += 128) {
      const int r = i / CH, c = i % CH;
      const int dd = d0 + c;
      if (dd >= p.dim) continue;
      const long long t = t0 + r;
      float yv = sY[r * CH + c];
      if (p.Dskip) yv += p.Dskip[dd] * __bfloat162float(p.u[(long long)b * p.u_batch_stride + t * p.u_row_stride + dd]);
      if (p.z) {
        const float zv = __bfloat162float(p.z[(long long)b * p.z_batch_stride + t * p.z_row_stride + dd]);
        yv *= fast_silu(zv);
      }
      p.y[(long long)b * p.y_batch_stride + t * p.y_row_stride + dd] = __float2bfloat16(yv);
    }
  }
  if (p.hT && dvalid) {
#pragma unroll
    for (int q = 0; q < NPT / 4; ++q)
#pragma unroll
      for (int e = 0; e < 4; ++e) p.hT[((size_t)b * p.dim + d) * N + q * 4 * NT + 4 * j + e] = hs[q * 4 + e];
  }
}

}  // namespace detail

// Forward (prefill or decode: T = 1). N in {16, 64, 128} (any N with N/NPT a power of two <= 32).
template <int N>
inline cudaError_t selective_scan_fwd(const SelectiveScanParams& p, cudaStream_t stream = 0) {
  using Cfg = detail::ScanCfg<N>;
  if (p.batch <= 0 || p.dim <= 0 || p.seqlen < 0) return cudaErrorInvalidValue;
  if (!p.u || !(p.delta || p.delta_f32) || !p.A || !p.B || !p.C || !p.y) return cudaErrorInvalidValue;
  const bool vec2 = !((reinterpret_cast<uintptr_t>(p.B) | reinterpret_cast<uintptr_t>(p.C)) & 3) &&
                    !((p.B_row_stride | p.B_batch_stride | p.C_row_stride | p.C_batch_stride) & 1);
  auto kern = detail::selective_scan_fwd_kernel<N>;
  if (Cfg::kSmem > 48 * 1024) {
    cudaError_t e = opt_in_smem<detail::selective_scan_fwd_kernel<N>>((int)Cfg::kSmem);
    if (e != cudaSuccess) return e;
  }
  dim3 grid((p.dim + Cfg::CH - 1) / Cfg::CH, p.batch);
  kern<<<grid, Cfg::THREADS, Cfg::kSmem, stream>>>(p, vec2);
  return cudaGetLastError();
}

}  // namespace sscan
}  // namespace strata
