/* theory_finite_pre.c: the O(1/d) finite-width correction of the gradient mean square p_l of
 * DeepScaleLM MLP stacks, y = lambda x + beta F(N(x)), beta^2 = 1/L = 1 - lambda^2.
 *
 * The norm is blind to its input's scale, so in the rescaled stream xt_l = x_l / lambda^l the
 * block is PreNorm's, xt_l = xt_{l-1} + (beta / lambda^l) F(N(xt_{l-1})): a PreNorm chain whose
 * branch l carries the gain beta / lambda^l, on the same input (xt_0 = x_0). Its O(1/d) factor is
 * section 10.3's recursion (ns_theory_pre_chain) with each branch's moments scaled by that gain,
 * and the rescaling multiplies every p_l by the same lambda^(2(L-l)) at any width, which the
 * d -> infinity p_l already carries. analysis/theory/README.md, section 10.9. */
#include "theory_internal.h"

#include <math.h>
#include <stdlib.h>

int ns_theory_finite_dslm(const ns_theory_input *in, double *p)
{
    const int L = in->depth;
    if (L < 2) /* lambda = 0: no skip, nothing to rescale */
        return NS_ERR_INVALID;
    ns_gauss_moments m;
    int st = ns_gauss_moments_at(in->act, 1.0, &m); /* the branch sees N(x): variance 1 */
    if (st)
        return st;
    const double r = (double)in->hidden / in->width, l2 = 1 - 1.0 / L;
    /* W2's variance alpha^2 / (H E[phi^2]) (core's E[phi^2], as theory_mlp.c), times beta^2 */
    const double a2 = in->alpha * in->alpha / (ns_act_unit_ms(in->act) * L);
    ns_pre_branch *br = malloc((size_t)L * sizeof *br);
    if (!br)
        return NS_ERR_NOMEM;
    double gain2 = a2; /* the rescaled branch's variance factor, a2 / lambda^(2l) at block l */
    for (int l = 0; l < L; l++) {
        gain2 /= l2;
        br[l] = ns_pre_branch_of(&m, gain2, 1.0, r);
    }
    st = ns_theory_pre_chain_scale(br, in, p); /* p holds the d -> infinity values */
    free(br);
    return st;
}
