#include "sampler.h"

#include <cmath>

namespace vidm {

void apply_update(const float* coef, bool clip_x0, const float* x, const float* model_out,
                  const float* noise, const float* x0_prev, float* x_next, float* x0, int batch,
                  int channels, std::size_t pixels) {
  const float r = coef[0], m = coef[1], a = coef[2], b = coef[3], c = coef[4], s = coef[5],
              h = coef[6];
  const std::size_t image = static_cast<std::size_t>(channels) * pixels;
  for (int n = 0; n < batch; ++n) {
    const float* eps = model_out + 2 * image * n;
    const float* v = eps + image;
    const std::size_t o = image * n;
    for (std::size_t e = 0; e < image; ++e) {
      const float xe = x[o + e];
      float x0e = r * xe - m * eps[e];
      if (clip_x0) x0e = x0e < -1.0f ? -1.0f : (x0e > 1.0f ? 1.0f : x0e);
      const float mean = (a * x0e + b * xe) + c * x0_prev[o + e];
      x_next[o + e] = mean + (s * std::exp(h * v[e])) * noise[o + e];
      x0[o + e] = x0e;
    }
  }
}

}  // namespace vidm
