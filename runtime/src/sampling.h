// sampling.h — the GPU sampler (sampling.cu): one token per sequence from bf16 logits.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "program.h"

namespace strata {

// rows sequences, each `vocab` bf16 logits `stride` elements apart → tokens_dev[rows] (device).
// seen: device uint8 [rows, vocab] (tokens seen so far, for the repetition penalty; the chosen
// tokens are marked) or null. `step` picks the Philox subsequence offset: (seed, sequence, step),
// where row r holds sequence seq_of_row[r] (device, `rows` entries; null: r) — generate compacts
// its batch, and a sequence must draw the same numbers in whichever row it sits.
// feed (decode ahead, or null): the kernel also writes each token into feed->tokens_dev and the
// next step's position (set_step's {P, P + 1}, positions[0] = P) — the next step needs no copy
// and no kernel of its own before it. With feed->base_dev (a sampler captured into a multi-step
// decode graph), feed->P and `step` are offsets from base_dev[0] and base_dev[1], and the seed is
// base_dev[2] (AheadFeed).
cudaError_t launch_sample(const void* logits, size_t rows, size_t stride, int vocab, const SamplingParams& p, uint64_t step, uint8_t* seen,
                          int32_t* tokens_dev, cudaStream_t stream, const int32_t* seq_of_row = nullptr, const AheadFeed* feed = nullptr);
// Marks tokens_dev [rows, cols] as seen.
cudaError_t launch_mark_seen(uint8_t* seen, int vocab, const int32_t* tokens_dev, int rows, int cols, cudaStream_t stream);

}  // namespace strata
