// strata/ptx.cuh — the PTX wrappers every kernel uses: shared-memory addresses, cp.async,
// ldmatrix, mma.sync, wgmma (sm_90a) and mbarrier. One copy of each instruction, with the same
// operand constraints everywhere; TMA lives in tma.cuh.
//
// Memory clobbers: every wrapper that orders memory (cp.async commit/wait, fences, wgmma
// fence/commit/wait, mbarrier operations) carries "memory", so the compiler neither caches a
// shared-memory value across it nor moves ordinary loads/stores over it. The data-movement and
// math instructions themselves (cp.async, ldmatrix, mma) are `asm volatile` without a clobber:
// volatile asm keeps its order relative to the other volatile asm above.
//
//   smem_u32(p)                               generic pointer -> 32-bit shared-window address
//   cp_async_16(dst, src, valid)              16-byte global->shared copy, zero-fill when !valid
//   cp_async_commit / cp_async_wait<N> / cp_async_wait_all
//   ldmatrix_x4(r, addr) / ldmatrix_x4_trans(r, addr)
//   mma_m16n8k16_bf16(d, a, b0, b1)           D(16x8 f32) += A(16x16 bf16 row) B(16x8 bf16 col)
//   prefetch_l2(p)                            the line holding p into L2 (nothing waited on)
//   fence_proxy_async()                       generic-proxy smem writes -> async proxy (sm_90)
//   wgmma_fence / wgmma_commit / wgmma_wait<N>, wgmma_desc_sw128(addr), Wgmma<N>::mma (sm_90a)
//   mbarrier_init / fence_mbarrier_init / mbarrier_arrive / mbarrier_arrive_expect_tx /
//   mbarrier_expect_tx / mbarrier_try_wait_parity / mbarrier_wait_parity
//   setmaxnreg_dec<N> / setmaxnreg_inc<N>     warpgroup register reallocation (sm_90a)
//   wgmma_m64nNk16_ss / _rs, WgmmaSS / WgmmaRS, wgmma_reg_fence, wgmma_desc_sw128_mn   (sm_90a;
//                                             runtime scale-d, A from registers: attention)
//   named_barrier_sync(id, threads)
//   cluster_ctarank / cluster_sync / mbarrier_arrive_cluster(bar, cta)   thread-block clusters (sm_90)
#pragma once

#include "base.cuh"

namespace strata {
inline namespace ptx {

STRATA_DEV uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// ---- cp.async (sm_80+) ------------------------------------------------------------------
// 16-byte async copy global->shared; copies 0 bytes (zero-fills the 16 smem bytes) when !valid.
STRATA_DEV void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
STRATA_DEV void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Wait until at most N of this thread's committed groups are still in flight.
template <int N>
STRATA_DEV void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }
STRATA_DEV void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// ---- ldmatrix / mma.sync (sm_80+) ---------------------------------------------------------
STRATA_DEV void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
STRATA_DEV void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// D(16x8 f32) += A(16x16 bf16, row) * B(16x8 bf16, col), accumulating in place.
STRATA_DEV void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Prefetch the 128-byte line holding p into L2 (no registers held, nothing waited on).
STRATA_DEV void prefetch_l2(const void* p) {
#if defined(__CUDA_ARCH__)
  asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p));
#endif
}

// ---- async proxy, wgmma (sm_90a) -----------------------------------------------------------
// Make this thread's generic-proxy shared-memory writes (st.shared, cp.async) visible to the
// async proxy (wgmma operand reads, TMA stores). No-op before sm_90 (there is no async proxy).
STRATA_DEV void fence_proxy_async() {
#if defined(STRATA_HAS_SM90)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}
// wgmma_fence/commit/wait are no-ops where wgmma does not exist; the MMAs themselves trap there.
STRATA_DEV void wgmma_fence() {
#if defined(STRATA_HAS_WGMMA)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
STRATA_DEV void wgmma_commit() {
#if defined(STRATA_HAS_WGMMA)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
STRATA_DEV void wgmma_wait() {
#if defined(STRATA_HAS_WGMMA)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
#endif
}

// Shared-memory matrix descriptor for a K-major, 128B-swizzled tile whose rows are 128 bytes:
// 8-row core-matrix groups are 1024 bytes apart (SBO); LBO is unused for swizzled K-major
// layouts. Advancing k by 16 bf16 elements = +32 bytes on the address. Tile base 1 KB aligned.
STRATA_HD uint64_t wgmma_desc_sw128(uint32_t saddr) {
  uint64_t d = 0;
  d |= (uint64_t)((saddr & 0x3FFFF) >> 4);      // bits  0-13: start address >> 4
  d |= (uint64_t)1 << 16;                        // bits 16-29: leading byte offset >> 4
  d |= (uint64_t)(1024 >> 4) << 32;              // bits 32-45: stride byte offset >> 4
  d |= (uint64_t)1 << 62;                        // bits 62-63: 1 = SWIZZLE_128B
  return d;
}

// The accumulator operand lists of the wgmma wrappers: "+f"(d[0]), …, "+f"(d[N-1]).
#define STRATA_WGMMA_ACC8(d, i) \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define STRATA_WGMMA_ACC32_AT(d, i) STRATA_WGMMA_ACC8(d, i), STRATA_WGMMA_ACC8(d, i + 8), STRATA_WGMMA_ACC8(d, i + 16), STRATA_WGMMA_ACC8(d, i + 24)
#define STRATA_WGMMA_ACC32(d) STRATA_WGMMA_ACC32_AT(d, 0)
#define STRATA_WGMMA_ACC64(d) STRATA_WGMMA_ACC32_AT(d, 0), STRATA_WGMMA_ACC32_AT(d, 32)
#define STRATA_WGMMA_ACC128(d) STRATA_WGMMA_ACC64(d), STRATA_WGMMA_ACC32_AT(d, 64), STRATA_WGMMA_ACC32_AT(d, 96)

// ---- generated: wgmma m64nNk16 wrappers (N = 64, 128, 256); operand lists are mechanical
// D[64xN] += A(desc) * B(desc)^T, bf16 in, fp32 accumulate (scale-d = 1). kTA / kTB are the
// transpose immediates: 0 = that operand is K-major (the forward GEMM), 1 = MN-major (the backward
// GEMMs of matmul.cuh read gy and x in place).
template <int kTA = 0, int kTB = 0>
STRATA_DEV void wgmma_m64n64k16(float (&d)[32], uint64_t desc_a, uint64_t desc_b) {
#if defined(STRATA_HAS_WGMMA)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, %35, %36;\n}\n"
      : STRATA_WGMMA_ACC32(d)
      : "l"(desc_a), "l"(desc_b), "r"(1), "n"(kTA), "n"(kTB));
#else
  __trap();
#endif
}
template <int kTA = 0, int kTB = 0>
STRATA_DEV void wgmma_m64n128k16(float (&d)[64], uint64_t desc_a, uint64_t desc_b) {
#if defined(STRATA_HAS_WGMMA)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, %67, %68;\n}\n"
      : STRATA_WGMMA_ACC64(d)
      : "l"(desc_a), "l"(desc_b), "r"(1), "n"(kTA), "n"(kTB));
#else
  __trap();
#endif
}

template <int kTA = 0, int kTB = 0>
STRATA_DEV void wgmma_m64n256k16(float (&d)[128], uint64_t desc_a, uint64_t desc_b) {
#if defined(STRATA_HAS_WGMMA)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p, 1, 1, %131, %132;\n}\n"
      : STRATA_WGMMA_ACC128(d)
      : "l"(desc_a), "l"(desc_b), "r"(1), "n"(kTA), "n"(kTB));
#else
  __trap();
#endif
}

// Wgmma<N, kTA, kTB>::mma(d, desc_a, desc_b): the m64nNk16 wrapper for a CTA tile N wide.
template <int N, int kTA = 0, int kTB = 0> struct Wgmma;
template <int kTA, int kTB> struct Wgmma<64, kTA, kTB> {
  STRATA_DEV static void mma(float (&d)[32], uint64_t a, uint64_t b) { wgmma_m64n64k16<kTA, kTB>(d, a, b); }
};
template <int kTA, int kTB> struct Wgmma<128, kTA, kTB> {
  STRATA_DEV static void mma(float (&d)[64], uint64_t a, uint64_t b) { wgmma_m64n128k16<kTA, kTB>(d, a, b); }
};
template <int kTA, int kTB> struct Wgmma<256, kTA, kTB> {
  STRATA_DEV static void mma(float (&d)[128], uint64_t a, uint64_t b) { wgmma_m64n256k16<kTA, kTB>(d, a, b); }
};

// ---- wgmma with a runtime accumulate flag and with A from registers (sm_90a) ------------------
// wgmma_m64nNk16_ss<kTA, kTB>(d, desc_a, desc_b, scale_d): both operands from shared memory;
//   scale_d = 0 writes D = A*B (the first k-step of a fresh product, no zeroing of d needed).
// wgmma_m64nNk16_rs<kTB>(d, a, desc_b, scale_d): A (64x16 bf16) from registers, four b32 per
//   thread in the mma.sync m16k16 A-fragment layout per warp (rows 16*warp + lane/4 (+8), cols
//   2*(lane%4) (+8)) — the layout of an fp32 m64nN accumulator converted pairwise to bf16, so a
//   softmax result feeds the next product without shared memory. No transpose of A exists here.
//   The registers of a must stay unchanged until the wgmma retired (wgmma_wait).
// WgmmaSS<N, kTA, kTB>::mma / WgmmaRS<N, kTB>::mma pick the wrapper by N (64, 128).
// wgmma_reg_fence(d): an empty asm that "touches" each accumulator so the compiler keeps its
//   reads and writes of d on their side of the wgmma fence / wait around it.
template <int kTA = 0, int kTB = 0>
STRATA_DEV void wgmma_m64n64k16_ss(float (&d)[32], uint64_t desc_a, uint64_t desc_b, int scale_d) {
#if defined(STRATA_HAS_WGMMA)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, %35, %36;\n}\n"
      : STRATA_WGMMA_ACC32(d)
      : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(kTA), "n"(kTB));
#else
  __trap();
#endif
}
template <int kTB = 0>
STRATA_DEV void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b, int scale_d) {
#if defined(STRATA_HAS_WGMMA)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
      : STRATA_WGMMA_ACC32(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d), "n"(kTB));
#else
  __trap();
#endif
}
template <int kTA = 0, int kTB = 0>
STRATA_DEV void wgmma_m64n128k16_ss(float (&d)[64], uint64_t desc_a, uint64_t desc_b, int scale_d) {
#if defined(STRATA_HAS_WGMMA)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, %67, %68;\n}\n"
      : STRATA_WGMMA_ACC64(d)
      : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(kTA), "n"(kTB));
#else
  __trap();
#endif
}
template <int kTB = 0>
STRATA_DEV void wgmma_m64n128k16_rs(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b, int scale_d) {
#if defined(STRATA_HAS_WGMMA)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, %70;\n}\n"
      : STRATA_WGMMA_ACC64(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d), "n"(kTB));
#else
  __trap();
#endif
}
template <int N, int kTA = 0, int kTB = 0> struct WgmmaSS;
template <int kTA, int kTB> struct WgmmaSS<64, kTA, kTB> {
  STRATA_DEV static void mma(float (&d)[32], uint64_t a, uint64_t b, int sd) { wgmma_m64n64k16_ss<kTA, kTB>(d, a, b, sd); }
};
template <int kTA, int kTB> struct WgmmaSS<128, kTA, kTB> {
  STRATA_DEV static void mma(float (&d)[64], uint64_t a, uint64_t b, int sd) { wgmma_m64n128k16_ss<kTA, kTB>(d, a, b, sd); }
};
template <int N, int kTB = 0> struct WgmmaRS;
template <int kTB> struct WgmmaRS<64, kTB> {
  STRATA_DEV static void mma(float (&d)[32], const uint32_t (&a)[4], uint64_t b, int sd) { wgmma_m64n64k16_rs<kTB>(d, a, b, sd); }
};
template <int kTB> struct WgmmaRS<128, kTB> {
  STRATA_DEV static void mma(float (&d)[64], const uint32_t (&a)[4], uint64_t b, int sd) { wgmma_m64n128k16_rs<kTB>(d, a, b, sd); }
};
template <int M>
STRATA_DEV void wgmma_reg_fence(float (&d)[M]) {
#pragma unroll
  for (int i = 0; i < M; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Descriptor of an MN-major ("transposed") 128B-swizzled operand stored as [k rows][64 elements]
// panels of 128-byte rows (what a TMA box of 64 columns with SWIZZLE_128B writes): SBO 1024 B
// (next 8 k rows), LBO = lbo_bytes (next panel of 64 elements along M/N); +2048 B per k16 step.
STRATA_HD uint64_t wgmma_desc_sw128_mn(uint32_t saddr, uint32_t lbo_bytes) {
  uint64_t d = 0;
  d |= (uint64_t)((saddr & 0x3FFFF) >> 4);
  d |= (uint64_t)((lbo_bytes >> 4) & 0x3FFF) << 16;
  d |= (uint64_t)(1024 >> 4) << 32;
  d |= (uint64_t)1 << 62;
  return d;
}

// Named barrier over `threads` threads (a multiple of 32) of the CTA; id 0 is __syncthreads's.
STRATA_DEV void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// ---- mbarrier (shared-memory 64-bit barrier objects) ---------------------------------------
// init / arrive / test_wait exist from sm_80; transaction counts (expect_tx, used by TMA and
// cp.async.bulk) and try_wait from sm_90. The sm_90-only ones trap on older architectures.
STRATA_DEV void mbarrier_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}
// Make mbarrier inits visible to the async proxy and other threads (before the first use by TMA).
STRATA_DEV void fence_mbarrier_init() {
#if defined(STRATA_HAS_SM90)
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}
// Arrive once; returns the barrier state token of the phase arrived on.
STRATA_DEV uint64_t mbarrier_arrive(uint64_t* bar) {
  uint64_t state;
  asm volatile("mbarrier.arrive.shared::cta.b64 %0, [%1];\n" : "=l"(state) : "r"(smem_u32(bar)) : "memory");
  return state;
}
// Arrive once and add `bytes` to the transaction count the current phase waits for.
STRATA_DEV void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#if defined(STRATA_HAS_SM90)
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
#else
  __trap();
#endif
}
// Add `bytes` to the expected transaction count without arriving.
STRATA_DEV void mbarrier_expect_tx(uint64_t* bar, uint32_t bytes) {
#if defined(STRATA_HAS_SM90)
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)), "r"(bytes) : "memory");
#else
  __trap();
#endif
}
// True once the phase with parity `phase` (0/1) has completed. try_wait may suspend the thread
// for a hardware time limit before returning false; test_wait (sm_80) returns at once.
STRATA_DEV bool mbarrier_try_wait_parity(uint64_t* bar, uint32_t phase) {
  uint32_t done;
#if defined(STRATA_HAS_SM90)
  asm volatile(
      "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done) : "r"(smem_u32(bar)), "r"(phase) : "memory");
#else
  asm volatile(
      "{\n.reg .pred p;\nmbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done) : "r"(smem_u32(bar)), "r"(phase) : "memory");
#endif
  return done != 0;
}
STRATA_DEV void mbarrier_wait_parity(uint64_t* bar, uint32_t phase) {
  while (!mbarrier_try_wait_parity(bar, phase)) {
  }
}

// ---- register reallocation between warpgroups (sm_90a) -----------------------------------
// setmaxnreg: every warp of a warpgroup executes it (.sync.aligned). dec hands registers back to
// the CTA's pool (a producer warpgroup that only issues TMA), inc waits for them (the consumer
// warpgroups that hold the wgmma accumulators). N: 24..256, a multiple of 8.
template <int N>
STRATA_DEV void setmaxnreg_dec() {
#if defined(STRATA_HAS_WGMMA)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
STRATA_DEV void setmaxnreg_inc() {
#if defined(STRATA_HAS_WGMMA)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// ---- thread-block clusters (sm_90) ---------------------------------------------------------
STRATA_DEV uint32_t cluster_ctarank() {
  uint32_t r = 0;
#if defined(STRATA_HAS_SM90)
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
#endif
  return r;
}
// All threads of all CTAs of the cluster (release/acquire: shared-memory writes and mbarrier
// inits before it are visible cluster-wide after it). Every thread of every warp executes it.
STRATA_DEV void cluster_sync() {
#if defined(STRATA_HAS_SM90)
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#else
  __syncthreads();
#endif
}
// Arrive once on the mbarrier at `bar`'s offset in the shared memory of cluster CTA `cta`.
STRATA_DEV void mbarrier_arrive_cluster(uint64_t* bar, uint32_t cta) {
#if defined(STRATA_HAS_SM90)
  asm volatile(
      "{\n.reg .b32 ra;\nmapa.shared::cluster.u32 ra, %0, %1;\nmbarrier.arrive.release.cluster.shared::cluster.b64 _, [ra];\n}\n"
      ::"r"(smem_u32(bar)), "r"(cta) : "memory");
#else
  __trap();
#endif
}

}  // namespace ptx
}  // namespace strata
