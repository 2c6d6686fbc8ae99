/* theory_finite_transformer.c: the norms' O(1/d) terms of PostNorm and PreNorm Transformer
 * stacks (analysis/theory/README.md, section 9.10).
 *
 * The trajectories and the Gram recursion hold each norm's d -> infinity map; at width d each
 * norm's backward also moves by O(1/d), and the MLP stacks' terms (section 10) carry over
 * sublayer by sublayer. The MLP sublayer is section 10's branch as it stands. The attention
 * sublayer's value path is a linear branch W_O W_V of the attention average of the values: it is
 * taken as the identity branch with d hidden units (W_V's outputs: r = 1, kappa = 2) at its
 * output mean square s, that layer's attn_out_ms.
 * - PostNorm, h = N1(x + A(x)), y = N2(h + F(h)): after each norm every token has |x|^2 = d
 *   exactly, so section 10.2's reduction holds norm by norm: each multiplies p by its d -> infinity
 *   gain times 1 + a/d, a = a_pi at the top norm and a_tau below. For the attention sublayer
 *   10.2's terms give a_tau = 2s/(1 + s) (the Jensen gap of 1/|v|^2 and the rows the norm
 *   removes, whose O(1) parts cancel); the first block's sees x_0 ~ N(0, 1), neither normalized
 *   nor centered, which like 10.2's pi0 adds ell/(1 + s) for LayerNorm's centering and
 *   f''(1) = 2 for the average of a linear branch's gain f(n) = 1/n over x_0's squared norm.
 * - PreNorm, h = x + A(N1(x)), y = h + F(N2(h)): section 10.3's recursion over the token's
 *   squared norm, which persists across blocks, on the chain of 2L branches. */
#include "theory_internal.h"

#include <stdlib.h>

/* PostNorm: each norm's factor 1 + a/d, from the top */
static int post_factors(const ns_theory_input *b, int ell, double d, ns_theory *out)
{
    ns_post_terms mlp;
    int st = ns_theory_post_terms(b, (double)b->hidden / b->width, ell, &mlp);
    if (st)
        return st;
    double corr = 1;
    for (int l = b->depth - 1; l >= 0; l--) {
        const double s = out->attn_out_ms[l];
        double a_attn = 2 * s / (1 + s) + (l == 0 ? ell / (1 + s) + 2 : 0);
        corr *= (1 + (l == b->depth - 1 ? mlp.a_pi : mlp.a_tau) / d) * (1 + a_attn / d);
        out->grad_ms[l] *= corr;
        if (out->grad_ms_se)
            out->grad_ms_se[l] *= corr;
    }
    return NS_OK;
}

/* PreNorm: section 10.3's recursion over the token norm, on the chain of 2L branches */
static int pre_factors(const ns_theory_input *b, double d, ns_theory *out)
{
    const int L = b->depth;
    const double a2 = b->alpha * b->alpha;
    ns_gauss_moments m;
    int st = ns_gauss_moments_at(b->act, 1.0, &m);
    ns_pre_branch *br = st ? NULL : malloc(2 * (size_t)L * sizeof *br);
    double *factor = br ? malloc((2 * (size_t)L + 1) * sizeof *factor) : NULL;
    if (!st && !factor)
        st = NS_ERR_NOMEM;
    for (int l = 0; l < L && !st; l++) {
        const double s = out->attn_out_ms[l];
        br[2 * l] = (ns_pre_branch){.s = s, .chi = s, .kappa = 2, .m4 = s * s, .cda = 0, .r = 1};
        br[2 * l + 1] = ns_pre_branch_of(&m, a2, 1.0, (double)b->hidden / b->width);
    }
    if (!st)
        st = ns_theory_pre_chain(br, 2 * L, b->q0, 2 * b->q0 * b->q0, d, factor, NULL);
    for (int l = 0; l < L && !st; l++) {
        out->grad_ms[l] *= factor[2 * l];
        if (out->grad_ms_se)
            out->grad_ms_se[l] *= factor[2 * l];
    }
    free(br);
    free(factor);
    return st;
}

int ns_tf_finite(const ns_theory_tf_input *in, const ns_schedule *rows, ns_theory *out)
{
    const ns_theory_input *b = &in->base;
    if (b->width <= 0 || in->block != NS_BLOCK_TRANSFORMER || b->hidden < 1)
        return NS_OK;
    ns_theory_form form = NS_THEORY_NFORMS;
    for (int i = 0; i < rows->n; i++) {
        ns_theory_form f;
        if (ns_theory_form_of(rows->row[i], &f) != NS_OK || (i > 0 && f != form))
            return NS_OK;
        form = f;
    }
    int st = NS_OK;
    if (form == NS_THEORY_POST && b->q0 == 1)
        st = post_factors(b, b->norm == NS_NORM_LAYERNORM, b->width, out);
    else if (form == NS_THEORY_PRE)
        st = pre_factors(b, b->width, out);
    else
        return NS_OK;
    out->finite = st == NS_OK;
    return st;
}
