/* simd.h: loops that vectorize and give the same numbers on every x86-64 CPU.
 *
 * NS_CLONES compiles a function twice, for AVX2 and for baseline x86-64, and the loader picks
 * the one this CPU runs (GCC's target_clones; elsewhere a no-op). Nothing is contracted into
 * FMA under -std=c11, so elementwise loops give the same numbers in either clone.
 *
 * A sum, though, is one chain of dependent adds that waits out the add's latency at every
 * element and cannot vectorize without reordering. So long sums run in NS_LANES interleaved
 * accumulators (element k into lane k % NS_LANES), added up by ns_lanes_total in a fixed order:
 * the order, and so the rounding, depends only on the length, and the lanes vectorize (3-6x
 * faster than one chain here). Not installed: core and analysis use it internally. */
#ifndef NS_SIMD_H
#define NS_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NS_CLONES
#endif

#define NS_LANES 8

static inline double ns_lanes_total(const double *acc)
{
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

#endif
