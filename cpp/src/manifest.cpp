#include "manifest.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "error.h"
#include "sha256.h"

namespace vidm {
namespace {

using nlohmann::json;

constexpr const char* kFix = "re-export the model";

class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(VIDM_RT_ERROR_MANIFEST, where_ + ": " + what);
  }

  const json& field(const json& obj, const std::string& key, const std::string& ctx = "") const {
    if (!obj.is_object()) {
      fail((ctx.empty() ? std::string("the manifest") : "field '" + ctx.substr(0, ctx.size() - 1) + "'") +
           " must be an object; " + kFix);
    }
    auto it = obj.find(key);
    if (it == obj.end()) fail("missing field '" + ctx + key + "'; " + kFix);
    return *it;
  }

  std::int64_t integer(const json& v, const std::string& name, std::int64_t lo,
                       std::int64_t hi) const {
    if (!v.is_number_integer()) fail("field '" + name + "' must be an integer; " + kFix);
    const std::int64_t x = v.get<std::int64_t>();
    if (x < lo || x > hi) {
      fail("field '" + name + "' = " + std::to_string(x) + " is outside [" + std::to_string(lo) +
           ", " + std::to_string(hi) + "]; " + kFix);
    }
    return x;
  }

  std::string string(const json& v, const std::string& name) const {
    if (!v.is_string()) fail("field '" + name + "' must be a string; " + kFix);
    return v.get<std::string>();
  }

  std::vector<double> numbers(const json& v, const std::string& name, std::size_t size) const {
    if (!v.is_array() || v.size() != size) {
      fail("field '" + name + "' must be an array of " + std::to_string(size) + " numbers; " + kFix);
    }
    std::vector<double> out;
    out.reserve(size);
    for (const json& x : v) {
      if (!x.is_number()) fail("field '" + name + "' holds a non-number; " + kFix);
      const double d = x.get<double>();
      if (!std::isfinite(d)) fail("field '" + name + "' holds a non-finite number; " + kFix);
      out.push_back(d);
    }
    return out;
  }

  Shape shape(const json& v, const std::string& name) const {
    if (!v.is_object() || !v.contains("shape") || !v["shape"].is_array()) {
      fail("field '" + name + "' needs a 'shape' array; " + kFix);
    }
    Shape s;
    for (const json& d : v["shape"]) s.push_back(integer(d, name + ".shape", 0, INT32_MAX));
    return s;
  }

 private:
  std::string where_;
};

// A listed file must stay inside the engine directory.
bool safe_relative_path(const std::string& p) {
  if (p.empty() || p[0] == '/' || p[0] == '\\') return false;
  std::stringstream ss(p);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part == ".." || part.find('\\') != std::string::npos) return false;
  }
  return true;
}

const char* const kCoefficientNames[kCoefficients] = {
    "sqrt_recip_acp", "sqrt_recipm1_acp", "coef_x0", "coef_x", "coef_x0_prev", "noise_std",
    "noise_v_scale"};

SamplerTable read_sampler(const Reader& r, const json& s) {
  SamplerTable t;
  t.sampler = r.string(r.field(s, "sampler", "sampler."), "sampler.sampler");
  t.steps = static_cast<int>(r.integer(r.field(s, "steps", "sampler."), "sampler.steps", 1, 100000));
  const json& clip = r.field(s, "clip_x0", "sampler.");
  if (!clip.is_boolean()) r.fail("field 'sampler.clip_x0' must be true or false; re-export the model");
  t.clip_x0 = clip.get<bool>();
  const std::size_t n = static_cast<std::size_t>(t.steps);
  // Python rounds the float64 table to float32 (SamplerTable.coefficients()); so does this cast.
  for (double d : r.numbers(r.field(s, "model_t", "sampler."), "sampler.model_t", n)) {
    t.model_t.push_back(static_cast<float>(d));
  }
  t.coef.resize(n);
  for (int c = 0; c < kCoefficients; ++c) {
    const std::string name = kCoefficientNames[c];
    const auto col = r.numbers(r.field(s, name, "sampler."), "sampler." + name, n);
    for (std::size_t i = 0; i < n; ++i) t.coef[i][c] = static_cast<float>(col[i]);
  }
  return t;
}

// The shapes every graph must have at this batch/size (vidm_rt.export.graphs.input_shapes and
// the update graph), so that the buffers the runtime binds always fit.
std::map<std::string, GraphSpec> expected_graphs(const Manifest& m) {
  const Shape img{m.batch, m.channels, m.height, m.width};
  const Shape out{m.batch, 2 * m.channels, m.height, m.width};
  const Shape flow{m.batch, m.cond_channels, m.height, m.width};
  const Shape vec{m.batch};
  std::map<std::string, GraphSpec> g;
  g["content"].inputs = {{"x_t", img}, {"t", vec}};
  g["content"].outputs = {{"out", out}};
  g["flow"].inputs = {{"x_first", img}, {"x_prev", img}};
  g["flow"].outputs = {{"flow", flow}};
  g["motion"].inputs = {{"x_t", img}, {"t", vec}, {"k", vec}, {"flow", flow}, {"x_first", img}};
  g["motion"].outputs = {{"out", out}};
  g["update"].inputs = {{"x", img}, {"model_out", out}, {"coef", {kCoefficients}},
                        {"noise", img}, {"x0_prev", img}};
  g["update"].outputs = {{"x_next", img}, {"x0", img}};
  return g;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

void read_graphs(const Reader& r, const json& graphs, const std::set<std::string>& files,
                 Manifest& m) {
  if (!graphs.is_object()) r.fail("field 'graphs' must be an object; re-export the model");
  const auto expected = expected_graphs(m);
  for (auto it = graphs.begin(); it != graphs.end(); ++it) {
    const std::string& name = it.key();
    const std::string base = base_graph(name);
    const bool final = base != name;
    auto want = expected.find(base);
    if (want == expected.end() || (final && base != "content" && base != "motion")) {
      r.fail("unknown graph '" + name + "'; " + kFix);
    }
    GraphSpec g;
    if (final) {
      g.steps = static_cast<int>(r.integer(r.field(it.value(), "steps", "graphs." + name + "."),
                                           "graphs." + name + ".steps", 1, 1000));
    }
    g.file = r.string(r.field(it.value(), "file", "graphs." + name + "."), "graphs." + name + ".file");
    if (!files.count(g.file)) {
      r.fail("graph '" + name + "' file " + g.file + " is not hashed under 'files'; " + kFix);
    }
    for (const char* side : {"inputs", "outputs"}) {
      const json& tensors = r.field(it.value(), side, "graphs." + name + ".");
      auto& dst = std::string(side) == "inputs" ? g.inputs : g.outputs;
      const auto& ref = std::string(side) == "inputs" ? want->second.inputs : want->second.outputs;
      if (!tensors.is_object()) r.fail("field 'graphs." + name + "." + side + "' must be an object");
      for (auto t = tensors.begin(); t != tensors.end(); ++t) {
        dst[t.key()] = r.shape(t.value(), "graphs." + name + "." + side + "." + t.key());
      }
      for (const auto& [tensor, shape] : ref) {
        auto got = dst.find(tensor);
        if (got == dst.end()) {
          r.fail("graph '" + name + "' lacks " + side + " tensor '" + tensor + "'; " + kFix);
        }
        if (got->second != shape) {
          r.fail("graph '" + name + "' tensor '" + tensor + "' has shape " +
                 shape_str(got->second) + ", expected " + shape_str(shape) + "; " + kFix);
        }
      }
    }
    m.graphs[name] = std::move(g);
  }
  for (const char* required : {"flow", "motion", "update"}) {
    if (!m.graphs.count(required)) r.fail(std::string("no '") + required + "' graph; " + kFix);
  }
  for (const auto& [name, spec] : m.graphs) {
    if (spec.steps && !m.graphs.count(base_graph(name))) {
      r.fail("graph '" + name + "' stands in for a '" + base_graph(name) + "' graph the manifest "
             "lacks; " + kFix);
    }
  }
}

}  // namespace

Manifest load_manifest(const std::string& dir, bool verify_hashes) {
  const std::string path = dir + "/manifest.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::ifstream probe(dir);
    if (!probe) {
      throw Error(VIDM_RT_ERROR_MANIFEST,
                  dir + ": no such engine directory (create one with `vidm-rt export CKPT` and "
                        "`vidm-rt build`)");
    }
    throw Error(VIDM_RT_ERROR_MANIFEST,
                dir + ": no manifest.json: not an export or engine directory");
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_manifest(text.str(), dir, verify_hashes);
}

Manifest parse_manifest(const std::string& text, const std::string& dir, bool verify_hashes) {
  const Reader r(dir + "/manifest.json");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    r.fail(std::string("not valid JSON (") + e.what() + "); " + kFix);
  }
  if (!j.is_object() || !j.contains("format") || j["format"] != "vidm-rt") {
    r.fail("not a vidm-rt manifest");
  }
  if (!j.contains("format_version") || j["format_version"] != kManifestFormatVersion) {
    r.fail("manifest format " + (j.contains("format_version") ? j["format_version"].dump() : "?") +
           " is not format " + std::to_string(kManifestFormatVersion) +
           " read by this library: export the model again with a matching vidm-rt");
  }

  Manifest m;
  m.dir = dir;
  m.kind = j.contains("kind") ? r.string(j["kind"], "kind") : "onnx";
  m.name = j.contains("name") ? r.string(j["name"], "name") : "";
  const json& config = r.field(j, "config");
  m.channels = config.contains("image_channels")
                   ? static_cast<int>(r.integer(config["image_channels"], "config.image_channels", 1, 64))
                   : 3;
  m.train_frames = static_cast<int>(
      r.integer(r.field(config, "train_frames", "config."), "config.train_frames", 3, 1 << 20));
  if (config.contains("cond_noise")) {
    const json& v = config["cond_noise"];
    const double level = v.is_number() ? v.get<double>() : -1.0;
    if (!(level >= 0.0 && level < 1.0)) {  // also refuses NaN
      r.fail("field 'config.cond_noise' = " + v.dump() + " must be a number in [0, 1); " + kFix);
    }
    // Python writes the conditioning row of the float32 coef table (plan.coefficient_rows).
    m.cond_noise = static_cast<float>(level);
  }
  if (config.contains("prev_input")) {
    const json& v = config["prev_input"];
    if (!v.is_boolean()) r.fail(std::string("field 'config.prev_input' must be true or false; ") + kFix);
    m.cond_channels = v.get<bool>() ? 2 + m.channels : 2;
  }
  m.batch = static_cast<int>(r.integer(r.field(j, "batch"), "batch", 1, 4096));
  m.height = static_cast<int>(r.integer(r.field(j, "height"), "height", 1, 16384));
  m.width = static_cast<int>(r.integer(r.field(j, "width"), "width", 1, 16384));
  if (static_cast<double>(m.batch) * 2 * m.channels * m.height * m.width > 1u << 30) {
    r.fail("batch x channels x height x width is too large for one buffer; " + std::string(kFix));
  }
  m.frames = j.contains("frames") ? static_cast<int>(r.integer(j["frames"], "frames", 1, 1 << 20))
                                  : m.train_frames;
  if (j.contains("frame_index")) {
    m.frame_index = r.string(j["frame_index"], "frame_index");
    if (m.frame_index != "clamp" && m.frame_index != "extrapolate") {
      r.fail("unknown frame_index policy '" + m.frame_index + "' (clamp or extrapolate); " + kFix);
    }
  }
  m.sampler = read_sampler(r, r.field(j, "sampler"));

  const json& files = r.field(j, "files");
  if (!files.is_object()) r.fail("field 'files' must map file names to sha256; " + std::string(kFix));
  std::set<std::string> names;
  for (auto it = files.begin(); it != files.end(); ++it) {
    if (!safe_relative_path(it.key())) {
      r.fail("listed file '" + it.key() + "' is not a path inside the engine directory");
    }
    names.insert(it.key());
  }
  read_graphs(r, r.field(j, "graphs"), names, m);

  for (const auto& [key, dst] : {std::pair<const char*, std::map<std::string, std::string>*>{
                                      "versions", &m.versions},
                                  {"tensorrt", &m.tensorrt}}) {
    if (!j.contains(key) || !j[key].is_object()) continue;
    for (auto it = j[key].begin(); it != j[key].end(); ++it) {
      if (it.value().is_string()) (*dst)[it.key()] = it.value().get<std::string>();
    }
  }
  if (j.contains("closed_form")) {
    m.closed_form = static_cast<int>(
        r.integer(r.field(j["closed_form"], "version", "closed_form."), "closed_form.version", 1, 1000));
  }

  for (auto it = files.begin(); it != files.end(); ++it) {
    const std::string file = m.path(it.key());
    std::ifstream probe(file, std::ios::binary);
    if (!probe) throw Error(VIDM_RT_ERROR_MANIFEST, dir + ": " + it.key() + " is listed in the manifest but missing");
    if (!it.value().is_string()) r.fail("sha256 of '" + it.key() + "' must be a hex string; " + kFix);
    if (verify_hashes && sha256_file(file) != it.value().get<std::string>()) {
      throw Error(VIDM_RT_ERROR_MANIFEST,
                  dir + ": " + it.key() +
                      " does not match its sha256 in the manifest (modified or corrupted): export "
                      "the model again");
    }
  }
  return m;
}

std::string base_graph(const std::string& graph) {
  const std::string suffix = kFinalSuffix;
  const bool final = graph.size() > suffix.size() &&
                     graph.compare(graph.size() - suffix.size(), suffix.size(), suffix) == 0;
  return final ? graph.substr(0, graph.size() - suffix.size()) : graph;
}

int frame_index(int frame, int train_frames, const std::string& policy) {
  if (policy == "extrapolate") return frame;
  return frame < train_frames - 2 ? frame : train_frames - 2;
}

}  // namespace vidm
