/* theory_transformer.c: an approximate mean-field theory of Transformer and MoE stacks at
 * initialization (theory.h, ns_theory_transformer; derivations and measured accuracy in
 * analysis/theory/README.md, section 9).
 *
 * State: the T x T Gram matrix X of the residual stream over the token positions of a sequence,
 * X_ij = E[x_i . x_j / d] (the diagonal: each position's mean square; causal attention makes it
 * depend on the position), and backward the Gram matrix G of dLoss/dx. The maps, as d -> infinity
 * (gradient independence backward; every Gram matrix replaced by its expectation):
 *   norm (gain g)   N_ij = g^2 V_ij / sqrt(V_ii V_jj);  back G'_ij = g^2 G_ij / sqrt(V_ii V_jj),
 *                   times f_N on the diagonal (the projection, as in the MLP theory)
 *   MLP             F_ij = aw^2 E[phi(u_i) phi(u_j)];  back G'_ij = aw^2 E[phi'(u_i) phi'(u_j)]
 *                   G_ij, with (u_i, u_j) Gaussian of covariance Z restricted to (i, j)
 *   MoE             the MLP's maps times nu_ij, plus the router path r_ij K_ij G_ij (theory_moe.c)
 *   attention       A = ao^2 E[P Z P^T]; back ao^2 (values + queries + keys) (theory_attention.c)
 *   residual sum    Grams add: every branch ends in a zero-mean matrix (W_O, W2) independent of
 *                   the skip; where a norm wraps the skip (post, span-wrapped) the cross term is
 *                   carried explicitly.
 * GELU is taken in its erf form x Phi(x) here (core runs the tanh form; the moments differ by
 * < 2e-4 relative, analysis/theory/README.md, section 4), because its Gaussian smoothing has a
 * closed form, so a kernel with two different variances is one 1-D Gauss-Legendre sum. */
#include "theory_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#define PI 3.14159265358979323846
#define INV_SQRT_2PI 0.39894228040143267794

/* ---- kernels with two variances ------------------------------------------------------------- */
static double Phi(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }
static double npdf(double x) { return INV_SQRT_2PI * exp(-0.5 * x * x); }

/* K = E[phi(u1) phi(u2)], Kd = E[phi'(u1) phi'(u2)], Var u1 = a2, Var u2 = b2, Cov = c */
static void kernel2(ns_act_kind act, double a2, double b2, double c, double *K, double *Kd)
{
    double ab = sqrt(a2 * b2), rho = ab > 0 ? c / ab : 0;
    rho = rho > 1 ? 1 : rho < -1 ? -1 : rho;
    if (act == NS_ACT_LINEAR) {
        *K = rho * ab, *Kd = 1;
        return;
    }
    if (act == NS_ACT_RELU) { /* the arc-cosine kernels of degree 1 and 0 */
        double th = acos(rho);
        *K = ab / (2 * PI) * (sin(th) + (PI - th) * rho);
        *Kd = (PI - th) / (2 * PI);
        return;
    }
    /* GELU, erf form phi(u) = u Phi(u): condition on z1 and integrate z2 in closed form,
     * E[phi(m + s z)] = m Phi(m/c) + s^2 npdf(m/c)/c,
     * E[phi'(m + s z)] = Phi(m/c) + m npdf(m/c)/c^3, c = sqrt(1 + s^2);
     * then a Gauss-Legendre sum over z1 in [-10, 10], split at 0 */
    const double *x, *w;
    ns_tf_gauss_legendre(48, &x, &w);
    double a = sqrt(a2), b = sqrt(b2), s = b * sqrt(fmax(0.0, 1 - rho * rho));
    double cc = sqrt(1 + s * s), k = 0, kd = 0;
    for (int h = 0; h < 2; h++)
        for (int i = 0; i < 48; i++) {
            double z = (h ? 10.0 : -10.0) * x[i], wz = 10.0 * w[i] * npdf(z);
            double u = a * z, m = b * rho * z, t = m / cc;
            double Pu = Phi(u), Pt = Phi(t), nt = npdf(t);
            double f1 = u * Pu, d1 = Pu + u * npdf(u);
            double f2 = m * Pt + s * s * nt / cc, d2 = Pt + m * nt / (cc * cc * cc);
            k += wz * f1 * f2;
            kd += wz * d1 * d2;
        }
    *K = k, *Kd = kd;
}

/* ---- Gram matrix maps ----------------------------------------------------------------------- */
#define KTAB 257

typedef struct {
    const ns_theory_tf_input *in;
    int T, L;
    double f;            /* the norm Jacobian factor f_N */
    ns_tf_attn *attn;
    ns_tf_gates *gates;
    double ktab_v;       /* the variance the GELU kernel table holds (0: none) */
    double ktab[2 * KTAB];
} ctx;

static void norm_fwd(int T, const double *V, double g, double *N)
{
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            N[(size_t)i * T + j] = i == j ? g * g /* exactly: the kernel table keys on it */
                                          : g * g * V[(size_t)i * T + j] /
                                                sqrt(V[(size_t)i * T + i] * V[(size_t)j * T + j]);
}

/* Gout = norm backward of G given the norm input's diagonal vd (accumulated into Gout if acc) */
static void norm_bwd(const ctx *c, const double *G, const double *vd, double g, double *Gout,
                     int acc)
{
    int T = c->T;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            double v = g * g * G[(size_t)i * T + j] / sqrt(vd[i] * vd[j]) * (i == j ? c->f : 1);
            Gout[(size_t)i * T + j] = (acc ? Gout[(size_t)i * T + j] : 0) + v;
        }
}

static void diag(int T, const double *M, double *d)
{
    for (int i = 0; i < T; i++)
        d[i] = M[(size_t)i * T + i];
}

static double mean_diag(int T, const double *M)
{
    double s = 0;
    for (int i = 0; i < T; i++)
        s += M[(size_t)i * T + i];
    return s / T;
}

/* K and Kd for a pair; when every position has the same variance (a normalized input: pre, post,
 * span-wrapped), GELU's come from a table over rho (cubic Lagrange, step 1/128: within 1e-9) */
static void kernel_pair(ctx *c, int same, double zi, double zj, double z, double *K, double *Kd)
{
    ns_act_kind act = c->in->base.act;
    if (act != NS_ACT_GELU || !same) {
        kernel2(act, zi, zj, z, K, Kd);
        return;
    }
    if (c->ktab_v != zi) {
        for (int k = 0; k < KTAB; k++)
            kernel2(act, zi, zi, zi * (-1.0 + 2.0 * k / (KTAB - 1)), &c->ktab[k],
                    &c->ktab[KTAB + k]);
        c->ktab_v = zi;
    }
    double rho = z / zi;
    rho = rho > 1 ? 1 : rho < -1 ? -1 : rho;
    ns_tf_lagrange4(c->ktab, KTAB, (rho + 1) * 0.5 * (KTAB - 1), K, Kd);
}

/* the MLP (or MoE) branch on input Gram Z: F, and the backward multiplier Bm (elementwise) */
static int mlp_fwd(ctx *c, const double *Z, double aw, double *F, double *Bm)
{
    int T = c->T, same = 1;
    double a2 = aw * aw;
    for (int i = 1; i < T; i++)
        same = same && Z[(size_t)i * T + i] == Z[0];
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) {
            double zi = Z[(size_t)i * T + i], zj = Z[(size_t)j * T + j], z = Z[(size_t)i * T + j];
            double K, Kd, nu = 1, r = 0;
            kernel_pair(c, same, zi, zj, z, &K, &Kd);
            if (c->gates) {
                double rho = i == j ? 1.0 : z / sqrt(zi * zj);
                /* the router logits of token i have variance Z_ii; a pair is looked up at the
                 * geometric mean of its two variances */
                int st = ns_tf_gates_at(c->gates, sqrt(zi * zj), rho, &nu, &r);
                if (st)
                    return st;
            }
            double fv = a2 * nu * K, bv = a2 * (nu * Kd + r * K);
            if (!isfinite(fv) || !isfinite(bv))
                return NS_ERR_NUMERIC;
            F[(size_t)i * T + j] = F[(size_t)j * T + i] = fv;
            Bm[(size_t)i * T + j] = Bm[(size_t)j * T + i] = bv;
        }
    return NS_OK;
}

static void add(int T, const double *A, const double *B, double *C)
{
    for (size_t e = 0; e < (size_t)T * T; e++)
        C[e] = A[e] + B[e];
}

static void scale(int T, double s, double *A)
{
    for (size_t e = 0; e < (size_t)T * T; e++)
        A[e] *= s;
}

/* ---- per-block state kept for the backward -------------------------------------------------- */
typedef struct {
    ns_tf_attn_layer at;
    double *Bm;          /* [T*T] MLP backward multiplier */
    double *n1, *n2;     /* [T] diagonals of the first and second norm inputs */
    double *cross;       /* [T] span-wrapped: 1/sqrt(V1_jj V2_jj) */
} block_state;

enum { NSCR = 6 }; /* scratch Gram matrices of a block */

/* forward of block l (1-based): X -> Y, metrics into out */
static int block_fwd(ctx *c, ns_theory_form kind, int l, block_state *bs, const double *X,
                     double *Y, double **S, ns_theory *out)
{
    int T = c->T;
    double a = c->in->base.alpha;
    double *A = S[0], *M = S[1], *F = S[2], *V2 = S[3], *Nn = S[4];
    uint64_t stream = (uint64_t)l;
    int st;
    double cosl = 0, mid;
    switch (kind) {
    case NS_THEORY_PRE: { /* h = x + A(N1(x)); y = h + F(N2(h)) */
        double *Z1 = Nn, *Z2 = V2;
        norm_fwd(T, X, 1, Z1);
        if ((st = ns_tf_attn_forward(c->attn, &bs->at, Z1, A, stream)))
            return st;
        scale(T, a * a, A);
        add(T, X, A, M);
        norm_fwd(T, M, 1, Z2);
        if ((st = mlp_fwd(c, Z2, a, F, bs->Bm)))
            return st;
        add(T, M, F, Y);
        diag(T, X, bs->n1);
        diag(T, M, bs->n2);
        for (int i = 0; i < T; i++)
            cosl += sqrt(X[(size_t)i * T + i] / Y[(size_t)i * T + i]) / T;
        mid = mean_diag(T, M);
        break;
    }
    case NS_THEORY_POST:           /* h = N1(x + A(x)); y = N2(h + F(h)) */
    case NS_THEORY_SPAN_WRAPPED: { /* h = N1(x + A(x)); y = x + N2(h + F(h)), gain alpha */
        double aw = kind == NS_THEORY_POST ? a : 1, *V1 = M, *H = Nn;
        if ((st = ns_tf_attn_forward(c->attn, &bs->at, X, A, stream)))
            return st;
        scale(T, aw * aw, A);
        add(T, X, A, V1);
        diag(T, V1, bs->n1);
        norm_fwd(T, V1, 1, H);
        if ((st = mlp_fwd(c, H, aw, F, bs->Bm)))
            return st;
        add(T, H, F, V2);
        diag(T, V2, bs->n2);
        mid = mean_diag(T, H);
        if (kind == NS_THEORY_POST) {
            norm_fwd(T, V2, 1, Y);
            for (int i = 0; i < T; i++) /* x.y = x.h / sqrt(V2) = X_ii / sqrt(V1_ii V2_ii) */
                cosl += sqrt(X[(size_t)i * T + i] / (bs->n1[i] * bs->n2[i])) / T;
        } else {
            /* y = x + n, n = alpha v2/|v2|: x_i . n_j = alpha X_ij / sqrt(V1_jj V2_jj) */
            double *Nw = S[5];
            norm_fwd(T, V2, a, Nw);
            for (int j = 0; j < T; j++)
                bs->cross[j] = 1 / sqrt(bs->n1[j] * bs->n2[j]);
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    size_t ij = (size_t)i * T + j, ji = (size_t)j * T + i;
                    Y[ij] = X[ij] + Nw[ij] + a * X[ij] * bs->cross[j] + a * X[ji] * bs->cross[i];
                }
            for (int i = 0; i < T; i++) {
                double xi = X[(size_t)i * T + i];
                cosl += xi * (1 + a * bs->cross[i]) / sqrt(xi * Y[(size_t)i * T + i]) / T;
            }
        }
        break;
    }
    case NS_THEORY_SPAN: { /* a = A(x); f = F(x + a); y = x + N(a + f), gain alpha */
        if ((st = ns_tf_attn_forward(c->attn, &bs->at, X, A, stream)))
            return st;
        add(T, X, A, M);
        if ((st = mlp_fwd(c, M, 1, F, bs->Bm)))
            return st;
        double *Sg = V2;
        add(T, A, F, Sg);
        diag(T, Sg, bs->n1);
        norm_fwd(T, Sg, a, Nn);
        add(T, X, Nn, Y);
        for (int i = 0; i < T; i++)
            cosl += sqrt(X[(size_t)i * T + i] / Y[(size_t)i * T + i]) / T;
        mid = mean_diag(T, M);
        break;
    }
    default:
        return NS_ERR_INVALID;
    }
    out->cos_layer[l - 1] = cosl;
    out->attn_out_ms[l - 1] = mean_diag(T, A);
    out->mlp_out_ms[l - 1] = out->branch_ms[l - 1] = mean_diag(T, F);
    out->mid_act_ms[l - 1] = mid;
    for (size_t e = 0; e < (size_t)T * T; e++)
        if (!isfinite(Y[e]))
            return NS_ERR_NUMERIC;
    return NS_OK;
}

/* backward of block l: Gy -> Gx */
static int block_bwd(ctx *c, ns_theory_form kind, block_state *bs, const double *Gy,
                     double *Gx, double **S)
{
    int T = c->T;
    size_t TT = (size_t)T * T;
    double a = c->in->base.alpha;
    double *G1 = S[0], *G2 = S[1], *G3 = S[2];
    int st;
    switch (kind) {
    case NS_THEORY_PRE:
        /* g_h = g_y + N2'(F'(g_y)); g_x = g_h + N1'(A'(g_h)) */
        for (size_t e = 0; e < TT; e++)
            G1[e] = bs->Bm[e] * Gy[e];
        memcpy(G2, Gy, TT * sizeof *G2);
        norm_bwd(c, G1, bs->n2, 1, G2, 1);
        if ((st = ns_tf_attn_backward(c->attn, &bs->at, G2, G3)))
            return st;
        scale(T, a * a, G3);
        memcpy(Gx, G2, TT * sizeof *Gx);
        norm_bwd(c, G3, bs->n1, 1, Gx, 1);
        break;
    case NS_THEORY_POST:
    case NS_THEORY_SPAN_WRAPPED: {
        int post = kind == NS_THEORY_POST;
        double aw = post ? a : 1;
        /* g_v2 = N2'(g_y); g_h = g_v2 + F'(g_v2); g_v1 = N1'(g_h); g_x = g_v1 + A'(g_v1) */
        norm_bwd(c, Gy, bs->n2, post ? 1 : a, G1, 0);
        for (size_t e = 0; e < TT; e++)
            G2[e] = G1[e] * (1 + bs->Bm[e]);
        norm_bwd(c, G2, bs->n1, 1, G1, 0);
        if ((st = ns_tf_attn_backward(c->attn, &bs->at, G1, G3)))
            return st;
        scale(T, aw * aw, G3);
        add(T, G1, G3, Gx);
        if (!post) { /* the clean skip, and its coherent cross term with the norm path */
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    size_t ij = (size_t)i * T + j, ji = (size_t)j * T + i;
                    double cr = a * (Gy[ij] * bs->cross[j] + Gy[ji] * bs->cross[i]);
                    Gx[ij] += Gy[ij] + (i == j ? c->f : 1) * cr;
                }
        }
        break;
    }
    case NS_THEORY_SPAN:
        /* g_s = N'(g_y); g_m = F'(g_s); g_a = g_s + g_m; g_x = g_y + g_m + A'(g_a) */
        norm_bwd(c, Gy, bs->n1, a, G1, 0);
        for (size_t e = 0; e < TT; e++)
            G2[e] = bs->Bm[e] * G1[e];
        add(T, G1, G2, G1);
        if ((st = ns_tf_attn_backward(c->attn, &bs->at, G1, G3)))
            return st;
        for (size_t e = 0; e < TT; e++)
            Gx[e] = Gy[e] + G2[e] + G3[e];
        break;
    default:
        return NS_ERR_INVALID;
    }
    for (size_t e = 0; e < TT; e++)
        if (!isfinite(Gx[e]))
            return NS_ERR_NUMERIC;
    return NS_OK;
}

static double mean_cos_pairs(int T, const double *X)
{
    if (T < 2)
        return NAN;
    double s = 0;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < i; j++)
            s += X[(size_t)i * T + j] / sqrt(X[(size_t)i * T + i] * X[(size_t)j * T + j]);
    return s / (0.5 * T * (T - 1));
}

static const char *attn_name(ns_theory_attn a)
{
    return a == NS_THEORY_ATTN_UNIFORM       ? "uniform causal attention"
           : a == NS_THEORY_ATTN_MONTE_CARLO ? "softmax attention by Monte Carlo"
                                             : "softmax attention: uniform causal mean plus "
                                               "exchangeable fluctuations";
}

int ns_theory_transformer(const ns_theory_tf_input *in, ns_theory *out)
{
    /* the recursion each form solves, after the placement's name */
    static const char *const eqs[] = {
        "h = x + A(N1(x)), y = h + F(N2(h))", "h = N1(x + A(x)), y = N2(h + F(h))",
        "a = A(x), f = F(x + a), y = x + N(a + f), gain alpha",
        "h = N1(x + A(x)), y = x + N2(h + F(h)), gain alpha"};
    if (!out)
        return NS_ERR_INVALID;
    if (!ns_tf_quadrature_ready())
        return NS_ERR_NUMERIC;
    memset(out, 0, sizeof *out);
    ns_theory_form kind;
    if (!in || ns_theory_validate(&in->base, &kind) != NS_OK ||
        !ns_theory_transformer_covers(kind) || in->seq < 1 ||
        in->seq > NS_THEORY_MAX_SEQ ||
        (in->block != NS_BLOCK_TRANSFORMER && in->block != NS_BLOCK_MOE) || in->mc_samples < 0 ||
        (in->block == NS_BLOCK_MOE &&
         (in->experts < 1 || in->top_k < 1 || in->top_k > 2 || in->top_k > in->experts)))
        return NS_ERR_INVALID;
    if (in->attn == NS_THEORY_ATTN_TRAJECTORY)
        return ns_tf_trajectories(in, out);
    int T = in->seq, L = in->base.depth;
    size_t TT = (size_t)T * T;
    ctx c = {.in = in, .T = T, .L = L, .f = ns_theory_norm_factor(in->base.norm, in->base.width),
             .ktab_v = 0};
    int st = ns_tf_attn_create(&c.attn, in->attn, T, in->mc_samples, in->mc_seed);
    if (st == NS_OK && in->block == NS_BLOCK_MOE)
        st = ns_tf_gates_create(&c.gates, in->experts, in->top_k);
    /* the prediction's arrays: 3 of L+1 and 5 of L */
    double *base = st ? NULL : malloc((3 * (size_t)(L + 1) + 5 * (size_t)L) * sizeof(double));
    /* per block: attention state (3 TT + 2 T), Bm (TT), n1, n2, cross (3 T); then the two
     * stream Grams, the gradient Grams and scratch */
    size_t per = 4 * TT + 5 * (size_t)T;
    double *mem = base ? malloc(((size_t)L * per + (4 + NSCR) * TT) * sizeof(double)) : NULL;
    block_state *bs = mem ? malloc((size_t)L * sizeof *bs) : NULL;
    if (!st && !bs)
        st = NS_ERR_NOMEM;
    if (st) {
        free(base);
        free(mem);
        ns_tf_attn_free(c.attn);
        ns_tf_gates_free(c.gates);
        return st;
    }
    out->depth = L;
    out->act_ms = base;
    out->grad_ms = base + (L + 1);
    out->cos_tokens = base + 2 * (L + 1);
    out->cos_layer = base + 3 * (L + 1);
    out->branch_ms = out->cos_layer + L;
    out->attn_out_ms = out->branch_ms + L;
    out->mlp_out_ms = out->attn_out_ms + L;
    out->mid_act_ms = out->mlp_out_ms + L;
    out->exact = 0;
    if (in->block == NS_BLOCK_MOE)
        snprintf(out->model, sizeof out->model,
                 "approximate Gram recursion, %d positions, d -> inf: %s %s; MoE top-%d of %d; "
                 "%s; alpha %.6g; norm factor %.6g",
                 T, in->base.placement, eqs[kind], in->top_k, in->experts, attn_name(in->attn),
                 in->base.alpha, c.f);
    else
        snprintf(out->model, sizeof out->model,
                 "approximate Gram recursion, %d positions, d -> inf: Transformer %s %s; %s; "
                 "alpha %.6g; norm factor %.6g",
                 T, in->base.placement, eqs[kind], attn_name(in->attn), in->base.alpha, c.f);
    for (int l = 0; l < L; l++) {
        double *p = mem + (size_t)l * per;
        ns_tf_attn_layer_bind(&bs[l].at, p, T);
        bs[l].Bm = p + 3 * TT + 2 * (size_t)T;
        bs[l].n1 = bs[l].Bm + TT;
        bs[l].n2 = bs[l].n1 + T;
        bs[l].cross = bs[l].n2 + T;
    }
    double *X = mem + (size_t)L * per, *Y = X + TT, *Gy = Y + TT, *Gx = Gy + TT, *S[NSCR];
    for (int k = 0; k < NSCR; k++)
        S[k] = Gx + TT + (size_t)k * TT;

    /* the input: q0 on the diagonal, rho0 q0 off it */
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            X[(size_t)i * T + j] = in->base.q0 * (i == j ? 1 : in->base.rho0);
    out->act_ms[0] = mean_diag(T, X);
    out->cos_tokens[0] = mean_cos_pairs(T, X);
    for (int l = 1; l <= L && !st; l++) {
        st = block_fwd(&c, kind, l, &bs[l - 1], X, Y, S, out);
        out->act_ms[l] = mean_diag(T, Y);
        out->cos_tokens[l] = mean_cos_pairs(T, Y);
        double *t = X;
        X = Y, Y = t;
    }
    /* backward from the cotangent G ~ N(0, 1) i.i.d.: identity Gram */
    for (size_t e = 0; e < TT && !st; e++)
        Gy[e] = e % (T + 1) == 0 ? 1 : 0;
    if (!st)
        out->grad_ms[L] = 1;
    for (int l = L; l >= 1 && !st; l--) {
        st = block_bwd(&c, kind, &bs[l - 1], Gy, Gx, S);
        out->grad_ms[l - 1] = mean_diag(T, Gx);
        double *t = Gy;
        Gy = Gx, Gx = t;
    }
    free(mem);
    free(bs);
    ns_tf_attn_free(c.attn);
    ns_tf_gates_free(c.gates);
    if (st)
        ns_theory_free(out);
    return st;
}
