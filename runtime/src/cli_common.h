// Argument parsing and the whole main() of the generated `bin/model` CLI:
//
//   model info    [--manifest PATH]
//   model forward --tokens FILE.npy --out FILE.npy [--weights FILE.safetensors]
//                 [--seed N] [--manifest PATH] [--verbose]
//
// The generated main.cpp is just:
//   int main(int argc, char** argv) { return strata::cli_main(argc, argv, "<default manifest>"); }
// cli_main uses only the C ABI (strata.h), like any external caller would.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace strata {

struct CliArgs {
  std::string command;   // "info", "forward" or "help"
  std::string manifest;  // empty: use the default given to cli_main
  std::string tokens;    // forward: input .npy int32 [batch, seqlen]
  std::string out;       // forward: output .npy float32 [batch, seqlen, vocab]
  std::string weights;   // forward: safetensors file (optional)
  bool has_seed = false; // forward: --seed given
  uint64_t seed = 0;
  bool verbose = false;
};

// Usage text for `prog`.
std::string cli_usage(const std::string& prog);

// Parse argv (argv[0] is the program). Throws strata::Error
// (STRATA_ERR_INVALID_ARGUMENT) on unknown subcommand/option, missing
// value, bad number, conflicting or missing required options, or an input
// file that cannot be read.
CliArgs parse_cli(int argc, const char* const* argv);

// Decimal uint64 ("0".."18446744073709551615"); `what` names the option.
uint64_t parse_u64(const std::string& text, const std::string& what);

struct Manifest;
namespace json { class Value; }

// describe_manifest (what `model info` prints) is declared in strata_model_iface.h.
// Tokens [batch, seqlen] against the manifest: shape within maxBatch/maxSeqlen, ids in [0, vocab).
void check_tokens_against(const Manifest& mf, const std::string& path, const std::vector<int32_t>& tokens,
                          int64_t batch, int64_t seqlen);
// A safetensors file against the manifest's weights table (names, dtypes, shapes).
void check_weights_file(const Manifest& mf, const std::string& path);

// Full CLI. `info` and every argument, token and weights-file check run before the model is
// created, so they work (and fail clearly) on a machine without a GPU. Exit codes: 0 success, 1 runtime failure, 2 usage error.
// Errors go to stderr as "error: <message>"; `info` prints JSON to stdout.
int cli_main(int argc, char** argv, const std::string& default_manifest);

}  // namespace strata
