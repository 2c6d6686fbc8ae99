/* clones.h: NS_CLONES compiles a hot loop twice, for AVX2 and for baseline x86-64, and the
 * loader picks the one this CPU runs (GCC's target_clones; elsewhere a no-op). Without FMA
 * (-std=c11 contracts nothing), and with any sum kept in explicit lanes, both clones give the
 * same numbers. Not installed: core and analysis use it internally. */
#ifndef NS_CLONES_H
#define NS_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NS_CLONES
#endif

#endif
