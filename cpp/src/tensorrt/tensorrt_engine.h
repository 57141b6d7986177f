// The TensorRT engine: one deserialised plan per graph and one execution context per launch of
// the schedule, addressed once (never re-addressed under a captured graph), all contexts sharing
// one activation buffer (the launches run one at a time on one stream), every plan buffer
// allocated once on the device, and each frame program captured once as a CUDA graph and replayed
// for every frame and every seed (the noise kernel reads the seed from device memory).
// VIDM_RT_ZERO_COPY (Jetson's shared DRAM) maps the host-staged buffers only (BufferSpec::host:
// the sampler tables, k, x_first, x_prev); per-step activations stay plain device memory.
// Written against the TensorRT 10.0+ C++ API (named tensors: setTensorAddress / enqueueV3,
// createExecutionContext with an allocation strategy) and the CUDA runtime. Built when CMake finds
// TensorRT and CUDA; otherwise CI compiles it against the declaration-only headers of
// cpp/tests/trt_stubs (a compile check, never linked or run).
#pragma once

#include <cuda_runtime_api.h>

#include <NvInferRuntime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cuda_handles.h"
#include "engine.h"

namespace vidm {

class TensorRTEngine final : public Engine {
 public:
  TensorRTEngine(const Manifest& m, unsigned int flags);
  // Waits for the queued work, then frees everything in the reverse order of the members below.
  ~TensorRTEngine() override;
  TensorRTEngine(const TensorRTEngine&) = delete;
  TensorRTEngine& operator=(const TensorRTEngine&) = delete;

  const char* name() const override { return "tensorrt"; }
  void load(const Plan& plan) override;
  void write(const std::string& buffer, const float* src, std::size_t count) override;
  void read(const std::string& buffer, float* dst, std::size_t count) override;
  void run(const std::string& program, const NoiseAddress& address) override;

 private:
  class Logger : public nvinfer1::ILogger {
   public:
    void log(Severity severity, const nvinfer1::AsciiChar* msg) noexcept override;
    std::string last_error;
  };
  struct Buffer {
    cuda::DeviceMemory device_memory;  // plain device memory, or
    cuda::PinnedMemory mapped_memory;  // mapped host memory (zero-copy, host-staged only)
    float* device = nullptr;  // what kernels and TensorRT use
    float* host = nullptr;    // the same memory seen from the CPU (mapped buffers only)
    std::size_t rows = 1;     // > 1 for tables; each row starts on a 256-byte boundary
    std::size_t row_count = 0;
    std::size_t row_stride = 0;  // floats
  };
  struct Program {
    int runs = 0;          // eager runs so far (TensorRT allocates on its first enqueue)
    bool eager = false;    // capture failed: launches are enqueued one by one
    cuda::GraphExec exec;  // the captured frame, replayed from the second run on
  };

  Buffer& buffer(const std::string& name);
  float* address(const Ref& ref);
  void execute(const std::vector<Op>& ops);  // enqueue one program on the stream
  cuda::GraphExec capture(const std::vector<Op>& ops, std::string& why);
  void check_target(const Manifest& m) const;
  void check_bindings(const Launch& launch) const;
  void share_activation_memory();
  void bind_contexts(const Plan& plan);

  Manifest manifest_;
  bool zero_copy_;
  const Plan* plan_ = nullptr;
  bool warned_eager_ = false;
  // Declaration order is release order reversed: graphs, contexts, the activation memory they
  // use, engines, runtime, plan buffers, stream.
  cuda::Stream stream_;
  std::map<std::string, Buffer> buffers_;
  cuda::DeviceMemory noise_base_;  // per row: {video, frame, key low, key high}
  Logger logger_;                  // outlives the runtime that reports to it
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::map<std::string, std::unique_ptr<nvinfer1::ICudaEngine>> engines_;
  cuda::DeviceMemory activations_;  // one buffer of the largest size, set on every context
  std::int64_t activation_bytes_ = 0;
  std::vector<std::unique_ptr<nvinfer1::IExecutionContext>> contexts_;  // per Plan::launches
  std::map<std::string, Program> programs_;
};

}  // namespace vidm
