/* theory_residual.c: the mean-field recursion of a ResiDual MLP stack at initialization
 * (Xie et al. 2023, arXiv 2304.14802; analysis/theory/README.md, section 2.14).
 *
 * Two streams: the main one is PostNorm's, x_l = N(x_{l-1} + o_l), o_l = F(x_{l-1}); the dual
 * one only accumulates, r_l = r_{l-1} + o_l, r_0 = x_0; the stack's output is
 * y = x_L + Nf(r_L). As d -> infinity each o_l is uncorrelated with everything its fresh W2 does
 * not touch, so per feature (tokens a != b):
 *   R_l  = R_{l-1} + B_l,             R = E[r^2],  B_l = alpha^2 E[phi(u)^2], u ~ N(0, q_{l-1})
 *   Cr_l = Cr_{l-1} + K_l,            Cr = E[r_a r_b],  K_l = alpha^2 E[phi(u_a) phi(u_b)]
 *   X_l  = (X_{l-1} + B_l)/sqrt(s_l), X = E[x r] of one token, s_l = q_{l-1} + B_l
 *   Xc_l = (Xc_{l-1} + K_l)/sqrt(s_l), Xc = E[x_a r_b]
 * and at the top, Nf(r_L) = r_L/sqrt(R_L): E[y^2] = 2 + 2 X_L/sqrt(R_L), and so on.
 * Backward, under gradient independence, with G the top's gradient (p_L = 1): dLoss/dr_l is
 * Nf's backward of G for every l, mean square D = 1/R_L. Through block l the main gradient g
 * (mean square P, overlap K = E[g dr] with dr) becomes g' = J_N'g + J_F'(J_N'g + dr), plus dr at
 * block 1 (r_0 = x_0): P' = P/s (1 + chi) + chi (D + 2 K/sqrt(s)), K' = K/sqrt(s), with
 * chi = alpha^2 E[phi'(u)^2]; J_F' carries no overlap with dr. */
#include "theory_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double clamp_unit(double x) { return x > 1 ? 1 : x < -1 ? -1 : x; }

static int residual_act_finite(const ns_theory_input *in, double *qy); /* below */

int ns_theory_residual(const ns_theory_input *in, ns_theory *out)
{
    ns_theory_form kind;
    if (!out)
        return NS_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (ns_theory_validate(in, &kind) != NS_OK || kind != NS_THEORY_RESIDUAL)
        return NS_ERR_INVALID;
    const int L = in->depth;
    const double a2 = in->alpha * in->alpha;
    /* [L+1] x 5, then [L] x 4: act, grad, cos_tokens, dual act, dual grad; cos_layer,
     * branch_ms, and each block's s_l and chi_l for the backward */
    double *base = malloc((5 * (size_t)(L + 1) + 4 * (size_t)L) * sizeof(double));
    if (!base)
        return NS_ERR_NOMEM;
    out->depth = L;
    out->act_ms = base;
    out->grad_ms = base + (L + 1);
    out->cos_tokens = base + 2 * (L + 1);
    out->dual_act_ms = base + 3 * (L + 1);
    out->dual_grad_ms = base + 4 * (L + 1);
    out->cos_layer = base + 5 * (L + 1);
    out->branch_ms = out->cos_layer + L;
    double *s_at = out->branch_ms + L, *chi_at = s_at + L;
    out->exact = 1;
    out->finite = ns_theory_finite_covers(in);
    char order[96];
    if (out->finite)
        snprintf(order, sizeof order, "act_ms, grad_ms to O(1/d) at d = %d, H = %d", in->width,
                 in->hidden);
    else
        snprintf(order, sizeof order, "d -> inf%s",
                 in->width > 0 ? " (no O(1/d) correction derived for this case)" : "");
    snprintf(out->model, sizeof out->model,
             "mean-field MLP recursion (gradient independence): %s x = N(x + F(x)), r = r + F(x), "
             "output x_L + Nf(r_L), %s, %s, alpha %.6g; %s",
             in->placement, in->act == NS_ACT_GELU ? "gelu (tanh form)"
                            : in->act == NS_ACT_RELU ? "relu" : "linear",
             in->norm == NS_NORM_RMSNORM ? "RMSNorm" : "LayerNorm", in->alpha, order);

    double q = in->q0, C = in->rho0 * in->q0; /* the main stream */
    double R = q, Cr = C, X = q, Xc = C;      /* the dual stream, and its overlap with x */
    int status = NS_OK;
    out->act_ms[0] = out->dual_act_ms[0] = q;
    out->cos_tokens[0] = in->rho0;
    for (int l = 1; l <= L && status == NS_OK; l++) {
        double K = a2 * ns_gauss_kernel(in->act, q, clamp_unit(C / q));
        double B = a2 * ns_gauss_phi2(in->act, q), chi = a2 * ns_gauss_dphi2(in->act, q);
        if (!isfinite(K) || !isfinite(B) || !isfinite(chi)) {
            status = NS_ERR_NUMERIC;
            break;
        }
        double s = q + B, Xprev = X;
        R += B;
        Cr += K;
        X = (X + B) / sqrt(s);
        Xc = (Xc + K) / sqrt(s);
        out->branch_ms[l - 1] = B;
        out->dual_act_ms[l] = R;
        s_at[l - 1] = s;
        chi_at[l - 1] = chi;
        if (l < L) { /* PostNorm's block */
            out->act_ms[l] = 1;
            out->cos_tokens[l] = clamp_unit((C + K) / s);
            out->cos_layer[l - 1] = sqrt(q / s);
        } else { /* the output y = x_L + r_L/sqrt(R_L); x_L.x_{L-1} = q/sqrt(s) */
            double qy = 2 + 2 * X / sqrt(R);
            double Cy = (C + K) / s + Cr / R + 2 * Xc / sqrt(R);
            out->act_ms[l] = qy;
            out->cos_tokens[l] = clamp_unit(Cy / qy);
            out->cos_layer[l - 1] = (q / sqrt(s) + Xprev / sqrt(R)) / sqrt(q * qy);
        }
        C = (C + K) / s;
        q = 1;
    }
    if (status) {
        ns_theory_free(out);
        return status;
    }
    double D = 1 / R, P = 1, Kg = 1 / sqrt(R);
    out->grad_ms[L] = P;
    for (int l = L; l >= 1; l--) {
        double s = s_at[l - 1], chi = chi_at[l - 1], Pv = P / s, Kv = Kg / sqrt(s);
        P = Pv + chi * (Pv + D + 2 * Kv);
        Kg = Kv;
        if (l == 1) { /* r_0 = x_0: dLoss/dr joins dLoss/dx_0 */
            P += D + 2 * Kv;
            Kg += D;
        }
        out->grad_ms[l - 1] = P;
    }
    for (int l = 0; l <= L; l++)
        out->dual_grad_ms[l] = D;
    if (out->finite) { /* the O(1/d) term (below) */
        int st = ns_theory_finite_residual(in, out->grad_ms);
        if (!st)
            st = residual_act_finite(in, &out->act_ms[L]);
        if (st) {
            ns_theory_free(out);
            return st;
        }
    }
    return NS_OK;
}

/* ---- the output's act_ms at width d (README section 2.14) -----------------------------------
 * q_y = 2 + 2 E[cos], cos = x_L.r_L/(|x_L| |P r_L|), P LayerNorm's centering (ell = 1; RMSNorm:
 * ell = 0). Per token, xi_m = x_m.P r_m/d and rho_m = |P r_m|^2/d form a Markov chain: above
 * block 1 the branch sees |x|^2 = d, so o_m = sigma_m z_m with z_m fresh and sigma_m^2 of mean B
 * and variance Vo/d. Their means (X + dx/d, R + dr/d), Var rho (Vr/d) and Cov(xi, rho) (Cxr/d)
 * follow to O(1/d) from expanding 1/|v_m|; x_0's centred squared norm n (chi^2 with d - ell
 * degrees of freedom, over d) is integrated over exactly, as its O(1/d^2) share is large where
 * the branches are small. */

/* E[cos | n] = cos_inf + cos_1/d */
static int residual_act_given(const ns_theory_input *in, double n, double d, double r, int ell,
                              double B, double Vo, double *cos_inf, double *cos_1)
{
    ns_gauss_moments m1; /* block 1's units see |x_0|^2/d, of mean n + ell/d given n */
    int st = ns_gauss_moments_at(in->act, n + ell / d, &m1);
    if (st)
        return st;
    const double a2 = in->alpha * in->alpha, s = 1 + B, ss = sqrt(s);
    const double B1 = a2 * m1.phi2, V1 = 4 * B1 * n + 2 * B1 * B1 +
                                         a2 * a2 * (m1.phi4 - m1.phi2 * m1.phi2) / r;
    double R = n + B1, X = sqrt(R), dr = -ell * B1, dx = dr / (2 * X) - V1 / (8 * R * X);
    double Vr = V1, Cxr = V1 / (2 * X);
    for (int m = 2; m <= in->depth; m++) {
        const double k = (X + B) / s;
        dx = (dx - ell * B + (X + B) * ell * B / (2 * s) - (2 * B + 2 * B * X + Vo) / (2 * s) +
              0.375 * (X + B) * (4 * B + Vo) / (s * s)) / ss;
        Cxr = (Cxr + 2 * (1 - k) * B * X + 2 * B * R + (1 - k / 2) * Vo) / ss;
        Vr += 4 * B * R + Vo;
        dr -= ell * B;
        X = (X + B) / ss;
        R += B;
    }
    *cos_inf = X / sqrt(R);
    *cos_1 = dx / sqrt(R) - X * dr / (2 * R * sqrt(R)) - Cxr / (2 * R * sqrt(R)) +
             0.375 * X * Vr / (R * R * sqrt(R));
    return NS_OK;
}

#define RESIDUAL_ACT_NODES 241 /* trapezoid nodes over +-10 standard deviations of n */

static int residual_act_finite(const ns_theory_input *in, double *qy)
{
    const double d = in->width, r = (double)in->hidden / in->width;
    const int ell = in->norm == NS_NORM_LAYERNORM;
    ns_gauss_moments mo;
    int st = ns_gauss_moments_at(in->act, 1.0, &mo);
    if (st)
        return st;
    const double a2 = in->alpha * in->alpha, B = a2 * mo.phi2;
    const double Vo = 2 * B * B + a2 * a2 * (mo.phi4 - mo.phi2 * mo.phi2) / r;
    const double D = d - ell, sd = sqrt(2 * D) / d, tm = fmax(D - 2, 1);
    const double lo = fmax(1e-6, D / d - 10 * sd), h = (D / d + 10 * sd - lo) /
                                                       (RESIDUAL_ACT_NODES - 1);
    double wsum = 0, csum = 0;
    for (int i = 0; i < RESIDUAL_ACT_NODES; i++) {
        const double n = lo + i * h, t = n * d;
        /* the chi^2_D density of n d over its value at the mode tm (wsum normalizes) */
        const double w = exp((D / 2 - 1) * log(t / tm) - (t - tm) / 2) *
                         (i == 0 || i == RESIDUAL_ACT_NODES - 1 ? 0.5 : 1);
        double c0, c1;
        if ((st = residual_act_given(in, n, d, r, ell, B, Vo, &c0, &c1)))
            return st;
        wsum += w;
        csum += w * (c0 + c1 / d);
    }
    const double mean_cos = csum / wsum, s = 1 + B, R = 1 + in->depth * B;
    /* the norms' eps: |x_L|^2/d = s/(s + eps), |Nf(r_L)|^2/d = R/(R + eps), to first order */
    *qy = 2 + 2 * mean_cos - in->norm_eps * (1 + mean_cos) * (1 / s + 1 / R);
    return isfinite(*qy) ? NS_OK : NS_ERR_NUMERIC;
}

/* ---- the O(1/d) term of p_l (README section 2.14) ------------------------------------------
 * Energy in three classes: PG from G through the main stream (PostNorm's exact one-block factors,
 * section 10.2), PD from the dual gradient dr (mean square D), PX their cross term (overlap K).
 * A token's |r_L| moves with each block's |v_m| (both grow with |o_m|^2 and x_{m-1}.o_m), so
 * energy that scales as 1/|r_L|^2 passes block m's norm with an extra 1 + c_m/d (1/|r_L|:
 * c_m/(2d)). dr is exactly orthogonal to r_L, which contains every o_m; conditioning W1 and W2 on
 * the forward pass gives the injections' O(1/d) parts (Q1, Q3, K_v) and the components along
 * x_{m-1} that count in p_{m-1} and that the next norm removes (X2, and Kgf, Kdf at block 1).
 * Left out: the covariance of a block's active-unit fraction with |r_L| in Q1 (about -0.01/d
 * per block). */

/* the Gram quantities of the d -> infinity geometry in the basis e_0 (x_0), e_1..e_L (each
 * block's o_k): delta_m = vhat_m^T C_m vhat_m, Omega_m = B ohat_m^T P(v_m) C_m ohat_m,
 * mu_m = o_m^T P(v_m) C_m x_{m-1}, xi_m = o_m^T P(r) x_{m-1}, with C_L = P(r),
 * C_{m-1} = P(v_m) C_m and P(u) = I - u u^T/|u|^2 */
static int residual_gram(int L, double B, double *delta, double *Om, double *mu, double *xi)
{
    const int n = L + 1;
    const double s = 1 + B, sb = sqrt(B);
    /* one allocation: C (n x n), the streams x_k (n x n) and three work vectors */
    double *C = malloc(((size_t)2 * n * n + 3 * (size_t)n) * sizeof *C);
    if (!C)
        return NS_ERR_NOMEM;
    double *x = C + (size_t)n * n, *r = x + (size_t)n * n, *t = r + n, *u = t + n;
    /* x_k in the basis: x_0 = e_0, x_k = (x_{k-1} + sqrt(B) e_k)/sqrt(s) */
    memset(x, 0, (size_t)(L + 1) * n * sizeof *x);
    x[0] = 1;
    for (int k = 1; k <= L; k++) {
        for (int i = 0; i < n; i++)
            x[(size_t)k * n + i] = x[(size_t)(k - 1) * n + i] / sqrt(s);
        x[(size_t)k * n + k] += sb / sqrt(s);
    }
    for (int i = 0; i < n; i++)
        r[i] = i == 0 ? 1 : sb;
    const double r2 = 1 + L * B;
    /* C = P(r) */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            C[(size_t)i * n + j] = (i == j) - r[i] * r[j] / r2;
    for (int m = L; m >= 1; m--) {
        /* v_m = x_{m-1} + sqrt(B) e_m, |v_m|^2 = s; vhat = v/sqrt(s); ohat = e_m */
        const double *xm = x + (size_t)(m - 1) * n;
        for (int i = 0; i < n; i++)
            u[i] = (xm[i] + (i == m ? sb : 0)) / sqrt(s);
        /* t = C vhat; delta = vhat . t */
        double dl = 0;
        for (int i = 0; i < n; i++) {
            double a = 0;
            for (int j = 0; j < n; j++)
                a += C[(size_t)i * n + j] * u[j];
            t[i] = a;
            dl += u[i] * a;
        }
        delta[m] = dl;
        /* P(v) C ohat = C e_m - vhat (vhat . C e_m): ohat . that = C_mm - u_m (u . C e_m) */
        double uc = 0, ucx = 0, cx_m = 0;
        for (int i = 0; i < n; i++)
            uc += u[i] * C[(size_t)i * n + m];
        Om[m] = B * (C[(size_t)m * n + m] - u[m] * uc);
        /* mu = o . P(v) C x_{m-1} = sqrt(B) [ (C x)_m - u_m (u . C x) ] */
        for (int i = 0; i < n; i++) {
            double a = 0;
            for (int j = 0; j < n; j++)
                a += C[(size_t)i * n + j] * xm[j];
            if (i == m)
                cx_m = a;
            ucx += u[i] * a;
        }
        mu[m] = sb * (cx_m - u[m] * ucx);
        /* xi = o . P(r) x_{m-1} = sqrt(B) [x_m-1 at m - r_m (r . x_{m-1})/|r|^2] */
        double rx = 0;
        for (int i = 0; i < n; i++)
            rx += r[i] * xm[i];
        xi[m] = sb * (xm[m] - r[m] * rx / r2);
        /* C_{m-1} = P(v_m) C_m = C - vhat (vhat^T C); vhat^T C = (C^T vhat)^T */
        for (int j = 0; j < n; j++) {
            double a = 0;
            for (int i = 0; i < n; i++)
                a += u[i] * C[(size_t)i * n + j];
            t[j] = a;
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                C[(size_t)i * n + j] -= u[i] * t[j];
    }
    free(C);
    return NS_OK;
}

int ns_theory_finite_residual(const ns_theory_input *in, double *p)
{
    const int L = in->depth, ell = in->norm == NS_NORM_LAYERNORM;
    const double d = in->width, r = (double)in->hidden / in->width, a2 = in->alpha * in->alpha;
    ns_gauss_moments mo;
    ns_post_terms pt;
    int st = ns_gauss_moments_at(in->act, 1.0, &mo);
    if (st || (st = ns_theory_post_terms(in, r, ell, &pt)))
        return st;
    const double B = a2 * mo.phi2, chi = a2 * mo.dphi2, s = 1 + B, R = 1 + L * B;
    const double Vo = 2 * B * B + a2 * a2 * (mo.phi4 - mo.phi2 * mo.phi2) / r;
    const double nu = mo.u_phi_dphi / mo.phi2, m22 = a2 * a2 * mo.phi2_dphi2;
    const double ma2 = a2 * mo.dphi2_u2, Bp = a2 * mo.phi2_ds;
    const double Vard = 2 + L * Vo + 4 * L * B + 2.0 * L * (L - 1) * B * B + 4 * Bp + 2 * Bp * Bp;
    const double D = (1 + (Vard / (R * R) - 1) / d) / R;
    double K = (1 + (0.375 * Vard / (R * R) - 1 - 0.5 * ell) / d) / sqrt(R);
    const double fp = 1 + pt.a_pi / d, ft = 1 + pt.a_tau / d;
    /* PostNorm's p_0 = pi0 tau^(L-1) holds no pi: block 1's ratio p_0/p_1 is pi0 tau/pi */
    const double f0 = (1 + pt.a_pi0 / d) * ft / fp;
    const double kappa = 1 + ell + (pt.a_pi - pt.a_tau);
    const double eD = (ma2 - B * B * nu * nu / R) / chi;
    const double hid = m22 / (r * B * B) + nu * nu;
    const double dq1 = -chi + ma2 - (B * B / R) * hid;
    /* [L+1] x 5: the Gram quantities, and the streams' overlap X_m */
    double *g = malloc(5 * ((size_t)L + 1) * sizeof *g);
    if (!g)
        return NS_ERR_NOMEM;
    double *delta = g, *Om = g + (L + 1), *mu = g + 2 * (L + 1), *xi = g + 3 * (L + 1);
    double *Xs = g + 4 * (L + 1);
    if ((st = residual_gram(L, B, delta, Om, mu, xi))) {
        free(g);
        return st;
    }
    Xs[0] = 1;
    for (int l = 1; l <= L; l++)
        Xs[l] = (Xs[l - 1] + B) / sqrt(s);
    const double first = 2 + Vo + 2 * Bp * Bp + 4 * Bp + 4 * B;
    double PG = 1, PXo = 0, PXf = 0, PDo = 0, PDf = 0;
    p[L] = 1;
    for (int m = L; m >= 1; m--) {
        const double f = m == L ? fp : m == 1 ? f0 : ft;
        const double c = (m > 1 ? Vo + 4 * B * Xs[m - 1] : first) / (R * s);
        const double Vv = (m > 1 ? Vo + 4 * B : first) / (s * s);
        const double Jv = 0.375 * Vv + ell * (m > 1 ? B / (2 * s) : 0.5);
        const double eX = (ma2 + (Om[m] - B) * nu * nu) / chi;
        const double fD = f * (1 + (kappa - ell - eD) / d), fX = f * (1 + (kappa - ell - eX) / d);
        const double PvG = PG * f / s;
        const double PvX = (PXo * f + PXf * fX) * (1 + c / (2 * d)) / s;
        const double PvD = (PDo * f + PDf * fD) * (1 + c / d) / s;
        const double Kv = K / sqrt(s) * (1 + (-delta[m] + Jv + c / 4) / d);
        const double dq3 = -chi + ma2 + (Om[m] - B) * hid;
        const double Q1 = D * (chi + dq1 / d), Q3 = 2 * Kv * (chi + dq3 / d);
        const double X2 = -2 * nu * Kv * Om[m] / d;
        const double Kgf = nu * Kv * mu[m] / d, Kdf = nu * D * xi[m] / d;
        PG = PvG * (1 + chi), PXo = PvX * (1 + chi), PXf = Q3, PDo = PvD * (1 + chi), PDf = Q1;
        K = Kv;
        double P = PG + PXo + PXf + PDo + PDf + X2;
        if (m == 1)
            P += 2 * (Kv + Kgf + Kdf) + D;
        p[m - 1] = P;
    }
    free(g);
    for (int l = 0; l <= L; l++)
        if (!isfinite(p[l]))
            return NS_ERR_NUMERIC;
    return NS_OK;
}
