// C++ against Python on fixtures written by make_fixtures.py:
//   noise:   bit for bit equal to numpy's vidm_rt.noise at every address;
//   update:  vidm::apply_update against vidm_rt.schedule.apply_update (numpy float32; only exp
//            may differ in the last bit between libm and numpy);
//   engines: the full generation loop through the C API on closed-form engine directories
//            against the frames the Python runtime (ONNX Runtime) generated from them, bit for
//            bit where the sampler takes no exp (conditioning noise included).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "check.h"
#include "noise.h"
#include "sampler.h"
#include "vidm_rt.h"

namespace {

using nlohmann::json;
std::string dir;

template <class T>
std::vector<T> read_bin(const std::string& name, std::size_t count) {
  std::vector<T> v(count);
  std::ifstream in(dir + "/" + name, std::ios::binary);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(T)));
  CHECK_MSG(in.gcount() == static_cast<std::streamsize>(count * sizeof(T)), name + " is short");
  return v;
}

json read_json(const std::string& name) {
  std::ifstream in(dir + "/" + name);
  return json::parse(in);
}

double max_abs_diff(const float* a, const float* b, std::size_t n) {
  double d = 0.0;
  for (std::size_t i = 0; i < n; ++i) d = std::fmax(d, std::fabs(double(a[i]) - double(b[i])));
  return d;
}

void check_noise() {
  for (const json& c : read_json("noise.json")) {
    const std::size_t per_video = c["per_video"], batch = c["batch"];
    const auto want = read_bin<std::uint32_t>(c["file"], per_video * batch);
    std::vector<float> got(per_video * batch);
    vidm::gaussian_batch(std::stoull(c["seed"].get<std::string>()), c["first_video"],
                         static_cast<int>(batch), c["frame"], c["step"], per_video, got.data());
    std::size_t same = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      std::uint32_t bits;
      std::memcpy(&bits, &got[i], sizeof bits);
      same += bits == want[i];
    }
    CHECK_MSG(same == got.size(), c["file"].get<std::string>() + ": " + std::to_string(same) +
                                      " of " + std::to_string(got.size()) + " bit-equal");
    std::printf("noise %s: %zu/%zu elements bit-equal to numpy\n", c["file"].get<std::string>().c_str(),
                same, got.size());
  }
}

void check_updates() {
  double worst = 0.0;
  std::size_t exact = 0, total = 0;
  for (const json& c : read_json("update.json")) {
    const auto shape = c["shape"].get<std::vector<int>>();
    const int b = shape[0], ch = shape[1];
    const std::size_t pixels = static_cast<std::size_t>(shape[2]) * shape[3];
    const std::size_t img = b * ch * pixels;
    const auto data = read_bin<float>(c["file"], 7 + 7 * img);
    const float* coef = data.data();
    const float* x = coef + 7;
    const float* model_out = x + img;
    const float* noise = model_out + 2 * img;
    const float* x0_prev = noise + img;
    const float* want_next = x0_prev + img;
    const float* want_x0 = want_next + img;
    std::vector<float> x_next(img), x0(img);
    vidm::apply_update(coef, c["clip_x0"], x, model_out, noise, x0_prev, x_next.data(), x0.data(),
                       b, ch, pixels);
    // x0 involves no exp: exactly equal.
    CHECK_MSG(std::memcmp(x0.data(), want_x0, img * sizeof(float)) == 0, c["file"].get<std::string>());
    for (std::size_t i = 0; i < img; ++i) {
      const double d = std::fabs(double(x_next[i]) - want_next[i]);
      worst = std::fmax(worst, d / (1.0 + std::fabs(want_next[i])));
      exact += x_next[i] == want_next[i];
      ++total;
    }
  }
  std::printf("sampler update: %zu/%zu elements bit-equal to numpy, max rel diff %.3g\n", exact,
              total, worst);
  CHECK_MSG(worst <= 1e-6, "max relative difference " + std::to_string(worst));
}

void check_engines() {
  for (const json& c : read_json("engines.json")) {
    const std::string name = c["name"];
    vidm_rt_generator* gen = nullptr;
    if (vidm_rt_create((dir + "/" + c["engine"].get<std::string>()).c_str(), 0, &gen) != VIDM_RT_OK) {
      CHECK_MSG(false, name + ": " + vidm_rt_last_error());
      continue;
    }
    vidm_rt_info info{};
    vidm_rt_get_info(gen, &info);
    const std::size_t count = c["count"];
    const std::size_t image = static_cast<std::size_t>(info.batch) * info.channels * info.height * info.width;
    std::vector<float> first;
    if (!c["first_frame"].is_null()) first = read_bin<float>(c["first_frame"], image);
    const auto want = read_bin<float>(c["expected"], count);
    std::vector<float> got(count);
    const vidm_rt_status status = vidm_rt_generate(
        gen, c["frames"], std::stoull(c["seed"].get<std::string>()), c["first_video"],
        first.empty() ? nullptr : first.data(), got.data(), got.size(), nullptr, nullptr);
    CHECK_MSG(status == VIDM_RT_OK, name + ": " + vidm_rt_last_error());
    const double diff = max_abs_diff(got.data(), want.data(), count);
    std::size_t exact = 0;
    for (std::size_t i = 0; i < count; ++i) exact += got[i] == want[i];
    std::printf("engine %s: %d frames, max |C++ - Python| = %.3g, %zu/%zu values bit-equal\n",
                name.c_str(), c["frames"].get<int>(), diff, exact, count);
    CHECK_MSG(diff < 1e-5, name + ": max abs diff " + std::to_string(diff));
    if (c.value("exact", false)) {
      CHECK_MSG(exact == count, name + ": a sampler without exp must match bit for bit");
    }
    vidm_rt_destroy(gen);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("usage: test_python_crosscheck FIXTURE_DIR\n");
    return 2;
  }
  dir = argv[1];
  check_noise();
  check_updates();
  check_engines();
  return check::report("python_crosscheck");
}
