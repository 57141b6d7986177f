// Host launcher of the vidm_gaussian_noise kernel (vidm_rt/kernels/noise_kernel.cu).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace vidm {

// out[b * per_video + e] = gaussian(seed, base[0] + b, base[1], step)[e]; base is device memory
// (2 words: first video, frame) so a captured graph reads the frame at replay time.
cudaError_t launch_gaussian_noise(float* out, std::uint64_t seed, const unsigned int* base,
                                  unsigned int step, unsigned int batch, unsigned int per_video,
                                  cudaStream_t stream);

}  // namespace vidm
