// Lifetimes through the C API on closed-form engines; run under valgrind in CI (memcheck_*
// tests), where any leak or double free fails: many generators alive at once and destroyed in
// any order, destroy after an early stop and after failed calls, every failing create leaving
// nothing behind, per-thread error messages freed with their thread, and no state carried from
// one video to the next (a reused generator equals a fresh one).
#include <sys/stat.h>

#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "engine_dir.h"
#include "vidm_rt.h"

namespace {

constexpr std::size_t kImage = 2 * 3 * 4 * 4;

std::vector<float> video(vidm_rt_generator* gen, std::uint64_t seed, int frames = 3) {
  std::vector<float> out(frames * kImage);
  CHECK(vidm_rt_generate(gen, frames, seed, 0, nullptr, out.data(), out.size(), nullptr, nullptr) ==
        VIDM_RT_OK);
  return out;
}

int stop_at_once(void*, int, const float*, size_t) { return 1; }

}  // namespace

int main(int argc, char** argv) {
  const std::string base = argc > 1 ? argv[1] : "lifetime_cases";
  mkdir(base.c_str(), 0755);
  const std::string good = base + "/good";
  testdir::write(good, testdir::manifest());

  // Failing creates: nothing is returned, nothing is left allocated.
  testdir::write(base + "/bad_hash", testdir::manifest());
  testdir::write_text(base + "/bad_hash/flow.onnx", "changed after hashing");
  mkdir((base + "/bad_json").c_str(), 0755);
  testdir::write_text(base + "/bad_json/manifest.json", "{\"format\": ");
  for (const std::string& dir : {base + "/missing", base + "/bad_hash", base + "/bad_json"}) {
    int sentinel = 0;
    auto* gen = reinterpret_cast<vidm_rt_generator*>(&sentinel);  // must come back NULL
    CHECK(vidm_rt_create(dir.c_str(), 0, &gen) != VIDM_RT_OK);
    CHECK(gen == nullptr);
  }

  // Eight generators alive at once, destroyed in an interleaved order; each one's frames equal
  // the first one's (no shared state between generators).
  std::vector<vidm_rt_generator*> gens(8, nullptr);
  for (auto& gen : gens) CHECK(vidm_rt_create(good.c_str(), 0, &gen) == VIDM_RT_OK && gen != nullptr);
  const std::vector<float> reference = video(gens[0], 7);
  for (std::size_t i = 1; i < gens.size(); i += 2) vidm_rt_destroy(gens[i]);
  for (std::size_t i = 2; i < gens.size(); i += 2) CHECK(video(gens[i], 7) == reference);
  for (std::size_t i = 0; i < gens.size(); i += 2) vidm_rt_destroy(gens[i]);

  // A reused generator: early stop, failed calls, another seed, then the first video again.
  vidm_rt_generator* gen = nullptr;
  CHECK(vidm_rt_create(good.c_str(), 0, &gen) == VIDM_RT_OK);
  CHECK(vidm_rt_generate(gen, 3, 7, 0, nullptr, nullptr, 0, stop_at_once, nullptr) == VIDM_RT_STOPPED);
  std::vector<float> small(kImage);
  CHECK(vidm_rt_generate(gen, 3, 7, 0, nullptr, small.data(), small.size(), nullptr, nullptr) ==
        VIDM_RT_ERROR_INVALID_ARGUMENT);
  CHECK(vidm_rt_generate(gen, -1, 7, 0, nullptr, nullptr, 0, nullptr, nullptr) ==
        VIDM_RT_ERROR_INVALID_ARGUMENT);
  CHECK(video(gen, 8) != reference);
  std::vector<float> first(kImage, -0.5f);
  std::vector<float> i2v(2 * kImage);
  CHECK(vidm_rt_generate(gen, 2, 7, 0, first.data(), i2v.data(), i2v.size(), nullptr, nullptr) ==
        VIDM_RT_OK);
  CHECK(video(gen, 7) == reference);  // no state from the image-to-video run either
  vidm_rt_destroy(gen);

  // Destroyed right after an early stop (frames still pending in a GPU engine's queue).
  CHECK(vidm_rt_create(good.c_str(), 0, &gen) == VIDM_RT_OK);
  CHECK(vidm_rt_generate(gen, 3, 7, 0, nullptr, nullptr, 0, stop_at_once, nullptr) == VIDM_RT_STOPPED);
  vidm_rt_destroy(gen);

  // The last error is per thread and freed with the thread.
  CHECK(vidm_rt_create((base + "/missing").c_str(), 0, &gen) == VIDM_RT_ERROR_MANIFEST);
  const std::string mine = vidm_rt_last_error();
  std::string theirs = "unset";
  std::thread other([&] {
    theirs = vidm_rt_last_error();
    vidm_rt_generator* local = nullptr;
    CHECK(vidm_rt_create(good.c_str(), 0, &local) == VIDM_RT_OK);
    vidm_rt_destroy(local);
    CHECK(vidm_rt_create(nullptr, 0, &local) == VIDM_RT_ERROR_INVALID_ARGUMENT);
  });
  other.join();
  CHECK(theirs.empty());
  CHECK(!mine.empty() && vidm_rt_last_error() == mine);
  return check::report("lifetimes");
}
