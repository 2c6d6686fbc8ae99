/* ops_moe.c: a mixture-of-experts branch as a forward/backward pair.
 *
 * out[i] = sum over the token's top-k experts e (not dropped) of g_ie E_e(z_i), with
 * E_e(z) = W2_e phi(W1_e z), or W2_e Nm_e(phi(W1_e z)) with Sub-LN's mid norm, and gates from
 * a softmax router (normscope.h, ns_config).
 * Tokens are gathered per expert into contiguous rows, so each expert is one GEMM pair over all
 * of its tokens, never a per-token product. Selection is piecewise constant: the backward
 * flows through the gate values and the experts, not through the choice. Loops over tokens
 * write disjoint rows, so results do not depend on the thread count. */
#include "internal.h"
#include <string.h>

/* routing: probabilities, top-k choice, gates, capacity, gathered rows (see internal.h) */
static void route(ns_moe_cache *c, const ns_real *z, const ns_real *w_router, int N, int d,
                  int E, int k, double capacity)
{
    ns_linear_forward(c->probs, z, w_router, N, d, E); /* logits, softmaxed in place below */
#pragma omp parallel for schedule(static) if ((size_t)N * E >= NS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        ns_real *p = c->probs + (size_t)i * E;
        double max = p[0], sum = 0;
        for (int e = 1; e < E; e++)
            max = p[e] > max ? p[e] : max;
        for (int e = 0; e < E; e++)
            sum += exp((double)p[e] - max);
        c->lse[i] = (ns_real)(max + log(sum));
        for (int e = 0; e < E; e++)
            p[e] = (ns_real)(exp((double)p[e] - max) / sum);
        /* the k best experts, best first; ties go to the lower index */
        int best = 0, second = -1;
        for (int e = 1; e < E; e++)
            if (p[e] > p[best])
                best = e;
        for (int e = 0; k == 2 && e < E; e++)
            if (e != best && (second < 0 || p[e] > p[second]))
                second = e;
        c->expert[(size_t)i * k] = best;
        if (k == 1) {
            c->gates[i] = p[best]; /* Switch: the raw probability */
        } else {
            c->expert[(size_t)i * k + 1] = second;
            ns_real s = p[best] + p[second];
            c->gates[(size_t)i * k] = p[best] / s;
            c->gates[(size_t)i * k + 1] = p[second] / s;
        }
    }
    /* capacity: slots are served first choices first, then in token order */
    int cap = capacity > 0 ? (int)ceil(capacity * k * N / E) : N * k;
    memset(c->offset, 0, (size_t)(E + 1) * sizeof *c->offset);
    for (int r = 0; r < k; r++)
        for (int i = 0; i < N; i++) {
            int e = c->expert[(size_t)i * k + r];
            c->row[(size_t)i * k + r] = c->offset[e + 1] < cap ? c->offset[e + 1]++ : -1;
        }
    for (int e = 0; e < E; e++)
        c->offset[e + 1] += c->offset[e];
    for (size_t s = 0; s < (size_t)N * k; s++)
        if (c->row[s] >= 0)
            c->row[s] += c->offset[c->expert[s]];
}

/* expert e's mid norm on its n gathered rows from r0: an = Nm_e(a) */
static void mid_forward(const ns_moe_mid *mid, const ns_moe_cache *c, int e, int r0, int n, int He)
{
    size_t ho = (size_t)r0 * He, eo = (size_t)e * He;
    const ns_real *b = mid->b ? mid->b + eo : NULL;
    if (mid->kind == NS_NORM_DYT)
        ns_dyt_forward(c->an + ho, c->a + ho, mid->a + e, mid->g + eo, b, n, He);
    else
        ns_norm_forward(c->an + ho, c->mean ? c->mean + r0 : NULL, c->rstd + r0, c->a + ho,
                        mid->g + eo, b, n, He, mid->kind, mid->eps);
}

/* its backward: dinp (zeroed by the caller) and expert e's norm gradients accumulate */
static void mid_backward(const ns_moe_mid *mid, const ns_moe_cache *c, ns_real *dinp,
                         const ns_real *dout, int e, int r0, int n, int He)
{
    size_t ho = (size_t)r0 * He, eo = (size_t)e * He;
    ns_real *db = mid->db ? mid->db + eo : NULL;
    if (mid->kind == NS_NORM_DYT)
        ns_dyt_backward(dinp, mid->da + e, mid->dg + eo, db, dout, c->a + ho, mid->a + e,
                        mid->g + eo, n, He);
    else
        ns_norm_backward(dinp, mid->dg + eo, db, dout, c->a + ho, mid->g + eo,
                         c->mean ? c->mean + r0 : NULL, c->rstd + r0, n, He, mid->kind);
}

void ns_moe_forward(ns_real *out, ns_moe_cache *c, const ns_real *z, const ns_real *w_router,
                    const ns_real *w1, const ns_real *w2, int N, int d, int E, int He, int k,
                    double capacity, ns_act_kind act, const ns_moe_mid *mid)
{
    route(c, z, w_router, N, d, E, k, capacity);
#pragma omp parallel for schedule(static) if ((size_t)N * d >= NS_PAR_MIN)
    for (int i = 0; i < N; i++)
        for (int r = 0; r < k; r++) {
            int row = c->row[(size_t)i * k + r];
            if (row >= 0)
                memcpy(c->x + (size_t)row * d, z + (size_t)i * d, (size_t)d * sizeof(ns_real));
        }
    for (int e = 0; e < E; e++) {
        int r0 = c->offset[e], n = c->offset[e + 1] - r0;
        if (n == 0)
            continue;
        ns_linear_forward(c->h + (size_t)r0 * He, c->x + (size_t)r0 * d,
                          w1 + (size_t)e * d * He, n, d, He);
        ns_act_forward(c->a + (size_t)r0 * He, c->h + (size_t)r0 * He, (size_t)n * He, act);
        if (mid)
            mid_forward(mid, c, e, r0, n, He);
        ns_linear_forward(c->y + (size_t)r0 * d, (mid ? c->an : c->a) + (size_t)r0 * He,
                          w2 + (size_t)e * He * d, n, He, d);
    }
#pragma omp parallel for schedule(static) if ((size_t)N * d >= NS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        ns_real *o = out + (size_t)i * d;
        memset(o, 0, (size_t)d * sizeof(ns_real));
        for (int r = 0; r < k; r++) {
            int row = c->row[(size_t)i * k + r];
            ns_real g = c->gates[(size_t)i * k + r];
            for (int j = 0; row >= 0 && j < d; j++)
                o[j] += g * c->y[(size_t)row * d + j];
        }
    }
}

void ns_moe_losses(const ns_moe_cache *c, int N, int E, int k, double *aux, double *zloss)
{
    /* Switch: E sum_e f_e P_e, f_e the share of the N k routed slots (before drops) */
    double a = 0, zl = 0;
    for (int e = 0; e < E; e++) {
        double f = 0, P = 0;
        for (int s = 0; s < N * k; s++)
            f += c->expert[s] == e;
        for (int i = 0; i < N; i++)
            P += c->probs[(size_t)i * E + e];
        a += (f / ((double)N * k)) * (P / N);
    }
    for (int i = 0; i < N; i++)
        zl += (double)c->lse[i] * c->lse[i];
    *aux = E * a;
    *zloss = zl / N;
}

void ns_moe_backward(ns_real *dz, ns_real *dw_router, ns_real *dw1, ns_real *dw2,
                     const ns_real *dout, const ns_moe_cache *c, ns_moe_scratch *s,
                     const ns_real *z, const ns_real *w_router, const ns_real *w1,
                     const ns_real *w2, int N, int d, int E, int He, int k, ns_act_kind act,
                     double aux_coef, double zloss_coef, const ns_moe_mid *mid)
{
    /* through the combination: dy = g dout on the slot's row; dg = dout . y */
#pragma omp parallel for schedule(static) if ((size_t)N * d >= NS_PAR_MIN)
    for (int i = 0; i < N; i++)
        for (int r = 0; r < k; r++) {
            size_t slot = (size_t)i * k + r;
            int row = c->row[slot];
            double dg = 0;
            for (int j = 0; row >= 0 && j < d; j++) {
                s->dy[(size_t)row * d + j] = c->gates[slot] * dout[(size_t)i * d + j];
                dg += (double)dout[(size_t)i * d + j] * c->y[(size_t)row * d + j];
            }
            s->dg[slot] = (ns_real)dg;
        }
    /* each expert, one GEMM pair over its rows */
    int rows = c->offset[E];
    memset(s->dx, 0, (size_t)rows * d * sizeof(ns_real));
    memset(s->da, 0, (size_t)rows * He * sizeof(ns_real));
    memset(s->dh, 0, (size_t)rows * He * sizeof(ns_real));
    for (int e = 0; e < E; e++) {
        int r0 = c->offset[e], n = c->offset[e + 1] - r0;
        if (n == 0)
            continue;
        size_t xo = (size_t)r0 * d, ho = (size_t)r0 * He;
        if (mid) { /* d an in dh (then cleared for the activation's), d a in da */
            ns_linear_backward(s->dh + ho, dw2 + (size_t)e * He * d, s->dy + xo, c->an + ho,
                               w2 + (size_t)e * He * d, n, He, d);
            mid_backward(mid, c, s->da + ho, s->dh + ho, e, r0, n, He);
            memset(s->dh + ho, 0, (size_t)n * He * sizeof(ns_real));
        } else {
            ns_linear_backward(s->da + ho, dw2 + (size_t)e * He * d, s->dy + xo, c->a + ho,
                               w2 + (size_t)e * He * d, n, He, d);
        }
        ns_act_backward(s->dh + ho, s->da + ho, c->h + ho, (size_t)n * He, act);
        ns_linear_backward(s->dx + xo, dw1 + (size_t)e * d * He, s->dh + ho, c->x + xo,
                           w1 + (size_t)e * d * He, n, d, He);
    }
#pragma omp parallel for schedule(static) if ((size_t)N * d >= NS_PAR_MIN)
    for (int i = 0; i < N; i++)
        for (int r = 0; r < k; r++) {
            int row = c->row[(size_t)i * k + r];
            for (int j = 0; row >= 0 && j < d; j++)
                dz[(size_t)i * d + j] += s->dx[(size_t)row * d + j];
        }
    /* through the gates to the router probabilities, the auxiliary losses, then the softmax */
    double f_scale = aux_coef * E / ((double)N * N * k); /* d(aux)/dp_ie = coef E f_e / N */
    int *count = s->count;
    for (int e = 0; e < E; e++)
        count[e] = 0;
    for (int slot = 0; slot < N * k; slot++)
        count[c->expert[slot]]++;
#pragma omp parallel for schedule(static) if ((size_t)N * E >= NS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const ns_real *p = c->probs + (size_t)i * E;
        ns_real *dl = s->dlogits + (size_t)i * E;
        for (int e = 0; e < E; e++)
            dl[e] = (ns_real)(f_scale * count[e]);
        const int *ex = c->expert + (size_t)i * k;
        const ns_real *g = c->gates + (size_t)i * k, *dg = s->dg + (size_t)i * k;
        if (k == 1) {
            dl[ex[0]] += dg[0];
        } else { /* g_r = p_r / (p_1 + p_2) */
            ns_real sum = p[ex[0]] + p[ex[1]], t = dg[0] * g[0] + dg[1] * g[1];
            dl[ex[0]] += (dg[0] - t) / sum;
            dl[ex[1]] += (dg[1] - t) / sum;
        }
        double dot = 0; /* softmax: dlogit = p (dp - p . dp), plus the z-loss term */
        for (int e = 0; e < E; e++)
            dot += (double)p[e] * dl[e];
        double zl = zloss_coef * 2.0 * c->lse[i] / N;
        for (int e = 0; e < E; e++)
            dl[e] = (ns_real)(p[e] * (dl[e] - dot) + zl * p[e]);
    }
    ns_linear_backward(dz, dw_router, s->dlogits, z, w_router, N, d, E);
}
