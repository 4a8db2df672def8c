// strata_launch.cuh — the sizes every generated launcher receives, as one struct, so that a new
// size (e.g. the past length of a cached sequence) changes no launcher signature:
//   extern "C" cudaError_t launch_<kernel>(void* const* bufs, const StrataDims* d, cudaStream_t s)
// B: sequences in the batch; T: new tokens per sequence in this call; P: tokens already in the
// caches (0 for a forward or a fresh prefill); S = P + T: the sequence length after the call;
// C: the tokens each sequence's KV cache holds (the state handle's context; 0 without state).
// dev: null, or (a decode step replayed from a CUDA graph) a device array {P, S} that kernels
// which depend on the position read at run time instead of the P and S above.
#pragma once

struct StrataDims {
  int B;
  int T;
  int P;
  int S;
  int C;
  const int* dev;
};
