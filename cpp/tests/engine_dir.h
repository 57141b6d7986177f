// Writes small closed-form engine directories for the C++ tests (the Python helper
// vidm_rt/testing/closed_form.py writes real ones with ONNX graphs; these only need the
// manifest, since the closed-form engine never opens the graph files).
#pragma once

#include <sys/stat.h>

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "sha256.h"

namespace testdir {

using nlohmann::json;

inline json tensor(std::initializer_list<int> shape) { return json{{"shape", shape}, {"dtype", "float32"}}; }

// A valid manifest for batch B, 3 channels, H x W, 2 sampler steps; files are hashed by write().
inline json manifest(int b = 2, int h = 4, int w = 4, bool content = true) {
  const auto img = tensor({b, 3, h, w}), out = tensor({b, 6, h, w}), flow = tensor({b, 2, h, w}),
             vec = tensor({b});
  json graphs = {
      {"flow", {{"file", "flow.onnx"}, {"inputs", {{"x_first", img}, {"x_prev", img}}},
                {"outputs", {{"flow", flow}}}}},
      {"motion", {{"file", "motion.onnx"},
                  {"inputs", {{"x_t", img}, {"t", vec}, {"k", vec}, {"flow", flow}, {"x_first", img}}},
                  {"outputs", {{"out", out}}}}},
      {"update", {{"file", "update.onnx"},
                  {"inputs", {{"x", img}, {"model_out", out}, {"coef", tensor({7})},
                              {"noise", img}, {"x0_prev", img}}},
                  {"outputs", {{"x_next", img}, {"x0", img}}}}}};
  json files = json::array({"flow.onnx", "motion.onnx", "update.onnx"});
  if (content) {
    graphs["content"] = {{"file", "content.onnx"}, {"inputs", {{"x_t", img}, {"t", vec}}},
                         {"outputs", {{"out", out}}}};
    files.push_back("content.onnx");
  }
  return {
      {"format", "vidm-rt"}, {"format_version", 1}, {"kind", "onnx"}, {"name", "test"},
      {"closed_form", {{"version", 1}}},
      {"config", {{"image_channels", 3}, {"train_frames", 8}}},
      {"batch", b}, {"height", h}, {"width", w}, {"frames", 3}, {"frame_index", "clamp"},
      {"sampler", {{"sampler", "ancestral"}, {"steps", 2}, {"eta", 0.0}, {"clip_x0", true},
                   {"spacing", "2"}, {"model_t", {500.0, 0.0}},
                   {"sqrt_recip_acp", {1.5, 1.0}}, {"sqrt_recipm1_acp", {1.1, 0.01}},
                   {"coef_x0", {0.5, 1.0}}, {"coef_x", {0.5, 0.0}}, {"coef_x0_prev", {0.0, 0.0}},
                   {"noise_std", {0.3, 0.0}}, {"noise_v_scale", {0.1, 0.0}}}},
      {"graphs", graphs},
      {"files", files},  // names; write() replaces the list by {name: sha256}
  };
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Creates dir with one small file per listed name and manifest.json (hashes filled in).
inline void write(const std::string& dir, json m) {
  mkdir(dir.c_str(), 0755);
  if (m.contains("files") && m["files"].is_array()) {
    json hashed = json::object();
    for (const auto& name : m["files"]) {
      const std::string content = "graph " + name.get<std::string>();
      write_text(dir + "/" + name.get<std::string>(), content);
      hashed[name.get<std::string>()] = vidm::sha256_hex(content.data(), content.size());
    }
    m["files"] = hashed;
  }
  write_text(dir + "/manifest.json", m.dump(2));
}

}  // namespace testdir
