// adamw.cu — the optimizer's CUDA kernels (the update rule and its constants: adamw.h).
//
// Multi-tensor layout: every parameter is cut into chunks of kChunk elements; one launch covers
// all parameters (a block per chunk), so a step costs a handful of launches whatever the number
// of parameters. Per step: accumulate (K > 1, one launch per micro-batch), Σ acc² (a block per
// chunk writes a float64 partial, then a block per parameter sums its partials in a fixed tree:
// deterministic, no atomics), then the fused update that also writes the compute copy.
// master, m, v (and the accumulators) of all parameters are one allocation each.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "adamw.h"
#include "check.h"
#include "error.h"

namespace strata {
namespace {

constexpr int kThreads = 256;
constexpr uint64_t kChunk = 256 * 64;  // elements per block

struct DevParam {
  float* master;
  float* m;
  float* v;
  float* acc;          // == grad when K = 1
  const float* grad;
  void* compute;
  uint64_t numel;
  int bf16;
  int decay;
};

struct Chunk {
  int param;
  uint32_t len;
  uint64_t begin;
};

__global__ void accumulate_kernel(const DevParam* ps, const Chunk* chunks, int first) {
  const Chunk c = chunks[blockIdx.x];
  const DevParam p = ps[c.param];
  for (uint32_t j = threadIdx.x; j < c.len; j += kThreads) {
    const uint64_t e = c.begin + j;
    p.acc[e] = first ? p.grad[e] : p.acc[e] + p.grad[e];
  }
}

// Fixed-shape tree over kThreads doubles in shared memory.
__device__ double block_sum(double x, double* sh) {
  sh[threadIdx.x] = x;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  return sh[0];
}

__global__ void sumsq_chunks_kernel(const DevParam* ps, const Chunk* chunks, double* partials) {
  __shared__ double sh[kThreads];
  const Chunk c = chunks[blockIdx.x];
  const float* a = ps[c.param].acc;
  double s = 0;
  for (uint32_t j = threadIdx.x; j < c.len; j += kThreads) {
    const double g = a[c.begin + j];
    s += g * g;
  }
  const double t = block_sum(s, sh);
  if (threadIdx.x == 0) partials[blockIdx.x] = t;
}

__global__ void sumsq_params_kernel(const int* first_chunk, const int* chunk_count, const double* partials, double* out) {
  __shared__ double sh[kThreads];
  const int f = first_chunk[blockIdx.x], n = chunk_count[blockIdx.x];
  double s = 0;
  for (int j = threadIdx.x; j < n; j += kThreads) s += partials[f + j];
  const double t = block_sum(s, sh);
  if (threadIdx.x == 0) out[blockIdx.x] = t;
}

__global__ void update_kernel(const DevParam* ps, const Chunk* chunks, AdamWStep st) {
  const Chunk c = chunks[blockIdx.x];
  const DevParam p = ps[c.param];
  for (uint32_t j = threadIdx.x; j < c.len; j += kThreads) {
    const uint64_t e = c.begin + j;
    float w = p.master[e], m = p.m[e], v = p.v[e];
    adamw_element(w, m, v, p.acc[e], st, p.decay != 0);
    p.master[e] = w;
    p.m[e] = m;
    p.v[e] = v;
    if (p.bf16) static_cast<uint16_t*>(p.compute)[e] = bf16_bits(w);
    else static_cast<float*>(p.compute)[e] = w;
  }
}

__global__ void write_compute_kernel(const DevParam* ps, const Chunk* chunks) {
  const Chunk c = chunks[blockIdx.x];
  const DevParam p = ps[c.param];
  for (uint32_t j = threadIdx.x; j < c.len; j += kThreads) {
    const uint64_t e = c.begin + j;
    if (p.bf16) static_cast<uint16_t*>(p.compute)[e] = bf16_bits(p.master[e]);
    else static_cast<float*>(p.compute)[e] = p.master[e];
  }
}

__global__ void master_from_compute_kernel(const DevParam* ps, const Chunk* chunks) {
  const Chunk c = chunks[blockIdx.x];
  const DevParam p = ps[c.param];
  for (uint32_t j = threadIdx.x; j < c.len; j += kThreads) {
    const uint64_t e = c.begin + j;
    if (p.bf16) p.master[e] = __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(p.compute)[e]) << 16);
    else p.master[e] = static_cast<const float*>(p.compute)[e];
    p.m[e] = 0.f;
    p.v[e] = 0.f;
  }
}

class CudaAdamW : public OptimizerState {
 public:
  CudaAdamW(const std::vector<ParamSlot>& params, void* stream, int accum)
      : slots_(params), stream_(static_cast<cudaStream_t>(stream)), accum_(accum) {
    CUDA_CHECK(cudaDeviceSynchronize());  // the compute copies were uploaded on whatever stream loaded the weights
    uint64_t total = 0;
    std::vector<uint64_t> offset;
    for (const ParamSlot& p : params) offset.push_back(total), total += p.numel;
    total_ = total;
    const size_t bytes = static_cast<size_t>(total ? total : 1) * sizeof(float);
    alloc(&master_, bytes, "the fp32 master weights");
    alloc(&m_, bytes, "AdamW's first moments");
    alloc(&v_, bytes, "AdamW's second moments");
    if (accum > 1) alloc(&acc_, bytes, "the gradient accumulators (--accum > 1)");
    std::vector<int> first, count;
    for (size_t i = 0; i < params.size(); ++i) {
      DevParam d{};
      d.master = master_ + offset[i];
      d.m = m_ + offset[i];
      d.v = v_ + offset[i];
      d.grad = params[i].grad;
      d.acc = acc_ ? acc_ + offset[i] : params[i].grad;
      d.compute = params[i].compute;
      d.numel = params[i].numel;
      d.bf16 = params[i].bf16;
      d.decay = params[i].decay;
      host_.push_back(d);
      first.push_back(static_cast<int>(chunks_.size()));
      for (uint64_t b = 0; b < params[i].numel; b += kChunk)
        chunks_.push_back(Chunk{static_cast<int>(i), static_cast<uint32_t>(std::min<uint64_t>(kChunk, params[i].numel - b)), b});
      count.push_back(static_cast<int>(chunks_.size()) - first.back());
    }
    const size_t np = params.size() ? params.size() : 1, nc = chunks_.size() ? chunks_.size() : 1;
    alloc(&dev_params_, np * sizeof(DevParam), "the optimizer's parameter table");
    alloc(&dev_chunks_, nc * sizeof(Chunk), "the optimizer's chunk table");
    alloc(&first_, np * sizeof(int), "the optimizer's chunk table");
    alloc(&count_, np * sizeof(int), "the optimizer's chunk table");
    alloc(&partials_, nc * sizeof(double), "the gradient-norm partial sums");
    alloc(&sumsq_, np * sizeof(double), "the gradient-norm sums");
    if (!chunks_.empty()) CUDA_CHECK(cudaMemcpy(dev_chunks_, chunks_.data(), chunks_.size() * sizeof(Chunk), cudaMemcpyHostToDevice));
    if (!params.empty()) {
      CUDA_CHECK(cudaMemcpy(first_, first.data(), first.size() * sizeof(int), cudaMemcpyHostToDevice));
      CUDA_CHECK(cudaMemcpy(count_, count.data(), count.size() * sizeof(int), cudaMemcpyHostToDevice));
    }
    offset_ = offset;
    dirty_ = true;
  }
  ~CudaAdamW() override {
    for (void* p : {static_cast<void*>(master_), static_cast<void*>(m_), static_cast<void*>(v_), static_cast<void*>(acc_),
                    static_cast<void*>(dev_params_), static_cast<void*>(dev_chunks_), static_cast<void*>(first_),
                    static_cast<void*>(count_), static_cast<void*>(partials_), static_cast<void*>(sumsq_)})
      if (p) cudaFree(p);
  }

  void set_grad(int i, float* grad) override {
    if (host_[i].grad == grad) return;
    host_[i].grad = grad;
    if (!acc_) host_[i].acc = grad;
    dirty_ = true;
  }
  void init_from_compute() override {
    if (launchable()) {
      master_from_compute_kernel<<<grid(), kThreads, 0, stream_>>>(dev_params_, dev_chunks_);
      STRATA_LAUNCH_CHECK("adamw master_from_compute");
    }
  }
  void accumulate(bool first) override {
    if (!acc_ || !launchable()) return;
    accumulate_kernel<<<grid(), kThreads, 0, stream_>>>(dev_params_, dev_chunks_, first ? 1 : 0);
    STRATA_LAUNCH_CHECK("adamw accumulate");
  }
  void grad_sumsq(std::vector<double>& out) override {
    out.assign(slots_.size(), 0.0);
    if (!launchable()) return;
    sumsq_chunks_kernel<<<grid(), kThreads, 0, stream_>>>(dev_params_, dev_chunks_, partials_);
    STRATA_LAUNCH_CHECK("adamw sumsq_chunks");
    sumsq_params_kernel<<<static_cast<unsigned>(slots_.size()), kThreads, 0, stream_>>>(first_, count_, partials_, sumsq_);
    STRATA_LAUNCH_CHECK("adamw sumsq_params");
    CUDA_CHECK(cudaMemcpyAsync(out.data(), sumsq_, out.size() * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void update(const AdamWStep& s) override {
    if (!launchable()) return;
    update_kernel<<<grid(), kThreads, 0, stream_>>>(dev_params_, dev_chunks_, s);
    STRATA_LAUNCH_CHECK("adamw update");
  }
  void write_compute() override {
    if (!launchable()) return;
    write_compute_kernel<<<grid(), kThreads, 0, stream_>>>(dev_params_, dev_chunks_);
    STRATA_LAUNCH_CHECK("adamw write_compute");
  }
  void download(int i, OptTensor t, float* host) override {
    CUDA_CHECK(cudaMemcpyAsync(host, base(t) + offset_[i], slots_[i].numel * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void upload(int i, OptTensor t, const float* host) override {
    CUDA_CHECK(cudaMemcpyAsync(base(t) + offset_[i], host, slots_[i].numel * sizeof(float), cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void download_compute(int i, void* host) override {
    CUDA_CHECK(cudaMemcpyAsync(host, slots_[i].compute, slots_[i].numel * (slots_[i].bf16 ? 2 : 4), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void sync() override { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  template <typename T>
  static void alloc(T** p, size_t bytes, const char* what) {
    const cudaError_t e = cudaMalloc(reinterpret_cast<void**>(p), bytes);
    if (e != cudaSuccess)
      throw Error(std::string("train: cannot allocate ") + std::to_string(bytes) + " bytes of device memory for " + what + ": " +
                      cudaGetErrorString(e),
                  STRATA_ERR_OUT_OF_MEMORY);
  }
  float* base(OptTensor t) const { return t == OptTensor::kMaster ? master_ : t == OptTensor::kM ? m_ : v_; }
  unsigned grid() const { return static_cast<unsigned>(chunks_.size()); }
  // Uploads the parameter table when a gradient pointer changed; false when there is nothing to do.
  bool launchable() {
    if (chunks_.empty()) return false;
    if (dirty_) {
      CUDA_CHECK(cudaMemcpyAsync(dev_params_, host_.data(), host_.size() * sizeof(DevParam), cudaMemcpyHostToDevice, stream_));
      CUDA_CHECK(cudaStreamSynchronize(stream_));  // host_ may change before the copy would run
      dirty_ = false;
    }
    return true;
  }

  std::vector<ParamSlot> slots_;
  cudaStream_t stream_;
  int accum_;
  uint64_t total_ = 0;
  std::vector<uint64_t> offset_;
  std::vector<DevParam> host_;
  std::vector<Chunk> chunks_;
  bool dirty_ = true;
  float *master_ = nullptr, *m_ = nullptr, *v_ = nullptr, *acc_ = nullptr;
  DevParam* dev_params_ = nullptr;
  Chunk* dev_chunks_ = nullptr;
  int *first_ = nullptr, *count_ = nullptr;
  double *partials_ = nullptr, *sumsq_ = nullptr;
};

}  // namespace

std::unique_ptr<OptimizerState> make_cuda_adamw(const std::vector<ParamSlot>& params, void* stream, int accum) {
  return std::unique_ptr<OptimizerState>(new CudaAdamW(params, stream, accum));
}

}  // namespace strata
