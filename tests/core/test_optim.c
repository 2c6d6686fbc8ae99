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
    test_schedule();
    test_sum_squares();
    printf("test_optim: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
