// program_model.cu — the strata::Model every compiled project uses: the generic ProgramExecutor
// (program.cpp) over the tables of the generated model.cu, on CUDA (this file's DeviceOps).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "check.h"
#include "init_device.h"
#include "program.h"
#include "sampling.h"
#include "strata_model_iface.h"
#include "train.h"

namespace strata {
namespace {

// STRATA_PROFILE: holds the stream for `ns` nanoseconds of device time.
__global__ void profile_spin_kernel(long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  } while (static_cast<long long>(t - t0) < ns);
}

__global__ void set_step_kernel(int* info, int32_t* positions, long long P) {
  info[0] = static_cast<int>(P);
  info[1] = static_cast<int>(P + 1);
  positions[0] = static_cast<int32_t>(P);
}

// before a multi-step decode graph replay: the first step's position and the samplers' base
__global__ void set_step_base_kernel(int* info, int32_t* positions, int64_t* base, long long P, unsigned long long step, unsigned long long seed) {
  info[0] = static_cast<int>(P);
  info[1] = static_cast<int>(P + 1);
  positions[0] = static_cast<int32_t>(P);
  base[0] = P;
  base[1] = static_cast<int64_t>(step);
  base[2] = static_cast<int64_t>(seed);
}

__global__ void bf16_rows_to_f32(const __nv_bfloat16* in, float* out, size_t rows, size_t cols, size_t in_stride) {
  const size_t n = rows * cols;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t r = i / cols, c = i % cols;
    out[i] = __bfloat162float(in[r * in_stride + c]);
  }
}

class CudaOps : public DeviceOps {
 public:
  explicit CudaOps(int device) {
    CUDA_CHECK(cudaSetDevice(device));
    CUDA_CHECK(cudaStreamCreate(&stream_));
  }
  ~CudaOps() override {
    if (staging_) cudaFree(staging_);
    if (sampled_) cudaFree(sampled_);
    if (seq_dev_) cudaFree(seq_dev_);
    if (ring_) cudaFree(ring_);
    for (cudaEvent_t e : marks_) cudaEventDestroy(e);
    cudaStreamDestroy(stream_);
  }
  void* alloc(size_t bytes, const std::string& what) override {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
      size_t free_b = 0, total = 0;
      cudaMemGetInfo(&free_b, &total);
      throw Error("cannot allocate " + std::to_string(bytes) + " bytes of device memory for the " + what + " (" + std::to_string(free_b) +
                      " bytes free): " + cudaGetErrorString(e),
                  STRATA_ERR_OUT_OF_MEMORY);
    }
    return p;
  }
  void release(void* p) override {
    if (p) cudaFree(p);
  }
  void h2d(void* dst, const void* src, size_t n) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));  // `src` is only valid during the call
  }
  void d2d(void* dst, const void* src, size_t n) override {
    if (n) CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream_));
  }
  void d2h(void* dst, const void* src, size_t n) override {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void zero(void* dst, size_t n) override {
    if (n) CUDA_CHECK(cudaMemsetAsync(dst, 0, n, stream_));
  }
  void logits_to_host(float* dst, const void* src, size_t rows, size_t cols, size_t src_stride) override {
    const size_t bytes = rows * cols * sizeof(float);
    if (bytes > staging_bytes_) {
      if (staging_) CUDA_CHECK(cudaFree(staging_));
      staging_ = nullptr;
      staging_ = static_cast<float*>(alloc(bytes, "logits staging buffer"));
      staging_bytes_ = bytes;
    }
    bf16_rows_to_f32<<<1024, 256, 0, stream_>>>(static_cast<const __nv_bfloat16*>(src), staging_, rows, cols, src_stride);
    STRATA_LAUNCH_CHECK("bf16_rows_to_f32");
    CUDA_CHECK(cudaMemcpyAsync(dst, staging_, bytes, cudaMemcpyDeviceToHost, stream_));
  }
  void sample(const void* logits, size_t rows, size_t vocab, size_t stride, const SamplingParams& p, uint64_t step, uint8_t* seen,
              int32_t* tokens_host) override {
    sample_rows(logits, rows, vocab, stride, p, step, seen, nullptr, tokens_host);
  }
  bool samples_by_sequence() const override { return true; }
  void sample_rows(const void* logits, size_t rows, size_t vocab, size_t stride, const SamplingParams& p, uint64_t step, uint8_t* seen,
                   const int32_t* seq_of_row, int32_t* tokens_host) override {
    if (rows > sampled_cap_) {
      if (sampled_) CUDA_CHECK(cudaFree(sampled_));
      if (seq_dev_) CUDA_CHECK(cudaFree(seq_dev_));
      sampled_ = seq_dev_ = nullptr;
      sampled_ = static_cast<int32_t*>(alloc(rows * sizeof(int32_t), "sampled tokens"));
      seq_dev_ = static_cast<int32_t*>(alloc(rows * sizeof(int32_t), "sampled rows' sequences"));
      sampled_cap_ = rows;
      seq_host_.clear();
    }
    // the row → sequence map changes only when generate compacts the batch: upload it then
    bool identity = true;
    for (size_t r = 0; seq_of_row && r < rows; ++r) identity &= seq_of_row[r] == static_cast<int32_t>(r);
    const int32_t* seq_dev = nullptr;
    if (!identity) {
      if (seq_host_.size() != rows || !std::equal(seq_host_.begin(), seq_host_.end(), seq_of_row)) {
        seq_host_.assign(seq_of_row, seq_of_row + rows);
        CUDA_CHECK(cudaMemcpyAsync(seq_dev_, seq_host_.data(), rows * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
      }
      seq_dev = seq_dev_;
    }
    CUDA_CHECK(launch_sample(logits, rows, stride, static_cast<int>(vocab), p, step, seen, sampled_, stream_, seq_dev));
    STRATA_LAUNCH_CHECK("sample");
    CUDA_CHECK(cudaMemcpyAsync(tokens_host, sampled_, rows * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  bool can_decode_ahead() const override { return true; }
  bool sample_ahead(const void* logits, size_t rows, size_t vocab, size_t stride, const SamplingParams& p, uint64_t step, uint8_t* seen, int slot,
                    int slots, const AheadFeed* next) override {
    ahead_ring(rows, slots);
    // the same kernel writes the next step's tokens and position (no copy, no set_step before it)
    CUDA_CHECK(launch_sample(logits, rows, stride, static_cast<int>(vocab), p, step, seen, ring_ + static_cast<size_t>(slot) * rows, stream_, nullptr, next));
    STRATA_LAUNCH_CHECK("sample");
    return next != nullptr;
  }
  const void* ahead_ring(size_t rows, int slots) override {
    const size_t need = static_cast<size_t>(slots) * rows;
    if (need > ring_cap_) {  // first use in a generate (nothing queued reads the old ring then); never while capturing (generate reserves it first)
      sync();
      if (ring_) CUDA_CHECK(cudaFree(ring_));
      ring_ = nullptr;
      ring_ = static_cast<int32_t*>(alloc(need * sizeof(int32_t), "decode-ahead token ring"));
      ring_cap_ = need;
    }
    return ring_;
  }
  void set_step_base(int* info_dev, int32_t* positions_dev, int64_t* base_dev, int64_t P, uint64_t step, uint64_t seed) override {
    set_step_base_kernel<<<1, 1, 0, stream_>>>(info_dev, positions_dev, base_dev, static_cast<long long>(P), static_cast<unsigned long long>(step),
                                                static_cast<unsigned long long>(seed));
    STRATA_LAUNCH_CHECK("set_step_base");
  }
  void ahead_to_tokens(void* tokens_dev, size_t rows, int slot) override {
    CUDA_CHECK(cudaMemcpyAsync(tokens_dev, ring_ + static_cast<size_t>(slot) * rows, rows * sizeof(int32_t), cudaMemcpyDeviceToDevice, stream_));
  }
  void fetch_ahead(int32_t* host, size_t rows, int count) override {
    CUDA_CHECK(cudaMemcpyAsync(host, ring_, static_cast<size_t>(count) * rows * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void mark_seen(uint8_t* seen, size_t vocab, const void* tokens_dev, int rows, int cols) override {
    CUDA_CHECK(launch_mark_seen(seen, static_cast<int>(vocab), static_cast<const int32_t*>(tokens_dev), rows, cols, stream_));
    STRATA_LAUNCH_CHECK("mark_seen");
  }
  void set_step(int* info_dev, int32_t* positions_dev, int64_t P) override {
    set_step_kernel<<<1, 1, 0, stream_>>>(info_dev, positions_dev, static_cast<long long>(P));
    STRATA_LAUNCH_CHECK("set_step");
  }
  void last_sampled_to(void* tokens_dev, size_t rows) override {
    CUDA_CHECK(cudaMemcpyAsync(tokens_dev, sampled_, rows * sizeof(int32_t), cudaMemcpyDeviceToDevice, stream_));
  }
  bool begin_capture() override {
    // relaxed: the launchers' attribute calls stay legal while this stream is captured
    return cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed) == cudaSuccess;
  }
  void* end_capture() override {
    cudaGraph_t g = nullptr;
    cudaError_t e = cudaStreamEndCapture(stream_, &g);
    cudaGraphExec_t exec = nullptr;
    if (e == cudaSuccess && g) e = cudaGraphInstantiate(&exec, g, 0);
    if (g) cudaGraphDestroy(g);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear: the step runs eagerly instead
      if (std::getenv("STRATA_VERBOSE_GRAPHS")) std::fprintf(stderr, "strata: decode step not captured (%s); running eagerly\n", cudaGetErrorString(e));
      return nullptr;
    }
    return exec;
  }
  void replay(void* graph) override { CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), stream_)); }
  void destroy_graph(void* graph) override {
    if (graph) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph));
  }
  void sync() override { CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  void* stream() override { return stream_; }
  void check_launch(int code, const std::string& what) override {
    if (code != 0) throw Error(what + ": " + cudaGetErrorString(static_cast<cudaError_t>(code)), STRATA_ERR_CUDA);
    STRATA_LAUNCH_CHECK(what.c_str());
  }
  size_t free_bytes() override {
    size_t f = 0, t = 0;
    return cudaMemGetInfo(&f, &t) == cudaSuccess ? f : 0;
  }
  bool profile_begin(int launches) override {
    // the wait covers the host's queuing of the launches and their events (a few µs each)
    profile_spin_kernel<<<1, 1, 0, stream_>>>(2000000ll + 20000ll * launches);
    STRATA_LAUNCH_CHECK("profile wait");
    marks_used_ = 0;
    profile_mark();
    return true;
  }
  void profile_mark() override {
    if (marks_used_ == marks_.size()) {
      cudaEvent_t e;
      CUDA_CHECK(cudaEventCreate(&e));
      marks_.push_back(e);
    }
    CUDA_CHECK(cudaEventRecord(marks_[marks_used_++], stream_));
  }
  std::vector<float> profile_end() override {
    std::vector<float> ms;
    if (!marks_used_) return ms;
    CUDA_CHECK(cudaEventSynchronize(marks_[marks_used_ - 1]));
    for (size_t i = 1; i < marks_used_; ++i) {
      float t = 0;
      CUDA_CHECK(cudaEventElapsedTime(&t, marks_[i - 1], marks_[i]));
      ms.push_back(t);
    }
    return ms;
  }
  float elapsed_ms(const std::function<void()>& work) override {
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    CUDA_CHECK(cudaEventRecord(a, stream_));
    work();
    CUDA_CHECK(cudaEventRecord(b, stream_));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return ms;
  }

 private:
  cudaStream_t stream_ = nullptr;
  float* staging_ = nullptr;
  size_t staging_bytes_ = 0;
  int32_t* sampled_ = nullptr;
  size_t sampled_cap_ = 0;
  int32_t* seq_dev_ = nullptr;     // the row → sequence map the sampler reads (sampled_cap_ entries)
  std::vector<int32_t> seq_host_;  // its last upload
  int32_t* ring_ = nullptr;         // decode ahead: sampled tokens, slot-major
  size_t ring_cap_ = 0;
  std::vector<cudaEvent_t> marks_;  // STRATA_PROFILE: one event per launch, reused
  size_t marks_used_ = 0;
};

std::vector<uint64_t> weight_bytes(const Manifest& m) {
  std::vector<uint64_t> b;
  for (const auto& w : m.weights) b.push_back(w.nbytes);
  return b;
}

class ProgramModel : public Model {
 public:
  ProgramModel(const Manifest& m, const strata_options& o)
      : x_(generated_program(), std::unique_ptr<DeviceOps>(new CudaOps(o.device)), m.vocab_size, weight_bytes(m)) {
    x_.set_timing(std::getenv("STRATA_TIME") != nullptr);
    const char* g = std::getenv("STRATA_CUDA_GRAPHS");
    x_.set_graphs(!(g && std::string(g) == "0"));
    if (const char* prof = std::getenv("STRATA_PROFILE")) x_.set_profile(prof);  // after set_graphs: it turns them off
  }
  void upload_weight(size_t index, const void* host, size_t nbytes) override { x_.upload_weight(index, host, nbytes); }
  void weights_ready() override { x_.weights_ready(); }
  void forward(const int32_t* tokens, int batch, int seqlen, float* logits) override { x_.forward(tokens, batch, seqlen, logits); }
  std::unique_ptr<SessionState> create_state(int batch, int context) override { return x_.create_state(batch, context); }
  void prefill(SessionState& s, const int32_t* tokens, int seqlen, bool cont, bool last_only, float* logits) override {
    x_.prefill(s, tokens, seqlen, cont, last_only, logits);
  }
  void step(SessionState& s, const int32_t* tokens, float* logits) override { x_.step(s, tokens, logits); }
  void generate(SessionState& s, const int32_t* prompt, int prompt_len, int max_new, uint32_t flags, const SamplingParams& p,
                const std::vector<int32_t>& stop, int32_t* out, int32_t* lengths, const TokenCallback& cb, GenerateStats* stats) override {
    x_.generate(s, prompt, prompt_len, max_new, flags, p, stop, out, lengths, cb, stats);
  }
  json::Value info() const override { return x_.info(); }
  float train_step(const int32_t* tokens, const int32_t* targets, const float* weights, int batch, int seqlen) override {
    return x_.train_step(tokens, targets, weights, batch, seqlen);
  }
  void gradient_to_host(size_t index, float* out, size_t count) override { x_.gradient_to_host(index, out, count); }
  ProgramExecutor& executor() { return x_; }

 private:
  ProgramExecutor x_;
};

// The training entry of a Program compiled with --train (train.h): the weights' compute copies,
// their f32 gradients in the train arena, forward + loss + backward in one schedule.
class ProgramTrainTarget : public TrainTarget {
 public:
  ProgramTrainTarget(ProgramExecutor& x, const Manifest& mf) : x_(x) {
    if (!x_.has_train())
      throw Error("this model was compiled without the train entry: recompile it with `strata compile --train` (or use `strata train`)", STRATA_ERR_STATE);
    for (const auto& w : mf.weights) {
      if (w.dtype != DType::BF16 && w.dtype != DType::F32)
        throw Error("train: weight " + w.name + " is " + dtype_name(w.dtype) + "; training supports bf16 and f32 weights", STRATA_ERR_STATE);
      names_.push_back(w.name);
      numel_.push_back(w.numel);
      bf16_.push_back(w.dtype == DType::BF16);
    }
    const json::Value* t = mf.json.find("train");
    const json::Value* f = t ? t->find("flopsPerToken") : nullptr;
    const json::Value* sl = t ? t->find("flopsPerTokenPerRowToken") : nullptr;
    const json::Value* at = t ? t->find("flopsAtSeq") : nullptr;
    flops_ = f && f->is_number() ? f->as_number() : 0.0;
    slope_ = sl && sl->is_number() ? sl->as_number() : 0.0;
    flops_seq_ = at && at->is_number() ? static_cast<int>(at->as_number()) : 0;
    vocab_ = mf.vocab_size;
  }
  int param_count() const override { return static_cast<int>(names_.size()); }
  const std::string& param_name(int i) const override { return names_.at(i); }
  size_t param_numel(int i) const override { return numel_.at(i); }
  bool param_bf16(int i) const override { return bf16_.at(i); }
  void* param_device(int i) override { return x_.weight_device(static_cast<size_t>(i)); }
  float* grad_device(int i) override { return x_.grad_device(static_cast<size_t>(i)); }
  float train_step(const int32_t* tokens, const int32_t* targets, const float* weights, int batch, int seqlen) override {
    return x_.train_step(tokens, targets, weights, batch, seqlen);
  }
  void forward(const int32_t* tokens, int batch, int seqlen, float* logits) override { x_.forward(tokens, batch, seqlen, logits); }
  void params_changed() override { x_.params_changed(); }
  int64_t vocab() const override { return vocab_; }
  int max_tokens() const override { return x_.tables().max_tokens; }
  // linear in the row length (attention's causal share grows with it): exact at the compiled max
  // sequence, the manifest's slope elsewhere
  double flops_per_token(int seqlen) const override { return flops_seq_ ? flops_ + slope_ * (seqlen - flops_seq_) : flops_; }
  void* stream() override { return x_.stream(); }

 private:
  ProgramExecutor& x_;
  std::vector<std::string> names_;
  std::vector<size_t> numel_;
  std::vector<bool> bf16_;
  double flops_ = 0, slope_ = 0;
  int flops_seq_ = 0;
  int64_t vocab_ = 0;
};

}  // namespace

std::unique_ptr<TrainTarget> make_program_train_target(void* program_model) {
  auto* pm = dynamic_cast<ProgramModel*>(model_impl(static_cast<strata_model*>(program_model)));
  if (!pm) throw Error("make_program_train_target: not a compiled Program model", STRATA_ERR_INTERNAL);
  return std::unique_ptr<TrainTarget>(new ProgramTrainTarget(pm->executor(), model_manifest(static_cast<strata_model*>(program_model))));
}

// init_device.cu writes initialised weights straight into these buffers (init_device.h).
void* program_weight_device(Model* m, size_t index, void** stream) {
  auto* pm = dynamic_cast<ProgramModel*>(m);
  if (!pm) return nullptr;
  if (stream) *stream = pm->executor().stream();
  return pm->executor().weight_device(index);
}

std::unique_ptr<DeviceOps> make_cuda_ops(int device) { return std::unique_ptr<DeviceOps>(new CudaOps(device)); }

std::unique_ptr<Model> create_generated_model(const Manifest& m, const strata_options& o) {
  return std::unique_ptr<Model>(new ProgramModel(m, o));
}

}  // namespace strata
