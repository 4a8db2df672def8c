// Manifest parsing (see Manifest in strata_model_iface.h for the format).
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "strata_model_iface.h"

namespace strata {

namespace {

int64_t get_positive_int(const json::Value& doc, const char* key, const std::string& path) {
  const json::Value* v = doc.find(key);
  if (!v) throw Error(path + ": manifest is missing required field \"" + key + "\"", STRATA_ERR_FORMAT);
  if (!v->is_integer() || v->as_int() <= 0)
    throw Error(path + ": manifest field \"" + key + "\" must be a positive integer, got " + json::dump(*v),
                STRATA_ERR_FORMAT);
  return v->as_int();
}

}  // namespace

int64_t Manifest::weight_index(const std::string& n) const {
  for (size_t i = 0; i < weights.size(); ++i)
    if (weights[i].name == n) return static_cast<int64_t>(i);
  return -1;
}

Manifest parse_manifest(const json::Value& doc, const std::string& path) {
  if (!doc.is_object()) throw Error(path + ": manifest must be a JSON object", STRATA_ERR_FORMAT);
  Manifest m;
  m.path = path;
  size_t slash = path.find_last_of('/');
  m.dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  m.json = doc;
  if (const json::Value* n = doc.find("name")) {
    if (!n->is_string()) throw Error(path + ": manifest field \"name\" must be a string", STRATA_ERR_FORMAT);
    m.name = n->as_string();
  }
  m.vocab_size = get_positive_int(doc, "vocabSize", path);
  m.max_batch = get_positive_int(doc, "maxBatch", path);
  m.max_seqlen = get_positive_int(doc, "maxSeqlen", path);
  if (m.vocab_size > INT32_MAX)
    throw Error(path + ": vocabSize must fit int32 (token ids are int32)", STRATA_ERR_FORMAT);
  if (const json::Value* a = doc.find("arenaBytes")) {
    if (!a->is_integer() || a->as_int() < 0)
      throw Error(path + ": manifest field \"arenaBytes\" must be a non-negative integer", STRATA_ERR_FORMAT);
    m.arena_bytes = static_cast<uint64_t>(a->as_int());
  }
  const json::Value* ws = doc.find("weights");
  if (!ws || !ws->is_array())
    throw Error(path + ": manifest needs a \"weights\" array of {name, dtype, shape, init}", STRATA_ERR_FORMAT);
  for (size_t i = 0; i < ws->as_array().size(); ++i) {
    const json::Value& w = ws->as_array()[i];
    std::string ctx = path + ": weights[" + std::to_string(i) + "]";
    if (!w.is_object()) throw Error(ctx + " must be an object", STRATA_ERR_FORMAT);
    const json::Value* name = w.find("name");
    if (!name || !name->is_string() || name->as_string().empty())
      throw Error(ctx + " needs a non-empty string \"name\"", STRATA_ERR_FORMAT);
    WeightSpec s;
    s.name = name->as_string();
    ctx = path + ": weight '" + s.name + "'";
    if (m.weight_index(s.name) >= 0) throw Error(ctx + " is listed twice", STRATA_ERR_FORMAT);
    const json::Value* dt = w.find("dtype");
    if (!dt || !dt->is_string()) throw Error(ctx + " needs a string \"dtype\"", STRATA_ERR_FORMAT);
    s.dtype = parse_dtype(dt->as_string(), ctx);
    const json::Value* sh = w.find("shape");
    if (!sh || !sh->is_array()) throw Error(ctx + " needs a \"shape\" array", STRATA_ERR_FORMAT);
    for (const auto& d : sh->as_array()) {
      if (!d.is_integer() || d.as_int() < 0)
        throw Error(ctx + ": shape entries must be non-negative integers, got " + json::dump(*sh), STRATA_ERR_FORMAT);
      s.shape.push_back(d.as_int());
    }
    s.numel = shape_numel(s.shape, ctx);
    s.nbytes = s.numel * dtype_size(s.dtype);
    if (const json::Value* init = w.find("init")) {
      s.init = parse_init_spec(*init, ctx);
      s.has_init = true;
      bool is_int = s.dtype == DType::I32 || s.dtype == DType::I64;
      if (is_int && (s.init.kind != InitKind::Const || s.init.value != static_cast<double>(static_cast<int64_t>(s.init.value))))
        throw Error(ctx + ": integer dtype " + dtype_name(s.dtype) + " can only use {\"kind\":\"const\"} with an integer value",
                    STRATA_ERR_FORMAT);
    }
    m.weights.push_back(std::move(s));
  }
  return m;
}

Manifest load_manifest(const std::string& path_or_dir) {
  std::string path = path_or_dir;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw Error(path + ": cannot open manifest: " + std::strerror(errno) +
                    " (pass the manifest.json written by the compiler, or its directory)",
                STRATA_ERR_IO);
  if (S_ISDIR(st.st_mode)) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    path += "/manifest.json";
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open manifest: " + std::strerror(errno), STRATA_ERR_IO);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_manifest(json::parse(ss.str(), path), path);
}

json::Value describe_manifest(const Manifest& mf) {
  json::Value v = json::Value::object();
  v.set("abiVersion", STRATA_ABI_VERSION);
  v.set("name", mf.name);
  v.set("manifest", mf.path);
  v.set("vocabSize", mf.vocab_size);
  v.set("maxBatch", mf.max_batch);
  v.set("maxSeqlen", mf.max_seqlen);
  v.set("arenaBytes", mf.arena_bytes);
  for (const char* key : {"arch", "pattern", "config", "blocks"})
    if (const json::Value* x = mf.json.find(key)) v.set(key, *x);
  uint64_t total = 0, params = 0;
  json::Value ws = json::Value::array();
  for (const auto& w : mf.weights) {
    json::Value e = json::Value::object();
    e.set("name", w.name);
    e.set("dtype", dtype_name(w.dtype));
    json::Value shape = json::Value::array();
    for (int64_t d : w.shape) shape.push_back(d);
    e.set("shape", shape);
    ws.push_back(e);
    total += w.nbytes;
    params += w.numel;
  }
  v.set("numParams", params);
  v.set("weightBytes", total);
  if (const json::Value* ks = mf.json.find("kernels"); ks && ks->is_array())
    v.set("kernels", static_cast<int64_t>(ks->as_array().size()));
  v.set("weights", ws);
  return v;
}

}  // namespace strata
