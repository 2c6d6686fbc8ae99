/* test_markov.c: the synthetic language's exact entropy rate against a Monte Carlo estimate
 * (the true model's negative log-likelihood on sampled stationary sequences), and closed forms. */
#include "markov.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

/* mean nll per token over R independent sequences of n tokens, and its standard error */
static void monte_carlo(const ns_markov *mc, int k, int R, int n, double *mean, double *se)
{
    int *x = malloc((size_t)n * sizeof *x);
    double s = 0, s2 = 0;
    for (int r = 0; r < R; r++) {
        ns_markov_sample(mc, x, n, 7, r, "test");
        double v = ns_markov_nll(mc, x, n) / (n - k);
        s += v, s2 += v * v;
    }
    *mean = s / R;
    *se = sqrt((s2 / R - *mean * *mean) / (R - 1));
    free(x);
}

int main(void)
{
    const int cases[][3] = {{16, 2, 3}, {8, 3, 2}, {32, 1, 4}};
    for (int i = 0; i < 3; i++) {
        ns_markov *mc = NULL;
        int V = cases[i][0], k = cases[i][1], b = cases[i][2];
        CHECK(ns_markov_create(&mc, V, k, b, 0.05, 11) == 0, "create V=%d k=%d", V, k);
        if (!mc)
            continue;
        double rate = ns_markov_entropy_rate(mc), mean, se;
        monte_carlo(mc, k, 40, 20000, &mean, &se);
        CHECK(fabs(mean - rate) < 4 * se + 1e-3, "V=%d k=%d b=%d: rate %.5f, Monte Carlo %.5f +- %.5f",
              V, k, b, rate, mean, se);
        CHECK(rate > 0 && rate < log(V), "V=%d: rate %.4f outside (0, ln V)", V, rate);
        double f8 = ns_markov_loss_floor(mc, 8), f1000 = ns_markov_loss_floor(mc, 1000);
        CHECK(f8 >= rate - 1e-12 && f8 >= f1000 - 1e-12 && fabs(f1000 - rate) < 0.01 * rate + 1e-9,
              "floors: T=8 %.5f, T=1000 %.5f, rate %.5f", f8, f1000, rate);
        if (k == 1) /* every target sees its full one-symbol context */
            CHECK(fabs(f8 - rate) < 1e-12, "k=1 floor %.6f != rate %.6f", f8, rate);
        ns_markov_free(mc);
    }
    ns_markov *mc = NULL;
    ns_markov_create(&mc, 10, 2, 3, 1.0, 3); /* eps = 1: uniform i.i.d. symbols */
    CHECK(fabs(ns_markov_entropy_rate(mc) - log(10.0)) < 1e-12, "eps=1: %.15f", ns_markov_entropy_rate(mc));
    CHECK(fabs(ns_markov_loss_floor(mc, 5) - log(10.0)) < 1e-9, "eps=1 floor %.12f", ns_markov_loss_floor(mc, 5));
    ns_markov_free(mc);
    ns_markov_create(&mc, 10, 2, 1, 0.0, 3); /* one successor per context: deterministic */
    CHECK(fabs(ns_markov_entropy_rate(mc)) < 1e-12, "deterministic: %.3g", ns_markov_entropy_rate(mc));
    ns_markov_free(mc);
    CHECK(ns_markov_create(&mc, 1, 2, 1, 0.1, 3) != 0 && !mc, "V=1 accepted");
    CHECK(ns_markov_create(&mc, 256, 4, 2, 0.1, 3) != 0 && !mc, "2^32 contexts accepted");
    printf("test_markov: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
