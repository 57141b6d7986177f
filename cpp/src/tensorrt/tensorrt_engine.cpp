#include "tensorrt_engine.h"

#include <NvInferVersion.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "error.h"
#include "noise.h"
#include "noise_launch.h"

namespace vidm {
namespace {

void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(VIDM_RT_ERROR_ENGINE, std::string(what) + ": " + cudaGetErrorString(status));
  }
}

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(VIDM_RT_ERROR_MANIFEST, path + ": cannot be read");
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// 256 bytes: setTensorAddress requires every I/O tensor address to be at least 256-byte aligned.
constexpr std::size_t kRowAlignFloats = 64;

}  // namespace

void TensorRTEngine::Logger::log(Severity severity, const nvinfer1::AsciiChar* msg) noexcept {
  if (severity > Severity::kERROR || msg == nullptr) return;
  try {
    last_error = msg;
  } catch (...) {  // out of memory while logging: keep the previous message
  }
}

// Activation memory. Every context is created without its own (kUSER_MANAGED, TensorRT 10.0+)
// and given one buffer of the largest size among the engines. The size and set calls differ:
// TensorRT 10.1 and later (JetPack 6's 10.3, 11.x) take the 64-bit pair getDeviceMemorySizeV2 /
// setDeviceMemoryV2, which 10.1 introduced and which replaces getDeviceMemorySize /
// setDeviceMemory (deprecated in 10.1); TensorRT 10.0 has only the latter.
#if NV_TENSORRT_MAJOR < 10
#error "the TensorRT engine needs TensorRT 10 or newer"
#elif NV_TENSORRT_MAJOR > 10 || NV_TENSORRT_MINOR >= 1
#define VIDM_RT_TRT_DEVICE_MEMORY_V2 1
#endif

TensorRTEngine::TensorRTEngine(const Manifest& m, unsigned int flags)
    : manifest_(m), zero_copy_((flags & VIDM_RT_ZERO_COPY) != 0) {
  check_target(m);
  cudaStream_t stream = nullptr;
  cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  stream_.reset(stream);
  runtime_.reset(nvinfer1::createInferRuntime(logger_));
  if (!runtime_) throw Error(VIDM_RT_ERROR_ENGINE, "TensorRT: createInferRuntime failed");
  for (const auto& [graph, spec] : m.graphs) {
    const std::vector<char> plan = read_file(m.path(spec.file));
    std::unique_ptr<nvinfer1::ICudaEngine> engine(
        runtime_->deserializeCudaEngine(plan.data(), plan.size()));
    if (!engine) {
      throw Error(VIDM_RT_ERROR_ENGINE, m.dir + ": TensorRT cannot load " + spec.file + " (" +
                                            logger_.last_error + "): run `vidm-rt build` again");
    }
    engines_[graph] = std::move(engine);
  }
  share_activation_memory();
}

// Members release themselves in reverse declaration order; only the queued work must end first.
TensorRTEngine::~TensorRTEngine() {
  if (stream_) cudaStreamSynchronize(stream_.get());
}

void TensorRTEngine::share_activation_memory() {
  std::int64_t largest = 0;
  for (const auto& [graph, engine] : engines_) {
#ifdef VIDM_RT_TRT_DEVICE_MEMORY_V2
    const std::int64_t need = engine->getDeviceMemorySizeV2();
#else
    const std::int64_t need = static_cast<std::int64_t>(engine->getDeviceMemorySize());
#endif
    largest = std::max(largest, need);
  }
  // At least one aligned block, so that every context gets a valid address.
  activation_bytes_ = std::max<std::int64_t>(largest, 256);
  void* memory = nullptr;
  cuda_check(cudaMalloc(&memory, static_cast<std::size_t>(activation_bytes_)),
             "cudaMalloc (activation memory)");
  activations_.reset(memory);
}

// One context per launch of the plan, addressed once here: a captured CUDA graph is tied to
// the state of the contexts it was captured with (a context may keep its tensor addresses in
// memory it owns, read again at replay), so no context is re-addressed between enqueues, and a
// frame's capture holds one enqueue of each of its launches' contexts. They all run on the one
// activation buffer: the launches are serialised on the one stream, so no two run at once.
void TensorRTEngine::bind_contexts(const Plan& plan) {
  contexts_.clear();
  for (const Launch& launch : plan.launches) {
    std::unique_ptr<nvinfer1::IExecutionContext> context(
        engines_.at(launch.graph)->createExecutionContext(
            nvinfer1::ExecutionContextAllocationStrategy::kUSER_MANAGED));
    if (!context) {
      throw Error(VIDM_RT_ERROR_ENGINE, "TensorRT: no execution context for " + launch.graph);
    }
#ifdef VIDM_RT_TRT_DEVICE_MEMORY_V2
    context->setDeviceMemoryV2(activations_.get(), activation_bytes_);
#else
    context->setDeviceMemory(activations_.get());
#endif
    for (const auto* side : {&launch.inputs, &launch.outputs}) {
      for (const auto& [tensor, ref] : *side) {
        if (!context->setTensorAddress(tensor.c_str(), address(ref))) {
          throw Error(VIDM_RT_ERROR_ENGINE, "TensorRT: cannot bind " + launch.graph + "." +
                                                tensor + ": " + logger_.last_error);
        }
      }
    }
    contexts_.push_back(std::move(context));
  }
}

// Plans only run with the TensorRT version and on the GPU they were built for.
void TensorRTEngine::check_target(const Manifest& m) const {
  std::ostringstream have_version;
  have_version << NV_TENSORRT_MAJOR << "." << NV_TENSORRT_MINOR << "." << NV_TENSORRT_PATCH;
  int device = 0;
  cuda_check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop{};
  cuda_check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  const std::string have_cc = std::to_string(prop.major) + "." + std::to_string(prop.minor);
  auto get = [&m](const char* key) {
    auto it = m.tensorrt.find(key);
    return it == m.tensorrt.end() ? std::string("?") : it->second;
  };
  const std::string want_version = get("version");
  // "10.3.0" matches a manifest's "10.3.0" or "10.3.0.30" (the build number may be recorded).
  const bool version_ok = want_version == have_version.str() ||
                          want_version.rfind(have_version.str() + ".", 0) == 0;
  if (!version_ok || get("compute_capability") != have_cc || get("gpu") != prop.name) {
    throw Error(VIDM_RT_ERROR_MANIFEST,
                m.dir + ": built with TensorRT " + want_version + " for " + get("gpu") + " (sm " +
                    get("compute_capability") + "); this library has TensorRT " +
                    have_version.str() + " on " + prop.name + " (sm " + have_cc + "): run `vidm-rt build " +
                    get("export") + " --precision " + get("precision") + "` again here");
  }
  // Mapped host memory needs no device flag: cudaDeviceMapHost is implicit for contexts the
  // runtime API creates (and every 64-bit platform, Jetson Orin included, has unified
  // addressing), so the library leaves the process-wide cudaSetDeviceFlags alone.
  if (zero_copy_ && (prop.canMapHostMemory == 0 || prop.unifiedAddressing == 0)) {
    throw Error(VIDM_RT_ERROR_UNSUPPORTED, std::string(prop.name) +
                                               " cannot map host memory: create the generator "
                                               "without VIDM_RT_ZERO_COPY");
  }
}

TensorRTEngine::Buffer& TensorRTEngine::buffer(const std::string& name) {
  auto it = buffers_.find(name);
  if (it == buffers_.end()) throw Error(VIDM_RT_ERROR_INTERNAL, "no buffer named " + name);
  return it->second;
}

float* TensorRTEngine::address(const Ref& ref) {
  Buffer& b = buffer(ref.buffer);
  return ref.row < 0 ? b.device : b.device + b.row_stride * static_cast<std::size_t>(ref.row);
}

// Every I/O tensor of the plan must be bound, be float32 and have the manifest's shape.
void TensorRTEngine::check_bindings(const Launch& launch) const {
  const nvinfer1::ICudaEngine& engine = *engines_.at(launch.graph);
  const GraphSpec& spec = manifest_.graphs.at(launch.graph);
  std::set<std::string> bound;
  for (const auto& [name, ref] : launch.inputs) bound.insert(name);
  for (const auto& [name, ref] : launch.outputs) bound.insert(name);
  const int n = engine.getNbIOTensors();
  std::set<std::string> names;
  for (int i = 0; i < n; ++i) {
    const char* name = engine.getIOTensorName(i);
    names.insert(name);
    const bool input = engine.getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
    const auto& shapes = input ? spec.inputs : spec.outputs;
    auto want = shapes.find(name);
    const nvinfer1::Dims dims = engine.getTensorShape(name);
    const Shape got(dims.d, dims.d + dims.nbDims);
    if (!bound.count(name) || want == shapes.end() || want->second != got ||
        engine.getTensorDataType(name) != nvinfer1::DataType::kFLOAT) {
      throw Error(VIDM_RT_ERROR_MANIFEST,
                  manifest_.dir + ": " + spec.file + " tensor '" + name +
                      "' does not match the manifest (name, float32, static shape): run "
                      "`vidm-rt build` again");
    }
  }
  if (names != bound) {
    throw Error(VIDM_RT_ERROR_MANIFEST, manifest_.dir + ": " + spec.file +
                                            " lacks tensors the schedule binds: run `vidm-rt build` again");
  }
}

void TensorRTEngine::load(const Plan& plan) {
  plan_ = &plan;
  for (const BufferSpec& spec : plan.buffers) {
    Buffer b;
    b.rows = spec.table ? static_cast<std::size_t>(spec.shape[0]) : 1;
    b.row_count = spec.row_count();
    b.row_stride = spec.table ? (b.row_count + kRowAlignFloats - 1) / kRowAlignFloats * kRowAlignFloats
                              : b.row_count;
    const std::size_t bytes = b.rows * b.row_stride * sizeof(float);
    void* memory = nullptr;
    if (zero_copy_ && spec.host) {
      cuda_check(cudaHostAlloc(&memory, bytes, cudaHostAllocMapped), "cudaHostAlloc");
      b.mapped_memory.reset(memory);  // owned before the next call can fail
      b.host = static_cast<float*>(memory);
      void* device = nullptr;
      cuda_check(cudaHostGetDevicePointer(&device, memory, 0), "cudaHostGetDevicePointer");
      b.device = static_cast<float*>(device);
    } else {
      cuda_check(cudaMalloc(&memory, bytes), "cudaMalloc");
      b.device_memory.reset(memory);
      b.device = static_cast<float*>(memory);
    }
    // Zero-filled: steps without noise multiply the noise buffer by 0, which must not be NaN.
    cuda_check(cudaMemsetAsync(b.device, 0, bytes, stream_.get()), "cudaMemsetAsync");
    buffers_[spec.name] = std::move(b);
  }
  void* base = nullptr;
  cuda_check(cudaMalloc(&base, 4 * sizeof(unsigned int) * plan.batch), "cudaMalloc");
  noise_base_.reset(base);
  for (const Launch& launch : plan.launches) check_bindings(launch);
  bind_contexts(plan);
  cuda_check(cudaStreamSynchronize(stream_.get()), "cudaStreamSynchronize");
}

void TensorRTEngine::write(const std::string& name, const float* src, std::size_t count) {
  plan_->host_buffer(name);
  Buffer& b = buffer(name);
  if (count != b.rows * b.row_count) throw Error(VIDM_RT_ERROR_INTERNAL, "write size mismatch for " + name);
  // Ordered on the stream (work still queued may read the buffer); pageable sources are staged
  // by the CUDA runtime before the call returns.
  cuda_check(cudaMemcpy2DAsync(b.device, b.row_stride * sizeof(float), src,
                               b.row_count * sizeof(float), b.row_count * sizeof(float), b.rows,
                               cudaMemcpyHostToDevice, stream_.get()),
             "cudaMemcpy2DAsync");
}

void TensorRTEngine::read(const std::string& name, float* dst, std::size_t count) {
  plan_->host_buffer(name);
  Buffer& b = buffer(name);
  if (count != b.rows * b.row_count || b.rows != 1) {
    throw Error(VIDM_RT_ERROR_INTERNAL, "read size mismatch for " + name);
  }
  if (b.host == nullptr) {
    cuda_check(cudaMemcpyAsync(dst, b.device, count * sizeof(float), cudaMemcpyDeviceToHost,
                               stream_.get()),
               "cudaMemcpyAsync");
  }
  // The one host synchronisation of a frame.
  cuda_check(cudaStreamSynchronize(stream_.get()), "cudaStreamSynchronize");
  if (b.host != nullptr) std::copy(b.host, b.host + count, dst);
}

void TensorRTEngine::execute(const std::vector<Op>& ops) {
  cudaStream_t stream = stream_.get();
  const unsigned int batch = static_cast<unsigned int>(plan_->batch);
  const unsigned int per_video = static_cast<unsigned int>(plan_->image_count() / batch);
  for (const Op& op : ops) {
    switch (op.kind) {
      case Op::kLaunch: {
        const auto index = static_cast<std::size_t>(op.launch);
        const Launch& launch = plan_->launches[index];
        // Addressed once, in bind_contexts.
        if (!contexts_.at(index)->enqueueV3(stream)) {
          throw Error(VIDM_RT_ERROR_ENGINE,
                      "TensorRT: " + launch.graph + " failed to run: " + logger_.last_error);
        }
        break;
      }
      case Op::kNoise:
        cuda_check(launch_gaussian_noise(buffer(op.buffer).device,
                                         static_cast<const unsigned int*>(noise_base_.get()),
                                         op.step, batch, per_video, stream),
                   "noise kernel");
        break;
      case Op::kZero:
        cuda_check(cudaMemsetAsync(buffer(op.buffer).device, 0,
                                   buffer(op.buffer).row_count * sizeof(float), stream),
                   "cudaMemsetAsync");
        break;
      case Op::kCopy:
        cuda_check(cudaMemcpyAsync(buffer(op.buffer).device, buffer(op.source).device,
                                   buffer(op.buffer).row_count * sizeof(float),
                                   cudaMemcpyDeviceToDevice, stream),
                   "cudaMemcpyAsync");
        break;
    }
  }
}

// One program recorded as a CUDA graph, or null with the reason in `why` (nothing has run: a
// capture only records).
cuda::GraphExec TensorRTEngine::capture(const std::vector<Op>& ops, std::string& why) {
  cudaStream_t stream = stream_.get();
  cudaError_t status = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (status != cudaSuccess) {
    why = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(status);
    cudaGetLastError();
    return nullptr;
  }
  try {
    execute(ops);
  } catch (const Error& e) {
    why = e.what();
  } catch (...) {  // not a CUDA or TensorRT failure: leave the stream out of capture, rethrow
    cudaGraph_t partial = nullptr;
    cudaStreamEndCapture(stream, &partial);
    cuda::Graph discard(partial);
    throw;
  }
  cudaGraph_t raw = nullptr;
  status = cudaStreamEndCapture(stream, &raw);  // ends the capture on every path
  cuda::Graph graph(raw);
  if (!why.empty()) {
    cudaGetLastError();
    return nullptr;
  }
  if (status != cudaSuccess || !graph) {
    why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(status);
    cudaGetLastError();
    return nullptr;
  }
  cudaGraphExec_t exec = nullptr;
  // The WithFlags form has the same signature in CUDA 11.4+, 12 and 13 (cudaGraphInstantiate
  // took 5 arguments before CUDA 12; TensorRT 10 still ships CUDA 11.8 builds).
  status = cudaGraphInstantiateWithFlags(&exec, graph.get(), 0);
  if (status != cudaSuccess) {
    why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(status);
    cudaGetLastError();
    return nullptr;
  }
  return cuda::GraphExec(exec);
}

void TensorRTEngine::run(const std::string& name, const NoiseAddress& a) {
  const std::vector<Op>& ops = plan_->programs.at(name);
  // The noise kernel reads video, frame and seed from noise_base_ when it runs (at replay
  // time for a captured graph), so one capture per program serves every frame and every seed.
  std::vector<std::uint32_t> base(4 * static_cast<std::size_t>(plan_->batch));
  noise_batch_words(a.seed, a.first_video, a.frame, plan_->batch, base.data());
  // A pageable source: the CUDA runtime stages it before the call returns.
  cuda_check(cudaMemcpyAsync(noise_base_.get(), base.data(), base.size() * sizeof base[0],
                             cudaMemcpyHostToDevice, stream_.get()),
             "cudaMemcpyAsync");
  Program& program = programs_[name];
  // TensorRT allocates lazily on the first enqueue, which a capture cannot record: run each
  // program eagerly once, then capture it and replay the graph from then on.
  if (program.runs++ == 0 || program.eager) {
    execute(ops);
    return;
  }
  if (!program.exec) {
    std::string why;
    program.exec = capture(ops, why);
    if (!program.exec) {
      program.eager = true;
      if (!warned_eager_) {
        warned_eager_ = true;
        std::fprintf(stderr,
                     "vidm_rt: warning: CUDA graph capture of the %s program failed (%s); its "
                     "launches run one by one from now on (slower, same frames)\n",
                     name.c_str(), why.c_str());
      }
      execute(ops);
      return;
    }
  }
  cuda_check(cudaGraphLaunch(program.exec.get(), stream_.get()), "cudaGraphLaunch");
}

}  // namespace vidm
