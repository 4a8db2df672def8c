#include "init.h"

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "error.h"

// Bit-exact reproducibility relies on IEEE double arithmetic with no
// contraction into FMA and no reassociation.
#if defined(__FAST_MATH__)
#error "init.cpp must not be compiled with -ffast-math: weight init would stop matching INIT.md"
#endif

namespace strata {

namespace {

double get_num(const json::Value& v, const char* key, const std::string& ctx, bool required, double dflt) {
  const json::Value* f = v.find(key);
  if (!f) {
    if (required) throw Error(ctx + ": init spec is missing required field \"" + key + "\"", STRATA_ERR_FORMAT);
    return dflt;
  }
  if (!f->is_number() || !std::isfinite(f->as_number()))
    throw Error(ctx + ": init field \"" + key + "\" must be a finite number, got " + json::dump(*f),
                STRATA_ERR_FORMAT);
  return f->as_number();
}

void check_keys(const json::Value& v, const std::string& ctx, std::initializer_list<const char*> allowed) {
  for (const auto& kv : v.as_object()) {
    bool ok = kv.first == "kind";
    for (const char* a : allowed) ok = ok || kv.first == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
      throw Error(ctx + ": unknown init field \"" + kv.first + "\" for kind \"" + v.find("kind")->as_string() +
                      "\" (allowed: " + (list.empty() ? "none" : list) + ")",
                  STRATA_ERR_FORMAT);
    }
  }
}

void require(bool cond, const std::string& ctx, const std::string& what) {
  if (!cond) throw Error(ctx + ": invalid init spec: " + what, STRATA_ERR_FORMAT);
}

}  // namespace

InitSpec parse_init_spec(const json::Value& v, const std::string& ctx) {
  if (!v.is_object()) throw Error(ctx + ": init spec must be a JSON object like {\"kind\":\"normal\",\"std\":0.02}", STRATA_ERR_FORMAT);
  const json::Value* k = v.find("kind");
  if (!k || !k->is_string()) throw Error(ctx + ": init spec needs a string \"kind\"", STRATA_ERR_FORMAT);
  const std::string& kind = k->as_string();
  InitSpec s;
  if (kind == "normal") {
    check_keys(v, ctx, {"std", "mean"});
    s.kind = InitKind::Normal;
    s.std = get_num(v, "std", ctx, true, 0);
    s.mean = get_num(v, "mean", ctx, false, 0);
    require(s.std >= 0, ctx, "std must be >= 0");
  } else if (kind == "uniform") {
    check_keys(v, ctx, {"low", "high"});
    s.kind = InitKind::Uniform;
    s.low = get_num(v, "low", ctx, true, 0);
    s.high = get_num(v, "high", ctx, true, 0);
    require(s.low <= s.high, ctx, "low must be <= high");
  } else if (kind == "const") {
    check_keys(v, ctx, {"value"});
    s.kind = InitKind::Const;
    s.value = get_num(v, "value", ctx, true, 0);
  } else if (kind == "zeros" || kind == "ones") {
    // Shorthands accepted by the TS interpreter (compiler/interp): const 0 / 1.
    check_keys(v, ctx, {});
    s.kind = InitKind::Const;
    s.value = kind == "ones" ? 1.0 : 0.0;
  } else if (kind == "alog_uniform") {
    check_keys(v, ctx, {"low", "high"});
    s.kind = InitKind::AlogUniform;
    s.low = get_num(v, "low", ctx, false, 1);
    s.high = get_num(v, "high", ctx, false, 16);
    require(s.low > 0 && s.low <= s.high, ctx, "alog_uniform needs 0 < low <= high");
  } else if (kind == "alog_arange") {
    // Mamba-1 (mamba_ssm) S4D-real A_log: element i = log((i mod n) + 1).
    check_keys(v, ctx, {"n"});
    s.kind = InitKind::AlogArange;
    double n = get_num(v, "n", ctx, true, 0);
    require(n >= 1 && n <= 9007199254740991.0 && std::floor(n) == n, ctx,
            "alog_arange needs n to be a positive integer (<= 2^53 - 1)");
    s.n = static_cast<uint64_t>(n);
  } else if (kind == "dt_bias") {
    check_keys(v, ctx, {"dtMin", "dtMax", "floor"});
    s.kind = InitKind::DtBias;
    s.dt_min = get_num(v, "dtMin", ctx, false, 0.001);
    s.dt_max = get_num(v, "dtMax", ctx, false, 0.1);
    s.floor = get_num(v, "floor", ctx, false, 1e-4);
    require(s.dt_min > 0 && s.dt_min <= s.dt_max, ctx, "dt_bias needs 0 < dtMin <= dtMax");
    require(s.floor >= 0, ctx, "dt_bias floor must be >= 0");
  } else if (kind == "kaiming_uniform") {
    check_keys(v, ctx, {"fanIn"});
    s.kind = InitKind::KaimingUniform;
    s.fan_in = get_num(v, "fanIn", ctx, true, 0);
    require(s.fan_in > 0, ctx, "fanIn must be > 0");
  } else {
    throw Error(ctx + ": unknown init kind \"" + kind +
                    "\" (valid: normal, uniform, const, zeros, ones, alog_uniform, alog_arange, dt_bias, kaiming_uniform)",
                STRATA_ERR_FORMAT);
  }
  return s;
}

json::Value init_spec_to_json(const InitSpec& s) {
  json::Value v = json::Value::object();
  switch (s.kind) {
    case InitKind::Normal: v.set("kind", "normal"); v.set("std", s.std); if (s.mean != 0) v.set("mean", s.mean); break;
    case InitKind::Uniform: v.set("kind", "uniform"); v.set("low", s.low); v.set("high", s.high); break;
    case InitKind::Const: v.set("kind", "const"); v.set("value", s.value); break;
    case InitKind::AlogUniform: v.set("kind", "alog_uniform"); v.set("low", s.low); v.set("high", s.high); break;
    case InitKind::AlogArange: v.set("kind", "alog_arange"); v.set("n", s.n); break;
    case InitKind::DtBias:
      v.set("kind", "dt_bias"); v.set("dtMin", s.dt_min); v.set("dtMax", s.dt_max); v.set("floor", s.floor);
      break;
    case InitKind::KaimingUniform: v.set("kind", "kaiming_uniform"); v.set("fanIn", s.fan_in); break;
  }
  return v;
}

uint64_t fnv1a64(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t mix64(uint64_t z) { return init_math::mix64(z); }

uint64_t init_stream_key(uint64_t seed, const std::string& name) { return mix64(seed ^ mix64(fnv1a64(name))); }

uint64_t init_random_word(uint64_t key, uint64_t counter) { return init_math::random_word(key, counter); }

double init_uniform01(uint64_t word) { return init_math::uniform01(word); }

double init_element(const InitSpec& s, uint64_t key, uint64_t i) { return init_math::element(s, key, i); }

void init_tensor(const InitSpec& s, uint64_t seed, const std::string& name, float* out, size_t n, int threads) {
  uint64_t key = init_stream_key(seed, name);
  auto run = [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) out[i] = static_cast<float>(init_element(s, key, i));
  };
  size_t t = static_cast<size_t>(std::max(1, threads));
  if (t == 1 || n < 65536) {
    run(0, n);
    return;
  }
  std::vector<std::thread> pool;
  size_t chunk = (n + t - 1) / t;
  for (size_t lo = 0; lo < n; lo += chunk) pool.emplace_back(run, lo, std::min(n, lo + chunk));
  for (auto& th : pool) th.join();
}

}  // namespace strata
