// Deterministic weight initialisation (spec: runtime/INIT.md).
//
// Every element is a pure function of (seed, tensor name, element index):
// a counter-based generator (splitmix64 finaliser keyed by seed and an FNV-1a
// hash of the name) means results do not depend on thread count, on the
// order tensors are created, or on what other tensors exist. The TypeScript
// compiler mirrors this algorithm, so keep INIT.md in sync with any change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "init_math.h"  // InitKind, InitSpec and the per-element arithmetic (host and device)
#include "json.h"

namespace strata {

// Parse {"kind": ..., ...} as written in the manifest. `context` (e.g.
// "manifest.json: weight 'layers.0.mixer.A_log'") prefixes error messages.
InitSpec parse_init_spec(const json::Value& v, const std::string& context);
json::Value init_spec_to_json(const InitSpec& s);

// --- the generator, exposed for tests and for cross-checking with TS -------
uint64_t fnv1a64(const std::string& bytes);
uint64_t mix64(uint64_t z);  // splitmix64 finaliser
// Per-tensor key: mix64(seed ^ mix64(fnv1a64(name))).
uint64_t init_stream_key(uint64_t seed, const std::string& name);
// Random word number `counter` of a stream: mix64(key + (counter+1)*0x9E3779B97F4A7C15).
uint64_t init_random_word(uint64_t key, uint64_t counter);
// Uniform double in (0, 1]: ((w >> 11) + 1) * 2^-53.
double init_uniform01(uint64_t word);
// Element `index` of a tensor before rounding to float (init_math::element, with this host's libm).
double init_element(const InitSpec& s, uint64_t key, uint64_t index);

// Fill out[0..n) with the fp32 values of tensor `name`. `threads` only
// changes speed, never values.
void init_tensor(const InitSpec& s, uint64_t seed, const std::string& name, float* out, size_t n,
                 int threads = 1);

}  // namespace strata
