// Example of what the compiler generates per model, reduced to one kernel:
// a strata::Model that keeps every weight and activation in one DeviceArena
// and computes logits[b, s, v] = embed[token, v] (a "model" that is just an
// embedding lookup with vocab-sized rows). Used by nvcc_compile_check.sh to
// prove the runtime compiles and links with nvcc; it needs a GPU to run.
#include <cuda_bf16.h>

#include <vector>

#include "arena.h"
#include "check.h"
#include "strata_model_iface.h"

namespace {

__global__ void embed_lookup(const __nv_bfloat16* embed, const int32_t* tokens, float* logits, int n, int vocab) {
  int i = blockIdx.x;  // one block per token
  for (int v = threadIdx.x; v < vocab; v += blockDim.x)
    logits[static_cast<size_t>(i) * vocab + v] = __bfloat162float(embed[static_cast<size_t>(tokens[i]) * vocab + v]);
}

class ExampleModel : public strata::Model {
 public:
  ExampleModel(const strata::Manifest& m, const strata_options& o) : m_(m) {
    CUDA_CHECK(cudaSetDevice(o.device));
    // Memory plan: weights first, then tokens, then logits (offsets would
    // normally be constants emitted by the compiler).
    size_t tokens_bytes = static_cast<size_t>(m.max_batch * m.max_seqlen) * sizeof(int32_t);
    size_t logits_bytes = static_cast<size_t>(m.max_batch * m.max_seqlen * m.vocab_size) * sizeof(float);
    size_t total = 0;
    for (const auto& w : m.weights) total += (w.nbytes + 255) / 256 * 256;
    total += (tokens_bytes + 255) / 256 * 256 + logits_bytes;
    arena_.reset(new strata::DeviceArena(total));
    for (const auto& w : m.weights) weight_off_.push_back(arena_->reserve(w.nbytes));
    tokens_off_ = arena_->reserve(tokens_bytes);
    logits_off_ = arena_->reserve(logits_bytes);
  }

  void upload_weight(size_t index, const void* host, size_t nbytes) override {
    CUDA_CHECK(cudaMemcpy(arena_->at(weight_off_[index], nbytes), host, nbytes, cudaMemcpyHostToDevice));
  }

  void forward(const int32_t* tokens, int batch, int seqlen, float* logits) override {
    int n = batch * seqlen;
    int vocab = static_cast<int>(m_.vocab_size);
    int32_t* d_tok = arena_->at<int32_t>(tokens_off_, n);
    float* d_logits = arena_->at<float>(logits_off_, static_cast<size_t>(n) * vocab);
    CUDA_CHECK(cudaMemcpy(d_tok, tokens, n * sizeof(int32_t), cudaMemcpyHostToDevice));
    const auto* embed = arena_->at<__nv_bfloat16>(weight_off_[0], m_.weights[0].numel);
    embed_lookup<<<n, 256>>>(embed, d_tok, d_logits, n, vocab);
    STRATA_LAUNCH_CHECK("embed_lookup");
    CUDA_CHECK(cudaMemcpy(logits, d_logits, static_cast<size_t>(n) * vocab * sizeof(float), cudaMemcpyDeviceToHost));
  }

  strata::json::Value info() const override {
    strata::json::Value v = strata::json::Value::object();
    v.set("kernels", strata::json::Value(strata::json::Value::Array{"embed_lookup"}));
    v.set("arenaBytes", static_cast<uint64_t>(arena_->size()));
    return v;
  }

 private:
  strata::Manifest m_;
  std::unique_ptr<strata::DeviceArena> arena_;
  std::vector<size_t> weight_off_;
  size_t tokens_off_ = 0, logits_off_ = 0;
};

}  // namespace

std::unique_ptr<strata::Model> strata::create_generated_model(const strata::Manifest& m, const strata_options& o) {
  return std::unique_ptr<strata::Model>(new ExampleModel(m, o));
}
