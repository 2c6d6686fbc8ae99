/* theory.c: what the theory's entry points share: the input contract, the finite-width norm
 * factor, and freeing a prediction. The recursion is in theory_mlp.c, the closed forms in
 * theory_bounds.c, the Gaussian expectations in theory_gauss.c; analysis/theory/README.md
 * derives them. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ns_theory_validate(const ns_theory_input *in, ns_theory_placement *kind)
{
    static const char *const names[] = {"pre", "post", "span", "span-wrapped"};
    if (!in || !in->placement || !kind)
        return NS_ERR_INVALID;
    int found = -1;
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(in->placement, names[i]) == 0)
            found = i;
    if (found < 0)
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
    *kind = (ns_theory_placement)found;
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
