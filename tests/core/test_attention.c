/* test_attention.c: the float fast paths against naive references written here in double: the
 * attention (strided GEMMs per sequence and head) on several shapes including T = 1 and H = 1,
 * and GELU: the softmax and GELU loops in float use their own vectorized exponential (simd.h).
 * The references share no code with the library. */
#include "normscope.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int checks, failures;

/* cat and probs from the definition: for each sequence b, head h, query i, key j <= i:
 * s_ij = q_i . k_j / sqrt(dh) over the head's columns; p_ij = exp(s_ij) / sum_{j' <= i} exp(s_ij') */
static void naive_attention(double *cat, double *probs, const float *q, const float *k,
                            const float *v, int nseq, int T, int d, int H)
{
    int dh = d / H;
    for (int b = 0; b < nseq; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                double *p = probs + (((size_t)b * H + h) * T + i) * T;
                const float *qi = q + ((size_t)b * T + i) * d + h * dh;
                double norm = 0;
                for (int j = 0; j < T; j++) {
                    p[j] = 0;
                    if (j > i)
                        continue;
                    const float *kj = k + ((size_t)b * T + j) * d + h * dh;
                    double s = 0;
                    for (int e = 0; e < dh; e++)
                        s += (double)qi[e] * kj[e];
                    p[j] = exp(s / sqrt((double)dh));
                    norm += p[j];
                }
                for (int j = 0; j <= i; j++)
                    p[j] /= norm;
                for (int e = 0; e < dh; e++) {
                    double o = 0;
                    for (int j = 0; j <= i; j++)
                        o += p[j] * v[((size_t)b * T + j) * d + h * dh + e];
                    cat[((size_t)b * T + i) * d + h * dh + e] = o;
                }
            }
}

static double rel_error(const float *fast, const double *ref, size_t n)
{
    double diff = 0, mag = 1e-300;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(fast[i] - ref[i]));
        mag = fmax(mag, fabs(ref[i]));
    }
    return diff / mag;
}

/* q_std sets how far apart the scores lie: at 40, most of each row's e^(s - max) are below
 * float's range, where the float softmax writes 0 */
static void check(int nseq, int T, int d, int H, double q_std)
{
    size_t n = (size_t)nseq * T * d, np = (size_t)nseq * H * T * T;
    float *f = malloc((4 * n + np) * sizeof *f);
    double *r = malloc((n + np) * sizeof *r);
    float *q = f, *k = f + n, *v = f + 2 * n, *cat = f + 3 * n, *probs = f + 4 * n;
    ns_fill_gaussian(q, n, q_std, 1, -1, "q");
    ns_fill_gaussian(k, n, 1.5, 1, -1, "k");
    ns_fill_gaussian(v, n, 1.0, 1, -1, "v");
    ns_attention_forward(cat, probs, q, k, v, nseq, T, d, H);
    naive_attention(r, r + n, q, k, v, nseq, T, d, H);
    /* float32 with float accumulation inside sgemm: a few ulps times sqrt(T) */
    double e_cat = rel_error(cat, r, n), e_p = rel_error(probs, r + n, np);
    checks++;
    if (!(e_cat < 2e-5 && e_p < 2e-5)) {
        failures++;
        printf("FAIL nseq=%d T=%d d=%d H=%d: relative error cat %.2e probs %.2e\n", nseq, T, d,
               H, e_cat, e_p);
    }
    free(f);
    free(r);
}

/* GELU and its derivative in float, on a dense grid over [-30, 30], at 0, +-1e-30 and +-1e4
 * (where e^z would overflow or underflow without the clamps), against the tanh form in double:
 * 0.5 x (1 + tanh(k (x + c x^3))) */
static void check_gelu(void)
{
    enum { N = 600001, NX = 6 };
    static const float extremes[NX] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e4f, -1e4f};
    size_t n = N + NX;
    float *x = malloc(4 * n * sizeof *x), *y = x + n, *d = x + 2 * n, *ones = x + 3 * n;
    for (size_t i = 0; i < n; i++) {
        x[i] = i < N ? -30.0f + 60.0f * (float)i / (float)(N - 1) : extremes[i - N];
        d[i] = 0, ones[i] = 1;
    }
    ns_act_forward(y, x, n, NS_ACT_GELU);
    ns_act_backward(d, ones, x, n, NS_ACT_GELU);
    const double K = 0.7978845608028654, C = 0.044715;
    double worst_f = 0, worst_b = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i], u = K * (v + C * v * v * v), t = tanh(u);
        double f = 0.5 * v * (1 + t);
        double b = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * K * (1 + 3 * C * v * v);
        if (!isfinite(y[i]) || !isfinite(d[i])) {
            bad++;
            continue;
        }
        /* float rounding of x + c x^3 dominates far out on the negative side, where the value is
         * tiny, and the derivative crosses 0 near x = -0.75: relative to max(|f|, 1e-6) and
         * max(|f'|, 1e-3) */
        worst_f = fmax(worst_f, fabs(y[i] - f) / fmax(fabs(f), 1e-6));
        worst_b = fmax(worst_b, fabs(d[i] - b) / fmax(fabs(b), 1e-3));
    }
    /* a diverged stream: NaN in, NaN out (and no undefined behaviour on the way: UBSan) */
    float nan_in = NAN, nan_out = 0, nan_d = 0, one = 1;
    ns_act_forward(&nan_out, &nan_in, 1, NS_ACT_GELU);
    ns_act_backward(&nan_d, &one, &nan_in, 1, NS_ACT_GELU);
    bad += !isnan(nan_out) + !isnan(nan_d);
    checks++;
    if (bad || !(worst_f < 1e-5 && worst_b < 1e-4)) {
        failures++;
        printf("FAIL gelu: %d non-finite (or NaN not kept), worst relative error forward %.2e backward %.2e\n", bad,
               worst_f, worst_b);
    }
    free(x);
}

/* a diverged stream: a NaN in one query makes that query's row NaN and leaves the others */
static void check_nan(void)
{
    enum { T = 20, D = 8 };
    float q[T * D], k[T * D], v[T * D], cat[T * D], probs[T * T];
    ns_fill_gaussian(q, T * D, 1.0, 2, -1, "q");
    ns_fill_gaussian(k, T * D, 1.0, 2, -1, "k");
    ns_fill_gaussian(v, T * D, 1.0, 2, -1, "v");
    q[12 * D + 3] = NAN;
    ns_attention_forward(cat, probs, q, k, v, 1, T, D, 1);
    int bad = 0;
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++)
            bad += (i == 12) != (isnan(probs[i * T + j]) != 0);
    checks++;
    if (bad) {
        failures++;
        printf("FAIL nan: %d probabilities NaN where they should not be, or the reverse\n", bad);
    }
}

int main(void)
{
    ns_set_threads(2);
    check_gelu();
    check(2, 16, 32, 4, 1.5);
    check(3, 1, 8, 2, 1.5);    /* T = 1 */
    check(2, 37, 24, 1, 1.5);  /* H = 1, T not a power of two */
    check(1, 128, 64, 4, 1.5); /* a long sequence */
    check(4, 9, 12, 12, 1.5);  /* head width 1 */
    check(2, 37, 16, 2, 40);   /* scores hundreds apart */
    check_nan();
    printf("test_attention: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
