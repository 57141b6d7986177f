// The static schedule of a video (the C++ twin of vidm_rt/runtime/plan.py): every buffer, every
// graph launch and the op sequence of a frame, fixed before the first launch.
//
// Buffers (B videos, C channels, H x W, S steps) are those of plan.py: x.0/x.1 and x0.0/x0.1
// (ping-ponged per step), model_out, noise, x_first, x_prev, flow, k, and the tables coef (S, 7)
// and t (S, B); with conditioning noise (Manifest::cond_noise) also x_cond and a coef row S.
// Only coef, t, k, x_first and x_prev are host-staged (the generator writes or reads them through
// Engine::write/read); the rest are per-step activations that never leave the device, so a
// zero-copy engine maps only the host-staged ones. A program is the op list of one frame:
//   content: noise x.0 (step 0), zero x0.0, per step i: denoise, [noise (step i+1)], update;
//            then x_first = x_prev = result
//   motion:  [noise (kConditionStep), update on coef row S: x_cond = x_prev + cond_noise * noise,
//            with conditioning noise], flow (of x_cond or x_prev), noise x.0, zero x0.0, per step
//            as above; then x_prev = result
// so a GPU engine can capture a whole frame as one CUDA graph.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "manifest.h"

namespace vidm {

struct BufferSpec {
  std::string name;
  Shape shape;
  bool table = false;  // launches bind single rows
  bool host = false;   // host-staged: the only buffers Engine::write and Engine::read accept
  std::size_t count() const;
  std::size_t row_count() const { return table ? count() / static_cast<std::size_t>(shape[0]) : count(); }
};

struct Ref {
  std::string buffer;
  int row = -1;  // a table row, or -1 for the whole buffer
};

struct Launch {
  std::string graph;
  std::map<std::string, Ref> inputs;
  std::map<std::string, Ref> outputs;
};

struct Op {
  enum Kind { kLaunch, kNoise, kZero, kCopy };
  explicit Op(Kind k) : kind(k) {}
  Kind kind;
  int launch = -1;         // kLaunch: index into Plan::launches
  std::string buffer;      // kNoise / kZero / kCopy: the destination
  std::string source;      // kCopy
  std::uint32_t step = 0;  // kNoise: the noise address's step
};

// Per-run values a program reads: the noise address of the current frame.
struct NoiseAddress {
  std::uint64_t seed = 0;
  std::uint32_t first_video = 0;
  std::uint32_t frame = 0;
};

struct Plan {
  int batch = 0, channels = 0, height = 0, width = 0, steps = 0;
  std::vector<BufferSpec> buffers;
  std::vector<Launch> launches;
  std::map<std::string, std::vector<Op>> programs;  // "content" (if any), "motion"

  const BufferSpec& buffer(const std::string& name) const;
  // The buffer, or vidm::Error when it is not host-staged (engines check write/read with it).
  const BufferSpec& host_buffer(const std::string& name) const;
  std::size_t image_count() const {
    return static_cast<std::size_t>(batch) * channels * height * width;
  }
};

Plan build_plan(const Manifest& m);
// The contents of the coef table, row-major: the sampler's S rows, then the conditioning row
// when the model has conditioning noise (vidm_rt.runtime.plan.coefficient_rows).
std::vector<float> coefficient_rows(const Manifest& m);

}  // namespace vidm
