/*
 * strata.h — C ABI exported by every Strata-compiled model library.
 *
 * A compiled model project builds a shared library (libmodel.so) from the
 * generated schedule + kernels and this runtime. Callers (Python ctypes, C,
 * the bundled `bin/model` CLI) use only the functions below.
 *
 * Conventions
 *  - Handles are opaque. A strata_model is NOT thread-safe: serialise calls on
 *    one handle, or create one handle per thread.
 *  - Functions that can fail return strata_status (STRATA_OK == 0) or NULL.
 *    On failure strata_last_error() describes what went wrong, in words a
 *    user can act on (which file / tensor / argument, and what is valid).
 *  - All pointers passed in are HOST pointers; the library copies to and from
 *    the device itself. Nothing passed in is retained after a call returns.
 *  - Strings are UTF-8, NUL-terminated.
 */
#ifndef STRATA_H_
#define STRATA_H_

#include <stdint.h>

#if defined(_WIN32)
#define STRATA_API __declspec(dllexport)
#else
#define STRATA_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this ABI. Bumped on incompatible change; 2 adds the state handles and the
 * prefill / step entry points (every version-1 function is unchanged). */
#define STRATA_ABI_VERSION 2

/* Status codes. Values are stable across ABI versions. */
typedef enum strata_status {
  STRATA_OK = 0,
  STRATA_ERR_INVALID_ARGUMENT = 1, /* bad pointer / size / token id / option  */
  STRATA_ERR_IO = 2,               /* file missing, unreadable or unwritable  */
  STRATA_ERR_FORMAT = 3,           /* malformed manifest / safetensors / npy  */
  STRATA_ERR_WEIGHT_MISMATCH = 4,  /* weights file disagrees with the model   */
  STRATA_ERR_STATE = 5,            /* call order, e.g. forward before weights */
  STRATA_ERR_CUDA = 6,             /* a CUDA call or kernel launch failed     */
  STRATA_ERR_OUT_OF_MEMORY = 7,    /* host or device allocation failed        */
  STRATA_ERR_INTERNAL = 8          /* bug in Strata; please report            */
} strata_status;

/* Opaque model handle. */
typedef struct strata_model strata_model;

/* Creation options. Always initialise with strata_options_init() and then
 * override fields, so that fields added later get their defaults. */
typedef struct strata_options {
  uint32_t struct_size; /* sizeof(strata_options); set by strata_options_init */
  int32_t device;       /* CUDA device ordinal. Default 0.                    */
  int32_t verbose;      /* 0 = quiet, 1 = progress messages on stderr.         */
} strata_options;

/* Fill *opts with defaults. */
STRATA_API void strata_options_init(strata_options* opts);

/* Sizes a caller needs to allocate buffers for strata_model_forward. */
typedef struct strata_dims {
  int64_t vocab_size; /* logits per token                                 */
  int64_t max_batch;  /* largest batch accepted by strata_model_forward   */
  int64_t max_seqlen; /* largest seqlen accepted by strata_model_forward  */
} strata_dims;

/* Create a model from its manifest.
 *  manifest_path_or_dir: the manifest.json written by the compiler, or the
 *    directory that contains it (then "<dir>/manifest.json" is used).
 *  opts: NULL for defaults.
 * Allocates device memory (the arena from the memory plan) but does not load
 * weights: call strata_model_load_weights or strata_model_init_weights next.
 * Returns NULL on failure (see strata_last_error()). */
STRATA_API strata_model* strata_model_create(const char* manifest_path_or_dir,
                                             const strata_options* opts);

/* Load all weights from a safetensors file. Every tensor listed in the
 * manifest must be present with exactly the manifest's dtype and shape;
 * otherwise STRATA_ERR_WEIGHT_MISMATCH naming the tensor (expected vs got).
 * Tensors in the file that the model does not use are also reported. */
STRATA_API strata_status strata_model_load_weights(strata_model* model, const char* path);

/* Initialise all weights deterministically from the manifest's init specs.
 * Same seed => bit-identical weights, on any machine and thread count.
 * The algorithm is specified in runtime/INIT.md. */
STRATA_API strata_status strata_model_init_weights(strata_model* model, uint64_t seed);

/* Run a forward pass.
 *  tokens:     host int32 array, shape [batch, seqlen], row-major; each id in
 *              [0, vocab_size).
 *  batch:      1 .. max_batch;  seqlen: 1 .. max_seqlen (see strata_model_dims).
 *  logits_out: host float32 array, shape [batch, seqlen, vocab_size],
 *              row-major, allocated by the caller; fully overwritten.
 * Weights must have been loaded or initialised first (else STRATA_ERR_STATE).
 * Blocks until the logits are on the host. */
STRATA_API strata_status strata_model_forward(strata_model* model, const int32_t* tokens,
                                              int batch, int seqlen, float* logits_out);

/* ---- Cached entry points: prefill and step over a state handle ---------------------------
 *
 * A state handle holds the state of `batch` sequences between calls: the Mamba SSM and conv
 * states and the attention KV caches (sized for the compiled max context), and how many tokens
 * the sequences hold (their position). One model can serve several handles, one call at a time.
 */
typedef struct strata_state strata_state;

/* Allocate the state of `batch` sequences (1 .. max_batch) of up to `context` tokens each (1 ..
 * the compiled max context; 0 = that maximum), empty (position 0). The KV caches are sized by
 * `context`; SSM and conv states do not grow. When the device cannot hold it, fails with
 * STRATA_ERR_OUT_OF_MEMORY naming the bytes needed and free, before anything is allocated.
 * Returns NULL on failure (see strata_last_error()). */
STRATA_API strata_state* strata_state_create(strata_model* model, int batch, int context);

/* Sequences in the handle, and tokens each already holds. */
STRATA_API int strata_state_batch(const strata_state* state);
STRATA_API int64_t strata_state_position(const strata_state* state);

/* For benchmarks and cache surgery: declare that the sequences hold `position` tokens
 * (0 .. context) without computing them; the caches keep whatever they hold. A decode step then
 * costs what it costs at that position. */
STRATA_API strata_status strata_state_set_position(strata_state* state, int64_t position);

/* Free the state. NULL is ignored. Destroy states before their model. */
STRATA_API void strata_state_destroy(strata_state* state);

/* Flags of strata_model_prefill. */
#define STRATA_PREFILL_CONTINUE 1u /* append to the sequences instead of starting them anew */
#define STRATA_LOGITS_LAST 2u      /* logits of the last position only: [batch, vocab] */

/* Run a prompt: tokens [batch, seqlen] (batch = the handle's). Without STRATA_PREFILL_CONTINUE the
 * sequences start anew (state reset); with it they continue (chunked prefill of long prompts).
 * seqlen: 1 .. max_seqlen per call, and position + seqlen <= max context.
 * logits_out: float32 [batch, seqlen, vocab], or [batch, vocab] with STRATA_LOGITS_LAST. */
STRATA_API strata_status strata_model_prefill(strata_model* model, strata_state* state, const int32_t* tokens, int seqlen,
                                              uint32_t flags, float* logits_out);

/* Decode one token per sequence: tokens [batch] → logits_out float32 [batch, vocab]. The
 * sequences must hold at least one token (prefill first). */
STRATA_API strata_status strata_model_step(strata_model* model, strata_state* state, const int32_t* tokens, float* logits_out);

/* ---- Generation ----------------------------------------------------------------------- */

/* How the next token is chosen. Initialise with strata_sampling_init (greedy). */
typedef struct strata_sampling {
  uint32_t struct_size;     /* sizeof(strata_sampling); set by strata_sampling_init              */
  float temperature;        /* 0 = greedy (argmax); > 0 divides the logits                         */
  int32_t top_k;            /* keep the k most likely tokens; 0 = all                             */
  float top_p;              /* keep the smallest set of likeliest tokens with mass >= top_p; 1 = all */
  float repetition_penalty; /* > 1 discourages tokens already in the sequence; 1 = off            */
  uint64_t seed;            /* the draw of sequence i at step s uses Philox(seed, i, s)           */
} strata_sampling;

STRATA_API void strata_sampling_init(strata_sampling* sampling);

/* Timings of one strata_model_generate call (host wall clock). */
typedef struct strata_generate_stats {
  double prefill_ms;         /* prompt through the model and the first token sampled (= time to first token) */
  double decode_ms;          /* every later token                                                   */
  int64_t prompt_tokens;     /* per sequence                                                        */
  int64_t generated_tokens;  /* over all sequences                                                  */
  int32_t steps;             /* decode steps run                                                    */
} strata_generate_stats;

/* Called after each sampled token with tokens [batch] (-1 for a sequence that stopped at an
 * earlier step) and done [batch] (1 once a sequence has stopped, its stop token included).
 * Return 0 to go on, non-zero to stop. */
typedef int (*strata_token_callback)(void* user, int32_t index, const int32_t* tokens, const uint8_t* done, int32_t batch);

/* Flags of strata_model_generate. */
#define STRATA_GENERATE_CONTINUE 1u /* the prompt continues the sequences (e.g. the next turn of a chat) */
/* The callback only observes: its return value is ignored, and it may be called for several steps
 * at once, after they ran. Without stop tokens generate then queues decode steps ahead instead of
 * waiting for each step's tokens (STRATA_DECODE_AHEAD, runtime/README.md). */
#define STRATA_GENERATE_STREAM 2u

/* Generate: the prompt [batch, prompt_len] (batch = the state's; any length up to the state's
 * context, run in chunks of the per-call token budget) starts the sequences anew (or, with
 * STRATA_GENERATE_CONTINUE, continues them after their position), then up to max_new_tokens are
 * sampled on the GPU per sequence. A sequence stops after one of stop_tokens[0..n_stop) (which is
 * included in its output) or at max_new_tokens. out_tokens [batch, max_new_tokens] gets the
 * tokens (-1 after a sequence stopped), out_lengths [batch] their counts. callback, stats: NULL
 * for none. prompt_len + max_new_tokens - 1 must fit the compiled context.
 * A sequence that stops before the last decode step frees its slot for the others (compaction,
 * runtime/README.md; STRATA_COMPACT=0 turns it off): afterwards its history is gone (its slot,
 * which another sequence may have used, is cleared to zeros), so do not continue it
 * (STRATA_GENERATE_CONTINUE, a continued prefill or a step); the sequences that ran to the last
 * step continue correctly. */
STRATA_API strata_status strata_model_generate(strata_model* model, strata_state* state, const int32_t* prompt, int prompt_len,
                                               int max_new_tokens, uint32_t flags, const strata_sampling* sampling, const int32_t* stop_tokens, int n_stop,
                                               int32_t* out_tokens, int32_t* out_lengths, strata_token_callback callback, void* user,
                                               strata_generate_stats* stats);

/* Query buffer sizes. */
STRATA_API strata_status strata_model_dims(const strata_model* model, strata_dims* out);

/* ---- Training (a model compiled with `strata compile --train`) ----------------------------
 * One forward + loss + backward on the device: tokens, targets (int32) and loss weights (float)
 * are host arrays [batch, seqlen]; *loss_out = Σ w·CE / Σ w (NaN when Σ w = 0). The gradients
 * stay on the device until the model's next call of any entry (they share its activation memory:
 * a forward, prefill, step or generate since the last train step makes strata_model_gradient fail
 * with STRATA_ERR_STATE); strata_model_gradient copies one (by weight name, f32,
 * `count` = its number of elements) to the host. The weights are not changed (`bin/model train`
 * runs the optimizer). STRATA_ERR_STATE when the model has no train entry. */
STRATA_API strata_status strata_model_train_step(strata_model* model, const int32_t* tokens, const int32_t* targets, const float* weights,
                                                 int batch, int seqlen, float* loss_out);
STRATA_API strata_status strata_model_gradient(strata_model* model, const char* weight_name, float* out, size_t count);

/* Describe the model as a JSON object: name, dims, weight table (name, dtype,
 * shape), whether weights are loaded, plus model-specific fields under
 * "model". The string is owned by the handle and stays valid until the next
 * call to this function on the same handle or strata_model_destroy.
 * Returns NULL on failure. */
STRATA_API const char* strata_model_info_json(strata_model* model);

/* Free the model and its device memory. NULL is ignored. */
STRATA_API void strata_model_destroy(strata_model* model);

/* Message for the most recent failure on the calling thread; "" if none.
 * Valid until the next failing Strata call on this thread. */
STRATA_API const char* strata_last_error(void);

/* Short constant name for a status code, e.g. "STRATA_ERR_IO". */
STRATA_API const char* strata_status_name(strata_status status);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* STRATA_H_ */
