#include "generator.h"

#include "error.h"

namespace vidm {

Generator::Generator(const std::string& engine_dir, unsigned int flags)
    : manifest_(load_manifest(engine_dir)), plan_(build_plan(manifest_)) {
  engine_ = make_engine(manifest_, flags);
  engine_->load(plan_);
  const SamplerTable& table = manifest_.sampler;
  const std::vector<float> coef = coefficient_rows(manifest_);
  std::vector<float> t;
  for (int i = 0; i < table.steps; ++i) {
    t.insert(t.end(), static_cast<std::size_t>(manifest_.batch), table.model_t[i]);
  }
  engine_->write("coef", coef.data(), coef.size());
  engine_->write("t", t.data(), t.size());
  frame_.resize(plan_.image_count());
}

vidm_rt_info Generator::info() const {
  vidm_rt_info i{};
  i.batch = manifest_.batch;
  i.channels = manifest_.channels;
  i.height = manifest_.height;
  i.width = manifest_.width;
  i.steps = manifest_.sampler.steps;
  i.default_frames = manifest_.frames;
  i.has_content = manifest_.has_content() ? 1 : 0;
  i.engine = engine_->name();
  return i;
}

vidm_rt_status Generator::generate(int frames, std::uint64_t seed, std::uint32_t first_video,
                                   const float* first_frame, float* out, std::size_t out_count,
                                   vidm_rt_frame_callback on_frame, void* user) {
  const std::size_t image = plan_.image_count();
  if (frames < 1) throw Error(VIDM_RT_ERROR_INVALID_ARGUMENT, "frames must be at least 1");
  if (out != nullptr && out_count / image < static_cast<std::size_t>(frames)) {
    throw Error(VIDM_RT_ERROR_INVALID_ARGUMENT,
                "out holds " + std::to_string(out_count) + " floats; " + std::to_string(frames) +
                    " frames need " + std::to_string(image * frames) + " (frames*B*C*H*W)");
  }
  if (static_cast<std::uint64_t>(first_video) + manifest_.batch - 1 > 0xFFFFFFFFull) {
    throw Error(VIDM_RT_ERROR_INVALID_ARGUMENT, "first_video + batch - 1 must be below 2**32");
  }
  NoiseAddress address{seed, first_video, 0};
  if (first_frame != nullptr) {
    engine_->write("x_first", first_frame, image);
    engine_->write("x_prev", first_frame, image);
  } else if (manifest_.has_content()) {
    engine_->run("content", address);
  } else {
    throw Error(VIDM_RT_ERROR_INVALID_ARGUMENT,
                manifest_.dir + ": this engine has no content model: give a first frame");
  }
  std::vector<float> k(static_cast<std::size_t>(manifest_.batch));
  for (int f = 0; f < frames; ++f) {
    if (f > 0) {
      k.assign(k.size(), static_cast<float>(
                             frame_index(f, manifest_.train_frames, manifest_.frame_index)));
      engine_->write("k", k.data(), k.size());
      address.frame = static_cast<std::uint32_t>(f);
      engine_->run("motion", address);
    }
    // Every program leaves its frame in x_prev (the next frame's conditioning).
    float* dst = out != nullptr ? out + image * f : frame_.data();
    engine_->read("x_prev", dst, image);
    if (on_frame != nullptr && on_frame(user, f, dst, image) != 0) return VIDM_RT_STOPPED;
  }
  return VIDM_RT_OK;
}

}  // namespace vidm
