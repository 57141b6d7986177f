// A CPU engine whose denoisers are closed forms instead of networks (manifest "closed_form":
// {"version": 1}), so that the whole generation loop, noise and sampler update can be checked
// against the Python runtime without a GPU. vidm_rt/testing/closed_form.py writes the same
// formulas as ONNX graphs; both evaluate them in this order, in float32:
//   s = t * 0.001,  q = k * 0.01           (per video)
//   content: eps = 0.8*x_t + 0.1*s                          v = 0.3*x_t - 0.2*s
//   flow:    flow[j] = 0.5 * (x_prev[j] - x_first[j])        for channels j = 0, 1
//   motion:  g = flow[0] + flow[1]
//            eps = ((0.7*x_t + 0.2*x_first) + 0.3*g) + s*q   v = 0.25*x_t - 0.5*s
// The update graph is evaluated by vidm::apply_update.
#pragma once

#include <functional>
#include <map>
#include <vector>

#include "engine.h"

namespace vidm {

constexpr int kClosedFormVersion = 1;

class ClosedFormEngine final : public Engine {
 public:
  explicit ClosedFormEngine(const Manifest& m);
  const char* name() const override { return "closed-form"; }
  void load(const Plan& plan) override;
  void write(const std::string& buffer, const float* src, std::size_t count) override;
  void read(const std::string& buffer, float* dst, std::size_t count) override;
  void run(const std::string& program, const NoiseAddress& address) override;

 private:
  std::vector<float>& buffer(const std::string& name);
  float* ref(const Ref& r);
  std::function<void()> bind(const Launch& launch);

  bool clip_x0_;
  const Plan* plan_ = nullptr;
  std::map<std::string, std::vector<float>> buffers_;
  std::vector<std::function<void()>> launches_;
};

}  // namespace vidm
