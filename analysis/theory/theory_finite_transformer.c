/* theory_finite_transformer.c: the norms' O(1/d) terms of a PostNorm Transformer stack,
 * h = N1(x + A(x)), y = N2(h + F(h)) (analysis/theory/README.md, section 9.10).
 *
 * After each norm every token has |x|^2 = d exactly, so section 10.2's reduction carries over
 * norm by norm: each norm multiplies p by its d -> infinity gain (which the trajectories or the
 * Gram recursion already hold) times 1 + a/d, with a the one-block coefficient of the branch it
 * closes. The MLP sublayer is section 10.2's block as it stands (a_pi at the top norm, a_tau
 * below). The attention sublayer's value path is a linear branch W_O W_V of the attention average
 * of the values; taken at its output mean square s (that layer's attn_out_ms), 10.2's terms
 * for the identity with d hidden units (W_V's outputs: r = 1, kappa = 2) give a_tau = 2s/(1 + s):
 * the Jensen gap of 1/|v|^2 and the rows the norm removes, whose O(1) parts cancel. The first
 * block's attention norm sees x_0 ~ N(0, 1), which is neither normalized nor centered: like
 * 10.2's pi0 it adds ell/(1 + s) for LayerNorm's centering and f''(1) = 2 for the average of the
 * gain f(n) = 1/n of a linear branch over x_0's squared norm. */
#include "theory_internal.h"

int ns_tf_finite(const ns_theory_tf_input *in, const ns_schedule *rows, ns_theory *out)
{
    const ns_theory_input *b = &in->base;
    if (b->width <= 0 || in->block != NS_BLOCK_TRANSFORMER || b->q0 != 1 || b->hidden < 1)
        return NS_OK;
    for (int i = 0; i < rows->n; i++) {
        ns_theory_form form;
        if (ns_theory_form_of(rows->row[i], &form) != NS_OK || form != NS_THEORY_POST)
            return NS_OK;
    }
    const double d = b->width;
    const int ell = b->norm == NS_NORM_LAYERNORM, L = b->depth;
    ns_post_terms mlp;
    int st = ns_theory_post_terms(b, (double)b->hidden / b->width, ell, &mlp);
    if (st)
        return st;
    double corr = 1;
    for (int l = L - 1; l >= 0; l--) {
        const double s = out->attn_out_ms[l];
        double a_attn = 2 * s / (1 + s) + (l == 0 ? ell / (1 + s) + 2 : 0);
        corr *= (1 + (l == L - 1 ? mlp.a_pi : mlp.a_tau) / d) * (1 + a_attn / d);
        out->grad_ms[l] *= corr;
        if (out->grad_ms_se)
            out->grad_ms_se[l] *= corr;
    }
    out->finite = 1;
    return NS_OK;
}
