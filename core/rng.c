/* rng.c: one GSL random stream per tensor, keyed by (seed, layer, name).
 *
 * Keying each tensor's stream on its identity (rather than drawing every tensor from one running
 * generator) is what makes a layer's weights independent of the order layers are built, of the
 * depth of the rest of the stack and of the thread count: layer 3's W1 is the same in a 4-layer
 * and a 64-layer model with the same seed.
 *
 * Speed. Drawing a model's weights through gsl_ran_gaussian_ziggurat costs two calls through
 * function pointers per number; the fill below is several times faster and gives the same
 * numbers bit for bit: MT19937 inline (GSL's seeding and tempering), and the ziggurat's fast
 * path (about 99% of draws) inline with GSL's own tables. Those tables are static in GSL, so
 * they are read out of it once by running gsl_ran_gaussian_ziggurat on a scripted generator.
 * Every other draw is handed to GSL itself, on a generator that reads on from our MT19937 state.
 * test_model compares the two fills. */
/* not internal.h: GSL's headers bring their own CBLAS declarations */
#include "normscope.h"
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <pthread.h>

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

/* MT19937 takes a 32-bit seed: fold the 64-bit key. Two of a run's n streams coincide with
 * probability about n^2 / 2^33 (1e-4 for a thousand tensors); accepted. */
static unsigned long stream_seed(uint64_t seed, int layer, const char *name)
{
    uint64_t key = ns_stream_key(seed, layer, name);
    unsigned long s = (unsigned long)((key ^ (key >> 32)) & 0xffffffffUL);
    return s ? s : 1;
}

static gsl_rng *stream(uint64_t seed, int layer, const char *name)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (r)
        gsl_rng_set(r, stream_seed(seed, layer, name));
    return r;
}

/* ---- MT19937 as GSL's mt19937 (gsl/rng/mt.c): same seeding, same outputs ------------------- */

enum { MT_N = 624, MT_M = 397 };

/* the state, and its next MT_N outputs (tempered in one pass, which vectorizes) */
typedef struct {
    uint32_t mt[MT_N], out[MT_N];
    int next; /* into out; MT_N: regenerate first */
} mt_state;

static void mt_seed(mt_state *s, unsigned long seed)
{
    s->mt[0] = (uint32_t)(seed ? seed : 4357); /* GSL's default for 0 */
    for (int i = 1; i < MT_N; i++)
        s->mt[i] = 1812433253u * (s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) + (uint32_t)i;
    s->next = MT_N;
}

static uint32_t mt_twist(uint32_t a, uint32_t b, uint32_t far)
{
    uint32_t y = (a & 0x80000000u) | (b & 0x7fffffffu);
    return far ^ (y >> 1) ^ (y & 1 ? 0x9908b0dfu : 0);
}

static void mt_refill(mt_state *s)
{
    uint32_t *mt = s->mt;
    int k = 0;
    for (; k < MT_N - MT_M; k++)
        mt[k] = mt_twist(mt[k], mt[k + 1], mt[k + MT_M]);
    for (; k < MT_N - 1; k++)
        mt[k] = mt_twist(mt[k], mt[k + 1], mt[k + MT_M - MT_N]);
    mt[MT_N - 1] = mt_twist(mt[MT_N - 1], mt[0], mt[MT_M - 1]);
    for (k = 0; k < MT_N; k++) {
        uint32_t y = mt[k];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        s->out[k] = y ^ (y >> 18);
    }
    s->next = 0;
}

static inline uint32_t mt_next(mt_state *s)
{
    if (s->next >= MT_N)
        mt_refill(s);
    return s->out[s->next++];
}

/* a gsl_rng that reads on from an mt_state: GSL's slow path of the ziggurat runs on our stream */
static unsigned long on_get(void *state) { return mt_next(state); }
static double on_get_double(void *state) { return mt_next(state) / 4294967296.0; }
static void no_set(void *state, unsigned long seed) { (void)state, (void)seed; }
static const gsl_rng_type on_type = {"ns_mt19937_on", 0xffffffffUL, 0, sizeof(mt_state), no_set,
                                     on_get, on_get_double};

/* ---- GSL's ziggurat tables, read out of gsl_ran_gaussian_ziggurat -------------------------- */

/* A draw's 32 bits: sign bit 7, strip i in bits 0-6, j in bits 8-31. Its fast path returns
 * sign j wtab[i] when j < ktab[i], after one call of the generator; any other path calls it
 * again. A scripted generator that answers `first`, then cycles through draws of which some are
 * surely accepted at once (j = 1 in middle strips), tells the two apart by its call count. */
typedef struct {
    unsigned long first;
    int calls;
} script;
static unsigned long script_get(void *state)
{
    static const unsigned long then[] = {1ul << 8 | 0x80 | 64, 1ul << 8 | 0x80 | 100,
                                         1ul << 8 | 0x80 | 32, 1ul << 8 | 0x80 | 120};
    script *s = state;
    return s->calls++ ? then[(s->calls - 2) % 4] : s->first;
}
static double script_get_double(void *state) { return script_get(state) / 4294967296.0; }
static const gsl_rng_type script_type = {"ns_script", 0xffffffffUL, 0, sizeof(script), no_set,
                                         script_get, script_get_double};

static uint32_t zig_k[128];
static double zig_w[128];
static int zig_ok;
static pthread_once_t zig_once = PTHREAD_ONCE_INIT;

/* does draw (strip i, j, sign +) take the fast path; its value */
static int fast_path(int i, uint32_t j, double *x)
{
    script s = {.first = (unsigned long)j << 8 | 0x80 | (unsigned long)i};
    gsl_rng r = {&script_type, &s};
    *x = gsl_ran_gaussian_ziggurat(&r, 1.0);
    return s.calls == 1;
}

static void zig_read_tables(void)
{
    double x;
    for (int i = 0; i < 128; i++) {
        if (!fast_path(i, 1, &zig_w[i])) { /* ktab[i] is 0 or 1: only j = 0 can be fast, */
            zig_k[i] = fast_path(i, 0, &x) ? 1 : 0;
            zig_w[i] = 0; /* and its value 0 wtab[i] is 0 whatever wtab[i] is */
            continue;
        }
        /* zig_w[i] = 1 wtab[i], exactly; ktab[i] by bisection: j = lo fast, j = hi not */
        uint32_t lo = 1, hi = 1u << 24;
        while (hi - lo > 1) {
            uint32_t mid = lo + (hi - lo) / 2;
            *(fast_path(i, mid, &x) ? &lo : &hi) = mid;
        }
        zig_k[i] = hi;
    }
}

/* n N(0, std^2) draws from s, as gsl_ran_gaussian_ziggurat would give them; `on` reads s */
static void zig_fill(ns_real *out, size_t n, mt_state *s, const gsl_rng *on, double std)
{
    int next = s->next; /* in a register: s escapes to GSL through `on` */
    const double signed_std[2] = {-std, std}; /* GSL's sign * std, by bit 7 without a branch */
    for (size_t i = 0; i < n; i++) {
        if (next >= MT_N)
            mt_refill(s), next = 0;
        uint32_t k = s->out[next++], strip = k & 0x7f, j = k >> 8;
        if (j < zig_k[strip]) {
            out[i] = (ns_real)(signed_std[k >> 7 & 1] * (j * zig_w[strip])); /* GSL's order */
        } else {
            s->next = next - 1; /* GSL reads this draw again, and what it needs after it */
            out[i] = (ns_real)gsl_ran_gaussian_ziggurat(on, std);
            next = s->next;
        }
    }
    s->next = next;
}

static void zig_init(void)
{
    zig_read_tables();
    /* the tables and the arithmetic, checked against GSL on a stream long enough to take every
     * path (the wedges and the tail); any difference, and every fill goes through GSL */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    mt_state s;
    gsl_rng on = {&on_type, &s};
    int same = r != NULL;
    if (r) {
        gsl_rng_set(r, 20260601);
        mt_seed(&s, 20260601);
        for (int i = 0; i < 1 << 12 && same; i++) {
            ns_real x[16];
            zig_fill(x, 16, &s, &on, 0.5);
            for (int k = 0; k < 16; k++)
                same &= (ns_real)gsl_ran_gaussian_ziggurat(r, 0.5) == x[k];
        }
        gsl_rng_free(r);
    }
    zig_ok = same;
}

int ns_rng_inline(void)
{
    pthread_once(&zig_once, zig_init);
    return zig_ok;
}

int ns_fill_gaussian(ns_real *out, size_t n, double std, uint64_t seed, int layer, const char *name)
{
    pthread_once(&zig_once, zig_init);
    if (!zig_ok) { /* a GSL whose ziggurat reads its generator otherwise: GSL all the way */
        gsl_rng *r = stream(seed, layer, name);
        if (!r)
            return NS_ERR_NOMEM;
        for (size_t i = 0; i < n; i++)
            out[i] = (ns_real)gsl_ran_gaussian_ziggurat(r, std);
        gsl_rng_free(r);
        return NS_OK;
    }
    mt_state s;
    mt_seed(&s, stream_seed(seed, layer, name));
    gsl_rng on = {&on_type, &s};
    zig_fill(out, n, &s, &on, std);
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
