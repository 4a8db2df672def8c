// strata::Error — the single exception type thrown by the runtime.
// The ABI layer (strata_abi.cpp) converts it to a strata_status plus the
// thread-local message returned by strata_last_error().
#pragma once

#include <stdexcept>
#include <string>

#include "strata.h"

namespace strata {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, strata_status code = STRATA_ERR_INVALID_ARGUMENT)
      : std::runtime_error(message), code_(code) {}
  strata_status code() const noexcept { return code_; }

 private:
  strata_status code_;
};

}  // namespace strata
