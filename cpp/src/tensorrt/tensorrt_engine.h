// The TensorRT engine: one deserialised plan and one execution context per graph, every buffer
// allocated once on the device (or as mapped host memory with VIDM_RT_ZERO_COPY, for Jetson's
// shared DRAM), and each frame program captured once as a CUDA graph and replayed for every
// frame and every seed (the noise kernel reads the seed from device memory).
// Written against the TensorRT 10.3+ C++ API (named tensors: setTensorAddress / enqueueV3) and
// the CUDA runtime. Compiled only when CMake finds TensorRT and CUDA (not on CI).
#pragma once

#include <cuda_runtime_api.h>

#include <NvInferRuntime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine.h"

namespace vidm {

class TensorRTEngine final : public Engine {
 public:
  TensorRTEngine(const Manifest& m, unsigned int flags);
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
    float* device = nullptr;  // what kernels and TensorRT use
    float* host = nullptr;    // the same memory seen from the CPU (zero-copy only)
    std::size_t rows = 1;     // > 1 for tables; each row starts on a 256-byte boundary
    std::size_t row_count = 0;
    std::size_t row_stride = 0;  // floats
  };

  Buffer& buffer(const std::string& name);
  float* address(const Ref& ref);
  void execute(const std::vector<Op>& ops);  // enqueue one program on the stream
  void check_target(const Manifest& m) const;
  void check_bindings(const Launch& launch) const;
  void reset_graphs();

  Manifest manifest_;
  bool zero_copy_;
  Logger logger_;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::map<std::string, std::unique_ptr<nvinfer1::ICudaEngine>> engines_;
  std::map<std::string, std::unique_ptr<nvinfer1::IExecutionContext>> contexts_;
  cudaStream_t stream_ = nullptr;
  const Plan* plan_ = nullptr;
  std::map<std::string, Buffer> buffers_;
  unsigned int* noise_base_ = nullptr;  // device, per row: {video, frame, key low, key high}
  std::map<std::string, int> runs_;     // program -> eager runs so far (TensorRT warm-up)
  std::map<std::string, cudaGraphExec_t> graphs_;
};

}  // namespace vidm
