// strata_model_iface.h — the internal C++ interface between the generic
// runtime (this directory) and the code the compiler generates per model.
//
// Division of labour
//   runtime (generic): the C ABI in strata.h, manifest parsing, safetensors
//     loading + validation, deterministic init, argument checking, errors.
//   generated code:    one class deriving from strata::Model that owns the
//     device memory (normally a strata::DeviceArena sized from the memory
//     plan), receives weights, and runs the fused kernels in forward(); plus
//     the factory strata::create_generated_model() below.
//
// Every call into the Model happens after the runtime validated its inputs,
// so generated code can assume: index < manifest.weights.size(); nbytes ==
// manifest.weights[index].nbytes; 1 <= batch <= max_batch; 1 <= seqlen <=
// max_seqlen; every token id in [0, vocab_size). Generated code reports
// failures by throwing strata::Error (CUDA_CHECK in check.h does this).
//
// Compile with -I runtime/include -I runtime/src.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"
#include "error.h"
#include "init.h"
#include "json.h"
#include "strata.h"

namespace strata {

using TokenCallback = std::function<bool(int index, const int32_t* tokens, const uint8_t* done)>;

// The state of a batch of sequences across prefill / step calls, sampling parameters and
// generation statistics (runtime/src/program.h).
struct SessionState;
struct SamplingParams;
struct GenerateStats;

// One entry of the manifest's "weights" array.
struct WeightSpec {
  std::string name;            // safetensors tensor name
  DType dtype;                 // storage dtype on device and in the file
  std::vector<int64_t> shape;  // row-major
  uint64_t numel = 0;
  uint64_t nbytes = 0;         // numel * dtype_size(dtype)
  bool has_init = false;       // false: strata_model_init_weights refuses
  InitSpec init;
};

// The parsed manifest.json. Fields the runtime reads (camelCase, as emitted
// by the TypeScript compiler):
//   {
//     "name": "tiny-mamba2",                 (optional, string)
//     "vocabSize": 32000, "maxBatch": 8, "maxSeqlen": 2048,
//     "arenaBytes": 123456789,               (optional, from the memory plan)
//     "weights": [ {"name": "embed.weight", "dtype": "BF16",
//                   "shape": [32000, 768],
//                   "init": {"kind": "normal", "std": 0.02}}, ... ]
//   }
// Any other fields are kept in `json` for the generated code to read.
struct Manifest {
  std::string path;  // resolved path of manifest.json
  std::string dir;   // its directory; resolve relative paths against this
  json::Value json;  // the whole document
  std::string name;
  int64_t vocab_size = 0;
  int64_t max_batch = 0;
  int64_t max_seqlen = 0;
  uint64_t arena_bytes = 0;
  std::vector<WeightSpec> weights;  // in manifest order; indices are stable

  // -1 when absent.
  int64_t weight_index(const std::string& name) const;
};

// Read and validate a manifest (a file, or a directory holding
// manifest.json). Throws strata::Error with the path and the offending field.
Manifest load_manifest(const std::string& path_or_dir);
// The model described from its manifest alone (no CUDA call): name, sizes, arch, pattern,
// config, blocks, kernel count, parameter count, weight bytes and the weights table — what
// `model info` prints and the base of strata_model_info_json.
json::Value describe_manifest(const Manifest& mf);

// Same, from an already-parsed document (`path` is used in messages/dir).
Manifest parse_manifest(const json::Value& doc, const std::string& path);

// Implemented by the generated schedule.
class Model {
 public:
  virtual ~Model() = default;

  // Receive weight `index` (manifest order) as host bytes in the manifest's
  // dtype and shape. Copy it to the device; `host` is only valid during the
  // call. Called once per weight on every load/init.
  virtual void upload_weight(size_t index, const void* host, size_t nbytes) = 0;

  // Called after all weights were uploaded (e.g. to synchronise, or to
  // derive packed/fused weight layouts). Default: nothing.
  virtual void weights_ready() {}

  // tokens: host int32 [batch, seqlen]; logits: host float32
  // [batch, seqlen, vocab_size]. Must fully overwrite logits and return only
  // when they are on the host.
  virtual void forward(const int32_t* tokens, int batch, int seqlen, float* logits) = 0;

  // The cached entry points (prefill / step) over the state of `batch` sequences. Models that
  // have no cached schedule keep these defaults, which refuse.
  virtual std::unique_ptr<SessionState> create_state(int /*batch*/, int /*context*/) {
    throw Error("this model has no prefill/step entry points; recompile it with this version of Strata", STRATA_ERR_STATE);
  }
  // Reset (unless `cont`) and run `seqlen` tokens per sequence; logits [batch, seqlen, vocab] or,
  // with `last_only`, [batch, vocab].
  virtual void prefill(SessionState&, const int32_t*, int /*seqlen*/, bool /*cont*/, bool /*last_only*/, float*) {
    throw Error("this model has no prefill entry point", STRATA_ERR_STATE);
  }
  // One token per sequence: tokens [batch] → logits [batch, vocab].
  virtual void step(SessionState&, const int32_t*, float*) { throw Error("this model has no step entry point", STRATA_ERR_STATE); }
  // Prompt, then sampled tokens until stop tokens / max_new (runtime/src/program.h: generate).
  // flags: the C ABI's STRATA_GENERATE_* bits (strata.h).
  virtual void generate(SessionState&, const int32_t* /*prompt*/, int /*prompt_len*/, int /*max_new*/, uint32_t /*flags*/, const SamplingParams&,
                        const std::vector<int32_t>& /*stop*/, int32_t* /*out*/, int32_t* /*lengths*/, const TokenCallback&, GenerateStats*) {
    throw Error("this model has no generate entry point", STRATA_ERR_STATE);
  }

  // Model-specific facts for strata_model_info_json (under "model"), e.g.
  // layer kinds, kernel names, arena size. Default: empty object.
  virtual json::Value info() const { return json::Value::object(); }
  // Training (models compiled with --train): forward + loss + backward; the loss.
  virtual float train_step(const int32_t*, const int32_t*, const float*, int /*batch*/, int /*seqlen*/) {
    throw Error("this model was compiled without the train entry; recompile it with `strata compile --train`", STRATA_ERR_STATE);
  }
  // Weight `index`'s gradient from the last train_step, to host f32 [numel].
  virtual void gradient_to_host(size_t /*index*/, float* /*out*/, size_t /*count*/) {
    throw Error("this model was compiled without the train entry; recompile it with `strata compile --train`", STRATA_ERR_STATE);
  }
};

// Defined exactly once, by the generated code. Called by strata_model_create
// after the manifest was parsed; allocate device memory here.
std::unique_ptr<Model> create_generated_model(const Manifest& manifest, const strata_options& options);

// The model and manifest behind a C handle (strata_abi.cpp), for the runtime's own tools
// (`bin/model train` builds its training target from them).
Model* model_impl(strata_model* m);
const Manifest& model_manifest(strata_model* m);

}  // namespace strata
