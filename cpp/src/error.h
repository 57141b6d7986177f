// The one exception type of the C++ core; the C API turns it into a status and a message.
#pragma once

#include <stdexcept>
#include <string>

#include "vidm_rt.h"

namespace vidm {

class Error : public std::runtime_error {
 public:
  Error(vidm_rt_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  vidm_rt_status status() const { return status_; }

 private:
  vidm_rt_status status_;
};

}  // namespace vidm
