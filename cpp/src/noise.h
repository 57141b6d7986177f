// vidm_rt.noise.gaussian_batch on the CPU, from the shared header vidm_rt/kernels/philox_noise.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vidm {

// out[b * per_video + e] = gaussian(seed, first_video + b, frame, step)[e].
void gaussian_batch(std::uint64_t seed, std::uint32_t first_video, int batch, std::uint32_t frame,
                    std::uint32_t step, std::size_t per_video, float* out);

}  // namespace vidm
