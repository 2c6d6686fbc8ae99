/* theory_finite_transformer.c: the norms' O(1/d) terms of PostNorm and PreNorm Transformer
 * stacks, and of the rows that reduce to them: DeepNorm (PostNorm's), LayerNorm Scaling and
 * DeepScaleLM (PreNorm's chain), Mix-LN (both), Sandwich (section 10.7's chain)
 * (analysis/theory/README.md, section 9.10).
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
 *   squared norm, which persists across blocks, on the chain of 2L branches.
 * - Mix-LN (PostNorm blocks 1..m, PreNorm above): as section 10.11 for MLP stacks, the chain of
 *   the PreNorm blocks from the normalized x_m with LayerNorm's mean row, and the PostNorm
 *   factors below from the tangential part that crosses block m's norm. */
#include "theory_internal.h"

#include <math.h>
#include <stdlib.h>

/* PostNorm blocks 1..m: each norm's factor 1 + a/d, from block m's MLP norm (a_pi) down,
 * starting from corr (1 at the top of a PostNorm stack). DeepNorm's N(A x + B(x)) is
 * N(x + B(x)/A): a PostNorm sublayer whose branch mean square is divided by A^2 (skip2), and
 * whose MLP has W1's variance b^2/d and W2's alpha^2 b^2/(A^2 H), as section 10.8's MLP
 * blocks. */
static int post_factors(const ns_theory_input *b, int m, int ell, double d, double corr,
                        ns_theory_form form, ns_theory *out)
{
    const double r = (double)b->hidden / b->width, L = b->depth;
    const double skip2 = form == NS_THEORY_DEEPNORM ? sqrt(2 * L) : 1;
    ns_post_terms mlp;
    int st = form == NS_THEORY_DEEPNORM
                 ? ns_theory_post_terms_scaled(b->act, b->alpha * b->alpha / (4 * L),
                                               1 / sqrt(8 * L), r, ell, &mlp)
                 : ns_theory_post_terms(b, r, ell, &mlp);
    if (st)
        return st;
    for (int l = m - 1; l >= 0; l--) {
        const double s = out->attn_out_ms[l] / skip2;
        double a_attn = 2 * s / (1 + s) + (l == 0 ? ell / (1 + s) + 2 : 0);
        corr *= (1 + (l == m - 1 ? mlp.a_pi : mlp.a_tau) / d) * (1 + a_attn / d);
        out->grad_ms[l] *= corr;
    }
    return NS_OK;
}

/* PreNorm blocks m+1..L: section 10.3's recursion over the token norm, on their chain of
 * 2(L - m) branches. Above PostNorm blocks (m >= 1) the chain starts from a normalized x_m and
 * LayerNorm's mean row applies (section 10.11), and *top gets the factor of what crosses block
 * m's norm (the tangential part). LayerNorm Scaling's branches read N(x)/sqrt(l): the MLP's
 * moments at variance 1/l (section 10.7; the linear value path's s = chi at any input variance).
 * DeepScaleLM's sublayer k, lambda x + beta B(N(x)), is PreNorm's on the stream rescaled by
 * lambda^-k, its branch times beta / lambda^k (section 10.9). */
static int pre_factors(const ns_theory_input *b, int m, int ell, double d, ns_theory_form form,
                       ns_theory *out, double *top)
{
    const int L = b->depth, n = 2 * (L - m);
    const double a2 = b->alpha * b->alpha, q0 = m ? 1 : b->q0, r = (double)b->hidden / b->width;
    /* DeepScaleLM: beta^2 = 1/L = 1 - lambda^2, W2's variance over core's E[phi^2] */
    const double beta2 = form == NS_THEORY_DSLM ? 1.0 / L : 1, lam2 = 1 - 1.0 / L;
    const double w2 = form == NS_THEORY_DSLM ? 1 / ns_act_unit_ms(b->act) : 1;
    ns_gauss_moments mo;
    int st = ns_gauss_moments_at(b->act, 1.0, &mo);
    ns_pre_branch *br = st ? NULL : malloc((size_t)n * sizeof *br);
    double *factor = br ? malloc(2 * ((size_t)n + 1) * sizeof *factor) : NULL;
    double *radial = factor ? factor + n + 1 : NULL;
    if (!st && !factor)
        st = NS_ERR_NOMEM;
    double g2 = beta2; /* the rescaled branch's variance factor, beta^2 / lambda^(2k) */
    for (int l = m; l < L && !st; l++) {
        const double v = form == NS_THEORY_LNS ? 1.0 / (l + 1) : 1.0;
        if (form == NS_THEORY_LNS)
            st = ns_gauss_moments_at(b->act, v, &mo);
        if (form == NS_THEORY_DSLM)
            g2 /= lam2;
        const double s = g2 * out->attn_out_ms[l];
        br[2 * (l - m)] =
            (ns_pre_branch){.s = s, .chi = s, .kappa = 2, .m4 = s * s, .cda = 0, .r = 1};
        if (form == NS_THEORY_DSLM)
            g2 /= lam2;
        br[2 * (l - m) + 1] = ns_pre_branch_of(&mo, a2 * w2 * g2, v, r);
    }
    if (!st)
        st = ns_theory_pre_chain(br, n, q0, m ? 0 : 2 * q0 * q0, d, factor, radial);
    for (int l = m; l < L && !st; l++) {
        double f = factor[2 * (l - m)], t = out->grad_ms[l];
        if (m)
            f -= ell * (1 - 1 / t) / (out->act_ms[l] * d);
        out->grad_ms[l] *= f;
    }
    if (!st && m)
        *top = factor[0] - radial[0] / d;
    free(br);
    free(factor);
    return st;
}

/* Sandwich: section 10.7's chain on the 2L sublayers, each adding alpha^2 to the mean square;
 * the attention's value path is a linear branch (chi = s, and W_V's d outputs as its hidden
 * units: jx = 3 - 2 = 1) */
static int sandwich_factors(const ns_theory_input *b, int ell, double d, ns_theory *out)
{
    const int L = b->depth, n = 2 * L;
    const double a2 = b->alpha * b->alpha, r = (double)b->hidden / b->width;
    ns_gauss_moments mo;
    int st = ns_gauss_moments_at(b->act, 1.0, &mo);
    double *p = st ? NULL : malloc(2 * ((size_t)n + 1) * sizeof *p);
    if (st || !p)
        return st ? st : NS_ERR_NOMEM;
    const ns_sandwich_branch br[2] = {{.c0 = a2, .jx = 1}, ns_sandwich_branch_of(&mo, a2, r)};
    double *t = p + n + 1;
    st = ns_theory_sandwich_chain(br, 2, n, a2, b->q0, ell, d, p, t);
    for (int l = 0; l < L && !st; l++) {
        const double f = p[2 * l] / t[2 * l];
        out->grad_ms[l] *= f;
    }
    free(p);
    return st;
}

int ns_tf_finite(const ns_theory_tf_input *in, const ns_schedule *rows, ns_theory *out)
{
    const ns_theory_input *b = &in->base;
    if (b->width <= 0 || in->block != NS_BLOCK_TRANSFORMER || b->hidden < 1)
        return NS_OK;
    ns_theory_form form = NS_THEORY_NFORMS; /* the rows' one form, or NS_THEORY_NFORMS */
    for (int i = 0; i < rows->n; i++) {
        ns_theory_form f;
        if (ns_theory_form_of(rows->row[i], &f) != NS_OK || (i > 0 && f != form)) {
            form = NS_THEORY_NFORMS;
            break;
        }
        form = f;
    }
    const int ell = b->norm == NS_NORM_LAYERNORM;
    double top = 1;
    int st = NS_OK, m;
    if ((form == NS_THEORY_POST || form == NS_THEORY_DEEPNORM) && b->q0 == 1)
        st = post_factors(b, b->depth, ell, b->width, 1, form, out);
    else if (form == NS_THEORY_SANDWICH)
        st = sandwich_factors(b, ell, b->width, out);
    else if (form == NS_THEORY_PRE || form == NS_THEORY_LNS || (form == NS_THEORY_DSLM &&
                                                                   b->depth >= 2))
        st = pre_factors(b, 0, ell, b->width, form, out, &top);
    else if (form == NS_THEORY_NFORMS && b->q0 == 1 && (m = ns_theory_mix_split(b)) > 0) {
        if (!(st = pre_factors(b, m, ell, b->width, NS_THEORY_PRE, out, &top)))
            st = post_factors(b, m, ell, b->width, top, NS_THEORY_POST, out);
    } else
        return NS_OK;
    out->finite = st == NS_OK;
    return st;
}
