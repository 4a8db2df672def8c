// `bin/model train` (cli_train.h):
//
//   model train --data FILE.tok [--eval-data FILE.tok] --steps N --batch B [--seq T] [--accum K]
//               [--lr 3e-4] [--min-lr LR/10] [--warmup 0] [--weight-decay 0.1] [--beta1 0.9]
//               [--beta2 0.95] [--eps 1e-8] [--clip 1.0] [--seed 0] [--eval-every K]
//               [--eval-batches N] [--save-every K] [--log-every 1] --out DIR [--resume DIR]
//               [--weights init.safetensors] [--manifest PATH] [--json]
//
// Everything checkable on the host is checked before the model (and the GPU) is touched.
#include "cli_train.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "checkpoint.h"
#include "error.h"
#include "json.h"
#include "safetensors.h"
#include "strata_model_iface.h"
#include "train_data.h"
#include "trainer.h"

namespace strata {

const char* train_usage() {
  return "usage: model train --data FILE.tok [--eval-data FILE.tok] --steps N --batch B [--seq T] [--accum K]\n"
         "                   [--lr 3e-4] [--min-lr LR/10] [--warmup 0] [--weight-decay 0.1] [--beta1 0.9] [--beta2 0.95]\n"
         "                   [--eps 1e-8] [--clip 1.0] [--seed 0] [--eval-every K] [--eval-batches N] [--save-every K]\n"
         "                   [--log-every 1] [--keep N] (--out DIR | --no-checkpoint) [--resume DIR] [--weights INIT.safetensors]\n"
         "                   [--manifest PATH] [--json]\n"
         "\n"
         "  Trains on a token file from `strata data` (.tok). A step is --accum micro-batches of --batch rows of --seq\n"
         "  tokens (probe files: --seq defaults to rowLength - 1); batch * seq must fit the model's training entry.\n"
         "  AdamW with fp32 master weights; defaults are Megatron-LM's 8B recipe: beta 0.9/0.95, eps 1e-8, weight\n"
         "  decay 0.1 (not on 1-D parameters, A_log, D, dt_bias, norms, biases), global-norm clip 1.0; lr: linear\n"
         "  warmup over --warmup steps, then cosine from --lr to --min-lr at the last step.\n"
         "  --seed: the data order and, without --weights, the deterministic init of the weights.\n"
         "  --eval-data: mean loss and accuracy (argmax == target at supervised positions) every --eval-every steps\n"
         "  and at the end, over --eval-batches batches (default: the whole file).\n"
         "  --out DIR: DIR/step-<N>/{model,optimizer}.safetensors + trainer.json every --save-every steps and at the\n"
         "  end; DIR/latest names the newest complete one; DIR/loss.csv, DIR/loss.svg. model.safetensors loads into\n"
         "  `model forward|generate --weights`. A new run refuses a DIR that already holds a run (DIR/latest).\n"
         "  --keep N: keep only the newest N checkpoints (default: all).\n"
         "  --no-checkpoint: write no checkpoint at all (benchmarks).\n"
         "  --resume DIR: continue from DIR/latest with the same batches and optimizer state (bit-identical losses);\n"
         "  flags left out take the checkpoint's values; --out defaults to DIR.\n"
         "  Progress on stderr every --log-every steps: loss, lr, gradient norm, tokens/s, MFU and ETA. MFU =\n"
         "  training FLOPs per token * tokens/s / 989 TFLOP/s (H100/H200 dense bf16 peak).\n"
         "  --json: one JSON object per logged step on stdout {step, loss, lr, grad_norm, tokens_per_s, mfu} and per\n"
         "  evaluation {step, eval_loss, accuracy}, then {final: true, step, final_loss, mean_tokens_per_s,\n"
         "  mean_mfu, train_seconds, wall_seconds, checkpoint} (over training time, without evaluation and checkpoints).\n"
         "  A non-finite loss or gradient stops training before the update (exit 1), naming the step and the first\n"
         "  parameter whose gradient is not finite; the last good checkpoint stays in place.\n"
         "  Ctrl-C / SIGTERM: the current step finishes, a checkpoint is written, exit 130 (resume with --resume DIR).\n";
}

namespace {

struct UsageError : Error {
  explicit UsageError(const std::string& m) : Error(m) {}
};

int64_t parse_int(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || errno || !end || *end || v.find_first_not_of("-0123456789") != std::string::npos)
    throw UsageError(flag + ": '" + v + "' is not an integer");
  if (x < lo || x > hi) throw UsageError(flag + " " + v + " is out of range (valid: " + std::to_string(lo) + ".." + std::to_string(hi) + ")");
  return x;
}

double parse_real(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || errno || !end || *end || !std::isfinite(d)) throw UsageError(flag + ": '" + v + "' is not a finite number");
  return d;
}

volatile int g_interrupt = 0;
extern "C" void on_signal(int) { g_interrupt = 1; }

// The same file under two spellings of its path.
bool same_file(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char ra[PATH_MAX], rb[PATH_MAX];
  return ::realpath(a.c_str(), ra) && ::realpath(b.c_str(), rb) && std::strcmp(ra, rb) == 0;
}

std::string g(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace

int cli_train(int argc, char** argv, const std::string& default_manifest, const TrainBackend& backend, FILE* out, FILE* err) {
  TrainConfig c;
  std::map<std::string, std::string> o;
  std::unique_ptr<TokenFile> train, eval;
  Manifest mf;
  std::vector<std::vector<int64_t>> shapes;
  try {
    static const char* valid[] = {"--data", "--eval-data", "--steps", "--batch", "--seq", "--accum", "--lr", "--min-lr", "--warmup",
                                  "--weight-decay", "--beta1", "--beta2", "--eps", "--clip", "--seed", "--eval-every", "--eval-batches",
                                  "--save-every", "--log-every", "--keep", "--out", "--resume", "--weights", "--manifest"};
    for (int i = 2; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "-h" || a == "--help") {
        std::fputs(train_usage(), out);
        return 0;
      }
      if (a == "--json") {
        c.json = true;
        continue;
      }
      if (a == "--no-checkpoint") {
        c.no_checkpoint = true;
        continue;
      }
      if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "' for 'train' (options start with --)");
      std::string flag = a, value;
      const size_t eq = a.find('=');
      if (eq != std::string::npos) flag = a.substr(0, eq), value = a.substr(eq + 1);
      bool known = false;
      for (const char* v : valid) known = known || flag == v;
      if (!known) {
        std::string list;
        for (const char* v : valid) list += std::string(list.empty() ? "" : ", ") + v;
        throw UsageError("unknown option '" + flag + "' for 'train' (valid: " + list + ", --json, --no-checkpoint)");
      }
      if (o.count(flag)) throw UsageError("option '" + flag + "' given more than once");
      if (eq == std::string::npos) {
        if (i + 1 >= argc) throw UsageError("option '" + flag + "' needs a value");
        value = argv[++i];
      }
      if (value.empty()) throw UsageError("option '" + flag + "' needs a non-empty value");
      o[flag] = value;
    }
    // --resume: the checkpoint's config is the default for every flag left out; a flag that
    // would change the trajectory must agree with it.
    json::Value stored;
    if (o.count("--resume")) {
      if (o.count("--weights")) throw UsageError("give either --resume DIR (continue a run) or --weights FILE (start one from those weights), not both");
      try {
        const std::string path = latest_checkpoint(o["--resume"]);
        const std::string tj = path + "/trainer.json";
        FILE* f = std::fopen(tj.c_str(), "rb");
        if (!f) throw Error(tj + ": cannot read (" + std::strerror(errno) + ")");
        std::string text;
        char buf[65536];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        std::fclose(f);
        stored = json::parse(text, tj);
        const json::Value* cfg = stored.find("config");
        if (!cfg) throw Error(tj + ": missing \"config\"");
        c = [&] {
          TrainConfig s = config_from_json(*cfg, tj);
          s.json = c.json;
          return s;
        }();
      } catch (const UsageError&) {
        throw;
      } catch (const Error& e) {
        throw UsageError(std::string("--resume: ") + e.what());
      }
      const TrainConfig s = c;
      auto same = [&](const char* flag, bool equal, const std::string& was) {
        if (o.count(flag) && !equal)
          throw UsageError(std::string(flag) + " " + o[flag] + " differs from the checkpoint's " + was +
                           "; a resumed run continues the stored one (leave the flag out), or start a new run from "
                           "DIR/step-<N>/model.safetensors with --weights");
      };
      if (o.count("--data")) same("--data", same_file(o["--data"], s.data), s.data);
      if (o.count("--batch")) same("--batch", parse_int("--batch", o["--batch"], 1, INT32_MAX) == s.batch, std::to_string(s.batch));
      if (o.count("--seq")) same("--seq", parse_int("--seq", o["--seq"], 1, INT32_MAX) == s.seq, std::to_string(s.seq));
      if (o.count("--accum")) same("--accum", parse_int("--accum", o["--accum"], 1, INT32_MAX) == s.accum, std::to_string(s.accum));
      if (o.count("--seed")) same("--seed", o["--seed"] == std::to_string(s.seed), std::to_string(s.seed));
      if (o.count("--warmup")) same("--warmup", parse_int("--warmup", o["--warmup"], 0, INT64_MAX) == s.opt.warmup, std::to_string(s.opt.warmup));
      const std::pair<const char*, double> reals[] = {{"--lr", s.opt.lr},       {"--min-lr", s.opt.min_lr}, {"--weight-decay", s.opt.weight_decay},
                                                      {"--beta1", s.opt.beta1}, {"--beta2", s.opt.beta2},   {"--eps", s.opt.eps},
                                                      {"--clip", s.opt.clip}};
      for (const auto& r : reals)
        if (o.count(r.first)) same(r.first, parse_real(r.first, o[r.first]) == r.second, g(r.second));
      c.resume = o["--resume"];
      c.out = c.resume;
    }
    auto has = [&](const char* f) { return o.count(f) > 0; };
    if (has("--data")) c.data = o["--data"];
    if (has("--eval-data")) c.eval_data = o["--eval-data"];
    if (has("--out")) c.out = o["--out"];
    if (has("--weights")) c.weights = o["--weights"];
    if (has("--manifest")) c.manifest = o["--manifest"];
    if (has("--steps")) {
      const int64_t steps = parse_int("--steps", o["--steps"], 1, INT64_MAX / 2);
      if (!c.resume.empty() && steps != c.steps)
        std::fprintf(err, "train: --steps %lld differs from the checkpoint's %lld: the learning-rate schedule follows the new total from here on\n",
                     static_cast<long long>(steps), static_cast<long long>(c.steps));
      c.steps = steps;
    }
    if (has("--batch")) c.batch = static_cast<int>(parse_int("--batch", o["--batch"], 1, INT32_MAX));
    if (has("--seq")) c.seq = static_cast<int>(parse_int("--seq", o["--seq"], 1, INT32_MAX));
    if (has("--accum")) c.accum = static_cast<int>(parse_int("--accum", o["--accum"], 1, 1 << 20));
    if (has("--lr")) c.opt.lr = parse_real("--lr", o["--lr"]);
    if (has("--min-lr")) c.opt.min_lr = parse_real("--min-lr", o["--min-lr"]);
    else if (c.resume.empty()) c.opt.min_lr = c.opt.lr / 10;
    if (has("--warmup")) c.opt.warmup = parse_int("--warmup", o["--warmup"], 0, INT64_MAX / 2);
    if (has("--weight-decay")) c.opt.weight_decay = parse_real("--weight-decay", o["--weight-decay"]);
    if (has("--beta1")) c.opt.beta1 = parse_real("--beta1", o["--beta1"]);
    if (has("--beta2")) c.opt.beta2 = parse_real("--beta2", o["--beta2"]);
    if (has("--eps")) c.opt.eps = parse_real("--eps", o["--eps"]);
    if (has("--clip")) c.opt.clip = parse_real("--clip", o["--clip"]);
    if (has("--seed")) {
      const std::string& v = o["--seed"];
      if (v.find_first_not_of("0123456789") != std::string::npos || v.size() > 20) throw UsageError("--seed: '" + v + "' is not a non-negative integer");
      errno = 0;
      c.seed = std::strtoull(v.c_str(), nullptr, 10);
      if (errno) throw UsageError("--seed " + v + " does not fit in 64 bits");
    }
    if (has("--eval-every")) c.eval_every = parse_int("--eval-every", o["--eval-every"], 0, INT64_MAX);
    if (has("--eval-batches")) c.eval_batches = parse_int("--eval-batches", o["--eval-batches"], 0, INT64_MAX);
    if (has("--save-every")) c.save_every = parse_int("--save-every", o["--save-every"], 0, INT64_MAX);
    if (has("--log-every")) c.log_every = parse_int("--log-every", o["--log-every"], 1, INT64_MAX);
    if (has("--keep")) c.keep = parse_int("--keep", o["--keep"], 0, INT32_MAX);

    if (c.eval_every > 0 && c.eval_data.empty()) throw UsageError("--eval-every needs --eval-data FILE.tok (the held-out set to evaluate)");
    if (c.data.empty()) throw UsageError("'train' needs --data FILE.tok (a token file from `strata data`)");
    if (c.steps < 1) throw UsageError("'train' needs --steps N (N ≥ 1 optimizer steps)");
    if (c.batch < 1) throw UsageError("'train' needs --batch B (rows per micro-batch, B ≥ 1)");
    if (c.no_checkpoint && (o.count("--out") || o.count("--save-every") || o.count("--keep") || !c.resume.empty()))
      throw UsageError("--no-checkpoint writes nothing: it excludes --out, --save-every, --keep and --resume");
    if (c.out.empty() && !c.no_checkpoint) throw UsageError("'train' needs --out DIR (checkpoints are written there; --no-checkpoint for none)");
    // A run writes step-<N> directories file by file and then points DIR/latest at them: into a
    // folder that holds another run, it would rewrite that run's checkpoints in place (the one
    // `latest` names included, so a kill mid-write leaves it mixed) and --keep would prune by step
    // number across both runs. Only a resumed run continues in its own folder.
    if (!c.no_checkpoint && (c.resume.empty() || !same_file(c.out, c.resume))) {
      struct stat st;
      if (::stat((c.out + "/latest").c_str(), &st) == 0)
        throw UsageError("--out " + c.out + " already holds a training run (" + c.out + "/latest exists): continue it with --resume " + c.out +
                         ", or give a new --out DIR");
    }
    if (!(c.opt.lr >= 0)) throw UsageError("--lr " + g(c.opt.lr) + " must be ≥ 0");
    if (!(c.opt.min_lr >= 0 && c.opt.min_lr <= c.opt.lr))
      throw UsageError("--min-lr " + g(c.opt.min_lr) + " must be in [0, --lr " + g(c.opt.lr) + "]");
    if (c.opt.warmup > c.steps) throw UsageError("--warmup " + std::to_string(c.opt.warmup) + " is longer than --steps " + std::to_string(c.steps));
    if (!(c.opt.beta1 >= 0 && c.opt.beta1 < 1)) throw UsageError("--beta1 " + g(c.opt.beta1) + " must be in [0, 1)");
    if (!(c.opt.beta2 >= 0 && c.opt.beta2 < 1)) throw UsageError("--beta2 " + g(c.opt.beta2) + " must be in [0, 1)");
    if (!(c.opt.eps > 0)) throw UsageError("--eps " + g(c.opt.eps) + " must be > 0");
    if (!(c.opt.weight_decay >= 0)) throw UsageError("--weight-decay " + g(c.opt.weight_decay) + " must be ≥ 0");
    if (!(c.opt.clip >= 0)) throw UsageError("--clip " + g(c.opt.clip) + " must be ≥ 0 (0 turns clipping off)");

    // the data
    try {
      train.reset(new TokenFile(c.data));
      if (!c.eval_data.empty()) eval.reset(new TokenFile(c.eval_data));
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
    if (c.seq < 1) {
      if (train->row_length() == 0) throw UsageError("'train' needs --seq T for the token stream " + c.data + " (probe files default to rowLength - 1)");
      c.seq = static_cast<int>(train->row_length() - 1);
      if (c.seq < 1) throw UsageError(c.data + " has rows of 1 token: nothing to predict");
    }
    check_seq_for(*train, c.seq, "--data");
    if (eval) {
      if (eval->row_length() > 0) {
        if (eval->row_length() < 2) throw UsageError("--eval-data " + c.eval_data + " has rows of 1 token: nothing to predict");
      } else {
        check_seq_for(*eval, c.seq, "--eval-data");
      }
    }
    if (!stored.is_null()) {
      const json::Value* d = stored.find("data");
      const json::Value* cnt = d ? d->find("count") : nullptr;
      if (cnt && cnt->is_number() && static_cast<uint64_t>(cnt->as_number()) != train->count())
        throw UsageError("--data " + c.data + " holds " + std::to_string(train->count()) + " tokens but the checkpoint was trained on " +
                         json::dump(*cnt) + ": the batches would differ");
      const json::Value* hash = d ? d->find("hash") : nullptr;  // (checkpoints written before it have none)
      if (hash && hash->is_string() && hash->as_string() != std::to_string(train->content_hash()))
        throw UsageError("--data " + c.data + " is not the token file the checkpoint was trained on (same length, different contents): the batches would differ");
    }

    // the model, from its manifest
    const std::string manifest = c.manifest.empty() ? default_manifest : c.manifest;
    if (manifest.empty()) throw UsageError("no manifest: pass --manifest PATH");
    try {
      mf = load_manifest(manifest);
    } catch (const Error& e) {
      throw UsageError(e.what());
    }
    for (const TokenFile* f : {train.get(), eval.get()})
      if (f && f->vocab() > mf.vocab_size)
        throw UsageError(f->path() + " has vocabulary " + std::to_string(f->vocab()) + " but the model's is " + std::to_string(mf.vocab_size) +
                         " (vocabSize): the data's vocabulary must be at most the model's");
    c.eval_max_rows = static_cast<int>(std::min<int64_t>(mf.max_batch, INT32_MAX));
    if (mf.max_seqlen > 0 && c.seq > mf.max_seqlen)
      throw UsageError("--seq " + std::to_string(c.seq) + " is longer than this model's maxSeqlen " + std::to_string(mf.max_seqlen) +
                       " (recompile with strata compile --max-seq N)");
    if (eval && eval->row_length() > 0 && mf.max_seqlen > 0 && static_cast<int64_t>(eval->row_length()) - 1 > mf.max_seqlen)
      throw UsageError("--eval-data rows of " + std::to_string(eval->row_length()) + " tokens need seqlen " + std::to_string(eval->row_length() - 1) +
                       " > maxSeqlen " + std::to_string(mf.max_seqlen));
    if (!c.weights.empty() && c.resume.empty()) {  // a resumed run's weights come from its masters
      try {
        SafetensorsFile file(c.weights);
        std::vector<ExpectedTensor> expected;
        for (const auto& w : mf.weights) expected.push_back({w.name, w.dtype, w.shape});
        file.validate_against(expected);
      } catch (const Error& e) {
        throw UsageError(std::string("--weights: ") + e.what());
      }
    }
  } catch (const Error& e) {
    std::fprintf(err, "error: %s\n\n%s", e.what(), train_usage());
    return 2;
  }

  try {
    TrainModel model = backend.make_target(mf, c.resume.empty() ? c.weights : std::string(), c.seed);
    TrainTarget& t = *model.target;
    const int64_t bt = static_cast<int64_t>(c.batch) * c.seq;
    if (bt > t.max_tokens()) {
      std::fprintf(err, "error: --batch %d × --seq %d = %lld tokens per micro-batch; this model's training entry takes at most %d (use --accum to keep the batch)\n",
                   c.batch, c.seq, static_cast<long long>(bt), t.max_tokens());
      return 2;
    }
    if (eval && eval->row_length() > 0 && static_cast<int64_t>(eval->row_length() - 1) > t.max_tokens()) {
      std::fprintf(err, "error: --eval-data rows of %u tokens exceed the model's %d tokens per call\n", eval->row_length(), t.max_tokens());
      return 2;
    }
    for (int i = 0; i < t.param_count(); ++i) {
      const int64_t w = mf.weight_index(t.param_name(i));
      if (w < 0) throw Error("train: the training entry's parameter '" + t.param_name(i) + "' is not in the manifest's weights", STRATA_ERR_INTERNAL);
      shapes.push_back(mf.weights[static_cast<size_t>(w)].shape);
    }
    for (const auto& w : mf.weights) {
      bool found = false;
      for (int i = 0; i < t.param_count() && !found; ++i) found = t.param_name(i) == w.name;
      if (!found)
        std::fprintf(err, "train: warning: weight '%s' is not a training parameter; checkpoints' model.safetensors will lack it\n", w.name.c_str());
    }
    Trainer trainer(t, c, shapes, *train, eval.get(),
                    [&](const std::vector<ParamSlot>& s, int accum) { return backend.make_optimizer(s, t, accum); }, err, out);
    if (!c.resume.empty()) trainer.resume(c.resume);
    // Ctrl-C / SIGTERM: finish the step, write a checkpoint, exit 130 (a second signal kills)
    g_interrupt = 0;
    trainer.interrupt = &g_interrupt;
    struct sigaction sa {}, old_int {}, old_term {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    struct Restore {
      struct sigaction a, b;
      ~Restore() {
        sigaction(SIGINT, &a, nullptr);
        sigaction(SIGTERM, &b, nullptr);
      }
    } restore{old_int, old_term};
    std::fprintf(err, "train: %s, %d params, %lld steps × %d × %d × %d tokens; lr %g → %g (warmup %lld), wd %g, clip %g; out %s\n",
                 c.data.c_str(), t.param_count(), static_cast<long long>(c.steps), c.accum, c.batch, c.seq, c.opt.lr, c.opt.min_lr,
                 static_cast<long long>(c.opt.warmup), c.opt.weight_decay, c.opt.clip, c.out.c_str());
    return trainer.run();
  } catch (const std::exception& e) {
    std::fprintf(err, "error: %s\n", e.what());
    return 1;
  }
}

}  // namespace strata
