// `bin/model generate` — through the C ABI only, like any caller:
//
//   model generate (--prompt IDS | --tokens PROMPT.npy) [--max-new N] [--temperature T] [--top-k K]
//                  [--top-p P] [--repetition-penalty R] [--sample-seed S] [--stop IDS]
//                  [--weights W.safetensors | --seed N] [--out OUT.npy] [--manifest PATH] [--quiet]
//
// IDS is a comma-separated list of token ids (one sequence); PROMPT.npy is int32 [batch, len]
// (one prompt per sequence, all the same length). Every token is printed as it is sampled: one
// line per step, "step <i>: <id of seq 0> <id of seq 1> …" (stopped sequences print '-'), then
// a JSON summary on stderr: prompt/generated tokens, time to first token, prefill and decode
// tokens per second, and how often stopped sequences were compacted out of the batch (with the
// sequence-steps that saved). --out writes int32 [batch, max_new] (-1 after a sequence stopped).
#include "cli_generate.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "cli_common.h"
#include "error.h"
#include "json.h"
#include "npy.h"
#include "strata.h"
#include "strata_model_iface.h"

namespace strata {
namespace {

const char* kUsage =
    "usage: model generate (--prompt IDS | --tokens PROMPT.npy) [--max-new N] [--temperature T] [--top-k K]\n"
    "                      [--top-p P] [--repetition-penalty R] [--sample-seed S] [--stop IDS]\n"
    "                      [--weights W.safetensors | --seed N] [--out OUT.npy] [--manifest PATH] [--quiet]\n"
    "  IDS: comma-separated token ids, e.g. 1,15,27 (one sequence); PROMPT.npy: int32 [batch, len]\n"
    "  defaults: --max-new 32, greedy (--temperature 0), no top-k/top-p/penalty, --sample-seed 0\n";

std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i <= text.size()) {
    const size_t j = text.find(',', i);
    const std::string part = text.substr(i, j == std::string::npos ? std::string::npos : j - i);
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos)
      throw Error(flag + ": '" + part + "' is not a token id (expected comma-separated non-negative integers, e.g. 1,15,27)");
    const uint64_t v = parse_u64(part, flag);
    if (v > 0x7fffffffu) throw Error(flag + ": token id " + part + " is too large");
    ids.push_back(static_cast<int32_t>(v));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return ids;
}

double parse_f(const std::string& v, const std::string& flag) {
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(v.c_str(), &end);
  if (errno || !end || *end || v.empty()) throw Error(flag + ": '" + v + "' is not a number");
  return d;
}

struct StreamCtx {
  bool quiet;
};

int on_token(void* user, int32_t index, const int32_t* tokens, const uint8_t* done, int32_t batch) {
  if (static_cast<StreamCtx*>(user)->quiet) return 0;
  std::printf("step %d:", index);
  for (int b = 0; b < batch; ++b) {
    // a sequence that stopped at an earlier step prints '-'; the stop token itself is printed
    (void)done;
    if (tokens[b] < 0) std::printf(" -");
    else std::printf(" %d", tokens[b]);
  }
  std::printf("\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace

int cli_generate(int argc, char** argv, const std::string& default_manifest) {
  std::map<std::string, std::string> o;
  bool quiet = false;
  try {
    static const char* valid[] = {"--prompt", "--tokens", "--max-new", "--temperature", "--top-k", "--top-p", "--repetition-penalty",
                                  "--sample-seed", "--stop", "--weights", "--seed", "--out", "--manifest"};
    for (int i = 2; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
      }
      if (a == "--quiet") {
        quiet = true;
        continue;
      }
      std::string flag = a, value;
      const size_t eq = a.find('=');
      if (eq != std::string::npos) flag = a.substr(0, eq), value = a.substr(eq + 1);
      bool known = false;
      for (const char* v : valid) known = known || flag == v;
      if (!known) throw Error("unknown option '" + flag + "' for 'generate'");
      if (o.count(flag)) throw Error("option '" + flag + "' given more than once");
      if (eq == std::string::npos) {
        if (i + 1 >= argc) throw Error("option '" + flag + "' needs a value");
        value = argv[++i];
      }
      if (value.empty()) throw Error("option '" + flag + "' needs a non-empty value");
      o[flag] = value;
    }
    if (o.count("--prompt") == o.count("--tokens")) throw Error("give the prompt as --prompt IDS or --tokens PROMPT.npy (exactly one)");
    if (o.count("--weights") && o.count("--seed")) throw Error("give either --weights (load a file) or --seed (deterministic init), not both");
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n\n%s", e.what(), kUsage);
    return 2;
  }
  try {
    std::vector<int32_t> prompt;
    int64_t batch = 1, len = 0;
    if (o.count("--prompt")) {
      prompt = parse_ids(o["--prompt"], "--prompt");
      len = static_cast<int64_t>(prompt.size());
    } else {
      prompt = read_npy_tokens(o["--tokens"], &batch, &len);
    }
    const int max_new = o.count("--max-new") ? static_cast<int>(parse_u64(o["--max-new"], "--max-new")) : 32;
    strata_sampling sp;
    strata_sampling_init(&sp);
    if (o.count("--temperature")) sp.temperature = static_cast<float>(parse_f(o["--temperature"], "--temperature"));
    if (o.count("--top-k")) sp.top_k = static_cast<int32_t>(parse_u64(o["--top-k"], "--top-k"));
    if (o.count("--top-p")) sp.top_p = static_cast<float>(parse_f(o["--top-p"], "--top-p"));
    if (o.count("--repetition-penalty")) sp.repetition_penalty = static_cast<float>(parse_f(o["--repetition-penalty"], "--repetition-penalty"));
    if (o.count("--sample-seed")) sp.seed = parse_u64(o["--sample-seed"], "--sample-seed");
    std::vector<int32_t> stop;
    if (o.count("--stop")) stop = parse_ids(o["--stop"], "--stop");
    const std::string manifest = o.count("--manifest") ? o["--manifest"] : default_manifest;
    // everything the host can check, before the model (and the GPU) is touched
    const Manifest mf = load_manifest(manifest);
    if (batch < 1 || batch > mf.max_batch)
      throw Error("generate: " + std::to_string(batch) + " prompts; this model serves 1.." + std::to_string(mf.max_batch) + " sequences");
    for (size_t i = 0; i < prompt.size(); ++i)
      if (prompt[i] < 0 || prompt[i] >= mf.vocab_size)
        throw Error("generate: prompt token " + std::to_string(prompt[i]) + " (position " + std::to_string(i % len) + " of sequence " +
                    std::to_string(i / len) + ") is outside the vocabulary [0, " + std::to_string(mf.vocab_size) + ")");
    for (int32_t t : stop)
      if (t < 0 || t >= mf.vocab_size) throw Error("generate: stop token " + std::to_string(t) + " is outside the vocabulary");
    if (o.count("--weights")) check_weights_file(mf, o["--weights"]);

    strata_options opts;
    strata_options_init(&opts);
    strata_model* m = strata_model_create(manifest.c_str(), &opts);
    if (!m) throw Error(strata_last_error(), STRATA_ERR_IO);
    struct Guard {
      strata_model* m;
      strata_state* s = nullptr;
      ~Guard() {
        strata_state_destroy(s);
        strata_model_destroy(m);
      }
    } g{m};
    auto ok = [](strata_status st) {
      if (st != STRATA_OK) throw Error(strata_last_error(), st);
    };
    if (o.count("--weights")) ok(strata_model_load_weights(m, o["--weights"].c_str()));
    else ok(strata_model_init_weights(m, o.count("--seed") ? parse_u64(o["--seed"], "--seed") : 0));
    // the state's KV caches hold the prompt and the new tokens (at most the compiled context: past
    // it, generate itself says what would fit)
    int64_t context = len + max_new;
    if (const json::Value* mc = mf.json.find("maxContext")) context = std::min<int64_t>(context, mc->as_int());
    g.s = strata_state_create(m, static_cast<int>(batch), static_cast<int>(context));
    if (!g.s) throw Error(strata_last_error(), STRATA_ERR_INVALID_ARGUMENT);
    std::vector<int32_t> out(static_cast<size_t>(batch) * max_new), lengths(static_cast<size_t>(batch));
    StreamCtx ctx{quiet};
    strata_generate_stats st{};
    // the printing callback never stops generation: it streams (with no stop ids, steps run ahead
    // and their lines come in bursts)
    ok(strata_model_generate(m, g.s, prompt.data(), static_cast<int>(len), max_new, STRATA_GENERATE_STREAM, &sp, stop.data(), static_cast<int>(stop.size()), out.data(),
                             lengths.data(), on_token, &ctx, &st));
    if (o.count("--out")) write_npy_i32(o["--out"], {batch, max_new}, out.data());
    const double prefill_tps = st.prefill_ms > 0 ? batch * st.prompt_tokens / (st.prefill_ms * 1e-3) : 0;
    const double decode_tps = st.decode_ms > 0 ? (st.generated_tokens - batch) / (st.decode_ms * 1e-3) : 0;
    // compaction of stopped sequences: strata_generate_stats has no size field to grow by, so the
    // counts come from the model's info JSON (the executor's last generate)
    long long compactions = 0, skipped = 0;
    if (const char* info = strata_model_info_json(m)) {
      const json::Value v = json::parse(info, "model info");
      const json::Value* lg = v.find("model") ? v.find("model")->find("lastGenerate") : nullptr;
      if (lg && lg->find("compactions")) compactions = lg->find("compactions")->as_int();
      if (lg && lg->find("skippedSequenceSteps")) skipped = lg->find("skippedSequenceSteps")->as_int();
    }
    std::fprintf(stderr,
                 "{\"batch\": %lld, \"promptTokens\": %lld, \"generatedTokens\": %lld, \"steps\": %d, \"timeToFirstTokenMs\": %.3f, "
                 "\"prefillTokensPerS\": %.1f, \"decodeMs\": %.3f, \"decodeTokensPerS\": %.1f, \"compactions\": %lld, \"skippedSequenceSteps\": %lld}\n",
                 static_cast<long long>(batch), static_cast<long long>(st.prompt_tokens), static_cast<long long>(st.generated_tokens), st.steps,
                 st.prefill_ms, prefill_tps, st.decode_ms, decode_tps, compactions, skipped);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

}  // namespace strata
