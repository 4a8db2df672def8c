// `bin/model generate`: prompts in, generated token ids out, streamed as they come.
#pragma once

#include <string>

namespace strata {

// argv[1] == "generate". Exit codes as cli_main: 0 success, 1 runtime failure, 2 usage error.
int cli_generate(int argc, char** argv, const std::string& default_manifest);

}  // namespace strata
