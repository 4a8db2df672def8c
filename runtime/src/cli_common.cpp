#include "cli_common.h"
#include "cli_generate.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "error.h"
#include "json.h"
#include "npy.h"
#include "safetensors.h"
#include "strata.h"
#include "strata_model_iface.h"

namespace strata {

std::string cli_usage(const std::string& prog) {
  return "usage:\n"
         "  " + prog + " info    [--manifest PATH]\n"
         "  " + prog + " forward --tokens TOKENS.npy --out LOGITS.npy [--weights W.safetensors | --seed N]\n"
         "          [--manifest PATH] [--verbose]\n"
         "  " + prog + " generate (--prompt IDS | --tokens PROMPT.npy) [--max-new N] [--temperature T] [--top-k K]\n"
         "          [--top-p P] [--repetition-penalty R] [--sample-seed S] [--stop IDS] [--weights W | --seed N] [--out OUT.npy]\n"
         "  " + prog + " train   --data FILE.tok --steps N --batch B --out DIR [options: model train --help]\n"
         "\n"
         "  info      print the model description (JSON, read from the manifest; needs no GPU)\n"
         "  forward   run the model on TOKENS.npy (int32 [batch, seqlen]) and write\n"
         "            LOGITS.npy (float32 [batch, seqlen, vocab]); weights come from\n"
         "            --weights, or from deterministic init with --seed (default 0)\n"
         "  generate  prefill the prompt, then sample up to --max-new tokens per sequence on the GPU,\n"
         "            printing them as they come and the timings (model generate --help)\n"
         "  train     train the model (compiled with --train): AdamW, checkpoints, --resume (model train --help)\n"
         "  --manifest PATH  manifest.json or its directory (default: the one built with this binary)\n";
}

uint64_t parse_u64(const std::string& text, const std::string& what) {
  if (text.empty()) throw Error(what + " needs a non-negative integer, got an empty string");
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') throw Error(what + " must be a non-negative decimal integer, got '" + text + "'");
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) throw Error(what + " value '" + text + "' does not fit in 64 bits");
    v = v * 10 + d;
  }
  return v;
}

namespace {

void check_readable(const std::string& path, const std::string& flag) {
  if (::access(path.c_str(), R_OK) != 0)
    throw Error(flag + " " + path + ": cannot read file: " + std::strerror(errno), STRATA_ERR_IO);
}

}  // namespace

CliArgs parse_cli(int argc, const char* const* argv) {
  CliArgs a;
  if (argc < 2) throw Error("missing subcommand (expected 'info' or 'forward')");
  a.command = argv[1];
  if (a.command == "-h" || a.command == "--help" || a.command == "help") {
    a.command = "help";
    return a;
  }
  std::vector<std::string> valid;
  if (a.command == "info") {
    valid = {"--manifest", "--verbose"};
  } else if (a.command == "forward") {
    valid = {"--tokens", "--out", "--weights", "--seed", "--manifest", "--verbose"};
  } else {
    throw Error("unknown subcommand '" + a.command + "' (expected 'info' or 'forward')");
  }
  std::vector<std::string> seen;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      a.command = "help";
      return a;
    }
    if (arg.rfind("--", 0) != 0)
      throw Error("unexpected argument '" + arg + "' for '" + a.command + "' (options start with --)");
    std::string flag = arg, value;
    bool has_value = false;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {  // --flag=value
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    bool known = false;
    for (const auto& v : valid) known = known || v == flag;
    if (!known) {
      std::string list;
      for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
      throw Error("unknown option '" + flag + "' for '" + a.command + "' (valid: " + list + ")");
    }
    for (const auto& s : seen)
      if (s == flag) throw Error("option '" + flag + "' given more than once");
    seen.push_back(flag);
    if (flag == "--verbose") {
      if (has_value) throw Error("option '--verbose' takes no value");
      a.verbose = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0)
        throw Error("option '" + flag + "' needs a value");
      value = argv[++i];
    }
    if (value.empty()) throw Error("option '" + flag + "' needs a non-empty value");
    if (flag == "--manifest") a.manifest = value;
    else if (flag == "--tokens") a.tokens = value;
    else if (flag == "--out") a.out = value;
    else if (flag == "--weights") a.weights = value;
    else if (flag == "--seed") {
      a.seed = parse_u64(value, "--seed");
      a.has_seed = true;
    }
  }
  if (a.command == "forward") {
    if (a.tokens.empty()) throw Error("'forward' needs --tokens FILE.npy (int32 [batch, seqlen])");
    if (a.out.empty()) throw Error("'forward' needs --out FILE.npy (logits are written there)");
    if (!a.weights.empty() && a.has_seed)
      throw Error("give either --weights (load a file) or --seed (deterministic init), not both");
    check_readable(a.tokens, "--tokens");
    if (!a.weights.empty()) check_readable(a.weights, "--weights");
  }
  return a;
}

void check_tokens_against(const Manifest& mf, const std::string& path, const std::vector<int32_t>& tokens,
                          int64_t batch, int64_t seqlen) {
  if (batch > mf.max_batch || seqlen > mf.max_seqlen)
    throw Error(path + ": tokens have shape [" + std::to_string(batch) + ", " + std::to_string(seqlen) +
                "] but this model was compiled for at most [" + std::to_string(mf.max_batch) + ", " +
                std::to_string(mf.max_seqlen) + "] (maxBatch, maxSeqlen); recompile with strata compile --max-batch N --max-seq N");
  if (batch < 1 || seqlen < 1)
    throw Error(path + ": tokens have shape [" + std::to_string(batch) + ", " + std::to_string(seqlen) +
                "]; batch and seqlen must be at least 1");
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seqlen; ++s) {
      int32_t t = tokens[static_cast<size_t>(b * seqlen + s)];
      if (t < 0 || t >= mf.vocab_size)
        throw Error(path + ": token id " + std::to_string(t) + " at [" + std::to_string(b) + ", " + std::to_string(s) +
                    "] is outside the vocabulary [0, " + std::to_string(mf.vocab_size) + ")");
    }
}

void check_weights_file(const Manifest& mf, const std::string& path) {
  SafetensorsFile file(path);
  std::vector<ExpectedTensor> expected;
  for (const auto& w : mf.weights) expected.push_back({w.name, w.dtype, w.shape});
  file.validate_against(expected);
}

namespace {

// Throws with the ABI's message when a C call fails.
void check_status(strata_status st) {
  if (st != STRATA_OK) throw Error(strata_last_error(), st);
}

struct ModelHandle {
  strata_model* m = nullptr;
  ~ModelHandle() { strata_model_destroy(m); }
};

}  // namespace

int cli_main(int argc, char** argv, const std::string& default_manifest) {
  if (argc >= 2 && std::string(argv[1]) == "generate") return cli_generate(argc, argv, default_manifest);
  std::string prog = argc > 0 ? argv[0] : "model";
  CliArgs a;
  try {
    a = parse_cli(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n\n%s", e.what(), cli_usage(prog).c_str());
    return 2;
  }
  if (a.command == "help") {
    std::fputs(cli_usage(prog).c_str(), stdout);
    return 0;
  }
  try {
    std::string manifest = a.manifest.empty() ? default_manifest : a.manifest;
    if (manifest.empty()) throw Error("no manifest: pass --manifest PATH");

    // Everything that can be checked on the host is, before the model (and the GPU) is created:
    // the manifest, the description, token shapes and ids, the weights file against the manifest.
    const Manifest mf = load_manifest(manifest);
    if (a.command == "info") {
      std::printf("%s\n", json::dump(describe_manifest(mf), 2).c_str());
      return 0;
    }
    int64_t batch = 0, seqlen = 0;
    std::vector<int32_t> tokens = read_npy_tokens(a.tokens, &batch, &seqlen);
    check_tokens_against(mf, a.tokens, tokens, batch, seqlen);
    if (!a.weights.empty()) check_weights_file(mf, a.weights);

    strata_options opts;
    strata_options_init(&opts);
    opts.verbose = a.verbose ? 1 : 0;
    ModelHandle h;
    h.m = strata_model_create(manifest.c_str(), &opts);
    if (!h.m) throw Error(strata_last_error(), STRATA_ERR_IO);

    strata_dims dims;
    check_status(strata_model_dims(h.m, &dims));
    if (!a.weights.empty()) {
      check_status(strata_model_load_weights(h.m, a.weights.c_str()));
    } else {
      if (!a.has_seed) std::fprintf(stderr, "forward: no --weights given; using deterministic init with seed 0\n");
      check_status(strata_model_init_weights(h.m, a.seed));
    }
    std::vector<float> logits(static_cast<size_t>(batch * seqlen * dims.vocab_size));
    check_status(strata_model_forward(h.m, tokens.data(), static_cast<int>(batch), static_cast<int>(seqlen),
                                      logits.data()));
    write_npy_f32(a.out, {batch, seqlen, dims.vocab_size}, logits.data());
    if (a.verbose)
      std::fprintf(stderr, "forward: wrote %s [%lld, %lld, %lld] float32\n", a.out.c_str(),
                   static_cast<long long>(batch), static_cast<long long>(seqlen),
                   static_cast<long long>(dims.vocab_size));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

}  // namespace strata
