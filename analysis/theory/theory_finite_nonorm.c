/* theory_finite_nonorm.c: the rows without norms at finite width: ReZero, y = x + w F(x), and
 * T-Fixup, y = x + F(x) with W1, W2 std times c = (9L)^(-1/4) (analysis/theory/README.md,
 * section 10.10).
 *
 * With a positively homogeneous activation (relu, the identity) the d -> infinity gains are
 * exact at every width, d and H alike, so the O(1/d) term is zero. The stack is then
 * homogeneous of degree 1 in its input, so the Jacobian above x_l depends on x_l's direction
 * only, and the rotation invariance of the weights makes the cotangent's covariance given x_l
 * t_l P + rho_l xhat xhat^T with constants t_l, rho_l. One block keeps both equal: along x,
 * xhat . (I + J_F)^T g = (|y|/|x|) yhat . g (Euler: J_F x = F(x)), whose mean square is
 * E[|y|^2/|x|^2] rho_{l+1} = (1 + chi) rho_{l+1}; across x, the skip passes t_{l+1} and the
 * branch chi t_{l+1} once rho_{l+1} = t_{l+1} (the hidden units' finite number and the rows W1's
 * conditioning fixes cancel). The top cotangent is isotropic, so p_l = (1 + chi)^(L - l).
 * A smooth activation (GELU) breaks the homogeneity: its gain depends on the token's norm and
 * the radial row differs from the others, an O(1/d) term not derived here. */
#include "theory_internal.h"

#include <math.h>

int ns_theory_nonorm_covers(const ns_theory_input *in, ns_theory_form kind)
{
    return (kind == NS_THEORY_REZERO || kind == NS_THEORY_TFIXUP) &&
           (in->act == NS_ACT_RELU || in->act == NS_ACT_LINEAR);
}

int ns_theory_nonorm_grad(const ns_theory_input *in, ns_theory_form kind, double *p)
{
    if (!p || !ns_theory_nonorm_covers(in, kind))
        return NS_ERR_INVALID;
    const int L = in->depth;
    /* the branch's backward gain sigma1^2 sigma2^2 E[phi'^2], the same at every variance for a
     * homogeneous activation: ReZero's gate w on W2 (W1 std 1), T-Fixup's c^2 on both W1's and
     * W2's variance */
    const double a2 = in->alpha * in->alpha;
    const double scale = kind == NS_THEORY_REZERO ? in->gate * in->gate : 1 / (9.0 * L);
    const double chi = a2 * scale * ns_gauss_dphi2(in->act, 1.0);
    if (!isfinite(chi))
        return NS_ERR_NUMERIC;
    p[L] = 1;
    for (int l = L - 1; l >= 0; l--)
        p[l] = p[l + 1] * (1 + chi);
    return NS_OK;
}
