// program.cpp — the generic executor of a compiled Program (see program.h). No CUDA here: the
// device is reached through DeviceOps, so the host tests run all of this on host memory.
#include "program.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>

namespace strata {

namespace {

constexpr size_t kAlign = 256;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

std::string mib(uint64_t bytes) {
  char b[64];
  std::snprintf(b, sizeof b, "%.1f MiB", bytes / 1048576.0);
  return b;
}

}  // namespace

SessionState::~SessionState() {
  if (!ops) return;
  for (auto& g : decode_graphs) ops->destroy_graph(g.second);
  for (auto& g : step_graphs) ops->destroy_graph(g.graph);
  for (void* p : buffers) ops->release(p);
  ops->release(seen);
}

ProgramExecutor::ProgramExecutor(const ProgramTables& t, std::unique_ptr<DeviceOps> ops, int64_t vocab,
                                 const std::vector<uint64_t>& weight_bytes)
    : t_(t), ops_(std::move(ops)), vocab_(vocab), weight_bytes_(weight_bytes) {
  if (const char* c = std::getenv("STRATA_COMPACT")) compact_ = std::strcmp(c, "0") != 0;
  if (const char* a = std::getenv("STRATA_DECODE_AHEAD")) {
    char* end = nullptr;
    const long n = std::strtol(a, &end, 10);
    if (end == a || *end || n < 1 || n > 4096)
      std::fprintf(stderr, "strata: STRATA_DECODE_AHEAD='%s' is not a step count in 1..4096 (1 = a round trip per step); using %d\n", a, ahead_);
    else
      set_decode_ahead(static_cast<int>(n));
  }
  if (const char* a = std::getenv("STRATA_DECODE_GRAPH_STEPS")) {
    char* end = nullptr;
    const long n = std::strtol(a, &end, 10);
    if (end == a || *end || n < 1 || n > 4096)
      std::fprintf(stderr, "strata: STRATA_DECODE_GRAPH_STEPS='%s' is not a step count in 1..4096 (1 = a graph launch per step); using %d\n", a,
                   graph_steps_);
    else
      set_decode_graph_steps(static_cast<int>(n));
  }
  for (int i = 0; i < t_.schedule_count; ++i) arena_bytes_ = std::max<uint64_t>(arena_bytes_, t_.schedules[i].arena_bytes);
  for (size_t i = 0; i < weight_bytes_.size(); ++i) weights_.push_back(ops_->alloc(align_up(weight_bytes_[i]), "weight " + std::to_string(i)));
  arena_ = ops_->alloc(align_up(arena_bytes_) + kAlign, "activation arena");
  tokens_ = ops_->alloc(align_up(static_cast<size_t>(t_.max_tokens) * sizeof(int32_t)), "token buffer");
  positions_ = ops_->alloc(align_up(static_cast<size_t>(t_.max_seq) * sizeof(int32_t)), "position buffer");
  prep_ = ops_->alloc(align_up(t_.prep_bytes) + kAlign, "prepared values");
  step_info_ = static_cast<int*>(ops_->alloc(kAlign, "decode step info"));
  step_base_ = static_cast<int64_t*>(ops_->alloc(kAlign, "decode step base"));
  if (t_.grad_count > 0) {
    if (t_.grad_count != static_cast<int>(weight_bytes_.size()))
      throw Error("the train schedule lists " + std::to_string(t_.grad_count) + " gradients for " + std::to_string(weight_bytes_.size()) + " weights",
                  STRATA_ERR_INTERNAL);
    targets_ = ops_->alloc(align_up(static_cast<size_t>(t_.max_tokens) * sizeof(int32_t)), "train targets");
    loss_weights_ = ops_->alloc(align_up(static_cast<size_t>(t_.max_tokens) * sizeof(float)), "train loss weights");
    size_t most = 0;
    for (int i = 0; i < t_.grad_count; ++i)
      if (t_.grads[i].offset == ~0ull) most = std::max<size_t>(most, weight_bytes_[t_.grads[i].weight] * 4);  // ≥ numel · 4 for bf16 / f32
    if (most) {
      zero_grad_ = ops_->alloc(align_up(most), "zero gradient");
      ops_->zero(zero_grad_, align_up(most));
    }
  }
}

ProgramExecutor::~ProgramExecutor() {
  if (!profile_path_.empty()) {
    try {
      write_profile();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "strata: profile not written: %s\n", e.what());
    }
  }
  for (void* p : weights_) ops_->release(p);
  ops_->release(arena_);
  ops_->release(tokens_);
  ops_->release(positions_);
  ops_->release(prep_);
  ops_->release(step_info_);
  ops_->release(step_base_);
  ops_->release(targets_);
  ops_->release(loss_weights_);
  ops_->release(zero_grad_);
}

void ProgramExecutor::upload_weight(size_t index, const void* host, size_t nbytes) {
  if (index >= weights_.size() || nbytes != weight_bytes_[index])
    throw Error("upload_weight: weight " + std::to_string(index) + " of " + std::to_string(nbytes) + " bytes does not match the program",
                STRATA_ERR_INTERNAL);
  ops_->h2d(weights_[index], host, nbytes);
}

void ProgramExecutor::weights_ready() {
  // parameter prep reads weights only and writes the prepared-values region, which every
  // schedule reads; each schedule's once-launches compute the values it uses
  const StrataDims one{1, 1, 0, 1, 0, nullptr};
  for (int i = 0; i < t_.schedule_count; ++i) run(t_.schedules[i], one, true, nullptr);
  ops_->sync();
}

const ScheduleEntry& ProgramExecutor::schedule(const char* name) const {
  for (int i = 0; i < t_.schedule_count; ++i)
    if (std::strcmp(t_.schedules[i].name, name) == 0) return t_.schedules[i];
  throw Error(std::string("this program has no '") + name + "' schedule; recompile it with this version of Strata", STRATA_ERR_STATE);
}

void* ProgramExecutor::resolve(const BufRef& r, SessionState* state) const {
  switch (r.kind) {
    case kArena:
      if (r.value >= arena_bytes_ + kAlign) throw Error("buffer offset outside the arena", STRATA_ERR_INTERNAL);
      return static_cast<char*>(arena_) + r.value;
    case kWeight:
      if (r.value >= weights_.size()) throw Error("weight index out of range", STRATA_ERR_INTERNAL);
      return weights_[r.value];
    case kPrep:
      if (r.value >= t_.prep_bytes) throw Error("prepared-value offset out of range", STRATA_ERR_INTERNAL);
      return static_cast<char*>(prep_) + r.value;
    case kTokens: return tokens_;
    case kTargets:
    case kLossWeights:
      if (!targets_) throw Error("a schedule reads the train inputs, but this program has no train entry", STRATA_ERR_INTERNAL);
      return r.kind == kTargets ? targets_ : loss_weights_;
    case kPositions: return positions_;
    case kState:
      if (!state) throw Error("a schedule without state reads a state buffer", STRATA_ERR_INTERNAL);
      if (r.value >= state->buffers.size()) throw Error("state index out of range", STRATA_ERR_INTERNAL);
      return state->buffers[r.value];
  }
  throw Error("unknown buffer kind", STRATA_ERR_INTERNAL);
}

void ProgramExecutor::run(const ScheduleEntry& s, const StrataDims& d, bool once, SessionState* state) {
  grads_valid_ = false;  // every schedule writes the shared arena (train_step sets it again after its run)
  void* ptrs[16];
  const bool profiling = !profile_path_.empty() && ops_->profile_begin(s.launch_count);
  std::vector<int> timed;  // the launches marked, in order
  for (int i = s.first_launch; i < s.first_launch + s.launch_count; ++i) {
    const LaunchEntry& l = t_.launches[i];
    if (l.once != once) continue;
    if (l.count > 16) throw Error("a launch takes more than 16 buffers", STRATA_ERR_INTERNAL);
    for (int k = 0; k < l.count; ++k) ptrs[k] = resolve(t_.bufs[l.first + k], state);
    if (l.op == kLaunchCopy) {
      ops_->d2d(ptrs[1], ptrs[0], static_cast<size_t>(l.bytes_per_seq) * d.B);
    } else {
      const int code = ops_->launch(t_.kernels[l.kernel].fn, ptrs, l.count, d);
      ops_->check_launch(code, std::string("kernel ") + l.name + " (" + l.scope + ")");
    }
    if (profiling) {
      ops_->profile_mark();
      timed.push_back(i);
    }
  }
  if (profiling) {
    const std::vector<float> ms = ops_->profile_end();
    for (size_t k = 0; k < timed.size() && k < ms.size(); ++k) {
      profile_ms_[timed[k]] += ms[k];
      profile_calls_[timed[k]] += 1;
    }
  }
}

void ProgramExecutor::set_profile(const std::string& path) {
  profile_path_ = path;
  int launches = 0;
  for (int i = 0; i < t_.schedule_count; ++i) launches = std::max(launches, t_.schedules[i].first_launch + t_.schedules[i].launch_count);
  profile_ms_.assign(static_cast<size_t>(launches), 0.0);
  profile_calls_.assign(static_cast<size_t>(launches), 0);
  if (!path.empty()) graphs_ = false;  // a replayed graph cannot be timed launch by launch
}

void ProgramExecutor::write_profile() const {
  FILE* f = std::fopen(profile_path_.c_str(), "w");
  if (!f) throw Error("cannot write the profile to " + profile_path_ + ": " + std::strerror(errno), STRATA_ERR_IO);
  std::fprintf(f, "schedule,index,kernel,scope,calls,total_ms,mean_us\n");
  for (int si = 0; si < t_.schedule_count; ++si) {
    const ScheduleEntry& s = t_.schedules[si];
    double total = 0;
    int64_t runs = 0;
    for (int i = s.first_launch; i < s.first_launch + s.launch_count; ++i) {
      if (!profile_calls_[i]) continue;
      const LaunchEntry& l = t_.launches[i];
      std::fprintf(f, "%s,%d,%s,%s,%lld,%.6f,%.3f\n", s.name, i - s.first_launch, l.op == kLaunchCopy ? "copy" : l.name, l.scope,
                   static_cast<long long>(profile_calls_[i]), profile_ms_[i], 1e3 * profile_ms_[i] / profile_calls_[i]);
      if (l.once) continue;  // parameter prep: timed once, not part of a run
      total += profile_ms_[i];
      runs = std::max(runs, profile_calls_[i]);
    }
    if (runs) std::fprintf(stderr, "strata profile: %s: %lld timed runs, %.3f ms of launches per run\n", s.name, static_cast<long long>(runs), total / runs);
  }
  std::fclose(f);
  std::fprintf(stderr, "strata profile: per-launch times in %s\n", profile_path_.c_str());
}

void ProgramExecutor::upload_tokens(const int32_t* tokens, size_t n, int64_t past, int T) {
  ops_->h2d(tokens_, tokens, n * sizeof(int32_t));
  std::vector<int32_t> pos(static_cast<size_t>(T));
  for (int t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(past + t);
  ops_->h2d(positions_, pos.data(), pos.size() * sizeof(int32_t));
}

void ProgramExecutor::forward(const int32_t* tokens, int batch, int seqlen, float* logits) {
  if (batch < 1 || batch > t_.max_batch || seqlen < 1 || seqlen > t_.max_seq || static_cast<int64_t>(batch) * seqlen > t_.max_tokens)
    throw Error("forward: batch " + std::to_string(batch) + " × seqlen " + std::to_string(seqlen) + " outside the compiled 1.." +
                std::to_string(t_.max_batch) + " × 1.." + std::to_string(t_.max_seq) + " with at most " + std::to_string(t_.max_tokens) +
                " tokens per call");
  const ScheduleEntry& s = schedule("forward");
  const StrataDims d{batch, seqlen, 0, seqlen, 0, nullptr};
  upload_tokens(tokens, static_cast<size_t>(batch) * seqlen, 0, seqlen);
  if (timing_) time_forward(s, d);
  run(s, d, false, nullptr);
  ops_->logits_to_host(logits, static_cast<char*>(arena_) + s.logits_offset, static_cast<size_t>(batch) * seqlen, vocab_, vocab_);
  ops_->sync();
}

float ProgramExecutor::train_step(const int32_t* tokens, const int32_t* targets, const float* weights, int batch, int seqlen) {
  if (!has_train()) throw Error("train: this model was compiled without the train entry; recompile it with `strata compile --train`", STRATA_ERR_STATE);
  if (batch < 1 || batch > t_.max_batch || seqlen < 1 || seqlen > t_.max_seq || static_cast<int64_t>(batch) * seqlen > t_.max_tokens)
    throw Error("train: batch " + std::to_string(batch) + " × seqlen " + std::to_string(seqlen) + " outside the compiled 1.." +
                    std::to_string(t_.max_batch) + " × 1.." + std::to_string(t_.max_seq) + " with at most " + std::to_string(t_.max_tokens) +
                    " tokens per call",
                STRATA_ERR_INVALID_ARGUMENT);
  const ScheduleEntry& s = schedule("train");
  const size_t n = static_cast<size_t>(batch) * seqlen;
  for (size_t i = 0; i < n; ++i)
    if (targets[i] < 0 || targets[i] >= vocab_)
      throw Error("train: target " + std::to_string(targets[i]) + " at position " + std::to_string(i) + " is outside the vocabulary [0, " +
                      std::to_string(vocab_) + ")",
                  STRATA_ERR_INVALID_ARGUMENT);
  const StrataDims d{batch, seqlen, 0, seqlen, 0, nullptr};
  upload_tokens(tokens, n, 0, seqlen);
  ops_->h2d(targets_, targets, n * sizeof(int32_t));
  ops_->h2d(loss_weights_, weights, n * sizeof(float));
  run(s, d, false, nullptr);
  grads_valid_ = true;
  float loss = 0.f;
  ops_->d2h(&loss, static_cast<char*>(arena_) + s.logits_offset, sizeof loss);
  return loss;
}

void ProgramExecutor::gradient_to_host(size_t i, float* out, size_t count) {
  if (!has_train()) throw Error("gradient: this model was compiled without the train entry; recompile it with `strata compile --train`", STRATA_ERR_STATE);
  if (!grads_valid_)
    throw Error("gradient: no gradients to read — run train_step first; a forward, prefill, step or generate call since the last train_step "
                "reuses the memory that held them",
                STRATA_ERR_STATE);
  ops_->d2h(out, grad_device(i), count * sizeof(float));
}

float* ProgramExecutor::grad_device(size_t i) {
  if (!has_train() || i >= weights_.size()) throw Error("grad_device: no gradient " + std::to_string(i), STRATA_ERR_INTERNAL);
  const uint64_t off = t_.grads[i].offset;
  return static_cast<float*>(off == ~0ull ? zero_grad_ : static_cast<void*>(static_cast<char*>(arena_) + off));
}

void ProgramExecutor::time_forward(const ScheduleEntry& s, const StrataDims& d) {
  run(s, d, false, nullptr);  // warm-up
  std::vector<float> ms;
  for (int i = 0; i < 5; ++i) ms.push_back(ops_->elapsed_ms([&] { run(s, d, false, nullptr); }));
  std::sort(ms.begin(), ms.end());
  std::fprintf(stderr, "forward time (kernels only, batch %d × seq %d): %.3f ms (fastest of 5; median %.3f ms)\n", d.B, d.T, ms[0], ms[2]);
}

namespace {
uint64_t state_buffer_bytes(const StateEntry& e, int batch, int context) {
  return align_up((e.bytes_per_seq + e.bytes_per_token * static_cast<uint64_t>(context)) * batch);
}
}  // namespace

uint64_t ProgramExecutor::state_bytes_per_seq(int context) const {
  uint64_t n = 0;
  for (int i = 0; i < t_.state_count; ++i) n += state_buffer_bytes(t_.states[i], 1, context);
  return n;
}

std::unique_ptr<SessionState> ProgramExecutor::create_state(int batch, int context) {
  if (batch < 1 || batch > t_.max_batch)
    throw Error("create_state: batch " + std::to_string(batch) + " outside the compiled 1.." + std::to_string(t_.max_batch));
  if (context == 0) context = t_.max_context;
  if (context < 1 || context > t_.max_context)
    throw Error("create_state: context " + std::to_string(context) + " outside 1.." + std::to_string(t_.max_context) +
                " (the compiled --max-context)");
  uint64_t need = 0;
  for (int i = 0; i < t_.state_count; ++i) need += state_buffer_bytes(t_.states[i], batch, context);
  const size_t avail = ops_->free_bytes();
  if (avail && need > avail)
    throw Error("create_state: the state of " + std::to_string(batch) + " sequences of up to " + std::to_string(context) + " tokens needs " +
                    mib(need) + " but the device has " + mib(avail) + " free; use a smaller batch or context",
                STRATA_ERR_OUT_OF_MEMORY);
  std::unique_ptr<SessionState> s(new SessionState());
  s->ops = ops_.get();
  s->batch = batch;
  s->capacity = context;
  for (int i = 0; i < t_.state_count; ++i) {
    const size_t bytes = state_buffer_bytes(t_.states[i], batch, context);
    s->buffers.push_back(ops_->alloc(bytes, std::string("state ") + t_.states[i].name));
    ops_->zero(s->buffers.back(), bytes);
  }
  return s;
}

void ProgramExecutor::prefill(SessionState& st, const int32_t* tokens, int seqlen, bool cont, bool last_only, float* logits) {
  if (seqlen < 1 || seqlen > t_.max_seq || static_cast<int64_t>(st.batch) * seqlen > t_.max_tokens)
    throw Error("prefill: " + std::to_string(seqlen) + " tokens per sequence × " + std::to_string(st.batch) + " sequences; this model takes 1.." +
                std::to_string(std::min(t_.max_seq, t_.max_tokens / st.batch)) + " per sequence per call (" + std::to_string(t_.max_tokens) +
                " tokens in all; feed longer prompts in chunks: prefill, then continue)");
  const int64_t past = cont ? st.position : 0;
  if (past + seqlen > st.capacity)
    throw Error("prefill: " + std::to_string(past) + " past + " + std::to_string(seqlen) + " new tokens exceed the state's context of " +
                std::to_string(st.capacity) + " (create the state with a larger context, up to the compiled --max-context " +
                std::to_string(t_.max_context) + ")");
  if (!cont) reset(st);
  const ScheduleEntry& s = extend(st, tokens, seqlen);
  const char* base = static_cast<char*>(arena_) + s.logits_offset;
  if (last_only) {
    // row (b, T−1) of each sequence: stride T rows between sequences
    ops_->logits_to_host(logits, base + static_cast<size_t>(seqlen - 1) * vocab_ * 2, st.batch, vocab_, static_cast<size_t>(seqlen) * vocab_);
  } else {
    ops_->logits_to_host(logits, base, static_cast<size_t>(st.batch) * seqlen, vocab_, vocab_);
  }
  ops_->sync();
}

void ProgramExecutor::step(SessionState& st, const int32_t* tokens, float* logits) {
  if (st.position < 1) throw Error("step: the sequences are empty; prefill a prompt first", STRATA_ERR_STATE);
  if (st.position + 1 > st.capacity)
    throw Error("step: the sequences already hold " + std::to_string(st.position) + " tokens, the state's context", STRATA_ERR_STATE);
  const ScheduleEntry& s = extend(st, tokens, 1);
  ops_->logits_to_host(logits, static_cast<char*>(arena_) + s.logits_offset, st.batch, vocab_, vocab_);
  ops_->sync();
}

const ScheduleEntry& ProgramExecutor::decode_step(SessionState& st, int rows, bool step_set) {
  const ScheduleEntry& s = schedule("cached");
  grads_valid_ = false;  // a replayed graph writes the arena without run()
  if (!step_set) ops_->set_step(step_info_, static_cast<int32_t*>(positions_), st.position);
  // the replayed launches read P and S from step_info_; the host values are the capture's. The
  // rows (B) are baked into a graph: one graph per number of rows (SessionState::decode_graphs).
  const StrataDims d{rows, 1, static_cast<int>(st.position), static_cast<int>(st.position + 1), st.capacity, step_info_};
  void* graph = nullptr;
  for (auto& g : st.decode_graphs)
    if (g.first == rows) graph = g.second;
  if (graphs_ && !graph && st.position > 0) {
    run(s, d, false, &st);  // this step, eagerly: one-time setup (workspaces, attributes) happens outside the capture
    if (ops_->begin_capture()) {
      // record the same launches (nothing runs) for the next steps to replay
      try {
        run(s, d, false, &st);
      } catch (const Error&) {
        ops_->end_capture();  // ends the capture; the graph is discarded
        graphs_ = false;      // not capturable here: stay eager
      }
      if (graphs_) graph = ops_->end_capture();
      if (graph) st.decode_graphs.emplace_back(rows, graph);
      else graphs_ = false;
    } else {
      graphs_ = false;
    }
  } else if (graphs_ && graph) {
    ops_->replay(graph);
    ++replays_;
  } else {
    run(s, d, false, &st);
  }
  st.position += 1;
  return s;
}

void* ProgramExecutor::step_graph(SessionState& st, int rows, int steps, const SamplingParams& p) {
  const void* ring = ops_->ahead_ring(static_cast<size_t>(rows), ahead_);  // before any capture: it may allocate and wait
  if (!ring) {
    step_graphs_ok_ = false;
    return nullptr;
  }
  for (const auto& g : st.step_graphs)
    if (g.rows == rows && g.steps == steps && g.seen == st.seen && g.ring == ring && g.p.temperature == p.temperature && g.p.top_k == p.top_k &&
        g.p.top_p == p.top_p && g.p.repetition_penalty == p.repetition_penalty)
      return g.graph;
  // Record `steps` copies of the step schedule, each followed by its sampler. Every value that
  // changes from step to step is read from the device when the graph runs: the kernels take the
  // position from step_info_ (d.dev: P, S; the P and S of `d` are the capture's and unused, as in
  // a replay of the one-step graph) and positions_, the tokens from tokens_; the sampler takes
  // the next position, its draw's step and the seed from step_base_ (set before each replay) plus
  // the iteration j it was captured as, writes ring slot j, and feeds the next iteration's
  // tokens_, step_info_ and positions_. What stays fixed — B = rows, T = 1, C = the capacity,
  // the buffers, the sampling parameters other than the seed, the ring — is the same at every
  // replay (or part of the key above).
  const ScheduleEntry& s = schedule("cached");
  const StrataDims d{rows, 1, static_cast<int>(st.position), static_cast<int>(st.position + 1), st.capacity, step_info_};
  const char* logits = static_cast<char*>(arena_) + s.logits_offset;
  if (!ops_->begin_capture()) {
    step_graphs_ok_ = false;
    return nullptr;
  }
  bool fed = true;  // every captured sampler feeds the next iteration (else the graph is useless)
  try {
    for (int j = 0; j < steps; ++j) {
      run(s, d, false, &st);
      const AheadFeed next{tokens_, step_info_, static_cast<int32_t*>(positions_), j + 1, step_base_};
      fed = ops_->sample_ahead(logits, static_cast<size_t>(rows), vocab_, vocab_, p, static_cast<uint64_t>(j), st.seen, j, ahead_, &next) && fed;
    }
  } catch (const Error&) {
    fed = false;
  }
  void* graph = ops_->end_capture();  // nothing ran: the state and the position are as before
  if (!fed || !graph) {
    if (graph) ops_->destroy_graph(graph);
    if (std::getenv("STRATA_VERBOSE_GRAPHS")) std::fprintf(stderr, "strata: multi-step decode graph not captured; one graph per step\n");
    step_graphs_ok_ = false;
    return nullptr;
  }
  if (st.step_graphs.size() >= SessionState::kMaxStepGraphs) {
    ops_->destroy_graph(st.step_graphs.front().graph);  // (one still running is freed when it completes)
    st.step_graphs.erase(st.step_graphs.begin());
  }
  st.step_graphs.push_back(SessionState::StepGraph{rows, steps, p, st.seen, ring, graph});
  return graph;
}

void ProgramExecutor::move_sequences(SessionState& st, const std::vector<std::pair<int, int>>& moves) {
  for (int i = 0; i < t_.state_count; ++i) {
    const StateEntry& e = t_.states[i];
    // a sequence's block: fixed bytes, or `capacity` rows of bytes_per_token (token-major, so
    // the rows 0..position−1 it holds are a prefix; the rest is never read)
    const uint64_t block = e.bytes_per_seq + e.bytes_per_token * static_cast<uint64_t>(st.capacity);
    const uint64_t used = e.bytes_per_token && !e.bytes_per_seq ? e.bytes_per_token * static_cast<uint64_t>(st.position) : block;
    char* base = static_cast<char*>(st.buffers[i]);
    for (const auto& m : moves) ops_->d2d(base + block * m.second, base + block * m.first, used);  // distinct slots: no overlap
  }
  if (st.seen)
    for (const auto& m : moves) ops_->d2d(st.seen + static_cast<size_t>(m.second) * vocab_, st.seen + static_cast<size_t>(m.first) * vocab_, vocab_);
}

void ProgramExecutor::clear_sequence(SessionState& st, int b) {
  for (int i = 0; i < t_.state_count; ++i) {
    const StateEntry& e = t_.states[i];
    const uint64_t block = e.bytes_per_seq + e.bytes_per_token * static_cast<uint64_t>(st.capacity);
    const uint64_t used = e.bytes_per_token && !e.bytes_per_seq ? e.bytes_per_token * static_cast<uint64_t>(st.position) : block;
    ops_->zero(static_cast<char*>(st.buffers[i]) + block * static_cast<uint64_t>(b), used);
  }
  if (st.seen) ops_->zero(st.seen + static_cast<size_t>(b) * vocab_, vocab_);
}

void ProgramExecutor::reset(SessionState& st) {
  for (int i = 0; i < t_.state_count; ++i) ops_->zero(st.buffers[i], state_buffer_bytes(t_.states[i], st.batch, st.capacity));
  st.position = 0;
}

const ScheduleEntry& ProgramExecutor::extend(SessionState& st, const int32_t* tokens, int T) {
  const ScheduleEntry& s = schedule("cached");
  const StrataDims d{st.batch, T, static_cast<int>(st.position), static_cast<int>(st.position + T), st.capacity, nullptr};
  upload_tokens(tokens, static_cast<size_t>(st.batch) * T, st.position, T);
  run(s, d, false, &st);
  st.position += T;
  return s;
}

void ProgramExecutor::generate(SessionState& st, const int32_t* prompt, int prompt_len, int max_new, uint32_t flags, const SamplingParams& p,
                               const std::vector<int32_t>& stop, int32_t* out, int32_t* lengths, const TokenCallback& cb, GenerateStats* stats) {
  const bool cont = (flags & STRATA_GENERATE_CONTINUE) != 0;
  const bool observer = (flags & STRATA_GENERATE_STREAM) != 0;  // cb cannot stop generation
  using clock = std::chrono::steady_clock;
  const auto ms = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  if (prompt_len < 1) throw Error("generate: the prompt is empty; give at least one token per sequence");
  if (max_new < 1) throw Error("generate: max new tokens must be at least 1, got " + std::to_string(max_new));
  // the last sampled token is never fed back: prompt + max_new − 1 positions
  const int64_t past = cont ? st.position : 0;
  if (past + prompt_len + max_new - 1 > st.capacity)
    throw Error("generate: " + (past ? std::to_string(past) + " past tokens + " : std::string()) + "a prompt of " + std::to_string(prompt_len) + " tokens + " + std::to_string(max_new) +
                " new ones exceed the state's context of " + std::to_string(st.capacity) + " (up to the compiled --max-context " +
                std::to_string(t_.max_context) + ")");
  if (!(p.temperature >= 0.f) || p.top_k < 0 || !(p.top_p > 0.f && p.top_p <= 1.f) || !(p.repetition_penalty > 0.f))
    throw Error("generate: sampling needs temperature ≥ 0, top_k ≥ 0, top_p in (0, 1] and repetition_penalty > 0");
  const int B = st.batch;
  const bool penal = p.repetition_penalty != 1.f;
  if (penal && !st.seen) {
    st.seen = static_cast<uint8_t*>(ops_->alloc(static_cast<size_t>(B) * vocab_, "repetition-penalty token set"));
    ops_->zero(st.seen, static_cast<size_t>(B) * vocab_);  // (a continued sequence's earlier tokens are not known)
  } else if (penal && !cont) {
    ops_->zero(st.seen, static_cast<size_t>(B) * vocab_);
  }
  GenerateStats local;
  GenerateStats& S = stats ? *stats : local;
  S = GenerateStats{};
  S.prompt_tokens = prompt_len;
  const auto t0 = clock::now();

  // prompt: chunks of at most max_seq tokens per call, starting the sequences anew (or not)
  if (!cont) reset(st);
  std::vector<int32_t> chunk;
  std::vector<int32_t> next(static_cast<size_t>(B));
  const ScheduleEntry* s = nullptr;
  int T = 0;
  for (int off = 0; off < prompt_len; off += T) {
    T = std::min({t_.max_seq, t_.max_tokens / B, prompt_len - off});
    chunk.resize(static_cast<size_t>(B) * T);
    for (int b = 0; b < B; ++b) std::memcpy(&chunk[static_cast<size_t>(b) * T], prompt + static_cast<size_t>(b) * prompt_len + off, T * sizeof(int32_t));
    s = &extend(st, chunk.data(), T);
    if (penal) ops_->mark_seen(st.seen, vocab_, tokens_, B, T);
  }
  // Row r of the decode steps holds sequence seq_of_row[r]; `rows` of them run. Compaction
  // (below) moves the live sequences to the front of every state buffer, so a decode step computes
  // `rows` < B sequences. It is valid because all sequences of a batch share one position P (they
  // started together and advance together): the smaller batch is the same computation for the
  // rows it keeps. The sampler keys its draws by the original sequence index (sample_rows), the
  // repetition-penalty rows move with their sequences, and every host-side array keeps the
  // original order, so each sequence's tokens are those of the uncompacted run.
  std::vector<int32_t> seq_of_row(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) seq_of_row[b] = b;
  int rows = B;
  // a draw with temperature > 0 needs a sampler that takes the map; greedy draws nothing
  const bool may_compact = compact_ && (p.temperature <= 0.f || ops_->samples_by_sequence());
  std::vector<int32_t> sampled(static_cast<size_t>(B));  // by row
  const char* logits = static_cast<char*>(arena_) + s->logits_offset;
  ops_->sample_rows(logits + static_cast<size_t>(T - 1) * vocab_ * 2, B, vocab_, static_cast<size_t>(T) * vocab_, p, 0, st.seen, seq_of_row.data(),
                    next.data());
  const auto t1 = clock::now();
  S.first_token_ms = S.prefill_ms = ms(t0, t1);

  // Decode ahead: with no stop token and no callback that could stop it (none, or an observer),
  // every sequence runs to max_new and nothing needs a token before the next step, so up to
  // ahead_ steps are queued at a time — each samples into a device ring and feeds the next step
  // from it — and their tokens come back in one copy (an observer sees them then, step by step).
  // The same kernels and the same sampler draws (keyed by seed, sequence, step) as one round trip
  // per step, so the same tokens; only the host's waits are gone.
  if (stop.empty() && (!cb || observer) && ahead_ > 1 && max_new > 1 && ops_->can_decode_ahead()) {
    for (int b = 0; b < B; ++b) {
      out[static_cast<size_t>(b) * max_new] = next[b];
      lengths[b] = max_new;
    }
    S.new_tokens = static_cast<int64_t>(B) * max_new;
    std::vector<uint8_t> running(static_cast<size_t>(B), 0), finished(static_cast<size_t>(B), 1);
    if (cb) cb(0, next.data(), running.data());
    std::vector<int32_t> ring;
    int prev = -1;     // the ring slot holding the tokens the next step reads (-1: the prefill's sample)
    bool fed = false;  // the last sample also wrote the next step's tokens and position
    // Multi-step graphs: a batch of exactly G steps (G = the graph steps, at most the ahead depth)
    // replays one graph of G steps with their samplers — one launch instead of 2·G — once the
    // one-step graph of B rows exists (its first, eager step did the launchers' one-time setup
    // outside any capture). A shorter batch (the tail) steps one by one as below, so no step runs
    // past max_new, nor past the context checked above. The graph is captured (a one-time cost
    // per state and sampling settings, the seed aside) as soon as the one-step graph exists —
    // after the first batch of a state's first generate, even one too short to replay it — so
    // that the next batch or generate replays it at once.
    const int G = std::min(graph_steps_, ahead_);
    const auto multi_ready = [&] {
      if (G <= 1 || !graphs_ || !step_graphs_ok_) return false;
      for (const auto& g : st.decode_graphs)
        if (g.first == B) return true;
      return false;
    };
    for (int i = 1; i < max_new;) {
      int K = std::min(ahead_, max_new - i);
      void* graph = K >= G && multi_ready() ? step_graph(st, B, G, p) : nullptr;
      if (graph) {
        K = G;
        if (!fed) {
          if (prev < 0) ops_->last_sampled_to(tokens_, static_cast<size_t>(B));
          else ops_->ahead_to_tokens(tokens_, static_cast<size_t>(B), prev);
        }
        ops_->set_step_base(step_info_, static_cast<int32_t*>(positions_), step_base_, st.position, static_cast<uint64_t>(i), p.seed);
        grads_valid_ = false;
        ops_->replay(graph);
        replays_ += K;  // decode steps replayed from graphs
        ++step_replays_;
        st.position += K;
        fed = true;  // the last sampler fed the next step (tokens and position)
        prev = K - 1;
      }
      for (int j = 0; !graph && j < K; ++j) {
        if (!fed) {
          if (prev < 0) ops_->last_sampled_to(tokens_, static_cast<size_t>(B));
          else ops_->ahead_to_tokens(tokens_, static_cast<size_t>(B), prev);
        }
        decode_step(st, B, fed);
        const AheadFeed next{tokens_, step_info_, static_cast<int32_t*>(positions_), st.position};  // decode_step advanced the position
        fed = ops_->sample_ahead(logits, static_cast<size_t>(B), vocab_, vocab_, p, static_cast<uint64_t>(i + j), st.seen, j, ahead_,
                                 i + j + 1 < max_new ? &next : nullptr);
        prev = j;
      }
      ring.resize(static_cast<size_t>(K) * B);
      ops_->fetch_ahead(ring.data(), static_cast<size_t>(B), K);
      for (int j = 0; j < K; ++j) {
        for (int b = 0; b < B; ++b) out[static_cast<size_t>(b) * max_new + i + j] = ring[static_cast<size_t>(j) * B + b];
        if (cb) cb(i + j, ring.data() + static_cast<size_t>(j) * B, (i + j + 1 == max_new ? finished : running).data());
      }
      S.steps += K;
      S.sequence_steps += static_cast<int64_t>(K) * B;
      i += K;
      if (!graph && multi_ready()) step_graph(st, B, G, p);  // capture it now (nothing runs), if not yet
    }
    S.decode_ms = ms(t1, clock::now());
    last_ = S;
    return;
  }

  std::vector<uint8_t> done(static_cast<size_t>(B), 0);
  std::vector<int32_t> emitted(static_cast<size_t>(B));
  std::vector<std::pair<int, int>> moves;
  for (int b = 0; b < B; ++b) lengths[b] = 0;
  for (int i = 0;; ++i) {
    int running = 0;
    for (int b = 0; b < B; ++b) {
      int32_t& o = out[static_cast<size_t>(b) * max_new + i];
      if (done[b]) {
        o = emitted[b] = -1;
        continue;
      }
      emitted[b] = next[b];
      o = next[b];
      lengths[b] = i + 1;
      ++S.new_tokens;
      if (std::find(stop.begin(), stop.end(), next[b]) != stop.end() || i + 1 == max_new) done[b] = 1;
      running += !done[b];
    }
    const bool go_on = cb ? cb(i, emitted.data(), done.data()) : true;
    if (!go_on || running == 0 || i + 1 == max_new) {
      for (int j = i + 1; j < max_new; ++j)
        for (int b = 0; b < B; ++b) out[static_cast<size_t>(b) * max_new + j] = -1;
      break;
    }
    // Compact when it pays: the live sequences are at most 3/4 of the rows run (so a copy of
    // the live states buys ≥ 1/4 fewer rows on every later step, and the sizes met stay few:
    // each needs its own CUDA graph), and at least kMinSteps decode steps may remain (a copy
    // moves each live state once; a step reads each once — fewer remaining steps rarely repay it).
    constexpr int kMinSteps = 4;
    if (may_compact && running * 4 <= rows * 3 && max_new - 1 - i >= kMinSteps) {
      moves.clear();
      int kept = 0;
      for (int r = 0; r < rows; ++r) {
        if (done[seq_of_row[r]]) continue;
        if (kept != r) moves.emplace_back(r, kept);  // kept < r: the slot's sequence has stopped or already moved
        seq_of_row[kept++] = seq_of_row[r];
      }
      move_sequences(st, moves);
      rows = kept;
      ++S.compactions;
      for (int r = 0; r < rows; ++r) sampled[r] = next[seq_of_row[r]];
      ops_->h2d(tokens_, sampled.data(), static_cast<size_t>(rows) * sizeof(int32_t));  // the device's sampled rows are in the old order
    } else {
      ops_->last_sampled_to(tokens_, static_cast<size_t>(rows));  // the sampled tokens feed the next step on the device
    }
    decode_step(st, rows);
    ops_->sample_rows(logits, rows, vocab_, vocab_, p, static_cast<uint64_t>(i + 1), st.seen, seq_of_row.data(), sampled.data());
    for (int r = 0; r < rows; ++r) next[seq_of_row[r]] = sampled[r];
    ++S.steps;
    S.sequence_steps += rows;
  }
  // Back to the original slots: the sequences still in rows (they ran to the last step) continue
  // as without compaction. seq_of_row is increasing with seq_of_row[r] ≥ r, so going from the
  // last row down never overwrites a row not yet moved.
  moves.clear();
  for (int r = rows - 1; r >= 0; --r)
    if (seq_of_row[r] != r) moves.emplace_back(r, seq_of_row[r]);
  if (!moves.empty()) move_sequences(st, moves);
  // A sequence compacted out of the rows may have had its slot reused by another: clear it (state
  // and repetition-penalty row), so a continuation never reads another sequence's history there.
  if (rows < B) {
    std::vector<uint8_t> kept(static_cast<size_t>(B), 0);
    for (int r = 0; r < rows; ++r) kept[seq_of_row[r]] = 1;
    for (int b = 0; b < B; ++b)
      if (!kept[b]) clear_sequence(st, b);
  }
  S.skipped_sequence_steps = static_cast<int64_t>(S.steps) * B - S.sequence_steps;
  S.decode_ms = ms(t1, clock::now());
  last_ = S;
}

json::Value ProgramExecutor::info() const {
  json::Value v = json::Value::object();
  json::Value::Array ks;
  for (int i = 0; i < t_.schedule_count; ++i) {
    const ScheduleEntry& s = t_.schedules[i];
    if (std::strcmp(s.name, "forward") != 0) continue;
    for (int k = s.first_launch; k < s.first_launch + s.launch_count; ++k) ks.push_back(json::Value(t_.launches[k].name));
  }
  v.set("launches", json::Value(ks));
  v.set("arenaBytes", static_cast<uint64_t>(arena_bytes_));
  v.set("stateBytesPerSequence", static_cast<uint64_t>(state_bytes_per_seq(t_.max_context)));
  v.set("maxContext", static_cast<int64_t>(t_.max_context));
  v.set("maxTokensPerCall", static_cast<int64_t>(t_.max_tokens));
  v.set("cudaGraphs", graphs_);
  v.set("decodeGraphReplays", static_cast<int64_t>(replays_));
  v.set("decodeGraphSteps", static_cast<int64_t>(step_graphs_ok_ && graphs_ ? std::min(graph_steps_, ahead_) : 1));
  v.set("multiStepGraphReplays", static_cast<int64_t>(step_replays_));
  v.set("compaction", compact_);
  json::Value g = json::Value::object();
  g.set("steps", static_cast<int64_t>(last_.steps));
  g.set("compactions", static_cast<int64_t>(last_.compactions));
  g.set("sequenceSteps", last_.sequence_steps);
  g.set("skippedSequenceSteps", last_.skipped_sequence_steps);
  v.set("lastGenerate", g);
  return v;
}

}  // namespace strata
