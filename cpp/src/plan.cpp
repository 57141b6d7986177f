#include "plan.h"

#include <array>

#include "error.h"

namespace vidm {

std::size_t BufferSpec::count() const {
  std::size_t n = 1;
  for (auto d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

const BufferSpec& Plan::buffer(const std::string& name) const {
  for (const auto& b : buffers) {
    if (b.name == name) return b;
  }
  throw Error(VIDM_RT_ERROR_INTERNAL, "no buffer named " + name);
}

const BufferSpec& Plan::host_buffer(const std::string& name) const {
  const BufferSpec& b = buffer(name);
  if (!b.host) throw Error(VIDM_RT_ERROR_INTERNAL, "buffer " + name + " is not host-staged");
  return b;
}

std::vector<float> coefficient_rows(const Manifest& m) {
  std::vector<float> rows;
  for (const auto& row : m.sampler.coef) rows.insert(rows.end(), row.begin(), row.end());
  if (m.conditioned()) {
    // r, m, a, b, c, s, h: the update graph's x_next = x + s * noise, x0 = 0.
    const std::array<float, kCoefficients> condition{0.0f, 0.0f, 0.0f, 1.0f,
                                                     0.0f, m.cond_noise, 0.0f};
    rows.insert(rows.end(), condition.begin(), condition.end());
  }
  return rows;
}

Plan build_plan(const Manifest& m) {
  Plan p;
  p.batch = m.batch;
  p.channels = m.channels;
  p.height = m.height;
  p.width = m.width;
  p.steps = m.sampler.steps;
  const Shape img{m.batch, m.channels, m.height, m.width};
  const bool conditioned = m.conditioned();  // coef row S: the conditioning row
  p.buffers = {
      {"x.0", img},
      {"x.1", img},
      {"x0.0", img},
      {"x0.1", img},
      {"model_out", {m.batch, 2 * m.channels, m.height, m.width}},
      {"noise", img},
      {"x_first", img, false, true},
      {"x_prev", img, false, true},
      {"flow", {m.batch, m.cond_channels, m.height, m.width}},
      {"k", {m.batch}, false, true},
      {"coef", {m.sampler.steps + (conditioned ? 1 : 0), kCoefficients}, true, true},
      {"t", {m.sampler.steps, m.batch}, true, true},
  };
  const int s = m.sampler.steps;
  if (conditioned) p.buffers.push_back({"x_cond", img});
  const std::string result = "x." + std::to_string(s % 2);

  auto add_launch = [&p](Launch l) {
    p.launches.push_back(std::move(l));
    return static_cast<int>(p.launches.size()) - 1;
  };
  auto launch_op = [](int index) {
    Op op(Op::kLaunch);
    op.launch = index;
    return op;
  };
  auto noise_op = [](const std::string& buffer, std::uint32_t step) {
    Op op(Op::kNoise);
    op.buffer = buffer;
    op.step = step;
    return op;
  };
  auto copy_op = [](const std::string& dst, const std::string& src) {
    Op op(Op::kCopy);
    op.buffer = dst;
    op.source = src;
    return op;
  };
  Op zero(Op::kZero);
  zero.buffer = "x0.0";

  // With conditioning noise the update graph on coef row S makes x_cond = x_prev + s * noise, the
  // flow's input. x0.1 takes its (zero) x0 output: step 0 writes it again before anything reads it.
  const int condition =
      conditioned ? add_launch({"update",
                                {{"x", {"x_prev"}},
                                 {"model_out", {"model_out"}},
                                 {"coef", {"coef", s}},
                                 {"noise", {"noise"}},
                                 {"x0_prev", {"x0.0"}}},
                                {{"x_next", {"x_cond"}}, {"x0", {"x0.1"}}}})
                  : -1;
  const int flow = add_launch(
      {"flow", {{"x_first", {"x_first"}}, {"x_prev", {conditioned ? "x_cond" : "x_prev"}}},
       {{"flow", {"flow"}}}});
  for (const std::string graph : {"content", "motion"}) {
    if (graph == "content" && !m.has_content()) continue;
    std::vector<Op> ops;
    if (graph == "motion" && conditioned) {
      ops.push_back(noise_op("noise", kConditionStep));
      ops.push_back(launch_op(condition));
    }
    if (graph == "motion") ops.push_back(launch_op(flow));
    ops.push_back(noise_op("x.0", 0));
    ops.push_back(zero);
    for (int i = 0; i < s; ++i) {
      const std::string cur = std::to_string(i % 2), nxt = std::to_string((i + 1) % 2);
      const std::string name = i >= s - m.final_steps(graph) ? graph + kFinalSuffix : graph;
      Launch denoise{name, {{"x_t", {"x." + cur}}, {"t", {"t", i}}}, {{"out", {"model_out"}}}};
      if (graph == "motion") {
        denoise.inputs["k"] = {"k"};
        denoise.inputs["flow"] = {"flow"};
        denoise.inputs["x_first"] = {"x_first"};
      }
      Launch update{"update",
                    {{"x", {"x." + cur}},
                     {"model_out", {"model_out"}},
                     {"coef", {"coef", i}},
                     {"noise", {"noise"}},
                     {"x0_prev", {"x0." + cur}}},
                    {{"x_next", {"x." + nxt}}, {"x0", {"x0." + nxt}}}};
      ops.push_back(launch_op(add_launch(std::move(denoise))));
      // Steps that inject no noise skip generating it (the buffer's old values are multiplied by
      // s = 0); the update graph still reads it, as in the Python runtime.
      if (m.sampler.noisy(i)) ops.push_back(noise_op("noise", static_cast<std::uint32_t>(i + 1)));
      ops.push_back(launch_op(add_launch(std::move(update))));
    }
    if (graph == "content") ops.push_back(copy_op("x_first", result));
    ops.push_back(copy_op("x_prev", result));
    p.programs[graph] = std::move(ops);
  }
  return p;
}

}  // namespace vidm
