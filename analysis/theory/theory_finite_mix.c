/* theory_finite_mix.c: the O(1/d) finite-width correction of the gradient mean square p_l of
 * MLP stacks whose first m blocks are PostNorm's and the rest PreNorm's (Mix-LN, and schedules
 * such as 'post*8,pre').
 *
 * The last PostNorm block leaves every token at |x_m|^2 = d exactly, so the PreNorm chain above
 * starts from a normalized input: section 10.3's recursion with q_m = 1 and no variance of the
 * token norm (V_m = 0). Its cotangent at x_m has the conditional covariance t P + rho xhat xhat^T,
 * and the norm of block m removes the radial row, so the PostNorm blocks below see a cotangent
 * isotropic on the directions their norms let through, of mean square t_m (1 + c_m / d): the
 * chain's factor at m without the radial excess (R_m - 1)/d. From there section 10.2's one-block
 * factors apply as in a PostNorm stack whose top is block m. analysis/theory/README.md,
 * section 10.11. */
#include "theory_internal.h"

#include <math.h>
#include <stdlib.h>

int ns_theory_mix_split(const ns_theory_input *in)
{
    const int L = in->depth;
    int m = 0;
    ns_theory_form f;
    while (m < L && ns_theory_block_form(in, m + 1, &f) == NS_OK && f == NS_THEORY_POST)
        m++;
    if (m < 1 || m >= L)
        return -1;
    for (int l = m + 1; l <= L; l++)
        if (ns_theory_block_form(in, l, &f) != NS_OK || f != NS_THEORY_PRE)
            return -1;
    return m;
}

int ns_theory_finite_mix(const ns_theory_input *in, int m, double *p)
{
    const int L = in->depth, n = L - m;
    const double d = in->width, r = (double)in->hidden / in->width, a2 = in->alpha * in->alpha;
    const int ell = in->norm == NS_NORM_LAYERNORM;
    ns_gauss_moments mo;
    ns_post_terms pt;
    int st = ns_gauss_moments_at(in->act, 1.0, &mo);
    if (st || (st = ns_theory_post_terms(in, r, ell, &pt)))
        return st;
    ns_pre_branch *br = malloc((size_t)n * sizeof *br);
    double *factor = malloc(2 * ((size_t)n + 1) * sizeof *factor), *radial = factor + n + 1;
    if (!br || !factor) {
        free(br);
        free(factor);
        return NS_ERR_NOMEM;
    }
    for (int k = 0; k < n; k++)
        br[k] = ns_pre_branch_of(&mo, a2, 1.0, r);
    st = ns_theory_pre_chain(br, n, 1.0, 0.0, d, factor, radial);
    /* the d -> infinity t_l of the chain: PreNorm's gain 1 + chi/q_l per block, q_l = 1 + k s */
    double t = 1;
    p[L] = 1;
    for (int k = n - 1; st == NS_OK && k >= 0; k--) {
        const double q = 1 + k * br[k].s;
        t *= 1 + br[k].chi / q;
        /* LayerNorm's mean row: the cotangent's mean component is carried by the skip alone
         * (mean square 1, not t); from a Gaussian input x's centering makes up for it, in
         * proportion to x's mean component, which above a centered x_m is q - 1 of q */
        p[m + k] = t * factor[k] - ell * (t - 1) / (q * d);
    }
    if (st == NS_OK) {
        /* what crosses block m's norm: the tangential part */
        const double top = t * (factor[0] - radial[0] / d);
        const double pi = pt.gain * (1 + pt.a_pi / d), tau = pt.gain * (1 + pt.a_tau / d),
                     pi0 = pt.gain * (1 + pt.a_pi0 / d);
        for (int l = m - 1; l >= 1; l--)
            p[l] = l == m - 1 ? top * pi : p[l + 1] * tau;
        p[0] = top * pi0 * pow(tau, m - 1);
    }
    free(br);
    free(factor);
    return st;
}
