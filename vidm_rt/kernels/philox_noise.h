/* The counter-based Gaussian noise of vidm_rt/noise.py, for C++ hosts and CUDA devices.
 *
 * This is the single C/CUDA source of the noise: the C++ library includes it on the host, the
 * CUDA kernel (noise_kernel.cu) on the device, and the Python GPU path compiles that kernel
 * with NVRTC. The exact definition, porting rules and golden values are in the docstring of
 * vidm_rt/noise.py; every float operation below follows it in order, one rounding each.
 *
 * Rules for changing this file:
 *   - no #include (NVRTC compiles it without system headers);
 *   - host code must be compiled with -ffp-contract=off and without -ffast-math, device code
 *     uses the __f*_rn intrinsics, which never contract and ignore --use_fast_math;
 *   - only unsigned int / unsigned long long / float.
 */
#ifndef VIDM_RT_PHILOX_NOISE_H
#define VIDM_RT_PHILOX_NOISE_H

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define VIDM_NOISE_FN __host__ __device__ inline
#else
#define VIDM_NOISE_FN inline
#endif

/* One correctly rounded binary32 operation each; on the device the _rn intrinsics keep
 * nvcc/NVRTC from fusing a multiply into a following add. */
VIDM_NOISE_FN float vidm_fadd(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

VIDM_NOISE_FN float vidm_fsub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

VIDM_NOISE_FN float vidm_fmul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

VIDM_NOISE_FN float vidm_fdiv(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

VIDM_NOISE_FN float vidm_fsqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return __builtin_sqrtf(a);
#endif
}

VIDM_NOISE_FN float vidm_bits_to_float(unsigned int bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
#endif
}

VIDM_NOISE_FN unsigned int vidm_float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  unsigned int bits;
  __builtin_memcpy(&bits, &f, sizeof bits);
  return bits;
#endif
}

/* Philox4x32-10 (noise.py step 1): c[0..3] in, the output block out. */
VIDM_NOISE_FN void vidm_philox4x32_10(const unsigned int c_in[4], unsigned int k0, unsigned int k1,
                                      unsigned int out[4]) {
  unsigned int c0 = c_in[0], c1 = c_in[1], c2 = c_in[2], c3 = c_in[3];
  for (int r = 0; r < 10; ++r) {
    if (r) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    const unsigned long long p0 = (unsigned long long)0xD2511F53u * c0;
    const unsigned long long p1 = (unsigned long long)0xCD9E8D57u * c2;
    const unsigned int n0 = (unsigned int)(p1 >> 32) ^ c1 ^ k0;
    const unsigned int n2 = (unsigned int)(p0 >> 32) ^ c3 ^ k1;
    c1 = (unsigned int)p1;
    c3 = (unsigned int)p0;
    c0 = n0;
    c2 = n2;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* Step 3: u = (2*(r >> 9) + 1) * 2**-24, exact. */
VIDM_NOISE_FN float vidm_uniform01(unsigned int r) {
  return vidm_fmul((float)(((r >> 9) << 1) | 1u), vidm_bits_to_float(0x33800000u));
}

/* p(z) by Horner from the highest coefficient down, each coefficient given by its f32 bits. */
VIDM_NOISE_FN float vidm_horner(const unsigned int* coef, int n, float z) {
  float p = vidm_bits_to_float(coef[0]);
  for (int i = 1; i < n; ++i) p = vidm_fadd(vidm_fmul(p, z), vidm_bits_to_float(coef[i]));
  return p;
}

/* Step 5: ln(x) for a positive normal x. */
VIDM_NOISE_FN float vidm_log_f32(float x) {
  const unsigned int bits = vidm_float_to_bits(x);
  const unsigned int mant = bits & 0x7FFFFFu;
  const int big = mant >= 0x3504F3u;
  const float m = vidm_bits_to_float(mant | (big ? 0x3F000000u : 0x3F800000u));
  const int e = (int)(bits >> 23) - 127 + big;
  const float ef = (float)e;

  const float f = vidm_fsub(m, 1.0f);
  const float s = vidm_fdiv(f, vidm_fadd(f, 2.0f));
  const float z = vidm_fmul(s, s);
  const float hfsq = vidm_fmul(vidm_fmul(f, f), 0.5f);
  const unsigned int L[6] = {0x3E1D89D9u, 0x3E3A2E8Cu, 0x3E638E39u,  /* L6 .. L1 */
                             0x3E924925u, 0x3ECCCCCDu, 0x3F2AAAABu};
  const float R = vidm_fmul(vidm_horner(L, 6, z), z);
  const float lo = vidm_fadd(vidm_fmul(s, vidm_fadd(hfsq, R)),
                             vidm_fmul(ef, vidm_bits_to_float(0x35BFBE8Eu)));
  return vidm_fadd(vidm_fmul(ef, vidm_bits_to_float(0x3F317200u)),
                   vidm_fsub(f, vidm_fsub(hfsq, lo)));
}

/* Step 6 for u = uniform01(r): quadrant q = r >> 30 and g = t - q computed exactly from r. */
VIDM_NOISE_FN void vidm_sincos_2pi(unsigned int r, float* cos_out, float* sin_out) {
  const unsigned int q = r >> 30;
  const float g = vidm_fmul((float)((((r >> 9) & 0x1FFFFFu) << 1) | 1u),
                            vidm_bits_to_float(0x34800000u)); /* 2**-22 */
  const float theta = vidm_fmul(g, vidm_bits_to_float(0x3FC90FDBu));
  const float z = vidm_fmul(theta, theta);
  const unsigned int S[6] = {0x2F309231u, 0xB2D7322Bu, 0x3638EF1Du,  /* S13 .. S3 */
                             0xB9500D01u, 0x3C088889u, 0xBE2AAAABu};
  const float sn = vidm_fadd(theta, vidm_fmul(theta, vidm_fmul(z, vidm_horner(S, 6, z))));
  const unsigned int C[7] = {0xAD49CBA5u, 0x310F76C7u, 0xB493F27Eu, 0x37D00D01u,  /* C14 .. C2 */
                             0xBAB60B61u, 0x3D2AAAABu, 0xBF000000u};
  const float cs = vidm_fadd(1.0f, vidm_fmul(z, vidm_horner(C, 7, z)));
  /* Rotate by the quadrant; negation is exact. */
  const float a = (q & 1u) ? sn : cs;
  const float b = (q & 1u) ? cs : sn;
  *cos_out = (q == 1u || q == 2u) ? -a : a;
  *sin_out = (q >= 2u) ? -b : b;
}

/* Step 4: two normals from the word pair (rr drives the radius, ra the angle). */
VIDM_NOISE_FN void vidm_box_muller(unsigned int rr, unsigned int ra, float* out2) {
  const float rad = vidm_fsqrt(vidm_fmul(vidm_log_f32(vidm_uniform01(rr)), -2.0f));
  float c, s;
  vidm_sincos_2pi(ra, &c, &s);
  out2[0] = vidm_fmul(rad, c);
  out2[1] = vidm_fmul(rad, s);
}

/* Step 2: elements 4*block .. 4*block+3 of gaussian(seed, video, frame, step), with
 * key_lo/key_hi the low/high 32 bits of the seed. */
VIDM_NOISE_FN void vidm_gaussian_block(unsigned int key_lo, unsigned int key_hi,
                                       unsigned int block, unsigned int video, unsigned int frame,
                                       unsigned int step, float out4[4]) {
  const unsigned int counter[4] = {block, video, frame, step};
  unsigned int r[4];
  vidm_philox4x32_10(counter, key_lo, key_hi, r);
  vidm_box_muller(r[0], r[1], out4);
  vidm_box_muller(r[2], r[3], out4 + 2);
}

#endif /* VIDM_RT_PHILOX_NOISE_H */
