// One step of the generic sampler update (vidm_rt.schedule.apply_update and the update graph of
// vidm_rt/export/update_graph.py), evaluated in the same order so float32 results agree:
//     x0     = clip(r*x - m*eps, -1, 1)                  (no clip when the table says so)
//     x_next = ((a*x0 + b*x) + c*x0_prev) + (s*exp(h*v))*noise
#pragma once

#include <cstddef>

#include "manifest.h"

namespace vidm {

// x, noise, x0_prev, x_next, x0: (batch, channels, pixels); model_out: (batch, 2*channels,
// pixels) holding eps then v. coef: one row [r, m, a, b, c, s, h].
void apply_update(const float* coef, bool clip_x0, const float* x, const float* model_out,
                  const float* noise, const float* x0_prev, float* x_next, float* x0, int batch,
                  int channels, std::size_t pixels);

}  // namespace vidm
