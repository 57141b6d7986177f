// Owning handles for CUDA runtime objects: each frees its object exactly once, also when a
// constructor throws half-way. The release calls ignore their status (a destructor cannot
// report it, and the objects are gone either way).
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <type_traits>

namespace vidm {
namespace cuda {

struct FreeDevice {
  void operator()(void* p) const noexcept { cudaFree(p); }
};
struct FreeHost {
  void operator()(void* p) const noexcept { cudaFreeHost(p); }
};
struct DestroyStream {
  void operator()(cudaStream_t s) const noexcept { cudaStreamDestroy(s); }
};
struct DestroyGraph {
  void operator()(cudaGraph_t g) const noexcept { cudaGraphDestroy(g); }
};
struct DestroyGraphExec {
  void operator()(cudaGraphExec_t g) const noexcept { cudaGraphExecDestroy(g); }
};

using DeviceMemory = std::unique_ptr<void, FreeDevice>;  // cudaMalloc
using PinnedMemory = std::unique_ptr<void, FreeHost>;    // cudaHostAlloc
using Stream = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, DestroyStream>;
using Graph = std::unique_ptr<std::remove_pointer_t<cudaGraph_t>, DestroyGraph>;
using GraphExec = std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>, DestroyGraphExec>;

}  // namespace cuda
}  // namespace vidm
