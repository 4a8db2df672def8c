// strata_common.cuh — the device foundation in one include, for kernels and templates that
// include it by this name (templates/gemm.cu.hbs). The code lives in strata/:
//   strata/base.cuh   qualifiers, architecture switches, ceil_div
//   strata/math.cuh   silu, softplus, sigmoid, gelu, gelu_tanh, relu2, fast_exp, fast_exp2, ...
//   strata/bf16.cuh   to_bf16, pack/unpack_bf16x2, load/store_bf16x2, store_f32x2
//   strata/ptx.cuh    cp.async, ldmatrix, mma.sync, wgmma, mbarrier
// (strata/tma.cuh, the TMA wrappers and the host tensor-map helper, is included on its own: it
// pulls in the driver API header.)
#pragma once

#include "strata/base.cuh"
#include "strata/bf16.cuh"
#include "strata/math.cuh"
#include "strata/ptx.cuh"
