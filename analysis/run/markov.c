/* markov.c: the synthetic language of markov.h. */
#include "markov.h"
#include "normscope.h"
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ns_markov {
    int V, k, branching;
    double eps;
    size_t ncontexts;   /* V^k; a context is sum_j x_{t-k+j} V^(k-1-j) */
    int *next;          /* [ncontexts, branching] allowed next symbols */
    double *q;          /* [ncontexts, branching] their Dirichlet weights */
    double *pi;         /* [ncontexts] stationary distribution */
    double *pi_cdf;     /* [ncontexts] its cumulative sums, for stationary starts */
    double rate;
};

static gsl_rng *stream(uint64_t seed, long index, const char *name)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (r) {
        uint64_t key = ns_stream_key(seed, (int)(index % 2147483647), name);
        unsigned long s = (unsigned long)((key ^ (key >> 32)) & 0xffffffffUL);
        gsl_rng_set(r, s ? s : 1);
    }
    return r;
}

/* P(s | c) */
static double prob(const ns_markov *mc, size_t c, int s)
{
    double p = mc->eps / mc->V;
    for (int j = 0; j < mc->branching; j++)
        if (mc->next[c * mc->branching + j] == s)
            p += (1 - mc->eps) * mc->q[c * mc->branching + j];
    return p;
}

static double xlogx(double p) { return p > 0 ? p * log(p) : 0; }

/* the stationary distribution by power iteration: pi'(shift(c) + s) += pi(c) P(s | c), with the
 * uniform part folded in as eps/V times the mass of each shifted prefix. Converges geometrically
 * at rate (1 - eps) or faster; stops when the L1 change is below 1e-14. NS_ERR_NOMEM or NS_OK. */
static int stationary(ns_markov *mc)
{
    size_t C = mc->ncontexts, V = (size_t)mc->V, stride = C / V;
    double *nxt = malloc(C * sizeof *nxt), *shift_mass = malloc(stride * sizeof *shift_mass);
    if (!nxt || !shift_mass) {
        free(nxt);
        free(shift_mass);
        return NS_ERR_NOMEM;
    }
    for (size_t c = 0; c < C; c++)
        mc->pi[c] = 1.0 / C;
    for (int it = 0; it < 100000; it++) {
        memset(nxt, 0, C * sizeof *nxt);
        memset(shift_mass, 0, stride * sizeof *shift_mass);
        for (size_t c = 0; c < C; c++) {
            size_t base = (c % stride) * V; /* drop the oldest symbol, make room for the new */
            shift_mass[c % stride] += mc->pi[c];
            for (int j = 0; j < mc->branching; j++)
                nxt[base + (size_t)mc->next[c * mc->branching + j]] +=
                    mc->pi[c] * (1 - mc->eps) * mc->q[c * mc->branching + j];
        }
        double change = 0;
        for (size_t c = 0; c < C; c++) {
            double v = nxt[c] + shift_mass[c / V] * mc->eps / (double)V;
            change += fabs(v - mc->pi[c]);
            mc->pi[c] = v;
        }
        if (change < 1e-14)
            break;
    }
    free(nxt);
    free(shift_mass);
    return NS_OK;
}

int ns_markov_create(ns_markov **out, int V, int k, int branching, double eps, uint64_t seed)
{
    *out = NULL;
    if (V < 2 || k < 1 || branching < 1 || branching > V || !(eps >= 0 && eps <= 1))
        return NS_ERR_INVALID;
    size_t C = 1;
    for (int j = 0; j < k; j++)
        if ((C *= (size_t)V) > ((size_t)1 << 22))
            return NS_ERR_INVALID;
    ns_markov *mc = calloc(1, sizeof *mc);
    if (!mc)
        return NS_ERR_NOMEM;
    *mc = (ns_markov){.V = V, .k = k, .branching = branching, .eps = eps, .ncontexts = C};
    mc->next = malloc(C * branching * sizeof *mc->next);
    mc->q = malloc(C * branching * sizeof *mc->q);
    mc->pi = malloc(2 * C * sizeof *mc->pi);
    int *perm = malloc((size_t)V * sizeof *perm);
    double *alpha = malloc((size_t)branching * sizeof *alpha);
    gsl_rng *r = stream(seed, -2, "markov_chain");
    if (!mc->next || !mc->q || !mc->pi || !perm || !alpha || !r) {
        free(perm), free(alpha), gsl_rng_free(r);
        ns_markov_free(mc);
        return NS_ERR_NOMEM;
    }
    mc->pi_cdf = mc->pi + C;
    for (int s = 0; s < V; s++)
        perm[s] = s;
    for (int j = 0; j < branching; j++)
        alpha[j] = 1.0;
    for (size_t c = 0; c < C; c++) {
        /* `branching` distinct symbols: a partial Fisher-Yates shuffle */
        for (int j = 0; j < branching; j++) {
            int pick = j + (int)gsl_rng_uniform_int(r, (unsigned long)(V - j)), t = perm[j];
            perm[j] = perm[pick], perm[pick] = t;
            mc->next[c * branching + j] = perm[j];
        }
        gsl_ran_dirichlet(r, (size_t)branching, alpha, mc->q + c * branching);
    }
    free(perm), free(alpha), gsl_rng_free(r);
    if (stationary(mc) != NS_OK) {
        ns_markov_free(mc);
        return NS_ERR_NOMEM;
    }
    double rate = 0, acc = 0;
    for (size_t c = 0; c < C; c++) {
        /* H(P(. | c)): the support symbols, then the V - b symbols with eps/V only */
        double h = -(V - branching) * xlogx(eps / V);
        for (int j = 0; j < branching; j++)
            h -= xlogx(prob(mc, c, mc->next[c * branching + j]));
        rate += mc->pi[c] * h;
        acc += mc->pi[c];
        mc->pi_cdf[c] = acc;
    }
    mc->rate = rate;
    *out = mc;
    return NS_OK;
}

void ns_markov_free(ns_markov *mc)
{
    if (!mc)
        return;
    free(mc->next);
    free(mc->q);
    free(mc->pi);
    free(mc);
}

double ns_markov_entropy_rate(const ns_markov *mc) { return mc->rate; }

/* the entropy of j consecutive symbols of a stationary sequence (j <= k), from the marginal of pi
 * over the j most recent symbols of a context */
static double block_entropy(const ns_markov *mc, int j)
{
    size_t m = 1;
    for (int i = 0; i < j; i++)
        m *= (size_t)mc->V;
    double *marg = calloc(m, sizeof *marg), h = 0;
    if (!marg)
        return NAN;
    for (size_t c = 0; c < mc->ncontexts; c++)
        marg[c % m] += mc->pi[c];
    for (size_t i = 0; i < m; i++)
        h -= xlogx(marg[i]);
    free(marg);
    return h;
}

double ns_markov_loss_floor(const ns_markov *mc, int T)
{
    /* target t (t = 0..T-1) is symbol t+1 given symbols 0..t: H(X_{t+1} | X_0..X_t), which is
     * H_{t+2} - H_{t+1} (block entropies) while t + 1 < k, and the entropy rate after */
    double sum = 0;
    for (int t = 0; t < T; t++)
        sum += t + 1 < mc->k ? block_entropy(mc, t + 2) - block_entropy(mc, t + 1) : mc->rate;
    return sum / T;
}

int ns_markov_sample(const ns_markov *mc, int *out, int n, uint64_t seed, long index,
                     const char *name)
{
    gsl_rng *r = stream(seed, index, name);
    if (!r)
        return NS_ERR_NOMEM;
    /* a stationary start: a context drawn from pi, its symbols oldest first */
    double u = gsl_rng_uniform(r);
    size_t lo = 0, hi = mc->ncontexts - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (mc->pi_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t c = lo, stride = mc->ncontexts / mc->V;
    int hist[64];
    for (int j = mc->k - 1, cc = (int)c; j >= 0; j--, cc /= mc->V)
        hist[j] = cc % mc->V;
    for (int t = 0; t < n; t++) {
        int s;
        if (t < mc->k) {
            s = hist[t];
        } else {
            if (gsl_rng_uniform(r) < mc->eps) {
                s = (int)gsl_rng_uniform_int(r, (unsigned long)mc->V);
            } else {
                double v = gsl_rng_uniform(r), a = 0;
                int j = 0;
                while (j < mc->branching - 1 && (a += mc->q[c * mc->branching + j]) <= v)
                    j++;
                s = mc->next[c * mc->branching + j];
            }
            c = (c % stride) * mc->V + (size_t)s;
        }
        out[t] = s;
    }
    gsl_rng_free(r);
    return NS_OK;
}

double ns_markov_nll(const ns_markov *mc, const int *x, int n)
{
    double nll = 0;
    for (int t = mc->k; t < n; t++) {
        size_t c = 0;
        for (int j = t - mc->k; j < t; j++)
            c = c * mc->V + (size_t)x[j];
        nll -= log(prob(mc, c, x[t]));
    }
    return nll;
}
