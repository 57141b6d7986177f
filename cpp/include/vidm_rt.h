/* vidm-rt C API: generate VIDM videos from an engine directory, without Python.
 *
 * An engine directory is what `vidm-rt build` (TensorRT plans) or the test helpers write: a
 * manifest.json with shapes, the sampler table and the sha256 of every file, plus the graphs.
 * Every function returns a vidm_rt_status; on failure vidm_rt_last_error() describes the problem
 * (per thread, valid until the next call on that thread). No C++ exception crosses this API.
 *
 *   vidm_rt_generator* gen = NULL;
 *   if (vidm_rt_create("engines/small", 0, &gen) != VIDM_RT_OK) {
 *     fprintf(stderr, "%s\n", vidm_rt_last_error());
 *   }
 *   vidm_rt_info info;  vidm_rt_get_info(gen, &info);
 *   vidm_rt_generate(gen, 16, 42, 0, NULL, out, out_count, on_frame, user);
 *   vidm_rt_destroy(gen);
 */
#ifndef VIDM_RT_H
#define VIDM_RT_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(VIDM_RT_SHARED_BUILD)
#define VIDM_RT_API __declspec(dllexport)
#elif defined(__GNUC__)
#define VIDM_RT_API __attribute__((visibility("default")))
#else
#define VIDM_RT_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vidm_rt_status {
  VIDM_RT_OK = 0,
  VIDM_RT_STOPPED = 1,                /* the frame callback asked to stop; not an error */
  VIDM_RT_ERROR_INVALID_ARGUMENT = -1,
  VIDM_RT_ERROR_MANIFEST = -2,        /* missing, malformed or mismatched engine directory */
  VIDM_RT_ERROR_ENGINE = -3,          /* the engine failed to load or run */
  VIDM_RT_ERROR_UNSUPPORTED = -4,     /* e.g. TensorRT plans in a build without TensorRT */
  VIDM_RT_ERROR_INTERNAL = -5
} vidm_rt_status;

/* vidm_rt_create flags */
#define VIDM_RT_ZERO_COPY 1u /* GPU engines: the buffers the host writes or reads (inputs, the
                              * frame read back) in mapped host memory, for Jetson's shared DRAM;
                              * per-step activations stay device memory */

typedef struct vidm_rt_generator vidm_rt_generator;

typedef struct vidm_rt_info {
  int batch;          /* videos generated at once (B) */
  int channels;       /* C */
  int height;         /* H */
  int width;          /* W */
  int steps;          /* sampler steps per frame */
  int default_frames; /* the export's video length */
  int has_content;    /* 0: the engine needs a first frame (image-to-video) */
  const char* engine; /* "tensorrt" or "closed-form" (the CPU test engine) */
} vidm_rt_info;

/* Called once per finished frame, in order. frame: B*C*H*W floats in [-1, 1], layout
 * [b][c][h][w], valid only during the call. Return 0 to go on, non-zero to stop early. */
typedef int (*vidm_rt_frame_callback)(void* user, int frame_index, const float* frame,
                                      size_t count);

/* Load and verify an engine directory (manifest, sha256 of every file); allocates every buffer. */
VIDM_RT_API vidm_rt_status vidm_rt_create(const char* engine_dir, unsigned int flags,
                                          vidm_rt_generator** out);

VIDM_RT_API vidm_rt_status vidm_rt_get_info(const vidm_rt_generator* gen, vidm_rt_info* info);

/* Generate `frames` frames of B videos numbered first_video .. first_video+B-1 (the noise
 * address). first_frame: NULL to generate frame 0 with the content model, or B*C*H*W floats
 * (image-to-video). out: NULL, or caller-owned memory of out_count >= frames*B*C*H*W floats,
 * layout [frame][b][c][h][w]. on_frame: NULL or the per-frame callback. */
VIDM_RT_API vidm_rt_status vidm_rt_generate(vidm_rt_generator* gen, int frames, uint64_t seed,
                                            uint32_t first_video, const float* first_frame,
                                            float* out, size_t out_count,
                                            vidm_rt_frame_callback on_frame, void* user);

/* Waits for the generator's queued GPU work, then frees everything it holds (memory, graphs,
 * stream, TensorRT objects). NULL is ignored. */
VIDM_RT_API void vidm_rt_destroy(vidm_rt_generator* gen);

/* The last error of this thread ("" if none). */
VIDM_RT_API const char* vidm_rt_last_error(void);

/* "MAJOR.MINOR.PATCH" of the library. */
VIDM_RT_API const char* vidm_rt_version(void);

#ifdef __cplusplus
}
#endif

#endif /* VIDM_RT_H */
