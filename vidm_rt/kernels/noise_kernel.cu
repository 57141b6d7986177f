/* vidm_rt.noise on a CUDA device: out[b * per_video + e] = gaussian(seed_b, base[4b], base[4b + 1],
 * step)[e] for b < batch, e < per_video, bit for bit equal to numpy, where row b's seed is
 * seed_b = base[4b + 2] | base[4b + 3] << 32 (the Philox key: its low and high 32 bits).
 *
 * Each row has its own address (video, frame, key: 4 words per row) so that the rows of one
 * batch may serve different requests at different frames (continuous batching); a plain batch
 * fills row b with video first + b of one seed at one frame. The addresses come from device
 * memory (base) so that a captured CUDA graph replays the same launch for every frame and every
 * seed after the host updates base.
 * Compiled by nvcc (the C++ library) and by NVRTC (the Python GPU path); neither needs flags for
 * exactness because the header uses the _rn intrinsics, but --fmad=false is passed anyway. */
#include "philox_noise.h"

extern "C" __global__ void vidm_gaussian_noise(float* out, const unsigned int* base,
                                               unsigned int step, unsigned int batch,
                                               unsigned int per_video) {
  const unsigned long long blocks_per_video = ((unsigned long long)per_video + 3ull) / 4ull;
  const unsigned long long total = blocks_per_video * batch;
  for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
       i < total; i += (unsigned long long)gridDim.x * blockDim.x) {
    const unsigned int b = (unsigned int)(i / blocks_per_video);
    const unsigned int block = (unsigned int)(i % blocks_per_video);
    const unsigned int* row_base = base + 4ull * b;
    float v[4];
    vidm_gaussian_block(row_base[2], row_base[3], block, row_base[0], row_base[1], step, v);
    const unsigned long long e0 = 4ull * block;
    float* row = out + (unsigned long long)b * per_video;
    for (unsigned int j = 0; j < 4; ++j) {
      if (e0 + j < per_video) row[e0 + j] = v[j];
    }
  }
}
