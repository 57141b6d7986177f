// The plan's host-staged buffers, the only ones an engine maps with VIDM_RT_ZERO_COPY: exactly
// what the generator writes or reads (sampler tables, k, x_first, x_prev), never a per-step
// activation; engines refuse write/read of anything else (checked here on the closed-form
// engine, which applies the TensorRT engine's contract, so the c_api tests catch a generator
// that strays from it). Also the launches, coef rows and manifest checks of conditioning noise.
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "check.h"
#include "closed_form_engine.h"
#include "engine_dir.h"
#include "error.h"
#include "manifest.h"
#include "noise.h"
#include "plan.h"

namespace {

// The graphs a program launches, in order, with "noise@STEP" for each noise draw.
std::vector<std::string> op_names(const vidm::Plan& plan, const std::string& program) {
  std::vector<std::string> names;
  for (const auto& op : plan.programs.at(program)) {
    if (op.kind == vidm::Op::kLaunch) names.push_back(plan.launches[op.launch].graph);
    if (op.kind == vidm::Op::kNoise) names.push_back(op.buffer + "@" + std::to_string(op.step));
  }
  return names;
}

// The motion frame of a closed-form engine for manifest m from x_first = first, x_prev = prev
// (frame 1 of seed 9, video 0).
std::vector<float> motion_frame(const vidm::Manifest& m, const std::vector<float>& first,
                                const std::vector<float>& prev) {
  const vidm::Plan plan = vidm::build_plan(m);
  vidm::ClosedFormEngine engine(m);
  engine.load(plan);
  const auto coef = vidm::coefficient_rows(m);
  engine.write("coef", coef.data(), coef.size());
  std::vector<float> t;
  for (float mt : m.sampler.model_t) t.insert(t.end(), static_cast<std::size_t>(m.batch), mt);
  engine.write("t", t.data(), t.size());
  const std::vector<float> k(static_cast<std::size_t>(m.batch), 1.0f);
  engine.write("k", k.data(), k.size());
  engine.write("x_first", first.data(), first.size());
  engine.write("x_prev", prev.data(), prev.size());
  engine.run("motion", {9, 0, 1});
  std::vector<float> out(plan.image_count());
  engine.read("x_prev", out.data(), out.size());
  return out;
}

// Conditioning noise (config.cond_noise, vidm_rt/runtime/plan.py): a motion frame first runs the
// update graph on coef row S = [0, 0, 0, 1, 0, cond_noise, 0] over noise step 2**32 - 1, making
// x_cond = x_prev + cond_noise * noise, and the flow reads x_cond instead of x_prev.
// The message of the manifest error loading `dir` raises; empty when it loads or fails otherwise.
std::string manifest_error(const std::string& dir) {
  try {
    vidm::load_manifest(dir);
  } catch (const vidm::Error& e) {
    if (e.status() == VIDM_RT_ERROR_MANIFEST) return e.what();
  }
  return "";
}

void check_cond_noise(const std::string& base) {
  const vidm::Manifest plain = vidm::load_manifest(base + "/engine");
  const vidm::Plan pp = vidm::build_plan(plain);
  CHECK(!plain.conditioned());
  const std::vector<std::string> clean{"flow",   "x.0@0",  "motion", "noise@1",
                                       "update", "motion", "update"};
  CHECK(op_names(pp, "motion") == clean);
  CHECK((pp.buffer("coef").shape == vidm::Shape{2, 7}));
  CHECK(vidm::coefficient_rows(plain).size() == 14 &&
        vidm::coefficient_rows(plain)[5] == plain.sampler.coef[0][5]);
  bool has_cond = false;
  for (const auto& b : pp.buffers) has_cond |= b.name == "x_cond";
  CHECK(!has_cond);

  auto j = testdir::manifest();
  j["config"]["cond_noise"] = 0.25;
  testdir::write(base + "/cond", j);
  const vidm::Manifest m = vidm::load_manifest(base + "/cond");
  const vidm::Plan p = vidm::build_plan(m);
  CHECK(m.conditioned() && m.cond_noise == 0.25f);
  std::vector<std::string> want{"noise@4294967295", "update"};
  want.insert(want.end(), clean.begin(), clean.end());
  CHECK(op_names(p, "motion") == want);
  CHECK(op_names(p, "content") == op_names(pp, "content"));  // frame 0 has no previous frame
  CHECK((p.buffer("coef").shape == vidm::Shape{3, 7}));
  CHECK(p.buffer("x_cond").count() == p.image_count() && !p.buffer("x_cond").host);
  const auto rows = vidm::coefficient_rows(m);
  CHECK((std::vector<float>(rows.begin() + 14, rows.end()) ==
         std::vector<float>{0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.25f, 0.0f}));
  const auto& ops = p.programs.at("motion");
  const vidm::Launch& cond = p.launches[ops[1].launch];
  CHECK(cond.inputs.at("x").buffer == "x_prev" && cond.inputs.at("coef").buffer == "coef" &&
        cond.inputs.at("coef").row == 2 && cond.inputs.at("noise").buffer == "noise" &&
        cond.inputs.at("x0_prev").buffer == "x0.0");
  CHECK(cond.outputs.at("x_next").buffer == "x_cond" && cond.outputs.at("x0").buffer == "x0.1");
  const vidm::Launch& flow = p.launches[ops[2].launch];
  CHECK(flow.inputs.at("x_prev").buffer == "x_cond" && flow.inputs.at("x_first").buffer == "x_first");

  // The closed-form engine runs the condition launch through its update: the frame equals the
  // plain engine's from x_prev + 0.25 * noise(step 2**32 - 1), bit for bit.
  const std::size_t image = p.image_count();
  std::vector<float> first(image), prev(image), noise(image), shifted(image);
  for (std::size_t i = 0; i < image; ++i) {
    first[i] = 0.01f * static_cast<float>(i % 17) - 0.08f;
    prev[i] = 0.5f - 0.03f * static_cast<float>(i % 11);
  }
  vidm::gaussian_batch(9, 0, m.batch, 1, vidm::kConditionStep, image / m.batch, noise.data());
  for (std::size_t i = 0; i < image; ++i) shifted[i] = prev[i] + 0.25f * noise[i];
  const auto conditioned = motion_frame(m, first, prev);
  CHECK(conditioned == motion_frame(plain, first, shifted));
  CHECK(conditioned != motion_frame(plain, first, prev));

  // A bad level is a manifest error naming the field.
  const std::vector<testdir::json> bad{1.0, -0.1, "0.1", true, nullptr, 1e300};
  for (const auto& level : bad) {
    j["config"]["cond_noise"] = level;
    testdir::write(base + "/bad-cond", j);
    const std::string message = manifest_error(base + "/bad-cond");
    CHECK_MSG(message.find("field 'config.cond_noise'") != std::string::npos &&
                  message.find("[0, 1)") != std::string::npos,
              level.dump() + ": " + message);
  }
  j["config"]["cond_noise"] = 0;  // an integer 0 is off, as absent
  testdir::write(base + "/zero-cond", j);
  CHECK(op_names(vidm::build_plan(vidm::load_manifest(base + "/zero-cond")), "motion") == clean);
}

// config.prev_input: the flow stage hands the motion graph [flow, x_prev], 2 + 3 channels; the
// graphs must declare it and the plan's flow buffer has it.
void check_prev_input(const std::string& base) {
  auto j = testdir::manifest();
  j["config"]["prev_input"] = true;
  testdir::write(base + "/prev-2", j);
  CHECK_MSG(!manifest_error(base + "/prev-2").empty(), "a prev_input manifest with 2-channel flow graphs loaded");
  const auto wide = testdir::tensor({2, 5, 4, 4});
  j["graphs"]["flow"]["outputs"]["flow"] = wide;
  j["graphs"]["motion"]["inputs"]["flow"] = wide;
  testdir::write(base + "/prev", j);
  const vidm::Manifest m = vidm::load_manifest(base + "/prev");
  CHECK(m.cond_channels == 5);
  CHECK((vidm::build_plan(m).buffer("flow").shape == vidm::Shape{2, 5, 4, 4}));
  j["config"]["prev_input"] = "yes";
  testdir::write(base + "/bad-prev", j);
  const std::string message = manifest_error(base + "/bad-prev");
  CHECK_MSG(message.find("field 'config.prev_input'") != std::string::npos, message);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string base = argc > 1 ? argv[1] : "plan_cases";
  mkdir(base.c_str(), 0755);
  testdir::write(base + "/engine", testdir::manifest());
  const vidm::Manifest m = vidm::load_manifest(base + "/engine");
  const vidm::Plan plan = vidm::build_plan(m);

  std::set<std::string> host;
  for (const auto& b : plan.buffers) {
    if (b.host) host.insert(b.name);
  }
  CHECK((host == std::set<std::string>{"coef", "t", "k", "x_first", "x_prev"}));

  // Every buffer an op writes on the device is an activation, except the x_first/x_prev copies.
  for (const auto& [name, ops] : plan.programs) {
    for (const auto& op : ops) {
      if (op.kind == vidm::Op::kNoise || op.kind == vidm::Op::kZero) {
        CHECK_MSG(!plan.buffer(op.buffer).host, name + " writes " + op.buffer);
      }
    }
  }

  vidm::ClosedFormEngine engine(m);
  engine.load(plan);
  const std::size_t image = plan.image_count();
  std::vector<float> frame(image, 0.5f), back(image, 0.0f);
  engine.write("x_prev", frame.data(), image);
  engine.read("x_prev", back.data(), image);
  CHECK(back == frame);
  for (const char* activation : {"x.0", "x0.1", "model_out", "noise"}) {
    bool refused = false;
    try {
      engine.read(activation, back.data(), image);
    } catch (const vidm::Error& e) {
      refused = e.status() == VIDM_RT_ERROR_INTERNAL &&
                std::string(e.what()).find("not host-staged") != std::string::npos;
    }
    CHECK_MSG(refused, activation);
  }
  bool refused = false;
  try {
    engine.write("flow", frame.data(), plan.buffer("flow").count());
  } catch (const vidm::Error&) {
    refused = true;
  }
  CHECK(refused);

  // INT8 engines run the last step on a final-steps graph ("motion.final", vidm_rt/manifest.py).
  auto finals = testdir::manifest();
  finals["graphs"]["motion.final"] = finals["graphs"]["motion"];
  finals["graphs"]["motion.final"]["file"] = "motion.final.onnx";
  finals["graphs"]["motion.final"]["steps"] = 1;
  finals["files"].push_back("motion.final.onnx");
  testdir::write(base + "/finals", finals);
  const vidm::Manifest fm = vidm::load_manifest(base + "/finals");
  CHECK(fm.final_steps("motion") == 1 && fm.final_steps("content") == 0);
  const vidm::Plan fp = vidm::build_plan(fm);
  std::vector<std::string> denoisers;
  for (const auto& op : fp.programs.at("motion")) {
    if (op.kind != vidm::Op::kLaunch) continue;
    const std::string& graph = fp.launches[op.launch].graph;
    if (graph != "flow" && graph != "update") denoisers.push_back(graph);
  }
  CHECK((denoisers == std::vector<std::string>{"motion", "motion.final"}));
  for (const auto& op : fp.programs.at("content")) {
    if (op.kind == vidm::Op::kLaunch) CHECK(fp.launches[op.launch].graph != "content.final");
  }
  // Only a denoiser has final steps, and a final-steps graph says how many.
  for (const char* bad : {"flow", "no-steps"}) {
    auto m2 = finals;
    if (std::string(bad) == "flow") {
      m2["graphs"]["flow.final"] = m2["graphs"]["flow"];
      m2["graphs"]["flow.final"]["steps"] = 1;
    } else {
      m2["graphs"]["motion.final"].erase("steps");
    }
    testdir::write(base + "/bad-final", m2);
    CHECK_MSG(!manifest_error(base + "/bad-final").empty(), bad);
  }
  check_cond_noise(base);
  check_prev_input(base);
  return check::report("plan");
}
