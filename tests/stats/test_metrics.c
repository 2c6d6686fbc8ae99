/* Tests for analysis/metrics.c.
 *
 * Every metric is compared with a slow, independent reference written here with plain double
 * loops (explicit pair averages, two-pass variance, SVD of the matrix itself instead of Gram
 * eigenvalues), on deterministic random inputs of several shapes, plus closed-form cases and a
 * thread-count bit-identity check. Prints only failures and one summary line; exit status is
 * nonzero if anything failed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "metrics.h"

static int g_checks = 0;
static int g_failed = 0;

static void check(int ok, const char *what) {
    g_checks++;
    if (!ok) {
        g_failed++;
        printf("FAIL: %s\n", what);
    }
}

/* |got - want| <= rtol * |want| + atol. atol is used for O(1)-bounded quantities (cosines) whose
 * mean can sit near 0, where a purely relative tolerance would demand more than double can give. */
static int close_enough(double got, double want, double rtol, double atol) {
    return isfinite(got) && isfinite(want) && fabs(got - want) <= rtol * fabs(want) + atol;
}

static void check_close(double got, double want, double rtol, double atol, const char *what) {
    g_checks++;
    if (!close_enough(got, want, rtol, atol)) {
        g_failed++;
        printf("FAIL: %s: got %.17g want %.17g (diff %.3g)\n", what, got, want, fabs(got - want));
    }
}

/* ------------------------------------------------------------------------------------------ */
/* deterministic random numbers: xorshift64* + Box-Muller */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 0x2545F4914F6CDD1Dull;
}

/* uniform in (0, 1], never 0 so log() below is safe */
static double rng_uniform(void) {
    return ((double)(rng_next() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

static double rng_normal(void) {
    double u1 = rng_uniform();
    double u2 = rng_uniform();
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static void fill_normal(float *x, size_t n, double mean, double std) {
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(mean + std * rng_normal());
    }
}

static float *alloc_floats(size_t n) {
    float *p = calloc(n, sizeof(float));
    if (p == NULL) {
        printf("FAIL: test allocation of %zu floats\n", n);
        exit(2);
    }
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* slow references */

static double ref_mean_square(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += (double)x[i] * (double)x[i];
    }
    return s / (double)n;
}

/* explicit two-pass variance; `denom_minus` = 1 gives the (wrong here) unbiased 1/(n-1) variant */
static double ref_act_var(const float *x, int ntok, int width, int denom_minus) {
    double total = 0.0;
    for (int t = 0; t < ntok; t++) {
        const float *r = x + (size_t)t * width;
        double mean = 0.0;
        for (int k = 0; k < width; k++) {
            mean += r[k];
        }
        mean /= width;
        double ss = 0.0;
        for (int k = 0; k < width; k++) {
            ss += (r[k] - mean) * (r[k] - mean);
        }
        total += ss / (width - denom_minus);
    }
    return total / ntok;
}

static double ref_cos(const float *a, const float *b, int width) {
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (int k = 0; k < width; k++) {
        dot += (double)a[k] * b[k];
        na += (double)a[k] * a[k];
        nb += (double)b[k] * b[k];
    }
    if (na == 0.0 || nb == 0.0) {
        return 0.0;
    }
    return dot / sqrt(na * nb);
}

/* explicit average over all distinct pairs; `wrong_denom` divides by seq^2/2 instead (a bug to detect) */
static double ref_cos_tokens(const float *x, int nseq, int seq, int width, int wrong_denom) {
    double total = 0.0;
    for (int s = 0; s < nseq; s++) {
        const float *xs = x + (size_t)s * seq * width;
        double sum = 0.0;
        long npairs = 0;
        for (int i = 0; i < seq; i++) {
            for (int j = i + 1; j < seq; j++) {
                sum += ref_cos(xs + (size_t)i * width, xs + (size_t)j * width, width);
                npairs++;
            }
        }
        total += sum / (wrong_denom ? 0.5 * seq * seq : (double)npairs);
    }
    return total / nseq;
}

static double ref_cos_layer(const float *xp, const float *x, int ntok, int width) {
    double total = 0.0;
    for (int t = 0; t < ntok; t++) {
        total += ref_cos(xp + (size_t)t * width, x + (size_t)t * width, width);
    }
    return total / ntok;
}

/* effective rank from the singular values of each [seq x width] matrix itself (dgesvd);
 * `squared` uses p_i from s_i^2 (a plausible bug to detect). Returns NAN on LAPACK failure. */
static double ref_eff_rank(const float *x, int nseq, int seq, int width, int squared) {
    int m = seq < width ? seq : width;
    double *a = malloc((size_t)seq * width * sizeof(double));
    double *sv = malloc((size_t)m * sizeof(double));
    double *superb = malloc((size_t)(m > 1 ? m : 2) * sizeof(double));
    if (a == NULL || sv == NULL || superb == NULL) {
        printf("FAIL: test allocation in ref_eff_rank\n");
        exit(2);
    }
    double total = 0.0;
    for (int s = 0; s < nseq; s++) {
        for (size_t i = 0; i < (size_t)seq * width; i++) {
            a[i] = x[(size_t)s * seq * width + i];
        }
        lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', seq, width, a, width, sv,
                                         NULL, 1, NULL, 1, superb);
        if (info != 0) {
            total = NAN;
            break;
        }
        double sum = 0.0;
        for (int i = 0; i < m; i++) {
            sum += squared ? sv[i] * sv[i] : sv[i];
        }
        if (sum == 0.0) {
            continue; /* all-zero sequence: effective rank 0 */
        }
        double h = 0.0;
        for (int i = 0; i < m; i++) {
            double p = (squared ? sv[i] * sv[i] : sv[i]) / sum;
            if (p > 0.0) {
                h -= p * log(p);
            }
        }
        total += exp(h);
    }
    free(a);
    free(sv);
    free(superb);
    return total / nseq;
}

/* ------------------------------------------------------------------------------------------ */

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

typedef struct {
    int nseq, seq, width;
    double mean; /* common offset, so act_var is not just the mean square */
} Shape;

static void test_random_shapes(void) {
    static const Shape shapes[] = {
        {1, 5, 8, 0.0},   /* seq < width */
        {2, 8, 5, 0.5},   /* seq > width, nseq > 1 */
        {3, 6, 6, -1.0},  /* seq == width */
        {4, 16, 7, 3.0},  /* seq >> width */
        {2, 3, 20, 0.0},  /* seq << width */
        {5, 2, 1, 0.2},   /* width 1 */
        {2, 33, 48, 1.0}, /* large enough for BLAS blocking */
    };
    char what[160];
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
        Shape sh = shapes[si];
        int ntok = sh.nseq * sh.seq;
        size_t n = (size_t)ntok * sh.width;
        float *x = alloc_floats(n);
        float *y = alloc_floats(n);
        fill_normal(x, n, sh.mean, 1.0);
        /* y = x + noise: a correlated next layer, so cos_layer is far from 0 */
        for (size_t i = 0; i < n; i++) {
            y[i] = x[i] + (float)(0.7 * rng_normal());
        }
        const char *fmt = "%s shape nseq=%d seq=%d width=%d";
        snprintf(what, sizeof what, fmt, "mean_square", sh.nseq, sh.seq, sh.width);
        check_close(ns_metric_mean_square(x, n), ref_mean_square(x, n), 1e-10, 0.0, what);
        snprintf(what, sizeof what, fmt, "act_var", sh.nseq, sh.seq, sh.width);
        if (sh.width > 1) {
            check_close(ns_metric_act_var(x, ntok, sh.width), ref_act_var(x, ntok, sh.width, 0),
                        1e-10, 0.0, what);
        } else {
            check(ns_metric_act_var(x, ntok, sh.width) == 0.0, what); /* one feature: variance 0 */
        }
        snprintf(what, sizeof what, fmt, "cos_tokens", sh.nseq, sh.seq, sh.width);
        check_close(ns_metric_cos_tokens(x, sh.nseq, sh.seq, sh.width),
                    ref_cos_tokens(x, sh.nseq, sh.seq, sh.width, 0), 1e-10, 1e-13, what);
        snprintf(what, sizeof what, fmt, "cos_layer", sh.nseq, sh.seq, sh.width);
        check_close(ns_metric_cos_layer(x, y, ntok, sh.width), ref_cos_layer(x, y, ntok, sh.width),
                    1e-10, 1e-13, what);
        double er = NAN;
        int rc = ns_metric_eff_rank(x, sh.nseq, sh.seq, sh.width, &er);
        snprintf(what, sizeof what, fmt, "eff_rank status", sh.nseq, sh.seq, sh.width);
        check(rc == 0, what);
        snprintf(what, sizeof what, fmt, "eff_rank vs SVD", sh.nseq, sh.seq, sh.width);
        check_close(er, ref_eff_rank(x, sh.nseq, sh.seq, sh.width, 0), 1e-6, 0.0, what);

        /* A zero token inside a sequence: counts as cosine 0 in its pairs, same in the reference. */
        if (sh.seq > 2) {
            memset(x + (size_t)1 * sh.width, 0, (size_t)sh.width * sizeof(float));
            snprintf(what, sizeof what, fmt, "cos_tokens with zero token", sh.nseq, sh.seq, sh.width);
            check_close(ns_metric_cos_tokens(x, sh.nseq, sh.seq, sh.width),
                        ref_cos_tokens(x, sh.nseq, sh.seq, sh.width, 0), 1e-10, 1e-13, what);
            snprintf(what, sizeof what, fmt, "cos_layer with zero token", sh.nseq, sh.seq, sh.width);
            check_close(ns_metric_cos_layer(x, y, ntok, sh.width),
                        ref_cos_layer(x, y, ntok, sh.width), 1e-10, 1e-13, what);
        }
        free(x);
        free(y);
    }
}

/* mean_square over more than one internal chunk (2^14 elements) and an odd tail. */
static void test_mean_square_long(void) {
    size_t n = 3 * 16384 + 77;
    float *x = alloc_floats(n);
    fill_normal(x, n, 0.3, 2.0);
    check_close(ns_metric_mean_square(x, n), ref_mean_square(x, n), 1e-10, 0.0,
                "mean_square multi-chunk");
    free(x);
}

/* Hadamard matrix entry H[i][j] of order 2^k (Sylvester): (-1)^popcount(i & j). */
static float hadamard(int i, int j) {
    return (__builtin_popcount((unsigned)(i & j)) & 1) ? -1.0f : 1.0f;
}

static void test_closed_forms(void) {
    double er = NAN;

    /* eff_rank of an exactly rank-1 matrix (small integers, so X and X X^T are exact) is 1. */
    {
        enum { S = 6, W = 9 };
        float x[S * W];
        for (int i = 0; i < S; i++) {
            for (int j = 0; j < W; j++) {
                x[i * W + j] = (float)((i - 2) * (j % 4 - 1)) + 0.0f;
            }
        }
        check(ns_metric_eff_rank(x, 1, S, W, &er) == 0, "eff_rank rank-1 status");
        check_close(er, 1.0, 1e-12, 0.0, "eff_rank rank-1 (seq < width) is 1");
        float xt[W * S]; /* transpose: seq > width path */
        for (int i = 0; i < S; i++) {
            for (int j = 0; j < W; j++) {
                xt[j * S + i] = x[i * W + j];
            }
        }
        check(ns_metric_eff_rank(xt, 1, W, S, &er) == 0, "eff_rank rank-1 transposed status");
        check_close(er, 1.0, 1e-12, 0.0, "eff_rank rank-1 (seq > width) is 1");
    }

    /* A diverged stream (NaN or Inf anywhere) has no rank: NAN, not a LAPACK failure that would
     * end a training run's probe. */
    {
        enum { S = 4, W = 6 };
        float x[S * W];
        for (int i = 0; i < S * W; i++) x[i] = (float)(i % 5) - 2.0f;
        x[7] = INFINITY;
        er = 0.0;
        check(ns_metric_eff_rank(x, 1, S, W, &er) == 0 && isnan(er), "eff_rank of Inf is NAN");
        x[7] = NAN;
        er = 0.0;
        check(ns_metric_eff_rank(x, 1, S, W, &er) == 0 && isnan(er), "eff_rank of NaN is NAN");
    }

    /* Exact rank-2 integer matrix: the Gram route's noise-level eigenvalues must not count. */
    {
        enum { S = 7, W = 5, R = 2 };
        float a[S * R], b[R * W], x[S * W];
        for (int i = 0; i < S * R; i++) a[i] = (float)((int)(rng_next() % 7) - 3);
        for (int i = 0; i < R * W; i++) b[i] = (float)((int)(rng_next() % 7) - 3);
        for (int i = 0; i < S; i++) {
            for (int j = 0; j < W; j++) {
                float s = 0.0f;
                for (int r = 0; r < R; r++) s += a[i * R + r] * b[r * W + j];
                x[i * W + j] = s;
            }
        }
        check(ns_metric_eff_rank(x, 1, S, W, &er) == 0, "eff_rank rank-2 status");
        check_close(er, ref_eff_rank(x, 1, S, W, 0), 1e-9, 0.0, "eff_rank exact rank-2 vs SVD");
    }

    /* Orthogonal rows of equal norm: effective rank is min(seq, width). */
    {
        enum { N = 5 };
        float x[N * N] = {0};
        for (int i = 0; i < N; i++) x[i * N + i] = 3.0f;
        check(ns_metric_eff_rank(x, 1, N, N, &er) == 0, "eff_rank 3I status");
        check_close(er, (double)N, 1e-12, 0.0, "eff_rank of 3*I_5 is 5");
    }
    {
        enum { S = 3, W = 7 };
        float x[S * W] = {0}, xt[W * S] = {0};
        for (int i = 0; i < S; i++) {
            x[i * W + i] = 2.0f;
            xt[i * S + i] = 2.0f;
        }
        check(ns_metric_eff_rank(x, 1, S, W, &er) == 0 && close_enough(er, 3.0, 1e-12, 0.0),
              "eff_rank of [2I_3 | 0] (3x7) is 3");
        check(ns_metric_eff_rank(xt, 1, W, S, &er) == 0 && close_enough(er, 3.0, 1e-12, 0.0),
              "eff_rank of [2I_3 ; 0] (7x3) is 3");
    }
    {
        enum { S = 4, W = 8 };
        float x[S * W];
        for (int i = 0; i < S; i++) {
            for (int j = 0; j < W; j++) x[i * W + j] = 0.5f * hadamard(i, j);
        }
        check(ns_metric_eff_rank(x, 1, S, W, &er) == 0 && close_enough(er, 4.0, 1e-12, 0.0),
              "eff_rank of 4 Hadamard rows (4x8) is 4");
    }

    /* All-zero sequence has effective rank 0; mixed with a random one it halves the mean. */
    {
        enum { S = 4, W = 6 };
        float x[2 * S * W] = {0};
        check(ns_metric_eff_rank(x, 1, S, W, &er) == 0 && er == 0.0, "eff_rank of zeros is 0");
        fill_normal(x, S * W, 0.0, 1.0);
        check(ns_metric_eff_rank(x, 2, S, W, &er) == 0, "eff_rank with zero sequence status");
        check_close(er, 0.5 * ref_eff_rank(x, 1, S, W, 0), 1e-6, 0.0,
                    "eff_rank with a zero sequence averages it as 0");
    }

    /* cos_tokens of identical directions is 1 (power-of-2 scalings keep the direction exact). */
    {
        enum { NS = 2, S = 5, W = 11 };
        float v[W], x[NS * S * W];
        fill_normal(v, W, 0.0, 1.0);
        for (int s = 0; s < NS; s++) {
            for (int i = 0; i < S; i++) {
                for (int k = 0; k < W; k++) x[(s * S + i) * W + k] = ldexpf(v[k], i - 2);
            }
        }
        check_close(ns_metric_cos_tokens(x, NS, S, W), 1.0, 1e-14, 0.0,
                    "cos_tokens of identical tokens is 1");
        /* ... and cos_layer of a layer with itself is 1 */
        check_close(ns_metric_cos_layer(x, x, NS * S, W), 1.0, 1e-14, 0.0,
                    "cos_layer of identical layers is 1");
    }

    /* cos_tokens of exactly orthogonal tokens (scaled Hadamard rows) is 0. */
    {
        enum { S = 8, W = 8 };
        float x[S * W];
        for (int i = 0; i < S; i++) {
            for (int j = 0; j < W; j++) x[i * W + j] = (float)(i + 1) * hadamard(i, j);
        }
        check_close(ns_metric_cos_tokens(x, 1, S, W), 0.0, 0.0, 1e-15,
                    "cos_tokens of orthogonal tokens is 0");
    }

    /* act_var of constant tokens is exactly 0 (the mean of w equal floats is exact in double). */
    {
        enum { T = 6, W = 13 };
        float x[T * W];
        for (int t = 0; t < T; t++) {
            float c = (float)rng_normal() * 100.0f;
            for (int k = 0; k < W; k++) x[t * W + k] = c;
        }
        check(ns_metric_act_var(x, T, W) == 0.0, "act_var of constant tokens is 0");
    }

    /* cos_layer: a zero token counts as cosine 0 (not skipped), in either layer. */
    {
        enum { T = 5, W = 7 };
        float xp[T * W], x[T * W];
        fill_normal(xp, T * W, 0.0, 1.0);
        memcpy(x, xp, sizeof x);
        memset(x + 2 * W, 0, W * sizeof(float)); /* token 2 vanishes in the new layer */
        check_close(ns_metric_cos_layer(xp, x, T, W), (T - 1.0) / T, 1e-14, 0.0,
                    "cos_layer zero token (current layer) counts 0");
        check_close(ns_metric_cos_layer(x, xp, T, W), (T - 1.0) / T, 1e-14, 0.0,
                    "cos_layer zero token (previous layer) counts 0");
    }

    /* Degenerate shapes. */
    {
        float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        check(isnan(ns_metric_cos_tokens(x, 2, 1, 4)), "cos_tokens with seq == 1 is NAN");
        er = 0.0;
        check(ns_metric_eff_rank(x, 1, 2, 0, &er) != 0 && isnan(er),
              "eff_rank rejects width 0 with NAN result");
        check(isnan(ns_metric_mean_square(x, 0)), "mean_square of n == 0 is NAN");
        check(ns_metric_eff_rank(x, 1, 1, 8, &er) == 0 && close_enough(er, 1.0, 1e-15, 0.0),
              "eff_rank of a single nonzero token is 1");
    }
}

/* The tolerances are tight enough to reject plausible bugs. */
static void test_tolerance_is_meaningful(void) {
    enum { NS = 2, S = 6, W = 8 };
    float x[NS * S * W];
    fill_normal(x, NS * S * W, 0.0, 1.0);

    double fast = ns_metric_act_var(x, NS * S, W);
    double wrong = ref_act_var(x, NS * S, W, 1); /* unbiased 1/(n-1) variance */
    check(close_enough(fast, ref_act_var(x, NS * S, W, 0), 1e-10, 0.0) &&
              !close_enough(fast, wrong, 1e-10, 0.0),
          "act_var: 1/(n-1) variant is rejected by the tolerance");

    double er = NAN;
    int rc = ns_metric_eff_rank(x, NS, S, W, &er);
    double wrong_er = ref_eff_rank(x, NS, S, W, 1); /* p_i from s_i^2 */
    check(rc == 0 && close_enough(er, ref_eff_rank(x, NS, S, W, 0), 1e-6, 0.0) &&
              !close_enough(er, wrong_er, 1e-6, 0.0),
          "eff_rank: p_i from squared singular values is rejected by the tolerance");

    double ct = ns_metric_cos_tokens(x, NS, S, W);
    check(close_enough(ct, ref_cos_tokens(x, NS, S, W, 0), 1e-10, 1e-13) &&
              !close_enough(ct, ref_cos_tokens(x, NS, S, W, 1), 1e-10, 1e-13),
          "cos_tokens: seq^2 denominator variant is rejected by the tolerance");
}

/* Results must be bit-identical whatever the thread count. */
typedef struct {
    double ms, var, ct, cl, er;
    int rc;
} AllMetrics;

static AllMetrics compute_all(const float *x, const float *y, int nseq, int seq, int width) {
    AllMetrics m;
    memset(&m, 0, sizeof m); /* so padding compares equal under memcmp */
    size_t n = (size_t)nseq * seq * width;
    m.ms = ns_metric_mean_square(x, n);
    m.var = ns_metric_act_var(x, nseq * seq, width);
    m.ct = ns_metric_cos_tokens(x, nseq, seq, width);
    m.cl = ns_metric_cos_layer(x, y, nseq * seq, width);
    m.rc = ns_metric_eff_rank(x, nseq, seq, width, &m.er);
    return m;
}

static void test_thread_invariance(void) {
    static const Shape shapes[] = {{8, 64, 48, 0.1}, {5, 40, 24, -0.3}, {7, 3, 5, 0.0}};
    char what[160];
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
        Shape sh = shapes[si];
        size_t n = (size_t)sh.nseq * sh.seq * sh.width;
        float *x = alloc_floats(n);
        float *y = alloc_floats(n);
        fill_normal(x, n, sh.mean, 1.0);
        fill_normal(y, n, 0.0, 1.0);
        set_threads(1);
        AllMetrics a = compute_all(x, y, sh.nseq, sh.seq, sh.width);
        set_threads(2);
        AllMetrics b = compute_all(x, y, sh.nseq, sh.seq, sh.width);
        set_threads(3);
        AllMetrics c = compute_all(x, y, sh.nseq, sh.seq, sh.width);
        snprintf(what, sizeof what, "bit-identical across 1/2/3 threads, shape %d/%d/%d", sh.nseq,
                 sh.seq, sh.width);
        check(a.rc == 0 && memcmp(&a, &b, sizeof a) == 0 && memcmp(&a, &c, sizeof a) == 0 &&
                  a.ms == b.ms && a.var == b.var && a.ct == b.ct && a.cl == b.cl && a.er == b.er,
              what);
        free(x);
        free(y);
    }
    set_threads(2);
}

/* attention entropy against plain loops (libm's log) over random causal softmax rows, and
 * uniform causal attention against its closed form mean_i ln(i + 1). SEQ = 37 gives rows
 * shorter and longer than the metric's lanes; logits of std 8 give probabilities from about 1
 * down to float's subnormals, through every binade that the metric's own log reduces. */
static void test_attn_entropy(void) {
    enum { NSEQ = 3, HEADS = 2, SEQ = 37 };
    static float probs[NSEQ * HEADS * SEQ * SEQ];
    for (int r = 0; r < NSEQ * HEADS * SEQ; r++) {
        int i = r % SEQ;
        double z = 0.0, logits[SEQ];
        for (int j = 0; j <= i; j++) {
            logits[j] = 8.0 * rng_normal();
            z += exp(logits[j]);
        }
        for (int j = 0; j < SEQ; j++) {
            probs[(size_t)r * SEQ + j] = j <= i ? (float)(exp(logits[j]) / z) : 0.0f;
        }
    }
    double per_head[HEADS], want_head[HEADS] = {0};
    double got = ns_metric_attn_entropy(probs, NSEQ, HEADS, SEQ, per_head);
    for (int b = 0; b < NSEQ; b++) {
        for (int h = 0; h < HEADS; h++) {
            for (int i = 0; i < SEQ; i++) {
                for (int j = 0; j <= i; j++) {
                    double p = probs[(((size_t)b * HEADS + h) * SEQ + i) * SEQ + j];
                    want_head[h] -= p > 0 ? p * log(p) / (NSEQ * SEQ) : 0.0;
                }
            }
        }
    }
    check_close(per_head[0], want_head[0], 1e-12, 0, "attn_entropy head 0 vs direct loops");
    check_close(per_head[1], want_head[1], 1e-12, 0, "attn_entropy head 1 vs direct loops");
    check_close(got, (want_head[0] + want_head[1]) / 2, 1e-12, 0, "attn_entropy mean over heads");

    double uniform_want = 0.0;
    for (int r = 0; r < NSEQ * HEADS * SEQ; r++) {
        int i = r % SEQ;
        for (int j = 0; j < SEQ; j++) {
            probs[(size_t)r * SEQ + j] = j <= i ? (float)(1.0 / (i + 1)) : 0.0f;
        }
    }
    for (int i = 0; i < SEQ; i++) {
        uniform_want += log(i + 1.0) / SEQ;
    }
    /* the float rounding of 1/(i+1) limits agreement to ~1e-7 */
    check_close(ns_metric_attn_entropy(probs, NSEQ, HEADS, SEQ, per_head), uniform_want, 1e-6, 0,
                "attn_entropy of uniform causal attention = mean ln(i+1)");
}

/* MoE routing metrics against independent computations: loads by counting per expert with a
 * different loop order, entropy of uniform and one-hot routers in closed form */
static void test_moe_metrics(void) {
    enum { N = 13, K = 2, E = 5 };
    int expert[N * K], row[N * K];
    float probs[N * E];
    for (int s = 0; s < N * K; s++) {
        expert[s] = (int)(rng_next() % E);
        row[s] = (rng_next() % 4 == 0) ? -1 : s;
    }
    double load[E];
    double cv = ns_metric_expert_load(expert, N, K, E, load);
    double total = 0.0, mean_dev = 0.0;
    for (int e = 0; e < E; e++) {
        int count = 0;
        for (int i = 0; i < N; i++) {
            for (int r = 0; r < K; r++) {
                count += expert[i * K + r] == e;
            }
        }
        check_close(load[e], (double)count / (N * K), 1e-15, 0, "expert_load vs counting");
        total += load[e];
        mean_dev += (load[e] - 0.2) * (load[e] - 0.2) / E;
    }
    check_close(total, 1.0, 1e-14, 0, "expert loads sum to 1");
    check_close(cv, sqrt(mean_dev) / 0.2, 1e-12, 0, "load_cv = sd / mean");
    int dropped = 0;
    for (int s = 0; s < N * K; s++) {
        dropped += row[s] < 0;
    }
    check_close(ns_metric_dropped_frac(row, N, K), (double)dropped / (N * K), 1e-15, 0,
                "dropped_frac vs counting");
    for (int i = 0; i < N * E; i++) {
        probs[i] = 1.0f / E;
    }
    check_close(ns_metric_router_entropy(probs, N, E), log((double)E), 1e-7, 0,
                "router entropy of a uniform router = ln E");
    for (int i = 0; i < N * E; i++) {
        probs[i] = (i % E == 2) ? 1.0f : 0.0f;
    }
    check_close(ns_metric_router_entropy(probs, N, E), 0.0, 0, 1e-15,
                "router entropy of a one-hot router = 0");
}

/* eff_rank over a layer large enough to run its sequences in parallel (more sequences than
 * threads): the SVD reference, and bit for bit the index-order mean of the sequences computed
 * one at a time, on 1 and 2 threads; a non-finite sequence makes the layer's result NAN. */
static void test_eff_rank_parallel(void) {
    enum { NSEQ = 9, SEQ = 32, WIDTH = 128 }; /* 36864 elements: above the parallel threshold */
    size_t mat = (size_t)SEQ * WIDTH;
    float *x = alloc_floats(NSEQ * mat);
    fill_normal(x, NSEQ * mat, 0.2, 1.0);
    double one[NSEQ], want = 0.0, got[2];
    for (int s = 0; s < NSEQ; s++) {
        check(ns_metric_eff_rank(x + s * mat, 1, SEQ, WIDTH, &one[s]) == 0, "eff_rank status");
        want += one[s];
    }
    want /= NSEQ;
    for (int t = 1; t <= 2; t++) {
        set_threads(t);
        check(ns_metric_eff_rank(x, NSEQ, SEQ, WIDTH, &got[t - 1]) == 0, "eff_rank status");
    }
    check_close(got[1], ref_eff_rank(x, NSEQ, SEQ, WIDTH, 0), 1e-6, 0.0,
                "eff_rank of a parallel layer vs SVD");
    check(memcmp(&got[0], &want, sizeof want) == 0 && memcmp(&got[1], &want, sizeof want) == 0,
          "eff_rank of a parallel layer: the mean of its sequences, bit for bit, 1 and 2 threads");
    x[5 * mat + 7] = INFINITY;
    check(ns_metric_eff_rank(x, NSEQ, SEQ, WIDTH, &got[0]) == 0 && isnan(got[0]),
          "eff_rank of a layer with a non-finite sequence is NAN");
    free(x);
}

int main(void) {
    test_moe_metrics();
    test_attn_entropy();
    test_random_shapes();
    test_mean_square_long();
    test_closed_forms();
    test_tolerance_is_meaningful();
    test_thread_invariance();
    test_eff_rank_parallel();
    printf("test_metrics: %d checks, %d failed\n", g_checks, g_failed);
    return g_failed != 0;
}
