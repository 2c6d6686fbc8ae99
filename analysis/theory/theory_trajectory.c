/* theory_trajectory.c: the score-field trajectory Monte Carlo of the Transformer/MoE theory
 * (theory.h, NS_THEORY_ATTN_TRAJECTORY; analysis/theory/README.md, section 9.9).
 *
 * As d -> infinity with H fixed, attention is Gaussian only conditional on its score fields: each
 * head's scores s_ij = q_i . k_j / sqrt(d/H) stay an O(1) random Gaussian field, so the Gram
 * matrix of each sequence stays random, its queries share key preferences, and the gains of
 * successive blocks are correlated through the Grams they pass on. Given every score field of a
 * sequence, everything else (values, MLP, norms, and backward the gradient Grams under gradient
 * independence) is deterministic. So one trajectory is the Gram recursion of theory_transformer.c
 * with the attention of each sublayer taken at H sampled score fields of its own input Gram (the
 * Monte Carlo attention model with H samples: the mean over heads of P Z P^T, and the same
 * fields again backward), and the prediction is the mean of the metrics over trajectories. */
#include "theory_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Trajectories run in batches; after each batch from the second on, the run stops once every
 * standard error of act_ms, grad_ms and cos_tokens is below REL_SE of its value (cosines: of
 * max(|value|, 0.05)), so cases whose trajectories barely differ cost a few batches. The rule
 * reads only the trajectories' own numbers, so the result stays deterministic. */
#define BATCH 16
#define REL_SE 0.005

/* 1 if every standard error is below REL_SE after n trajectories (sums s, squares sq) */
static int precise_enough(const double *s, const double *sq, size_t n1, int n)
{
    for (size_t e = 0; e < 3 * n1; e++) {
        double m = s[e] / n, var = (sq[e] / n - m * m) * n / (n - 1.0);
        double scale = e >= 2 * n1 ? fmax(fabs(m), 0.05) : fabs(m);
        if (var > 0 && sqrt(var / n) > REL_SE * scale)
            return 0;
    }
    return 1;
}

/* splitmix64: a well-mixed seed for trajectory n */
static uint64_t trajectory_seed(uint64_t seed, uint64_t n)
{
    uint64_t z = seed + (n + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The norms' O(1/d) factors (ns_tf_finite) on the mean of the N trajectories in out, trajectory
 * i's n array entries at each[i * stride]. The factors read the means of attn_out_ms (and
 * act_ms), so the corrected grad_ms is no plain mean over trajectories, and its standard error
 * must carry their spread too: a jackknife, the factors applied to every leave-one-out mean.
 * Where the trajectories' own grad_ms barely differ (PostNorm with GELU) that spread is all. */
static int finite_terms(const ns_theory_tf_input *in, const ns_schedule *rows, const double *each,
                        int N, size_t stride, size_t n, int dual, ns_theory *out)
{
    const int L = in->base.depth;
    const size_t n1 = (size_t)L + 1;
    double *mean = malloc((2 * n + (size_t)N * n1) * sizeof *mean);
    if (!mean)
        return NS_ERR_NOMEM;
    double *loo = mean + n, *theta = loo + n;
    memcpy(mean, out->act_ms, n * sizeof *mean);
    int st = ns_tf_finite(in, rows, out);
    if (st != NS_OK || !out->finite || N < 2) { /* one trajectory: its se stays 0 */
        free(mean);
        return st;
    }
    for (int i = 0; i < N && st == NS_OK; i++) {
        for (size_t e = 0; e < n; e++)
            loo[e] = (N * mean[e] - each[(size_t)i * stride + e]) / (N - 1);
        ns_theory v = {0};
        ns_tf_arrays_at(&v, loo, L, dual);
        if ((st = ns_tf_finite(in, rows, &v)) == NS_OK)
            memcpy(theta + (size_t)i * n1, v.grad_ms, n1 * sizeof *theta);
    }
    for (size_t e = 0; e < n1 && st == NS_OK; e++) {
        double tbar = 0, ss = 0;
        for (int i = 0; i < N; i++)
            tbar += theta[(size_t)i * n1 + e] / N;
        for (int i = 0; i < N; i++)
            ss += (theta[(size_t)i * n1 + e] - tbar) * (theta[(size_t)i * n1 + e] - tbar);
        out->grad_ms_se[e] = sqrt(ss * (N - 1.0) / N);
    }
    free(mean);
    return st;
}

int ns_tf_trajectories(const ns_theory_tf_input *in, const ns_schedule *rows, ns_theory *out)
{
    int L = in->base.depth, nmax = in->mc_samples > 0 ? in->mc_samples : 256, N = 0;
    if (in->heads < 1)
        return NS_ERR_INVALID;
    /* the arrays of ns_theory_transformer (3 of L+1, 5 of L, and ResiDual's 2 of L+1) and the
     * three standard errors, then the sums of squares of the first three */
    size_t n1 = (size_t)L + 1, nmean = 3 * n1 + 5 * (size_t)L, nall = nmean + 2 * n1;
    double *base = calloc(nall + 6 * n1, sizeof *base);
    if (!base)
        return NS_ERR_NOMEM;
    double *sq = base + nall + 3 * n1;
    double *each = NULL; /* every trajectory's arrays, nall each: finite_terms' jackknife */
    int dual = 0;
    ns_theory_tf_input one = *in;
    one.attn = NS_THEORY_ATTN_MONTE_CARLO;
    one.mc_samples = in->heads; /* one score field per head */
    one.base.width = 0;         /* the norms' O(1/d) terms apply once, to the mean */
    int st = NS_OK;
    char model[sizeof out->model] = "";
    /* a batch's trajectories run on the OpenMP threads, each with its own seed and workspace
     * (the BLAS inside is single-threaded, threads.c), and are summed in trajectory order: the
     * result does not depend on the thread count */
    ns_theory batch[BATCH];
    int batch_st[BATCH];
    for (int n0 = 0; n0 < nmax && st == NS_OK; n0 += BATCH) {
        if (n0 >= 2 * BATCH && precise_enough(base, sq, n1, n0))
            break;
        int nb = nmax - n0 < BATCH ? nmax - n0 : BATCH;
        double *grown = realloc(each, ((size_t)n0 + nb) * nall * sizeof *each);
        if (!grown) {
            st = NS_ERR_NOMEM;
            break;
        }
        each = grown;
#pragma omp parallel for schedule(dynamic, 1)
        for (int b = 0; b < nb; b++) {
            ns_theory_tf_input mine = one;
            mine.mc_seed = trajectory_seed(in->mc_seed, (uint64_t)(n0 + b));
            batch_st[b] = ns_theory_transformer(&mine, &batch[b]);
        }
        for (int b = 0; b < nb; b++) {
            if (st == NS_OK && (st = batch_st[b]) == NS_OK) {
                const ns_theory *t = &batch[b];
                /* the arrays of t are one allocation in this order (theory_transformer.c) */
                if (n0 + b == 0 && t->dual_act_ms)
                    nmean = nall, dual = 1;
                for (size_t e = 0; e < nmean; e++)
                    base[e] += t->act_ms[e];
                memcpy(each + (size_t)(n0 + b) * nall, t->act_ms, nmean * sizeof *each);
                for (size_t e = 0; e < 3 * n1; e++)
                    sq[e] += t->act_ms[e] * t->act_ms[e];
                if (n0 + b == 0)
                    memcpy(model, t->model, sizeof model);
                N = n0 + b + 1;
            }
            if (batch_st[b] == NS_OK)
                ns_theory_free(&batch[b]);
        }
    }
    if (st != NS_OK) {
        free(base);
        free(each);
        return st;
    }
    memset(out, 0, sizeof *out);
    ns_tf_arrays_at(out, base, L, dual);
    out->act_ms_se = base + nall;
    out->grad_ms_se = out->act_ms_se + n1;
    out->cos_tokens_se = out->grad_ms_se + n1;
    for (size_t e = 0; e < nmean; e++)
        base[e] /= N;
    for (size_t e = 0; e < 3 * n1; e++) { /* the standard error of the mean over N */
        double var = N > 1 ? (sq[e] / N - base[e] * base[e]) * N / (N - 1.0) : 0;
        out->act_ms_se[e] = sqrt(var > 0 ? var / N : 0);
    }
    out->exact = 0;
    st = finite_terms(in, rows, each, N, nall, nmean, dual, out);
    free(each);
    if (st != NS_OK) {
        free(base);
        memset(out, 0, sizeof *out);
        return st;
    }
    /* the one-trajectory model line names the block's recursion after its first ": ", and its
     * attention model, which here is one sampled field per head: said below instead */
    static const char mc[] = "; softmax attention by Monte Carlo";
    char *tail = strstr(model, ": "), *attn = strstr(model, mc);
    if (attn)
        memmove(attn, attn + strlen(mc), strlen(attn + strlen(mc)) + 1);
    snprintf(out->model, sizeof out->model,
             "score-field trajectory Monte Carlo, %d trajectories of %d heads (one sampled "
             "score field per head and sublayer), d -> inf%s",
             N, in->heads, tail ? tail : "");
    return NS_OK;
}
