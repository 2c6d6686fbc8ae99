/* theory_finite_nonorm.c: the rows without norms at finite width: ReZero, y = x + w F(x), and
 * T-Fixup, y = x + F(x) with W1, W2 std times c = (9L)^(-1/4) (analysis/theory/README.md,
 * section 10.10).
 *
 * Write the block as F(x) = W2 phi(W1 x), W1 ~ N(0, s1/d), W2 ~ N(0, s2/H): ReZero has s1 = 1,
 * s2 = w^2 alpha^2, T-Fixup s1 = s2/alpha^2 = c^2. Nothing normalizes a token, so its squared
 * norm n = |x|^2/d fluctuates by O(1/sqrt(d)) and persists, and the block's d -> infinity gain
 * 1 + chi(n), chi(n) = s1 s2 E[phi'^2] at u ~ N(0, s1 n), depends on it. Given x_l the network
 * above is rotation invariant about x_l, so the cotangent's covariance is t_l(n) P + rho_l(n)
 * xhat xhat^T. Conditioning one block on its forward pass (W1 = u xhat^T/|x| + fresh,
 * W2 = F ahat^T/|a| + fresh) gives, from t_{l+1} and rho_{l+1} = R t_{l+1} at y = x + F,
 *   t_l(n) = (1 + chi(n)) E[t_{l+1}(n')] + O(1/d) terms  (the rows along xhat and ahat, the
 *            covariance of a hidden unit's phi'^2 with phi^2, the excess R - 1),
 *   R_l = [R (n + k1 B)^2/(n n') + (1 - k1)^2 B/n' + s2 k2/n]/(1 + chi)
 * with B = s2 E[phi^2], n' = n + B, k1 = E[u phi phi']/E[phi^2], k2 = E[u^2 phi'^2] - k1 E[u phi
 * phi']. Expanding t_l to second order around the d -> infinity q_l (lambda, M) and the token's
 * n to its mean shift delta/d and variance V/d gives scalar recursions, and
 *   p_l = t_l [1 + (c_l + lambda_l delta_l + M_l V_l/2 + R_l - 1)/d],  act_ms = q_l + delta_l/d.
 * For a positively homogeneous activation (relu, the identity) chi and B/n are constants,
 * k1 = 1, k2 = 0, so R = 1, lambda = M = 0, B'' = 0: every term vanishes and the d -> infinity
 * gains are exact at every width, as README 10.10 shows directly (Euler's identity). */
#include "theory_internal.h"

#include <math.h>
#include <stdlib.h>

/* what one block needs at the d -> infinity mean square n of its input */
typedef struct {
    double B, dB, ddB;       /* s2 E[phi^2] and its n-derivatives */
    double chi, dchi, ddchi; /* s1 s2 E[phi'^2] and its n-derivatives */
    double w;                /* d Var(n' | n): the token norm's step */
    double k1, k2;           /* the radial row's terms */
    double sa, cov;          /* E[phi^2 phi'^2]/E[phi^2]; cov(phi'^2, phi^2) */
} block_terms;

static int terms_at(ns_act_kind act, double s1, double s2, double r, double n, block_terms *bt)
{
    ns_gauss_moments m;
    int st = ns_gauss_moments_at(act, s1 * n, &m);
    if (st)
        return st;
    bt->B = s2 * m.phi2;
    bt->dB = s2 * s1 * m.phi2_ds;
    bt->ddB = s2 * s1 * s1 * m.phi2_ds2;
    bt->chi = s1 * s2 * m.dphi2;
    bt->dchi = s1 * s2 * s1 * m.dphi2_ds;
    bt->ddchi = s1 * s2 * s1 * s1 * m.dphi2_ds2;
    /* n' = n + |F|^2/d + 2 x.F/d, F ~ N(0, s2 |a|^2/H) given the hidden units a */
    bt->w = 4 * n * bt->B + 2 * bt->B * bt->B + s2 * s2 * (m.phi4 - m.phi2 * m.phi2) / r;
    bt->k1 = m.u_phi_dphi / m.phi2;
    bt->k2 = m.dphi2_u2 - bt->k1 * m.u_phi_dphi;
    bt->sa = m.phi2_dphi2 / m.phi2;
    bt->cov = m.phi2_dphi2 - m.phi2 * m.dphi2;
    return NS_OK;
}

int ns_theory_finite_nonorm(const ns_theory_input *in, double *q, double *p)
{
    ns_theory_form kind;
    if (!p || !in || ns_theory_validate(in, &kind) != NS_OK ||
        (kind != NS_THEORY_REZERO && kind != NS_THEORY_TFIXUP) || in->width <= 0 || in->hidden < 1)
        return NS_ERR_INVALID;
    const int L = in->depth;
    const double d = in->width, r = (double)in->hidden / in->width, a2 = in->alpha * in->alpha;
    const double c2 = 1 / sqrt(9.0 * L); /* T-Fixup's c^2 */
    const double s1 = kind == NS_THEORY_REZERO ? 1 : c2;
    const double s2 = kind == NS_THEORY_REZERO ? in->gate * in->gate * a2 : a2 * c2;
    /* [L+1] x 3: the d -> infinity q_l, the mean shift delta_l and the variance V_l of d n_l */
    double *qi = malloc(3 * ((size_t)L + 1) * sizeof(double));
    block_terms *bt = malloc((size_t)L * sizeof *bt);
    int st = qi && bt ? NS_OK : NS_ERR_NOMEM;
    double *delta = qi + (L + 1), *V = delta + (L + 1);
    if (st == NS_OK) {
        qi[0] = in->q0;
        delta[0] = 0;
        V[0] = 2 * in->q0 * in->q0; /* x_0 ~ N(0, q0 I) */
    }
    for (int l = 0; l < L && st == NS_OK; l++) {
        const block_terms *b = &bt[l];
        st = terms_at(in->act, s1, s2, r, qi[l], &bt[l]);
        if (st)
            break;
        /* E[n' | n] = n + B(n): its curvature shifts the mean by B'' V/2 */
        delta[l + 1] = (1 + b->dB) * delta[l] + 0.5 * b->ddB * V[l];
        V[l + 1] = (1 + b->dB) * (1 + b->dB) * V[l] + b->w;
        qi[l + 1] = qi[l] + b->B;
    }
    if (st == NS_OK) {
        /* from the isotropic top: t_L = 1, R_L = 1, lambda_L = M_L = c_L = 0 */
        double t = 1, R = 1, lam = 0, M = 0, c = 0;
        p[L] = 1;
        for (int l = L - 1; l >= 0; l--) {
            const block_terms *b = &bt[l];
            const double n = qi[l], nn = qi[l + 1], g = 1 + b->chi, dn = 1 + b->dB;
            /* t_l(n) = (1 + chi(n)) t_{l+1}(n + B(n)) at leading order, expanded in n - q_l */
            const double lam_l = b->dchi / g + lam * dn;
            const double M_l =
                b->ddchi / g + lam * b->ddB + M * dn * dn + 2 * lam * dn * b->dchi / g;
            /* the O(1/d) terms of t_l relative to (1 + chi) t_{l+1}: the Jensen gap of
             * t_{l+1} over n'; the branch reading the radial excess of |g'|^2; the rows along
             * xhat and along ahat (the hidden units' count), which cancel at R = 1; the hidden
             * units' phi'^2 moving with n' through their phi^2 */
            c += 0.5 * M * b->w +
                 (b->chi * (R - 1) + (R - 1) * b->B / nn * (1 + s1 * s2 * b->sa / r) +
                  s1 * s2 * s2 * b->cov * lam / r) /
                     g;
            /* the radial row: along xhat the skip and the branch's k1 (F.g')/|x| share y's
             * directions; k2 is the hidden units' part independent of them */
            R = (R * (n + b->k1 * b->B) * (n + b->k1 * b->B) / (n * nn) +
                 (1 - b->k1) * (1 - b->k1) * b->B / nn + s2 * b->k2 / n) /
                g;
            lam = lam_l;
            M = M_l;
            t *= g;
            p[l] = t * (1 + (c + lam * delta[l] + 0.5 * M * V[l] + R - 1) / d);
        }
        for (int l = 0; l <= L && q; l++)
            q[l] = qi[l] + delta[l] / d;
        for (int l = 0; l <= L; l++)
            if (!isfinite(p[l]) || (q && !isfinite(q[l])))
                st = NS_ERR_NUMERIC;
    }
    free(qi);
    free(bt);
    return st;
}
