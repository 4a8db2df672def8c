// Host-only tests for the Strata runtime (no GPU, no CUDA headers).
// Prints "PASS name" / "FAIL name: why" per test, then "N passed, M failed";
// exits non-zero if anything failed. Build: tests/runtime/build_and_run.sh
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "cli_common.h"
#include "dtype.h"
#include "init.h"
#include "json.h"
#include "npy.h"
#include "safetensors.h"
#include "strata.h"
#include "strata_model_iface.h"

using namespace strata;
namespace fs = std::filesystem;

// ------------------------------------------------------------ tiny harness

struct TestFailure {
  std::string msg;
};
static int g_passed = 0, g_failed = 0;
static std::string g_tmp;

#define CHECK(cond)                                                                               \
  do {                                                                                            \
    if (!(cond)) throw TestFailure{"line " + std::to_string(__LINE__) + ": CHECK(" #cond ") failed"}; \
  } while (0)

#define CHECK_MSG(cond, extra)                                                                      \
  do {                                                                                              \
    if (!(cond))                                                                                    \
      throw TestFailure{"line " + std::to_string(__LINE__) + ": CHECK(" #cond ") failed: " + (extra)}; \
  } while (0)

// expr must throw strata::Error whose message contains `needle`.
#define CHECK_THROWS(expr, needle)                                                                   \
  do {                                                                                               \
    bool thrown_ = false;                                                                            \
    try {                                                                                            \
      expr;                                                                                          \
    } catch (const strata::Error& e_) {                                                              \
      thrown_ = true;                                                                                \
      if (std::string(e_.what()).find(needle) == std::string::npos)                                  \
        throw TestFailure{"line " + std::to_string(__LINE__) + ": message lacks \"" + (needle) +     \
                          "\": " + e_.what()};                                                       \
    }                                                                                                \
    if (!thrown_) throw TestFailure{"line " + std::to_string(__LINE__) + ": " #expr " did not throw"}; \
  } while (0)

static void run_test(const char* name, const std::function<void()>& fn) {
  try {
    fn();
    ++g_passed;
    std::printf("PASS %s\n", name);
  } catch (const TestFailure& f) {
    ++g_failed;
    std::printf("FAIL %s: %s\n", name, f.msg.c_str());
  } catch (const std::exception& e) {
    ++g_failed;
    std::printf("FAIL %s: unexpected exception: %s\n", name, e.what());
  }
  std::fflush(stdout);
}

static std::string tmp(const std::string& name) { return g_tmp + "/" + name; }

static std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

static void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file with an arbitrary header and `data_bytes` zero bytes.
static std::string raw_safetensors(const std::string& name, const std::string& header, size_t data_bytes) {
  std::string s(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  s += header;
  s.append(data_bytes, '\0');
  std::string path = tmp(name);
  write_bytes(path, s);
  return path;
}

static uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
static float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ------------------------------------------------------------------ JSON

static void test_json() {
  json::Value v = json::parse(R"({"a": [1, -2.5e3, true, null, "x\n\u00e9\ud83d\ude00"], "b": {"c": 9007199254740993}})");
  CHECK(v.find("a")->as_array().size() == 5);
  CHECK(v.find("a")->as_array()[1].as_number() == -2500.0);
  CHECK(v.find("a")->as_array()[4].as_string() == "x\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v.find("b")->find("c")->as_int() == 9007199254740993LL);  // exact beyond 2^53
  json::Value back = json::parse(json::dump(v));
  CHECK(json::dump(back) == json::dump(v));
  CHECK(json::dump(json::parse(json::dump(v, 2))) == json::dump(v));
  CHECK(json::dump(json::Value(0.1)) == "0.10000000000000001");
  CHECK_THROWS(json::parse("{\"a\": 1,}", "h.json"), "h.json: malformed JSON at line 1, column 9");
  CHECK_THROWS(json::parse("{\"a\": 1, \"a\": 2}"), "duplicate key \"a\"");
  CHECK_THROWS(json::parse("[1, 2"), "expected ',' or ']'");
  CHECK_THROWS(json::parse("{}\n x"), "line 2");
  CHECK_THROWS(json::parse("\"abc"), "unterminated string");
  CHECK_THROWS(json::parse(std::string(300, '[') + std::string(300, ']')), "nesting deeper");
  CHECK_THROWS(json::parse("1").as_string(), "expected JSON string, got number");
}

// ---------------------------------------------------------------- dtypes

static void test_dtype_conversion() {
  CHECK(f32_to_bf16(1.0f) == 0x3f80);
  CHECK(f32_to_bf16(bits_f32(0x3f808000u)) == 0x3f80);  // tie -> even (down)
  CHECK(f32_to_bf16(bits_f32(0x3f818000u)) == 0x3f82);  // tie -> even (up)
  CHECK(f32_to_bf16(bits_f32(0x3f808001u)) == 0x3f81);  // above tie -> up
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  CHECK(bf16_to_f32(f32_to_bf16(-2.5f)) == -2.5f);
  CHECK(f32_to_f16(1.0f) == 0x3c00);
  CHECK(f32_to_f16(65504.0f) == 0x7bff);
  CHECK(f32_to_f16(65519.0f) == 0x7bff);
  CHECK(f32_to_f16(65520.0f) == 0x7c00);                 // rounds to inf
  CHECK(f32_to_f16(5.9604644775390625e-8f) == 0x0001);  // 2^-24, smallest subnormal
  CHECK(f32_to_f16(2.98023223876953125e-8f) == 0x0000); // 2^-25 ties to even (0)
  CHECK(f32_to_f16(-0.0f) == 0x8000);
  CHECK(f32_to_f16(1.0f / 3.0f) == 0x3555);
  // f16 -> f32 -> f16 is the identity for every finite half.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    CHECK_MSG(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))) == h, std::to_string(h));
  }
  CHECK_THROWS(parse_dtype("F64", "t.safetensors: tensor 'x'"), "unknown dtype \"F64\" (supported: BF16, F16, F32, I32, I64)");
}

// ----------------------------------------------------------- safetensors

static void test_safetensors_roundtrip() {
  std::mt19937_64 rng(std::random_device{}());
  const DType all[] = {DType::BF16, DType::F16, DType::F32, DType::I32, DType::I64};
  std::vector<std::vector<uint8_t>> datas;
  std::vector<TensorWrite> ws;
  for (int rep = 0; rep < 2; ++rep) {
    for (DType d : all) {
      std::vector<int64_t> shape = {static_cast<int64_t>(1 + rng() % 7), static_cast<int64_t>(1 + rng() % 5)};
      if (rep == 1) shape = {static_cast<int64_t>(rng() % 11)};  // 1-D, possibly empty
      size_t n = shape_numel(shape, "") * dtype_size(d);
      std::vector<uint8_t> bytes(n);
      for (auto& b : bytes) b = static_cast<uint8_t>(rng());
      datas.push_back(bytes);
      ws.push_back({std::string("t.") + dtype_name(d) + "." + std::to_string(rep), d, shape, nullptr});
    }
  }
  float scalar = 3.5f;
  ws.push_back({"scalar", DType::F32, {}, &scalar});
  datas.push_back(std::vector<uint8_t>(4));
  std::memcpy(datas.back().data(), &scalar, 4);
  for (size_t i = 0; i < ws.size(); ++i) ws[i].data = datas[i].data();
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "quote \" and \\ and \xc3\xa9"}};
  std::string path = tmp("roundtrip.safetensors");
  write_safetensors(path, ws, meta);

  SafetensorsFile f(path);
  CHECK(f.metadata() == meta);
  CHECK(f.tensors().size() == ws.size());
  for (size_t i = 0; i < ws.size(); ++i) {
    const TensorInfo& t = f.get(ws[i].name);
    CHECK(t.dtype == ws[i].dtype);
    CHECK(t.shape == ws[i].shape);
    CHECK(t.nbytes() == datas[i].size());
    CHECK(t.nbytes() == 0 || std::memcmp(f.data(t), datas[i].data(), datas[i].size()) == 0);
  }
  std::vector<uint8_t> file = read_bytes(path);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | file[i];
  CHECK((8 + hlen) % 8 == 0);  // data section aligned
  // Writing what we read reproduces the file byte for byte.
  std::vector<TensorWrite> again;
  for (const auto& w : ws) {
    const TensorInfo& t = f.get(w.name);
    again.push_back({t.name, t.dtype, t.shape, f.data(t)});
  }
  write_safetensors(tmp("roundtrip2.safetensors"), again, f.metadata());
  CHECK(read_bytes(tmp("roundtrip2.safetensors")) == file);
  CHECK_THROWS(write_safetensors(tmp("dup.safetensors"), {ws[0], ws[0]}), "duplicate tensor name");
}

static void test_safetensors_malformed() {
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  CHECK_THROWS(SafetensorsFile(tmp("nope.safetensors")), "cannot open safetensors file");
  write_bytes(tmp("short.safetensors"), "abc");
  CHECK_THROWS(SafetensorsFile(tmp("short.safetensors")), "shorter than the 8-byte header length prefix");
  {
    std::string s(8, '\0');
    s[0] = 100;  // claims 100-byte header
    write_bytes(tmp("hdr_trunc.safetensors"), s + "{}");
    CHECK_THROWS(SafetensorsFile(tmp("hdr_trunc.safetensors")), "header length 100 bytes but only 2 bytes follow");
  }
  {
    std::string s(8, '\0');
    uint64_t big = 200ull * 1000 * 1000;
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(big >> (8 * i));
    write_bytes(tmp("hdr_big.safetensors"), s + "{}");
    CHECK_THROWS(SafetensorsFile(tmp("hdr_big.safetensors")), "exceeds the 100 MB limit");
  }
  CHECK_THROWS(SafetensorsFile(raw_safetensors("badjson.safetensors", "{\"w\": {", 0)), "malformed JSON");
  CHECK_THROWS(SafetensorsFile(raw_safetensors("notobj.safetensors", "[1]", 0)), "must be a JSON object");
  CHECK_THROWS(SafetensorsFile(raw_safetensors("dtype.safetensors",
                                               R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8)),
               "tensor 'w': unknown dtype \"Q4\"");
  CHECK_THROWS(SafetensorsFile(raw_safetensors("size.safetensors",
                                               R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)),
               "span 8 bytes but dtype F32 x shape [3] needs 12 bytes");
  CHECK_THROWS(SafetensorsFile(raw_safetensors("beyond.safetensors", "{" + ok_entry + "}", 4)),
               "extend beyond the data section (4 bytes)");
  CHECK_THROWS(SafetensorsFile(raw_safetensors(
                   "overlap.safetensors",
                   R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                   12)),
               "tensor 'b' data_offsets [4, 12] overlap tensor 'a'");
  CHECK_THROWS(SafetensorsFile(raw_safetensors("order.safetensors",
                                               R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8)),
               "out of order (begin > end)");
  CHECK_THROWS(SafetensorsFile(raw_safetensors("gap.safetensors",
                                               R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12)),
               "gap in data section");
  CHECK_THROWS(SafetensorsFile(raw_safetensors("trailing.safetensors", "{" + ok_entry + "}", 12)),
               "trailing bytes");
  CHECK_THROWS(SafetensorsFile(raw_safetensors("meta.safetensors", "{\"__metadata__\":{\"k\":1}}", 0)),
               "\"__metadata__\" value for key 'k' must be a string");
  CHECK_THROWS(SafetensorsFile(raw_safetensors("shape.safetensors",
                                               R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)),
               "shape entries must be non-negative integers");
  CHECK_THROWS(SafetensorsFile(raw_safetensors("dupkey.safetensors", "{" + ok_entry + "," + ok_entry + "}", 8)),
               "duplicate key \"w\"");
  // The well-formed variant of the same file loads.
  SafetensorsFile good(raw_safetensors("good.safetensors", "{" + ok_entry + "}", 8));
  CHECK(good.tensors().size() == 1);
}

static void test_safetensors_expected_table() {
  float a[6] = {0};
  uint16_t b[4] = {0};
  std::string path = tmp("table.safetensors");
  write_safetensors(path, {{"layers.0.w", DType::F32, {2, 3}, a}, {"layers.0.b", DType::BF16, {4}, b}});
  SafetensorsFile f(path);
  f.validate_against({{"layers.0.w", DType::F32, {2, 3}}, {"layers.0.b", DType::BF16, {4}}});
  CHECK_THROWS(f.validate_against({{"layers.0.w", DType::F32, {2, 3}}, {"layers.0.b", DType::BF16, {4}},
                                   {"lm_head", DType::BF16, {4, 2}}}),
               "missing tensor 'lm_head' (expected BF16 [4, 2])");
  CHECK_THROWS(f.validate_against({{"layers.0.w", DType::F32, {3, 2}}, {"layers.0.b", DType::BF16, {4}}}),
               "tensor 'layers.0.w': wrong shape: expected [3, 2], got [2, 3]");
  CHECK_THROWS(f.validate_against({{"layers.0.w", DType::F32, {2, 3}}, {"layers.0.b", DType::F16, {4}}}),
               "tensor 'layers.0.b': wrong dtype: expected F16, got BF16");
  CHECK_THROWS(f.validate_against({{"layers.0.w", DType::F32, {2, 3}}}), "unexpected tensor 'layers.0.b'");
  f.validate_against({{"layers.0.w", DType::F32, {2, 3}}}, /*allow_extra=*/true);
  CHECK_THROWS(f.get("nope"), "missing tensor 'nope'");
}

// ------------------------------------------------------------------ init

static InitSpec spec(const std::string& j) { return parse_init_spec(json::parse(j), "test"); }

static void test_init_determinism() {
  InitSpec n = spec(R"({"kind":"normal","std":0.02})");
  const size_t N = 200000;
  std::vector<float> a(N), b(N), c(N), d(N);
  init_tensor(n, 7, "embed.weight", a.data(), N, 1);
  init_tensor(n, 7, "embed.weight", b.data(), N, 4);  // thread count must not matter
  CHECK(std::memcmp(a.data(), b.data(), N * 4) == 0);
  init_tensor(n, 8, "embed.weight", c.data(), N, 1);
  size_t same = 0;
  for (size_t i = 0; i < N; ++i) same += a[i] == c[i];
  CHECK_MSG(same < 100, std::to_string(same));
  init_tensor(n, 7, "lm_head.weight", d.data(), N, 2);
  same = 0;
  for (size_t i = 0; i < N; ++i) same += a[i] == d[i];
  CHECK_MSG(same < 100, std::to_string(same));
  // Creation order independence: values depend only on (seed, name, index).
  std::vector<float> x1(100), y1(100), x2(100), y2(100);
  init_tensor(n, 7, "x", x1.data(), 100);
  init_tensor(n, 7, "y", y1.data(), 100);
  init_tensor(n, 7, "y", y2.data(), 100);
  init_tensor(n, 7, "x", x2.data(), 100);
  CHECK(x1 == x2 && y1 == y2);
  // A prefix of a longer tensor equals the shorter tensor.
  std::vector<float> pre(1000);
  init_tensor(n, 7, "embed.weight", pre.data(), 1000);
  CHECK(std::memcmp(pre.data(), a.data(), 4000) == 0);
}

static void test_init_golden() {
  // Pinned test vectors, computed with an independent Python transcription of
  // runtime/INIT.md; the same table is in INIT.md for the TypeScript mirror.
  CHECK(fnv1a64("") == 0xcbf29ce484222325ull);
  CHECK(fnv1a64("embed.weight") == 0x9ac37bcac2dc8a00ull);
  uint64_t key = init_stream_key(42, "embed.weight");
  CHECK(key == 0xd0841ea1aae681deull);
  CHECK(init_random_word(key, 0) == 0x1073b36acfe0a90eull);
  CHECK(init_random_word(key, 1) == 0x1a912cadb4f20870ull);
  CHECK(init_uniform01(0) == std::ldexp(1.0, -53));
  CHECK(init_uniform01(~0ull) == 1.0);
  auto bits = [](const char* j, uint64_t seed, const char* name, size_t n) {
    std::vector<float> v(n);
    init_tensor(spec(j), seed, name, v.data(), n);
    std::vector<uint32_t> b;
    for (float x : v) b.push_back(f32_bits(x));
    return b;
  };
  using B = std::vector<uint32_t>;
  CHECK(bits(R"({"kind":"normal","std":1})", 42, "embed.weight", 3) == B({0x3fee5f12, 0xbfe01fba, 0xbf35d7e8}));
  CHECK(bits(R"({"kind":"uniform","low":-1,"high":1})", 7, "t", 2) == B({0x3e528e47, 0xbecf64ba}));
  CHECK(bits(R"({"kind":"alog_uniform","low":1,"high":16})", 7, "t", 2) == B({0x4013a27a, 0x3fd95210}));
  CHECK(bits(R"({"kind":"dt_bias","dtMin":0.001,"dtMax":0.1,"floor":1e-4})", 7, "t", 2) == B({0xc083f51f, 0xc0b12617}));
  CHECK(bits(R"({"kind":"kaiming_uniform","fanIn":16})", 7, "t", 2) == B({0x3d528e47, 0xbdcf64ba}));
  // alog_arange (Mamba-1 S4D-real): log((i mod n) + 1), no random words, so any seed / name
  const B arange4({0x00000000, 0x3f317218, 0x3f8c9f54, 0x3fb17218, 0x00000000, 0x3f317218});
  CHECK(bits(R"({"kind":"alog_arange","n":4})", 7, "t", 6) == arange4);
  CHECK(bits(R"({"kind":"alog_arange","n":4})", ~0ull, "layers.0.mixer.A_log", 6) == arange4);
  B a16 = bits(R"({"kind":"alog_arange","n":16})", 7, "t", 17);
  CHECK(B(a16.begin() + 14, a16.end()) == B({0x402d50b2, 0x40317218, 0x00000000}));
  CHECK(bits(R"({"kind":"alog_arange","n":1})", 7, "t", 3) == B({0, 0, 0}));
  // threads change nothing (large tensor takes the threaded path)
  {
    const size_t n = 200003;
    std::vector<float> one(n), many(n);
    init_tensor(spec(R"({"kind":"alog_arange","n":16})"), 1, "A_log", one.data(), n, 1);
    init_tensor(spec(R"({"kind":"alog_arange","n":16})"), 1, "A_log", many.data(), n, 7);
    CHECK(std::memcmp(one.data(), many.data(), n * sizeof(float)) == 0);
    CHECK(one[n - 1] == static_cast<float>(std::log(static_cast<double>((n - 1) % 16 + 1))));
  }
}

static void test_init_statistics() {
  const size_t N = 100000;
  std::vector<float> v(N);
  init_tensor(spec(R"({"kind":"normal","std":0.02})"), 1, "w", v.data(), N);
  double s = 0, s2 = 0;
  for (float x : v) { s += x; s2 += static_cast<double>(x) * x; }
  double mean = s / N, sd = std::sqrt(s2 / N - mean * mean);
  CHECK_MSG(std::fabs(sd - 0.02) < 0.02 * 0.05, std::to_string(sd));
  CHECK_MSG(std::fabs(mean) < 0.02 * 0.02, std::to_string(mean));

  init_tensor(spec(R"({"kind":"normal","std":2,"mean":5})"), 1, "w", v.data(), N);
  s = 0;
  for (float x : v) s += x;
  CHECK(std::fabs(s / N - 5) < 0.05);

  init_tensor(spec(R"({"kind":"uniform","low":-3,"high":-1})"), 1, "u", v.data(), N);
  s = 0;
  for (float x : v) { CHECK(x >= -3 && x <= -1); s += x; }
  CHECK(std::fabs(s / N + 2) < 0.02);

  init_tensor(spec(R"({"kind":"alog_uniform","low":1,"high":16})"), 1, "A_log", v.data(), N);
  float lo = 1e9f, hi = -1e9f;
  for (float x : v) { lo = std::min(lo, x); hi = std::max(hi, x); }
  CHECK(lo >= 0.0f && hi <= static_cast<float>(std::log(16.0)));
  CHECK(lo < 0.01f && hi > 2.7f);  // covers the range

  init_tensor(spec(R"({"kind":"dt_bias","dtMin":0.001,"dtMax":0.1,"floor":1e-4})"), 1, "dt_bias", v.data(), N);
  double dlo = 1e9, dhi = -1e9;
  for (float x : v) {
    double dt = std::log1p(std::exp(static_cast<double>(x)));  // softplus undoes the init
    dlo = std::min(dlo, dt);
    dhi = std::max(dhi, dt);
  }
  CHECK_MSG(dlo >= 1e-3 * (1 - 1e-5) && dhi <= 0.1 * (1 + 1e-5), std::to_string(dlo) + " " + std::to_string(dhi));
  CHECK(dlo < 1.1e-3 && dhi > 0.09);
  // floor above dtMax clamps every value to softplus^-1(floor)
  init_tensor(spec(R"({"kind":"dt_bias","dtMin":0.001,"dtMax":0.1,"floor":0.5})"), 1, "dt_bias", v.data(), 10);
  CHECK(std::fabs(std::log1p(std::exp(static_cast<double>(v[3]))) - 0.5) < 1e-6);

  init_tensor(spec(R"({"kind":"kaiming_uniform","fanIn":16})"), 1, "conv", v.data(), N);
  for (float x : v) CHECK(x >= -0.25f && x <= 0.25f);

  init_tensor(spec(R"({"kind":"const","value":1.5})"), 1, "norm", v.data(), 10);
  CHECK(v[0] == 1.5f && v[9] == 1.5f);

  // bf16 helper on generated data
  std::vector<uint16_t> h(10);
  convert_from_f32(v.data(), 10, DType::BF16, h.data());
  CHECK(bf16_to_f32(h[0]) == 1.5f);
}

static void test_init_spec_errors() {
  CHECK_THROWS(spec(R"({"kind":"xavier"})"), "unknown init kind \"xavier\" (valid: normal, uniform");
  CHECK_THROWS(spec(R"({"kind":"normal"})"), "missing required field \"std\"");
  CHECK_THROWS(spec(R"({"kind":"normal","sdt":1})"), "unknown init field \"sdt\"");
  CHECK_THROWS(spec(R"({"kind":"uniform","low":1,"high":0})"), "low must be <= high");
  CHECK_THROWS(spec(R"({"kind":"kaiming_uniform","fanIn":0})"), "fanIn must be > 0");
  CHECK_THROWS(spec(R"({"kind":"const","value":"1"})"), "must be a finite number");
  CHECK_THROWS(spec("[1]"), "init spec must be a JSON object");
  CHECK(spec(R"({"kind":"ones"})").kind == InitKind::Const && spec(R"({"kind":"ones"})").value == 1.0);
  CHECK(spec(R"({"kind":"zeros"})").value == 0.0);
  CHECK_THROWS(spec(R"({"kind":"zeros","value":2})"), "unknown init field \"value\" for kind \"zeros\" (allowed: none)");
  InitSpec d = spec(R"({"kind":"dt_bias"})");  // Mamba defaults
  CHECK(d.dt_min == 0.001 && d.dt_max == 0.1 && d.floor == 1e-4);
  CHECK(json::dump(init_spec_to_json(spec(R"({"kind":"kaiming_uniform","fanIn":4})"))) ==
        R"({"kind":"kaiming_uniform","fanIn":4})");
  // alog_arange: validation and JSON round trip
  CHECK_THROWS(spec(R"({"kind":"xavier"})"), "alog_uniform, alog_arange, dt_bias");
  CHECK(spec(R"({"kind":"alog_arange","n":16})").kind == InitKind::AlogArange);
  CHECK(spec(R"({"kind":"alog_arange","n":16})").n == 16);
  CHECK(spec(R"({"kind":"alog_arange","n":16.0})").n == 16);
  CHECK_THROWS(spec(R"({"kind":"alog_arange"})"), "missing required field \"n\"");
  CHECK_THROWS(spec(R"({"kind":"alog_arange","n":0})"), "alog_arange needs n to be a positive integer");
  CHECK_THROWS(spec(R"({"kind":"alog_arange","n":-4})"), "alog_arange needs n to be a positive integer");
  CHECK_THROWS(spec(R"({"kind":"alog_arange","n":2.5})"), "alog_arange needs n to be a positive integer");
  CHECK_THROWS(spec(R"({"kind":"alog_arange","n":9007199254740992})"), "alog_arange needs n to be a positive integer");
  CHECK_THROWS(spec(R"({"kind":"alog_arange","n":"4"})"), "must be a finite number");
  CHECK_THROWS(spec(R"({"kind":"alog_arange","n":4,"low":1})"),
               "unknown init field \"low\" for kind \"alog_arange\" (allowed: n)");
  CHECK(json::dump(init_spec_to_json(spec(R"({"kind":"alog_arange","n":16})"))) == R"({"kind":"alog_arange","n":16})");
  CHECK(json::dump(init_spec_to_json(spec(json::dump(init_spec_to_json(spec(R"({"kind":"alog_arange","n":3})")))))) ==
        R"({"kind":"alog_arange","n":3})");
}

// ------------------------------------------------------------------- npy

static void test_npy() {
  std::vector<float> f(2 * 3 * 5);
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) * 0.5f - 3;
  write_npy_f32(tmp("l.npy"), {2, 3, 5}, f.data());
  std::vector<uint8_t> raw = read_bytes(tmp("l.npy"));
  CHECK((raw.size() - f.size() * 4) % 64 == 0);  // header padded to 64 bytes like numpy
  NpyArray a = read_npy(tmp("l.npy"));
  CHECK(a.descr == "<f4" && !a.fortran_order && a.shape == std::vector<int64_t>({2, 3, 5}));
  CHECK(std::memcmp(a.data.data(), f.data(), f.size() * 4) == 0);

  int32_t t[6] = {1, 2, 3, 4, 5, 6};
  write_npy_i32(tmp("t.npy"), {2, 3}, t);
  int64_t b = 0, s = 0;
  std::vector<int32_t> tok = read_npy_tokens(tmp("t.npy"), &b, &s);
  CHECK(b == 2 && s == 3 && tok == std::vector<int32_t>(t, t + 6));

  write_npy_i32(tmp("t1.npy"), {6}, t);
  CHECK(read_npy(tmp("t1.npy")).shape == std::vector<int64_t>({6}));
  CHECK_THROWS(read_npy_tokens(tmp("t1.npy"), &b, &s), "tokens must be 2-D [batch, seqlen], got 1-D shape [6]");
  int64_t t64[2] = {1, 2};
  write_npy(tmp("t64.npy"), "<i8", {1, 2}, t64);
  CHECK_THROWS(read_npy_tokens(tmp("t64.npy"), &b, &s), "tokens must be int32 ('<i4'), got dtype '<i8'");
  CHECK_THROWS(read_npy_tokens(tmp("l.npy"), &b, &s), "got dtype '<f4'");
  CHECK_THROWS(read_npy(tmp("missing.npy")), "cannot open .npy file");
  write_bytes(tmp("bad.npy"), "PK\x03\x04 this is a zip");
  CHECK_THROWS(read_npy(tmp("bad.npy")), "not a .npy file");
  std::string trunc(raw.begin(), raw.end() - 4);
  write_bytes(tmp("trunc.npy"), trunc);
  CHECK_THROWS(read_npy(tmp("trunc.npy")), "(file truncated)");
  std::string hdr = "{'descr': '<i4', 'shape': (2, 3), }";
  std::string bad = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(hdr.size()) + '\0' + hdr;
  write_bytes(tmp("nohdr.npy"), bad);
  CHECK_THROWS(read_npy(tmp("nohdr.npy")), "must contain 'descr', 'fortran_order' and 'shape'");
}

// ------------------------------------------------------------------- CLI

static CliArgs cli(std::vector<const char*> args) {
  args.insert(args.begin(), "model");
  return parse_cli(static_cast<int>(args.size()), args.data());
}

static void test_cli_args() {
  int32_t t[2] = {0, 1};
  write_npy_i32(tmp("cli_tokens.npy"), {1, 2}, t);
  std::string tok = tmp("cli_tokens.npy");
  CliArgs a = cli({"forward", "--tokens", tok.c_str(), "--out=o.npy", "--seed", "123"});
  CHECK(a.command == "forward" && a.tokens == tok && a.out == "o.npy" && a.has_seed && a.seed == 123);
  CHECK(cli({"info"}).command == "info");
  CHECK(cli({"info", "--manifest", "m.json"}).manifest == "m.json");
  CHECK(cli({"--help"}).command == "help");
  CHECK_THROWS(cli({}), "missing subcommand");
  CHECK_THROWS(cli({"train"}), "unknown subcommand 'train' (expected 'info' or 'forward')");
  CHECK_THROWS(cli({"forward", "--tokens", tok.c_str(), "--out", "o", "--fast"}), "unknown option '--fast' for 'forward' (valid:");
  CHECK_THROWS(cli({"info", "--tokens", "x"}), "unknown option '--tokens' for 'info'");
  CHECK_THROWS(cli({"forward", "--tokens"}), "option '--tokens' needs a value");
  CHECK_THROWS(cli({"forward", "--tokens", "--out", "o"}), "option '--tokens' needs a value");
  CHECK_THROWS(cli({"forward", "--out", "o"}), "needs --tokens");
  CHECK_THROWS(cli({"forward", "--tokens", tok.c_str()}), "needs --out");
  CHECK_THROWS(cli({"forward", "--tokens", "/nonexistent/t.npy", "--out", "o"}), "--tokens /nonexistent/t.npy: cannot read file");
  CHECK_THROWS(cli({"forward", "--tokens", tok.c_str(), "--out", "o", "--weights", "/nonexistent/w"}), "--weights /nonexistent/w: cannot read file");
  CHECK_THROWS(cli({"forward", "--tokens", tok.c_str(), "--out", "o", "--seed", "-1"}), "--seed must be a non-negative decimal integer, got '-1'");
  CHECK_THROWS(cli({"forward", "--tokens", tok.c_str(), "--out", "o", "--seed", "99999999999999999999"}), "does not fit in 64 bits");
  CHECK_THROWS(cli({"forward", "--tokens", tok.c_str(), "--out", "o", "--seed", "1", "--weights", tok.c_str()}), "not both");
  CHECK_THROWS(cli({"forward", "--tokens", tok.c_str(), "--out", "o", "--out", "p"}), "given more than once");
  CHECK_THROWS(cli({"info", "extra"}), "unexpected argument 'extra'");
  CHECK(cli_usage("model").find("forward --tokens") != std::string::npos);
}

// ----------------------------------------------- C ABI over a mock model

namespace {
// Stand-in for generated code: keeps weights on the host and computes
// logits[b, s, v] = embed[tok, 0] * (v + 1) + bias[v].
class MockModel : public Model {
 public:
  explicit MockModel(const Manifest& m) : m_(m), w_(m.weights.size()) {}
  void upload_weight(size_t index, const void* host, size_t nbytes) override {
    const auto* p = static_cast<const uint8_t*>(host);
    w_.at(index).assign(p, p + nbytes);
  }
  void forward(const int32_t* tokens, int batch, int seqlen, float* logits) override {
    const float* embed = reinterpret_cast<const float*>(w_[0].data());
    const uint16_t* bias = reinterpret_cast<const uint16_t*>(w_[1].data());
    int64_t V = m_.vocab_size;
    for (int i = 0; i < batch * seqlen; ++i)
      for (int64_t v = 0; v < V; ++v)
        logits[i * V + v] = embed[tokens[i] * 2] * static_cast<float>(v + 1) + bf16_to_f32(bias[v]);
  }
  json::Value info() const override {
    json::Value v = json::Value::object();
    v.set("kind", "mock");
    return v;
  }
  Manifest m_;
  std::vector<std::vector<uint8_t>> w_;
};
}  // namespace

// How many models were created: the CLI must not create one (which, generated, initialises the
// GPU) for `info` or for input errors it can find on the host.
static int g_models_created = 0;

std::unique_ptr<Model> strata::create_generated_model(const Manifest& m, const strata_options&) {
  ++g_models_created;
  return std::unique_ptr<Model>(new MockModel(m));
}

static const char* kManifest = R"({
  "name": "mock", "vocabSize": 5, "maxBatch": 2, "maxSeqlen": 4, "arenaBytes": 1024,
  "weights": [
    {"name": "embed", "dtype": "F32", "shape": [5, 2], "init": {"kind": "normal", "std": 1}},
    {"name": "bias", "dtype": "BF16", "shape": [5], "init": {"kind": "uniform", "low": -1, "high": 1}},
    {"name": "A_log", "dtype": "F32", "shape": [3], "init": {"kind": "alog_uniform", "low": 1, "high": 16}},
    {"name": "dt_bias", "dtype": "F16", "shape": [3], "init": {"kind": "dt_bias", "dtMin": 0.001, "dtMax": 0.1, "floor": 1e-4}},
    {"name": "conv", "dtype": "F32", "shape": [3, 1, 4], "init": {"kind": "kaiming_uniform", "fanIn": 4}},
    {"name": "step", "dtype": "I32", "shape": [1], "init": {"kind": "const", "value": 3}}
  ]
})";

static void test_abi() {
  fs::create_directories(tmp("model"));
  write_bytes(tmp("model/manifest.json"), kManifest);

  CHECK(strata_model_create(tmp("nomodel").c_str(), nullptr) == nullptr);
  CHECK(std::string(strata_last_error()).find("cannot open manifest") != std::string::npos);
  write_bytes(tmp("bad_manifest.json"), R"({"vocabSize": 5, "maxBatch": 2, "weights": []})");
  CHECK(strata_model_create(tmp("bad_manifest.json").c_str(), nullptr) == nullptr);
  CHECK(std::string(strata_last_error()).find("missing required field \"maxSeqlen\"") != std::string::npos);
  write_bytes(tmp("bad_init_manifest.json"), R"({"vocabSize": 5, "maxBatch": 2, "maxSeqlen": 4, "weights": [
    {"name": "A_log", "dtype": "F32", "shape": [2, 4], "init": {"kind": "alog_arange", "n": 0}}]})");
  CHECK(strata_model_create(tmp("bad_init_manifest.json").c_str(), nullptr) == nullptr);
  CHECK_MSG(std::string(strata_last_error()).find("weight 'A_log'") != std::string::npos &&
                std::string(strata_last_error()).find("alog_arange needs n to be a positive integer") != std::string::npos,
            strata_last_error());

  strata_model* m = strata_model_create(tmp("model").c_str(), nullptr);  // directory form
  CHECK_MSG(m != nullptr, strata_last_error());
  strata_dims dims;
  CHECK(strata_model_dims(m, &dims) == STRATA_OK && dims.vocab_size == 5 && dims.max_batch == 2 && dims.max_seqlen == 4);

  int32_t tokens[6] = {0, 1, 2, 3, 4, 0};
  std::vector<float> logits(2 * 3 * 5);
  CHECK(strata_model_forward(m, tokens, 2, 3, logits.data()) == STRATA_ERR_STATE);
  CHECK(std::string(strata_last_error()).find("no weights") != std::string::npos);

  CHECK(strata_model_init_weights(m, 42) == STRATA_OK);
  CHECK(strata_model_forward(m, tokens, 2, 3, logits.data()) == STRATA_OK);
  // Reproduce with the init functions directly.
  float embed[10], bias_f[5];
  init_tensor(spec(R"({"kind":"normal","std":1})"), 42, "embed", embed, 10);
  init_tensor(spec(R"({"kind":"uniform","low":-1,"high":1})"), 42, "bias", bias_f, 5);
  for (int i = 0; i < 6; ++i)
    for (int v = 0; v < 5; ++v)
      CHECK(logits[i * 5 + v] == embed[tokens[i] * 2] * static_cast<float>(v + 1) + bf16_to_f32(f32_to_bf16(bias_f[v])));

  // Argument errors.
  tokens[4] = 5;
  CHECK(strata_model_forward(m, tokens, 2, 3, logits.data()) == STRATA_ERR_INVALID_ARGUMENT);
  CHECK(std::string(strata_last_error()).find("token id 5 at [1, 1] is outside the vocabulary [0, 5)") != std::string::npos);
  tokens[4] = 4;
  CHECK(strata_model_forward(m, tokens, 3, 3, logits.data()) == STRATA_ERR_INVALID_ARGUMENT);
  CHECK(std::string(strata_last_error()).find("batch 3 out of range; this model accepts 1..2") != std::string::npos);
  CHECK(strata_model_forward(m, tokens, 1, 5, logits.data()) == STRATA_ERR_INVALID_ARGUMENT);
  CHECK(strata_model_forward(m, nullptr, 1, 1, logits.data()) == STRATA_ERR_INVALID_ARGUMENT);
  CHECK(strata_model_forward(nullptr, tokens, 1, 1, logits.data()) == STRATA_ERR_INVALID_ARGUMENT);

  // Info JSON parses and reflects state.
  const char* info = strata_model_info_json(m);
  CHECK(info != nullptr);
  json::Value iv = json::parse(info);
  CHECK(iv.find("vocabSize")->as_int() == 5);
  CHECK(iv.find("weightsLoaded")->as_bool());
  CHECK(iv.find("weightsSource")->as_string() == "init:seed=42");
  CHECK(iv.find("weights")->as_array().size() == 6);
  CHECK(iv.find("model")->find("kind")->as_string() == "mock");

  // Load from a file: matching table works, values arrive unchanged.
  float e2[10];
  for (int i = 0; i < 10; ++i) e2[i] = static_cast<float>(i);
  uint16_t b2[5] = {0, 0, 0, 0, f32_to_bf16(0.5f)};
  float alog[3] = {0}, conv[12] = {0};
  uint16_t dt[3] = {0};
  int32_t step = 0;
  std::vector<TensorWrite> ws = {{"embed", DType::F32, {5, 2}, e2},  {"bias", DType::BF16, {5}, b2},
                                 {"A_log", DType::F32, {3}, alog},  {"dt_bias", DType::F16, {3}, dt},
                                 {"conv", DType::F32, {3, 1, 4}, conv}, {"step", DType::I32, {1}, &step}};
  write_safetensors(tmp("w.safetensors"), ws);
  CHECK_MSG(strata_model_load_weights(m, tmp("w.safetensors").c_str()) == STRATA_OK, strata_last_error());
  CHECK(strata_model_forward(m, tokens, 1, 1, logits.data()) == STRATA_OK);
  CHECK(logits[4] == 0.0f * 5 + 0.5f);

  // Mismatched file: the error names the tensor. Validation happens before any
  // upload, so the previously loaded weights stay usable.
  ws[4].shape = {3, 4};
  write_safetensors(tmp("w_bad.safetensors"), ws);
  CHECK(strata_model_load_weights(m, tmp("w_bad.safetensors").c_str()) == STRATA_ERR_WEIGHT_MISMATCH);
  CHECK(std::string(strata_last_error()).find("tensor 'conv': wrong shape: expected [3, 1, 4], got [3, 4]") != std::string::npos);
  CHECK(strata_model_load_weights(m, tmp("absent.safetensors").c_str()) == STRATA_ERR_IO);
  CHECK(strata_model_forward(m, tokens, 1, 1, logits.data()) == STRATA_OK);
  strata_model_destroy(m);
  strata_model_destroy(nullptr);
  CHECK(std::string(strata_status_name(STRATA_ERR_CUDA)) == "STRATA_ERR_CUDA");
}

static void test_cli_main() {
  int32_t t[4] = {1, 2, 3, 4};
  write_npy_i32(tmp("main_tokens.npy"), {2, 2}, t);
  std::string tok = tmp("main_tokens.npy"), out = tmp("main_logits.npy"), man = tmp("model/manifest.json");
  std::vector<const char*> argv = {"model", "forward", "--tokens", tok.c_str(), "--out", out.c_str(), "--seed", "42"};
  CHECK(cli_main(static_cast<int>(argv.size()), const_cast<char**>(argv.data()), man) == 0);
  NpyArray a = read_npy(out);
  CHECK(a.descr == "<f4" && a.shape == std::vector<int64_t>({2, 2, 5}));
  std::vector<float> direct(20);
  strata_model* m = strata_model_create(man.c_str(), nullptr);
  CHECK(m && strata_model_init_weights(m, 42) == STRATA_OK && strata_model_forward(m, t, 2, 2, direct.data()) == STRATA_OK);
  strata_model_destroy(m);
  CHECK(std::memcmp(a.data.data(), direct.data(), 80) == 0);

  std::vector<const char*> bad = {"model", "forwrd"};
  std::fprintf(stderr, "(expected usage error follows)\n");
  CHECK(cli_main(2, const_cast<char**>(bad.data()), man) == 2);
  int32_t big[10] = {0};
  write_npy_i32(tmp("big_tokens.npy"), {1, 10}, big);
  std::string bt = tmp("big_tokens.npy");
  std::vector<const char*> toolong = {"model", "forward", "--tokens", bt.c_str(), "--out", out.c_str()};
  std::fprintf(stderr, "(expected shape error follows)\n");
  CHECK(cli_main(static_cast<int>(toolong.size()), const_cast<char**>(toolong.data()), man) == 1);
}

// Runs cli_main with stderr (and stdout, when out_file is given) redirected to files; returns
// (exit code, stderr text).
static std::pair<int, std::string> cli_capture(std::vector<const char*> argv, const std::string& man, const std::string& out_file = "") {
  std::string err = tmp("cli_stderr.txt");
  std::fflush(stdout);
  std::fflush(stderr);
  const int saved_err = dup(2), saved_out = dup(1);
  FILE* fe = std::fopen(err.c_str(), "w");
  FILE* fo = out_file.empty() ? nullptr : std::fopen(out_file.c_str(), "w");
  dup2(fileno(fe), 2);
  if (fo) dup2(fileno(fo), 1);
  int rc = cli_main(static_cast<int>(argv.size()), const_cast<char**>(argv.data()), man);
  std::fflush(stdout);
  std::fflush(stderr);
  dup2(saved_err, 2);
  dup2(saved_out, 1);
  close(saved_err);
  close(saved_out);
  std::fclose(fe);
  if (fo) std::fclose(fo);
  auto bytes = read_bytes(err);
  return {rc, std::string(bytes.begin(), bytes.end())};
}

// `info`, token and weights-file errors are reported before any model (GPU) is created.
static void test_cli_host_checks_before_gpu() {
  std::string man = tmp("model/manifest.json"), out = tmp("hc_logits.npy"), info_out = tmp("hc_info.json");
  const int created = g_models_created;

  auto r = cli_capture({"model", "info"}, man, info_out);
  CHECK_MSG(r.first == 0, r.second);
  auto bytes = read_bytes(info_out);
  json::Value iv = json::parse(std::string(bytes.begin(), bytes.end()));
  CHECK(iv.find("name")->as_string() == "mock");
  CHECK(iv.find("vocabSize")->as_int() == 5);
  CHECK(iv.find("numParams")->as_int() == 5 * 2 + 5 + 3 + 3 + 12 + 1);
  CHECK(iv.find("weights")->as_array().size() == 6);

  int32_t oov[4] = {1, 2, 7, 0};  // 7 >= vocab 5
  write_npy_i32(tmp("hc_oov.npy"), {2, 2}, oov);
  std::string oov_p = tmp("hc_oov.npy");
  r = cli_capture({"model", "forward", "--tokens", oov_p.c_str(), "--out", out.c_str()}, man);
  CHECK_MSG(r.first == 1 && r.second.find("token id 7 at [1, 0] is outside the vocabulary [0, 5)") != std::string::npos, r.second);

  int32_t many[6] = {0};
  write_npy_i32(tmp("hc_batch.npy"), {3, 2}, many);  // maxBatch 2
  std::string batch_p = tmp("hc_batch.npy");
  r = cli_capture({"model", "forward", "--tokens", batch_p.c_str(), "--out", out.c_str()}, man);
  CHECK_MSG(r.first == 1 && r.second.find("tokens have shape [3, 2] but this model was compiled for at most [2, 4]") != std::string::npos, r.second);

  int32_t ok[2] = {1, 2};
  write_npy_i32(tmp("hc_ok.npy"), {1, 2}, ok);
  std::string ok_p = tmp("hc_ok.npy"), w_p = tmp("hc_w.safetensors");
  float e[10] = {0};
  write_safetensors(w_p, {{"embed", DType::F32, {5, 2}, e}});  // the other five weights are missing
  r = cli_capture({"model", "forward", "--tokens", ok_p.c_str(), "--out", out.c_str(), "--weights", w_p.c_str()}, man);
  CHECK_MSG(r.first == 1 && r.second.find("missing") != std::string::npos && r.second.find("bias") != std::string::npos, r.second);
  write_bytes(w_p, "not a safetensors file");
  r = cli_capture({"model", "forward", "--tokens", ok_p.c_str(), "--out", out.c_str(), "--weights", w_p.c_str()}, man);
  CHECK_MSG(r.first == 1 && r.second.find(w_p) != std::string::npos, r.second);

  // generate: prompt ids, batch and the weights file are checked before a model is created
  r = cli_capture({"model", "generate", "--prompt", "1,2,9"}, man);
  CHECK_MSG(r.first == 1 && r.second.find("prompt token 9 (position 2 of sequence 0) is outside the vocabulary [0, 5)") != std::string::npos, r.second);
  r = cli_capture({"model", "generate", "--tokens", batch_p.c_str()}, man);
  CHECK_MSG(r.first == 1 && r.second.find("3 prompts; this model serves 1..2 sequences") != std::string::npos, r.second);
  r = cli_capture({"model", "generate", "--prompt", "1,2", "--weights", w_p.c_str()}, man);
  CHECK_MSG(r.first == 1 && r.second.find(w_p) != std::string::npos, r.second);
  r = cli_capture({"model", "generate", "--prompt", "1,x"}, man);
  CHECK_MSG(r.first == 1 && r.second.find("'x' is not a token id") != std::string::npos, r.second);
  r = cli_capture({"model", "generate", "--max-new", "3"}, man);
  CHECK_MSG(r.first == 2 && r.second.find("--prompt IDS or --tokens PROMPT.npy") != std::string::npos, r.second);

  CHECK_MSG(g_models_created == created, "a model was created for info or a host-checkable error");
  // and a valid forward still creates one
  r = cli_capture({"model", "forward", "--tokens", ok_p.c_str(), "--out", out.c_str(), "--seed", "1"}, man);
  CHECK_MSG(r.first == 0, r.second);
  CHECK(g_models_created == created + 1);
}

int main() {
  char tmpl[] = "/tmp/strata_rt_test.XXXXXX";
  if (!mkdtemp(tmpl)) {
    std::perror("mkdtemp");
    return 2;
  }
  g_tmp = tmpl;
  run_test("json", test_json);
  run_test("dtype_conversion", test_dtype_conversion);
  run_test("safetensors_roundtrip", test_safetensors_roundtrip);
  run_test("safetensors_malformed", test_safetensors_malformed);
  run_test("safetensors_expected_table", test_safetensors_expected_table);
  run_test("init_determinism", test_init_determinism);
  run_test("init_golden", test_init_golden);
  run_test("init_statistics", test_init_statistics);
  run_test("init_spec_errors", test_init_spec_errors);
  run_test("npy", test_npy);
  run_test("cli_args", test_cli_args);
  run_test("abi", test_abi);
  run_test("cli_main", test_cli_main);
  run_test("cli_host_checks_before_gpu", test_cli_host_checks_before_gpu);
  std::error_code ec;
  fs::remove_all(g_tmp, ec);
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
