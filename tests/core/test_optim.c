/* test_optim.c: AdamW against a direct double-precision transcription of its definition
 * (Loshchilov & Hutter: decoupled weight decay), the warmup-cosine schedule against its closed
 * form, and deterministic sums of squares across thread counts. */
#include "normscope.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static void test_adamw(void)
{
    enum { N = 5, STEPS = 7 };
    ns_adamw o = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8};
    float w[N] = {0.5f, -1.0f, 2.0f, 0.0f, -0.25f}, m[N] = {0}, v[N] = {0};
    double rw[N], rm[N] = {0}, rv[N] = {0};
    for (int i = 0; i < N; i++)
        rw[i] = w[i];
    for (int t = 1; t <= STEPS; t++) {
        float g[N];
        for (int i = 0; i < N; i++)
            g[i] = (float)(sin(1.0 + i + 0.7 * t) * (i + 1));
        double lr = 0.01 * t, wd = 0.1, scale = 0.5, du2, w2, ref_du2 = 0, ref_w2 = 0;
        ns_adamw_update(w, g, m, v, N, &o, lr, wd, t, scale, &du2, &w2);
        for (int i = 0; i < N; i++) {
            double gi = (double)g[i] * scale;
            rm[i] = 0.9 * rm[i] + 0.1 * gi;
            rv[i] = 0.95 * rv[i] + 0.05 * gi * gi;
            double mhat = rm[i] / (1 - pow(0.9, t)), vhat = rv[i] / (1 - pow(0.95, t));
            double step = lr * (mhat / (sqrt(vhat) + 1e-8) + wd * rw[i]);
            ref_w2 += rw[i] * rw[i];
            ref_du2 += step * step;
            rw[i] -= step;
        }
        for (int i = 0; i < N; i++)
            CHECK(fabs(w[i] - rw[i]) < 1e-5 * (1 + fabs(rw[i])), "step %d w[%d] %.8f vs %.8f", t,
                  i, w[i], rw[i]);
        CHECK(fabs(du2 - ref_du2) < 1e-4 * ref_du2 && fabs(w2 - ref_w2) < 1e-5 * ref_w2,
              "step %d sums %.6g %.6g vs %.6g %.6g", t, du2, w2, ref_du2, ref_w2);
    }
}

/* a length that fills several chunks and ends off the lanes: every element against the direct
 * transcription (one step from zero moments, the same double arithmetic: equal after rounding),
 * the sums against long-double ones, and 1 and 2 threads bit-identical */
static void test_adamw_long(void)
{
    size_t n = 2 * 16384 + 1003;
    ns_adamw o = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8};
    float *buf = calloc(7 * n, sizeof *buf);
    if (!buf) {
        CHECK(0, "allocation");
        return;
    }
    float *w = buf, *g = buf + n, *m = buf + 2 * n, *v = buf + 3 * n, *w2nd = buf + 4 * n;
    float *m2nd = buf + 5 * n, *v2nd = buf + 6 * n;
    ns_fill_gaussian(w, n, 1.0, 3, -1, "w");
    ns_fill_gaussian(g, n, 0.1, 4, -1, "g");
    memcpy(w2nd, w, n * sizeof *w);
    long double ref_du2 = 0, ref_w2 = 0;
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        double gi = (double)g[i] * 0.5, b1 = 1 - 0.9, b2 = 1 - 0.95; /* 1 - beta^1 */
        double mhat = b1 * gi / b1, vhat = b2 * gi * gi / b2;
        double step = 1e-3 * (mhat / (sqrt(vhat) + 1e-8) + 0.1 * w[i]);
        ref_du2 += (long double)step * step;
        ref_w2 += (long double)w[i] * w[i];
        w2nd[i] = (float)(w[i] - step); /* the expected result, kept in w2nd for now */
    }
    double du2, w2, du2b, w2b;
    omp_set_num_threads(1);
    ns_adamw_update(w, g, m, v, n, &o, 1e-3, 0.1, 1, 0.5, &du2, &w2);
    for (size_t i = 0; i < n; i++)
        wrong += w[i] != w2nd[i];
    CHECK(wrong == 0, "AdamW: %zu of %zu weights differ from the direct computation", wrong, n);
    CHECK(fabs(du2 - (double)ref_du2) < 1e-12 * (double)ref_du2 &&
              fabs(w2 - (double)ref_w2) < 1e-12 * (double)ref_w2,
          "AdamW sums %.17g %.17g vs %.17Lg %.17Lg", du2, w2, ref_du2, ref_w2);
    /* again from the same start, at 2 threads */
    ns_fill_gaussian(w2nd, n, 1.0, 3, -1, "w");
    omp_set_num_threads(2);
    ns_adamw_update(w2nd, g, m2nd, v2nd, n, &o, 1e-3, 0.1, 1, 0.5, &du2b, &w2b);
    CHECK(memcmp(w, w2nd, n * sizeof *w) == 0 && memcmp(m, m2nd, n * sizeof *m) == 0 &&
              memcmp(v, v2nd, n * sizeof *v) == 0 && du2 == du2b && w2 == w2b,
          "AdamW differs between 1 and 2 threads");
    free(buf);
}

static void test_schedule(void)
{
    CHECK(ns_lr_at(0, 10, 100, 1.0, 0.1) == 0.0, "lr at step 0");
    CHECK(fabs(ns_lr_at(5, 10, 100, 1.0, 0.1) - 0.5) < 1e-15, "warmup midpoint");
    CHECK(fabs(ns_lr_at(10, 10, 100, 1.0, 0.1) - 1.0) < 1e-15, "end of warmup");
    CHECK(fabs(ns_lr_at(55, 10, 100, 1.0, 0.1) - 0.55) < 1e-12, "cosine midpoint");
    CHECK(fabs(ns_lr_at(100, 10, 100, 1.0, 0.1) - 0.1) < 1e-15, "end");
    CHECK(fabs(ns_lr_at(200, 10, 100, 1.0, 0.1) - 0.1) < 1e-15, "after the end");
}

static void test_sum_squares(void)
{
    size_t n = 300000;
    float *x = malloc(n * sizeof *x);
    ns_fill_gaussian(x, n, 1.0, 2, -1, "sumsq");
    omp_set_num_threads(1);
    double a = ns_sum_squares(x, n);
    omp_set_num_threads(2);
    double b = ns_sum_squares(x, n);
    long double ref = 0;
    for (size_t i = 0; i < n; i++)
        ref += (long double)x[i] * x[i];
    CHECK(a == b, "sum of squares differs between 1 and 2 threads: %.17g %.17g", a, b);
    CHECK(fabs(a - (double)ref) < 1e-12 * (double)ref, "sum of squares %.17g vs %.17Lg", a, ref);
    free(x);
}

int main(void)
{
    test_adamw();
    test_adamw_long();
    test_schedule();
    test_sum_squares();
    printf("test_optim: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
