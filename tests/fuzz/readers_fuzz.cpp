// Mutation fuzzer for the runtime's file readers: safetensors, .npy and manifest JSON.
//
// Built with g++ -fsanitize=address,undefined (tests/fuzz/readers_fuzz.sh) so any out-of-bounds
// read, overflow, use-after-free or undefined behaviour aborts the run. A corpus of valid files is
// made with the runtime's own writers; each round picks one, mutates it (bit flips, interesting
// bytes, truncation, insertion, deletion, chunk duplication, length fields set to edge values,
// JSON token splices) and reads it back. Every input must either be accepted (then its contents
// are walked: tensor bytes read, weights validated, init run on small tensors) or be rejected by a
// strata::Error whose message is non-empty and names the file. Any other exception is a failure.
//
//   readers_fuzz SECONDS SEED [MAX_INPUTS]     prints "readers fuzz: N inputs … 0 failures"
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include "dtype.h"
#include "error.h"
#include "init.h"
#include "json.h"
#include "npy.h"
#include "safetensors.h"
#include "strata_model_iface.h"

using namespace strata;
namespace fs = std::filesystem;

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {  // xorshift64*
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  }
  size_t below(size_t n) { return n ? static_cast<size_t>(next() % n) : 0; }
};

std::string g_dir;
int g_failures = 0;

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_file(const std::string& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// ---- corpus ---------------------------------------------------------------------------------

std::vector<std::string> safetensors_corpus() {
  std::vector<std::string> out;
  std::vector<float> f(64);
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) * 0.5f - 3.0f;
  std::vector<uint16_t> h(64, 0x3f80);
  std::vector<int32_t> n(16, 7);
  std::vector<int64_t> l(4, -2);
  const std::string p = g_dir + "/c.safetensors";
  write_safetensors(p, {{"embed.weight", DType::F32, {4, 8}, f.data()}, {"norm", DType::BF16, {8}, h.data()}});
  out.push_back(read_file(p));
  write_safetensors(p, {{"a", DType::F16, {2, 3, 4}, h.data()}, {"b", DType::I32, {16}, n.data()}, {"c", DType::I64, {4}, l.data()}},
                    {{"format", "pt"}, {"note", "x"}});
  out.push_back(read_file(p));
  write_safetensors(p, {{"scalar", DType::F32, {}, f.data()}, {"empty", DType::F32, {0, 3}, f.data()}});
  out.push_back(read_file(p));
  return out;
}

std::vector<std::string> npy_corpus() {
  std::vector<std::string> out;
  const std::string p = g_dir + "/c.npy";
  int32_t t[6] = {1, 2, 3, 4, 5, 0};
  write_npy_i32(p, {2, 3}, t);
  out.push_back(read_file(p));
  float f[8] = {0.5f, -1, 2, 3, 4, 5, 6, 7};
  write_npy_f32(p, {2, 2, 2}, f);
  out.push_back(read_file(p));
  write_npy_i32(p, {1, 1}, t);
  out.push_back(read_file(p));
  return out;
}

const char* kManifests[] = {
    R"({"name": "m", "vocabSize": 5, "maxBatch": 2, "maxSeqlen": 4, "arenaBytes": 1024,
  "weights": [
    {"name": "embed", "dtype": "F32", "shape": [5, 2], "init": {"kind": "normal", "std": 1}},
    {"name": "bias", "dtype": "BF16", "shape": [5], "init": {"kind": "uniform", "low": -1, "high": 1}},
    {"name": "A_log", "dtype": "F32", "shape": [3], "init": {"kind": "alog_uniform", "low": 1, "high": 16}},
    {"name": "A2", "dtype": "F32", "shape": [2, 4], "init": {"kind": "alog_arange", "n": 4}},
    {"name": "dt_bias", "dtype": "F16", "shape": [3], "init": {"kind": "dt_bias", "dtMin": 0.001, "dtMax": 0.1, "floor": 1e-4}},
    {"name": "conv", "dtype": "F32", "shape": [3, 1, 4], "init": {"kind": "kaiming_uniform", "fanIn": 4}},
    {"name": "ones", "dtype": "F32", "shape": [3], "init": {"kind": "const", "value": 1}},
    {"name": "step", "dtype": "I32", "shape": [1], "init": {"kind": "const", "value": 3}}
  ], "config": {"dModel": 2, "pattern": "M*-", "eps": 1e-5, "tied": false, "x": null, "s": "\u00e9\n\"q\""}})",
    R"({"vocabSize": 256000, "maxBatch": 1, "maxSeqlen": 4096, "weights": [], "kernels": [{"name": "k", "tiles": [128, 256, 64]}]})",
};

// ---- mutations ------------------------------------------------------------------------------

const char* kTokens[] = {"{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "0", "-1", "1e309", "-0", "1.5",
                         "18446744073709551616", "9223372036854775807", "-9223372036854775808", "null", "true",
                         "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"F32\"", "\"BF16\"", "\"I64\"", "\"__metadata__\"",
                         "\"init\"", "\"kind\"", "\"weights\"", "\"vocabSize\"", "'shape': (", "'descr': '<i4'", "(", ")",
                         "4294967296", "2147483648", "65535", "\xff", std::string(1, '\0').c_str()};

std::string mutate(std::string s, Rng& r) {
  const int steps = 1 + static_cast<int>(r.below(4));
  for (int k = 0; k < steps; ++k) {
    switch (r.below(10)) {
      case 0:  // flip a bit
        if (!s.empty()) s[r.below(s.size())] ^= static_cast<char>(1u << r.below(8));
        break;
      case 1: {  // interesting byte
        static const unsigned char v[] = {0, 0xff, 0x7f, 0x80, '0', '9', '"', ',', ']', '}'};
        if (!s.empty()) s[r.below(s.size())] = static_cast<char>(v[r.below(sizeof v)]);
        break;
      }
      case 2:  // truncate
        s.resize(r.below(s.size() + 1));
        break;
      case 3: {  // insert random bytes
        std::string ins(1 + r.below(8), '\0');
        for (auto& c : ins) c = static_cast<char>(r.next());
        s.insert(r.below(s.size() + 1), ins);
        break;
      }
      case 4:  // delete a range
        if (!s.empty()) {
          size_t a = r.below(s.size());
          s.erase(a, 1 + r.below(std::min<size_t>(16, s.size() - a)));
        }
        break;
      case 5:  // duplicate a chunk
        if (!s.empty()) {
          size_t a = r.below(s.size()), n = 1 + r.below(std::min<size_t>(32, s.size() - a));
          s.insert(r.below(s.size() + 1), s.substr(a, n));
        }
        break;
      case 6: {  // a little-endian length field (safetensors' u64 header size, npy's u16/u32) set to an edge value
        static const uint64_t v[] = {0, 1, 7, 8, 0xffff, 0xffffffffULL, 0x7fffffffffffffffULL, ~0ULL, 100000001ULL};
        uint64_t x = v[r.below(sizeof v / sizeof v[0])];
        size_t at = r.below(2) ? 0 : (s.size() > 8 ? 8 : 0);
        for (int i = 0; i < 8 && at + i < s.size(); ++i) s[at + i] = static_cast<char>(x >> (8 * i));
        break;
      }
      case 7: {  // splice a JSON / header token over a range
        std::string t = kTokens[r.below(sizeof kTokens / sizeof kTokens[0])];
        size_t a = r.below(s.size() + 1);
        s.replace(a, std::min<size_t>(r.below(6), s.size() - a), t);
        break;
      }
      case 8: {  // nudge a number in the text by a small amount (offsets and shapes off by a few)
        size_t a = r.below(s.size() + 1);
        while (a < s.size() && !(s[a] >= '0' && s[a] <= '9')) ++a;
        size_t b = a;
        while (b < s.size() && b - a < 18 && s[b] >= '0' && s[b] <= '9') ++b;
        if (a < b) {
          long long v = std::atoll(s.substr(a, b - a).c_str()) + static_cast<long long>(r.below(33)) - 16;
          s.replace(a, b - a, std::to_string(v < 0 ? -v : v));
        }
        break;
      }
      default: {  // replace a number in the text with an extreme one
        size_t a = r.below(s.size() + 1);
        while (a < s.size() && !(s[a] >= '0' && s[a] <= '9')) ++a;
        size_t b = a;
        while (b < s.size() && s[b] >= '0' && s[b] <= '9') ++b;
        static const char* v[] = {"0", "99999999999999999999", "4294967295", "2147483647", "1e400", "-5"};
        if (a < s.size()) s.replace(a, b - a, v[r.below(6)]);
      }
    }
  }
  return s;
}

// ---- one input ------------------------------------------------------------------------------

void fail(const char* kind, const std::string& why, const std::string& input, uint64_t index) {
  ++g_failures;
  std::string keep = g_dir + "/failure-" + std::to_string(index) + "." + kind;
  write_file(keep, input);
  std::printf("FAIL %s input #%llu: %s (input kept at %s)\n", kind, static_cast<unsigned long long>(index), why.c_str(),
              keep.c_str());
}

// The rejection must be a strata::Error that names the file (or, for JSON text, says what it parsed).
void check_named(const Error& e, const char* kind, const std::string& name, const std::string& input, uint64_t index) {
  std::string m = e.what();
  if (m.empty() || m.find(name) == std::string::npos)
    fail(kind, "rejection does not name '" + name + "': " + m, input, index);
}

uint64_t g_accepted = 0, g_rejected = 0;

void run_safetensors(const std::string& bytes, uint64_t index) {
  const std::string p = g_dir + "/in.safetensors";
  write_file(p, bytes);
  try {
    SafetensorsFile f(p);
    // The mapping is not instrumented by ASan, so check the reader's promises directly: every
    // tensor lies inside the data section, has numel·size bytes, and the tensors tile it.
    uint64_t hlen = 0;
    for (int i = 0; i < 8; ++i) hlen |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
    const uint64_t data_size = bytes.size() - 8 - hlen;
    uint64_t next = 0;
    for (const auto& t : f.tensors()) {
      uint64_t numel = 1;
      for (int64_t d : t.shape) numel *= static_cast<uint64_t>(d);
      if (t.begin != next || t.end < t.begin || t.end > data_size || t.nbytes() != numel * dtype_size(t.dtype))
        fail("safetensors", "accepted a tensor '" + t.name + "' outside or not tiling the data section", bytes, index);
      next = t.end;
    }
    if (next != data_size) fail("safetensors", "accepted a file whose tensors do not cover the data section", bytes, index);
    volatile uint8_t sink = 0;
    for (const auto& t : f.tensors()) {
      const uint8_t* d = f.data(t);
      for (uint64_t i = 0; i < t.nbytes(); ++i) sink = static_cast<uint8_t>(sink + d[i]);  // ASan checks every byte
      (void)f.get(t.name);
    }
    std::vector<ExpectedTensor> want = {{"embed.weight", DType::F32, {4, 8}}, {"norm", DType::BF16, {8}}};
    try {
      f.validate_against(want);
    } catch (const Error& e) {
      check_named(e, "safetensors", p, bytes, index);
    }
    ++g_accepted;
  } catch (const Error& e) {
    ++g_rejected;
    check_named(e, "safetensors", p, bytes, index);
  } catch (const std::exception& e) {
    fail("safetensors", std::string("unnamed exception: ") + e.what(), bytes, index);
  }
}

void run_npy(const std::string& bytes, uint64_t index) {
  const std::string p = g_dir + "/in.npy";
  write_file(p, bytes);
  try {
    NpyArray a = read_npy(p);
    uint64_t numel = 1;
    for (int64_t d : a.shape) numel *= static_cast<uint64_t>(d);
    const uint64_t item = static_cast<uint64_t>(a.descr.back() - '0');
    if (a.data.size() != numel * item || a.data.size() > bytes.size())
      fail("npy", "accepted data of " + std::to_string(a.data.size()) + " bytes for " + std::to_string(numel) + " elements", bytes, index);
    volatile uint8_t sink = 0;
    for (uint8_t b : a.data) sink = static_cast<uint8_t>(sink + b);
    try {
      int64_t b = 0, s = 0;
      std::vector<int32_t> t = read_npy_tokens(p, &b, &s);
      if (static_cast<int64_t>(t.size()) != b * s) fail("npy", "token count differs from batch·seqlen", bytes, index);
    } catch (const Error& e) {
      check_named(e, "npy", p, bytes, index);
    }
    ++g_accepted;
  } catch (const Error& e) {
    ++g_rejected;
    check_named(e, "npy", p, bytes, index);
  } catch (const std::exception& e) {
    fail("npy", std::string("unnamed exception: ") + e.what(), bytes, index);
  }
}

void run_manifest(const std::string& text, uint64_t index) {
  const std::string p = g_dir + "/manifest.json";
  write_file(p, text);
  try {
    Manifest m = load_manifest(p);
    for (const auto& w : m.weights) {
      if (!w.has_init || w.numel > 4096 || w.dtype == DType::I32 || w.dtype == DType::I64) continue;
      std::vector<float> buf(static_cast<size_t>(w.numel));
      init_tensor(w.init, 1, w.name, buf.data(), buf.size(), 1);
    }
    (void)json::dump(m.json, 1);
    ++g_accepted;
  } catch (const Error& e) {
    ++g_rejected;
    check_named(e, "manifest", p, text, index);
  } catch (const std::exception& e) {
    fail("manifest", std::string("unnamed exception: ") + e.what(), text, index);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  const uint64_t max_inputs = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : UINT64_MAX;
  char tmpl[] = "/tmp/strata_readers_fuzz.XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 2;
  }
  g_dir = tmpl;
  const auto st = safetensors_corpus();
  const auto np = npy_corpus();
  std::vector<std::string> mf(std::begin(kManifests), std::end(kManifests));
  // the corpus itself must be accepted
  for (const auto& s : st) run_safetensors(s, 0);
  for (const auto& s : np) run_npy(s, 0);
  for (const auto& s : mf) run_manifest(s, 0);
  if (g_rejected != 0 || g_failures != 0) {
    std::printf("FAIL the valid corpus was rejected (%llu rejected)\n", static_cast<unsigned long long>(g_rejected));
    return 1;
  }
  Rng r{seed * 0x9E3779B97F4A7C15ULL + 1};
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t n = 0;
  std::map<std::string, uint64_t> per;
  while (n < max_inputs) {
    if ((n & 63) == 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > seconds) break;
    ++n;
    switch (r.below(3)) {
      case 0: run_safetensors(mutate(st[r.below(st.size())], r), n); ++per["safetensors"]; break;
      case 1: run_npy(mutate(np[r.below(np.size())], r), n); ++per["npy"]; break;
      default: run_manifest(mutate(mf[r.below(mf.size())], r), n); ++per["manifest"]; break;
    }
    if (g_failures >= 10) break;
  }
  std::printf("readers fuzz: seed %llu, %llu inputs (safetensors %llu, npy %llu, manifest %llu): %llu accepted, %llu rejected "
              "with a named error, %d failures\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(per["safetensors"]), static_cast<unsigned long long>(per["npy"]),
              static_cast<unsigned long long>(per["manifest"]), static_cast<unsigned long long>(g_accepted),
              static_cast<unsigned long long>(g_rejected), g_failures);
  if (g_failures == 0) fs::remove_all(g_dir);
  return g_failures ? 1 : 0;
}
