/* theory.c: what the theory's entry points share: the input contract, the finite-width norm
 * factor, and freeing a prediction. The recursion is in theory_mlp.c, the closed forms in
 * theory_bounds.c, the Gaussian expectations in theory_gauss.c; analysis/theory/README.md
 * derives them. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ns_theory_form_of(const ns_placement *p, ns_theory_form *form)
{
    if (!p || p->norm_out || p->skip_gain != NS_SKIP_ONE || p->init_rule != NS_INIT_PLAIN ||
        p->layer_scaled || p->gated || p->block_skip)
        return NS_ERR_INVALID; /* a structure the theory does not cover yet */
    if (p->span == NS_SPAN_NONE && p->alpha_site == NS_ALPHA_BRANCH_WEIGHT &&
        p->norm_in != p->norm_sum)
        *form = p->norm_in ? NS_THEORY_PRE : NS_THEORY_POST;
    else if (p->span == NS_SPAN_AGGREGATE && p->alpha_site == NS_ALPHA_SPAN_GAIN && !p->norm_in &&
             !p->norm_sum)
        *form = NS_THEORY_SPAN;
    else if (p->span == NS_SPAN_WRAP && p->alpha_site == NS_ALPHA_LAST_NORM_GAIN && !p->norm_in &&
             p->norm_sum)
        *form = NS_THEORY_SPAN_WRAPPED;
    else
        return NS_ERR_INVALID;
    return NS_OK;
}

int ns_theory_validate(const ns_theory_input *in, ns_theory_form *kind)
{
    if (!in || !kind || ns_theory_form_of(ns_placement_find(in->placement), kind) != NS_OK)
        return NS_ERR_INVALID;
    if ((in->act != NS_ACT_GELU && in->act != NS_ACT_RELU && in->act != NS_ACT_LINEAR) ||
        (in->norm != NS_NORM_LAYERNORM && in->norm != NS_NORM_RMSNORM))
        return NS_ERR_INVALID;
    /* d <= 2 would make the LayerNorm factor 1 - 2/d vanish or turn negative: no such theory */
    if (in->depth < 1 || (in->width != 0 && in->width < 3) || in->hidden < 0)
        return NS_ERR_INVALID;
    if (!(in->alpha > 0) || !isfinite(in->alpha) || !(in->q0 > 0) || !isfinite(in->q0) ||
        !(in->rho0 >= -1 && in->rho0 <= 1))
        return NS_ERR_INVALID;
    return NS_OK;
}

double ns_theory_norm_factor(ns_norm_kind norm, int width)
{
    if (width <= 0)
        return 1.0;
    /* the Jacobian (gamma/sigma)(I - 11'/d - xhat xhat'/d) (LayerNorm) or (gamma/rms)(I - xhat
     * xhat'/d) (RMSNorm) is a projection that removes 2 (or 1) of d directions; a gradient that is
     * isotropic with respect to them loses that fraction of its mean square */
    return norm == NS_NORM_RMSNORM ? 1.0 - 1.0 / width : 1.0 - 2.0 / width;
}

void ns_theory_free(ns_theory *t)
{
    if (!t)
        return;
    free(t->act_ms); /* one allocation holds every array */
    memset(t, 0, sizeof *t);
}
