#include "noise_launch.h"

// The kernel is defined in the Python package's kernel file (shared with NVRTC); including it
// keeps its host stub in this translation unit, so no relocatable device code is needed.
#include "noise_kernel.cu"

namespace vidm {

cudaError_t launch_gaussian_noise(float* out, const unsigned int* base, unsigned int step,
                                  unsigned int batch, unsigned int per_video, cudaStream_t stream) {
  const unsigned long long blocks = (static_cast<unsigned long long>(per_video) + 3) / 4 * batch;
  const unsigned int threads = 256;
  unsigned long long grid = (blocks + threads - 1) / threads;
  if (grid > 65535ull * 32) grid = 65535ull * 32;  // the kernel grid-strides over the rest
  if (grid == 0) return cudaSuccess;
  vidm_gaussian_noise<<<static_cast<unsigned int>(grid), threads, 0, stream>>>(out, base, step,
                                                                               batch, per_video);
  return cudaGetLastError();
}

}  // namespace vidm
