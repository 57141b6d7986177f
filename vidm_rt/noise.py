"""Counter-based Gaussian noise, reproducible bit for bit in Python, C++ and CUDA.

Every noise tensor the sampler consumes is a pure function of
``(seed, video, frame, step, flat element index)``. Nothing depends on generator state, thread
count, batch composition or tensor shape, so the numpy runtime, the C++ library and the CUDA
kernel can each produce any slice of the noise independently and get identical bits.

Bit-exactness rests on using only operations that IEEE-754 defines as correctly rounded
(binary32 ``+ - * /`` and ``sqrt``, round-to-nearest-even), exact integer<->float conversions
and integer/bit manipulation, evaluated in exactly the order given below. Library
transcendentals (``logf``, ``sinf``, ``cosf``, ``np.log`` ...) are never used: they differ
between libms, numpy SIMD paths and CUDA.

Porting rules
-------------
* Every floating-point value below is IEEE binary32 ("f32"); every operation rounds to f32
  immediately. Never evaluate in a wider type unless it is then rounded once per operation
  (for a single ``+ - * / sqrt`` on f32 inputs, computing in f64 and rounding to f32 gives
  the same result, so x87/double evaluation of *one* operation is harmless; keeping a wider
  intermediate across several operations is not).
* No fused multiply-add: a contracted ``a*b + c`` rounds once instead of twice. Compile C/C++
  with ``-ffp-contract=off`` (and never ``-ffast-math``/``-Ofast``/``/fp:fast``); compile
  CUDA with ``--fmad=false`` (NVRTC and nvcc) and without ``--use_fast_math``, keeping the
  defaults ``--prec-div=true --prec-sqrt=true --ftz=false``. Using the intrinsics
  ``__fadd_rn``/``__fsub_rn``/``__fmul_rn``/``__fdiv_rn``/``__fsqrt_rn`` makes the CUDA code
  independent of those flags. No value in the pipeline is subnormal, so flush-to-zero
  modes would not change results, but do not rely on that when modifying the definition.
* Write each expression below in the same association order; ``a + b + c`` means
  ``(a + b) + c``.

Definition
----------
1. **Philox4x32-10** (Salmon, Moraes, Dror, Shaw, SC'11; Random123). Counter
   ``(c0, c1, c2, c3)`` and key ``(k0, k1)`` are uint32. One round::

       (hi0, lo0) = high/low 32 bits of the 64-bit product 0xD2511F53 * c0
       (hi1, lo1) = high/low 32 bits of the 64-bit product 0xCD9E8D57 * c2
       (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)

   Ten rounds; between consecutive rounds (not before the first) the key is bumped:
   ``k0 += 0x9E3779B9; k1 += 0xBB67AE85`` (mod 2**32). The output is the final
   ``(c0, c1, c2, c3)``. Known answers (Random123 ``kat_vectors``): counter 0, key 0 ->
   ``6627e8d5 e169c58d bc57ac4c 9b00dbd8``.

2. **Addressing.** ``seed`` is an integer in ``[0, 2**64)``: ``k0 = seed & 0xFFFFFFFF``,
   ``k1 = seed >> 32``. ``video``, ``frame`` and ``step`` are integers in ``[0, 2**32)``.
   Element ``e`` (row-major flat index of the requested tensor) is lane ``e % 4`` of the
   Philox block with counter ``(e // 4, video, frame, step)``. Hence the value of an element
   depends only on its flat index, not on the shape (``gaussian(..., (2, 8))`` is
   ``gaussian(..., (16,))`` reshaped, and a prefix of a longer stream). At most ``2**34``
   elements per call.

   Project convention (VIDM sampler): ``video`` is the index of the video in the request or
   batch; ``frame`` is the frame index, frame 0 being the content (first) frame; ``step``
   0 is the initial x_T of that frame, and ``step = i + 1`` is the noise injected by sampler
   step ``i`` (``i = 0`` is the noisiest step, the first one executed). ``step =
   CONDITION_STEP`` (``2**32 - 1``) is the noise added to the previous frame that motion
   frame ``frame`` is made from, for a model trained with conditioning noise
   (``VIDMConfig.cond_noise``).

3. **Uniforms.** A uint32 ``r`` maps to ``u = f32(2 * (r >> 9) + 1) * 2**-24``, i.e.
   ``u = (2k + 1) / 2**24`` with ``k = r >> 9`` (23 bits). The integer is below ``2**24`` so
   the conversion is exact, and the scaling is by a power of two, so ``u`` is exact,
   lies in ``[2**-24, 1 - 2**-24]`` (strictly inside (0, 1)) and the grid is symmetric about
   1/2. (23 bits rather than 24: ``(r >> 8) + 0.5`` would need 25 significant bits, which
   f32 cannot hold.)

4. **Box-Muller.** A block ``(r0, r1, r2, r3)`` gives two pairs, ``a = (r0, r1)`` and
   ``b = (r2, r3)``. For a pair ``(rr, ra)``: ``u1 = uniform(rr)``, ``u2 = uniform(ra)``,
   ``rad = sqrt(-2 * ln(u1))`` (evaluated as ``sqrt(L * -2)``, the product being exact), and
   ``(c, s) = (cos, sin)(2*pi*u2)``. The block's four outputs, in lane order, are
   ``[rad_a * c_a, rad_a * s_a, rad_b * c_b, rad_b * s_b]``.

5. **ln(x)** for a positive normal f32 ``x`` (here ``x = u1``). Let ``bits`` be its
   binary32 encoding, ``ex = bits >> 23`` (sign is 0) and ``mant = bits & 0x7FFFFF``.
   If ``mant >= 0x3504F3`` (the mantissa of f32(sqrt 2) = 0x3FB504F3) then
   ``m = from_bits(mant | 0x3F000000)`` and ``e = ex - 126``, else
   ``m = from_bits(mant | 0x3F800000)`` and ``e = ex - 127``. So ``x = m * 2**e`` exactly,
   with ``m`` in ``[0x3F3504F3, 0x3FB504F2]`` (about ``[sqrt(1/2), sqrt(2))``). Then, with
   ``E = f32(e)`` (exact)::

       f    = m - 1                      (exact, Sterbenz)
       s    = f / (f + 2)                (atanh form: ln(m) = 2 atanh(s))
       z    = s * s
       hfsq = (f * f) * 0.5
       p    = L6
       p    = p * z + L5   ...   p = p * z + L1      (Horner, each step two roundings)
       R    = p * z
       lo   = s * (hfsq + R) + E * LN2_LO
       ln   = E * LN2_HI + (f - (hfsq - lo))

   using ``ln(m) = 2s + s*R(z) = f - hfsq + s*(hfsq + R)`` so that the large term ``f`` is
   exact and roundings only touch small corrections. ``E * LN2_HI`` is exact because
   ``LN2_HI`` has 15 significant bits and ``|e| < 256``.

6. **cos/sin of 2*pi*u** for ``u`` in [0, 1). ``t = u * 4`` (exact), ``q = floor(t)``
   (quadrant, 0..3), ``g = t - q`` (exact) and ``theta = g * PIO2`` in [0, pi/2). With
   ``z = theta * theta``::

       ps = S13;  ps = ps * z + S11; ... ; ps = ps * z + S3
       sin = theta + theta * (z * ps)
       pc = C14;  pc = pc * z + C12; ... ; pc = pc * z + C2
       cos = 1 + z * pc

   then rotate by the quadrant (negation is exact): q=0 -> ``(cos, sin)``, q=1 ->
   ``(-sin, cos)``, q=2 -> ``(-cos, -sin)``, q=3 -> ``(sin, -cos)``. For the uniforms of
   step 3, ``q = r >> 30`` and ``g = f32(2 * ((r >> 9) & 0x1FFFFF) + 1) * 2**-22``.

Constants (binary32 bit patterns; each is the f32 nearest the stated value, except
``LN2_HI``/``LN2_LO``)::

    LN2_HI = 0x3F317200  (0.693145751953125, ln 2 rounded to a multiple of 2**-16)
    LN2_LO = 0x35BFBE8E  (f32 nearest ln 2 - LN2_HI, about 1.4286068e-06)
    L1 = 0x3F2AAAAB (2/3)   L2 = 0x3ECCCCCD (2/5)   L3 = 0x3E924925 (2/7)
    L4 = 0x3E638E39 (2/9)   L5 = 0x3E3A2E8C (2/11)  L6 = 0x3E1D89D9 (2/13)
    PIO2 = 0x3FC90FDB (pi/2)
    S3  = 0xBE2AAAAB (-1/3!)   S5  = 0x3C088889 (1/5!)    S7 = 0xB9500D01 (-1/7!)
    S9  = 0x3638EF1D (1/9!)    S11 = 0xB2D7322B (-1/11!)  S13 = 0x2F309231 (1/13!)
    C2  = 0xBF000000 (-1/2!)   C4  = 0x3D2AAAAB (1/4!)    C6 = 0xBAB60B61 (-1/6!)
    C8  = 0x37D00D01 (1/8!)    C10 = 0xB493F27E (-1/10!)  C12 = 0x310F76C7 (1/12!)
    C14 = 0xAD49CBA5 (-1/14!)

Accuracy (vs. float64 math on the same uniforms, checked exhaustively over all 2**23
uniforms): ln within 0.83 ulp, cos/sin within 2e-7 absolute. The normals are not meant to
be correctly rounded, only identical everywhere.

Golden values (ports must reproduce these): the first 8 elements of
``gaussian(seed=1234, video=0, frame=1, step=2, shape=(3, 4, 4))`` as binary32 bit
patterns (about -0.0955272, -0.366086, -0.0580529, -0.118552, 0.410960, -1.36607,
-1.09953, 1.96045)::

    0xBDC3A3C3 0xBEBB6FA5 0xBD6DC8D4 0xBDF2CB9D 0x3ED2694D 0xBFAEDB79 0xBF8CBD8A 0x3FFAEFF4

Eight values rarely expose a last-bit change in a polynomial, so ports should also check the
checksum ``sum((e + 1) * bits[e]) mod 2**64`` over all 12288 elements ``e`` of
``gaussian(seed=1234, video=0, frame=1, step=2, shape=(3, 64, 64))``, with ``bits[e]`` the
element's binary32 pattern as an unsigned integer: ``0x02393101026AFFE6``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "box_muller",
    "gaussian",
    "gaussian_batch",
    "gaussian_slots",
    "log_f32",
    "philox4x32_10",
    "sincos_2pi_f32",
    "uniform01",
]

_U32 = 0xFFFFFFFF
_MASK32 = np.uint64(_U32)
_SHIFT32 = np.uint64(32)
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = 0x9E3779B9
_PHILOX_W1 = 0xBB67AE85
_PHILOX_ROUNDS = 10
CONDITION_STEP = 2**32 - 1  # the conditioning noise of a motion frame (module docstring, 2.)

# Element e lives in block e // 4 and the block index is a uint32 counter word.
_MAX_ELEMENTS = 4 * 2**32


def _f32(bits: int) -> np.float32:
    # Constants are pinned by bit pattern so no decimal->binary conversion can disagree.
    return np.array(bits, dtype=np.uint32).view(np.float32)[()]


_F32_ONE = np.float32(1.0)
_F32_TWO = np.float32(2.0)
_F32_HALF = np.float32(0.5)
_F32_M2 = np.float32(-2.0)
_F32_4 = np.float32(4.0)
_F32_2M24 = np.float32(2.0**-24)

_LN2_HI = _f32(0x3F317200)
_LN2_LO = _f32(0x35BFBE8E)
_LOG_POLY = tuple(  # L6 .. L1, Horner order
    _f32(b) for b in (0x3E1D89D9, 0x3E3A2E8C, 0x3E638E39, 0x3E924925, 0x3ECCCCCD, 0x3F2AAAAB)
)
_SQRT2_MANT = 0x3504F3

_PIO2 = _f32(0x3FC90FDB)
_SIN_POLY = tuple(  # S13 .. S3
    _f32(b) for b in (0x2F309231, 0xB2D7322B, 0x3638EF1D, 0xB9500D01, 0x3C088889, 0xBE2AAAAB)
)
_COS_POLY = tuple(  # C14 .. C2
    _f32(b)
    for b in (0xAD49CBA5, 0x310F76C7, 0xB493F27E, 0x37D00D01, 0xBAB60B61, 0x3D2AAAAB, 0xBF000000)
)


# --------------------------------------------------------------------------------------------
# Philox4x32-10
# --------------------------------------------------------------------------------------------


def _philox_lanes(
    c0: np.ndarray | np.uint64,
    c1: np.ndarray | np.uint64,
    c2: np.ndarray | np.uint64,
    c3: np.ndarray | np.uint64,
    k0: np.ndarray | np.uint64,
    k1: np.ndarray | np.uint64,
    rounds: int = _PHILOX_ROUNDS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Philox4x32 on uint64 words holding uint32 values; inputs broadcast against each other.

    uint64 holds the full 32x32-bit product, so the mulhi/mullo pair needs no 128-bit
    arithmetic; lanes are kept as separate arrays so each round is a handful of
    contiguous ufunc calls.
    """
    for r in range(rounds):
        if r:
            k0 = (k0 + np.uint64(_PHILOX_W0)) & _MASK32
            k1 = (k1 + np.uint64(_PHILOX_W1)) & _MASK32
        p0 = c0 * _PHILOX_M0
        p1 = c2 * _PHILOX_M1
        c0, c1, c2, c3 = (
            (p1 >> _SHIFT32) ^ c1 ^ k0,
            p1 & _MASK32,
            (p0 >> _SHIFT32) ^ c3 ^ k1,
            p0 & _MASK32,
        )
    return (
        np.asarray(c0, dtype=np.uint64),
        np.asarray(c1, dtype=np.uint64),
        np.asarray(c2, dtype=np.uint64),
        np.asarray(c3, dtype=np.uint64),
    )


def _as_u32_words(a: npt.ArrayLike, what: str) -> np.ndarray:
    """Integer array-like -> uint64 array, rejecting values outside [0, 2**32)."""
    arr = np.asarray(a)
    if arr.dtype == np.uint32:
        return arr.astype(np.uint64)
    if arr.dtype == object:
        # Python ints beyond int64 land in object arrays; range-check them as Python ints.
        vals = [operator.index(v) for v in arr.ravel()]
        if any(v < 0 or v > _U32 for v in vals):
            raise ValueError(f"{what} words must be in [0, 2**32)")
        return np.array(vals, dtype=np.uint64).reshape(arr.shape)
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            return arr.astype(np.uint64)
        raise TypeError(f"{what} must hold integers, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > _U32):
        raise ValueError(f"{what} words must be in [0, 2**32)")
    return arr.astype(np.uint64)


def _philox4x32(
    counter: npt.ArrayLike,
    key: tuple[int, int] | npt.ArrayLike,
    rounds: int,
) -> np.ndarray:
    c = _as_u32_words(counter, "counter")
    if c.ndim == 0 or c.shape[-1] != 4:
        raise ValueError(f"counter must have shape (..., 4), got {c.shape}")
    k = _as_u32_words(key, "key")
    if k.ndim == 0 or k.shape[-1] != 2:
        raise ValueError(f"key must have shape (..., 2), got {k.shape}")
    lanes = _philox_lanes(c[..., 0], c[..., 1], c[..., 2], c[..., 3], k[..., 0], k[..., 1], rounds)
    shape = np.broadcast_shapes(c.shape[:-1], k.shape[:-1])
    return np.stack([np.broadcast_to(x, shape) for x in lanes], axis=-1).astype(np.uint32)


def philox4x32_10(counter: npt.ArrayLike, key: tuple[int, int] | npt.ArrayLike) -> np.ndarray:
    """Philox4x32-10 of many counters at once.

    ``counter``: integers of shape ``(..., 4)`` (words c0..c3, each in [0, 2**32)).
    ``key``: ``(k0, k1)`` or an array of shape ``(..., 2)`` broadcasting against the
    counters' leading dimensions. Returns uint32 of shape ``(..., 4)``.
    """
    return _philox4x32(counter, key, _PHILOX_ROUNDS)


# --------------------------------------------------------------------------------------------
# float32 building blocks
# --------------------------------------------------------------------------------------------


def uniform01(r: npt.ArrayLike) -> np.ndarray:
    """uint32 words -> float32 uniforms ``(2*(r >> 9) + 1) * 2**-24`` in (0, 1), exact."""
    r64 = _as_u32_words(r, "r")
    odd = ((r64 >> np.uint64(9)) << np.uint64(1)) | np.uint64(1)
    # odd < 2**24, so the float conversion is exact; scaling by 2**-24 is exact too.
    return odd.astype(np.float32) * _F32_2M24


def _horner(poly: tuple[np.float32, ...], z: np.ndarray) -> np.ndarray:
    p = np.full_like(z, poly[0])
    for c in poly[1:]:
        p = p * z + c
    return p


def log_f32(x: npt.ArrayLike) -> np.ndarray:
    """Natural log of positive normal float32 values, with float32-only operations.

    Deterministic across platforms (see the module docstring, step 5); no ``np.log``.
    Zero, negative, subnormal, inf and nan inputs are outside the domain.
    """
    x32 = np.asarray(x, dtype=np.float32)
    bits = x32.view(np.uint32)
    mant = bits & np.uint32(0x7FFFFF)
    big = mant >= np.uint32(_SQRT2_MANT)
    # Folding the mantissa to [sqrt(1/2), sqrt(2)) keeps |s| <= 0.172 so the series is short.
    mbits = mant | np.where(big, np.uint32(0x3F000000), np.uint32(0x3F800000))
    m = mbits.view(np.float32)
    e = (bits >> np.uint32(23)).astype(np.int32) - np.int32(127) + big.astype(np.int32)
    ef = e.astype(np.float32)

    f = m - _F32_ONE
    s = f / (f + _F32_TWO)
    z = s * s
    hfsq = (f * f) * _F32_HALF
    r = _horner(_LOG_POLY, z) * z
    lo = s * (hfsq + r) + ef * _LN2_LO
    return ef * _LN2_HI + (f - (hfsq - lo))


def sincos_2pi_f32(u: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``(cos(2*pi*u), sin(2*pi*u))`` in float32 for ``u`` in [0, 1) with <= 24-bit mantissas.

    Quadrant reduction is exact for such ``u`` (all values from ``uniform01`` qualify), so the
    polynomials only see ``theta`` in [0, pi/2).
    """
    u32 = np.asarray(u, dtype=np.float32)
    t = u32 * _F32_4
    qf = np.floor(t)
    theta = (t - qf) * _PIO2
    q = qf.astype(np.int32)
    z = theta * theta
    sn = theta + theta * (z * _horner(_SIN_POLY, z))
    cs = _F32_ONE + z * _horner(_COS_POLY, z)
    odd = (q & 1).astype(bool)
    a = np.where(odd, sn, cs)
    b = np.where(odd, cs, sn)
    cos_out = np.where((q == 1) | (q == 2), -a, a)
    sin_out = np.where(q >= 2, -b, b)
    return cos_out, sin_out


def box_muller(r_rad: npt.ArrayLike, r_ang: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Two float32 standard normals ``(rad*cos, rad*sin)`` from uint32 word pairs.

    ``r_rad`` drives the radius ``sqrt(-2 ln u1)``, ``r_ang`` the angle ``2*pi*u2``.
    """
    lnu = log_f32(uniform01(r_rad))
    rad = np.sqrt(lnu * _F32_M2)
    c, s = sincos_2pi_f32(uniform01(r_ang))
    return rad * c, rad * s


# --------------------------------------------------------------------------------------------
# Addressed noise
# --------------------------------------------------------------------------------------------


def _check_seed(seed: int) -> tuple[np.uint64, np.uint64]:
    seed = operator.index(seed)
    if seed < 0 or seed >= 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed}")
    return np.uint64(seed & _U32), np.uint64(seed >> 32)


def _check_u32(value: int, name: str) -> np.uint64:
    value = operator.index(value)
    if value < 0 or value > _U32:
        raise ValueError(f"{name} must be an integer in [0, 2**32), got {value}")
    return np.uint64(value)


def _check_shape(shape: int | Sequence[int]) -> tuple[tuple[int, ...], int]:
    dims = (
        (operator.index(shape),) if np.ndim(shape) == 0 else tuple(operator.index(d) for d in shape)
    )
    if any(d < 0 for d in dims):
        raise ValueError(f"shape must have non-negative dimensions, got {dims}")
    n = int(np.prod(dims, dtype=object)) if dims else 1
    if n > _MAX_ELEMENTS:
        raise ValueError(f"at most 2**34 elements per noise tensor, got {n}")
    return dims, n


def _blocks_to_normals(lanes: tuple[np.ndarray, ...]) -> np.ndarray:
    """Philox lanes of shape (..., nblocks) -> normals of shape (..., 4 * nblocks)."""
    r0, r1, r2, r3 = lanes
    out = np.empty(r0.shape + (4,), dtype=np.float32)
    out[..., 0], out[..., 1] = box_muller(r0, r1)
    out[..., 2], out[..., 3] = box_muller(r2, r3)
    return out.reshape(r0.shape[:-1] + (4 * r0.shape[-1],))


def gaussian(
    seed: int, video: int, frame: int, step: int, shape: int | Sequence[int]
) -> np.ndarray:
    """Standard normal float32 noise of ``shape`` for one ``(seed, video, frame, step)``.

    Element ``e`` (row-major flat index) is lane ``e % 4`` of Philox block
    ``(e // 4, video, frame, step)`` under key ``(seed & 0xFFFFFFFF, seed >> 32)``. Convention:
    ``frame`` 0 is the content frame; ``step`` 0 is the initial x_T, ``step`` i+1 the noise
    injected by sampler step i (i = 0 the noisiest).
    """
    return gaussian_batch(seed, [int(_check_u32(video, "video"))], frame, step, shape)[0]


def gaussian_batch(
    seed: int,
    videos: Sequence[int] | np.ndarray,
    frame: int,
    step: int,
    shape: int | Sequence[int],
) -> np.ndarray:
    """``(B, *shape)`` float32 noise, row ``b`` being ``gaussian(seed, videos[b], frame, step,
    shape)``; one vectorised Philox pass over all rows."""
    _check_seed(seed)
    vids = _check_u32_rows(videos, "videos")
    return gaussian_slots([seed] * vids.size, vids, [frame] * vids.size, step, shape)


def gaussian_slots(
    seeds: Sequence[int] | np.ndarray,
    videos: Sequence[int] | np.ndarray,
    frames: Sequence[int] | np.ndarray,
    step: int,
    shape: int | Sequence[int],
) -> np.ndarray:
    """``(B, *shape)`` float32 noise with an address per row: row ``b`` is
    ``gaussian(seeds[b], videos[b], frames[b], step, shape)``. A batch whose rows serve
    different requests (continuous batching) draws each request's own noise in any row."""
    vids = _check_u32_rows(videos, "videos")
    frs = _check_u32_rows(frames, "frames")
    keys = [_check_seed(s) for s in seeds]
    if not vids.size == frs.size == len(keys):
        raise ValueError(f"seeds, videos and frames differ in length: {len(keys)}, {vids.size}, "
                         f"{frs.size}")
    st = _check_u32(step, "step")
    dims, n = _check_shape(shape)
    k0 = np.array([k[0] for k in keys], np.uint64)[:, None]
    k1 = np.array([k[1] for k in keys], np.uint64)[:, None]
    nblocks = -(-n // 4)
    blocks = np.arange(nblocks, dtype=np.uint64)[None, :]
    # Broadcasting (1, nblocks) against (B, 1) yields every (row, block) counter in one pass.
    lanes = _philox_lanes(blocks, vids.astype(np.uint64)[:, None],
                          frs.astype(np.uint64)[:, None], st, k0, k1)
    lanes = tuple(np.broadcast_to(x, (vids.size, nblocks)) for x in lanes)
    normals = _blocks_to_normals(lanes)
    return normals[:, :n].reshape((vids.size,) + dims)


def _check_u32_rows(values: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    rows = np.asarray(values)
    if rows.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of indices, got shape {rows.shape}")
    if rows.size and rows.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {rows.dtype}")
    if rows.size and (int(rows.min()) < 0 or int(rows.max()) > _U32):
        raise ValueError(f"{name} must be integers in [0, 2**32)")
    return rows
