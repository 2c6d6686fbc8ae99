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
#include "theory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double clamp_unit(double x) { return x > 1 ? 1 : x < -1 ? -1 : x; }

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
    out->finite = 0; /* no O(1/d) correction derived */
    snprintf(out->model, sizeof out->model,
             "mean-field MLP recursion (gradient independence): %s x = N(x + F(x)), r = r + F(x), "
             "output x_L + Nf(r_L), %s, %s, alpha %.6g; d -> inf%s",
             in->placement, in->act == NS_ACT_GELU ? "gelu (tanh form)"
                            : in->act == NS_ACT_RELU ? "relu" : "linear",
             in->norm == NS_NORM_RMSNORM ? "RMSNorm" : "LayerNorm", in->alpha,
             in->width > 0 ? " (no O(1/d) correction derived for this case)" : "");

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
    return NS_OK;
}
