"""The NVRTC noise kernel is compiled once per device: a module loaded in one device's context
cannot launch on another."""

from __future__ import annotations

import sys
import types

from vidm_rt.runtime import device_noise


def test_one_kernel_per_device(monkeypatch) -> None:
    current = {"device": 0}
    runtime = types.SimpleNamespace(cudaGetDevice=lambda: (0, current["device"]))
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = runtime
    bindings.nvrtc = types.ModuleType("cuda.bindings.nvrtc")
    cuda = types.ModuleType("cuda")
    cuda.bindings = bindings
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.nvrtc", bindings.nvrtc)
    built: list[int] = []
    monkeypatch.setattr(device_noise, "NoiseKernel",
                        lambda device: built.append(device) or f"kernel{device}")
    device_noise._kernel.cache_clear()
    try:
        assert device_noise.load_noise_kernel() == "kernel0"
        assert device_noise.load_noise_kernel() == "kernel0"
        current["device"] = 1
        assert device_noise.load_noise_kernel() == "kernel1"
        assert built == [0, 1]
    finally:
        device_noise._kernel.cache_clear()
