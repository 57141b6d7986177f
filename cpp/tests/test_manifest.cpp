// Manifest reading: a valid manifest loads; malformed, truncated and mismatched ones are refused
// with a clear vidm::Error (never a crash, never another exception type).
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "check.h"
#include "engine_dir.h"
#include "error.h"
#include "manifest.h"

namespace {

std::string base;
int counter = 0;

// The error message loading `dir` gives, or "" if it loads.
std::string load_error(const std::string& dir) {
  try {
    vidm::load_manifest(dir);
    return "";
  } catch (const vidm::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG EXCEPTION TYPE: ") + e.what();
  }
}

std::string fresh_dir() { return base + "/case" + std::to_string(counter++); }

// Writes the default manifest after `edit`, expects an error containing `expected`.
void expect_error(const std::string& expected, const std::function<void(testdir::json&)>& edit) {
  auto m = testdir::manifest();
  edit(m);
  const std::string dir = fresh_dir();
  testdir::write(dir, m);
  const std::string err = load_error(dir);
  CHECK_MSG(!err.empty() && err.find(expected) != std::string::npos,
            "expected '" + expected + "', got '" + err + "'");
}

}  // namespace

int main(int argc, char** argv) {
  base = argc > 1 ? argv[1] : "manifest_cases";
  mkdir(base.c_str(), 0755);

  const std::string good = fresh_dir();
  testdir::write(good, testdir::manifest());
  CHECK_MSG(load_error(good).empty(), load_error(good));
  const vidm::Manifest m = vidm::load_manifest(good);
  CHECK(m.batch == 2 && m.channels == 3 && m.height == 4 && m.width == 4);
  CHECK(m.sampler.steps == 2 && m.sampler.clip_x0 && m.sampler.noisy(0) && !m.sampler.noisy(1));
  CHECK(m.sampler.coef[0][0] == 1.5f && m.sampler.coef[1][6] == 0.0f);
  CHECK(m.sampler.model_t[0] == 500.0f && m.has_content() && m.closed_form == 1);
  CHECK(vidm::frame_index(10, 8, "clamp") == 6 && vidm::frame_index(10, 8, "extrapolate") == 10);

  CHECK(load_error(base + "/nonexistent").find("no such engine directory") != std::string::npos);
  const std::string empty = fresh_dir();
  mkdir(empty.c_str(), 0755);
  CHECK(load_error(empty).find("no manifest.json") != std::string::npos);

  // Every truncation of a valid manifest is refused cleanly (parsed in memory: thousands of
  // file writes would make the test slow on a busy disk).
  std::stringstream text;
  text << std::ifstream(good + "/manifest.json").rdbuf();
  const std::string full = text.str();
  int refused = 0;
  for (std::size_t n = 0; n < full.size(); ++n) {
    try {
      vidm::parse_manifest(full.substr(0, n), good);
    } catch (const vidm::Error&) {
      ++refused;
    } catch (...) {  // any other exception type is a failure
    }
  }
  CHECK_MSG(refused == static_cast<int>(full.size()),
            std::to_string(refused) + " of " + std::to_string(full.size()) + " truncations refused");
  testdir::write_text(good + "/manifest.json", "{\"format\": \"vidm-rt\", \"format_version\": 1,");
  CHECK(load_error(good).find("not valid JSON") != std::string::npos);
  testdir::write_text(good + "/manifest.json", "[1, 2]");
  CHECK(load_error(good).find("not a vidm-rt manifest") != std::string::npos);
  testdir::write_text(good + "/manifest.json", std::string("\xff\xfe\x00garbage", 10));
  CHECK(!load_error(good).empty());
  testdir::write_text(good + "/manifest.json", full);

  using J = testdir::json;
  expect_error("not a vidm-rt manifest", [](J& j) { j["format"] = "other"; });
  expect_error("manifest format 2", [](J& j) { j["format_version"] = 2; });
  expect_error("missing field 'batch'", [](J& j) { j.erase("batch"); });
  expect_error("'batch' must be an integer", [](J& j) { j["batch"] = "two"; });
  expect_error("'batch' = 0 is outside", [](J& j) { j["batch"] = 0; });
  expect_error("'height' must be an integer", [](J& j) { j["height"] = 4.5; });
  expect_error("missing field 'config.train_frames'", [](J& j) { j["config"].erase("train_frames"); });
  expect_error("field 'config' must be an object", [](J& j) { j["config"] = 3; });
  expect_error("'sampler.noise_std' must be an array of 2", [](J& j) {
    j["sampler"]["noise_std"] = {0.1};
  });
  expect_error("non-number", [](J& j) { j["sampler"]["coef_x"] = {0.5, "x"}; });
  expect_error("'sampler.clip_x0' must be true or false", [](J& j) { j["sampler"]["clip_x0"] = 1; });
  expect_error("unknown frame_index policy", [](J& j) { j["frame_index"] = "wrap"; });
  expect_error("no 'update' graph", [](J& j) { j["graphs"].erase("update"); });
  expect_error("unknown graph 'extra'", [](J& j) { j["graphs"]["extra"] = j["graphs"]["flow"]; });
  expect_error("tensor 'x_t' has shape [2, 3, 4, 5], expected [2, 3, 4, 4]", [](J& j) {
    j["graphs"]["motion"]["inputs"]["x_t"]["shape"] = {2, 3, 4, 5};
  });
  expect_error("lacks inputs tensor 'k'", [](J& j) { j["graphs"]["motion"]["inputs"].erase("k"); });
  expect_error("is not hashed under 'files'", [](J& j) {
    j["graphs"]["flow"]["file"] = "other.onnx";
  });
  expect_error("not a path inside the engine directory", [](J& j) {
    j["files"].push_back("../escape.onnx");
  });

  // Listed files: missing, modified, and a non-string hash.
  {
    const std::string dir = fresh_dir();
    testdir::write(dir, testdir::manifest());
    std::remove((dir + "/motion.onnx").c_str());
    CHECK(load_error(dir).find("motion.onnx is listed in the manifest but missing") != std::string::npos);
  }
  {
    const std::string dir = fresh_dir();
    testdir::write(dir, testdir::manifest());
    testdir::write_text(dir + "/update.onnx", "tampered");
    CHECK(load_error(dir).find("update.onnx does not match its sha256") != std::string::npos);
  }
  return check::report("manifest_errors");
}
