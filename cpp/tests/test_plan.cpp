// The plan's host-staged buffers, the only ones an engine maps with VIDM_RT_ZERO_COPY: exactly
// what the generator writes or reads (sampler tables, k, x_first, x_prev), never a per-step
// activation; engines refuse write/read of anything else (checked here on the closed-form
// engine, which applies the TensorRT engine's contract, so the c_api tests catch a generator
// that strays from it).
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "check.h"
#include "closed_form_engine.h"
#include "engine_dir.h"
#include "error.h"
#include "manifest.h"
#include "plan.h"

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
    bool failed = false;
    try {
      vidm::load_manifest(base + "/bad-final");
    } catch (const vidm::Error& e) {
      failed = e.status() == VIDM_RT_ERROR_MANIFEST;
    }
    CHECK_MSG(failed, bad);
  }
  return check::report("plan");
}
