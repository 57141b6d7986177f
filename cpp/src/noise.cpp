#include "noise.h"

#include "philox_noise.h"

namespace vidm {

void gaussian_batch(std::uint64_t seed, std::uint32_t first_video, int batch, std::uint32_t frame,
                    std::uint32_t step, std::size_t per_video, float* out) {
  const auto key_lo = static_cast<unsigned int>(seed & 0xFFFFFFFFu);
  const auto key_hi = static_cast<unsigned int>(seed >> 32);
  for (int b = 0; b < batch; ++b) {
    float* row = out + per_video * b;
    const unsigned int video = first_video + static_cast<unsigned int>(b);
    for (std::size_t e0 = 0; e0 < per_video; e0 += 4) {
      float v[4];
      vidm_gaussian_block(key_lo, key_hi, static_cast<unsigned int>(e0 / 4), video, frame, step, v);
      for (std::size_t j = 0; j < 4 && e0 + j < per_video; ++j) row[e0 + j] = v[j];
    }
  }
}

}  // namespace vidm
