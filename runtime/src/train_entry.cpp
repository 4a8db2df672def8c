// train_entry.cpp — strata_cli_train (train.h): `bin/model train` with the real backend. The model
// is created and its weights loaded through the C ABI, exactly as `generate` does, then the
// compiled Program's training entry is made from it (make_program_train_target) and the CUDA
// AdamW (adamw.cu) runs on the target's stream. Lives in libmodel.so, next to the Program.
#include <memory>
#include <string>

#include "adamw.h"
#include "cli_train.h"
#include "error.h"
#include "strata.h"
#include "strata_model_iface.h"
#include "train.h"

namespace strata {

// Until the compiled Program provides its training entry (a strong definition in
// program_model.cu), `model train` says so instead of failing to link.
__attribute__((weak)) std::unique_ptr<TrainTarget> make_program_train_target(void*) {
  throw Error("this model has no training entry (make_program_train_target): recompile it with a Strata version that builds one",
              STRATA_ERR_STATE);
}

}  // namespace strata

extern "C" STRATA_API int strata_cli_train(int argc, char** argv, const char* default_manifest) {
  using namespace strata;
  TrainBackend b;
  b.make_target = [](const Manifest& mf, const std::string& weights, uint64_t init_seed) {
    strata_options opts;
    strata_options_init(&opts);
    strata_model* m = strata_model_create(mf.path.c_str(), &opts);
    if (!m) throw Error(strata_last_error(), STRATA_ERR_IO);
    TrainModel tm;
    tm.owner = std::shared_ptr<void>(m, [](void* p) { strata_model_destroy(static_cast<strata_model*>(p)); });
    const strata_status st = weights.empty() ? strata_model_init_weights(m, init_seed) : strata_model_load_weights(m, weights.c_str());
    if (st != STRATA_OK) throw Error(strata_last_error(), st);
    tm.target = make_program_train_target(m);
    if (!tm.target) throw Error("make_program_train_target returned null", STRATA_ERR_INTERNAL);
    return tm;
  };
  b.make_optimizer = [](const std::vector<ParamSlot>& slots, TrainTarget& t, int accum) { return make_cuda_adamw(slots, t.stream(), accum); };
  try {
    return cli_train(argc, argv, default_manifest ? default_manifest : "", b);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
