// manifest.json of an engine or export directory (the format of vidm_rt/manifest.py), read and
// verified: format version, required fields and their types, shapes, the sampler table, and the
// sha256 of every listed file. Every problem is a vidm::Error naming the file and the fix.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vidm {

constexpr int kManifestFormatVersion = 1;
constexpr int kCoefficients = 7;  // r, m, a, b, c, s, h (vidm_rt.schedule.COEFFICIENT_NAMES)
// The noise step of the conditioning noise of a motion frame (vidm_rt.noise.CONDITION_STEP).
constexpr std::uint32_t kConditionStep = 0xFFFFFFFFu;

using Shape = std::vector<std::int64_t>;

struct GraphSpec {
  std::string file;
  std::map<std::string, Shape> inputs;
  std::map<std::string, Shape> outputs;
  int steps = 0;  // a final-steps graph "<denoiser>.final": the last `steps` steps run it
};

constexpr const char* kFinalSuffix = ".final";
// The denoiser a final-steps graph "<denoiser>.final" stands in for; any other graph: itself.
std::string base_graph(const std::string& graph);

// SamplerTable.coefficients() and model_t of vidm_rt.schedule, already rounded to float32.
struct SamplerTable {
  std::string sampler;
  int steps = 0;
  bool clip_x0 = true;
  std::vector<float> model_t;                          // (steps,)
  std::vector<std::array<float, kCoefficients>> coef;  // (steps, 7)
  bool noisy(int step) const { return coef[step][5] != 0.0f; }  // noise_std != 0
};

struct Manifest {
  std::string dir;
  std::string kind;  // "onnx", "tensorrt", ...
  std::string name;
  int batch = 0, channels = 0, height = 0, width = 0;
  int frames = 0;        // default video length
  int train_frames = 0;  // F of the motion model's frame index
  // config.cond_noise (a model trained with `--cond-noise`): each motion frame's flow sees the
  // previous frame plus cond_noise * noise(kConditionStep); 0 = off (vidm_rt/runtime/plan.py).
  float cond_noise = 0.0f;
  // Channels of the flow stage's output: 2, or 2 + channels with config.prev_input (the motion
  // model reads the previous frame beside the flow; vidm_rt/config.py).
  int cond_channels = 2;
  std::string frame_index = "clamp";
  SamplerTable sampler;
  std::map<std::string, GraphSpec> graphs;
  std::map<std::string, std::string> versions;  // string-valued entries of "versions"
  // String-valued entries of "tensorrt" (written by `vidm-rt build`): version, gpu,
  // compute_capability, precision, export.
  std::map<std::string, std::string> tensorrt;
  int closed_form = 0;  // > 0: the graphs are the closed-form test denoisers of that version

  bool has_content() const { return graphs.count("content") != 0; }
  bool conditioned() const { return cond_noise != 0.0f; }
  // How many of the last sampler steps of `denoiser` run its final-steps graph (INT8 engines
  // run the last step on an FP32 plan; vidm_rt/manifest.py).
  int final_steps(const std::string& denoiser) const {
    auto it = graphs.find(denoiser + kFinalSuffix);
    return it == graphs.end() ? 0 : it->second.steps;
  }
  std::string path(const std::string& file) const { return dir + "/" + file; }
};

// Reads dir/manifest.json and checks it and (unless verify_hashes is false) every file's sha256.
Manifest load_manifest(const std::string& dir, bool verify_hashes = true);
// The same checks on manifest text already read from dir/manifest.json.
Manifest parse_manifest(const std::string& text, const std::string& dir, bool verify_hashes = true);

// The k fed to the motion model for video frame `frame` >= 1 (vidm_rt.schedule.frame_index).
int frame_index(int frame, int train_frames, const std::string& policy);

}  // namespace vidm
