#include "noise.h"

#include <vector>

#include "philox_noise.h"

namespace vidm {

void gaussian_rows(const std::uint32_t* rows, int batch, std::uint32_t step, std::size_t per_video,
                   float* out) {
  for (int b = 0; b < batch; ++b) {
    const std::uint32_t* address = rows + 4 * b;
    float* row = out + per_video * b;
    for (std::size_t e0 = 0; e0 < per_video; e0 += 4) {
      float v[4];
      vidm_gaussian_block(address[2], address[3], static_cast<unsigned int>(e0 / 4), address[0],
                          address[1], step, v);
      for (std::size_t j = 0; j < 4 && e0 + j < per_video; ++j) row[e0 + j] = v[j];
    }
  }
}

void gaussian_batch(std::uint64_t seed, std::uint32_t first_video, int batch, std::uint32_t frame,
                    std::uint32_t step, std::size_t per_video, float* out) {
  std::vector<std::uint32_t> rows(4 * static_cast<std::size_t>(batch));
  noise_batch_words(seed, first_video, frame, batch, rows.data());
  gaussian_rows(rows.data(), batch, step, per_video, out);
}

}  // namespace vidm
