// device_lib_check.cu — compile check of the whole device library (templates/include), built by
// tests/device/device-lib.test.ts for sm_80 and sm_90a (nvcc only, nothing runs). It
// instantiates every kernel family's launcher with the configurations the compiler emits and
// exercises every wrapper of strata/ once — including the mbarrier and TMA ones no kernel uses
// yet — so ptxas checks each instruction's syntax and architecture guard. On sm_80 the wgmma
// and TMA wrappers compile to traps; everything else must compile as on sm_90a.
#include <cuda_runtime.h>

#include "attention.cuh"
#include "conv1d.cuh"
#include "gemm.cuh"
#include "selective_scan.cuh"
#include "ssd.cuh"
#include "strata_common.cuh"
#include "strata_ops.cuh"
#include "strata/tma.cuh"

namespace check {

// Every scalar function of strata/math.cuh and strata/bf16.cuh, by its st:: and strata:: names.
__global__ void math_kernel(const float* __restrict__ x, float* __restrict__ y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = x[i];
  float r = st::sigmoid(v) + st::silu(v) + st::softplus(v) + st::relu2(v) + st::gelu(v) + st::gelu_tanh(v) + st::to_bf16(v);
  r += strata::fast_exp(v) + strata::fast_exp2(v) + strata::fast_silu(v) + strata::fast_softplus(v);
  const float2 u = strata::unpack_bf16x2(strata::pack_bf16x2(v, r));
  y[i] = u.x + u.y;
}

// The row-kernel helpers: block_sum, row_stats (both variants) and rope.
__global__ void row_kernel(const float* __restrict__ x, float* __restrict__ y, int cols) {
  extern __shared__ float s[];
  __shared__ float mean[2], rstd[2];
  for (int c = threadIdx.x; c < cols; c += blockDim.x) s[c] = x[(long long)blockIdx.x * cols + c];
  __syncthreads();
  st::row_stats<true>(s, cols, 2, 1e-5f, mean, rstd);
  const float m0 = mean[0], r0 = rstd[0];
  st::row_stats<false>(s, cols, 1, 1e-5f, mean, rstd);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const float v = (s[c] - m0) * r0 * rstd[0];
    st::st(y + (long long)blockIdx.x * cols + c, st::rope(v, s[c ^ 1], c & 63, 64, (float)blockIdx.x, 10000.f));
  }
}

// One TMA round trip through shared memory: mbarrier init + expect_tx, a 2-D tile load,
// try_wait on the phase, the async-proxy fence, a 2-D tile store and the bulk-group wait.
__global__ void tma_kernel(const __grid_constant__ CUtensorMap in, const __grid_constant__ CUtensorMap out) {
  __shared__ alignas(1024) __nv_bfloat16 tile[64 * 64];
  __shared__ alignas(8) uint64_t bar;
  if (threadIdx.x == 0) {
    strata::prefetch_tensormap(&in);
    strata::mbarrier_init(&bar, 1);
    strata::fence_mbarrier_init();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    strata::mbarrier_arrive_expect_tx(&bar, sizeof(tile));
    strata::tma_load_2d(tile, &in, &bar, 0, blockIdx.x * 64);
  }
  strata::mbarrier_wait_parity(&bar, 0);
  strata::fence_proxy_async();
  __syncthreads();
  if (threadIdx.x == 0) {
    strata::tma_store_2d(&out, tile, 0, blockIdx.x * 64);
    strata::tma_store_commit();
    strata::tma_store_wait<0>();
    strata::mbarrier_expect_tx(&bar, 0);
    (void)strata::mbarrier_arrive(&bar);
  }
}

// cp.async + ldmatrix + mma.sync + wgmma wrappers outside the GEMM (transposed ldmatrix,
// wait_all, the m64n64 and m64n256 wgmma shapes the default GEMM configs do not use).
__global__ void ptx_kernel(const __nv_bfloat16* __restrict__ g, float* __restrict__ out) {
  __shared__ alignas(1024) __nv_bfloat16 s[64 * 64];
  const uint32_t base = strata::smem_u32(s);
  strata::cp_async_16(base + threadIdx.x * 16, g + threadIdx.x * 8, threadIdx.x < 200);
  strata::cp_async_commit();
  strata::cp_async_wait<0>();
  strata::cp_async_wait_all();
  __syncthreads();
  uint32_t a[4], b[4];
  strata::ldmatrix_x4(a, base + (threadIdx.x & 31) * 16);
  strata::ldmatrix_x4_trans(b, base + 1024 + (threadIdx.x & 31) * 16);
  float d[4] = {0.f, 0.f, 0.f, 0.f};
  strata::mma_m16n8k16_bf16(d, a, b[0], b[1]);
  float w64[32] = {}, w256[128] = {};
  strata::fence_proxy_async();
  strata::wgmma_fence();
  strata::Wgmma<64>::mma(w64, strata::wgmma_desc_sw128(base), strata::wgmma_desc_sw128(base + 32));
  strata::Wgmma<256>::mma(w256, strata::wgmma_desc_sw128(base), strata::wgmma_desc_sw128(base + 32));
  strata::wgmma_commit();
  strata::wgmma_wait<0>();
  float acc = d[0] + d[1] + d[2] + d[3];
#pragma unroll
  for (int i = 0; i < 32; ++i) acc += w64[i];
#pragma unroll
  for (int i = 0; i < 128; ++i) acc += w256[i];
  out[threadIdx.x] = acc;
}

}  // namespace check

// Host entry points, so every launcher is instantiated (never called by the test).
extern "C" cudaError_t strata_device_lib_check(void* const* bufs, cudaStream_t stream) {
  namespace sg = strata::gemm;
  using bf16 = __nv_bfloat16;
  const bf16* a = static_cast<const bf16*>(bufs[0]);
  cudaError_t e = cudaSuccess;
  e = sg::gemm_launch<sg::DefaultMmaConfig, sg::EpiStoreBF16>(a, 64, a, 64, 64, 64, {static_cast<bf16*>(bufs[1]), 64}, stream);
  e = sg::gemm_launch<sg::DefaultWgmmaConfig, sg::EpiBiasResidualBF16>(a, 64, a, 64, 64, 64, {static_cast<bf16*>(bufs[1]), 64, a, 64, a}, stream);
  e = sg::gemm_launch<sg::DefaultWsConfig, sg::EpiStoreBF16>(a, 64, a, 64, 64, 64, {static_cast<bf16*>(bufs[1]), 64}, stream);
  e = sg::gemm_launch<sg::MmaConfig<64, 128, 3, 2, 2>, sg::EpiStoreF32>(a, 64, a, 64, 64, 64, {static_cast<float*>(bufs[2]), 64}, stream);
  strata::attn::AttentionParams ap{};
  e = strata::attn::attention_launch<64>(ap, stream);
  e = strata::attn::attention_launch<128>(ap, stream);
  e = strata::attn::attention_launch_wgmma<128>(ap, stream);
  e = strata::attn::attention_launch_splitkv<64>(ap, stream);
  strata::ssd::SsdParams sp{};
  e = strata::ssd::ssd_chunked_fwd<128, 64, 128>(sp, stream);
  e = strata::ssd::ssd_chunked_fwd<64, 64, 64>(sp, stream);
  e = strata::ssd::ssd_decode_fwd<64, 128>(sp, stream);
  strata::sscan::SelectiveScanParams ss{};
  e = strata::sscan::selective_scan_fwd<16>(ss, stream);
  e = strata::sscan::selective_scan_fwd<128>(ss, stream);
  strata::conv1d::Conv1dParams cp{};
  e = strata::conv1d::causal_conv1d_fwd<4>(cp, stream);
  check::math_kernel<<<1, 128, 0, stream>>>(static_cast<const float*>(bufs[2]), static_cast<float*>(bufs[3]), 128);
  check::row_kernel<<<1, 256, 4096, stream>>>(static_cast<const float*>(bufs[2]), static_cast<float*>(bufs[3]), 1024);
  check::ptx_kernel<<<1, 128, 0, stream>>>(a, static_cast<float*>(bufs[3]));
  CUtensorMap in{}, out{};
  const char* why = nullptr;
  e = strata::make_tensor_map_2d_bf16(&in, a, 1024, 64, 64, 64, 64, CU_TENSOR_MAP_SWIZZLE_128B, &why);
  e = strata::make_tensor_map_2d_bf16(&out, bufs[1], 1024, 64, 64, 64, 64, CU_TENSOR_MAP_SWIZZLE_128B, &why);
  check::tma_kernel<<<16, 128, 0, stream>>>(in, out);
  return e;
}
