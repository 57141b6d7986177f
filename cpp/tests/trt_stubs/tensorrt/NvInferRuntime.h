// Declaration-only stand-in for the part of TensorRT 10's NvInferRuntime.h that the engine uses
// (compile check; see README.md). Signatures follow the TensorRT 10 C++ API reference.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "NvInferVersion.h"

namespace nvinfer1 {

using AsciiChar = char;

class INoCopy {
 protected:
  INoCopy() = default;
  virtual ~INoCopy() = default;
  INoCopy(INoCopy const&) = delete;
  INoCopy& operator=(INoCopy const&) = delete;
};

class ILogger {
 public:
  enum class Severity : std::int32_t { kINTERNAL_ERROR = 0, kERROR = 1, kWARNING = 2, kINFO = 3, kVERBOSE = 4 };
  virtual void log(Severity severity, AsciiChar const* msg) noexcept = 0;
  ILogger() = default;
  virtual ~ILogger() = default;
};

class Dims64 {
 public:
  static constexpr std::int32_t MAX_DIMS{8};
  std::int32_t nbDims;
  std::int64_t d[MAX_DIMS];
};
using Dims = Dims64;

enum class DataType : std::int32_t { kFLOAT = 0, kHALF = 1, kINT8 = 2, kINT32 = 3, kBOOL = 4 };
enum class TensorIOMode : std::int32_t { kNONE = 0, kINPUT = 1, kOUTPUT = 2 };
enum class ExecutionContextAllocationStrategy : std::int32_t {
  kSTATIC = 0,
  kON_PROFILE_CHANGE = 1,
  kUSER_MANAGED = 2,
};

class IExecutionContext : public INoCopy {
 public:
  ~IExecutionContext() noexcept override = default;
  bool setTensorAddress(char const* tensorName, void* data) noexcept;
  bool enqueueV3(cudaStream_t stream) noexcept;
#if NV_TENSORRT_MINOR >= 1
  [[deprecated("superseded by setDeviceMemoryV2 in TensorRT 10.1")]] void setDeviceMemory(void* memory) noexcept;
  void setDeviceMemoryV2(void* memory, std::int64_t size) noexcept;
#else
  void setDeviceMemory(void* memory) noexcept;
#endif
};

class ICudaEngine : public INoCopy {
 public:
  ~ICudaEngine() noexcept override = default;
  IExecutionContext* createExecutionContext(
      ExecutionContextAllocationStrategy strategy = ExecutionContextAllocationStrategy::kSTATIC) noexcept;
  std::int32_t getNbIOTensors() const noexcept;
  char const* getIOTensorName(std::int32_t index) const noexcept;
  TensorIOMode getTensorIOMode(char const* tensorName) const noexcept;
  Dims getTensorShape(char const* tensorName) const noexcept;
  DataType getTensorDataType(char const* tensorName) const noexcept;
  std::size_t getDeviceMemorySize() const noexcept;
#if NV_TENSORRT_MINOR >= 1
  std::int64_t getDeviceMemorySizeV2() const noexcept;
#endif
};

class IRuntime : public INoCopy {
 public:
  ~IRuntime() noexcept override = default;
  ICudaEngine* deserializeCudaEngine(void const* blob, std::size_t size) noexcept;
};

IRuntime* createInferRuntime(ILogger& logger) noexcept;

}  // namespace nvinfer1
