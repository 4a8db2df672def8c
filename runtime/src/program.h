// program.h — the compiled Program as data, and the generic executor that runs it.
//
// The compiler writes model.cu as tables only (kernels, buffer references, launches, state
// buffers, schedules); everything that runs them lives here, once, covered by the host tests:
//   - ProgramTables: what model.cu defines (strata::generated_program());
//   - DeviceOps: the few device operations the executor needs (allocate, copy, zero, convert the
//     logits), implemented with CUDA in device_cuda.cu and with host memory in the host tests;
//   - ProgramExecutor: weights, one arena (the largest schedule's memory plan), tokens/positions
//     buffers, the logits; forward / prefill / step over per-session state buffers.
//
// Schedules: "forward" (no state) and "cached" (T new tokens after P past ones, state in/out).
// Entry points: forward → forward; prefill (reset or continue) and step (T = 1) → cached.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "error.h"
#include "json.h"
#include "strata_launch.cuh"

namespace strata {

// A generated launcher: returns 0 (cudaSuccess) or a cudaError_t value; `stream` is a cudaStream_t.
using LaunchFn = int (*)(void* const* bufs, const StrataDims* dims, void* stream);

// kPrep: values computed once from the weights (parameter prep), shared by the schedules.
// kTargets / kLossWeights: the train entry's targets (i32) and loss weights (f32), [B, T].
enum BufKind : int { kArena = 0, kWeight = 1, kTokens = 2, kPositions = 3, kState = 4, kPrep = 5, kTargets = 6, kLossWeights = 7 };
struct BufRef {
  BufKind kind;
  uint64_t value;  // arena or prepared-region byte offset, weight index or state index
};

enum LaunchOp : int { kLaunchKernel = 0, kLaunchCopy = 1 };
struct LaunchEntry {
  LaunchOp op;
  int kernel;  // index into kernels (kLaunchKernel)
  const char* name;
  const char* scope;
  int first;  // into bufs
  int count;
  bool once;              // runs once after the weights are loaded (parameter prep), not per call
  uint64_t bytes_per_seq;  // kLaunchCopy: bytes per sequence, src = bufs[first], dst = bufs[first + 1]
};

struct KernelEntry {
  const char* name;
  LaunchFn fn;
};

// A state buffer per sequence: fixed bytes (SSM, conv) + bytes per token of the handle's
// context (KV caches).
struct StateEntry {
  const char* name;
  uint64_t bytes_per_seq;
  uint64_t bytes_per_token;
};

struct ScheduleEntry {
  const char* name;  // "forward", "cached" or "train"
  uint64_t arena_bytes;
  uint64_t logits_offset;  // bf16 [B, T, vocab] in the arena; train: the f32 loss
  int first_launch;
  int launch_count;
};

// train: where weight `weight`'s f32 gradient lands in the train schedule's arena; offset ~0: the
// loss does not reach the weight (its gradient is 0).
struct GradEntry {
  int weight;
  uint64_t offset;
};

struct ProgramTables {
  const char* name;
  const KernelEntry* kernels;
  int kernel_count;
  const BufRef* bufs;
  const LaunchEntry* launches;
  const StateEntry* states;
  int state_count;
  const ScheduleEntry* schedules;
  int schedule_count;
  int max_batch, max_seq, max_context;
  uint64_t prep_bytes;
  int max_tokens;  // largest batch · seqlen of one call
  const GradEntry* grads;  // train (one per weight, manifest order); grad_count 0 without a train schedule
  int grad_count;
};

// Defined by the generated model.cu.
const ProgramTables& generated_program();

// How the next token is chosen (strata_sampling in the C ABI). temperature 0 = greedy.
struct SamplingParams {
  float temperature = 0.f;
  int top_k = 0;                    // 0 = off
  float top_p = 1.f;                // 1 = off
  float repetition_penalty = 1.f;   // 1 = off
  uint64_t seed = 0;
};

// Decode ahead: where the next step reads its tokens and its position (DeviceOps::sample_ahead).
struct AheadFeed {
  void* tokens_dev = nullptr;     // the step's token buffer (int32 [rows])
  int* info_dev = nullptr;        // {P, P + 1}, as set_step writes it
  int32_t* positions_dev = nullptr;
  int64_t P = 0;                  // the next step's position
  // Multi-step decode graphs (ProgramExecutor::generate, STRATA_DECODE_GRAPH_STEPS): a sampler
  // captured into a graph cannot take per-step values as arguments (they would be frozen), so
  // with base_dev (device int64 {P0, step0, seed}, written by DeviceOps::set_step_base before each
  // replay and read-only during it) P and sample_ahead's `step` are offsets: the next step's
  // position is base_dev[0] + P, the draw's step base_dev[1] + step, and its seed base_dev[2].
  const int64_t* base_dev = nullptr;
};

// Device operations the executor needs. All asynchronous on one stream except sync/d2h.
class DeviceOps {
 public:
  virtual ~DeviceOps() = default;
  virtual void* alloc(size_t bytes, const std::string& what) = 0;  // throws STRATA_ERR_OUT_OF_MEMORY naming `what`
  virtual void release(void* p) = 0;
  virtual void h2d(void* dst, const void* src, size_t n) = 0;
  virtual void d2d(void* dst, const void* src, size_t n) = 0;
  virtual void d2h(void* dst, const void* src, size_t n) = 0;  // synchronous
  virtual void zero(void* dst, size_t n) = 0;
  // rows × cols bf16 values starting at `src` (row stride src_stride elements) → host float32.
  virtual void logits_to_host(float* dst, const void* src, size_t rows, size_t cols, size_t src_stride) = 0;
  virtual void sync() = 0;
  virtual void* stream() = 0;
  // Called after each launch: a launcher's error code (non-zero) or an asynchronous fault.
  virtual void check_launch(int code, const std::string& what) = 0;
  // One token per row from `rows` × `vocab` bf16 logits (`stride` elements apart) → host tokens;
  // `seen` (device uint8 [rows, vocab], or null) feeds the repetition penalty and is updated.
  virtual void sample(const void* logits, size_t rows, size_t vocab, size_t stride, const SamplingParams& p, uint64_t step, uint8_t* seen,
                      int32_t* tokens_host) = 0;
  // The same, where row r holds sequence seq_of_row[r] (host, `rows` entries): a temperature > 0
  // draw uses the Philox stream (seed, seq_of_row[r], step), so a sequence draws the same numbers
  // whichever row it sits in once generate has compacted the batch. Devices that implement it
  // say so in samples_by_sequence(); the default ignores the map (right for greedy, which draws
  // nothing, and for the identity map), and generate then compacts greedy runs only.
  virtual bool samples_by_sequence() const { return false; }
  virtual void sample_rows(const void* logits, size_t rows, size_t vocab, size_t stride, const SamplingParams& p, uint64_t step, uint8_t* seen,
                           const int32_t* seq_of_row, int32_t* tokens_host) {
    (void)seq_of_row;
    sample(logits, rows, vocab, stride, p, step, seen, tokens_host);
  }
  // Decode ahead (generate with no stop tokens and no callback: every sequence runs to max_new,
  // so the host need not see a token before the next step): sample_ahead samples like
  // sample_rows (identity row map) into slot `slot` of a device ring of `slots` × rows tokens
  // without copying to the host or waiting; ahead_to_tokens copies a slot into the next step's
  // token buffer; fetch_ahead copies slots 0..count−1 to the host (rows tokens each, slot-major)
  // and waits. Devices without it return false from can_decode_ahead and generate steps one
  // token per round trip.
  // With `next` (a step follows), sample_ahead may also feed it — write the tokens into
  // next->tokens_dev and the step info as set_step(next->P) would, on the device — and return
  // true; the executor then skips that step's ahead_to_tokens and set_step (two fewer operations
  // between graph replays). false: the executor does both.
  virtual bool can_decode_ahead() const { return false; }
  virtual bool sample_ahead(const void* /*logits*/, size_t /*rows*/, size_t /*vocab*/, size_t /*stride*/, const SamplingParams& /*p*/,
                            uint64_t /*step*/, uint8_t* /*seen*/, int /*slot*/, int /*slots*/, const AheadFeed* /*next*/) {
    return false;
  }
  virtual void ahead_to_tokens(void* /*tokens_dev*/, size_t /*rows*/, int /*slot*/) {}
  // Multi-step decode graphs: ahead_ring makes the ring hold `slots` × rows tokens (growing it —
  // and waiting for the queue — only if it must) and returns it, so that a graph whose samplers
  // were captured writing into it is replayed only while it is the same ring; null: this device
  // has no multi-step decode graphs. set_step_base, before a replay (asynchronous): info_dev =
  // {P, P + 1}, positions_dev[0] = P (as set_step) and base_dev = {P, step, seed} (AheadFeed).
  virtual const void* ahead_ring(size_t /*rows*/, int /*slots*/) { return nullptr; }
  virtual void set_step_base(int* /*info_dev*/, int32_t* /*positions_dev*/, int64_t* /*base_dev*/, int64_t /*P*/, uint64_t /*step*/,
                             uint64_t /*seed*/) {}
  virtual void fetch_ahead(int32_t* /*host*/, size_t /*rows*/, int /*count*/) {}
  // Mark the device tokens [rows, cols] (the token buffer) as seen.
  virtual void mark_seen(uint8_t* seen, size_t vocab, const void* tokens_dev, int rows, int cols) = 0;
  // Free device memory, for the "needed vs free" message before allocating state; 0 = unknown.
  virtual size_t free_bytes() { return 0; }
  // Every kernel launch goes through here (so a capture can record it).
  virtual int launch(LaunchFn fn, void* const* bufs, int count, const StrataDims& d) {
    (void)count;
    return fn(bufs, &d, stream());
  }
  // CUDA graphs for the decode step: capture the launches between begin and end on this stream,
  // replay them. begin_capture returns false where graphs are not supported (then the executor
  // runs eagerly); end_capture returns null when the capture failed.
  virtual bool begin_capture() { return false; }
  virtual void* end_capture() { return nullptr; }
  virtual void replay(void* /*graph*/) {}
  virtual void destroy_graph(void* /*graph*/) {}
  // Before a replayed decode step: info_dev = {P, P + 1}, positions_dev[0] = P (asynchronous).
  virtual void set_step(int* info_dev, int32_t* positions_dev, int64_t P) = 0;
  // Device copy of the last sampled tokens (rows), into the token buffer of the next step.
  virtual void last_sampled_to(void* tokens_dev, size_t rows) = 0;
  // Per-launch timing (STRATA_PROFILE=file): profile_begin(n) holds the stream behind a short
  // device-side wait long enough for the host to queue the n launches that follow, so they run
  // back to back as they would from a graph; profile_mark records an event after a launch;
  // profile_end waits and returns the milliseconds between consecutive marks (the first from
  // the end of the wait). Devices without events return false / an empty list.
  virtual bool profile_begin(int /*launches*/) { return false; }
  virtual void profile_mark() {}
  virtual std::vector<float> profile_end() { return {}; }
  // Milliseconds the device spent on `work` (timed with events); -1 when not measurable.
  virtual float elapsed_ms(const std::function<void()>& work) {
    work();
    return -1.f;
  }
};

// The state of `batch` sequences: one device buffer per state of the Program, and the number of
// tokens already seen (P). Created by ProgramExecutor::create_state.
struct SessionState {
  int batch = 0;
  int capacity = 0;  // tokens per sequence the caches hold (≤ the compiled max context)
  int64_t position = 0;
  std::vector<void*> buffers;
  uint8_t* seen = nullptr;  // [batch, vocab] tokens seen (repetition penalty), allocated on first use
  // The captured decode steps over these buffers (CUDA graphs), one per number of rows run:
  // generate runs fewer rows once sequences stop (see ProgramExecutor::generate). The 3/4
  // compaction rule bounds the sizes met to about log_{4/3}(batch) + 1 (13 for a batch of 64).
  std::vector<std::pair<int, void*>> decode_graphs;
  // Multi-step decode graphs (generate's decode ahead): `steps` decode steps of `rows` rows, each
  // followed by its sampler, in one graph. What the capture froze besides this state's buffers
  // and the executor's is the key: the sampling parameters but the seed (read from the device),
  // the repetition-penalty set and the token ring. At most kMaxStepGraphs, oldest dropped first.
  struct StepGraph {
    int rows, steps;
    SamplingParams p;
    const void* seen;
    const void* ring;
    void* graph;
  };
  static constexpr size_t kMaxStepGraphs = 4;
  std::vector<StepGraph> step_graphs;
  DeviceOps* ops = nullptr;
  ~SessionState();
};

struct GenerateStats {
  double prefill_ms = 0, decode_ms = 0, first_token_ms = 0;  // wall clock, host side
  int64_t prompt_tokens = 0;  // per sequence
  int64_t new_tokens = 0;     // sampled, over all sequences, until each stopped
  int steps = 0;              // decode steps run
  // Compaction (see ProgramExecutor::generate): how often the live sequences were moved to the
  // front of the state, the rows the decode steps computed (Σ over steps of the rows run), and
  // the rows of stopped sequences they did not compute (steps · batch − sequence_steps).
  int compactions = 0;
  int64_t sequence_steps = 0;
  int64_t skipped_sequence_steps = 0;
};

// Called after each sampled token: tokens [batch] (-1 for a sequence that stopped at an earlier
// step), done [batch] (1 once a sequence has stopped, its stop token included). Return false to stop generating.
using TokenCallback = std::function<bool(int index, const int32_t* tokens, const uint8_t* done)>;  // (also in strata_model_iface.h)

class ProgramExecutor {
 public:
  // `vocab` and `weight_bytes` (manifest order) come from the manifest.
  ProgramExecutor(const ProgramTables& t, std::unique_ptr<DeviceOps> ops, int64_t vocab, const std::vector<uint64_t>& weight_bytes);
  ~ProgramExecutor();

  void upload_weight(size_t index, const void* host, size_t nbytes);
  void weights_ready();  // runs the once-launches (parameter prep)

  // tokens [batch, seqlen] → logits [batch, seqlen, vocab] (host float32).
  void forward(const int32_t* tokens, int batch, int seqlen, float* logits);

  // State for `batch` sequences of up to `context` tokens (0: the compiled max context).
  std::unique_ptr<SessionState> create_state(int batch, int context = 0);
  // Starts the sequences (state reset) unless `cont`, then runs `seqlen` tokens per sequence.
  // logits: [batch, seqlen, vocab], or [batch, vocab] of the last position when `last_only`.
  void prefill(SessionState& s, const int32_t* tokens, int seqlen, bool cont, bool last_only, float* logits);
  // One token per sequence: tokens [batch] → logits [batch, vocab].
  void step(SessionState& s, const int32_t* tokens, float* logits);
  // Prompt [batch, prompt_len] (any length up to the context: prefilled in chunks of max_seq;
  // after the sequences' position when `cont`, else starting them anew),
  // then up to max_new sampled tokens per sequence → out [batch, max_new] (-1 after a sequence
  // stopped), lengths [batch]. A sequence stops at a stop token (included in its output) or at
  // max_new. Sampling runs on the device; only the chosen tokens come back each step.
  // Stopped sequences stop costing compute: the live ones are compacted to the front of the
  // state and the decode steps run fewer rows (program.cpp says when); the outputs, the callback's
  // arrays and the sampler's per-sequence streams keep the original order. Afterwards the
  // sequences that ran to the last step are back in their slots (a continuation goes on as
  // without compaction); one that was compacted out (it stopped earlier) has its slot cleared
  // (zeros: its slot may have held another sequence's state), as is its repetition-penalty row —
  // its history is gone, so do not continue it.
  // flags (strata.h): STRATA_GENERATE_CONTINUE (the prompt continues the sequences), STRATA_GENERATE_STREAM (cb only
  // observes: generate may queue steps ahead and call it for several steps at once).
  void generate(SessionState& s, const int32_t* prompt, int prompt_len, int max_new, uint32_t flags, const SamplingParams& p,
                const std::vector<int32_t>& stop, int32_t* out, int32_t* lengths, const TokenCallback& cb, GenerateStats* stats);

  // ---- training (a Program compiled with --train: the "train" schedule) ----
  bool has_train() const { return t_.grad_count > 0; }
  // tokens, targets (i32) and loss weights (f32), host [batch, seqlen]: forward + loss + backward on
  // the device. Returns the loss Σ w·CE / Σ w (NaN when Σ w = 0); the gradients stay on the device.
  float train_step(const int32_t* tokens, const int32_t* targets, const float* weights, int batch, int seqlen);
  // Weight i's compute copy (what the kernels read), and its f32 gradient from the last
  // train_step (a zeroed buffer when the loss does not reach the weight).
  void* weight_device(size_t i) { return weights_.at(i); }
  float* grad_device(size_t i);
  // Weight i's gradient from the last train_step to host f32 [count]. The gradients live in the
  // activation arena that every entry shares: any other call since (forward, prefill, step,
  // generate, a parameter prep) reuses that memory, so reading them then is an error
  // (STRATA_ERR_STATE), as is reading them before any train_step.
  void gradient_to_host(size_t i, float* out, size_t count);
  // After the compute copies changed (an optimizer step): recompute the values prepared from them.
  void params_changed() { weights_ready(); }
  void* stream() { return ops_->stream(); }

  const ProgramTables& tables() const { return t_; }
  uint64_t state_bytes_per_seq(int context) const;
  uint64_t arena_bytes() const { return arena_bytes_; }
  json::Value info() const;
  // STRATA_PROFILE=file: every schedule run times each launch (no decode graphs then: launches run
  // eagerly, each followed by an event); the destructor writes one CSV row per launch (schedule,
  // index, kernel, scope, calls, total ms, mean µs) to the file and a per-schedule summary to stderr.
  void set_profile(const std::string& path);
  // STRATA_TIME=1: forward() also times one pass of its kernels and prints it to stderr.
  void set_timing(bool on) { timing_ = on; }
  void set_graphs(bool on) { graphs_ = on; }
  int graph_replays() const { return replays_; }  // decode steps replayed from CUDA graphs (one- or multi-step)
  // Decode ahead: without stop tokens or a callback, generate queues up to this many decode steps
  // (sampling on the device) before it reads their tokens back (STRATA_DECODE_AHEAD; 1 = a round
  // trip per token).
  void set_decode_ahead(int steps) { ahead_ = steps < 1 ? 1 : steps; }
  // Multi-step decode graphs: with decode ahead, generate replays this many decode steps (each
  // with its sampler) as one CUDA graph launch, up to the ahead depth (STRATA_DECODE_GRAPH_STEPS;
  // 1 = one graph launch and one sampler launch per step).
  void set_decode_graph_steps(int steps) { graph_steps_ = steps < 1 ? 1 : steps; }
  int step_graph_replays() const { return step_replays_; }
  // Compaction of stopped sequences in generate (on by default; STRATA_COMPACT=0 turns it off).
  void set_compaction(bool on) { compact_ = on; }
  const GenerateStats& last_generate() const { return last_; }  // the latest generate's stats (also in info())

 private:
  const ScheduleEntry& schedule(const char* name) const;
  void run(const ScheduleEntry& s, const StrataDims& d, bool once, SessionState* state);
  void* resolve(const BufRef& r, SessionState* state) const;
  void upload_tokens(const int32_t* tokens, size_t n, int64_t past, int T);
  // Runs T tokens per sequence after st.position; leaves the logits in the arena (no copy).
  const ScheduleEntry& extend(SessionState& st, const int32_t* tokens, int T);
  void reset(SessionState& st);  // zero the state, position 0
  // One decode step of the first `rows` sequences for generate: the tokens are already in the
  // token buffer (the sampler put them there); replays the session's CUDA graph for `rows` when it can.
  // step_set: the step info (P) is already on the device (a decode-ahead sample fed it)
  const ScheduleEntry& decode_step(SessionState& st, int rows, bool step_set = false);
  // The session's graph of `steps` decode steps of `rows` rows, each followed by the sampler that
  // writes ring slot j and feeds the next step (captured on first use; nothing runs then), or null
  // where multi-step graphs do not apply (then they are turned off for this executor).
  void* step_graph(SessionState& st, int rows, int steps, const SamplingParams& p);
  // Moves whole sequences within the state (and the repetition-penalty set): slot `from` → slot
  // `to` for each pair, in order, on the device. The KV-like states copy only the tokens held.
  void move_sequences(SessionState& st, const std::vector<std::pair<int, int>>& moves);
  // Zeroes sequence b's slot in every state buffer (the tokens held of KV-like ones) and its
  // repetition-penalty row.
  void clear_sequence(SessionState& st, int b);
  void time_forward(const ScheduleEntry& s, const StrataDims& d);

  const ProgramTables& t_;
  std::unique_ptr<DeviceOps> ops_;
  int64_t vocab_;
  std::vector<uint64_t> weight_bytes_;
  std::vector<void*> weights_;
  void* arena_ = nullptr;
  uint64_t arena_bytes_ = 0;
  void* tokens_ = nullptr;
  void* positions_ = nullptr;
  void* prep_ = nullptr;
  int* step_info_ = nullptr;  // device {P, S} of a replayed decode step
  int64_t* step_base_ = nullptr;  // device {P0, step0, seed} of a multi-step graph replay (AheadFeed::base_dev)
  void* targets_ = nullptr;       // train: i32 [max_tokens]
  void* loss_weights_ = nullptr;  // train: f32 [max_tokens]
  void* zero_grad_ = nullptr;     // train: zeros, the gradient of weights the loss does not reach
  bool graphs_ = true;        // STRATA_CUDA_GRAPHS=0 turns the decode graphs off
  bool timing_ = false;
  std::string profile_path_;            // STRATA_PROFILE: where the per-launch table goes ("" = off)
  std::vector<double> profile_ms_;      // per launch (index into t_.launches): total milliseconds
  std::vector<int64_t> profile_calls_;  // and the number of timed runs
  void write_profile() const;
  bool compact_ = true;       // STRATA_COMPACT=0 turns compaction off
  int ahead_ = 16;            // decode-ahead depth (STRATA_DECODE_AHEAD)
  int graph_steps_ = 16;      // decode steps per multi-step graph (STRATA_DECODE_GRAPH_STEPS; ≤ ahead_ used)
  bool step_graphs_ok_ = true;  // false once a multi-step capture failed or the device has none
  int step_replays_ = 0;
  bool grads_valid_ = false;  // the arena holds the last train_step's gradients (no other run since)
  int replays_ = 0;
  GenerateStats last_;
};

// The CUDA implementation of DeviceOps (device_cuda.cu).
std::unique_ptr<DeviceOps> make_cuda_ops(int device);

}  // namespace strata
