/* simd.h: loops that vectorize and give the same numbers on every x86-64 CPU.
 *
 * NS_CLONES compiles a function twice, for AVX2 and for baseline x86-64, and the loader picks
 * the one this CPU runs (GCC's target_clones; elsewhere a no-op). Nothing is contracted into
 * FMA under -std=c11, so elementwise loops give the same numbers in either clone.
 *
 * A sum, though, is one chain of dependent adds that waits out the add's latency at every
 * element and cannot vectorize without reordering. So long sums run in NS_LANES interleaved
 * accumulators (element k into lane k % NS_LANES), added up by ns_lanes_total in a fixed order:
 * the order, and so the rounding, depends only on the length, and the lanes vectorize (several
 * times faster than one chain). Not installed: core and analysis use it internally. */
#ifndef NS_SIMD_H
#define NS_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NS_CLONES
#endif

#include <stdint.h>
#include <string.h>

#define NS_LANES 8

static inline double ns_lanes_total(const double *acc)
{
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* e^z for float, z in [-87, 88], in a form the compiler vectorizes (a call to libm's expf
 * would not be, without -ffast-math): z = n ln 2 + r with n = round(z / ln 2) (the 1.5 * 2^23
 * trick rounds to nearest and leaves n in the low bits of t) and ln 2 split in two so that r is
 * exact, e^r by Cephes' expf polynomial (|r| <= ln 2 / 2, relative error about 1e-7), times 2^n
 * built in the exponent bits. Outside [-87, 88] (or for a NaN) the result is meaningless but
 * nothing is undefined: the bits are unsigned integer work, with no float-to-int conversion.
 * Elementwise, so the same for any thread count and any vector width. */
static inline float ns_exp_vec(float z)
{
    float t = z * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = z - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    uint32_t tbits;
    memcpy(&tbits, &t, sizeof tbits);
    uint32_t bits = (tbits - 0x4b400000u + 127u) << 23; /* n + 127 in the exponent */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

#endif
