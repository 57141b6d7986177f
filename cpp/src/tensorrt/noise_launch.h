// Host launcher of the vidm_gaussian_noise kernel (vidm_rt/kernels/noise_kernel.cu).
#pragma once

#include <cuda_runtime_api.h>

namespace vidm {

// out[b * per_video + e] = gaussian(seed_b, base[4b], base[4b + 1], step)[e] with
// seed_b = base[4b + 2] | base[4b + 3] << 32; base is device memory, 4 words per row (video,
// frame, key low, key high; see noise_row_words and noise_batch_words in noise.h), so a captured
// graph reads the frames and seeds at replay time.
cudaError_t launch_gaussian_noise(float* out, const unsigned int* base, unsigned int step,
                                  unsigned int batch, unsigned int per_video, cudaStream_t stream);

}  // namespace vidm
