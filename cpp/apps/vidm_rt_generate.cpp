// vidm-rt-generate: the C API's sample program. Generates a video from an engine directory and
// writes its frames, as they finish, to a folder of PNG or PPM files:
//     vidm-rt-generate ENGINE_DIR OUT_DIR [--frames N] [--seed S] [--format png|ppm] [--zero-copy]
// Frames are written to a temporary folder renamed to OUT_DIR at the end, so a failed run leaves
// no partial output. Bad input: one line on stderr and exit status 2.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "image_writer.h"
#include "vidm_rt.h"

namespace {

constexpr const char* kUsage =
    "usage: vidm-rt-generate ENGINE_DIR OUT_DIR [--frames N] [--seed S] [--format png|ppm] "
    "[--zero-copy]";

struct Context {
  std::string dir;
  std::string ext;
  vidm_rt_info info;
  std::string error;
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "vidm-rt-generate: %s\n%s\n", message.c_str(), kUsage);
  return 2;
}

bool parse_u64(const char* s, std::uint64_t max, std::uint64_t* out) {
  if (*s == '\0' || *s == '-') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return false;
  *out = v;
  return true;
}

int on_frame(void* user, int frame, const float* pixels, size_t /*count*/) {
  auto* ctx = static_cast<Context*>(user);
  const vidm_rt_info& i = ctx->info;
  const std::size_t image = static_cast<std::size_t>(i.channels) * i.height * i.width;
  for (int b = 0; b < i.batch; ++b) {
    char name[64];
    std::snprintf(name, sizeof name, "/v%d_f%04d.%s", b, frame, ctx->ext.c_str());
    ctx->error = write_frame(ctx->dir + name, pixels + image * b, i.channels, i.height, i.width);
    if (!ctx->error.empty()) return 1;
  }
  std::printf("frame %d done\n", frame);
  std::fflush(stdout);
  return 0;
}

void remove_dir(const std::string& dir) {
  // The folder is this run's own temporary folder: it holds only frames written above.
  if (DIR* d = opendir(dir.c_str())) {
    while (const dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
        std::remove((dir + "/" + e->d_name).c_str());
      }
    }
    closedir(d);
  }
  rmdir(dir.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage_error("needs ENGINE_DIR and OUT_DIR");
  const std::string engine_dir = argv[1], out_dir = argv[2];
  std::uint64_t frames = 0, seed = 0;
  std::string format = png_supported() ? "png" : "ppm";
  unsigned int flags = 0;
  for (int a = 3; a < argc; a += 2) {
    const std::string flag = argv[a];
    if (flag == "--zero-copy") {  // mapped host memory: Jetson's GPU shares the CPU's DRAM
      flags |= VIDM_RT_ZERO_COPY;
      --a;
      continue;
    }
    if (a + 1 >= argc) return usage_error(flag + " needs a value");
    const char* value = argv[a + 1];
    if (flag == "--frames") {
      if (!parse_u64(value, 1u << 20, &frames) || frames == 0) {
        return usage_error("--frames must be a positive integer");
      }
    } else if (flag == "--seed") {
      if (!parse_u64(value, UINT64_MAX, &seed)) return usage_error("--seed must be in [0, 2**64)");
    } else if (flag == "--format") {
      format = value;
      if (format != "png" && format != "ppm") return usage_error("--format must be png or ppm");
      if (format == "png" && !png_supported()) {
        return usage_error("this build has no zlib for PNG: use --format ppm");
      }
    } else {
      return usage_error("unknown option " + flag);
    }
  }
  struct stat st;
  if (stat(out_dir.c_str(), &st) == 0) {
    return usage_error(out_dir + " already exists: choose a new output folder");
  }

  vidm_rt_generator* gen = nullptr;
  if (vidm_rt_create(engine_dir.c_str(), flags, &gen) != VIDM_RT_OK) {
    std::fprintf(stderr, "vidm-rt-generate: %s\n", vidm_rt_last_error());
    return 2;
  }
  Context ctx;
  vidm_rt_get_info(gen, &ctx.info);
  if (frames == 0) frames = static_cast<std::uint64_t>(ctx.info.default_frames);
  ctx.ext = format;
  ctx.dir = out_dir + ".tmp-" + std::to_string(getpid());
  if (mkdir(ctx.dir.c_str(), 0755) != 0) {
    vidm_rt_destroy(gen);
    return usage_error("cannot create " + ctx.dir + ": " + std::strerror(errno));
  }
  std::printf("%s engine, %d video(s) of %dx%d, %d steps per frame\n", ctx.info.engine,
              ctx.info.batch, ctx.info.height, ctx.info.width, ctx.info.steps);
  const vidm_rt_status status = vidm_rt_generate(gen, static_cast<int>(frames), seed, 0, nullptr,
                                                 nullptr, 0, on_frame, &ctx);
  const std::string api_error = vidm_rt_last_error();
  vidm_rt_destroy(gen);
  if (status != VIDM_RT_OK) {
    remove_dir(ctx.dir);
    std::fprintf(stderr, "vidm-rt-generate: %s\n",
                 ctx.error.empty() ? api_error.c_str() : ctx.error.c_str());
    return status == VIDM_RT_ERROR_INVALID_ARGUMENT || status == VIDM_RT_ERROR_MANIFEST ? 2 : 1;
  }
  if (std::rename(ctx.dir.c_str(), out_dir.c_str()) != 0) {
    remove_dir(ctx.dir);
    std::fprintf(stderr, "vidm-rt-generate: cannot rename %s to %s\n", ctx.dir.c_str(),
                 out_dir.c_str());
    return 1;
  }
  std::printf("wrote %llu frames x %d video(s) to %s/\n", static_cast<unsigned long long>(frames),
              ctx.info.batch, out_dir.c_str());
  return 0;
}
