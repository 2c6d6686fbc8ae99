/* rng.c: one GSL random stream per tensor, keyed by (seed, layer, name).
 *
 * Keying each tensor's stream on its identity (rather than drawing every tensor from one running
 * generator) is what makes a layer's weights independent of the order layers are built, of the
 * depth of the rest of the stack and of the thread count: layer 3's W1 is the same in a 4-layer
 * and a 64-layer model with the same seed. */
/* not internal.h: GSL's headers bring their own CBLAS declarations */
#include "normscope.h"
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

/* splitmix64 finalizer: a bijective mix, so distinct inputs stay distinct before folding */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t ns_stream_key(uint64_t seed, int layer, const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a over the name */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return mix64(mix64(mix64(seed) ^ (uint64_t)(int64_t)layer) ^ h);
}

static gsl_rng *stream(uint64_t seed, int layer, const char *name)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r)
        return NULL;
    /* MT19937 takes a 32-bit seed: fold the 64-bit key. Two of a run's n streams coincide with
     * probability about n^2 / 2^33 (1e-4 for a thousand tensors); accepted. */
    uint64_t key = ns_stream_key(seed, layer, name);
    unsigned long s = (unsigned long)((key ^ (key >> 32)) & 0xffffffffUL);
    gsl_rng_set(r, s ? s : 1);
    return r;
}

int ns_fill_gaussian(ns_real *out, size_t n, double std, uint64_t seed, int layer, const char *name)
{
    gsl_rng *r = stream(seed, layer, name);
    if (!r)
        return NS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        out[i] = (ns_real)gsl_ran_gaussian_ziggurat(r, std);
    gsl_rng_free(r);
    return NS_OK;
}

int ns_fill_uniform_int(int *out, size_t n, int bound, uint64_t seed, int layer, const char *name)
{
    if (bound < 1)
        return NS_ERR_INVALID;
    gsl_rng *r = stream(seed, layer, name);
    if (!r)
        return NS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        out[i] = (int)gsl_rng_uniform_int(r, (unsigned long)bound);
    gsl_rng_free(r);
    return NS_OK;
}
