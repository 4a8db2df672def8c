// conv1d.cuh — depthwise causal conv1d (Mamba / Mamba-2 short conv), forward, sm_90a.
//
// Definition (per batch b, channel c; K <= 4 taps; prefix = previous K-1 inputs, zeros if absent):
//   xx = concat(prefix[b, 0:K-1, c], x[b, 0:T, c])              (xx index 0 = token -(K-1))
//   y[b,t,c] = bias[c] + sum_{k<K} w[c,k] * xx[t + k]             (w[c,K-1] multiplies x_t)
//   optional y = silu(y);   optional state_out[b, 0:K-1, c] = xx[T : T+K-1] (last K-1 inputs)
//
// Memory bound. Each thread owns VEC = 8 channels (one 16-byte bf16 vector) and a tile of TT
// consecutive tokens; the K-1 previous inputs live in a register sliding window, so every x
// element is read once (+ K-1 halo rows per tile, L2 hits), weights are read once per thread.
// A warp reads/writes 512 contiguous bytes per token row. If C, the strides or the pointers are
// not 16-byte friendly, a VEC = 1 instantiation is used instead.
// Aliasing: state_out may alias state_in (the state updated in place, for any T): only tile 0's
// block reads the old state, and that block writes the new one after reading it.
//
// Layouts: x, y [B,T,C] bf16 with batch / token-row strides (elements) — x may be a column
// slice of a fused projection; w [C,K] bf16 contiguous; bias [C] bf16 (optional);
// state_in / state_out [B,K-1,C] fp32 contiguous (optional).
#pragma once

#include "strata/base.cuh"
#include "strata/math.cuh"
#include "strata/pdl.cuh"

namespace strata {
namespace conv1d {

struct Conv1dParams {
  int batch = 0, seqlen = 0, channels = 0;  // K is a template parameter
  const __nv_bfloat16* x = nullptr; long long x_batch_stride = 0, x_row_stride = 0;
  const __nv_bfloat16* w = nullptr;     // [C,K]
  const __nv_bfloat16* bias = nullptr;  // [C], optional
  const float* state_in = nullptr;      // [B,K-1,C], optional (zeros)
  float* state_out = nullptr;           // [B,K-1,C], optional
  __nv_bfloat16* y = nullptr; long long y_batch_stride = 0, y_row_stride = 0;
  bool silu = false;
};

namespace detail {

template <int VEC>
__device__ __forceinline__ void load_bf16(float (&v)[VEC], const __nv_bfloat16* src) {
  if constexpr (VEC == 8) {
    const uint4 raw = *reinterpret_cast<const uint4*>(src);
    const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __bfloat1622float2(h2[i]);
      v[2 * i] = f.x; v[2 * i + 1] = f.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) v[i] = __bfloat162float(src[i]);
  }
}
template <int VEC>
__device__ __forceinline__ void store_bf16(__nv_bfloat16* dst, const float (&v)[VEC]) {
  if constexpr (VEC == 8) {
    uint4 raw;
    __nv_bfloat162* h2 = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) h2[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
    *reinterpret_cast<uint4*>(dst) = raw;
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) dst[i] = __float2bfloat16(v[i]);
  }
}
template <int VEC>
__device__ __forceinline__ void load_f32(float (&v)[VEC], const float* src) {
  if constexpr (VEC == 8) {
    const float4 a = reinterpret_cast<const float4*>(src)[0], b = reinterpret_cast<const float4*>(src)[1];
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w; v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) v[i] = src[i];
  }
}
template <int VEC>
__device__ __forceinline__ void store_f32(float* dst, const float (&v)[VEC]) {
  if constexpr (VEC == 8) {
    reinterpret_cast<float4*>(dst)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(dst)[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) dst[i] = v[i];
  }
}

template <int K, int VEC, int TT>
__global__ void __launch_bounds__(128) causal_conv1d_fwd_kernel(const Conv1dParams p) {
  static_assert(K >= 2 && K <= 4, "K in [2,4]");
  static_assert(TT >= K - 1, "a token tile covers the K-1 halo (tile 0 alone reads the old state)");
  const int C = p.channels, T = p.seqlen;
  const int c0 = (blockIdx.x * blockDim.x + threadIdx.x) * VEC;
  const int b = blockIdx.z;
  const int tb = blockIdx.y * TT;
  const bool live = c0 < C && tb < T;

  // weights and bias first: no kernel in the stream writes them, so they load while the kernel
  // before this one finishes (launched programmatically, strata/pdl.cuh)
  float wv[K][VEC], bv[VEC];
  if (live) {
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
#pragma unroll
      for (int k = 0; k < K; ++k) wv[k][i] = __bfloat162float(p.w[(size_t)(c0 + i) * K + k]);
      bv[i] = p.bias ? __bfloat162float(p.bias[c0 + i]) : 0.f;
    }
  }
  pdl_wait();
  pdl_launch_dependents();
  if (!live) return;
  const __nv_bfloat16* xb = p.x + (long long)b * p.x_batch_stride + c0;
  __nv_bfloat16* yb = p.y + (long long)b * p.y_batch_stride + c0;

  float win[K - 1][VEC];
#pragma unroll
  for (int k = 0; k < K - 1; ++k) {
    const int t = tb - (K - 1) + k;
    if (t >= 0) {
      load_bf16<VEC>(win[k], xb + (long long)t * p.x_row_stride);
    } else if (p.state_in) {
      load_f32<VEC>(win[k], p.state_in + ((size_t)b * (K - 1) + (t + K - 1)) * C + c0);
    } else {
#pragma unroll
      for (int i = 0; i < VEC; ++i) win[k][i] = 0.f;
    }
  }
  const int tend = min(tb + TT, T);
  for (int t = tb; t < tend; ++t) {
    float cur[VEC], out[VEC];
    load_bf16<VEC>(cur, xb + (long long)t * p.x_row_stride);
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
      float a = bv[i];
#pragma unroll
      for (int k = 0; k < K - 1; ++k) a = fmaf(wv[k][i], win[k][i], a);
      a = fmaf(wv[K - 1][i], cur[i], a);
      if (p.silu) a = fast_silu(a);
      out[i] = a;
    }
    store_bf16<VEC>(yb + (long long)t * p.y_row_stride, out);
#pragma unroll
    for (int k = 0; k < K - 2; ++k)
#pragma unroll
      for (int i = 0; i < VEC; ++i) win[k][i] = win[k + 1][i];
#pragma unroll
    for (int i = 0; i < VEC; ++i) win[K - 2][i] = cur[i];
  }
  // The new state (the last K-1 inputs) is written by the block of tile 0, the only one that reads
  // the old state, after it has read it — so state_out may alias state_in (the state updated in
  // place). When tile 0 is also the last tile its window holds them; otherwise (T > TT ≥ K-1)
  // they all come from x.
  if (p.state_out && tb == 0) {
    if (tend != T) {
#pragma unroll
      for (int k = 0; k < K - 1; ++k) load_bf16<VEC>(win[k], xb + (long long)(T - (K - 1) + k) * p.x_row_stride);
    }
#pragma unroll
    for (int k = 0; k < K - 1; ++k) store_f32<VEC>(p.state_out + ((size_t)b * (K - 1) + k) * C + c0, win[k]);
  }
}

inline bool al16(const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15u) == 0; }

template <int K, int VEC, int TT>
inline cudaError_t launch(const Conv1dParams& p, cudaStream_t stream) {
  const int threads = 128;
  const int nvec = (p.channels + VEC - 1) / VEC;
  dim3 grid((nvec + threads - 1) / threads, (p.seqlen + TT - 1) / TT, p.batch);
  return launch_pdl<causal_conv1d_fwd_kernel<K, VEC, TT>>(grid, dim3(threads), 0, stream, p);
}

}  // namespace detail

// Forward. K in {2,3,4}; TT = tokens per thread tile.
template <int K, int TT = 32>
inline cudaError_t causal_conv1d_fwd(const Conv1dParams& p, cudaStream_t stream = 0) {
  if (p.batch <= 0 || p.channels <= 0 || p.seqlen < 0 || !p.x || !p.w || !p.y) return cudaErrorInvalidValue;
  if (p.seqlen == 0) {
    // No new tokens: the state passes through.
    if (p.state_out && p.state_in && p.state_out != p.state_in)
      return cudaMemcpyAsync(p.state_out, p.state_in, sizeof(float) * (size_t)p.batch * (K - 1) * p.channels,
                             cudaMemcpyDeviceToDevice, stream);
    if (p.state_out && !p.state_in)
      return cudaMemsetAsync(p.state_out, 0, sizeof(float) * (size_t)p.batch * (K - 1) * p.channels, stream);
    return cudaSuccess;
  }
  const bool vec = (p.channels % 8 == 0) && detail::al16(p.x) && detail::al16(p.y) &&
                   !((p.x_row_stride | p.x_batch_stride | p.y_row_stride | p.y_batch_stride) & 7) &&
                   (!p.state_in || detail::al16(p.state_in)) && (!p.state_out || detail::al16(p.state_out));
  return vec ? detail::launch<K, 8, TT>(p, stream) : detail::launch<K, 1, TT>(p, stream);
}

}  // namespace conv1d
}  // namespace strata
