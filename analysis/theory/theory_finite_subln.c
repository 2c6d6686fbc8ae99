/* theory_finite_subln.c: the O(1/d) finite-width correction of the gradient mean square p_l of
 * Sub-LN MLP stacks, y = x + W2 Nm(phi(W1 N(x))), W1, W2 std times g = sqrt(ln 2L).
 *
 * The block is a PreNorm branch with a second norm inside it, and the mid norm makes its
 * per-token randomness simpler than PreNorm's: the hidden units u = W1 N(x) are i.i.d. N(0, g^2)
 * whatever x is, Nm's output has |a|^2 = H exactly, so b = W2 a is N(0, g^2 alpha^2) whatever the
 * hidden units are, and given the forward pass Nm's Jacobian kills the row W2 is conditioned on
 * (the one along a). So section 10.3's PreNorm chain applies with s = g^2 alpha^2, the
 * d -> infinity gain chi = g^4 alpha^2 E[phi'^2]/sigma^2, and no hidden-unit terms (kappa, m4,
 * cda all 0), plus one term of its own: the mid norm's 1/sigma^2 over H units has a Jensen gap,
 * and its Jacobian projects out the rows along a (and 1). analysis/theory/README.md, section
 * 10.12. */
#include "theory_internal.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    ns_act_kind act;
    double mean; /* what the mid norm subtracts: E[phi] for LayerNorm, 0 for RMSNorm */
    int kind;    /* 0: (phi - mean)^2, 1: (phi - mean)^4, 2: phi'^2 (phi - mean)^2 */
} centered_ctx;

static double centered_fn(double u, void *vctx)
{
    const centered_ctx *c = vctx;
    const double a = ns_act_phi(c->act, u) - c->mean, a2 = a * a;
    if (c->kind == 0)
        return a2;
    if (c->kind == 1)
        return a2 * a2;
    const double dp = ns_act_dphi(c->act, u);
    return dp * dp * a2;
}

int ns_theory_subln_mid_excess(ns_act_kind act, int ell, double s, double *mid)
{
    centered_ctx c = {.act = act, .mean = ell ? ns_gauss_phi(act, s) : 0, .kind = 0};
    const double var = ns_gauss_expect(centered_fn, &c, s);
    c.kind = 1;
    const double mu4 = ns_gauss_expect(centered_fn, &c, s);
    c.kind = 2;
    const double dphi2_a2 = ns_gauss_expect(centered_fn, &c, s);
    const double dphi2 = ns_gauss_dphi2(act, s);
    /* E[(1/H) sum phi'_j^2 (1 - ahat_j^2 - ell/H) / sigmahat^2] over its d -> infinity value
     * E[phi'^2]/sigma^2, to first order in 1/H: LayerNorm's centering bias of sigmahat^2 (+ell)
     * and the mean row (-ell) cancel; the Jensen gap of 1/sigmahat^2 gives mu4/sigma^4 - 1, its
     * covariance with the phi'^2 average -(E[phi'^2 a^2]/(E[phi'^2] sigma^2) - 1), and the row
     * along ahat -E[phi'^2 a^2]/(E[phi'^2] sigma^2) */
    *mid = mu4 / (var * var) - 2 * dphi2_a2 / (dphi2 * var);
    return isfinite(*mid) && var > 0 && dphi2 > 0 ? NS_OK : NS_ERR_NUMERIC;
}

int ns_theory_finite_subln(const ns_theory_input *in, double *p)
{
    const int L = in->depth, ell = in->norm == NS_NORM_LAYERNORM;
    const double g2 = log(2.0 * L), a2 = in->alpha * in->alpha, r = (double)in->hidden / in->width;
    double mid;
    int st = ns_theory_subln_mid_excess(in->act, ell, g2, &mid);
    if (st)
        return st;
    /* the d -> infinity gain, as theory_mlp.c's subln block */
    const double mean = ell ? ns_gauss_phi(in->act, g2) : 0;
    const double var = ns_gauss_phi2(in->act, g2) - mean * mean;
    const double chi = g2 * g2 * a2 * ns_gauss_dphi2(in->act, g2) / var;
    const ns_pre_branch br1 = {.s = g2 * a2, .chi = chi, .r = r, .mid = mid};
    ns_pre_branch *br = malloc((size_t)L * sizeof *br);
    if (!br)
        return NS_ERR_NOMEM;
    for (int l = 0; l < L; l++)
        br[l] = br1;
    st = ns_theory_pre_chain_scale(br, in, p); /* p holds the d -> infinity values */
    free(br);
    return st;
}
