// vidm_rt.noise on the CPU, from the shared header vidm_rt/kernels/philox_noise.h, and the noise
// address words the CPU and the CUDA kernel (vidm_rt/kernels/noise_kernel.cu) both read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vidm {

// One row's noise address: {video, frame, key low, key high}, the key being the seed's low and
// high 32 bits (the Philox key). Rows are independent, so the rows of a batch may serve
// different requests at different frames (continuous batching).
inline void noise_row_words(std::uint64_t seed, std::uint32_t video, std::uint32_t frame,
                            std::uint32_t out[4]) {
  out[0] = video;
  out[1] = frame;
  out[2] = static_cast<std::uint32_t>(seed & 0xFFFFFFFFu);
  out[3] = static_cast<std::uint32_t>(seed >> 32);
}

// The 4 * batch words of a plain batch: row b draws video first_video + b of one seed and frame.
inline void noise_batch_words(std::uint64_t seed, std::uint32_t first_video, std::uint32_t frame,
                              int batch, std::uint32_t* out) {
  for (int b = 0; b < batch; ++b) {
    noise_row_words(seed, first_video + static_cast<std::uint32_t>(b), frame, out + 4 * b);
  }
}

// out[b * per_video + e] = gaussian(seed_b, rows[4b], rows[4b + 1], step)[e] with
// seed_b = rows[4b + 2] | rows[4b + 3] << 32.
void gaussian_rows(const std::uint32_t* rows, int batch, std::uint32_t step, std::size_t per_video,
                   float* out);

// out[b * per_video + e] = gaussian(seed, first_video + b, frame, step)[e].
void gaussian_batch(std::uint64_t seed, std::uint32_t first_video, int batch, std::uint32_t frame,
                    std::uint32_t step, std::size_t per_video, float* out);

}  // namespace vidm
