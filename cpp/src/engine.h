// How a generator runs graphs: an Engine owns the buffers of a Plan, binds every launch once
// (load), and runs a frame's program. Implementations: the closed-form CPU test engine (always
// built) and the TensorRT engine (built when CMake finds TensorRT and CUDA).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "manifest.h"
#include "plan.h"

namespace vidm {

class Engine {
 public:
  virtual ~Engine() = default;
  virtual const char* name() const = 0;
  // Allocate every buffer of the plan (zero-filled) and bind every launch; called once.
  virtual void load(const Plan& plan) = 0;
  // write and read accept only host-staged buffers (BufferSpec::host), the only ones a zero-copy
  // engine maps.
  virtual void write(const std::string& buffer, const float* src, std::size_t count) = 0;
  // Waits for the work queued before it.
  virtual void read(const std::string& buffer, float* dst, std::size_t count) = 0;
  virtual void run(const std::string& program, const NoiseAddress& address) = 0;
};

// The engine a manifest asks for; vidm::Error when this build cannot run it.
std::unique_ptr<Engine> make_engine(const Manifest& m, unsigned int flags);

}  // namespace vidm
