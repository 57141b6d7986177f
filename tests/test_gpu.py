"""GPU-only checks, marked `gpu`: each skips with its reason where CUDA, cuda-python, the noise
kernel source, onnxruntime-gpu or TensorRT is absent. Run them on a GPU machine with
`pytest -m gpu tests/test_gpu.py` (scripts/gpu_check.sh does).

This module imports without onnx and onnxruntime: where they are missing (a machine with only
torch, CuPy and cuda-python) the tiny model goes into a torch-only directory instead of an
export, which the torch tests run and the ONNX Runtime and TensorRT tests skip."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from vidm_rt import noise
from vidm_rt.eval.shapes import psnr_per_frame
from vidm_rt.runtime import RuntimeOptions, VideoGenerator
from vidm_rt.runtime.device_noise import KERNEL_FILE
from vidm_rt.runtime.frame import NoiseAddress


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _cuda_device() -> bool:
    if not _module("cuda.bindings.runtime"):
        return False
    from cuda.bindings import runtime

    from vidm_rt.runtime.device_noise import status_code

    status, count = runtime.cudaGetDeviceCount()
    return status_code(status) == 0 and count > 0


needs_torch_cuda = pytest.mark.skipif(not _torch_cuda(), reason="torch has no CUDA device here")
needs_cuda_python = pytest.mark.skipif(not _cuda_device(),
                                       reason="no cuda-python (cuda.bindings) or no CUDA device")
needs_kernel = pytest.mark.skipif(not KERNEL_FILE.is_file(),
                                  reason=f"{KERNEL_FILE.name} is not in this checkout")
needs_tensorrt = pytest.mark.skipif(not _module("tensorrt"), reason="TensorRT is not installed")
HAS_ONNX = all(_module(m) for m in ("onnx", "onnxruntime", "onnxscript"))
needs_export = pytest.mark.skipif(not HAS_ONNX, reason="no onnx/onnxruntime: nothing to export")


def _cuda_ep() -> bool:
    if not _module("onnxruntime"):
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


needs_cuda_ep = pytest.mark.skipif(not _cuda_ep(),
                                   reason="onnxruntime has no CUDA execution provider here")

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, tiny_models):
    """The tiny model (ancestral, 4 steps, 5 frames): an export where onnx is installed, else a
    torch-only directory."""
    from vidm_rt.checkpoint import Checkpoint, save_checkpoint

    root = tmp_path_factory.mktemp("gpu")
    cfg, content, motion = tiny_models
    if HAS_ONNX:
        from vidm_rt.export import ExportOptions, export_checkpoint

        ckpt = save_checkpoint(root / "tiny.safetensors", cfg, content, motion)
        return export_checkpoint(ckpt, ExportOptions(name="tiny", out_dir=root,
                                                     sampler="ancestral", steps=4, frames=5))[0]
    from vidm_rt.export.torch_only import write_torch_only

    return write_torch_only(Checkpoint(cfg, content, motion), root / "tiny", sampler="ancestral",
                            steps=4, frames=5)


def video(gen: VideoGenerator, seed: int = 3) -> np.ndarray:
    return np.stack(list(gen.generate(5, seed=seed)), axis=1)


@needs_cuda_python
@needs_kernel
def test_device_noise_equals_numpy_bit_for_bit() -> None:
    from vidm_rt.runtime.cuda_memory import CudaBindingsMemory

    mem = CudaBindingsMemory(0)
    try:
        kernel, stream = mem.noise_kernel(), mem.create_stream()
        batch, shape = 3, (3, 64, 64)
        per_video = int(np.prod(shape))
        out = mem.malloc(batch * per_video * 4)
        base = mem.malloc(16 * batch)
        host_base = mem.host_alloc(16 * batch, mapped=False)
        address = NoiseAddress(batch)
        host_out = mem.host_alloc(batch * per_video * 4, mapped=False)
        cases = [(1234, 0, 1, 2), (2**64 - 1, 7, 40, 0), (5, 2**31, 3, 99)]
        for seed, video0, frame, step in cases:
            address.set_batch(seed, video0, frame)
            host_base.array.view(np.uint32)[:] = address.as_buffer().ravel()
            mem.copy_async(base, host_base.array.ctypes.data, 16 * batch, stream)
            kernel.launch(out, base, step, batch, per_video, stream)
            mem.copy_async(host_out.array.ctypes.data, out, batch * per_video * 4, stream)
            mem.synchronize(stream)
            want = noise.gaussian_batch(seed, np.arange(video0, video0 + batch), frame, step, shape)
            got = host_out.array.view(np.float32).reshape(want.shape)
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
        # A captured launch reads the frame number and the seed from device memory at replay
        # time.
        graph = mem.capture(stream, [lambda: kernel.launch(out, base, 1, batch, per_video,
                                                           stream)])
        for seed, frame in ((9, 11), (9, 12), (2**40 + 7, 12)):
            address.set_batch(seed, 0, frame)
            host_base.array.view(np.uint32)[:] = address.as_buffer().ravel()
            mem.copy_async(base, host_base.array.ctypes.data, 16 * batch, stream)
            mem.launch_graph(graph, stream)
            mem.copy_async(host_out.array.ctypes.data, out, batch * per_video * 4, stream)
            mem.synchronize(stream)
            want = noise.gaussian_batch(seed, np.arange(batch), frame, 1, shape)
            np.testing.assert_array_equal(host_out.array.view(np.float32).reshape(want.shape),
                                          want)
        # Rows with their own seed, video and frame (continuous batching's slots).
        rows = [(2**63 + 1, 4, 0), (3, 0, 17), (3, 9, 2)]
        for b, (seed, video, frame) in enumerate(rows):
            address.set_row(b, seed, video, frame)
        host_base.array.view(np.uint32)[:] = address.as_buffer().ravel()
        mem.copy_async(base, host_base.array.ctypes.data, 16 * batch, stream)
        mem.launch_graph(graph, stream)
        mem.copy_async(host_out.array.ctypes.data, out, batch * per_video * 4, stream)
        mem.synchronize(stream)
        want = noise.gaussian_slots(*zip(*rows, strict=True), 1, shape)
        np.testing.assert_array_equal(host_out.array.view(np.float32).reshape(want.shape), want)
    finally:
        mem.close()


@needs_torch_cuda
def test_torch_cuda_backend_equals_cpu_reference(export_dir) -> None:
    cpu = video(VideoGenerator(export_dir, backend="torch"))
    gpu = video(VideoGenerator(export_dir, backend="torch", device="cuda"))
    assert psnr_per_frame(cpu, gpu).min() >= 45


@needs_torch_cuda
@needs_cuda_python
@needs_kernel
def test_cuda_graph_replay_equals_plain_launches(export_dir) -> None:
    graphs = VideoGenerator(export_dir, backend="torch", device="cuda")
    eager = VideoGenerator(export_dir, backend="torch", device="cuda",
                           options=RuntimeOptions(cuda_graphs=False))
    replayed, plain = video(graphs), video(eager)
    assert graphs.program("motion").replay is not None
    assert eager.program("motion").replay is None
    np.testing.assert_allclose(replayed, plain, rtol=0, atol=1e-5)


@needs_torch_cuda
def test_torch_cuda_fp16_autocast_stays_close(export_dir) -> None:
    fp32 = video(VideoGenerator(export_dir, backend="torch", device="cuda"))
    fp16 = video(VideoGenerator(export_dir, backend="torch", device="cuda",
                                options=RuntimeOptions(precision="fp16")))
    assert np.isfinite(fp16).all()
    assert psnr_per_frame(fp32, fp16).min() >= 25


@needs_export
@needs_tensorrt
@needs_cuda_python
@needs_kernel
def test_tensorrt_fp32_engines_equal_onnxruntime(export_dir, tmp_path) -> None:
    from vidm_rt.build import BuildOptions, build_engines

    engines = build_engines(export_dir, BuildOptions(precision="fp32", out=tmp_path / "e"))
    reference = video(VideoGenerator(export_dir))
    got = video(VideoGenerator(engines, backend="tensorrt", device="cuda"))
    assert psnr_per_frame(reference, got).min() >= 45


@needs_export
@needs_cuda_ep
@needs_cuda_python
@needs_kernel
def test_onnxruntime_cuda_equals_cpu(export_dir) -> None:
    """ONNX Runtime on CUDA: device noise on our stream, device-bound buffers, no per-run wait."""
    cpu = video(VideoGenerator(export_dir))
    with VideoGenerator(export_dir, device="cuda") as gen:
        assert gen.backend.device_noise
        got = video(gen)
    assert psnr_per_frame(cpu, got).min() >= 45


@needs_cuda_python
def test_cuda_memory_close_gives_the_memory_back() -> None:
    from cuda.bindings import runtime

    from vidm_rt.runtime.cuda_memory import CudaBindingsMemory
    from vidm_rt.runtime.device_noise import cuda_call

    runtime.cudaFree(0)  # the context exists before the first reading
    before, _ = cuda_call(runtime.cudaMemGetInfo(), "cudaMemGetInfo")
    mem = CudaBindingsMemory(0)
    mem.malloc(256 << 20)
    mem.host_alloc(1 << 20, mapped=True)
    mem.create_stream()
    during, _ = cuda_call(runtime.cudaMemGetInfo(), "cudaMemGetInfo")
    mem.close()
    mem.close()
    after, _ = cuda_call(runtime.cudaMemGetInfo(), "cudaMemGetInfo")
    assert before - during >= 256 << 20
    assert after >= before - (8 << 20)  # back, up to the driver's own bookkeeping


def _gpu_count() -> int:
    if _torch_cuda():
        import torch

        return torch.cuda.device_count()
    if _cuda_device():
        from cuda.bindings import runtime

        return int(runtime.cudaGetDeviceCount()[1])
    return 0


needs_two_gpus = pytest.mark.skipif(_gpu_count() < 2, reason="fewer than two GPUs here")
# The GPU backends a test can run here, each skipped with its reason where it cannot.
GPU_BACKENDS = [
    pytest.param("tensorrt", marks=[needs_export, needs_tensorrt, needs_cuda_python,
                                    needs_kernel]),
    pytest.param("onnxruntime", marks=[needs_export, needs_cuda_ep, needs_cuda_python,
                                       needs_kernel]),
    pytest.param("torch", marks=[needs_torch_cuda]),
]


def _generator(export_dir, backend: str, tmp_path, device: str = "cuda", **kwargs):
    """A generator of `export_dir` on `backend` at `device` (TensorRT: fp32 engines built for
    that device)."""
    if backend == "tensorrt":
        from vidm_rt.build import BuildOptions, build_engines

        index = int(device.split(":")[1]) if ":" in device else 0
        engines = build_engines(export_dir, BuildOptions(precision="fp32", device=index,
                                                         out=tmp_path / f"e{index}"))
        return VideoGenerator(engines, backend="tensorrt", device=device, **kwargs)
    return VideoGenerator(export_dir, backend=backend, device=device, **kwargs)


def _cpu_reference(export_dir, **kwargs) -> np.ndarray:
    return video(VideoGenerator(export_dir, backend="onnxruntime" if HAS_ONNX else "torch",
                                **kwargs))


@needs_cuda_python
def test_device_buffers_are_zeroed_over_reused_memory() -> None:
    """cudaMalloc hands freed memory back with its old bytes: buffers allocated after a
    generator freed memory full of NaN bits still start as zeros."""
    from vidm_rt.runtime.cuda_memory import CudaBindingsMemory
    from vidm_rt.runtime.device_buffers import DeviceBuffers
    from vidm_rt.runtime.plan import BufferSpec

    shape = (2, 3, 64, 64)
    nbytes = int(np.prod(shape)) * 4
    first = CudaBindingsMemory(0)
    stream = first.create_stream()
    dirty = [first.malloc(nbytes) for _ in range(4)]
    host = first.host_alloc(nbytes, mapped=False)
    host.array[:] = 0xFF   # NaN as float32
    for address in dirty:
        first.copy_async(address, host.array.ctypes.data, nbytes, stream)
    first.synchronize(stream)
    first.close()
    second = CudaBindingsMemory(0)
    try:
        stream = second.create_stream()
        specs = [BufferSpec("noise", shape), BufferSpec("x0.1", shape),
                 BufferSpec("x.0", shape, host=True)]
        buffers = DeviceBuffers(second, stream, specs)
        out = second.host_alloc(nbytes, mapped=False)
        for name in ("noise", "x0.1"):
            second.copy_async(out.array.ctypes.data, buffers.layout.addresses[name], nbytes,
                              stream)
            second.synchronize(stream)
            assert not out.array.any(), name
        assert not buffers.read("x.0").any()
    finally:
        second.close()


@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("sampler", ["ddim", "dpmpp2m"])
def test_samplers_without_noise_steps(export_dir, tmp_path, backend, sampler) -> None:
    """DDIM and DPM-Solver++ never write the noise buffer that every update reads (x 0)."""
    from vidm_rt.schedule import sampler_table

    clip = VideoGenerator(export_dir, backend="torch").table.clip_x0
    table = sampler_table(sampler, 4, clip_x0=clip)
    reference = _cpu_reference(export_dir, table=table)
    with _generator(export_dir, backend, tmp_path, table=table) as gen:
        got = video(gen)
    assert np.isfinite(got).all()
    assert psnr_per_frame(reference, got).min() >= 45


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_two_generators_in_one_process(export_dir, tmp_path, backend) -> None:
    """A second generator after the first was closed (its memory reused) and two at once give
    the same frames."""
    from vidm_rt.schedule import sampler_table

    table = sampler_table("ddim", 4, clip_x0=VideoGenerator(export_dir, backend="torch")
                          .table.clip_x0)
    with _generator(export_dir, backend, tmp_path, table=table) as gen:
        first = video(gen)
    with _generator(export_dir, backend, tmp_path, table=table) as a, \
            _generator(export_dir, backend, tmp_path, table=table) as b:
        again, other = video(a), video(b)
    # The same engines on the same GPU: equal up to the kernels' own run-to-run variation.
    assert np.isfinite(first).all()
    np.testing.assert_allclose(again, first, rtol=0, atol=1e-4)
    np.testing.assert_allclose(other, first, rtol=0, atol=1e-4)


@needs_export
@needs_tensorrt
@needs_cuda_python
@needs_kernel
def test_tensorrt_fp16_and_int8_engines(export_dir, tmp_path) -> None:
    """FP16 engines against ONNX Runtime's FP16 emulation; INT8 engines built from the INT8 +
    FP16 graphs calibrate writes, against ONNX Runtime's INT8 (the content frame: later frames
    carry each engine's own rounding forward)."""
    import shutil

    from vidm_rt.build import BuildOptions, build_engines
    from vidm_rt.export.calibrate import quantize_export, record_calibration
    from vidm_rt.manifest import load_manifest

    fp16 = build_engines(export_dir, BuildOptions(precision="fp16", out=tmp_path / "fp16"))
    emulated = video(VideoGenerator(export_dir, options=RuntimeOptions(precision="fp16",
                                                                       emulate_fp16=True)))
    with VideoGenerator(fp16, backend="tensorrt", device="cuda") as gen:
        got = video(gen)
    assert np.isfinite(got).all() and psnr_per_frame(emulated, got).min() >= 30
    export = tmp_path / "export"
    shutil.copytree(export_dir, export)
    record_calibration(export, tmp_path / "calib", videos=2, frames=3)
    quantize_export(export, tmp_path / "calib")
    int8 = build_engines(export, BuildOptions(precision="int8", out=tmp_path / "int8"))
    assert load_manifest(int8).graphs["motion"].source == "motion.int8.fp16.onnx"
    cpu = video(VideoGenerator(export, options=RuntimeOptions(precision="int8")))
    with VideoGenerator(int8, backend="tensorrt", device="cuda") as gen:
        got = video(gen)
    assert np.isfinite(got).all() and psnr_per_frame(cpu, got)[0] >= 30


@needs_two_gpus
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_second_gpu_through_the_slot_worker(export_dir, tmp_path, backend) -> None:
    """`serve --device cuda:1`: the slot worker thread makes device 1 current."""
    from vidm_rt.testing.exports import served_video

    reference = _cpu_reference(export_dir)[0]
    with _generator(export_dir, backend, tmp_path, device="cuda:1") as gen:
        frames = served_video(gen, seed=3, frames=5)
    assert psnr_per_frame(reference[None], frames[None]).min() >= 45
