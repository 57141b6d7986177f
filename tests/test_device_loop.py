"""The GPU path's lifetimes and its device-resident loop, on the CPU: CudaBindingsMemory over a
recording `cuda.bindings.runtime` (tests/fake_cuda_runtime.py), the TensorRT backend over the
fake CUDA/TensorRT pair (tests/fake_gpu.py), and ONNX Runtime's CUDA path over a fake CUDA
provider (tests/fake_ort_cuda.py).

The fakes run the same ONNX Runtime graphs and the same numpy noise as the reference, so on
the CPU these tests prove binding order, shapes and buffer lifetimes, not GPU numerics
(TensorRT's FP16/INT8 kernels, the CUDA noise kernel): those are checked on a GPU by
tests/test_gpu.py (`pytest -m gpu`, scripts/gpu_check.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests import fake_cuda_runtime, fake_tensorrt
from tests.fake_gpu import FakeCuda
from tests.fake_ort_cuda import make_onnxruntime
from tests.fake_tensorrt import FakeContext
from vidm_rt.runtime import RuntimeOptions, VideoGenerator, cuda_memory
from vidm_rt.testing.exports import build_tiny as build
from vidm_rt.testing.exports import video

LAUNCHES = {"execute_async_v3", "noise_kernel", "memset", "memcpy_dtod", "graph_launch"}


@pytest.fixture
def runtime(monkeypatch):
    """Installs a FakeCudaRuntime as cuda.bindings.runtime."""
    return lambda **kwargs: fake_cuda_runtime.install(monkeypatch, **kwargs)


@pytest.fixture
def engines(export_dir, tmp_path, monkeypatch):
    fake_tensorrt.install(monkeypatch, FakeCuda())
    return build(export_dir, tmp_path, precision="fp32")


def gpu(engines, monkeypatch, cuda: FakeCuda | None = None, **options) -> tuple:
    cuda = cuda or FakeCuda()
    fake_tensorrt.install(monkeypatch, cuda)
    gen = VideoGenerator(engines, backend="tensorrt", device="cuda",
                         options=RuntimeOptions(**options))
    return gen, cuda


def assert_all_freed_once(cuda: FakeCuda) -> None:
    assert cuda.frees and set(cuda.frees.values()) == {1}, cuda.frees
    assert cuda.calls.count("close") == 1 and not cuda.graphs


# ---- CudaBindingsMemory --------------------------------------------------------------------


def test_cuda_memory_frees_everything_once_in_order(runtime) -> None:
    rt = runtime()
    with cuda_memory.CudaBindingsMemory(0) as mem:
        device = [mem.malloc(1024), mem.malloc(256)]
        pinned = mem.host_alloc(64, mapped=False)
        mapped = mem.host_alloc(64, mapped=True)
        assert pinned.device_pointer is None and mapped.device_pointer == mapped.array.ctypes.data
        stream = mem.create_stream()
        graph = mem.capture(stream, [lambda: mem.memset_async(device[0], 1024, stream)])
        mem.launch_graph(graph, stream)
    mem.close()  # idempotent: nothing is freed twice
    assert sorted(rt.handles("cudaFree")) == sorted(device)
    assert sorted(rt.handles("cudaFreeHost")) == sorted(
        [pinned.array.ctypes.data, mapped.array.ctypes.data])
    assert rt.handles("cudaStreamDestroy") == [stream]
    assert rt.handles("cudaGraphExecDestroy") == [graph] and rt.count("cudaGraphDestroy") == 1
    names = [n for n, _ in rt.calls]
    last_sync = len(names) - 1 - names[::-1].index("cudaStreamSynchronize")
    order = [names.index(n) for n in ("cudaGraphExecDestroy", "cudaFree", "cudaFreeHost",
                                      "cudaStreamDestroy")]
    assert last_sync < order[0] and order == sorted(order)
    assert not hasattr(rt, "cudaSetDeviceFlags")  # process-wide state is never touched


def test_failed_device_pointer_still_frees_the_host_memory(runtime) -> None:
    rt = runtime(fail=("cudaHostGetDevicePointer",))
    mem = cuda_memory.CudaBindingsMemory(0)
    with pytest.raises(RuntimeError, match="cudaHostGetDevicePointer"):
        mem.host_alloc(64, mapped=True)
    mem.close()
    assert rt.handles("cudaFreeHost") == rt.handles("cudaHostAlloc")
    assert len(rt.handles("cudaFreeHost")) == 1


@pytest.mark.parametrize("fail", ["launch", "cudaStreamEndCapture", "cudaGraphInstantiate"])
def test_failed_capture_ends_it_and_keeps_no_graph(runtime, fail) -> None:
    rt = runtime(fail=() if fail == "launch" else (fail,))
    mem = cuda_memory.CudaBindingsMemory(0)
    stream = mem.create_stream()

    def launch() -> None:
        if fail == "launch":
            raise RuntimeError("launch failed")

    with pytest.raises(RuntimeError):
        mem.capture(stream, [launch])
    assert rt.count("cudaStreamEndCapture") == 1  # the stream left capture mode
    mem.close()
    # A recorded graph is destroyed once, by the failed capture; close has none to destroy.
    recorded = [] if fail == "cudaStreamEndCapture" else rt.handles("cudaStreamEndCapture")
    assert rt.handles("cudaGraphDestroy") == recorded
    assert rt.count("cudaGraphExecDestroy") == 0


# ---- TensorRT backend: lifetimes -----------------------------------------------------------


def test_generator_close_frees_everything_once(engines, monkeypatch) -> None:
    gen, cuda = gpu(engines, monkeypatch)
    video(gen)
    contexts = list(gen.backend.contexts.values())
    assert cuda.graphs  # captured graphs to release
    gen.close()
    gen.close()
    assert_all_freed_once(cuda)
    calls = cuda.calls
    assert calls.index("release_graphs") < calls.index("close")
    assert all(isinstance(c, FakeContext) for c in contexts)
    with pytest.raises(AssertionError, match="not in any live allocation"):
        cuda.resolve(contexts[0].device_memory[0], 1)  # the activation buffer is gone too


@pytest.mark.filterwarnings("ignore:CUDA-graph capture failed")
def test_exception_mid_video_frees_everything(engines, monkeypatch) -> None:
    cuda = FakeCuda()
    runs = {"n": 0}
    original = FakeContext.execute_async_v3

    def failing(self, stream):
        runs["n"] += 1
        if runs["n"] >= 20:  # the device stays lost
            raise RuntimeError("device lost")
        return original(self, stream)

    monkeypatch.setattr(FakeContext, "execute_async_v3", failing)
    with pytest.raises(RuntimeError, match="device lost"):
        with gpu(engines, monkeypatch, cuda)[0] as gen:
            for _ in gen.generate(4, seed=1):
                pass
    assert runs["n"] >= 20
    assert_all_freed_once(cuda)


def test_failed_construction_frees_what_it_made(engines, monkeypatch) -> None:
    cuda = FakeCuda()

    def no_kernel():
        raise ValueError("no NVRTC here")

    monkeypatch.setattr(cuda, "noise_kernel", no_kernel)
    with pytest.raises(ValueError, match="no NVRTC"):
        gpu(engines, monkeypatch, cuda)
    assert_all_freed_once(cuda)  # the activation buffer, allocated before the kernel failed


# ---- TensorRT backend: memory and the loop ---------------------------------------------------


def test_one_context_per_binding_set_on_one_activation_buffer(engines, monkeypatch) -> None:
    """Every launch of a frame has its own context, addressed once (a captured graph is tied to
    its contexts' state), and all of them run on one buffer of the largest need."""
    gen, cuda = gpu(engines, monkeypatch)
    video(gen)
    backend = gen.backend
    steps = gen.table.steps
    per_graph = {g: sum(1 for graph, _ in backend.contexts if graph == g) for g in backend.engines}
    # content and motion: one per step (x ping-pong, t row); update: one per step, shared by
    # both denoisers (the same buffers); flow: one.
    assert per_graph == {"content": steps, "motion": steps, "update": steps, "flow": 1}
    for (graph, table), context in backend.contexts.items():
        assert context.addressed == len(table) == len(backend.io[graph])
        assert context.addresses == dict(table)
    needs = {g: e.device_memory_size_v2 for g, e in backend.engines.items()}
    assert len(set(needs.values())) > 1  # the fake engines need different sizes
    memory = {c.device_memory for c in backend.contexts.values()}
    assert len(memory) == 1 and backend.activation_bytes == max(needs.values())
    (address, size), = memory
    assert size == max(needs.values()) and cuda.resolve(address, size).nbytes == size
    assert all(c.strategy == "USER_MANAGED" for c in backend.contexts.values())
    # Buffers: device-only ones are device memory, host-visible ones also pinned staging.
    specs = gen.plan.buffers
    assert cuda.calls.count("host_alloc") == sum(s.host for s in specs)
    assert cuda.calls.count("malloc") == len(specs) + 1  # + the activation buffer
    gen.close()


@pytest.mark.parametrize("options", [{}, {"cuda_graphs": False}, {"zero_copy": True}],
                         ids=["graphs", "eager", "zero-copy"])
def test_one_stream_one_sync_per_frame_no_host_copies(engines, monkeypatch, options) -> None:
    gen, cuda = gpu(engines, monkeypatch, **options)
    with gen:
        for _ in range(2):  # a second video replays the captures
            start = len(cuda.calls)
            for _ in gen.generate(4, seed=3):
                frame = cuda.calls[start:]
                start = len(cuda.calls)
                assert frame.count("sync") == 1 and frame[-1] == "sync"
                launched = [i for i, c in enumerate(frame) if c in LAUNCHES]
                inside = frame[launched[0]:launched[-1] + 1]
                assert "memcpy_htod" not in inside and "memcpy_dtoh" not in inside
                # Writes before the frame's launches (k, noise address), one read after.
                assert frame.count("memcpy_dtoh") == (0 if options.get("zero_copy") else 1)
        assert cuda.streams_used == {gen.backend.stream}
        assert cuda.calls.count("create_stream") == 1
        if options.get("zero_copy"):
            assert cuda.calls.count("host_alloc_mapped") == sum(s.host for s in gen.plan.buffers)


def test_failed_capture_falls_back_to_eager_with_one_warning(export_dir, engines,
                                                              monkeypatch) -> None:
    reference = video(VideoGenerator(export_dir))
    gen, cuda = gpu(engines, monkeypatch, FakeCuda(capture_fails=True))
    with gen, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = video(gen), video(gen)
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == [
        "CUDA-graph capture failed, running eager launches instead: cudaStreamEndCapture "
        "failed: cudaErrorStreamCaptureInvalidated"]
    assert cuda.calls.count("capture_begin") == 1 and "graph_launch" not in cuda.calls
    np.testing.assert_allclose(first, reference, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(second, first)
    assert_all_freed_once(cuda)


# ---- ONNX Runtime on CUDA -------------------------------------------------------------------


def test_onnxruntime_cuda_stays_on_the_device(export_dir, monkeypatch) -> None:
    """Device noise and device copies on the one stream every session computes on, device
    pointers bound once, one wait per frame, and the same frames as on the CPU."""
    reference = video(VideoGenerator(export_dir))
    cuda = FakeCuda()
    ort = make_onnxruntime(cuda)
    monkeypatch.setitem(sys.modules, "onnxruntime", ort)
    monkeypatch.setattr(cuda_memory, "open_device", lambda index=0: cuda)
    with VideoGenerator(export_dir, device="cuda") as gen:
        stream = gen.backend.stream
        assert {s.options["user_compute_stream"] for s in ort.sessions} == {str(stream)}
        start = len(cuda.calls)
        frames = []
        for frame in gen.generate(4, seed=5):
            frames.append(frame)
            calls, start = cuda.calls[start:], len(cuda.calls)
            assert calls.count("sync") == 1 and calls[-1] == "sync"
            launched = [i for i, c in enumerate(calls) if c in LAUNCHES | {"ort_run"}]
            inside = calls[launched[0]:launched[-1] + 1]
            assert "memcpy_htod" not in inside and "memcpy_dtoh" not in inside
            assert "noise_kernel" in inside
        assert cuda.streams_used == {stream}
    np.testing.assert_allclose(np.stack(frames, axis=1), reference, rtol=0, atol=1e-5)
    assert_all_freed_once(cuda)


# ---- the GPU check on a machine with torch alone -------------------------------------------


def test_torch_only_directory_runs_the_torch_backend(export_dir, tiny_models,
                                                     tmp_path) -> None:
    from vidm_rt.checkpoint import Checkpoint
    from vidm_rt.export.torch_only import write_torch_only
    from vidm_rt.manifest import ManifestError

    cfg, content, motion = tiny_models
    path = write_torch_only(Checkpoint(cfg, content, motion), tmp_path / "t", sampler="ancestral",
                            steps=3, frames=4)
    with VideoGenerator(path, backend="torch") as gen:
        got = video(gen)
    with VideoGenerator(export_dir, backend="torch") as gen:
        np.testing.assert_array_equal(got, video(gen))
    with pytest.raises(ManifestError, match="only the torch model.*--backend torch"):
        VideoGenerator(path)


def run_gpu_check(tmp_path, path: str) -> subprocess.CompletedProcess:
    script = Path(__file__).resolve().parent.parent / "scripts" / "gpu_check.sh"
    return subprocess.run(["bash", str(script)], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, "PATH": path,
                               "GPU_CHECK_RESULTS": str(tmp_path / "results")})


def test_gpu_check_without_a_gpu_says_so_and_succeeds(tmp_path) -> None:
    if shutil.which("nvidia-smi") or Path("/dev/nvidia0").exists():
        pytest.skip("this machine has an NVIDIA GPU")
    out = run_gpu_check(tmp_path, os.environ["PATH"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "gpu_check: no NVIDIA GPU here (no nvidia-smi, /dev/nvidia0 or Jetson release file): "
        "skipped"]


def test_gpu_check_runs_what_the_machine_allows_without_a_cuda_torch(tmp_path) -> None:
    """A GPU machine whose torch sees no CUDA device (a Jetson with TensorRT and a CPU torch):
    the check still runs the GPU tests, each of which skips with its own reason, and says which
    parts it skipped and why, instead of skipping everything."""
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'Fake GPU, 999.0, 8192 MiB'\n")
    smi.chmod(0o755)
    out = run_gpu_check(tmp_path, f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Fake GPU, 999.0, 8192 MiB"
    assert "gpu_check: TensorRT tests: skipped (TensorRT is not installed for this python)" in lines
    assert "gpu_check: torch CUDA tests and the benchmark: skipped (no CUDA torch)" in lines
    # pytest ran the GPU tests, and every one of them skipped with its reason.
    assert any(line.startswith("SKIPPED") for line in lines)
    assert not any(" passed" in line or " failed" in line for line in lines)
    assert lines[-1].startswith("gpu_check: done (exit status 0)")
    assert len(list((tmp_path / "results").glob("*-gpu-tests.xml"))) == 1
