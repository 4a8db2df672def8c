// Host tests of the generic Program executor (runtime/src/program.cpp): a small program whose
// "kernels" are host functions over host memory (HostOps), so the executor's logic — buffer
// resolution, schedules, once-launches, state handles, positions, copies, last-position logits,
// argument checks and error messages — runs without a GPU.
//
// The toy model: logits[b, t, v] = (sum of the sequence's tokens up to t) + v · prep, where
// prep = 2 · weight0 is computed once at load (a parameter-prep launch). The cached schedule
// keeps the running sum in state 0 (read and written in place) and copies the last token of each
// sequence from an arena slot into state 1 (a copy launch), like a conv state. A second toy of
// batch 8 (kTables8) also keeps a KV-like cache that its logits read back, for the tests of
// generate's compaction of stopped sequences (fewer rows per step, same tokens).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <fstream>
#include <functional>
#include <tuple>
#include <random>
#include <string>
#include <vector>

#include "program.h"

using namespace strata;

namespace {

int g_pass = 0, g_fail = 0;
#define EXPECT(cond, ...)                                     \
  do {                                                        \
    if (cond) {                                               \
      ++g_pass;                                               \
    } else {                                                  \
      ++g_fail;                                               \
      std::fprintf(stderr, "FAIL %s:%d: %s — ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                      \
      std::fprintf(stderr, "\n");                             \
    }                                                         \
  } while (0)

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}
float from_bf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

struct HostOps : DeviceOps {
  int allocs = 0, releases = 0;
  std::vector<std::string> launched;
  std::vector<int> kv_rows;  // the B of each k_kv call (eager or replayed)
  void* alloc(size_t bytes, const std::string&) override {
    ++allocs;
    void* p = std::malloc(bytes ? bytes : 1);
    std::memset(p, 0xff, bytes);  // poison: the executor must initialise what it reads
    return p;
  }
  void release(void* p) override {
    if (p) ++releases, std::free(p);
  }
  void h2d(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void d2h(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void d2d(void* d, const void* s, size_t n) override {
    if (capturing) recorded.push_back([d, s, n] { std::memmove(d, s, n); });
    else std::memmove(d, s, n);
  }
  void zero(void* d, size_t n) override { std::memset(d, 0, n); }
  void logits_to_host(float* dst, const void* src, size_t rows, size_t cols, size_t stride) override {
    const uint16_t* s = static_cast<const uint16_t*>(src);
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < cols; ++c) dst[r * cols + c] = from_bf16(s[r * stride + c]);
  }
  // test double: greedy (with the repetition penalty) on the host
  int samples = 0;
  std::vector<int32_t> last;
  // capture emulation: recorded launches and copies, replayed in order
  bool capturing = false, capture_ok = true;
  int captures = 0, replays = 0;
  std::vector<std::function<void()>> recorded;
  struct Graph {
    std::vector<std::function<void()>> steps;
  };
  int launch(LaunchFn fn, void* const* bufs, int count, const StrataDims& d) override {
    if (!capturing) return fn(bufs, &d, this);
    std::vector<void*> b(bufs, bufs + count);
    recorded.push_back([this, fn, b, d] { check_launch(fn(b.data(), &d, this), "replayed kernel"); });
    return 0;
  }
  bool begin_capture() override {
    if (!capture_ok) return false;
    capturing = true;
    recorded.clear();
    return true;
  }
  void* end_capture() override {
    capturing = false;
    ++captures;
    return new Graph{std::move(recorded)};
  }
  void replay(void* g) override {
    ++replays;
    for (auto& f : static_cast<Graph*>(g)->steps) f();
  }
  void destroy_graph(void* g) override { delete static_cast<Graph*>(g); }
  void set_step(int* info, int32_t* positions, int64_t P) override {
    if (capturing) throw Error("set_step while capturing", STRATA_ERR_INTERNAL);
    info[0] = static_cast<int>(P);
    info[1] = static_cast<int>(P + 1);
    positions[0] = static_cast<int32_t>(P);
  }
  void last_sampled_to(void* tokens, size_t rows) override {
    if (capturing) throw Error("last_sampled_to while capturing", STRATA_ERR_INTERNAL);
    std::memcpy(tokens, last.data(), rows * sizeof(int32_t)); }
  // STRATA_PROFILE test double: launch k of a timed run takes (k + 1) ms
  bool profiling = false;
  int marks = 0, profiled_runs = 0;
  bool profile_begin(int) override {
    marks = 0;
    return profiling;
  }
  void profile_mark() override { ++marks; }
  std::vector<float> profile_end() override {
    ++profiled_runs;
    std::vector<float> ms;
    for (int k = 0; k < marks; ++k) ms.push_back(static_cast<float>(k + 1));
    return ms;
  }
  // test double of the GPU sampler: greedy, or (temperature > 0) a draw from softmax(x / T) keyed
  // by (seed, sequence, step) like the Philox stream; the repetition penalty from `seen`
  bool seq_map = true;              // samples_by_sequence(): takes generate's row → sequence map
  std::vector<size_t> sample_sizes; // rows of each sample call
  static uint64_t mix(uint64_t x) {  // splitmix64
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  void draw(const void* logits, size_t rows, size_t vocab, size_t stride, const SamplingParams& p, uint64_t step, uint8_t* seen, const int32_t* seq,
            int32_t* out) {
    ++samples;
    sample_sizes.push_back(rows);
    const uint16_t* l = static_cast<const uint16_t*>(logits);
    std::vector<float> x(vocab);
    for (size_t r = 0; r < rows; ++r) {
      int best = 0;
      float bv = -INFINITY;
      for (size_t v = 0; v < vocab; ++v) {
        x[v] = from_bf16(l[r * stride + v]);
        if (seen && p.repetition_penalty != 1.f && seen[r * vocab + v]) x[v] = x[v] > 0 ? x[v] / p.repetition_penalty : x[v] * p.repetition_penalty;
        if (x[v] > bv) bv = x[v], best = static_cast<int>(v);
      }
      if (p.temperature > 0.f) {
        const uint64_t sq = seq ? static_cast<uint64_t>(seq[r]) : r;
        const double u = 1.0 - (mix(p.seed ^ mix(sq ^ mix(step))) >> 11) * 0x1p-53;  // (0, 1]
        double z = 0;
        for (size_t v = 0; v < vocab; ++v) z += std::exp((x[v] - bv) / p.temperature);
        double acc = 0;
        for (size_t v = 0; v < vocab; ++v) {
          acc += std::exp((x[v] - bv) / p.temperature);
          if (acc >= u * z) {
            best = static_cast<int>(v);
            break;
          }
        }
      }
      out[r] = best;
      if (seen) seen[r * vocab + best] = 1;
    }
    last.assign(out, out + rows);
  }
  void sample(const void* logits, size_t rows, size_t vocab, size_t stride, const SamplingParams& p, uint64_t step, uint8_t* seen,
              int32_t* out) override {
    draw(logits, rows, vocab, stride, p, step, seen, nullptr, out);
  }
  bool samples_by_sequence() const override { return seq_map; }
  void sample_rows(const void* logits, size_t rows, size_t vocab, size_t stride, const SamplingParams& p, uint64_t step, uint8_t* seen,
                   const int32_t* seq, int32_t* out) override {
    draw(logits, rows, vocab, stride, p, step, seen, seq_map ? seq : nullptr, out);  // without the map: the row index, like the default
  }
  // decode ahead: the same draws into a host "device" ring
  bool ahead_ok = true;
  int ahead_samples = 0, ahead_fetches = 0;
  std::vector<int32_t> ring;
  bool can_decode_ahead() const override { return ahead_ok; }
  bool ahead_feeds = true;  // false: the executor copies the tokens and sets the step itself
  int fed_steps = 0;
  // Multi-step graphs: a sampler captured into a graph is recorded with its arguments as they
  // were at the capture (the ring slot's address, step, AheadFeed by value) and replayed with
  // exactly those, as a CUDA graph's kernel node would be; only memory is read at replay time.
  bool step_graphs_ok = true;  // ahead_ring: false = no multi-step graphs on this device
  bool frozen_sampler = false; // test of the test: a sampler that ignores base_dev (its captured values are absolute)
  int ring_grows = 0, step_bases = 0, captured_samples = 0;
  void grow_ring(size_t need) {  // a new allocation (the old one freed), as the CUDA ops do: the address changes
    std::vector<int32_t> bigger(need, -7);
    ring.swap(bigger);
    ++ring_grows;
  }
  void ahead_body(const void* logits, size_t rows, size_t vocab, size_t stride, SamplingParams p, uint64_t step, uint8_t* seen, int32_t* out,
                  bool feed, AheadFeed next) {
    ++ahead_samples;
    if (next.base_dev && !frozen_sampler) {  // like the kernel: offsets from the device base
      next.P += next.base_dev[0];
      step += static_cast<uint64_t>(next.base_dev[1]);
      p.seed = static_cast<uint64_t>(next.base_dev[2]);
    }
    draw(logits, rows, vocab, stride, p, step, seen, nullptr, out);
    if (!feed) return;
    ++fed_steps;
    std::memcpy(next.tokens_dev, out, rows * sizeof(int32_t));
    set_step(next.info_dev, next.positions_dev, next.P);
  }
  bool sample_ahead(const void* logits, size_t rows, size_t vocab, size_t stride, const SamplingParams& p, uint64_t step, uint8_t* seen, int slot,
                    int slots, const AheadFeed* next) override {
    const size_t need = static_cast<size_t>(slots) * rows;
    if (need > ring.size()) {
      if (capturing) throw Error("the ahead ring grows while capturing", STRATA_ERR_INTERNAL);  // the CUDA ops would wait: not capturable
      grow_ring(need);
    }
    int32_t* out = ring.data() + static_cast<size_t>(slot) * rows;
    const bool feed = ahead_feeds && next;
    const AheadFeed nx = next ? *next : AheadFeed{};
    if (capturing) {
      ++captured_samples;
      recorded.push_back([=] { ahead_body(logits, rows, vocab, stride, p, step, seen, out, feed, nx); });
    } else {
      ahead_body(logits, rows, vocab, stride, p, step, seen, out, feed, nx);
    }
    return feed;
  }
  const void* ahead_ring(size_t rows, int slots) override {
    if (!step_graphs_ok) return nullptr;
    if (capturing) throw Error("ahead_ring while capturing", STRATA_ERR_INTERNAL);
    const size_t need = static_cast<size_t>(slots) * rows;
    if (need > ring.size()) grow_ring(need);
    return ring.data();
  }
  void set_step_base(int* info, int32_t* positions, int64_t* base, int64_t P, uint64_t step, uint64_t seed) override {
    if (capturing) throw Error("set_step_base while capturing", STRATA_ERR_INTERNAL);
    ++step_bases;
    set_step(info, positions, P);
    base[0] = P;
    base[1] = static_cast<int64_t>(step);
    base[2] = static_cast<int64_t>(seed);
  }
  void ahead_to_tokens(void* tokens, size_t rows, int slot) override {
    if (capturing) throw Error("ahead_to_tokens while capturing", STRATA_ERR_INTERNAL);
    std::memcpy(tokens, ring.data() + static_cast<size_t>(slot) * rows, rows * sizeof(int32_t));
  }
  void fetch_ahead(int32_t* host, size_t rows, int count) override {
    ++ahead_fetches;
    std::memcpy(host, ring.data(), static_cast<size_t>(count) * rows * sizeof(int32_t));
  }
  void mark_seen(uint8_t* seen, size_t vocab, const void* tokens, int rows, int cols) override {
    const int32_t* t = static_cast<const int32_t*>(tokens);
    for (int i = 0; i < rows * cols; ++i) seen[static_cast<size_t>(i / cols) * vocab + t[i]] = 1;
  }
  void sync() override {}
  void* stream() override { return this; }
  void check_launch(int code, const std::string& what) override {
    if (code != 0) throw Error(what + ": launcher returned " + std::to_string(code), STRATA_ERR_CUDA);
  }
};

constexpr int V = 5, MAXB = 3, MAXT = 8, MAXCTX = 20;
int g_fail_kernel = 0;  // makes k_logits return an error code when set

// once: prep[0] = 2 · weight0[0]
int k_prep(void* const* b, const StrataDims*, void* s) {
  static_cast<HostOps*>(s)->launched.push_back("prep");
  static_cast<float*>(b[1])[0] = 2.f * static_cast<const float*>(b[0])[0];
  return 0;
}
// forward: logits = cumsum(tokens) + v·prep   (bufs: tokens, prep, logits)
int k_forward(void* const* b, const StrataDims* d, void* s) {
  static_cast<HostOps*>(s)->launched.push_back("forward");
  if (g_fail_kernel) return 77;
  const int32_t* tok = static_cast<const int32_t*>(b[0]);
  const float prep = static_cast<const float*>(b[1])[0];
  uint16_t* out = static_cast<uint16_t*>(b[2]);
  for (int i = 0; i < d->B; ++i) {
    float sum = 0;
    for (int t = 0; t < d->T; ++t) {
      sum += tok[i * d->T + t];
      for (int v = 0; v < V; ++v) out[(static_cast<size_t>(i) * d->T + t) * V + v] = to_bf16(sum + v * prep);
    }
  }
  return 0;
}
// cached: the same from state 0 (running sum, in place); last token → arena slot; checks positions
// (bufs: tokens, positions, prep, state0, logits, lastTokenSlot)
int k_cached(void* const* b, const StrataDims* d, void* s) {
  static_cast<HostOps*>(s)->launched.push_back("cached");
  const int32_t* tok = static_cast<const int32_t*>(b[0]);
  const int32_t* pos = static_cast<const int32_t*>(b[1]);
  const float prep = static_cast<const float*>(b[2])[0];
  float* sums = static_cast<float*>(b[3]);
  uint16_t* out = static_cast<uint16_t*>(b[4]);
  float* last = static_cast<float*>(b[5]);
  // a replayed decode step reads the position from the device, like the real kernels
  const int P = d->dev ? d->dev[0] : d->P, S = d->dev ? d->dev[1] : d->S;
  if (S != P + d->T) return 11;
  for (int t = 0; t < d->T; ++t)
    if (pos[t] != P + t) return 12;
  for (int i = 0; i < d->B; ++i) {
    float sum = sums[i];
    for (int t = 0; t < d->T; ++t) {
      sum += tok[i * d->T + t];
      for (int v = 0; v < V; ++v) out[(static_cast<size_t>(i) * d->T + t) * V + v] = to_bf16(sum + v * prep);
    }
    sums[i] = sum;
    last[i] = static_cast<float>(tok[i * d->T + d->T - 1]);
  }
  return 0;
}

const KernelEntry kKernels[] = {{"prep", k_prep}, {"forward", k_forward}, {"cached", k_cached}};
// arena: logits at 0 (MAXB·MAXT·V bf16 = 240 bytes → 256), last-token slot at 256
const BufRef kBufs[] = {
    {kWeight, 0}, {kPrep, 0},                                                   // 0-1 prep (forward)
    {kTokens, 0}, {kPrep, 0}, {kArena, 0},                                      // 2-4 forward
    {kWeight, 0}, {kPrep, 0},                                                   // 5-6 prep (cached)
    {kTokens, 0}, {kPositions, 0}, {kPrep, 0}, {kState, 0}, {kArena, 0}, {kArena, 256},  // 7-12 cached
    {kArena, 256}, {kState, 1},                                                 // 13-14 copy
};
const LaunchEntry kLaunches[] = {
    {kLaunchKernel, 0, "prep", "layers.0", 0, 2, true, 0},
    {kLaunchKernel, 1, "forward", "model", 2, 3, false, 0},
    {kLaunchKernel, 0, "prep", "layers.0", 5, 2, true, 0},
    {kLaunchKernel, 2, "cached", "model", 7, 6, false, 0},
    {kLaunchCopy, -1, "copy", "layers.0", 13, 2, false, sizeof(float)},
};
// two fixed-size states and a KV-like one that grows with the handle's context
const StateEntry kStates[] = {{"sum", sizeof(float), 0}, {"last", sizeof(float), 0}, {"cache", 0, 64}};
const ScheduleEntry kSchedules[] = {{"forward", 512, 0, 0, 2}, {"cached", 512, 0, 2, 3}};
const ProgramTables kTables{"toy", kKernels, 3, kBufs, kLaunches, kStates, 3, kSchedules, 2, MAXB, MAXT, MAXCTX, 4, MAXB * MAXT, nullptr, 0};

// A batch of 8 for the compaction tests, with a KV-like state that the logits read back: k_kv
// appends each token to its sequence's cache rows (state 2, token-major, 16 floats a row, d->C
// rows per sequence), and the logits at t are the sum of the cache rows 0..P+t (an attention-like
// read of the whole prefix) + v · prep; the running sum (state 0) must agree, else error 13.
// (bufs: tokens, positions, prep, state0, state2, logits, lastTokenSlot)
constexpr int B8 = 8, CTX8 = 40;
int k_kv(void* const* b, const StrataDims* d, void* s) {
  HostOps* o = static_cast<HostOps*>(s);
  o->launched.push_back("kv");
  o->kv_rows.push_back(d->B);
  const int32_t* tok = static_cast<const int32_t*>(b[0]);
  const int32_t* pos = static_cast<const int32_t*>(b[1]);
  const float prep = static_cast<const float*>(b[2])[0];
  float* sums = static_cast<float*>(b[3]);
  float* cache = static_cast<float*>(b[4]);
  uint16_t* out = static_cast<uint16_t*>(b[5]);
  float* last = static_cast<float*>(b[6]);
  const int P = d->dev ? d->dev[0] : d->P, S = d->dev ? d->dev[1] : d->S;
  if (S != P + d->T || S > d->C) return 11;
  for (int t = 0; t < d->T; ++t)
    if (pos[t] != P + t) return 12;
  for (int i = 0; i < d->B; ++i) {
    float* rows = cache + static_cast<size_t>(i) * d->C * 16;
    for (int t = 0; t < d->T; ++t) {
      rows[static_cast<size_t>(P + t) * 16] = static_cast<float>(tok[i * d->T + t]);
      float kv = 0;
      for (int j = 0; j <= P + t; ++j) kv += rows[static_cast<size_t>(j) * 16];
      sums[i] += tok[i * d->T + t];
      if (kv != sums[i]) return 13;
      for (int v = 0; v < V; ++v) out[(static_cast<size_t>(i) * d->T + t) * V + v] = to_bf16(kv + v * prep);
    }
    last[i] = static_cast<float>(tok[i * d->T + d->T - 1]);
  }
  return 0;
}
const KernelEntry kKernels8[] = {{"prep", k_prep}, {"forward", k_forward}, {"kv", k_kv}};
// arena: logits at 0 (B8·MAXT·V bf16 = 640 bytes), last-token slot at 1024
const BufRef kBufs8[] = {
    {kWeight, 0}, {kPrep, 0},                                                                  // 0-1 prep (forward)
    {kTokens, 0}, {kPrep, 0}, {kArena, 0},                                                     // 2-4 forward
    {kWeight, 0}, {kPrep, 0},                                                                  // 5-6 prep (cached)
    {kTokens, 0}, {kPositions, 0}, {kPrep, 0}, {kState, 0}, {kState, 2}, {kArena, 0}, {kArena, 1024},  // 7-13 cached
    {kArena, 1024}, {kState, 1},                                                               // 14-15 copy
};
const LaunchEntry kLaunches8[] = {
    {kLaunchKernel, 0, "prep", "layers.0", 0, 2, true, 0},
    {kLaunchKernel, 1, "forward", "model", 2, 3, false, 0},
    {kLaunchKernel, 0, "prep", "layers.0", 5, 2, true, 0},
    {kLaunchKernel, 2, "kv", "model", 7, 7, false, 0},
    {kLaunchCopy, -1, "copy", "layers.0", 14, 2, false, sizeof(float)},
};
const ScheduleEntry kSchedules8[] = {{"forward", 2048, 0, 0, 2}, {"cached", 2048, 0, 2, 3}};
const ProgramTables kTables8{"toy8", kKernels8, 3, kBufs8, kLaunches8, kStates, 3, kSchedules8, 2, B8, MAXT, CTX8, 4, B8 * MAXT, nullptr, 0};

// With a train schedule: loss (at arena 256) = Σ w·(tokens + targets), the gradient of weight 0
// (at arena 0, where the forward's logits go too: the entries share the arena) = 1 + Σ tokens.
// (bufs: tokens, targets, loss weights, loss, gradient)
int k_train(void* const* b, const StrataDims* d, void* s) {
  static_cast<HostOps*>(s)->launched.push_back("train");
  const int32_t* tok = static_cast<const int32_t*>(b[0]);
  const int32_t* tg = static_cast<const int32_t*>(b[1]);
  const float* w = static_cast<const float*>(b[2]);
  float loss = 0, sum = 0;
  for (int i = 0; i < d->B * d->T; ++i) loss += w[i] * static_cast<float>(tok[i] + tg[i]), sum += static_cast<float>(tok[i]);
  static_cast<float*>(b[3])[0] = loss;
  static_cast<float*>(b[4])[0] = 1.f + sum;
  return 0;
}
const KernelEntry kKernelsT[] = {{"prep", k_prep}, {"forward", k_forward}, {"cached", k_cached}, {"train", k_train}};
const BufRef kBufsT[] = {
    {kWeight, 0}, {kPrep, 0},                                                   // 0-1 prep (forward)
    {kTokens, 0}, {kPrep, 0}, {kArena, 0},                                      // 2-4 forward
    {kWeight, 0}, {kPrep, 0},                                                   // 5-6 prep (cached)
    {kTokens, 0}, {kPositions, 0}, {kPrep, 0}, {kState, 0}, {kArena, 0}, {kArena, 256},  // 7-12 cached
    {kArena, 256}, {kState, 1},                                                 // 13-14 copy
    {kTokens, 0}, {kTargets, 0}, {kLossWeights, 0}, {kArena, 256}, {kArena, 0}, // 15-19 train
};
const LaunchEntry kLaunchesT[] = {
    {kLaunchKernel, 0, "prep", "layers.0", 0, 2, true, 0},
    {kLaunchKernel, 1, "forward", "model", 2, 3, false, 0},
    {kLaunchKernel, 0, "prep", "layers.0", 5, 2, true, 0},
    {kLaunchKernel, 2, "cached", "model", 7, 6, false, 0},
    {kLaunchCopy, -1, "copy", "layers.0", 13, 2, false, sizeof(float)},
    {kLaunchKernel, 3, "train", "model", 15, 5, false, 0},
};
const ScheduleEntry kSchedulesT[] = {{"forward", 512, 0, 0, 2}, {"cached", 512, 0, 2, 3}, {"train", 512, 256, 5, 1}};
const GradEntry kGradsT[] = {{0, 0}};
const ProgramTables kTablesT{"toytrain", kKernelsT, 4, kBufsT, kLaunchesT, kStates, 3, kSchedulesT, 3, MAXB, MAXT, MAXCTX, 4, MAXB * MAXT, kGradsT, 1};

struct Fixture {
  HostOps* ops;
  std::unique_ptr<ProgramExecutor> x;
  float w0;
  explicit Fixture(float w, const ProgramTables& t = kTables) : w0(w) {
    std::unique_ptr<HostOps> o(new HostOps());
    ops = o.get();
    x.reset(new ProgramExecutor(t, std::move(o), V, {sizeof(float)}));
    x->upload_weight(0, &w0, sizeof(float));
    x->weights_ready();
  }
};

// expected logits of positions [from, to) of a sequence
std::vector<float> expected(const std::vector<int32_t>& seq, int from, int to, float prep) {
  std::vector<float> e;
  float sum = 0;
  for (int t = 0; t < to; ++t) {
    sum += seq[t];
    if (t >= from)
      for (int v = 0; v < V; ++v) e.push_back(from_bf16(to_bf16(sum + v * prep)));
  }
  return e;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

int main() {
  std::mt19937 rng(std::random_device{}());
  const unsigned seed = rng();
  std::printf("seed %u\n", seed);
  rng.seed(seed);
  std::uniform_int_distribution<int> tok(0, 9);
  const float w0 = 0.25f * (1 + rng() % 7);
  Fixture f(w0);
  const float prep = 2 * w0;
  EXPECT(f.ops->launched.size() == 2 && f.ops->launched[0] == "prep" && f.ops->launched[1] == "prep", "weights_ready runs each schedule's once-launches (%zu)", f.ops->launched.size());

  // forward
  const int B = 2, T = 7;
  std::vector<int32_t> toks(B * 16);
  for (auto& t : toks) t = tok(rng);
  auto seq = [&](int b) { return std::vector<int32_t>(toks.begin() + b * 16, toks.begin() + b * 16 + 16); };
  {
    std::vector<int32_t> in(B * T);
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t) in[b * T + t] = toks[b * 16 + t];
    std::vector<float> out(B * T * V, NAN);
    f.ops->launched.clear();
    f.x->forward(in.data(), B, T, out.data());
    EXPECT(f.ops->launched.size() == 1 && f.ops->launched[0] == "forward", "forward runs no once-launch");
    for (int b = 0; b < B; ++b) {
      auto e = expected(seq(b), 0, T, prep);
      EXPECT(std::equal(e.begin(), e.end(), out.begin() + b * T * V), "forward logits of sequence %d", b);
    }
  }
  // prefill n, then steps: the same logits as a whole-sequence forward
  {
    auto st = f.x->create_state(B);
    const int n = 5;
    std::vector<int32_t> in(B * n);
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < n; ++t) in[b * n + t] = toks[b * 16 + t];
    std::vector<float> out(B * n * V, NAN);
    f.x->prefill(*st, in.data(), n, false, false, out.data());
    for (int b = 0; b < B; ++b) {
      auto e = expected(seq(b), 0, n, prep);
      EXPECT(std::equal(e.begin(), e.end(), out.begin() + b * n * V), "prefill logits of sequence %d", b);
    }
    EXPECT(st->position == n, "position after prefill %lld", (long long)st->position);
    for (int t = n; t < 16; ++t) {
      int32_t step_in[B] = {toks[t], toks[16 + t]};
      std::vector<float> o(B * V, NAN);
      f.x->step(*st, step_in, o.data());
      for (int b = 0; b < B; ++b) {
        auto e = expected(seq(b), t, t + 1, prep);
        EXPECT(std::equal(e.begin(), e.end(), o.begin() + b * V), "step %d logits of sequence %d", t, b);
      }
      // the copy launch put each sequence's last token into state 1
      float last[B];
      std::memcpy(last, st->buffers[1], sizeof last);
      EXPECT(last[0] == toks[t] && last[1] == toks[16 + t], "state copied back after step %d", t);
    }
    EXPECT(st->position == 16, "position after steps %lld", (long long)st->position);

    // chunked prefill (continue, last logits only) equals the whole prompt
    auto st2 = f.x->create_state(B);
    const int n1 = 3, n2 = 6;
    std::vector<int32_t> a(B * n1), c(B * n2);
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < n1; ++t) a[b * n1 + t] = toks[b * 16 + t];
      for (int t = 0; t < n2; ++t) c[b * n2 + t] = toks[b * 16 + n1 + t];
    }
    std::vector<float> o1(B * n1 * V), o2(B * V, NAN);
    f.x->prefill(*st2, a.data(), n1, false, false, o1.data());
    f.x->prefill(*st2, c.data(), n2, true, true, o2.data());
    for (int b = 0; b < B; ++b) {
      auto e = expected(seq(b), n1 + n2 - 1, n1 + n2, prep);
      EXPECT(std::equal(e.begin(), e.end(), o2.begin() + b * V), "chunked prefill, last logits of sequence %d", b);
    }
    // a prefill without continue starts over: the running sum is reset
    f.x->prefill(*st2, a.data(), n1, false, false, o1.data());
    for (int b = 0; b < B; ++b) {
      auto e = expected(seq(b), 0, n1, prep);
      EXPECT(std::equal(e.begin(), e.end(), o1.begin() + b * n1 * V), "prefill after use resets sequence %d", b);
    }
    EXPECT(st2->position == n1, "position after a reset prefill %lld", (long long)st2->position);
  }
  // argument and state errors, with what was wrong and what is valid
  {
    auto st = f.x->create_state(1);
    int32_t one[1] = {1};
    float o[V * MAXT];
    std::string e = error_of([&] { f.x->step(*st, one, o); });
    EXPECT(e.find("prefill a prompt first") != std::string::npos, "step on an empty state: %s", e.c_str());
    e = error_of([&] { f.x->create_state(MAXB + 1); });
    EXPECT(e.find("1..3") != std::string::npos, "batch out of range: %s", e.c_str());
    std::vector<int32_t> many(MAXT + 1, 1);
    e = error_of([&] { f.x->prefill(*st, many.data(), MAXT + 1, false, false, o); });
    EXPECT(e.find("1..8 per sequence per call") != std::string::npos, "prefill longer than max_seq: %s", e.c_str());
    // fill the context, then one more token is refused
    std::vector<float> big(MAXT * V);
    f.x->prefill(*st, many.data(), MAXT, false, false, big.data());
    f.x->prefill(*st, many.data(), MAXT, true, false, big.data());
    e = error_of([&] { f.x->prefill(*st, many.data(), MAXT, true, false, big.data()); });
    EXPECT(e.find("exceed the state's context of 20") != std::string::npos, "prefill past the context: %s", e.c_str());
    for (int i = 0; i < MAXCTX - 2 * MAXT; ++i) f.x->step(*st, one, o);
    e = error_of([&] { f.x->step(*st, one, o); });
    EXPECT(e.find("already hold 20 tokens") != std::string::npos, "step past the context: %s", e.c_str());
    g_fail_kernel = 1;
    e = error_of([&] { f.x->forward(one, 1, 1, o); });
    g_fail_kernel = 0;
    EXPECT(e.find("kernel forward (model): launcher returned 77") != std::string::npos, "a failing launcher is named: %s", e.c_str());
    e = error_of([&] { f.x->forward(one, 1, MAXT + 1, o); });
    EXPECT(e.find("outside the compiled") != std::string::npos, "forward too long: %s", e.c_str());
  }
  // generate: chunked prompt, greedy tokens, stop tokens, max_new, callback, context check
  {
    auto st = f.x->create_state(2);
    const int L = 12;  // longer than max_seq (8): two prefill chunks
    std::vector<int32_t> prompt(2 * L);
    for (auto& t : prompt) t = static_cast<int32_t>(rng() % V);  // ids inside the toy's vocabulary
    const int N = 5;
    std::vector<int32_t> out(2 * N, 99), len(2, 0);
    GenerateStats gs;
    int calls = 0;
    SamplingParams greedy;
    f.ops->samples = 0;
    f.x->generate(*st, prompt.data(), L, N, false, greedy, {}, out.data(), len.data(), [&](int, const int32_t*, const uint8_t*) { return ++calls, true; }, &gs);
    // the toy's logits grow with v (prep > 0): greedy picks V − 1 every time
    bool all = true;
    for (int v : out) all &= v == V - 1;
    EXPECT(all && len[0] == N && len[1] == N, "greedy tokens (%d %d …), lengths %d %d", out[0], out[1], len[0], len[1]);
    EXPECT(calls == N && gs.steps == N - 1 && gs.new_tokens == 2 * N && gs.prompt_tokens == L, "callback %d, steps %d, new %lld", calls, gs.steps,
           (long long)gs.new_tokens);
    EXPECT(st->position == L + N - 1, "position after generate %lld", (long long)st->position);
    EXPECT(f.ops->samples == N, "one device sample per token (%d)", f.ops->samples);
    // the decode steps after the first are replays of one captured step
    EXPECT(f.ops->captures == 1 && f.ops->replays == N - 2, "graphs: %d captures, %d replays", f.ops->captures, f.ops->replays);
    // a stop token ends a sequence at once (and is part of its output)
    std::fill(out.begin(), out.end(), 99);
    f.x->generate(*st, prompt.data(), L, N, false, greedy, {V - 1}, out.data(), len.data(), nullptr, nullptr);
    EXPECT(len[0] == 1 && len[1] == 1 && out[0] == V - 1 && out[1] == -1 && out[N] == V - 1, "stop token: lengths %d %d, out %d %d", len[0], len[1], out[0],
           out[1]);
    // the callback can stop generation
    f.x->generate(*st, prompt.data(), L, N, false, greedy, {}, out.data(), len.data(), [&](int i, const int32_t*, const uint8_t*) { return i < 2; }, nullptr);
    EXPECT(len[0] == 3 && out[3] == -1, "callback stop after 3 tokens: %d", len[0]);
    // the repetition penalty pushes greedy off the tokens the sequence holds (a prompt of 0s, then 4, 3, 2)
    SamplingParams rep;
    rep.repetition_penalty = 1e6f;
    std::vector<int32_t> zeros(2 * L, 0);
    f.x->generate(*st, zeros.data(), L, 3, false, rep, {}, out.data(), len.data(), nullptr, nullptr);
    EXPECT(out[0] == V - 1 && out[1] == V - 2 && out[2] == V - 3, "repetition penalty: %d %d %d", out[0], out[1], out[2]);
    std::string e = error_of([&] { f.x->generate(*st, prompt.data(), L, MAXCTX, false, greedy, {}, out.data(), len.data(), nullptr, nullptr); });
    EXPECT(e.find("exceed the state's context of 20") != std::string::npos, "generate past the context: %s", e.c_str());
    // continue: a second turn after the first one's position (the running sum carries on)
    f.x->generate(*st, prompt.data(), L, 2, false, greedy, {}, out.data(), len.data(), nullptr, nullptr);
    const int64_t pos1 = st->position;
    float before[2];
    std::memcpy(before, st->buffers[0], sizeof before);
    std::vector<int32_t> turn(2 * 3, 2);
    f.x->generate(*st, turn.data(), 3, 2, true, greedy, {}, out.data(), len.data(), nullptr, nullptr);
    float after[2];
    std::memcpy(after, st->buffers[0], sizeof after);
    EXPECT(st->position == pos1 + 3 + 1 && after[0] == before[0] + 6 + out[0], "continue: position %lld (from %lld), sum %g → %g", (long long)st->position,
           (long long)pos1, before[0], after[0]);
    SamplingParams bad;
    bad.top_p = 0.f;
    e = error_of([&] { f.x->generate(*st, prompt.data(), L, 2, false, bad, {}, out.data(), len.data(), nullptr, nullptr); });
    EXPECT(e.find("top_p in (0, 1]") != std::string::npos, "bad sampling: %s", e.c_str());
  }
  // a token budget below batch × seqlen: calls are checked against it, generate chunks by it
  {
    ProgramTables small = kTables;
    small.max_tokens = 10;
    std::unique_ptr<HostOps> o(new HostOps());
    HostOps* ops = o.get();
    ProgramExecutor x(small, std::move(o), V, {sizeof(float)});
    float w = 0.5f;
    x.upload_weight(0, &w, sizeof w);
    x.weights_ready();
    std::vector<int32_t> in(16, 1);
    std::vector<float> lo(16 * V);
    std::string e = error_of([&] { x.forward(in.data(), 2, 7, lo.data()); });
    EXPECT(e.find("at most 10 tokens per call") != std::string::npos, "forward over the token budget: %s", e.c_str());
    auto st = x.create_state(2);
    e = error_of([&] { x.prefill(*st, in.data(), 6, false, false, lo.data()); });
    EXPECT(e.find("1..5 per sequence per call") != std::string::npos, "prefill over the token budget: %s", e.c_str());
    std::vector<int32_t> prompt(2 * 12);
    for (auto& t : prompt) t = static_cast<int32_t>(rng() % V);
    std::vector<int32_t> out(2 * 3), len(2);
    ops->launched.clear();
    x.generate(*st, prompt.data(), 12, 3, false, SamplingParams{}, {}, out.data(), len.data(), nullptr, nullptr);
    int cached = 0;
    for (auto& l : ops->launched) cached += l == "cached";
    EXPECT(cached == 3 + 2, "a 12-token prompt for 2 sequences in chunks of 5 (3 calls) + 2 steps: %d", cached);
    EXPECT(st->position == 14, "position %lld", (long long)st->position);
    float sums[2];
    std::memcpy(sums, st->buffers[0], sizeof sums);
    float want0 = 0;
    for (int t = 0; t < 12; ++t) want0 += prompt[t];
    EXPECT(sums[0] == want0 + out[0] + out[1], "the chunks and steps saw every token (%g vs %g)", sums[0], want0 + out[0] + out[1]);
  }
  // the same generation with graphs off (eager steps) gives the same tokens and state
  {
    auto run_gen = [&](bool graphs, bool capture_ok) {
      Fixture g(w0);
      g.x->set_graphs(graphs);
      g.ops->capture_ok = capture_ok;
      auto st = g.x->create_state(2);
      std::mt19937 r2(seed);
      std::vector<int32_t> prompt(2 * 9);
      for (auto& t : prompt) t = static_cast<int32_t>(r2() % V);
      std::vector<int32_t> out(2 * 6), len(2);
      SamplingParams rep;
      rep.repetition_penalty = 3.f;  // varying tokens, so a stale replay would show
      g.x->generate(*st, prompt.data(), 9, 6, false, rep, {}, out.data(), len.data(), nullptr, nullptr);
      float sums[2];
      std::memcpy(sums, st->buffers[0], sizeof sums);
      return std::make_tuple(out, sums[0], sums[1], g.ops->replays, st->position);
    };
    auto a = run_gen(true, true), b = run_gen(false, true), c = run_gen(true, false);
    EXPECT(std::get<0>(a) == std::get<0>(b) && std::get<1>(a) == std::get<1>(b) && std::get<2>(a) == std::get<2>(b) && std::get<4>(a) == std::get<4>(b),
           "graph replays = eager steps (tokens, state, position)");
    EXPECT(std::get<3>(a) == 4 && std::get<3>(b) == 0, "replays with graphs %d, without %d", std::get<3>(a), std::get<3>(b));
    EXPECT(std::get<0>(c) == std::get<0>(b) && std::get<3>(c) == 0, "no capture support: eager, same tokens");
  }
  // batched generation with per-sequence lengths: stopped sequences are compacted out of the batch
  {
    // the repetition penalty makes greedy walk down the tokens a prompt lacks (4, 3, 2, 1, then
    // 4 forever); with stop token 1, each prompt's seen set fixes when its sequence stops
    constexpr int L8 = 4;
    const std::vector<int32_t> prompts8 = {
        0, 0, 0, 0,  // 4 3 2 1: stops at step 3
        0, 4, 3, 2,  // 1: step 0
        0, 4, 3, 0,  // 2 1: step 1
        0, 1, 0, 0,  // never (1 seen): runs to max_new
        0, 4, 0, 0,  // 3 2 1: step 2
        1, 0, 0, 0,  // never
        2, 3, 4, 0,  // 1: step 0
        0, 0, 0, 0,  // step 3
    };
    const int want_len[B8] = {4, 1, 2, 10, 3, 10, 1, 4};
    SamplingParams walk;
    walk.repetition_penalty = 1e6f;
    struct Run {
      std::vector<int32_t> out, len;
      GenerateStats gs;
      std::vector<std::vector<int32_t>> cb_tokens;
      std::vector<std::vector<uint8_t>> cb_done;
      std::vector<int> kv_rows;
      std::vector<float> sums, lasts, cache;  // the state after generate
      int captures = 0, replays = 0;
      int64_t position = 0;
    };
    auto gen8 = [&](Fixture& g, SessionState& st, int batch, const int32_t* prompt, int max_new, const SamplingParams& p, const std::vector<int32_t>& stop,
                    bool cont = false, int len = 4) {
      Run r;
      r.out.assign(static_cast<size_t>(batch) * max_new, 99);
      r.len.assign(batch, 0);
      g.ops->kv_rows.clear();
      g.x->generate(st, prompt, len, max_new, cont, p, stop, r.out.data(), r.len.data(),
                    [&](int, const int32_t* t, const uint8_t* d) {
                      r.cb_tokens.emplace_back(t, t + batch);
                      r.cb_done.emplace_back(d, d + batch);
                      return true;
                    },
                    &r.gs);
      r.kv_rows = g.ops->kv_rows;
      const float* f0 = static_cast<const float*>(st.buffers[0]);
      const float* f1 = static_cast<const float*>(st.buffers[1]);
      r.sums.assign(f0, f0 + batch);
      r.lasts.assign(f1, f1 + batch);
      // the rows each sequence holds (token-major, 16 floats a row); rows past the position are never read
      const float* c = static_cast<const float*>(st.buffers[2]);
      for (int b = 0; b < batch; ++b)
        for (int64_t j = 0; j < st.position; ++j) r.cache.push_back(c[(static_cast<size_t>(b) * st.capacity + j) * 16]);
      r.captures = g.ops->captures;
      r.replays = g.ops->replays;
      r.position = st.position;
      return r;
    };
    const float w8 = 0.5f;  // prep 1
    Fixture fc(w8, kTables8), fu(w8, kTables8), fe(w8, kTables8);
    fu.x->set_compaction(false);
    fe.x->set_graphs(false);
    auto sc = fc.x->create_state(B8), su = fu.x->create_state(B8), se = fe.x->create_state(B8);
    const int N8 = 10;
    Run c = gen8(fc, *sc, B8, prompts8.data(), N8, walk, {1});
    Run u = gen8(fu, *su, B8, prompts8.data(), N8, walk, {1});
    Run e = gen8(fe, *se, B8, prompts8.data(), N8, walk, {1});
    bool lens = true;
    for (int b = 0; b < B8; ++b) lens &= c.len[b] == want_len[b];
    EXPECT(lens, "the sequences stop at their steps: %d %d %d %d %d %d %d %d", c.len[0], c.len[1], c.len[2], c.len[3], c.len[4], c.len[5], c.len[6], c.len[7]);
    EXPECT(c.out == u.out && c.len == u.len, "compacted = uncompacted: tokens and lengths");
    EXPECT(c.cb_tokens == u.cb_tokens && c.cb_done == u.cb_done, "the callback sees the same tokens and done flags, in the original order");
    EXPECT(e.out == u.out && e.len == u.len, "compacted with eager steps = uncompacted");
    // live 6 of 8 after step 0 (≤ 3/4: compact), 5 of 6 (no), 4 of 6 (compact), 2 of 4 (compact)
    const std::vector<int> rows_c = {8, 6, 6, 4, 2, 2, 2, 2, 2, 2};
    EXPECT(c.kv_rows == rows_c && e.kv_rows == rows_c, "the kernels see B shrink: prefill 8, then 6 6 4 2… (%zu calls, eager %zu)", c.kv_rows.size(),
           e.kv_rows.size());
    EXPECT(u.kv_rows == std::vector<int>(10, 8), "uncompacted: every step runs 8 rows");
    EXPECT(c.gs.compactions == 3 && c.gs.steps == 9 && c.gs.sequence_steps == 28 && c.gs.skipped_sequence_steps == 72 - 28,
           "stats: %d compactions, %d steps, %lld sequence-steps, %lld skipped", c.gs.compactions, c.gs.steps, (long long)c.gs.sequence_steps,
           (long long)c.gs.skipped_sequence_steps);
    EXPECT(u.gs.compactions == 0 && u.gs.sequence_steps == 72 && u.gs.skipped_sequence_steps == 0, "uncompacted stats: %d, %lld",
           u.gs.compactions, (long long)u.gs.sequence_steps);
    EXPECT(c.gs.new_tokens == u.gs.new_tokens && c.gs.steps == u.gs.steps, "same tokens counted and steps run");
    // one graph per number of rows (6, 4, 2): each size's first step runs eagerly and is captured
    EXPECT(c.captures == 3 && c.replays == 9 - 3, "graphs across B changes: %d captures, %d replays", c.captures, c.replays);
    EXPECT(e.replays == 0, "graphs off: no replays");
    // the sequences that ran to the end are back in their slots, state identical to the uncompacted run's
    auto seq_state_equal = [&](const Run& a, const Run& b, int s) {
      const size_t n = static_cast<size_t>(a.position);
      return a.sums[s] == b.sums[s] && a.lasts[s] == b.lasts[s] && a.position == b.position &&
             std::equal(a.cache.begin() + s * n, a.cache.begin() + (s + 1) * n, b.cache.begin() + s * n);
    };
    EXPECT(seq_state_equal(c, u, 3) && seq_state_equal(c, u, 5) && seq_state_equal(e, u, 3) && seq_state_equal(e, u, 5),
           "after generate, sequences 3 and 5 (still running) hold the uncompacted run's state: sums %g %g vs %g %g", c.sums[3], c.sums[5], u.sums[3],
           u.sums[5]);
    // the sequences compacted out (all but 3 and 5) had their slots reused by others: cleared, so
    // none holds another sequence's history (the uncompacted run keeps running them instead)
    bool cleared = true;
    const size_t np = static_cast<size_t>(c.position);
    for (int s : {0, 1, 2, 4, 6, 7}) {
      cleared &= c.sums[s] == 0.f && c.lasts[s] == 0.f && e.sums[s] == 0.f;
      for (size_t j = 0; j < np; ++j) cleared &= c.cache[s * np + j] == 0.f;
    }
    EXPECT(cleared, "compacted-out sequences' slots are cleared: sums %g %g %g %g %g %g", c.sums[0], c.sums[1], c.sums[2], c.sums[4], c.sums[6], c.sums[7]);
    const json::Value fc_info = fc.x->info();  // (find points into it: keep it alive)
    const json::Value* lg = fc_info.find("lastGenerate");
    EXPECT(lg && lg->find("compactions") && lg->find("compactions")->as_int() == 3 && lg->find("skippedSequenceSteps")->as_int() == 44,
           "info() reports the last generate's compactions");
    // a continuation (the penalty's seen rows moved back too): the running sequences go on alike
    std::vector<int32_t> turn(B8 * 2, 0);
    Run c2 = gen8(fc, *sc, B8, turn.data(), 5, walk, {}, true, 2);
    Run u2 = gen8(fu, *su, B8, turn.data(), 5, walk, {}, true, 2);
    bool same2 = true;
    for (int s : {3, 5})
      for (int j = 0; j < 5; ++j) same2 &= c2.out[s * 5 + j] == u2.out[s * 5 + j];
    EXPECT(same2 && seq_state_equal(c2, u2, 3) && seq_state_equal(c2, u2, 5), "continue after a compacted generate: sequences 3 and 5 as uncompacted");
    // the same batch again: the graphs of 6, 4 and 2 rows (and 8, from the continuation) are reused
    Run c3 = gen8(fc, *sc, B8, prompts8.data(), N8, walk, {1});
    EXPECT(c2.captures == 4 && c3.out == u.out && c3.captures == 4 && c3.replays == c2.replays + 9 && sc->decode_graphs.size() == 4,
           "a later generate reuses the graphs by B: %d captures, %d replays", c3.captures, c3.replays);
    // each sequence alone gives the same tokens
    bool alone = true;
    for (int b = 0; b < B8; ++b) {
      Fixture fa(w8, kTables8);
      auto sa = fa.x->create_state(1);
      Run a = gen8(fa, *sa, 1, prompts8.data() + b * L8, N8, walk, {1});
      alone &= a.len[0] == c.len[b] && std::equal(a.out.begin(), a.out.end(), c.out.begin() + b * N8);
      alone &= a.sums[0] == c.sums[b] || c.len[b] < N8;  // (a stopped sequence's state is unspecified after a compacted run)
    }
    EXPECT(alone, "each sequence alone: the same tokens and lengths as in the compacted batch");
    // too few steps left to repay a copy: no compaction (max_new 4: at step 0 only 3 steps remain)
    Run s4 = gen8(fc, *sc, B8, prompts8.data(), 4, walk, {1});
    EXPECT(s4.gs.compactions == 0 && s4.gs.sequence_steps == 3 * 8, "max_new 4: no compaction (%d)", s4.gs.compactions);
    // STRATA_COMPACT=0 turns it off
    setenv("STRATA_COMPACT", "0", 1);
    Fixture fz(w8, kTables8);
    unsetenv("STRATA_COMPACT");
    auto sz = fz.x->create_state(B8);
    Run z = gen8(fz, *sz, B8, prompts8.data(), N8, walk, {1});
    EXPECT(z.gs.compactions == 0 && z.out == u.out && z.kv_rows == u.kv_rows, "STRATA_COMPACT=0: no compaction, same tokens");

    // temperature > 0 with the repetition penalty: the draws are keyed by the original sequence, so
    // the compacted run samples the same tokens; random stops (token 2) at varying steps
    SamplingParams hot;
    hot.temperature = 1.5f;
    hot.repetition_penalty = 1.3f;
    hot.seed = 1234567;
    std::mt19937 r8(42);
    std::vector<int32_t> rp(B8 * 6);
    for (auto& t : rp) t = static_cast<int32_t>(r8() % V);
    Fixture hc(w8, kTables8), hu(w8, kTables8), hn(w8, kTables8), hg(w8, kTables8);
    hu.x->set_compaction(false);
    hn.ops->seq_map = false;  // a sampler without the row → sequence map
    hg.x->set_graphs(false);
    auto shc = hc.x->create_state(B8), shu = hu.x->create_state(B8), shn = hn.x->create_state(B8), shg = hg.x->create_state(B8);
    const int NH = 16;
    Run hc1 = gen8(hc, *shc, B8, rp.data(), NH, hot, {2}, false, 6);
    Run hu1 = gen8(hu, *shu, B8, rp.data(), NH, hot, {2}, false, 6);
    Run hn1 = gen8(hn, *shn, B8, rp.data(), NH, hot, {2}, false, 6);
    Run hg1 = gen8(hg, *shg, B8, rp.data(), NH, hot, {2}, false, 6);
    std::string lens_s;
    for (int b = 0; b < B8; ++b) lens_s += std::to_string(hc1.len[b]) + " ";
    EXPECT(hc1.gs.compactions >= 1, "sampling: the batch was compacted (%d times; lengths %s)", hc1.gs.compactions, lens_s.c_str());
    EXPECT(hc1.out == hu1.out && hc1.len == hu1.len && hg1.out == hu1.out, "temperature > 0 + penalty: compacted (graphs, eager) = uncompacted tokens");
    EXPECT(hn1.gs.compactions == 0 && hn1.out == hu1.out, "a sampler without the sequence map: no compaction at temperature > 0 (%d)", hn1.gs.compactions);
    bool rows_by_step = true;  // the sampler was called with the compacted row counts
    for (size_t k = 1; k < hc.ops->sample_sizes.size(); ++k) rows_by_step &= static_cast<int>(hc.ops->sample_sizes[k]) == hc1.kv_rows[k];
    EXPECT(rows_by_step && hc.ops->sample_sizes.size() == hc1.kv_rows.size(), "one sample per step over the rows run");

    // decode ahead (no stop tokens, no callback): steps queued `ahead` at a time, tokens read back
    // once per batch of steps — the same tokens and the same state as a round trip per step
    // (ahead 1), for greedy with the penalty and for temperature > 0; not used with a stop token
    // or a callback
    auto plain = [&](Fixture& g, int ahead, int max_new, const SamplingParams& p, const std::vector<int32_t>& stop) {
      g.x->set_decode_ahead(ahead);
      auto st = g.x->create_state(B8);
      Run r;
      r.out.assign(static_cast<size_t>(B8) * max_new, 99);
      r.len.assign(B8, 0);
      g.ops->ahead_fetches = g.ops->ahead_samples = 0;
      g.x->generate(*st, prompts8.data(), L8, max_new, false, p, stop, r.out.data(), r.len.data(), nullptr, &r.gs);
      const float* f0 = static_cast<const float*>(st->buffers[0]);
      r.sums.assign(f0, f0 + B8);
      r.position = st->position;
      return r;
    };
    for (const SamplingParams& sp : {walk, hot}) {
      Fixture fa1(w8, kTables8), fa4(w8, kTables8);
      const int NA = 11;  // 10 decode steps: batches of 4, 4, 2
      Run one = plain(fa1, 1, NA, sp, {});
      Run four = plain(fa4, 4, NA, sp, {});
      EXPECT(fa1.ops->ahead_fetches == 0 && fa4.ops->ahead_fetches == 3 && fa4.ops->ahead_samples == NA - 1,
             "ahead 4: %d read-backs of %d queued samples (ahead 1: %d)", fa4.ops->ahead_fetches, fa4.ops->ahead_samples, fa1.ops->ahead_fetches);
      EXPECT(four.out == one.out && four.len == one.len && four.sums == one.sums && four.position == one.position,
             "decode ahead (temperature %g): the tokens, lengths and state of one round trip per step", sp.temperature);
      // a sampler that does not feed the next step: the executor copies the tokens and sets the step
      Fixture fc4(w8, kTables8);
      fc4.ops->ahead_feeds = false;
      Run copied = plain(fc4, 4, NA, sp, {});
      EXPECT(fa4.ops->fed_steps == NA - 2 && fc4.ops->fed_steps == 0 && copied.out == one.out && copied.sums == one.sums && copied.position == one.position,
             "decode ahead: each sample but the last fed the next step (%d), and without feeding the tokens are the same", fa4.ops->fed_steps);
      EXPECT(four.gs.steps == NA - 1 && four.gs.new_tokens == static_cast<int64_t>(B8) * NA && four.gs.sequence_steps == static_cast<int64_t>(B8) * (NA - 1),
             "decode-ahead stats: %d steps, %lld tokens", four.gs.steps, (long long)four.gs.new_tokens);
      Fixture fs(w8, kTables8);
      plain(fs, 4, NA, sp, {1});
      EXPECT(fs.ops->ahead_fetches == 0, "a stop token: a round trip per step (%d read-backs)", fs.ops->ahead_fetches);
      // a callback that only observes (STRATA_GENERATE_STREAM) sees every step, in order, with the same
      // tokens and done flags as a callback called after each round trip; one that may stop
      // (flags 0) keeps the round trips
      struct Seen {
        std::vector<int> index;
        std::vector<std::vector<int32_t>> tokens;
        std::vector<std::vector<uint8_t>> done;
        std::vector<int32_t> out;
        int fetches = 0;
      };
      auto watched = [&](uint32_t flags) {
        Fixture g(w8, kTables8);
        g.x->set_decode_ahead(4);
        auto st = g.x->create_state(B8);
        Seen r;
        r.out.assign(static_cast<size_t>(B8) * NA, 99);
        std::vector<int32_t> len(B8);
        g.x->generate(*st, prompts8.data(), L8, NA, flags, sp, {}, r.out.data(), len.data(),
                      [&](int i, const int32_t* t, const uint8_t* d) {
                        r.index.push_back(i);
                        r.tokens.emplace_back(t, t + B8);
                        r.done.emplace_back(d, d + B8);
                        return true;
                      },
                      nullptr);
        r.fetches = g.ops->ahead_fetches;
        return r;
      };
      Seen streamed = watched(STRATA_GENERATE_STREAM), stepped = watched(0);
      EXPECT(streamed.fetches == 3 && stepped.fetches == 0, "an observing callback lets generate run ahead (%d read-backs; %d with a stopping one)",
             streamed.fetches, stepped.fetches);
      EXPECT(streamed.index == stepped.index && streamed.tokens == stepped.tokens && streamed.done == stepped.done && streamed.out == stepped.out &&
                 streamed.out == one.out,
             "the observer sees the same steps, tokens and done flags (%zu calls)", streamed.index.size());
    }
  }
  // Multi-step decode graphs: with decode ahead, a batch of G steps replays one graph holding G
  // copies of the step schedule, each followed by its sampler (HostOps records every launch and
  // sampler with its arguments at capture and replays them verbatim, so a per-step value frozen
  // into the graph would change the tokens or trip the kernels' position checks). Compared with a
  // round trip per step (ahead 1): greedy with the penalty and temperature > 0, several graphs per
  // generate, a tail shorter than G, a second generate (graph reused, another seed), a context
  // that ends exactly at the last step, batch 1, an observing callback, and every fallback.
  {
    constexpr int L8m = 4;
    std::vector<int32_t> pm(static_cast<size_t>(B8) * L8m);
    for (auto& t : pm) t = tok(rng) % V;
    const float w8 = 0.5f;
    SamplingParams greedy;
    greedy.repetition_penalty = 1.5f;
    SamplingParams hot;
    hot.temperature = 1.5f;
    hot.repetition_penalty = 1.3f;
    hot.seed = 987654321;
    SamplingParams hot2 = hot;
    hot2.seed = 42;
    struct MRun {
      std::vector<int32_t> out, len;
      std::vector<float> sums, cache;
      int64_t position = 0;
      int step_replays = 0, captures = 0, captured_samples = 0, fetches = 0, step_bases = 0;
      std::vector<int> cb_index;
      std::vector<std::vector<int32_t>> cb_tokens;
      std::vector<std::vector<uint8_t>> cb_done;
      GenerateStats gs;
      std::string error;
    };
    struct Cfg {
      int ahead = 4, gsteps = 4, batch = B8, context = 0;
      bool graphs = true, capture_ok = true, step_graphs_ok = true, feeds = true, frozen = false;
      uint32_t flags = 0;
      bool with_cb = false;
    };
    // runs `params` one after another on one state (each generate starts the sequences anew)
    auto mrun = [&](const Cfg& c, int max_new, const std::vector<SamplingParams>& params) {
      Fixture g(w8, kTables8);
      g.x->set_decode_ahead(c.ahead);
      g.x->set_decode_graph_steps(c.gsteps);
      g.x->set_graphs(c.graphs);
      g.ops->capture_ok = c.capture_ok;
      g.ops->step_graphs_ok = c.step_graphs_ok;
      g.ops->ahead_feeds = c.feeds;
      g.ops->frozen_sampler = c.frozen;
      auto st = g.x->create_state(c.batch, c.context);
      std::vector<MRun> runs;
      for (const SamplingParams& sp : params) {
        MRun r;
        r.out.assign(static_cast<size_t>(c.batch) * max_new, 99);
        r.len.assign(c.batch, 0);
        TokenCallback cb;
        if (c.with_cb)
          cb = [&](int i, const int32_t* t, const uint8_t* d) {
            r.cb_index.push_back(i);
            r.cb_tokens.emplace_back(t, t + c.batch);
            r.cb_done.emplace_back(d, d + c.batch);
            return true;
          };
        const int rep0 = g.x->step_graph_replays(), cap0 = g.ops->captures, cs0 = g.ops->captured_samples, f0 = g.ops->ahead_fetches,
                  sb0 = g.ops->step_bases;
        r.error = error_of([&] { g.x->generate(*st, pm.data(), L8m, max_new, c.flags, sp, {}, r.out.data(), r.len.data(), cb, &r.gs); });
        r.step_replays = g.x->step_graph_replays() - rep0;
        r.captures = g.ops->captures - cap0;
        r.captured_samples = g.ops->captured_samples - cs0;
        r.fetches = g.ops->ahead_fetches - f0;
        r.step_bases = g.ops->step_bases - sb0;
        const float* s0 = static_cast<const float*>(st->buffers[0]);
        r.sums.assign(s0, s0 + c.batch);
        const float* kv = static_cast<const float*>(st->buffers[2]);
        for (int b = 0; b < c.batch; ++b)
          for (int64_t j = 0; j < st->position; ++j) r.cache.push_back(kv[(static_cast<size_t>(b) * st->capacity + j) * 16]);
        r.position = st->position;
        runs.push_back(r);
      }
      return runs;
    };
    auto same = [](const MRun& a, const MRun& b) {
      return a.error.empty() && b.error.empty() && a.out == b.out && a.len == b.len && a.sums == b.sums && a.cache == b.cache && a.position == b.position;
    };
    for (const SamplingParams& sp : {greedy, hot}) {
      const double temp = sp.temperature;
      const int NM = 30;  // 29 decode steps
      Cfg ref;
      ref.ahead = 1;
      const std::vector<MRun> one = mrun(ref, NM, {sp, sp, hot2});
      EXPECT(one[0].error.empty() && one[0].position == L8m + NM - 1 && one[0].step_replays == 0, "reference run (temperature %g): %s", temp, one[0].error.c_str());
      // ahead 4, graphs of 4: batches 4 (one step at a time: the one-step graph is captured), 6 × 4
      // (one multi-step graph, captured once), 1 (the tail, one step at a time); a second generate
      // replays the same graph 7 times, a third with another seed too
      Cfg c;
      const std::vector<MRun> m = mrun(c, NM, {sp, sp, hot2});
      EXPECT(same(m[0], one[0]) && same(m[1], one[1]) && same(m[2], one[2]),
             "multi-step graphs (temperature %g): the tokens, lengths, state and position of a round trip per step (%s)", temp, m[0].error.c_str());
      EXPECT(m[0].step_replays == 6 && m[0].captures == 2 && m[0].captured_samples == 4 && m[0].step_bases == 6 && m[0].fetches == 8,
             "first generate: %d multi-step replays, %d captures (%d samplers captured), %d bases, %d read-backs", m[0].step_replays, m[0].captures,
             m[0].captured_samples, m[0].step_bases, m[0].fetches);
      EXPECT(m[1].step_replays == 7 && m[1].captures == 0 && m[2].captures == (temp > 0 ? 0 : 1) && m[2].step_replays == 7,
             "later generates reuse the graph (%d replays, %d captures; another seed: %d captures)", m[1].step_replays, m[1].captures, m[2].captures);
      EXPECT(m[0].gs.steps == NM - 1 && m[0].gs.new_tokens == static_cast<int64_t>(B8) * NM, "multi-step stats: %d steps", m[0].gs.steps);
      // like the decode benchmark: a short first generate (3 steps, fewer than G) already captures
      // the graph after its first batch, so the next generate replays it from its first batch on
      const std::vector<MRun> w = mrun(c, 4, {sp}), ow = mrun(ref, 4, {sp});
      const std::vector<MRun> wl = mrun(c, 4, {sp, sp});
      EXPECT(same(w[0], ow[0]) && w[0].step_replays == 0 && w[0].captured_samples == 4 && wl[1].step_replays == 0 && wl[1].captures == 0,
             "a short generate captures the graph without replaying it (%d samplers captured)", w[0].captured_samples);
      {
        Fixture g(w8, kTables8);
        g.x->set_decode_ahead(4);
        g.x->set_decode_graph_steps(4);
        auto st = g.x->create_state(B8);
        std::vector<int32_t> o(static_cast<size_t>(B8) * NM), l(B8);
        g.x->generate(*st, pm.data(), L8m, 4, 0, sp, {}, o.data(), l.data(), nullptr, nullptr);
        const int caps = g.ops->captures;
        g.x->generate(*st, pm.data(), L8m, NM, 0, sp, {}, o.data(), l.data(), nullptr, nullptr);
        EXPECT(o == one[0].out && g.x->step_graph_replays() == 7 && g.ops->captures == caps && g.x->graph_replays() == 2 + 28 + 1,
               "after a short first generate: %d multi-step replays, %d new captures, %d steps replayed from graphs", g.x->step_graph_replays(),
               g.ops->captures - caps, g.x->graph_replays());
      }
      // graphs of 3 within batches of up to 8: 8 one at a time, then 7 graphs of 3 (21 steps)
      Cfg c3;
      c3.ahead = 8;
      c3.gsteps = 3;
      const MRun m3 = mrun(c3, NM, {sp})[0];
      EXPECT(same(m3, one[0]) && m3.step_replays == 7, "graphs of 3, ahead 8 (temperature %g): same tokens, %d replays", temp, m3.step_replays);
      // graphs of 16 (the default) with ahead 4: at most the ahead depth (4)
      Cfg c16;
      c16.gsteps = 16;
      const MRun m16 = mrun(c16, NM, {sp})[0];
      EXPECT(same(m16, one[0]) && m16.step_replays == 6, "graph steps capped at the ahead depth: %d replays", m16.step_replays);
      // a context that ends at the last step fed back: prompt + max_new − 1 tokens
      Cfg cx = c, rx = ref;
      cx.context = rx.context = L8m + NM - 1;
      const MRun mx = mrun(cx, NM, {sp})[0], ox = mrun(rx, NM, {sp})[0];
      EXPECT(same(mx, ox) && same(mx, one[0]) && mx.step_replays == 6, "a context ending at the last step: same tokens (%s, %d replays)",
             mx.error.c_str(), mx.step_replays);
      // max_new − 1 a multiple of G: the last graph ends the generation (its last sampler feeds nothing that runs)
      for (int nm : {9, 13}) {
        Cfg ce = c, re = ref;
        ce.context = re.context = L8m + nm - 1;
        const std::vector<MRun> me = mrun(ce, nm, {sp, sp}), oe = mrun(re, nm, {sp, sp});
        EXPECT(same(me[0], oe[0]) && same(me[1], oe[1]) && me[0].step_replays == (nm - 1) / 4 - 1 && me[1].step_replays == (nm - 1) / 4,
               "max_new %d: graphs to the last step, same tokens (%d, %d replays)", nm, me[0].step_replays, me[1].step_replays);
      }
      // batch 1
      Cfg c1 = c, r1 = ref;
      c1.batch = r1.batch = 1;
      const std::vector<MRun> m1 = mrun(c1, NM, {sp, sp}), o1 = mrun(r1, NM, {sp, sp});
      EXPECT(same(m1[0], o1[0]) && same(m1[1], o1[1]) && m1[1].step_replays == 7, "batch 1: same tokens (%d replays)", m1[1].step_replays);
      // the ring is reallocated (a larger batch on another state): a graph captured writing into
      // the old ring is not replayed; the state captures a new one
      {
        Fixture g(w8, kTables8);
        g.x->set_decode_ahead(4);
        g.x->set_decode_graph_steps(4);
        auto s1 = g.x->create_state(1), s8 = g.x->create_state(B8);
        std::vector<int32_t> o1b(NM), o8(static_cast<size_t>(B8) * NM), l(B8);
        g.x->generate(*s1, pm.data(), L8m, NM, 0, sp, {}, o1b.data(), l.data(), nullptr, nullptr);
        const int grows = g.ops->ring_grows;
        g.x->generate(*s8, pm.data(), L8m, NM, 0, sp, {}, o8.data(), l.data(), nullptr, nullptr);
        const int cs = g.ops->captured_samples;
        g.x->generate(*s1, pm.data(), L8m, NM, 0, sp, {}, o1b.data(), l.data(), nullptr, nullptr);
        EXPECT(o1b == o1[1].out && o8 == one[0].out && g.ops->ring_grows == grows + 1 && g.ops->captured_samples == cs + 4 && s1->step_graphs.size() == 2,
               "a reallocated ring: the graph is captured again (%d samplers), same tokens", g.ops->captured_samples - cs);
      }
      // an observing callback sees the same calls as one that may stop (a round trip per step)
      Cfg cs = c, rs = ref;
      cs.with_cb = rs.with_cb = true;
      cs.flags = STRATA_GENERATE_STREAM;
      rs.flags = 0;
      const MRun ms = mrun(cs, NM, {sp, sp})[1], os = mrun(rs, NM, {sp, sp})[1];
      EXPECT(same(ms, os) && ms.cb_index == os.cb_index && ms.cb_tokens == os.cb_tokens && ms.cb_done == os.cb_done && ms.step_replays == 7 &&
                 ms.cb_index.size() == static_cast<size_t>(NM),
             "an observer under multi-step graphs: the same %zu callback calls", ms.cb_index.size());
      // fallbacks, each with the same tokens and no multi-step replay: graph steps 1, CUDA graphs
      // off, no capture, a device without multi-step graphs, a sampler that does not feed
      Cfg f1 = c, fg = c, fc = c, fd = c, ff = c;
      f1.gsteps = 1;
      fg.graphs = false;
      fc.capture_ok = false;
      fd.step_graphs_ok = false;
      ff.feeds = false;
      for (const Cfg& fb : {f1, fg, fc, fd, ff}) {
        const std::vector<MRun> r = mrun(fb, NM, {sp, sp});
        EXPECT(same(r[0], one[0]) && same(r[1], one[1]) && r[0].step_replays == 0 && r[1].step_replays == 0 && r[1].captured_samples == 0,
               "fallback (graph steps %d, graphs %d, capture %d, device %d, feeds %d): one step at a time, same tokens (%s)", fb.gsteps, fb.graphs,
               fb.capture_ok, fb.step_graphs_ok, fb.feeds, r[0].error.c_str());
      }
      // the test itself: a sampler whose captured step and position were taken as absolute values
      // (frozen at capture) breaks the run — the kernels' position check or the tokens
      Cfg fz = c;
      fz.frozen = true;
      const MRun z = mrun(fz, NM, {sp})[0];
      EXPECT(!z.error.empty() || z.out != one[0].out, "a frozen sampler is caught (%s)", z.error.c_str());
    }
    // more sampling settings than kept graphs: the oldest are dropped, at most kMaxStepGraphs stay
    {
      Fixture g(w8, kTables8);
      auto st = g.x->create_state(B8);
      std::vector<int32_t> o(static_cast<size_t>(B8) * 10), l(B8);
      for (int k = 0; k < 6; ++k) {
        SamplingParams sp = hot;
        sp.temperature = 0.5f + k;
        g.x->set_decode_ahead(4);
        g.x->set_decode_graph_steps(4);
        g.x->generate(*st, pm.data(), L8m, 10, 0, sp, {}, o.data(), l.data(), nullptr, nullptr);
      }
      EXPECT(st->step_graphs.size() == SessionState::kMaxStepGraphs && g.x->step_graph_replays() == 6 * 2 - 1,
             "kept multi-step graphs: %zu, replays %d", st->step_graphs.size(), g.x->step_graph_replays());
    }
    // STRATA_DECODE_GRAPH_STEPS=1: one graph launch per step
    {
      setenv("STRATA_DECODE_GRAPH_STEPS", "1", 1);
      Fixture g(w8, kTables8);
      unsetenv("STRATA_DECODE_GRAPH_STEPS");
      g.x->set_decode_ahead(4);
      auto st = g.x->create_state(B8);
      std::vector<int32_t> o(static_cast<size_t>(B8) * 20), l(B8);
      g.x->generate(*st, pm.data(), L8m, 20, 0, greedy, {}, o.data(), l.data(), nullptr, nullptr);
      g.x->generate(*st, pm.data(), L8m, 20, 0, greedy, {}, o.data(), l.data(), nullptr, nullptr);
      EXPECT(g.x->step_graph_replays() == 0 && g.ops->captured_samples == 0, "STRATA_DECODE_GRAPH_STEPS=1: no multi-step graph (%d)", g.x->step_graph_replays());
      Fixture h(w8, kTables8);
      h.x->set_decode_ahead(4);
      auto sh = h.x->create_state(B8);
      h.x->generate(*sh, pm.data(), L8m, 20, 0, greedy, {}, o.data(), l.data(), nullptr, nullptr);
      EXPECT(h.x->step_graph_replays() == 3 && h.x->info().find("multiStepGraphReplays") != nullptr, "default: graphs of the ahead depth (%d replays)",
             h.x->step_graph_replays());
    }
  }
  // train_step's gradients live in the shared arena: readable until another entry runs
  {
    Fixture ft(w0, kTablesT);
    float g = NAN;
    std::string e = error_of([&] { ft.x->gradient_to_host(0, &g, 1); });
    EXPECT(e.find("run train_step first") != std::string::npos, "gradient before any train_step: %s", e.c_str());
    const int32_t tk[6] = {1, 2, 3, 4, 5, 6}, tg[6] = {0, 1, 0, 1, 0, 1};
    const float lw[6] = {1, 0, 1, 0, 1, 0};
    const float loss = ft.x->train_step(tk, tg, lw, 2, 3);
    ft.x->gradient_to_host(0, &g, 1);
    EXPECT(loss == 1.f + 3.f + 5.f && g == 22.f, "train_step: loss %g, gradient %g", loss, g);
    std::vector<float> lo(2 * 3 * V);
    ft.x->forward(tk, 2, 3, lo.data());  // writes its logits over the gradient
    g = NAN;
    e = error_of([&] { ft.x->gradient_to_host(0, &g, 1); });
    EXPECT(e.find("reuses the memory") != std::string::npos && std::isnan(g), "gradient after a forward: refused, not the logits' bytes (%s)", e.c_str());
    ft.x->train_step(tk, tg, lw, 2, 3);
    ft.x->gradient_to_host(0, &g, 1);
    EXPECT(g == 22.f, "readable again after the next train_step (%g)", g);
    auto st = ft.x->create_state(2, 10);
    ft.x->prefill(*st, tk, 3, false, true, lo.data());
    g = NAN;
    e = error_of([&] { ft.x->gradient_to_host(0, &g, 1); });
    EXPECT(!e.empty() && std::isnan(g), "gradient after a prefill: refused (%s)", e.c_str());
    const int32_t bad[6] = {0, 0, 0, 0, 0, 99};
    ft.x->train_step(tk, tg, lw, 2, 3);
    e = error_of([&] { ft.x->train_step(tk, bad, lw, 2, 3); });  // refused before it runs: the arena is untouched
    ft.x->gradient_to_host(0, &g, 1);
    EXPECT(e.find("outside the vocabulary") != std::string::npos && g == 22.f, "a refused train_step keeps the last gradients (%g)", g);
  }
  // every allocation is released
  {
    HostOps* ops;
    {
      std::unique_ptr<HostOps> o(new HostOps());
      ops = o.get();
      ProgramExecutor x(kTables, std::move(o), V, {sizeof(float)});
      auto s = x.create_state(2, 10);
      EXPECT(s->capacity == 10, "context %d", s->capacity);
      EXPECT(x.state_bytes_per_seq(10) == 2 * 256 + 768, "state bytes per sequence (aligned) %llu", (unsigned long long)x.state_bytes_per_seq(10));
      const int a = ops->allocs;
      s.reset();
      EXPECT(ops->releases == 3 && a >= 8, "state buffers released (%d of %d)", ops->releases, a);
      std::string e = error_of([&] { x.create_state(1, MAXCTX + 1); });
      EXPECT(e.find("context 21 outside 1..20") != std::string::npos, "context beyond the compiled one: %s", e.c_str());
      auto small = x.create_state(1, 6);
      std::vector<int32_t> seven(7, 1);
      float lo[7 * V];
      e = error_of([&] { x.prefill(*small, seven.data(), 7, false, false, lo); });
      EXPECT(e.find("exceed the state's context of 6") != std::string::npos, "prefill beyond a small state: %s", e.c_str());
      EXPECT(x.info().is_object(), "info");
    }
  }
  // STRATA_PROFILE: every launch of a schedule run timed; one CSV row per launch at destruction
  {
    char tmpl[] = "/tmp/strata-profile-XXXXXX";
    const int fd = mkstemp(tmpl);
    EXPECT(fd >= 0, "temp file");
    close(fd);
    {
      std::unique_ptr<HostOps> o(new HostOps());
      HostOps* ops = o.get();
      ops->profiling = true;
      ProgramExecutor x(kTables, std::move(o), V, {sizeof(float)});
      x.upload_weight(0, &f.w0, sizeof(float));
      x.set_profile(tmpl);
      x.weights_ready();
      std::vector<int32_t> in(2 * 3, 1);
      std::vector<float> out(2 * 3 * V);
      x.forward(in.data(), 2, 3, out.data());
      x.forward(in.data(), 2, 3, out.data());
      EXPECT(ops->profiled_runs >= 2, "each schedule run is timed (%d)", ops->profiled_runs);
    }
    std::ifstream in(tmpl);
    std::string line, all;
    std::vector<std::string> fwd;
    while (std::getline(in, line)) {
      all += line + "\n";
      if (line.rfind("forward,", 0) == 0) fwd.push_back(line);
    }
    std::remove(tmpl);
    EXPECT(all.rfind("schedule,index,kernel,scope,calls,total_ms,mean_us\n", 0) == 0, "profile header: %s", all.c_str());
    // the toy forward schedule: its once-launch (prep, timed in weights_ready's run) and one kernel
    // per call, timed in both calls (1 ms each from the test double)
    const bool prep_once = std::any_of(fwd.begin(), fwd.end(), [](const std::string& l) { return l.find(",prep,") != std::string::npos && l.find(",1,1.000000,") != std::string::npos; });
    const bool fwd_twice = std::any_of(fwd.begin(), fwd.end(), [](const std::string& l) { return l.find(",forward,") != std::string::npos && l.find(",2,2.000000,1000.000") != std::string::npos; });
    EXPECT(prep_once && fwd_twice, "forward's launches timed (prep once, the kernel twice):\n%s", all.c_str());
  }
  std::printf("[program host tests] %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
