"""The C library (built by scripts/cpp.sh into build/) against the Python runtime, through ctypes:
the same closed-form engine directory gives the same frames. Skipped where the C++ build is absent;
the CTest suite runs the same comparison from C++."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from vidm_rt.testing.closed_form import closed_form_frames, write_closed_form_engine  # noqa: E402

LIBRARY = Path(__file__).resolve().parents[1] / "build" / "libvidm_rt.so"


class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in
                ("batch", "channels", "height", "width", "steps", "default_frames", "has_content")]
    _fields_ += [("engine", ctypes.c_char_p)]


@pytest.fixture(scope="module")
def lib() -> ctypes.CDLL:
    if not LIBRARY.is_file():
        pytest.skip(f"{LIBRARY} is not built (bash scripts/cpp.sh builds it)")
    lib = ctypes.CDLL(str(LIBRARY))
    lib.vidm_rt_create.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
    lib.vidm_rt_get_info.argtypes = [ctypes.c_void_p, ctypes.POINTER(Info)]
    lib.vidm_rt_generate.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64,
                                     ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p]
    lib.vidm_rt_destroy.argtypes = [ctypes.c_void_p]
    lib.vidm_rt_last_error.restype = ctypes.c_char_p
    return lib


def _generate(lib, engine, shape: tuple[int, ...], frames: int, seed: int,
              first_video: int) -> tuple[Info, np.ndarray]:
    """The generator's info and `frames` frames of `engine` through the C API (NaN-filled first,
    so a frame it does not write shows)."""
    gen = ctypes.c_void_p()
    assert lib.vidm_rt_create(str(engine).encode(), 0, ctypes.byref(gen)) == 0, \
        lib.vidm_rt_last_error().decode()
    try:
        info = Info()
        assert lib.vidm_rt_get_info(gen, ctypes.byref(info)) == 0
        got = np.full(shape, np.nan, np.float32)
        status = lib.vidm_rt_generate(gen, frames, seed, first_video, None, got.ctypes.data,
                                      got.size, None, None)
        assert status == 0, lib.vidm_rt_last_error().decode()
    finally:
        lib.vidm_rt_destroy(gen)
    return info, got


def test_c_library_generates_the_python_frames(lib, tmp_path) -> None:
    engine = write_closed_form_engine(tmp_path / "engine", sampler="ancestral", steps=4, frames=3)
    want = closed_form_frames(engine, frames=3, seed=2**33 + 5, first_video=2)

    info, got = _generate(lib, engine, want.shape, 3, 2**33 + 5, 2)
    assert (info.batch, info.channels, info.height, info.width) == want.shape[1:]
    assert info.engine == b"closed-form"
    # Only exp in the update may differ in its last bit between libm and numpy/ONNX Runtime.
    assert np.max(np.abs(got - want)) < 1e-5


def test_c_library_runs_a_distilled_students_sampler(lib, tmp_path) -> None:
    """A student of `vidm-rt distill` records DDIM 2 steps at "linspace2" with eta 1 in its
    config; export picks that table (tests/test_distill.py), and the C library runs it, fresh
    noise included, as the Python runtime does."""
    from vidm_rt.config import preset
    from vidm_rt.export.options import export_sampler
    from vidm_rt.train.distill import student_config

    sampler, steps, eta, spacing = export_sampler(student_config(preset("tiny"), 2, 1.0).sampler,
                                                  None, None, None)
    engine = write_closed_form_engine(tmp_path / "engine", sampler=sampler, steps=steps, eta=eta,
                                      spacing=spacing, frames=3)
    want = closed_form_frames(engine, frames=3, seed=9)
    info, got = _generate(lib, engine, want.shape, 3, 9, 0)
    assert (steps, eta, spacing) == (2, 1.0, "linspace2")
    assert info.steps == 2 and info.engine == b"closed-form"
    assert np.max(np.abs(got - want)) < 1e-5


def test_c_library_refuses_a_tampered_directory(lib, tmp_path) -> None:
    engine = write_closed_form_engine(tmp_path / "engine", steps=2)
    (engine / "motion.onnx").write_bytes(b"tampered")
    gen = ctypes.c_void_p()
    assert lib.vidm_rt_create(str(engine).encode(), 0, ctypes.byref(gen)) == -2
    assert b"motion.onnx does not match its sha256" in lib.vidm_rt_last_error()
    assert not gen
