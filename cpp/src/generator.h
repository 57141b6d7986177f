// The generation loop (the C++ twin of vidm_rt/runtime/generator.py): verify the manifest, build
// the plan, let the engine allocate and bind everything once, then per frame write the frame
// index and run one program.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "manifest.h"
#include "plan.h"
#include "vidm_rt.h"

namespace vidm {

class Generator {
 public:
  Generator(const std::string& engine_dir, unsigned int flags);
  vidm_rt_info info() const;
  // See vidm_rt_generate; returns VIDM_RT_OK or VIDM_RT_STOPPED, throws vidm::Error otherwise.
  vidm_rt_status generate(int frames, std::uint64_t seed, std::uint32_t first_video,
                          const float* first_frame, float* out, std::size_t out_count,
                          vidm_rt_frame_callback on_frame, void* user);

 private:
  Manifest manifest_;
  Plan plan_;
  std::unique_ptr<Engine> engine_;  // after plan_: it keeps a pointer to the plan, so it goes first
  std::vector<float> frame_;  // the frame handed to the callback when the caller gives no `out`
};

}  // namespace vidm
