"""What the GPU paths would get wrong on real CUDA, TensorRT and ONNX Runtime, shown on the CPU
by fakes as strict as the real semantics (tests/fake_gpu.py): uninitialised memory, contexts
tied to a capture, the per-thread current device, a CUDA provider that did not load, a failed
capture's error state, an NVRTC older than the GPU."""

from __future__ import annotations

import sys
import threading
import types

import numpy as np
import pytest

from tests import fake_cuda_runtime, fake_tensorrt
from tests.fake_gpu import FakeCuda, current_device
from tests.fake_ort_cuda import make_onnxruntime
from vidm_rt.runtime import VideoGenerator, cuda_memory, device_noise
from vidm_rt.runtime.device_buffers import DeviceBuffers
from vidm_rt.runtime.plan import BufferSpec
from vidm_rt.schedule import sampler_table
from vidm_rt.testing.exports import build_tiny, served_video, video

# ---- uninitialised device memory -------------------------------------------------------------


def test_device_buffers_start_zeroed() -> None:
    cuda = FakeCuda()
    stream = cuda.create_stream()
    specs = [BufferSpec("noise", (1, 3, 4, 4)), BufferSpec("coef", (3, 7), table=True, host=True),
             BufferSpec("noise_base", (1, 4), dtype="uint32", host=True)]
    fresh = cuda.allocation(cuda.malloc(64)).view(np.float32)
    assert np.isnan(fresh).all()  # the fake's new memory, as cudaMalloc may return it
    for zero_copy in (False, True):
        buffers = DeviceBuffers(cuda, stream, specs, zero_copy=zero_copy)
        for spec in specs:
            address = buffers.layout.addresses[spec.name]
            assert not cuda.resolve(address, spec.nbytes).any(), spec.name


@pytest.mark.parametrize("backend", ["tensorrt", "onnxruntime"])
@pytest.mark.parametrize("sampler", ["ddim", "dpmpp2m"])
def test_samplers_without_noise_steps_on_the_gpu_paths(export_dir, tmp_path, monkeypatch,
                                                       backend, sampler) -> None:
    """The update reads `noise` on every step, scaled by 0 where the sampler adds none; with no
    noisy step nothing ever writes it, so a buffer left as allocated turns every frame NaN.
    (The graphs do not depend on the sampler: its table replaces the export's.)"""
    ref = VideoGenerator(export_dir)
    table = sampler_table(sampler, 3, clip_x0=ref.table.clip_x0)
    assert not table.noise_std.any()
    reference = video(VideoGenerator(export_dir, table=table))
    cuda = FakeCuda()
    fake_tensorrt.install(monkeypatch, cuda)
    if backend == "tensorrt":
        gen = VideoGenerator(build_tiny(export_dir, tmp_path, precision="fp32"),
                             backend="tensorrt", device="cuda", table=table)
    else:
        monkeypatch.setitem(sys.modules, "onnxruntime", make_onnxruntime(cuda))
        gen = VideoGenerator(export_dir, device="cuda", table=table)
    with gen:
        got = video(gen)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-5)


# ---- execution contexts and captures ----------------------------------------------------------


def test_the_fake_refuses_re_addressing_a_captured_context(export_dir, tmp_path,
                                                           monkeypatch) -> None:
    """The fake's rule the TensorRT backend is held to (one context per binding set)."""
    cuda = FakeCuda()
    trt = fake_tensorrt.install(monkeypatch, cuda)
    engines = build_tiny(export_dir, tmp_path, precision="fp32")
    engine = trt.Runtime(None).deserialize_cuda_engine((engines / "flow.plan").read_bytes())
    context = engine.create_execution_context(trt.ExecutionContextAllocationStrategy.STATIC)
    memory = {n: cuda.malloc(4 * int(np.prod(engine.get_tensor_shape(n)))) for n in engine.names}
    for name, address in memory.items():
        context.set_tensor_address(name, address)
    context.set_tensor_address("flow", memory["flow"])  # eager re-addressing is fine
    stream = cuda.create_stream()
    cuda.capture(stream, [lambda: context.execute_async_v3(stream)])
    context.set_tensor_address("flow", memory["flow"])  # the same address: no change
    with pytest.raises(AssertionError, match="re-addressing an execution context"):
        context.set_tensor_address("flow", cuda.malloc(4 * 2 * 32 * 32))


def test_capture_rules_of_the_fake() -> None:
    cuda = FakeCuda()
    stream = cuda.create_stream()
    device, host = cuda.malloc(256), cuda.host_alloc(256, mapped=False).array.ctypes.data
    for what, launch in [("cudaMalloc", lambda: cuda.malloc(256)),
                         ("cudaStreamSynchronize", lambda: cuda.synchronize(stream)),
                         ("host copy", lambda: cuda.copy_async(device, host, 256, stream))]:
        with pytest.raises(RuntimeError, match=f"{what}.* during a stream capture"):
            cuda.capture(stream, [launch])
    cuda.capture(stream, [lambda: cuda.copy_async(device, device, 256, stream)])  # on-device: fine
    errors: list[Exception] = []

    def other_thread() -> None:
        try:
            cuda.synchronize(stream)
        except RuntimeError as e:
            errors.append(e)

    cuda.open(1)
    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert "device 0 is current on this thread" in str(errors[0])


# ---- the current device is per thread -------------------------------------------------------


def test_slot_worker_runs_on_the_generators_device(export_dir, tmp_path, monkeypatch) -> None:
    """`serve --device cuda:1`: the slot scheduler's worker thread makes device 1 current
    before it launches (a new thread starts on device 0)."""
    cuda = FakeCuda()
    fake_tensorrt.install(monkeypatch, cuda)
    engines = build_tiny(export_dir, tmp_path, precision="fp32")
    reference = video(VideoGenerator(export_dir), frames=3, seed=7)[0]
    with VideoGenerator(engines, backend="tensorrt", device="cuda:1") as gen:
        assert cuda.device == 1 and current_device() == 1
        frames = served_video(gen, seed=7, frames=3, timeout=120)
    np.testing.assert_allclose(frames, reference, rtol=0, atol=1e-5)


def test_cuda_memory_makes_its_device_current_on_any_thread(monkeypatch) -> None:
    rt = fake_cuda_runtime.install(monkeypatch)
    mem = cuda_memory.CudaBindingsMemory(1)
    assert rt.device_of_this_thread() == 1
    seen: list[int] = []

    def worker() -> None:
        seen.append(rt.device_of_this_thread())
        mem.make_current()
        seen.append(rt.device_of_this_thread())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [0, 1]
    mem.close()


# ---- ONNX Runtime's CUDA provider ------------------------------------------------------------


def test_onnxruntime_cuda_provider_that_did_not_load_is_refused(export_dir, monkeypatch) -> None:
    cuda = FakeCuda()
    monkeypatch.setitem(sys.modules, "onnxruntime",
                        make_onnxruntime(cuda, cuda_loads=False))
    monkeypatch.setattr(cuda_memory, "open_device", cuda.open)
    with pytest.raises(ValueError, match=r"onnxruntime cannot run on CUDA here: .*vidm-rt\[gpu\]"):
        VideoGenerator(export_dir, device="cuda")
    assert cuda.calls.count("close") == 1   # what it opened is released


# ---- a failed capture's error state ---------------------------------------------------------


@pytest.mark.parametrize("fail", ["cudaStreamEndCapture", "cudaGraphInstantiate"])
def test_failed_capture_clears_the_error_state(monkeypatch, fail) -> None:
    rt = fake_cuda_runtime.install(monkeypatch, fail=(fail,))
    mem = cuda_memory.CudaBindingsMemory(0)
    stream = mem.create_stream()
    with pytest.raises(RuntimeError, match=fail):
        mem.capture(stream, [lambda: mem.memset_async(0, 4, stream)])
    assert rt.error == 0   # the eager launches that follow do not inherit it
    mem.close()


# ---- NVRTC older than the GPU ---------------------------------------------------------------


def fake_nvrtc(monkeypatch, supported: list[int]) -> list[list[bytes]]:
    """A `cuda.bindings.nvrtc` that knows `supported` architectures; returns the option lists
    it compiled with."""
    compiled: list[list[bytes]] = []
    nvrtc = types.ModuleType("cuda.bindings.nvrtc")

    def compile_program(program, n, options):
        compiled.append(list(options))
        arch = options[0].split(b"=")[1].decode()
        return (0 if int(arch.split("_")[1]) in supported else 1,)

    nvrtc.nvrtcGetSupportedArchs = lambda: (0, supported)
    nvrtc.nvrtcCreateProgram = lambda *args: (0, "program")
    nvrtc.nvrtcCompileProgram = compile_program
    nvrtc.nvrtcGetProgramLogSize = lambda program: (0, 3)
    nvrtc.nvrtcGetProgramLog = lambda program, log: (0,)
    nvrtc.nvrtcGetCUBINSize = lambda program: (0, 5)
    nvrtc.nvrtcGetCUBIN = lambda program, out: (0,)
    nvrtc.nvrtcGetPTXSize = lambda program: (0, 4)
    nvrtc.nvrtcGetPTX = lambda program, out: (0,)
    nvrtc.nvrtcDestroyProgram = lambda program: (0,)
    bindings = types.ModuleType("cuda.bindings")
    bindings.nvrtc = nvrtc
    for name, module in (("cuda", types.ModuleType("cuda")), ("cuda.bindings", bindings),
                         ("cuda.bindings.nvrtc", nvrtc)):
        monkeypatch.setitem(sys.modules, name, module)
    return compiled


def test_noise_kernel_falls_back_to_ptx_when_nvrtc_is_older_than_the_gpu(monkeypatch) -> None:
    compiled = fake_nvrtc(monkeypatch, [75, 80, 86, 87, 89, 90])
    assert len(device_noise.compile_kernel(8, 7)) == 5              # its own cubin
    assert len(device_noise.compile_kernel(12, 0)) == 4             # PTX for the driver
    assert [c[0] for c in compiled] == [b"--gpu-architecture=sm_87",
                                        b"--gpu-architecture=compute_90"]
    with pytest.raises(RuntimeError, match=r"compiles for \[75.*not for compute capability 7.0"):
        device_noise.compile_kernel(7, 0)
