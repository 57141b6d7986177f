// The C boundary: every entry point catches everything and reports through vidm_rt_last_error.
#include <new>
#include <string>

#include "error.h"
#include "generator.h"
#include "vidm_rt.h"

struct vidm_rt_generator {
  vidm::Generator impl;
};

namespace {

thread_local std::string g_last_error;

template <class F>
vidm_rt_status guarded(F&& body) {
  try {
    g_last_error.clear();
    return body();
  } catch (const vidm::Error& e) {
    g_last_error = e.what();
    return e.status();
  } catch (const std::bad_alloc&) {
    g_last_error = "out of memory";
    return VIDM_RT_ERROR_INTERNAL;
  } catch (const std::exception& e) {
    g_last_error = std::string("internal error: ") + e.what();
    return VIDM_RT_ERROR_INTERNAL;
  } catch (...) {
    g_last_error = "internal error: unknown exception";
    return VIDM_RT_ERROR_INTERNAL;
  }
}

vidm_rt_status invalid(const char* message) {
  g_last_error = message;
  return VIDM_RT_ERROR_INVALID_ARGUMENT;
}

}  // namespace

extern "C" {

vidm_rt_status vidm_rt_create(const char* engine_dir, unsigned int flags, vidm_rt_generator** out) {
  if (out == nullptr) return invalid("vidm_rt_create: out is NULL");
  *out = nullptr;
  if (engine_dir == nullptr) return invalid("vidm_rt_create: engine_dir is NULL");
  if ((flags & ~VIDM_RT_ZERO_COPY) != 0) return invalid("vidm_rt_create: unknown flags");
  return guarded([&] {
    *out = new vidm_rt_generator{vidm::Generator(engine_dir, flags)};
    return VIDM_RT_OK;
  });
}

vidm_rt_status vidm_rt_get_info(const vidm_rt_generator* gen, vidm_rt_info* info) {
  if (gen == nullptr || info == nullptr) return invalid("vidm_rt_get_info: NULL argument");
  return guarded([&] {
    *info = gen->impl.info();
    return VIDM_RT_OK;
  });
}

vidm_rt_status vidm_rt_generate(vidm_rt_generator* gen, int frames, uint64_t seed,
                                uint32_t first_video, const float* first_frame, float* out,
                                size_t out_count, vidm_rt_frame_callback on_frame, void* user) {
  if (gen == nullptr) return invalid("vidm_rt_generate: generator is NULL");
  return guarded([&] {
    return gen->impl.generate(frames, seed, first_video, first_frame, out, out_count, on_frame,
                              user);
  });
}

void vidm_rt_destroy(vidm_rt_generator* gen) { delete gen; }

const char* vidm_rt_last_error(void) { return g_last_error.c_str(); }

const char* vidm_rt_version(void) { return VIDM_RT_VERSION_STRING; }

}  // extern "C"
