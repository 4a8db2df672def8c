// The C ABI (strata.h) on top of the generated strata::Model.
// Everything here is host-only: argument checks, manifest and safetensors run on the CPU; the
// Model does the device work. Weight init runs on the GPU where init_device.cu is linked and the
// model is a compiled Program (the same bytes as the host path; STRATA_INIT_ON_HOST=1 forces the
// host path), else on the host.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "init_device.h"
#include "program.h"
#include "safetensors.h"
#include "strata.h"
#include "strata_model_iface.h"

// Weak: defined by init_device.cu where it is linked (generated projects), null elsewhere.
namespace strata {
bool init_weights_on_device(Model& m, const Manifest& mf, uint64_t seed, uint64_t* recomputed) __attribute__((weak));
}

struct strata_state {
  strata_model* model = nullptr;
  std::unique_ptr<strata::SessionState> impl;
};

struct strata_model {
  strata::Manifest manifest;
  std::unique_ptr<strata::Model> impl;
  bool weights_loaded = false;
  std::string weights_source;  // "file:<path>" or "init:seed=<n>", for info
  std::string info;            // backing store for strata_model_info_json
  int verbose = 0;
};

strata::Model* strata::model_impl(strata_model* m) { return m ? m->impl.get() : nullptr; }
const strata::Manifest& strata::model_manifest(strata_model* m) {
  if (!m) throw strata::Error("model_manifest: null model", STRATA_ERR_INVALID_ARGUMENT);
  return m->manifest;
}

namespace {

thread_local std::string g_last_error;

void set_error(const std::string& msg) { g_last_error = msg; }

// Run f, turning any exception into a status + thread-local message so that
// no C++ exception ever crosses the C boundary.
template <class F>
strata_status guard(F&& f) {
  try {
    f();
    return STRATA_OK;
  } catch (const strata::Error& e) {
    set_error(e.what());
    return e.code();
  } catch (const std::bad_alloc&) {
    set_error("out of host memory");
    return STRATA_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_error(std::string("internal error: ") + e.what());
    return STRATA_ERR_INTERNAL;
  } catch (...) {
    set_error("internal error: unknown exception");
    return STRATA_ERR_INTERNAL;
  }
}

void require_model(const strata_model* m, const char* fn) {
  if (!m) throw strata::Error(std::string(fn) + ": model handle is NULL");
}

void require_weights(const strata_model* m, const char* fn) {
  if (!m->weights_loaded)
    throw strata::Error(std::string(fn) + ": no weights; call strata_model_load_weights or strata_model_init_weights first",
                        STRATA_ERR_STATE);
}

void check_tokens(const strata_model* m, const char* fn, const int32_t* tokens, int batch, int seqlen) {
  for (int b = 0; b < batch; ++b)
    for (int s = 0; s < seqlen; ++s) {
      const int32_t t = tokens[static_cast<size_t>(b) * seqlen + s];
      if (t < 0 || t >= m->manifest.vocab_size)
        throw strata::Error(std::string(fn) + ": token id " + std::to_string(t) + " at [" + std::to_string(b) + ", " + std::to_string(s) +
                            "] is outside the vocabulary [0, " + std::to_string(m->manifest.vocab_size) + ")");
    }
}

// On the GPU when the model is a compiled Program (its weights in CUDA memory) and init_device.cu
// is linked (generated projects' libmodel.so; the host-only test builds leave the weak reference
// null and init on the host). STRATA_INIT_ON_HOST=1 forces the host path (same bytes, slower).
bool init_on_device(strata_model* m, uint64_t seed, uint64_t* recomputed) {
  const char* host = std::getenv("STRATA_INIT_ON_HOST");
  if (host && *host && std::strcmp(host, "0") != 0) return false;
  return &strata::init_weights_on_device != nullptr && strata::init_weights_on_device(*m->impl, m->manifest, seed, recomputed);
}

int init_threads() {
  unsigned hc = std::thread::hardware_concurrency();
  return static_cast<int>(std::min(32u, std::max(1u, hc)));  // draws are thread-count independent (INIT.md)
}

void init_on_host(strata_model* m, uint64_t seed) {
  std::vector<float> f32;
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < m->manifest.weights.size(); ++i) {
    const strata::WeightSpec& w = m->manifest.weights[i];
    bytes.resize(static_cast<size_t>(w.nbytes));
    if (w.dtype == strata::DType::I32 || w.dtype == strata::DType::I64) {
      // Manifest parsing allows only integral const init for integer weights.
      int64_t v = static_cast<int64_t>(w.init.value);
      for (uint64_t k = 0; k < w.numel; ++k) {
        if (w.dtype == strata::DType::I32) {
          int32_t v32 = static_cast<int32_t>(v);
          std::memcpy(bytes.data() + k * 4, &v32, 4);
        } else {
          std::memcpy(bytes.data() + k * 8, &v, 8);
        }
      }
    } else {
      f32.resize(static_cast<size_t>(w.numel));
      strata::init_tensor(w.init, seed, w.name, f32.data(), f32.size(), init_threads());
      strata::convert_from_f32(f32.data(), f32.size(), w.dtype, bytes.data());
    }
    m->impl->upload_weight(i, bytes.data(), bytes.size());
  }
}

}  // namespace

extern "C" {

void strata_options_init(strata_options* opts) {
  if (!opts) return;
  opts->struct_size = sizeof(strata_options);
  opts->device = 0;
  opts->verbose = 0;
}

const char* strata_last_error(void) { return g_last_error.c_str(); }

const char* strata_status_name(strata_status s) {
  switch (s) {
    case STRATA_OK: return "STRATA_OK";
    case STRATA_ERR_INVALID_ARGUMENT: return "STRATA_ERR_INVALID_ARGUMENT";
    case STRATA_ERR_IO: return "STRATA_ERR_IO";
    case STRATA_ERR_FORMAT: return "STRATA_ERR_FORMAT";
    case STRATA_ERR_WEIGHT_MISMATCH: return "STRATA_ERR_WEIGHT_MISMATCH";
    case STRATA_ERR_STATE: return "STRATA_ERR_STATE";
    case STRATA_ERR_CUDA: return "STRATA_ERR_CUDA";
    case STRATA_ERR_OUT_OF_MEMORY: return "STRATA_ERR_OUT_OF_MEMORY";
    case STRATA_ERR_INTERNAL: return "STRATA_ERR_INTERNAL";
  }
  return "STRATA_ERR_UNKNOWN";
}

strata_model* strata_model_create(const char* manifest_path_or_dir, const strata_options* opts) {
  strata_model* out = nullptr;
  guard([&] {
    if (!manifest_path_or_dir || !*manifest_path_or_dir)
      throw strata::Error("strata_model_create: manifest path is NULL or empty");
    strata_options o;
    strata_options_init(&o);
    if (opts) {
      // Older callers may pass a smaller struct; copy only what they know.
      if (opts->struct_size < sizeof(uint32_t) || opts->struct_size > sizeof(strata_options))
        throw strata::Error("strata_model_create: options.struct_size is " + std::to_string(opts->struct_size) +
                            "; initialise options with strata_options_init()");
      std::memcpy(&o, opts, opts->struct_size);
      o.struct_size = sizeof(strata_options);
    }
    std::unique_ptr<strata_model> m(new strata_model());
    m->manifest = strata::load_manifest(manifest_path_or_dir);
    m->verbose = o.verbose;
    m->impl = strata::create_generated_model(m->manifest, o);
    if (!m->impl) throw strata::Error("create_generated_model returned null", STRATA_ERR_INTERNAL);
    out = m.release();
  });
  return out;
}

strata_status strata_model_load_weights(strata_model* m, const char* path) {
  return guard([&] {
    require_model(m, "strata_model_load_weights");
    if (!path || !*path) throw strata::Error("strata_model_load_weights: path is NULL or empty");
    strata::SafetensorsFile file(path);
    std::vector<strata::ExpectedTensor> expected;
    for (const auto& w : m->manifest.weights) expected.push_back({w.name, w.dtype, w.shape});
    file.validate_against(expected);
    m->weights_loaded = false;  // a failed upload leaves weights half-written
    for (size_t i = 0; i < m->manifest.weights.size(); ++i) {
      const strata::TensorInfo& t = file.get(m->manifest.weights[i].name);
      m->impl->upload_weight(i, file.data(t), static_cast<size_t>(t.nbytes()));
    }
    m->impl->weights_ready();
    m->weights_loaded = true;
    m->weights_source = std::string("file:") + path;
    if (m->verbose) std::fprintf(stderr, "strata: loaded %zu weights from %s\n", m->manifest.weights.size(), path);
  });
}

strata_status strata_model_init_weights(strata_model* m, uint64_t seed) {
  return guard([&] {
    require_model(m, "strata_model_init_weights");
    for (const auto& w : m->manifest.weights)
      if (!w.has_init)
        throw strata::Error(m->manifest.path + ": weight '" + w.name +
                                "' has no \"init\" spec, so it cannot be initialised; load a weights file instead",
                            STRATA_ERR_STATE);
    m->weights_loaded = false;
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t recomputed = 0;
    const bool on_device = init_on_device(m, seed, &recomputed);
    if (!on_device) init_on_host(m, seed);
    m->impl->weights_ready();
    m->weights_loaded = true;
    m->weights_source = "init:seed=" + std::to_string(seed);
    if (m->verbose)
      std::fprintf(stderr, "strata: initialised %zu weights (seed %llu) on the %s in %.0f ms%s\n", m->manifest.weights.size(),
                   static_cast<unsigned long long>(seed), on_device ? "GPU" : "host",
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
                   on_device ? (" (" + std::to_string(recomputed) + " elements recomputed on the host)").c_str() : "");
  });
}

strata_status strata_model_forward(strata_model* m, const int32_t* tokens, int batch, int seqlen,
                                   float* logits_out) {
  return guard([&] {
    require_model(m, "strata_model_forward");
    const strata::Manifest& mf = m->manifest;
    if (!tokens) throw strata::Error("strata_model_forward: tokens is NULL");
    if (!logits_out) throw strata::Error("strata_model_forward: logits_out is NULL");
    if (batch < 1 || batch > mf.max_batch)
      throw strata::Error("strata_model_forward: batch " + std::to_string(batch) + " out of range; this model accepts 1.." +
                          std::to_string(mf.max_batch));
    if (seqlen < 1 || seqlen > mf.max_seqlen)
      throw strata::Error("strata_model_forward: seqlen " + std::to_string(seqlen) +
                          " out of range; this model accepts 1.." + std::to_string(mf.max_seqlen));
    require_weights(m, "strata_model_forward");
    check_tokens(m, "strata_model_forward", tokens, batch, seqlen);
    m->impl->forward(tokens, batch, seqlen, logits_out);
  });
}

strata_status strata_model_train_step(strata_model* m, const int32_t* tokens, const int32_t* targets, const float* weights, int batch,
                                      int seqlen, float* loss_out) {
  return guard([&] {
    require_model(m, "strata_model_train_step");
    if (!tokens || !targets || !weights || !loss_out) throw strata::Error("strata_model_train_step: tokens, targets, weights and loss_out must not be NULL");
    require_weights(m, "strata_model_train_step");
    check_tokens(m, "strata_model_train_step", tokens, batch, seqlen);
    *loss_out = m->impl->train_step(tokens, targets, weights, batch, seqlen);
  });
}

strata_status strata_model_gradient(strata_model* m, const char* name, float* out, size_t count) {
  return guard([&] {
    require_model(m, "strata_model_gradient");
    if (!name || !out) throw strata::Error("strata_model_gradient: weight_name and out must not be NULL");
    const int64_t i = m->manifest.weight_index(name);
    if (i < 0) throw strata::Error(std::string("strata_model_gradient: no weight named '") + name + "'");
    const uint64_t n = m->manifest.weights[static_cast<size_t>(i)].numel;
    if (count != n)
      throw strata::Error(std::string("strata_model_gradient: ") + name + " has " + std::to_string(n) + " elements, count is " + std::to_string(count));
    m->impl->gradient_to_host(static_cast<size_t>(i), out, count);
  });
}

strata_state* strata_state_create(strata_model* m, int batch, int context) {
  strata_state* out = nullptr;
  guard([&] {
    require_model(m, "strata_state_create");
    if (batch < 1 || batch > m->manifest.max_batch)
      throw strata::Error("strata_state_create: batch " + std::to_string(batch) + " out of range; this model accepts 1.." +
                          std::to_string(m->manifest.max_batch));
    std::unique_ptr<strata_state> s(new strata_state());
    s->model = m;
    s->impl = m->impl->create_state(batch, context);
    out = s.release();
  });
  return out;
}

strata_status strata_state_set_position(strata_state* s, int64_t position) {
  return guard([&] {
    if (!s || !s->impl) throw strata::Error("strata_state_set_position: state is NULL");
    if (position < 0 || position > s->impl->capacity)
      throw strata::Error("strata_state_set_position: position " + std::to_string(position) + " outside 0.." + std::to_string(s->impl->capacity) +
                          " (the state's context)");
    s->impl->position = position;
  });
}

int strata_state_batch(const strata_state* s) { return s && s->impl ? s->impl->batch : 0; }

int64_t strata_state_position(const strata_state* s) { return s && s->impl ? s->impl->position : 0; }

void strata_state_destroy(strata_state* s) {
  if (!s) return;
  try {
    delete s;
  } catch (...) {
  }
}

strata_status strata_model_prefill(strata_model* m, strata_state* s, const int32_t* tokens, int seqlen, uint32_t flags,
                                   float* logits_out) {
  return guard([&] {
    require_model(m, "strata_model_prefill");
    if (!s || s->model != m) throw strata::Error("strata_model_prefill: state is NULL or belongs to another model");
    if (!tokens) throw strata::Error("strata_model_prefill: tokens is NULL");
    if (!logits_out) throw strata::Error("strata_model_prefill: logits_out is NULL");
    if (flags & ~(STRATA_PREFILL_CONTINUE | STRATA_LOGITS_LAST))
      throw strata::Error("strata_model_prefill: unknown flags " + std::to_string(flags) + " (valid: STRATA_PREFILL_CONTINUE | STRATA_LOGITS_LAST)");
    if (seqlen < 1 || seqlen > m->manifest.max_seqlen)
      throw strata::Error("strata_model_prefill: seqlen " + std::to_string(seqlen) + " out of range; this model accepts 1.." +
                          std::to_string(m->manifest.max_seqlen) + " per call (continue with STRATA_PREFILL_CONTINUE for longer prompts)");
    require_weights(m, "strata_model_prefill");
    check_tokens(m, "strata_model_prefill", tokens, s->impl->batch, seqlen);
    m->impl->prefill(*s->impl, tokens, seqlen, flags & STRATA_PREFILL_CONTINUE, flags & STRATA_LOGITS_LAST, logits_out);
  });
}

strata_status strata_model_step(strata_model* m, strata_state* s, const int32_t* tokens, float* logits_out) {
  return guard([&] {
    require_model(m, "strata_model_step");
    if (!s || s->model != m) throw strata::Error("strata_model_step: state is NULL or belongs to another model");
    if (!tokens) throw strata::Error("strata_model_step: tokens is NULL");
    if (!logits_out) throw strata::Error("strata_model_step: logits_out is NULL");
    require_weights(m, "strata_model_step");
    check_tokens(m, "strata_model_step", tokens, s->impl->batch, 1);
    m->impl->step(*s->impl, tokens, logits_out);
  });
}

void strata_sampling_init(strata_sampling* s) {
  if (!s) return;
  s->struct_size = sizeof(strata_sampling);
  s->temperature = 0.f;
  s->top_k = 0;
  s->top_p = 1.f;
  s->repetition_penalty = 1.f;
  s->seed = 0;
}

strata_status strata_model_generate(strata_model* m, strata_state* s, const int32_t* prompt, int prompt_len, int max_new_tokens,
                                    uint32_t flags, const strata_sampling* sampling, const int32_t* stop_tokens, int n_stop, int32_t* out_tokens,
                                    int32_t* out_lengths, strata_token_callback callback, void* user, strata_generate_stats* stats) {
  return guard([&] {
    const char* fn = "strata_model_generate";
    require_model(m, fn);
    if (!s || s->model != m) throw strata::Error(std::string(fn) + ": state is NULL or belongs to another model");
    if (!prompt) throw strata::Error(std::string(fn) + ": prompt is NULL");
    if (!out_tokens || !out_lengths) throw strata::Error(std::string(fn) + ": out_tokens or out_lengths is NULL");
    if (flags & ~(STRATA_GENERATE_CONTINUE | STRATA_GENERATE_STREAM))
      throw strata::Error(std::string(fn) + ": unknown flags " + std::to_string(flags) + " (valid: STRATA_GENERATE_CONTINUE | STRATA_GENERATE_STREAM)");
    if (n_stop < 0 || (n_stop > 0 && !stop_tokens)) throw strata::Error(std::string(fn) + ": stop_tokens is NULL but n_stop is " + std::to_string(n_stop));
    strata_sampling sp;
    strata_sampling_init(&sp);
    if (sampling) {
      if (sampling->struct_size < sizeof(uint32_t) || sampling->struct_size > sizeof(strata_sampling))
        throw strata::Error(std::string(fn) + ": sampling.struct_size is " + std::to_string(sampling->struct_size) +
                            "; initialise it with strata_sampling_init()");
      std::memcpy(&sp, sampling, sampling->struct_size);
    }
    require_weights(m, fn);
    check_tokens(m, fn, prompt, s->impl->batch, prompt_len);
    std::vector<int32_t> stop;
    for (int i = 0; i < n_stop; ++i) {
      if (stop_tokens[i] < 0 || stop_tokens[i] >= m->manifest.vocab_size)
        throw strata::Error(std::string(fn) + ": stop token " + std::to_string(stop_tokens[i]) + " is outside the vocabulary [0, " +
                            std::to_string(m->manifest.vocab_size) + ")");
      stop.push_back(stop_tokens[i]);
    }
    strata::SamplingParams p;
    p.temperature = sp.temperature;
    p.top_k = sp.top_k;
    p.top_p = sp.top_p;
    p.repetition_penalty = sp.repetition_penalty;
    p.seed = sp.seed;
    const int batch = s->impl->batch;
    strata::TokenCallback cb;
    if (callback) cb = [&](int i, const int32_t* t, const uint8_t* d) { return callback(user, i, t, d, batch) == 0; };
    strata::GenerateStats st;
    m->impl->generate(*s->impl, prompt, prompt_len, max_new_tokens, flags, p, stop, out_tokens, out_lengths, cb, &st);
    if (stats) {
      stats->prefill_ms = st.prefill_ms;
      stats->decode_ms = st.decode_ms;
      stats->prompt_tokens = st.prompt_tokens;
      stats->generated_tokens = st.new_tokens;
      stats->steps = st.steps;
    }
  });
}

strata_status strata_model_dims(const strata_model* m, strata_dims* out) {
  return guard([&] {
    require_model(m, "strata_model_dims");
    if (!out) throw strata::Error("strata_model_dims: out is NULL");
    out->vocab_size = m->manifest.vocab_size;
    out->max_batch = m->manifest.max_batch;
    out->max_seqlen = m->manifest.max_seqlen;
  });
}

const char* strata_model_info_json(strata_model* m) {
  strata_status st = guard([&] {
    require_model(m, "strata_model_info_json");
    const strata::Manifest& mf = m->manifest;
    strata::json::Value v = strata::describe_manifest(mf);
    v.set("weightsLoaded", m->weights_loaded);
    v.set("weightsSource", m->weights_loaded ? strata::json::Value(m->weights_source) : strata::json::Value());
    v.set("model", m->impl->info());
    m->info = strata::json::dump(v, 2);
  });
  return st == STRATA_OK ? m->info.c_str() : nullptr;
}

void strata_model_destroy(strata_model* m) {
  if (!m) return;
  try {
    delete m;
  } catch (...) {
    // Destructors must not throw across the C boundary; nothing to recover.
  }
}

}  // extern "C"
