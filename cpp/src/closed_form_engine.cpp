#include "closed_form_engine.h"

#include <algorithm>

#include "error.h"
#include "noise.h"
#include "sampler.h"

namespace vidm {

ClosedFormEngine::ClosedFormEngine(const Manifest& m) : clip_x0_(m.sampler.clip_x0) {
  if (m.closed_form != kClosedFormVersion) {
    throw Error(VIDM_RT_ERROR_UNSUPPORTED,
                m.dir + ": closed-form test engine version " + std::to_string(m.closed_form) +
                    " is not the version " + std::to_string(kClosedFormVersion) +
                    " this library implements: regenerate it with this vidm-rt");
  }
  if (m.channels < 2) {
    throw Error(VIDM_RT_ERROR_MANIFEST, m.dir + ": the closed-form flow needs at least 2 channels");
  }
}

std::vector<float>& ClosedFormEngine::buffer(const std::string& name) {
  auto it = buffers_.find(name);
  if (it == buffers_.end()) throw Error(VIDM_RT_ERROR_INTERNAL, "no buffer named " + name);
  return it->second;
}

float* ClosedFormEngine::ref(const Ref& r) {
  auto& b = buffer(r.buffer);
  return r.row < 0 ? b.data() : b.data() + plan_->buffer(r.buffer).row_count() * r.row;
}

std::function<void()> ClosedFormEngine::bind(const Launch& l) {
  const int batch = plan_->batch, channels = plan_->channels;
  const std::size_t pixels = static_cast<std::size_t>(plan_->height) * plan_->width;
  const std::size_t image = channels * pixels;
  auto in = [&](const char* n) { return const_cast<const float*>(ref(l.inputs.at(n))); };
  auto out = [&](const char* n) { return ref(l.outputs.at(n)); };

  // A final-steps graph computes what its denoiser computes (its precision is all that differs).
  const std::string graph = base_graph(l.graph);
  if (graph == "content") {
    const float *x = in("x_t"), *t = in("t");
    float* o = out("out");
    return [=] {
      for (int b = 0; b < batch; ++b) {
        const float s = t[b] * 0.001f;
        const float* xb = x + image * b;
        float* eps = o + 2 * image * b;
        float* v = eps + image;
        for (std::size_t e = 0; e < image; ++e) {
          eps[e] = 0.8f * xb[e] + 0.1f * s;
          v[e] = 0.3f * xb[e] - 0.2f * s;
        }
      }
    };
  }
  if (graph == "flow") {
    const float *xf = in("x_first"), *xp = in("x_prev");
    float* o = out("flow");
    return [=] {
      for (int b = 0; b < batch; ++b) {
        for (std::size_t e = 0; e < 2 * pixels; ++e) {
          o[2 * pixels * b + e] = 0.5f * (xp[image * b + e] - xf[image * b + e]);
        }
      }
    };
  }
  if (graph == "motion") {
    const float *x = in("x_t"), *t = in("t"), *k = in("k"), *fl = in("flow"), *xf = in("x_first");
    float* o = out("out");
    return [=] {
      for (int b = 0; b < batch; ++b) {
        const float s = t[b] * 0.001f;
        const float q = k[b] * 0.01f;
        const float sq = s * q;
        const float* f0 = fl + 2 * pixels * b;
        const float* f1 = f0 + pixels;
        float* eps = o + 2 * image * b;
        float* v = eps + image;
        for (std::size_t e = 0; e < image; ++e) {
          const std::size_t p = e % pixels;
          const float g = f0[p] + f1[p];
          eps[e] = ((0.7f * x[image * b + e] + 0.2f * xf[image * b + e]) + 0.3f * g) + sq;
          v[e] = 0.25f * x[image * b + e] - 0.5f * s;
        }
      }
    };
  }
  if (graph == "update") {
    const float *x = in("x"), *mo = in("model_out"), *coef = in("coef"), *nz = in("noise"),
                *x0p = in("x0_prev");
    float *xn = out("x_next"), *x0 = out("x0");
    const bool clip = clip_x0_;
    return [=] { apply_update(coef, clip, x, mo, nz, x0p, xn, x0, batch, channels, pixels); };
  }
  throw Error(VIDM_RT_ERROR_INTERNAL, "closed-form engine has no graph " + l.graph);
}

void ClosedFormEngine::load(const Plan& plan) {
  plan_ = &plan;
  for (const auto& spec : plan.buffers) buffers_[spec.name].assign(spec.count(), 0.0f);
  for (const auto& l : plan.launches) launches_.push_back(bind(l));
}

void ClosedFormEngine::write(const std::string& name, const float* src, std::size_t count) {
  plan_->host_buffer(name);  // the same contract as the GPU engine, checked on the CPU
  auto& b = buffer(name);
  if (count != b.size()) throw Error(VIDM_RT_ERROR_INTERNAL, "write size mismatch for " + name);
  std::copy(src, src + count, b.begin());
}

void ClosedFormEngine::read(const std::string& name, float* dst, std::size_t count) {
  plan_->host_buffer(name);
  const auto& b = buffer(name);
  if (count != b.size()) throw Error(VIDM_RT_ERROR_INTERNAL, "read size mismatch for " + name);
  std::copy(b.begin(), b.end(), dst);
}

void ClosedFormEngine::run(const std::string& program, const NoiseAddress& a) {
  const std::size_t per_video = plan_->image_count() / static_cast<std::size_t>(plan_->batch);
  for (const Op& op : plan_->programs.at(program)) {
    switch (op.kind) {
      case Op::kLaunch:
        launches_[static_cast<std::size_t>(op.launch)]();
        break;
      case Op::kNoise:
        gaussian_batch(a.seed, a.first_video, plan_->batch, a.frame, op.step, per_video,
                       buffer(op.buffer).data());
        break;
      case Op::kZero:
        std::fill(buffer(op.buffer).begin(), buffer(op.buffer).end(), 0.0f);
        break;
      case Op::kCopy:
        // Same size: a copy, never a reallocation (bound launches hold the pointers).
        std::copy(buffer(op.source).begin(), buffer(op.source).end(), buffer(op.buffer).begin());
        break;
    }
  }
}

}  // namespace vidm
