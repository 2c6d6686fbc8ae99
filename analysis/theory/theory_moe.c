/* theory_moe.c: the router's gate statistics for the mixture-of-experts theory (theory_internal.h,
 * analysis/theory/README.md, section 9.5).
 *
 * The router W_r ~ N(0, 1/d) gives two tokens logits l_i, l_j in R^E whose entries are i.i.d.
 * pairs with variance s (the router input's mean square) and correlation rho (the inputs'
 * cosine), as d -> infinity. The gates (core/ops_moe.c): p = softmax(l); top-1 keeps the raw
 * probability of the best expert, top-2 renormalizes the two best, g = p_x/(p_b1 + p_b2). Then
 *   nu(s, rho) = E[sum_{x in S_i and S_j} g_ix g_jx]   (the expert path: forward and backward)
 *   r(s, rho)  = E[sum_{x in S_i and S_j} sum_e J^i_xe J^j_xe],  J_xe = d g_x / d l_e
 * (the router's own gradient path). Both are Monte Carlo averages over 8192 draws with common
 * random numbers (fixed seed), on a grid of theta = arccos(rho) (33 points; the statistics have
 * a sqrt(1 - rho) cusp at rho = 1 that is smooth in theta) and of ln s (step 1/8, a grid node is
 * used as is, between nodes linear interpolation). Standard error of nu about 0.3%. */
#include "theory_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#define PI 3.14159265358979323846
#define G_DRAWS 8192
#define G_NTHETA 33
#define G_LNS_MIN (-6.0)
#define G_LNS_STEP 0.125
#define G_NNODES 161 /* ln s from -6 to 14 */

struct ns_tf_gates {
    int E, k;
    double *tab; /* [G_NNODES][2][G_NTHETA]: nu, r */
    char done[G_NNODES];
};

int ns_tf_gates_create(ns_tf_gates **out, int experts, int top_k)
{
    *out = NULL;
    if (experts < 1 || top_k < 1 || top_k > 2 || top_k > experts)
        return NS_ERR_INVALID;
    ns_tf_gates *g = calloc(1, sizeof *g);
    if (!g)
        return NS_ERR_NOMEM;
    g->tab = malloc((size_t)G_NNODES * 2 * G_NTHETA * sizeof(double));
    if (!g->tab) {
        free(g);
        return NS_ERR_NOMEM;
    }
    g->E = experts, g->k = top_k;
    *out = g;
    return NS_OK;
}

void ns_tf_gates_free(ns_tf_gates *g)
{
    if (!g)
        return;
    free(g->tab);
    free(g);
}

/* one token's routing: chosen experts x[], gates gx[], and the gate Jacobian rows J[k][E] */
static void route(int E, int k, const double *l, double *p, int x[2], double gx[2], double *J)
{
    double mx = l[0], sum = 0;
    for (int e = 1; e < E; e++)
        mx = l[e] > mx ? l[e] : mx;
    for (int e = 0; e < E; e++)
        sum += p[e] = exp(l[e] - mx);
    for (int e = 0; e < E; e++)
        p[e] /= sum;
    int b = 0, c = -1;
    for (int e = 1; e < E; e++)
        if (p[e] > p[b])
            b = e;
    x[0] = b;
    if (k == 1) {
        gx[0] = p[b];
        for (int e = 0; e < E; e++)
            J[e] = p[b] * ((e == b) - p[e]);
        return;
    }
    for (int e = 0; e < E; e++)
        if (e != b && (c < 0 || p[e] > p[c]))
            c = e;
    x[1] = c;
    gx[0] = p[b] / (p[b] + p[c]);
    gx[1] = p[c] / (p[b] + p[c]);
    double j = gx[0] * gx[1];
    memset(J, 0, 2 * (size_t)E * sizeof *J);
    J[b] = j, J[c] = -j;             /* d g_b / d l */
    J[E + b] = -j, J[E + c] = j;     /* d g_c / d l */
}

static int node(ns_tf_gates *g, int n, const double **v)
{
    double *out = g->tab + (size_t)n * 2 * G_NTHETA;
    *v = out;
    if (g->done[n])
        return NS_OK;
    int E = g->E, k = g->k;
    double sd = exp(0.5 * (G_LNS_MIN + n * G_LNS_STEP));
    double *buf = malloc((size_t)(6 + 4 * k) * E * sizeof *buf);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!buf || !r) {
        free(buf);
        gsl_rng_free(r);
        return NS_ERR_NOMEM;
    }
    gsl_rng_set(r, 20240611UL + 1000UL * (unsigned long)E + (unsigned long)k);
    double *xi = buf, *eta = buf + E, *li = buf + 2 * E, *lj = buf + 3 * E, *pi = buf + 4 * E,
           *pj = buf + 5 * E, *Ji = buf + 6 * E, *Jj = Ji + (size_t)k * E;
    memset(out, 0, 2 * G_NTHETA * sizeof *out);
    for (int t = 0; t < G_DRAWS; t++) {
        for (int e = 0; e < E; e++) {
            xi[e] = gsl_ran_gaussian_ziggurat(r, 1.0);
            eta[e] = gsl_ran_gaussian_ziggurat(r, 1.0);
            li[e] = sd * xi[e];
        }
        int xa[2], xb[2];
        double ga[2], gb[2];
        route(E, k, li, pi, xa, ga, Ji);
        for (int a = 0; a < G_NTHETA; a++) {
            double th = PI * a / (G_NTHETA - 1), rho = cos(th), s = sin(th);
            for (int e = 0; e < E; e++)
                lj[e] = sd * (rho * xi[e] + s * eta[e]);
            route(E, k, lj, pj, xb, gb, Jj);
            double nu = 0, rr = 0;
            for (int u = 0; u < k; u++)
                for (int w = 0; w < k; w++)
                    if (xa[u] == xb[w]) {
                        nu += ga[u] * gb[w];
                        for (int e = 0; e < E; e++)
                            rr += Ji[(size_t)u * E + e] * Jj[(size_t)w * E + e];
                    }
            out[a] += nu / G_DRAWS;
            out[G_NTHETA + a] += rr / G_DRAWS;
        }
    }
    free(buf);
    gsl_rng_free(r);
    g->done[n] = 1;
    return NS_OK;
}

/* cubic Lagrange in theta on one node's table */
static void interp_theta(const double *v, double th, double *nu, double *r)
{
    ns_tf_lagrange4(v, G_NTHETA, th / PI * (G_NTHETA - 1), nu, r);
}

int ns_tf_gates_at(ns_tf_gates *g, double s, double rho, double *nu, double *r)
{
    if (!(s > 0) || !isfinite(s) || !(rho >= -1.0001 && rho <= 1.0001))
        return NS_ERR_INVALID;
    double th = acos(rho > 1 ? 1 : rho < -1 ? -1 : rho);
    double x = (log(s) - G_LNS_MIN) / G_LNS_STEP;
    if (x < 0)
        x = 0;
    if (x > G_NNODES - 1)
        x = G_NNODES - 1;
    int n0 = (int)floor(x);
    double f = x - n0;
    if (f < 1e-9 || n0 == G_NNODES - 1)
        f = 0;
    const double *v;
    int st = node(g, n0, &v);
    if (st)
        return st;
    interp_theta(v, th, nu, r);
    if (f > 0) {
        double nu1, r1;
        if ((st = node(g, n0 + 1, &v)))
            return st;
        interp_theta(v, th, &nu1, &r1);
        *nu += f * (nu1 - *nu);
        *r += f * (r1 - *r);
    }
    return NS_OK;
}

int ns_theory_moe_gates(int experts, int top_k, double s, double rho, double *nu, double *r)
{
    if (!nu || !r)
        return NS_ERR_INVALID;
    ns_tf_gates *g;
    int st = ns_tf_gates_create(&g, experts, top_k);
    if (st == NS_OK)
        st = ns_tf_gates_at(g, s, rho, nu, r);
    ns_tf_gates_free(g);
    return st;
}
