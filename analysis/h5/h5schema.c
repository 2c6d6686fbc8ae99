/* h5schema.c: the table of every dataset normscope writes (h5schema.h). Descriptions are the
 * files' `description` attributes, word for word: changing one changes the files. */
#include "h5schema.h"
#include <stdio.h>
#include <string.h>

static const struct {
    const char *label, *symbol;
} dims[] = {
    [NS_H5D_SEED] = {"seed", "S"},     [NS_H5D_LAYER] = {"layer", "L+1"},
    [NS_H5D_BLOCK] = {"block", "L"},   [NS_H5D_PARAM] = {"param", "P"},
    [NS_H5D_HEAD] = {"head", "H"},     [NS_H5D_EXPERT] = {"expert", "E"},
    [NS_H5D_POINT] = {"point", "N"},   [NS_H5D_SERIES] = {"series", "F"},
    [NS_H5D_ROW] = {"row", "C"},       [NS_H5D_STEP] = {"step", "T"},
    [NS_H5D_RECORD] = {"record", "R"}, [NS_H5D_EVENT] = {"event", "V"},
    [NS_H5D_ONE] = {NULL, "1"},       [NS_H5D_SUBLAYER] = {"sublayer", "J"},
};
_Static_assert(sizeof dims / sizeof dims[0] == NS_H5D_COUNT, "one row per ns_h5schema_dim");

/* shorthands for the shapes */
#define S_L1 2, {NS_H5D_SEED, NS_H5D_LAYER}
#define S_L 2, {NS_H5D_SEED, NS_H5D_BLOCK}
#define L1 1, {NS_H5D_LAYER}
#define L0 1, {NS_H5D_BLOCK}
#define F 1, {NS_H5D_SERIES}
#define T 1, {NS_H5D_STEP}
#define R 1, {NS_H5D_RECORD}
#define R_L1 2, {NS_H5D_RECORD, NS_H5D_LAYER}
#define R_L 2, {NS_H5D_RECORD, NS_H5D_BLOCK}
#define V 1, {NS_H5D_EVENT}
#define C 1, {NS_H5D_ROW}

static const ns_h5schema_entry table[] = {
    /* /propagate */
    [NS_H5S_PROPAGATE_ACT_MS] = {"propagate/act_ms", NS_H5T_F64, S_L1, NS_H5B_ALL,
        "mean of x_l^2 over all elements of the residual stream; layer 0 is the input"},
    [NS_H5S_PROPAGATE_ACT_VAR] = {"propagate/act_var", NS_H5T_F64, S_L1, NS_H5B_ALL,
        "mean over tokens of the variance of x_l across features"},
    [NS_H5S_PROPAGATE_GRAD_MS] = {"propagate/grad_ms", NS_H5T_F64, S_L1, NS_H5B_ALL,
        "mean of (dLoss/dx_l)^2 with Loss = sum(x_L * G), G ~ N(0,1)"},
    [NS_H5S_PROPAGATE_COS_TOKENS] = {"propagate/cos_tokens", NS_H5T_F64, S_L1, NS_H5B_ALL,
        "mean cosine similarity over distinct token pairs within a sequence"},
    [NS_H5S_PROPAGATE_EFF_RANK] = {"propagate/eff_rank", NS_H5T_F64, S_L1, NS_H5B_ALL,
        "effective rank (exp of the entropy of the normalized singular values) of each "
        "sequence's [seq x width] matrix, averaged over sequences"},
    [NS_H5S_PROPAGATE_COS_LAYER] = {"propagate/cos_layer", NS_H5T_F64, S_L, NS_H5B_ALL,
        "mean over tokens of cos(x_{l-1}, x_l); entry l-1 is block l"},
    [NS_H5S_PROPAGATE_BRANCH_MS] = {"propagate/branch_ms", NS_H5T_F64, S_L, NS_H5B_ALL,
        "mean square of block l's branch output F(.) before it enters any norm or sum"},
    [NS_H5S_PROPAGATE_PARAM_GRAD_MS] = {"propagate/param_grad_ms", NS_H5T_F64, 3,
        {NS_H5D_SEED, NS_H5D_BLOCK, NS_H5D_PARAM}, NS_H5B_ALL,
        "mean square gradient of each parameter tensor of block l; names in attribute `names`"},
    [NS_H5S_PROPAGATE_ATTN_OUT_MS] = {"propagate/attn_out_ms", NS_H5T_F64, S_L, NS_H5B_ATTENTION,
        "mean square of block l's attention sublayer output A(.) before it enters any norm or sum"},
    [NS_H5S_PROPAGATE_MLP_OUT_MS] = {"propagate/mlp_out_ms", NS_H5T_F64, S_L, NS_H5B_ATTENTION,
        "mean square of block l's MLP sublayer output F(.) before it enters any norm or sum"},
    [NS_H5S_PROPAGATE_MID_ACT_MS] = {"propagate/mid_act_ms", NS_H5T_F64, S_L, NS_H5B_ATTENTION,
        "mean square of the residual stream between block l's attention and MLP sublayers"},
    [NS_H5S_PROPAGATE_ATTN_ENTROPY] = {"propagate/attn_entropy", NS_H5T_F64, S_L,
        NS_H5B_ATTENTION,
        "entropy (nats) of the causal attention distributions of block l, averaged over heads, "
        "sequences and query positions"},
    [NS_H5S_PROPAGATE_ATTN_ENTROPY_HEAD] = {"propagate/attn_entropy_head", NS_H5T_F64, 3,
        {NS_H5D_SEED, NS_H5D_BLOCK, NS_H5D_HEAD}, NS_H5B_ATTENTION,
        "entropy (nats) of the causal attention distributions of block l per head, averaged "
        "over sequences and query positions"},
    [NS_H5S_PROPAGATE_EXPERT_LOAD] = {"propagate/expert_load", NS_H5T_F64, 3,
        {NS_H5D_SEED, NS_H5D_BLOCK, NS_H5D_EXPERT}, NS_H5B_MOE,
        "share of block l's routed token slots (tokens x top_k, before capacity drops) that "
        "chose each expert; sums to 1 over experts"},
    [NS_H5S_PROPAGATE_ROUTER_ENTROPY] = {"propagate/router_entropy", NS_H5T_F64, S_L, NS_H5B_MOE,
        "mean over tokens of the entropy (nats) of block l's router distribution, in [0, ln E]"},
    [NS_H5S_PROPAGATE_LOAD_CV] = {"propagate/load_cv", NS_H5T_F64, S_L, NS_H5B_MOE,
        "coefficient of variation (sd / mean) of block l's expert loads"},
    [NS_H5S_PROPAGATE_DROPPED_FRAC] = {"propagate/dropped_frac", NS_H5T_F64, S_L, NS_H5B_MOE,
        "share of block l's routed slots dropped by the capacity limit"},
    [NS_H5S_PROPAGATE_AUX_LOSS] = {"propagate/aux_loss", NS_H5T_F64, S_L, NS_H5B_MOE,
        "block l's Switch load-balancing loss E sum_e f_e P_e (1 when balanced), before its "
        "coefficient; not part of the propagate loss"},
    [NS_H5S_PROPAGATE_DUAL_ACT_MS] = {"propagate/dual_act_ms", NS_H5T_F64, S_L1,
        NS_H5B_ALL | NS_H5B_DUAL,
        "mean of r_l^2 over all elements of ResiDual's dual stream (r_0 = x_0, r_l = r_{l-1} + "
        "block l's branch outputs)"},
    [NS_H5S_PROPAGATE_DUAL_GRAD_MS] = {"propagate/dual_grad_ms", NS_H5T_F64, S_L1,
        NS_H5B_ALL | NS_H5B_DUAL,
        "mean of (dLoss/dr_l)^2 on ResiDual's dual stream, Loss = sum(y * G) with "
        "y = x_L + Nf(r_L)"},
    /* /theory */
    [NS_H5S_THEORY_ACT_MS] = {"theory/act_ms", NS_H5T_F64, L1, NS_H5B_ALL,
        "predicted mean square of x_l"},
    [NS_H5S_THEORY_GRAD_MS] = {"theory/grad_ms", NS_H5T_F64, L1, NS_H5B_ALL,
        "predicted mean square of dLoss/dx_l relative to the top (p_L = 1)"},
    [NS_H5S_THEORY_COS_TOKENS] = {"theory/cos_tokens", NS_H5T_F64, L1, NS_H5B_ALL,
        "predicted mean cosine between distinct tokens of a sequence"},
    [NS_H5S_THEORY_COS_LAYER] = {"theory/cos_layer", NS_H5T_F64, L0, NS_H5B_ALL,
        "predicted mean cos(x_{l-1}, x_l)"},
    [NS_H5S_THEORY_BRANCH_MS] = {"theory/branch_ms", NS_H5T_F64, L0, NS_H5B_ALL,
        "predicted mean square of the branch output"},
    [NS_H5S_THEORY_ATTN_OUT_MS] = {"theory/attn_out_ms", NS_H5T_F64, L0, NS_H5B_ATTENTION,
        "predicted mean square of the attention sublayer output (Transformer and MoE)"},
    [NS_H5S_THEORY_MLP_OUT_MS] = {"theory/mlp_out_ms", NS_H5T_F64, L0, NS_H5B_ATTENTION,
        "predicted mean square of the MLP or mixture sublayer output (Transformer and MoE)"},
    [NS_H5S_THEORY_MID_ACT_MS] = {"theory/mid_act_ms", NS_H5T_F64, L0, NS_H5B_ATTENTION,
        "predicted mean square of the stream between the sublayers (Transformer and MoE)"},
    [NS_H5S_THEORY_ACT_MS_BOUND] = {"theory/act_ms_bound", NS_H5T_F64, L1, NS_H5B_MLP,
        "closed-form q_l for a stack of l blocks with this alpha (exact for every form but "
        "span-wrapped; an upper bound for span-wrapped)"},
    [NS_H5S_THEORY_ACT_MS_SE] = {"theory/act_ms_se", NS_H5T_F64, L1, NS_H5B_TRANSFORMER,
        "Monte Carlo standard error of theory/act_ms over the score-field trajectories "
        "(Transformer)"},
    [NS_H5S_THEORY_GRAD_MS_SE] = {"theory/grad_ms_se", NS_H5T_F64, L1, NS_H5B_TRANSFORMER,
        "Monte Carlo standard error of theory/grad_ms over the score-field trajectories "
        "(Transformer)"},
    [NS_H5S_THEORY_COS_TOKENS_SE] = {"theory/cos_tokens_se", NS_H5T_F64, L1, NS_H5B_TRANSFORMER,
        "Monte Carlo standard error of theory/cos_tokens over the score-field trajectories "
        "(Transformer)"},
    [NS_H5S_THEORY_DUAL_ACT_MS] = {"theory/dual_act_ms", NS_H5T_F64, L1,
        NS_H5B_ALL | NS_H5B_DUAL, "predicted mean square of ResiDual's dual stream r_l"},
    [NS_H5S_THEORY_DUAL_GRAD_MS] = {"theory/dual_grad_ms", NS_H5T_F64, L1,
        NS_H5B_ALL | NS_H5B_DUAL,
        "predicted mean square of dLoss/dr_l relative to the top's dLoss/dx_L (p_L = 1)"},
    /* /theory_inf */
    [NS_H5S_THEORY_INF_ACT_MS] = {"theory_inf/act_ms", NS_H5T_F64, L1,
        NS_H5B_MLP | NS_H5B_TRANSFORMER,
        "predicted mean square of x_l as d -> infinity (Transformer: the expected-Gram "
        "recursion)"},
    [NS_H5S_THEORY_INF_GRAD_MS] = {"theory_inf/grad_ms", NS_H5T_F64, L1,
        NS_H5B_MLP | NS_H5B_TRANSFORMER,
        "predicted mean square of dLoss/dx_l relative to the top (p_L = 1) as d -> infinity"},
    [NS_H5S_THEORY_INF_COS_TOKENS] = {"theory_inf/cos_tokens", NS_H5T_F64, L1,
        NS_H5B_MLP | NS_H5B_TRANSFORMER,
        "predicted mean cosine between distinct tokens of a sequence as d -> infinity"},
    [NS_H5S_THEORY_INF_COS_LAYER] = {"theory_inf/cos_layer", NS_H5T_F64, L0,
        NS_H5B_MLP | NS_H5B_TRANSFORMER,
        "predicted mean cos(x_{l-1}, x_l) as d -> infinity"},
    [NS_H5S_THEORY_INF_BRANCH_MS] = {"theory_inf/branch_ms", NS_H5T_F64, L0,
        NS_H5B_MLP | NS_H5B_TRANSFORMER,
        "predicted mean square of the branch output as d -> infinity"},
    /* /sweep/fits */
    [NS_H5S_FITS_ACT_MS_SLOPE] = {"sweep/fits/act_ms_slope", NS_H5T_F64, F, NS_H5B_ALL,
        "fitted slope of ln(final act_ms) against ln(depth), seed means"},
    [NS_H5S_FITS_ACT_MS_SLOPE_SE] = {"sweep/fits/act_ms_slope_se", NS_H5T_F64, F, NS_H5B_ALL,
        "standard error of act_ms_slope: the spread of the seeds' own slopes over sqrt(seeds) (the "
        "seeds share their draws across depths); with one seed, the fit's"},
    [NS_H5S_FITS_ACT_MS_SLOPE_THEORY] = {"sweep/fits/act_ms_slope_theory", NS_H5T_F64, F,
        NS_H5B_ALL, "the same fit to the theory's final act_ms (NaN where no theory applies)"},
    [NS_H5S_FITS_ACT_MS_SLOPE_THEORY_SE] = {"sweep/fits/act_ms_slope_theory_se", NS_H5T_F64, F,
        NS_H5B_ALL, "standard error of act_ms_slope_theory"},
    [NS_H5S_FITS_GRAD_RATIO_SLOPE] = {"sweep/fits/grad_ratio_slope", NS_H5T_F64, F, NS_H5B_ALL,
        "fitted slope of ln(grad_ms[0] / grad_ms[L]) against ln(depth), seed means"},
    [NS_H5S_FITS_GRAD_RATIO_SLOPE_SE] = {"sweep/fits/grad_ratio_slope_se", NS_H5T_F64, F,
        NS_H5B_ALL, "standard error of grad_ratio_slope: the spread of the seeds' own slopes over "
        "sqrt(seeds); with one seed, the fit's"},
    [NS_H5S_FITS_GRAD_RATIO_SLOPE_THEORY] = {"sweep/fits/grad_ratio_slope_theory", NS_H5T_F64, F,
        NS_H5B_ALL, "the same fit to the theory's gradient ratio (NaN where no theory applies)"},
    [NS_H5S_FITS_GRAD_RATIO_SLOPE_THEORY_SE] = {"sweep/fits/grad_ratio_slope_theory_se",
        NS_H5T_F64, F, NS_H5B_ALL, "standard error of grad_ratio_slope_theory"},
    [NS_H5S_FITS_FIRST_POINT] = {"sweep/fits/first_point", NS_H5T_F64, F, NS_H5B_ALL,
        "the first point of the series in /runs and /sweep (the others follow in depth order)"},
    /* /train */
    [NS_H5S_TRAIN_STEP] = {"train/step", NS_H5T_SERIES, T, NS_H5B_ALL, "the step of each row"},
    [NS_H5S_TRAIN_LOSS] = {"train/loss", NS_H5T_SERIES, T, NS_H5B_ALL,
        "training loss (mean cross-entropy, nats per token)"},
    [NS_H5S_TRAIN_LR] = {"train/lr", NS_H5T_SERIES, T, NS_H5B_ALL, "learning rate of the step"},
    [NS_H5S_TRAIN_GRAD_NORM] = {"train/grad_norm", NS_H5T_SERIES, T, NS_H5B_ALL,
        "global gradient norm before clipping"},
    [NS_H5S_TRAIN_UPDATE_RATIO] = {"train/update_ratio", NS_H5T_SERIES, T, NS_H5B_ALL,
        "||delta W|| / ||W|| over all parameters"},
    [NS_H5S_TRAIN_CLIPPED] = {"train/clipped", NS_H5T_SERIES, T, NS_H5B_ALL,
        "1 if the gradient was clipped"},
    [NS_H5S_TRAIN_PROBE_STEP] = {"train/probe/step", NS_H5T_SERIES, R, NS_H5B_ALL,
        "the step of each probe record"},
    [NS_H5S_TRAIN_PROBE_EVAL_LOSS] = {"train/probe/eval_loss", NS_H5T_SERIES, R, NS_H5B_ALL,
        "held-out loss (nats per token)"},
    [NS_H5S_TRAIN_PROBE_EVAL_BITS] = {"train/probe/eval_bits", NS_H5T_SERIES, R, NS_H5B_ALL,
        "held-out loss in bits per token (eval_loss / ln 2): bits per byte for --data"},
    [NS_H5S_TRAIN_PROBE_ACT_MS] = {"train/probe/act_ms", NS_H5T_SERIES, R_L1, NS_H5B_ALL,
        "mean square of x_l on the probe batch"},
    [NS_H5S_TRAIN_PROBE_GRAD_MS] = {"train/probe/grad_ms", NS_H5T_SERIES, R_L1, NS_H5B_ALL,
        "mean square of dLoss/dx_l on the probe batch"},
    [NS_H5S_TRAIN_PROBE_COS_TOKENS] = {"train/probe/cos_tokens", NS_H5T_SERIES, R_L1, NS_H5B_ALL,
        "mean cosine between tokens of a sequence"},
    [NS_H5S_TRAIN_PROBE_EFF_RANK] = {"train/probe/eff_rank", NS_H5T_SERIES, R_L1, NS_H5B_ALL,
        "effective rank of each sequence's stream"},
    [NS_H5S_TRAIN_PROBE_COS_LAYER] = {"train/probe/cos_layer", NS_H5T_SERIES, R_L, NS_H5B_ALL,
        "mean cos(x_{l-1}, x_l)"},
    [NS_H5S_TRAIN_PROBE_PARAM_GRAD_NORM] = {"train/probe/param_grad_norm", NS_H5T_SERIES, R_L,
        NS_H5B_ALL, "gradient norm of block l's parameters at the probe's step"},
    [NS_H5S_TRAIN_PROBE_UPDATE_RATIO] = {"train/probe/update_ratio", NS_H5T_SERIES, R_L,
        NS_H5B_ALL, "||delta W|| / ||W|| of block l's parameters at the probe's step"},
    [NS_H5S_TRAIN_PROBE_ATTN_ENTROPY] = {"train/probe/attn_entropy", NS_H5T_SERIES, R_L,
        NS_H5B_ATTENTION, "attention entropy (nats) of block l"},
    [NS_H5S_TRAIN_PROBE_EXPERT_LOAD] = {"train/probe/expert_load", NS_H5T_SERIES, 3,
        {NS_H5D_RECORD, NS_H5D_BLOCK, NS_H5D_EXPERT}, NS_H5B_MOE,
        "share of block l's routed slots per expert"},
    [NS_H5S_TRAIN_EVENTS_STEP] = {"train/events/step", NS_H5T_SERIES, V, NS_H5B_ALL,
        "the step of each event"},
    [NS_H5S_TRAIN_EVENTS_KIND] = {"train/events/kind", NS_H5T_SERIES, V, NS_H5B_ALL,
        "0 nan_loss, 1 nan_grad, 2 loss_spike (names in the group attribute kinds)"},
    [NS_H5S_TRAIN_EVENTS_VALUE] = {"train/events/value", NS_H5T_SERIES, V, NS_H5B_ALL,
        "the loss or gradient norm (NaN/Inf events), or the z-score (spikes)"},
    [NS_H5S_TRAIN_STATUS] = {"train/status", NS_H5T_F64, 1, {NS_H5D_ONE}, NS_H5B_ALL,
        "0 running, 1 complete, 2 diverged, 3 interrupted"},
    /* /verify */
    [NS_H5S_VERIFY_CASE] = {"verify/case", NS_H5T_STRINGS, C, NS_H5B_ALL,
        "block placement act scale"},
    [NS_H5S_VERIFY_METRIC] = {"verify/metric", NS_H5T_STRINGS, C, NS_H5B_ALL,
        "the compared metric"},
    [NS_H5S_VERIFY_WORST_REL_ERR] = {"verify/worst_rel_err", NS_H5T_F64, C, NS_H5B_ALL,
        "max over layers of |seed mean - theory| / max(|theory|, floor)"},
    [NS_H5S_VERIFY_SHARE_IN_CI] = {"verify/share_in_ci", NS_H5T_F64, C, NS_H5B_ALL,
        "share of layers whose 95% t interval over seeds contains the theory"},
    [NS_H5S_VERIFY_TOLERANCE] = {"verify/tolerance", NS_H5T_F64, C, NS_H5B_ALL,
        "relative tolerance of the metric (a layer also passes inside the 99.9% t interval); 0: "
        "the interval alone decides"},
    [NS_H5S_VERIFY_EXACT] = {"verify/exact", NS_H5T_F64, C, NS_H5B_ALL,
        "1 if the comparison can fail: the theory is exact to the order the row compares at, "
        "0 if approximate (verdict approx)"},
    [NS_H5S_VERIFY_PASS] = {"verify/pass", NS_H5T_F64, C, NS_H5B_ALL, "1 if every layer passed"},
    [NS_H5S_VERIFY_WORST_REL_ERR_INF] = {"verify/worst_rel_err_inf", NS_H5T_F64, C, NS_H5B_ALL,
        "worst_rel_err of the d -> infinity theory (NaN where the row's theory is that one)"},
    /* /config */
    [NS_H5S_CONFIG_BLOCK_PLACEMENT] = {"config/block_placement", NS_H5T_STRINGS, L0, NS_H5B_ALL,
        "the placement (a row of normscope placements) of block l; entry l-1 is block l"},
    /* /profile and /train/skip_weight: a row with profiled skip weights only */
    [NS_H5S_PROFILE_SKIP_WEIGHT] = {"profile/skip_weight", NS_H5T_F64, 3,
        {NS_H5D_SEED, NS_H5D_BLOCK, NS_H5D_SUBLAYER}, NS_H5B_ALL,
        "the profiled skip weight w of each sublayer, x = N(w x + G(x)): w = 1 for the first, "
        "w^2 = ms(x_0) + the mean squares of the earlier sublayers' outputs in a pass with w = 1"},
    [NS_H5S_TRAIN_SKIP_WEIGHT] = {"train/skip_weight", NS_H5T_F64, 2,
        {NS_H5D_BLOCK, NS_H5D_SUBLAYER}, NS_H5B_ALL,
        "the profiled skip weight w of each sublayer, x = N(w x + G(x)), from the first "
        "training batch: w = 1 for the first, w^2 = ms(x_0) + the mean squares of the earlier "
        "sublayers' outputs in a pass with w = 1"},
};
_Static_assert(sizeof table / sizeof table[0] == NS_H5S_COUNT, "one row per ns_h5schema_id");

const ns_h5schema_entry *ns_h5schema_get(ns_h5schema_id id)
{
    return (unsigned)id < NS_H5S_COUNT ? &table[id] : NULL;
}

int ns_h5schema_find(const char *path)
{
    if (path[0] == '/')
        path++;
    for (int i = 0; i < NS_H5S_COUNT; i++)
        if (table[i].path && strcmp(table[i].path, path) == 0)
            return i;
    return -1;
}

const char *ns_h5schema_label(ns_h5schema_dim d)
{
    return (unsigned)d < NS_H5D_COUNT ? dims[d].label : NULL;
}

const char *ns_h5schema_symbol(ns_h5schema_dim d)
{
    return (unsigned)d < NS_H5D_COUNT ? dims[d].symbol : "?";
}

int ns_h5schema_labels(ns_h5schema_id id, const char *labels[NS_H5SCHEMA_MAX_RANK])
{
    const ns_h5schema_entry *e = ns_h5schema_get(id);
    int all = e && e->type != NS_H5T_STRINGS;
    for (int i = 0; e && i < e->rank; i++)
        all &= (labels[i] = ns_h5schema_label(e->dims[i])) != NULL;
    return all;
}

int ns_h5schema_dims(ns_h5schema_id id, const ns_h5schema_sizes *z,
                     size_t out[NS_H5SCHEMA_MAX_RANK])
{
    const ns_h5schema_entry *e = ns_h5schema_get(id);
    if (!e)
        return 0;
    for (int i = 0; i < e->rank; i++) {
        size_t v = 0;
        switch (e->dims[i]) {
        case NS_H5D_SEED: v = z->seeds; break;
        case NS_H5D_LAYER: v = z->depth ? z->depth + 1 : 0; break;
        case NS_H5D_BLOCK: v = z->depth; break;
        case NS_H5D_PARAM: v = z->params; break;
        case NS_H5D_HEAD: v = z->heads; break;
        case NS_H5D_EXPERT: v = z->experts; break;
        case NS_H5D_POINT: v = z->points; break;
        case NS_H5D_SERIES: v = z->series; break;
        case NS_H5D_ROW: v = z->rows; break;
        case NS_H5D_ONE: v = 1; break;
        case NS_H5D_SUBLAYER: v = z->sublayers; break;
        default: v = 0; /* the series' growing dimensions */
        }
        out[i] = v;
    }
    return e->rank;
}

void ns_h5schema_shape(ns_h5schema_id id, char *out, size_t n)
{
    const ns_h5schema_entry *e = ns_h5schema_get(id);
    size_t k = (size_t)snprintf(out, n, "[");
    for (int i = 0; e && i < e->rank && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%s", i ? ", " : "",
                              ns_h5schema_symbol(e->dims[i]));
    if (k < n)
        snprintf(out + k, n - k, "]");
}
