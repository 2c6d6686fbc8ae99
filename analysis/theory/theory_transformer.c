/* theory_transformer.c: an approximate mean-field theory of Transformer and MoE stacks at
 * initialization (theory.h, ns_theory_transformer; derivations and measured accuracy in
 * analysis/theory/README.md, section 9). Each block is its row of the placement table, read field
 * by field in the order core/model.c applies them (block_fwd), so every row and schedule has
 * its recursion without a case of its own.
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
 *                   the skip; where the block input comes back (span-wrapped, B2T) its overlap
 *                   with the stream is carried explicitly, and so is ResiDual's dual stream's.
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
    ns_tf_attn *attn;
    ns_tf_gates *gates;
    ns_schedule rows;    /* the row of each block */
    int profiling;       /* 1 during Admin's profiling pass (every skip weight 1) */
    double profile_sum;  /* that pass's running sum: ms(x_0) + the branch mean squares so far */
    double *skip_w;      /* [2L] Admin's profiled skip weights, sublayer i = 2 (l - 1) + j */
    /* ResiDual's dual stream r, across blocks: its Gram R and the cross Gram CR_ij =
     * E[s_i . r_j / d] with the main stream; backward the Gram Gr of dLoss/dr (the same at
     * every layer: r only accumulates) and KR_ij = E[g_s_i . g_r_j / d] */
    double *R, *CR, *Gr, *KR;
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
            double v = g * g * G[(size_t)i * T + j] / sqrt(vd[i] * vd[j]);
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

/* the MLP (or MoE) branch on input Gram Z: F, and the backward multiplier Bm (elementwise);
 * out2 and in2 are the variance factors of W2 and W1 (1 for W ~ N(0, 1/fan-in)); the router
 * sees Z itself */
static int mlp_fwd(ctx *c, const double *Z, double out2, double in2, int mid, double *F,
                   double *Bm)
{
    int T = c->T, same = 1;
    for (int i = 1; i < T; i++)
        same = same && Z[(size_t)i * T + i] == Z[0];
    /* Sub-LN's mid norm on the H hidden units of each token: mean m_i = E[phi] (LayerNorm; 0
     * for RMSNorm) and scale sd_i, sd_i^2 = E[phi^2] - m_i^2; the Gram of its output is
     * (K - m_i m_j)/(sd_i sd_j), and backward it divides by sd_i sd_j (its projections remove
     * O(1) of H directions) */
    double m[NS_THEORY_MAX_SEQ], sd[NS_THEORY_MAX_SEQ];
    for (int i = 0; i < T; i++) {
        double v = in2 * Z[(size_t)i * T + i], K, Kd;
        m[i] = 0, sd[i] = 1;
        if (!mid)
            continue;
        kernel_pair(c, same, v, v, v, &K, &Kd);
        m[i] = c->in->base.norm == NS_NORM_RMSNORM ? 0 : ns_gauss_phi(c->in->base.act, v);
        sd[i] = sqrt(K - m[i] * m[i]);
        if (!(sd[i] > 0))
            return NS_ERR_NUMERIC;
    }
    for (int i = 0; i < T; i++)
        for (int j = 0; j <= i; j++) {
            double zi = Z[(size_t)i * T + i], zj = Z[(size_t)j * T + j], z = Z[(size_t)i * T + j];
            double K, Kd, nu = 1, r = 0;
            kernel_pair(c, same, in2 * zi, in2 * zj, in2 * z, &K, &Kd);
            if (c->gates) {
                double rho = i == j ? 1.0 : z / sqrt(zi * zj);
                /* the router logits of token i have variance Z_ii; a pair is looked up at the
                 * geometric mean of its two variances */
                int st = ns_tf_gates_at(c->gates, sqrt(zi * zj), rho, &nu, &r);
                if (st)
                    return st;
            }
            double s = sd[i] * sd[j];
            double fv = out2 * nu * (K - m[i] * m[j]) / s, bv = out2 * (in2 * nu * Kd + r * K) / s;
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

/* ---- one block, as core/model.c interprets its row ------------------------------------------- */
/* what the forward of block l keeps for its backward: the attention state, the MLP's backward
 * multiplier, and the diagonal of every norm's input (per sublayer j: norm_in, norm_out,
 * norm_sum; and the span norm's) */
typedef struct {
    ns_tf_attn_layer at;
    double *Bm;                          /* [T*T] */
    double *nin[2], *nout[2], *nsum[2];  /* [T] each */
    double *nmid;                        /* [T] Sub-LN's mid norm on the attention output */
    double *span;                        /* [T] */
} block_state;
#define BLOCK_DIAGS 8

enum { NSCR = 9 }; /* scratch Gram matrices of a block */

/* the numbers a row puts on sublayer j (0 attention, 1 MLP or MoE) of block l */
typedef struct {
    double in_gain;  /* norm_in's output scale: 1, or 1/sqrt(l) (layer_scaled) */
    double out2;     /* the variance factor of the branch's last weight (W_O, W2): alpha^2 where
                      * alpha sits on it, times the init rule's sc^2 */
    double in2;      /* the variance factor of W_V and W1: the init rule's sc^2 */
    double out_gain; /* norm_out's gain */
    double gate;     /* the branch gate, or DeepScaleLM's branch gain beta (1 if none) */
    double skip;     /* the skip weight w of v = w s + b */
    double sum_gain; /* norm_sum's gain */
} sub_factors;

static sub_factors factors_of(const ctx *c, const ns_placement *pl, int l, int j)
{
    double a = c->in->base.alpha, L = c->L;
    /* as core/model.c: the init rule's factor on the std of W_V, W_O, W1, W2 */
    double sc = pl->init_rule == NS_INIT_DEEPNORM ? pow(8.0 * L, -0.25)
                : pl->init_rule == NS_INIT_TFIXUP ? pow(9.0 * L, -0.25)
                : pl->init_rule == NS_INIT_SUBLN  ? sqrt(log(2.0 * L))
                                                  : 1.0;
    double aw = pl->alpha_site == NS_ALPHA_BRANCH_WEIGHT ? a : 1.0, w = 1.0;
    /* DeepScaleLM's init: W2's variance (the MLP's, every expert's) over E[phi^2], as core sets
     * it; W_V, W_O plain */
    double u2 = pl->init_rule == NS_INIT_DSLM && j == 1 ? 1 / ns_act_unit_ms(c->in->base.act) : 1;
    if (pl->profiled_skip)
        w = c->profiling ? 1.0 : c->skip_w[(size_t)(l - 1) * 2 + j];
    else if (pl->skip_gain == NS_SKIP_DEEPNORM)
        w = pow(2.0 * L, 0.25);
    else if (pl->skip_gain == NS_SKIP_DSLM)
        w = sqrt(1 - 1 / L);
    return (sub_factors){.in_gain = pl->layer_scaled ? 1 / sqrt((double)l) : 1.0,
                         .out2 = aw * aw * sc * sc * u2,
                         .in2 = sc * sc,
                         .out_gain = pl->alpha_site == NS_ALPHA_OUT_NORM_GAIN ? a : 1.0,
                         .gate = pl->gated                           ? c->in->base.gate
                                 : pl->branch_gain == NS_BRANCH_DSLM ? 1 / sqrt(L)
                                                                     : 1.0,
                         .skip = w,
                         .sum_gain = j == 1 && pl->alpha_site == NS_ALPHA_LAST_NORM_GAIN ? a
                                                                                          : 1.0};
}

/* forward of block l (1-based) of row pl: X -> Y, metrics into out.
 * Per sublayer j on stream s (Gram St), as core/model.c: z = norm_in ? N(s) : s; b = branch(z);
 * b = norm_out ? N(b) : b; b = gate b; then either the span aggregate collects b, or
 * v = w s + b (+ x for B2T's last sublayer) and s = norm_sum ? N(v) : v. Grams add wherever a
 * branch output meets anything else (it ends in a zero-mean matrix, or a norm of one, that is
 * independent of the rest); what does not vanish is the cross Gram C_ij = E[x_i . s_j / d] of
 * the block input with the stream, which the wrapped span and B2T's block skip add back. */
static int block_fwd(ctx *c, const ns_placement *pl, int l, block_state *bs, const double *X,
                     double *Y, double **S, ns_theory *out)
{
    int T = c->T;
    size_t TT = (size_t)T * T;
    double *St = S[0], *C = S[1], *Z = S[2], *B = S[3], *BN = S[4], *V = S[5], *CV = S[6],
           *Acc = S[7];
    int st, agg = pl->span == NS_SPAN_AGGREGATE;
    double mid = 0, cosl = 0;
    memcpy(St, X, TT * sizeof *St);
    memcpy(C, X, TT * sizeof *C);
    if (agg)
        memset(Acc, 0, TT * sizeof *Acc);
    /* the block input's cross with r, which the branch outputs added to r leave unchanged */
    double *CRx = S[8];
    if (pl->dual_stream)
        memcpy(CRx, c->CR, TT * sizeof *CRx);
    for (int j = 0; j < 2; j++) {
        sub_factors f = factors_of(c, pl, l, j);
        const double *z = St, *bn = B;
        if (pl->norm_in) {
            diag(T, St, bs->nin[j]);
            norm_fwd(T, St, f.in_gain, Z);
            z = Z;
        }
        if (j == 0) {
            if ((st = ns_tf_attn_forward(c->attn, &bs->at, z, B, (uint64_t)l)))
                return st;
            if (pl->norm_mid) { /* Sub-LN: W_O Nm(P V), the norm per token */
                scale(T, f.in2, B);
                diag(T, B, bs->nmid);
                norm_fwd(T, B, 1, BN);
                memcpy(B, BN, TT * sizeof *B);
                scale(T, f.out2, B);
            } else {
                scale(T, f.out2 * f.in2, B); /* W_V's and W_O's variances */
            }
            out->attn_out_ms[l - 1] = mean_diag(T, B);
        } else {
            if ((st = mlp_fwd(c, z, f.out2, f.in2, pl->norm_mid, B, bs->Bm)))
                return st;
            out->mlp_out_ms[l - 1] = out->branch_ms[l - 1] = mean_diag(T, B);
        }
        if (c->profiling && pl->profiled_skip) { /* Admin's pass: core/model.c, profile_record */
            size_t i = (size_t)(l - 1) * 2 + j;
            c->skip_w[i] = i == 0 ? 1.0 : sqrt(c->profile_sum);
            c->profile_sum += mean_diag(T, B);
        }
        if (pl->norm_out) {
            diag(T, B, bs->nout[j]);
            norm_fwd(T, B, f.out_gain, BN);
            bn = BN;
        }
        if (pl->gated || pl->branch_gain != NS_BRANCH_ONE) {
            if (bn != BN)
                memcpy(BN, bn, TT * sizeof *BN);
            scale(T, f.gate * f.gate, BN);
            bn = BN;
        }
        if (agg) {
            add(T, Acc, bn, Acc);
            if (j == 1)
                break; /* the stream after the last branch is not used */
        }
        double w = f.skip;
        for (size_t e = 0; e < TT; e++)
            V[e] = w * w * St[e] + bn[e], CV[e] = w * C[e];
        if (pl->dual_stream) /* r += b; the stream's cross with r: E[v_i . r_k] */
            for (size_t e = 0; e < TT; e++)
                c->R[e] += B[e], c->CR[e] = w * c->CR[e] + B[e];
        if (pl->block_skip && j == 1) /* v = w s + b + x */
            for (int i = 0; i < T; i++)
                for (int k = 0; k < T; k++) {
                    size_t ik = (size_t)i * T + k, ki = (size_t)k * T + i;
                    V[ik] += X[ik] + w * (C[ik] + C[ki]);
                    CV[ik] += X[ik];
                }
        if (pl->norm_sum) {
            diag(T, V, bs->nsum[j]);
            norm_fwd(T, V, f.sum_gain, St);
            for (int i = 0; i < T; i++) /* x_i . N(v)_k = g X.v_ik / sqrt(V_kk) */
                for (int k = 0; k < T; k++) {
                    size_t ik = (size_t)i * T + k;
                    C[ik] = f.sum_gain * CV[ik] / sqrt(bs->nsum[j][k]);
                    if (pl->dual_stream) /* N(v)_i . r_k */
                        c->CR[ik] *= f.sum_gain / sqrt(bs->nsum[j][i]);
                }
        } else {
            memcpy(St, V, TT * sizeof *St);
            memcpy(C, CV, TT * sizeof *C);
        }
        if (j == 0)
            mid = mean_diag(T, St);
    }
    /* the block output, and the diagonal of its cross Gram with x into CV */
    if (pl->span == NS_SPAN_WRAP) { /* y = x + s */
        for (int i = 0; i < T; i++)
            for (int k = 0; k < T; k++) {
                size_t ik = (size_t)i * T + k, ki = (size_t)k * T + i;
                Y[ik] = X[ik] + St[ik] + C[ik] + C[ki];
                CV[ik] = X[ik] + C[ik];
            }
    } else if (agg) { /* y = x + N(sum of branch outputs) */
        diag(T, Acc, bs->span);
        norm_fwd(T, Acc, pl->alpha_site == NS_ALPHA_SPAN_GAIN ? c->in->base.alpha : 1.0, BN);
        add(T, X, BN, Y);
        memcpy(CV, X, TT * sizeof *CV);
    } else if (pl->dual_stream && l == c->L) { /* y = s + Nf(r) */
        diag(T, c->R, bs->span);
        for (int i = 0; i < T; i++)
            for (int k = 0; k < T; k++) {
                size_t ik = (size_t)i * T + k, ki = (size_t)k * T + i;
                double ri = sqrt(bs->span[i]), rk = sqrt(bs->span[k]);
                Y[ik] = St[ik] + c->R[ik] / (ri * rk) + c->CR[ik] / rk + c->CR[ki] / ri;
                CV[ik] = C[ik] + CRx[ik] / rk;
            }
    } else {
        memcpy(Y, St, TT * sizeof *Y);
        memcpy(CV, C, TT * sizeof *CV);
    }
    if (pl->dual_stream)
        out->dual_act_ms[l] = mean_diag(T, c->R);
    for (int i = 0; i < T; i++)
        cosl += CV[(size_t)i * T + i] / sqrt(X[(size_t)i * T + i] * Y[(size_t)i * T + i]) / T;
    out->cos_layer[l - 1] = cosl;
    out->mid_act_ms[l - 1] = mid;
    for (size_t e = 0; e < TT; e++)
        if (!isfinite(Y[e]))
            return NS_ERR_NUMERIC;
    return NS_OK;
}

/* backward of block l: Gy -> Gx, the forward's steps in reverse, gradient independence. Beside
 * the Gram Gs of the stream's gradient it carries the gradient that goes straight to x (the
 * wrapped span's and the aggregate's clean skip: g_y; B2T's block skip: the last sum's), Gram
 * Gd, and their cross Gram K_ij = E[g_s_i . g_d_j / d]: both follow skip paths from one g, so
 * they are coherent, while every branch's backward (W_O^T, W2^T) decorrelates. */
static int block_bwd(ctx *c, const ns_placement *pl, int l, block_state *bs, const double *Gy,
                     double *Gx, double **S)
{
    int T = c->T;
    size_t TT = (size_t)T * T;
    double *Gs = S[0], *K = S[1], *Gv = S[2], *Kv = S[3], *Gbn = S[4], *Gb = S[5], *Gz = S[6],
           *Gacc = S[7], *Gd = S[8];
    int st, agg = pl->span == NS_SPAN_AGGREGATE;
    memset(Gd, 0, TT * sizeof *Gd);
    memset(K, 0, TT * sizeof *K);
    memcpy(Gs, Gy, TT * sizeof *Gs);
    if (pl->span != NS_SPAN_NONE) {
        memcpy(Gd, Gy, TT * sizeof *Gd);
        if (pl->span == NS_SPAN_WRAP)
            memcpy(K, Gy, TT * sizeof *K);
    }
    if (agg) {
        norm_bwd(c, Gy, bs->span, pl->alpha_site == NS_ALPHA_SPAN_GAIN ? c->in->base.alpha : 1.0,
                 Gacc, 0);
        memset(Gs, 0, TT * sizeof *Gs); /* nothing follows the last branch's stream */
    }
    if (pl->dual_stream && l == c->L) { /* g_r = Nf'(g_y), coherent with g_s = g_y */
        norm_bwd(c, Gy, bs->span, 1.0, c->Gr, 0);
        for (int i = 0; i < T; i++)
            for (int k = 0; k < T; k++) {
                size_t ik = (size_t)i * T + k;
                c->KR[ik] = Gy[ik] / sqrt(bs->span[k]);
            }
    }
    for (int j = 1; j >= 0; j--) {
        sub_factors f = factors_of(c, pl, l, j);
        int stream = !(agg && j == 1);
        if (stream && pl->norm_sum) {
            norm_bwd(c, Gs, bs->nsum[j], f.sum_gain, Gv, 0);
            for (int i = 0; i < T; i++)
                for (int k = 0; k < T; k++) {
                    size_t ik = (size_t)i * T + k;
                    double back = f.sum_gain / sqrt(bs->nsum[j][i]);
                    Kv[ik] = back * K[ik];
                    if (pl->dual_stream)
                        c->KR[ik] *= back;
                }
        } else {
            memcpy(Gv, Gs, TT * sizeof *Gv);
            memcpy(Kv, K, TT * sizeof *Kv);
        }
        if (pl->block_skip && j == 1) /* g_d += g_v */
            for (int i = 0; i < T; i++)
                for (int k = 0; k < T; k++) {
                    size_t ik = (size_t)i * T + k, ki = (size_t)k * T + i;
                    Gd[ik] += Gv[ik] + Kv[ik] + Kv[ki];
                }
        if (pl->block_skip && j == 1)
            add(T, Kv, Gv, Kv);
        /* the branch's gradient: the sum's, plus the aggregate's */
        for (size_t e = 0; e < TT; e++)
            Gbn[e] = (stream ? Gv[e] : 0) + (agg ? Gacc[e] : 0);
        if (pl->dual_stream) /* and r's: g_o = g_v + g_r */
            for (int i = 0; i < T; i++)
                for (int k = 0; k < T; k++) {
                    size_t ik = (size_t)i * T + k, ki = (size_t)k * T + i;
                    Gbn[ik] += c->Gr[ik] + c->KR[ik] + c->KR[ki];
                }
        if (pl->gated || pl->branch_gain != NS_BRANCH_ONE)
            scale(T, f.gate * f.gate, Gbn);
        const double *gb = Gbn;
        if (pl->norm_out) {
            norm_bwd(c, Gbn, bs->nout[j], f.out_gain, Gb, 0);
            gb = Gb;
        }
        if (j == 0) {
            if (pl->norm_mid) { /* W_O, then Nm, then the attention, then W_V */
                norm_bwd(c, gb, bs->nmid, 1, Gz, 0);
                scale(T, f.out2, Gz);
                if ((st = ns_tf_attn_backward(c->attn, &bs->at, Gz, Gb)))
                    return st;
                memcpy(Gz, Gb, TT * sizeof *Gz);
                scale(T, f.in2, Gz);
            } else {
                if ((st = ns_tf_attn_backward(c->attn, &bs->at, gb, Gz)))
                    return st;
                scale(T, f.out2 * f.in2, Gz);
            }
        } else {
            for (size_t e = 0; e < TT; e++)
                Gz[e] = bs->Bm[e] * gb[e];
        }
        /* the input stream's gradient: the skip's w g_v, plus the branch's */
        double w2 = stream ? f.skip * f.skip : 0;
        for (size_t e = 0; e < TT; e++)
            Gs[e] = w2 * Gv[e], K[e] = stream ? f.skip * Kv[e] : 0;
        if (pl->dual_stream)
            scale(T, f.skip, c->KR);
        if (pl->norm_in)
            norm_bwd(c, Gz, bs->nin[j], f.in_gain, Gs, 1);
        else
            add(T, Gs, Gz, Gs);
    }
    if (pl->dual_stream && l == 1) { /* r_0 = x_0: g_r joins g_x as its direct term (the row has
                                      * no other) */
        for (size_t e = 0; e < TT; e++)
            Gd[e] += c->Gr[e], K[e] += c->KR[e];
    }
    for (int i = 0; i < T; i++) /* g_x = g_s + g_d */
        for (int k = 0; k < T; k++) {
            size_t ik = (size_t)i * T + k, ki = (size_t)k * T + i;
            Gx[ik] = Gs[ik] + Gd[ik] + K[ik] + K[ki];
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

/* the equations the model line names: the row's, or the schedule's rows in order */
static void describe(const ctx *c, char *buf, size_t n)
{
    const ns_theory_input *b = &c->in->base;
    const ns_placement *p = b->placement ? ns_placement_find(b->placement) : NULL;
    if (p && !p->early) {
        snprintf(buf, n, "%s %s", p->name, p->equation2);
        return;
    }
    char text[128];
    ns_schedule_text(&c->rows, text, sizeof text);
    snprintf(buf, n, "%s blocks %s", p ? p->name : "schedule", text);
}

/* the input: q0 on the diagonal, rho0 q0 off it */
static void input_gram(const ns_theory_tf_input *in, double *X)
{
    int T = in->seq;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            X[(size_t)i * T + j] = in->base.q0 * (i == j ? 1 : in->base.rho0);
}

static int gram_recursion(const ns_theory_tf_input *in, const ns_schedule *rows_in,
                          ns_theory *out);

void ns_tf_arrays_at(ns_theory *t, double *base, int L, int dual)
{
    size_t n1 = (size_t)L + 1;
    t->depth = L;
    t->act_ms = base;
    t->grad_ms = base + n1;
    t->cos_tokens = base + 2 * n1;
    t->cos_layer = base + 3 * n1;
    t->branch_ms = t->cos_layer + L;
    t->attn_out_ms = t->branch_ms + L;
    t->mlp_out_ms = t->attn_out_ms + L;
    t->mid_act_ms = t->mlp_out_ms + L;
    t->dual_act_ms = dual ? t->mid_act_ms + L : NULL;
    t->dual_grad_ms = dual ? t->dual_act_ms + n1 : NULL;
}

int ns_theory_transformer(const ns_theory_tf_input *in, ns_theory *out)
{
    if (!out)
        return NS_ERR_INVALID;
    if (!ns_tf_quadrature_ready())
        return NS_ERR_NUMERIC;
    memset(out, 0, sizeof *out);
    ns_schedule rows;
    if (!in || ns_theory_rows(&in->base, &rows) != NS_OK || in->seq < 1 ||
        in->seq > NS_THEORY_MAX_SEQ ||
        (in->block != NS_BLOCK_TRANSFORMER && in->block != NS_BLOCK_MOE) || in->mc_samples < 0 ||
        (in->block == NS_BLOCK_MOE &&
         (in->experts < 1 || in->top_k < 1 || in->top_k > 2 || in->top_k > in->experts)))
        return NS_ERR_INVALID;
    for (int i = 0; i < rows.n; i++)
        if (!ns_theory_transformer_covers(rows.row[i]) ||
            (rows.row[i]->norm_mid && in->block == NS_BLOCK_MOE))
            return NS_ERR_INVALID; /* Sub-LN's mid norm per expert: not modelled */
    int st = in->attn == NS_THEORY_ATTN_TRAJECTORY ? ns_tf_trajectories(in, &rows, out)
                                                    : gram_recursion(in, &rows, out);
    if (st == NS_OK && in->attn != NS_THEORY_ATTN_TRAJECTORY &&
        (st = ns_tf_finite(in, &rows, out)) != NS_OK)
        ns_theory_free(out);
    if (st == NS_OK && out->finite) {
        size_t n = strlen(out->model);
        snprintf(out->model + n, sizeof out->model - n,
                 "; at width %d the norms' O(1/d) terms (README 9.10)", in->base.width);
    }
    return st;
}

/* ns_theory_transformer's expected-Gram recursion (and one trajectory's), at d -> infinity, on
 * a validated input */
static int gram_recursion(const ns_theory_tf_input *in, const ns_schedule *rows_in,
                          ns_theory *out)
{
    const ns_schedule rows = *rows_in;
    int T = in->seq, L = in->base.depth, admin = 0, dual = 0;
    size_t TT = (size_t)T * T, n1 = (size_t)L + 1;
    ctx c = {.in = in, .T = T, .L = L, .rows = rows, .ktab_v = 0};
    for (int i = 0; i < rows.n; i++)
        admin |= rows.row[i]->profiled_skip, dual |= rows.row[i]->dual_stream;
    int st = ns_tf_attn_create(&c.attn, in->attn, T, in->mc_samples, in->mc_seed);
    if (st == NS_OK && in->block == NS_BLOCK_MOE)
        st = ns_tf_gates_create(&c.gates, in->experts, in->top_k);
    /* the prediction's arrays, in ns_tf_arrays_at's order */
    double *base = st ? NULL : malloc(((3 + 2 * (size_t)dual) * n1 + 5 * (size_t)L) *
                                      sizeof(double));
    /* per block: attention state (3 TT + 2 T), Bm (TT), the norm inputs' diagonals; then the
     * two stream Grams, the two gradient Grams, scratch, ResiDual's 4, and Admin's 2L skip
     * weights */
    size_t per = 4 * TT + (2 + BLOCK_DIAGS) * (size_t)T;
    double *mem = base ? ns_alloc_large(((size_t)L * per + (8 + NSCR) * TT + 2 * (size_t)L) *
                                        sizeof(double))
                       : NULL;
    block_state *bs = mem ? malloc((size_t)L * sizeof *bs) : NULL;
    /* the Monte Carlo model's fields of the first blocks that fit in mc_keep_bytes, so that
     * their backward need not draw them again (without the memory, it does) */
    size_t nf = st ? 0 : ns_tf_attn_fields(c.attn),
           keep_bytes = in->mc_keep_bytes ? in->mc_keep_bytes : NS_THEORY_MC_KEEP;
    int nkeep = nf ? (int)fmin(L, (double)(keep_bytes / (nf * sizeof(double)))) : 0;
    double *fields = nkeep ? ns_alloc_large((size_t)nkeep * nf * sizeof *fields) : NULL;
    if (!fields)
        nkeep = 0;
    if (!st && !bs)
        st = NS_ERR_NOMEM;
    if (st) {
        ns_free_large(fields);
        free(base);
        ns_free_large(mem);
        ns_tf_attn_free(c.attn);
        ns_tf_gates_free(c.gates);
        return st;
    }
    ns_tf_arrays_at(out, base, L, dual);
    out->exact = 0;
    char eq[224];
    describe(&c, eq, sizeof eq);
    if (in->block == NS_BLOCK_MOE)
        snprintf(out->model, sizeof out->model,
                 "approximate Gram recursion, %d positions, d -> inf: %s; MoE top-%d of %d; "
                 "%s; alpha %.6g",
                 T, eq, in->top_k, in->experts, attn_name(in->attn), in->base.alpha);
    else
        snprintf(out->model, sizeof out->model,
                 "approximate Gram recursion, %d positions, d -> inf: Transformer %s; %s; "
                 "alpha %.6g",
                 T, eq, attn_name(in->attn), in->base.alpha);
    for (int l = 0; l < L; l++) {
        double *p = mem + (size_t)l * per;
        ns_tf_attn_layer_bind(&bs[l].at, p, T);
        if (l < nkeep)
            bs[l].at.fields = fields + (size_t)l * nf;
        bs[l].Bm = p + 3 * TT + 2 * (size_t)T;
        double *d = bs[l].Bm + TT;
        double **slots[BLOCK_DIAGS] = {&bs[l].nin[0], &bs[l].nin[1], &bs[l].nout[0],
                                       &bs[l].nout[1], &bs[l].nsum[0], &bs[l].nsum[1],
                                       &bs[l].span, &bs[l].nmid};
        for (int k = 0; k < BLOCK_DIAGS; k++)
            *slots[k] = d + (size_t)k * T;
    }
    double *X = mem + (size_t)L * per, *Y = X + TT, *Gy = Y + TT, *Gx = Gy + TT, *S[NSCR];
    for (int k = 0; k < NSCR; k++)
        S[k] = Gx + TT + (size_t)k * TT;
    c.R = S[NSCR - 1] + TT, c.CR = c.R + TT, c.Gr = c.CR + TT, c.KR = c.Gr + TT;
    c.skip_w = c.KR + TT;

    /* Admin: a profiling pass with every skip weight 1 on the same input sets the weights
     * (core/model.c, profile_record) */
    if (admin) {
        input_gram(in, X);
        c.profiling = 1, c.profile_sum = mean_diag(T, X);
        for (int l = 1; l <= L && !st; l++) {
            st = block_fwd(&c, ns_schedule_row(&rows, l, L), l, &bs[l - 1], X, Y, S, out);
            double *t = X;
            X = Y, Y = t;
        }
        c.profiling = 0;
    }
    input_gram(in, X);
    memcpy(c.R, X, TT * sizeof *c.R); /* r_0 = x_0 */
    memcpy(c.CR, X, TT * sizeof *c.CR);
    if (dual)
        out->dual_act_ms[0] = mean_diag(T, X);
    out->act_ms[0] = mean_diag(T, X);
    out->cos_tokens[0] = mean_cos_pairs(T, X);
    for (int l = 1; l <= L && !st; l++) {
        st = block_fwd(&c, ns_schedule_row(&rows, l, L), l, &bs[l - 1], X, Y, S, out);
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
        st = block_bwd(&c, ns_schedule_row(&rows, l, L), l, &bs[l - 1], Gy, Gx, S);
        out->grad_ms[l - 1] = mean_diag(T, Gx);
        double *t = Gy;
        Gy = Gx, Gx = t;
    }
    for (int l = 0; dual && !st && l <= L; l++) /* dLoss/dr is the same at every layer */
        out->dual_grad_ms[l] = mean_diag(T, c.Gr);
    ns_free_large(fields);
    ns_free_large(mem);
    free(bs);
    ns_tf_attn_free(c.attn);
    ns_tf_gates_free(c.gates);
    if (st)
        ns_theory_free(out);
    return st;
}
