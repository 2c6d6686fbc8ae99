/* theory_finite_post.c: the O(1/d) finite-width correction of the gradient mean square p_l of
 * the PostNorm family with a skip weight, y = N(w x + F(x)): DeepNorm (w = A = (2L)^(1/4) in
 * every block, W1 and W2 std times b = (8L)^(-1/4)) and Admin (w_l profiled, W1 and W2 as
 * PostNorm's), MLP stacks (analysis/theory/README.md, section 10.8).
 *
 * A norm is blind to its input's scale, so N(w x + F(x)) = N(x + F(x)/w): each block is a
 * PostNorm block whose W2 variance is divided by w^2, and DeepNorm's W1 variance b^2/d makes the
 * branch a unit one of phi(b u). Section 10.2's argument then holds block by block: after every
 * norm |x|^2 = d exactly and the network above is rotation invariant about x (and 1), so p_l is
 * a product of one-block averages, each block with its own constants (ns_theory_post_terms_scaled):
 * p_{L-1} = pi_L, p_{l-1} = tau_l p_l, and block 1, whose input is i.i.d. N(0, 1), multiplies
 * p_1 by tau_1 pi0_1 / pi_1. Every factor is kept linear in 1/d, as PostNorm's (for equal
 * blocks the product is section 10.2's p_0 = pi0 tau^(L-1)). */
#include "theory_internal.h"

#include <math.h>
#include <stdlib.h>

/* the terms of block l (1..L) of a DeepNorm or Admin stack */
static int block_terms(const ns_theory_input *in, ns_theory_form kind, int l, double r, int ell,
                       double s1, ns_post_terms *pt)
{
    const double a2 = in->alpha * in->alpha;
    if (kind == NS_THEORY_DEEPNORM) {
        /* W2's variance alpha^2 b^2 over the skip's A^2 = sqrt(2L): alpha^2 / (4L); W1's b^2 */
        const double L = in->depth, b2 = 1 / sqrt(8 * L);
        return ns_theory_post_terms_scaled(in->act, a2 / (4 * L), b2, r, ell, pt);
    }
    /* Admin: w_1 = 1 and, with q_0 = 1, w_l^2 = 1 + (l - 1) s1 (section 2.15), s1 = alpha^2
     * E[phi^2] at variance 1; the profile's own O(1/sqrt(d)) spread is averaged over every
     * entry of the batch, so it enters p_l at O(1/(T d)) only */
    const double w2 = 1 + (l - 1) * s1;
    return ns_theory_post_terms_scaled(in->act, a2 / w2, 1.0, r, ell, pt);
}

int ns_theory_finite_post(const ns_theory_input *in, double *p)
{
    ns_theory_form kind;
    if (!p || ns_theory_validate(in, &kind) != NS_OK ||
        (kind != NS_THEORY_DEEPNORM && kind != NS_THEORY_ADMIN) || in->q0 != 1 ||
        in->width <= 0 || in->hidden < 1)
        return NS_ERR_INVALID;
    const int L = in->depth, ell = in->norm == NS_NORM_LAYERNORM;
    const double d = in->width, r = (double)in->hidden / in->width;
    const double s1 = in->alpha * in->alpha * ns_gauss_phi2(in->act, 1.0);
    if (!isfinite(s1))
        return NS_ERR_NUMERIC;
    /* p_l = pi_L prod_{l < k < L} tau_k (l >= 1); p_0 carries pi0_1 - pi_1 in the top's factor,
     * as PostNorm's p_0 = pi0 tau^(L-1) does: the top's a_pi (the rows its norm removes, about
     * -(1 + ell)) and the first block's pi0 - pi (its input's Jensen gap and centering, about
     * 2 + ell) are both O(1) and nearly cancel; in two factors they would leave a product of
     * O(1/d^2) as large as the measured remainder */
    ns_post_terms top, first, pt;
    int st = block_terms(in, kind, L, r, ell, s1, &top);
    if (st == NS_OK)
        st = block_terms(in, kind, 1, r, ell, s1, &first);
    /* tau's last term, (e2 + ell chi)/(1 + chi) = a_pi + 1 + ell - a_tau, is the share of the
     * cotangent at x_l along x_l and 1, which block l + 1's branch put there and block l's norm
     * removes: it is block l + 1's, not block l's (the same block when all are equal) */
    double prod = 1;
    ns_post_terms above = top;
    p[L] = 1;
    for (int l = L - 1; l >= 0 && st == NS_OK; l--) {
        p[l] = top.gain * (1 + top.a_pi / d) * prod;
        if (l >= 1 && (st = block_terms(in, kind, l, r, ell, s1, &pt)) == NS_OK) {
            const double a_tau = pt.a_pi - above.a_pi + above.a_tau;
            prod *= pt.gain * (1 + a_tau / d);
            above = pt;
        }
    }
    if (st == NS_OK)
        p[0] = top.gain * (1 + (top.a_pi + first.a_pi0 - first.a_pi) / d) * prod;
    return st;
}
