// The C API on closed-form engine directories: argument checks, errors through
// vidm_rt_last_error, frames into caller memory and through the callback, early stop,
// determinism, and noise addressing (video b of a batch equals that video generated alone).
#include <sys/stat.h>

#include <cstring>
#include <string>
#include <vector>

#include "check.h"
#include "engine_dir.h"
#include "vidm_rt.h"

namespace {

struct Seen {
  int calls = 0;
  int stop_after = -1;
  std::vector<float> last;
};

int on_frame(void* user, int frame, const float* data, size_t count) {
  auto* s = static_cast<Seen*>(user);
  CHECK(frame == s->calls);
  ++s->calls;
  s->last.assign(data, data + count);
  return s->stop_after >= 0 && s->calls >= s->stop_after;
}

bool has(const char* haystack, const char* needle) { return std::strstr(haystack, needle) != nullptr; }

}  // namespace

int main(int argc, char** argv) {
  const std::string base = argc > 1 ? argv[1] : "c_api_cases";
  mkdir(base.c_str(), 0755);
  vidm_rt_generator* gen = nullptr;

  CHECK(vidm_rt_create(nullptr, 0, &gen) == VIDM_RT_ERROR_INVALID_ARGUMENT && gen == nullptr);
  CHECK(vidm_rt_create(base.c_str(), 0, nullptr) == VIDM_RT_ERROR_INVALID_ARGUMENT);
  CHECK(vidm_rt_create(base.c_str(), 0x80u, &gen) == VIDM_RT_ERROR_INVALID_ARGUMENT);
  CHECK(has(vidm_rt_last_error(), "unknown flags"));
  CHECK(vidm_rt_create((base + "/missing").c_str(), 0, &gen) == VIDM_RT_ERROR_MANIFEST);
  CHECK(has(vidm_rt_last_error(), "no such engine directory"));
  CHECK(vidm_rt_generate(nullptr, 1, 0, 0, nullptr, nullptr, 0, nullptr, nullptr) ==
        VIDM_RT_ERROR_INVALID_ARGUMENT);
  vidm_rt_destroy(nullptr);

  // An ONNX export without the closed-form mark: the library asks for TensorRT engines.
  auto onnx = testdir::manifest();
  onnx.erase("closed_form");
  testdir::write(base + "/onnx", onnx);
  CHECK(vidm_rt_create((base + "/onnx").c_str(), 0, &gen) == VIDM_RT_ERROR_UNSUPPORTED);
  CHECK(has(vidm_rt_last_error(), "vidm-rt build"));
  auto future = testdir::manifest();
  future["closed_form"]["version"] = 2;
  testdir::write(base + "/future", future);
  CHECK(vidm_rt_create((base + "/future").c_str(), 0, &gen) == VIDM_RT_ERROR_UNSUPPORTED);

  testdir::write(base + "/good", testdir::manifest());
  CHECK(vidm_rt_create((base + "/good").c_str(), 0, &gen) == VIDM_RT_OK && gen != nullptr);
  CHECK(std::string(vidm_rt_last_error()).empty());
  vidm_rt_info info{};
  CHECK(vidm_rt_get_info(gen, &info) == VIDM_RT_OK);
  CHECK(info.batch == 2 && info.channels == 3 && info.height == 4 && info.width == 4);
  CHECK(info.steps == 2 && info.default_frames == 3 && info.has_content == 1);
  CHECK(std::string(info.engine) == "closed-form");
  const std::size_t image = 2 * 3 * 4 * 4;

  // Frames into caller memory and, identically, through the callback.
  std::vector<float> out(3 * image, 99.0f);
  Seen seen;
  CHECK(vidm_rt_generate(gen, 3, 42, 0, nullptr, out.data(), out.size(), on_frame, &seen) == VIDM_RT_OK);
  CHECK(seen.calls == 3);
  CHECK(std::memcmp(seen.last.data(), out.data() + 2 * image, image * sizeof(float)) == 0);
  bool in_range = true, moved = false;
  for (std::size_t i = 0; i < out.size(); ++i) in_range &= out[i] >= -1.0f && out[i] <= 1.0f;
  for (std::size_t i = 0; i < image; ++i) moved |= out[i] != out[image + i];
  CHECK(in_range && moved);

  // Same seed: same frames; another seed: other frames; callback-only runs agree.
  std::vector<float> again(3 * image);
  CHECK(vidm_rt_generate(gen, 3, 42, 0, nullptr, again.data(), again.size(), nullptr, nullptr) == VIDM_RT_OK);
  CHECK(again == out);
  Seen only;
  CHECK(vidm_rt_generate(gen, 3, 42, 0, nullptr, nullptr, 0, on_frame, &only) == VIDM_RT_OK);
  CHECK(only.last == seen.last);
  CHECK(vidm_rt_generate(gen, 3, 43, 0, nullptr, again.data(), again.size(), nullptr, nullptr) == VIDM_RT_OK);
  CHECK(again != out);

  // Video 1 of videos (0, 1) equals video 0 of videos (1, 2).
  std::vector<float> shifted(3 * image);
  CHECK(vidm_rt_generate(gen, 3, 42, 1, nullptr, shifted.data(), shifted.size(), nullptr, nullptr) == VIDM_RT_OK);
  for (int f = 0; f < 3; ++f) {
    CHECK(std::memcmp(out.data() + f * image + image / 2, shifted.data() + f * image,
                      image / 2 * sizeof(float)) == 0);
  }

  // Early stop, bad arguments.
  Seen stop;
  stop.stop_after = 2;
  CHECK(vidm_rt_generate(gen, 3, 42, 0, nullptr, nullptr, 0, on_frame, &stop) == VIDM_RT_STOPPED);
  CHECK(stop.calls == 2);
  CHECK(vidm_rt_generate(gen, 0, 42, 0, nullptr, nullptr, 0, nullptr, nullptr) == VIDM_RT_ERROR_INVALID_ARGUMENT);
  CHECK(has(vidm_rt_last_error(), "frames must be at least 1"));
  CHECK(vidm_rt_generate(gen, 3, 42, 0, nullptr, out.data(), out.size() - 1, nullptr, nullptr) ==
        VIDM_RT_ERROR_INVALID_ARGUMENT);
  CHECK(has(vidm_rt_last_error(), "frames*B*C*H*W"));
  CHECK(vidm_rt_generate(gen, 1, 42, 0xFFFFFFFFu, nullptr, nullptr, 0, nullptr, nullptr) ==
        VIDM_RT_ERROR_INVALID_ARGUMENT);

  // Image-to-video: the given first frame is frame 0.
  std::vector<float> first(image, 0.25f), i2v(2 * image);
  CHECK(vidm_rt_generate(gen, 2, 42, 0, first.data(), i2v.data(), i2v.size(), nullptr, nullptr) == VIDM_RT_OK);
  CHECK(std::memcmp(i2v.data(), first.data(), image * sizeof(float)) == 0);
  vidm_rt_destroy(gen);

  // A motion-only engine needs a first frame.
  testdir::write(base + "/motion_only", testdir::manifest(1, 4, 4, false));
  CHECK(vidm_rt_create((base + "/motion_only").c_str(), 0, &gen) == VIDM_RT_OK);
  CHECK(vidm_rt_generate(gen, 2, 1, 0, nullptr, nullptr, 0, nullptr, nullptr) == VIDM_RT_ERROR_INVALID_ARGUMENT);
  CHECK(has(vidm_rt_last_error(), "give a first frame"));
  vidm_rt_destroy(gen);
  return check::report("c_api");
}
