"""The noise functions' inputs: every refusal names the argument, Python ints beyond int64 are
range-checked as ints, the float building blocks compute in float32 whatever they are given.
Written against the mutants of vidm_rt/noise.py the value tests let through
(scripts/mutation.sh noise; docs/testing.md)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from vidm_rt.noise import (
    gaussian,
    gaussian_batch,
    gaussian_slots,
    log_f32,
    philox4x32_10,
    sincos_2pi_f32,
    uniform01,
)

BIG = 2**32  # one past the largest word


@pytest.mark.parametrize("call, kind, message", [
    (lambda: philox4x32_10(np.array([[BIG, 0, 0, 0]], dtype=object), (0, 0)), ValueError,
     "counter words must be in [0, 2**32)"),
    (lambda: philox4x32_10(np.array([[-1, 0, 0, 0]], dtype=object), (0, 0)), ValueError,
     "counter words must be in [0, 2**32)"),
    (lambda: philox4x32_10([[0, 0, 0, 0]], np.array([0, 2**70], dtype=object)), ValueError,
     "key words must be in [0, 2**32)"),
    (lambda: philox4x32_10([[0.5, 0, 0, 0]], (0, 0)), TypeError,
     "counter must hold integers, got dtype float64"),
    (lambda: philox4x32_10([[0, 0, 0, 0]], (0, 0, 0)), ValueError,
     "key must have shape (..., 2), got (3,)"),
    (lambda: uniform01([BIG]), ValueError, "r words must be in [0, 2**32)"),
    (lambda: gaussian(0, BIG, 0, 0, 4), ValueError, "video must be an integer in [0, 2**32)"),
    (lambda: gaussian_batch(0, [BIG], 0, 0, 4), ValueError, "videos must be integers in"),
    (lambda: gaussian_slots([0], [0], [BIG], 0, 4), ValueError, "frames must be integers in"),
    (lambda: gaussian_slots([0], [0], [0], BIG, 4), ValueError, "step must be an integer in"),
    (lambda: gaussian_slots([0], [0.5], [0], 0, 4), TypeError,
     "videos must hold integers, got dtype float64"),
    (lambda: gaussian(0, 0, 0, 0, (BIG, BIG)), ValueError,
     f"at most 2**34 elements per noise tensor, got {BIG * BIG}"),
])
def test_each_refusal_names_the_argument(call, kind, message) -> None:
    with pytest.raises(kind, match=re.escape(message)):
        call()


def test_python_int_words_equal_uint32_words_at_the_ends_of_the_range() -> None:
    words = [[0, 1, BIG - 1, 7], [BIG - 1, 0, 5, 1]]
    as_objects = philox4x32_10(np.array(words, dtype=object), np.array([0, BIG - 1],
                                                                       dtype=object))
    assert np.array_equal(as_objects, philox4x32_10(np.array(words, np.uint32), (0, BIG - 1)))
    assert philox4x32_10(np.zeros((0, 4)), (0, 0)).shape == (0, 4)  # empty: any dtype


def test_keys_broadcast_against_the_counters() -> None:
    counters = np.arange(16, dtype=np.uint32).reshape(4, 4)
    keys = np.array([[1, 2], [3, 4], [5, 6]], np.uint32)[:, None, :]  # (3, 1, 2)
    out = philox4x32_10(counters, keys)
    assert out.shape == (3, 4, 4)
    assert np.array_equal(out[2, 1], philox4x32_10(counters[1], (5, 6)))


def test_float_blocks_compute_in_float32_whatever_they_are_given() -> None:
    u = np.array([0.1, 0.3, 0.7, 0.9])
    assert log_f32(u).dtype == np.float32
    assert np.array_equal(log_f32(u), log_f32(u.astype(np.float32)))
    s64, c64 = sincos_2pi_f32(u)
    s32, c32 = sincos_2pi_f32(u.astype(np.float32))
    assert s64.dtype == np.float32 and np.array_equal(s64, s32) and np.array_equal(c64, c32)


def test_log_at_the_sqrt2_split_takes_the_documented_branch() -> None:
    """Mantissa 0x3504F3 (f32 sqrt 2, and sqrt(1/2), a uniform of the grid) belongs to the
    `mant >= 0x3504F3` branch; the other branch gives a result one ulp off, which the accuracy
    tests accept but the C++ and CUDA ports would not reproduce."""
    x = np.array([0x3FB504F3, 0x3F3504F3, 0x3EB504F3], np.uint32).view(np.float32)
    assert log_f32(x).view(np.uint32).tolist() == [1051816471, 3199300121, 3213170066]
