/* theory.c: what the theory's entry points share: the input contract and freeing a
 * prediction. The recursion is in theory_mlp.c, the closed forms in
 * theory_bounds.c, the Gaussian expectations in theory_gauss.c; analysis/theory/README.md
 * derives them. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* each form's structure: a row has the form whose every field it matches */
static const struct {
    ns_theory_form form;
    int norm_in, norm_out, norm_sum;
    ns_span_kind span;
    ns_alpha_site alpha_site;
    ns_skip_gain skip_gain;
    ns_init_rule init_rule;
    int layer_scaled, gated;
} forms[] = {
    {NS_THEORY_PRE, 1, 0, 0, NS_SPAN_NONE, NS_ALPHA_BRANCH_WEIGHT, NS_SKIP_ONE, NS_INIT_PLAIN, 0, 0},
    {NS_THEORY_POST, 0, 0, 1, NS_SPAN_NONE, NS_ALPHA_BRANCH_WEIGHT, NS_SKIP_ONE, NS_INIT_PLAIN, 0,
     0},
    {NS_THEORY_SPAN, 0, 0, 0, NS_SPAN_AGGREGATE, NS_ALPHA_SPAN_GAIN, NS_SKIP_ONE, NS_INIT_PLAIN, 0,
     0},
    {NS_THEORY_SPAN_WRAPPED, 0, 0, 1, NS_SPAN_WRAP, NS_ALPHA_LAST_NORM_GAIN, NS_SKIP_ONE,
     NS_INIT_PLAIN, 0, 0},
    {NS_THEORY_SANDWICH, 1, 1, 0, NS_SPAN_NONE, NS_ALPHA_OUT_NORM_GAIN, NS_SKIP_ONE, NS_INIT_PLAIN,
     0, 0},
    {NS_THEORY_DEEPNORM, 0, 0, 1, NS_SPAN_NONE, NS_ALPHA_BRANCH_WEIGHT, NS_SKIP_DEEPNORM,
     NS_INIT_DEEPNORM, 0, 0},
    {NS_THEORY_LNS, 1, 0, 0, NS_SPAN_NONE, NS_ALPHA_BRANCH_WEIGHT, NS_SKIP_ONE, NS_INIT_PLAIN, 1, 0},
    {NS_THEORY_REZERO, 0, 0, 0, NS_SPAN_NONE, NS_ALPHA_BRANCH_WEIGHT, NS_SKIP_ONE, NS_INIT_PLAIN, 0,
     1},
    {NS_THEORY_TFIXUP, 0, 0, 0, NS_SPAN_NONE, NS_ALPHA_BRANCH_WEIGHT, NS_SKIP_ONE, NS_INIT_TFIXUP,
     0, 0},
    /* PostNorm's structure with the profiled skip (a row's profiled_skip picks this form) */
    {NS_THEORY_ADMIN, 0, 0, 1, NS_SPAN_NONE, NS_ALPHA_BRANCH_WEIGHT, NS_SKIP_ONE, NS_INIT_PLAIN, 0,
     0},
    /* PreNorm's structure with the mid norm (a row's norm_mid picks this form) */
    {NS_THEORY_SUBLN, 1, 0, 0, NS_SPAN_NONE, NS_ALPHA_BRANCH_WEIGHT, NS_SKIP_ONE, NS_INIT_SUBLN, 0,
     0},
    /* PreNorm's structure with DeepScaleLM's gains (its branch gain picks this form) */
    {NS_THEORY_DSLM, 1, 0, 0, NS_SPAN_NONE, NS_ALPHA_BRANCH_WEIGHT, NS_SKIP_DSLM, NS_INIT_DSLM, 0,
     0},
};
/* ResiDual's form is told by its dual stream, which no other form has */
_Static_assert(sizeof forms / sizeof forms[0] == NS_THEORY_NFORMS - 1, "one structure per form");

int ns_theory_form_of(const ns_placement *p, ns_theory_form *form)
{
    if (!p || p->block_skip)
        return NS_ERR_INVALID; /* a structure the theory does not cover yet */
    if (p->dual_stream) {
        *form = NS_THEORY_RESIDUAL;
        return p->norm_sum && !p->norm_in && !p->norm_out && p->span == NS_SPAN_NONE &&
                       p->skip_gain == NS_SKIP_ONE && p->init_rule == NS_INIT_PLAIN &&
                       !p->layer_scaled && !p->gated
                   ? NS_OK
                   : NS_ERR_INVALID;
    }
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (p->norm_in == forms[i].norm_in && p->norm_out == forms[i].norm_out &&
            p->norm_sum == forms[i].norm_sum && p->span == forms[i].span &&
            p->alpha_site == forms[i].alpha_site && p->skip_gain == forms[i].skip_gain &&
            p->init_rule == forms[i].init_rule && p->layer_scaled == forms[i].layer_scaled &&
            p->gated == forms[i].gated &&
            !p->profiled_skip == (forms[i].form != NS_THEORY_ADMIN) &&
            !p->norm_mid == (forms[i].form != NS_THEORY_SUBLN) &&
            (p->branch_gain == NS_BRANCH_DSLM) == (forms[i].form == NS_THEORY_DSLM)) {
            *form = forms[i].form;
            return NS_OK;
        }
    return NS_ERR_INVALID;
}

int ns_theory_transformer_covers(const ns_placement *p)
{
    if (!p)
        return 0;
    if (p->early) /* Mix-LN: its two rows */
        return ns_theory_transformer_covers(ns_placement_find(p->early)) &&
               ns_theory_transformer_covers(ns_placement_find(p->late));
    return 1;
}

/* the numbers of *in, and its blocks' rows; NS_ERR_INVALID for anything out of range */
static int rows_of(const ns_theory_input *in, ns_schedule *rows)
{
    if (!in)
        return NS_ERR_INVALID;
    if ((in->act != NS_ACT_GELU && in->act != NS_ACT_RELU && in->act != NS_ACT_LINEAR) ||
        (in->norm != NS_NORM_LAYERNORM && in->norm != NS_NORM_RMSNORM))
        return NS_ERR_INVALID;
    /* d <= 2 would make the LayerNorm factor 1 - 2/d vanish or turn negative: no such theory */
    if (in->depth < 1 || (in->width != 0 && in->width < 3) || in->hidden < 0)
        return NS_ERR_INVALID;
    if (!(in->alpha > 0) || !isfinite(in->alpha) || !(in->q0 > 0) || !isfinite(in->q0) ||
        !(in->rho0 >= -1 && in->rho0 <= 1) || !isfinite(in->gate) ||
        !(in->norm_eps >= 0) || !isfinite(in->norm_eps) ||
        !(in->post_fraction >= 0 && in->post_fraction <= 1))
        return NS_ERR_INVALID;
    const ns_placement *p = in->schedule.n ? NULL : ns_placement_find(in->placement);
    if (!p && !in->schedule.n)
        return NS_ERR_INVALID;
    ns_schedule_resolve(p, &in->schedule, in->post_fraction, in->depth, rows);
    int entry; /* the block kind is the form's business (B2T has none) */
    return ns_schedule_check(rows, in->depth, NS_BLOCK_TRANSFORMER, &entry) == NS_SCHEDULE_OK
               ? NS_OK
               : NS_ERR_INVALID;
}

int ns_theory_rows(const ns_theory_input *in, ns_schedule *rows)
{
    return rows ? rows_of(in, rows) : NS_ERR_INVALID;
}

int ns_theory_validate(const ns_theory_input *in, ns_theory_form *kind)
{
    ns_schedule rows;
    if (!kind || rows_of(in, &rows) != NS_OK || rows.n != 1)
        return NS_ERR_INVALID;
    return ns_theory_form_of(rows.row[0], kind);
}

int ns_theory_block_form(const ns_theory_input *in, int layer, ns_theory_form *form)
{
    ns_schedule rows;
    if (!form || rows_of(in, &rows) != NS_OK || layer < 1 || layer > in->depth)
        return NS_ERR_INVALID;
    return ns_theory_form_of(ns_schedule_row(&rows, layer, in->depth), form);
}

void ns_theory_free(ns_theory *t)
{
    if (!t)
        return;
    free(t->act_ms); /* one allocation holds every array */
    memset(t, 0, sizeof *t);
}
