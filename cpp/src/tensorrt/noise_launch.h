// Host launcher of the vidm_gaussian_noise kernel (vidm_rt/kernels/noise_kernel.cu).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace vidm {

// out[b * per_video + e] = gaussian(seed, base[0] + b, base[1], step)[e] with
// seed = base[2] | base[3] << 32; base is device memory (4 words: first video, frame, key low,
// key high; see noise_base_words) so a captured graph reads the frame and seed at replay time.
cudaError_t launch_gaussian_noise(float* out, const unsigned int* base, unsigned int step,
                                  unsigned int batch, unsigned int per_video, cudaStream_t stream);

// The 4 words of the noise address the kernel reads from base: the seed is split into the
// Philox key's low and high 32 bits.
inline void noise_base_words(std::uint64_t seed, std::uint32_t first_video, std::uint32_t frame,
                             unsigned int out[4]) {
  out[0] = first_video;
  out[1] = frame;
  out[2] = static_cast<unsigned int>(seed & 0xFFFFFFFFu);
  out[3] = static_cast<unsigned int>(seed >> 32);
}

}  // namespace vidm
