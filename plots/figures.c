/* figures.c: the figures `normscope plot` knows, in the order it writes them. Each row is a
 * builder and its spec; a row whose data no input file has produces nothing. A new figure
 * is a row here, plus a builder in its own file if no existing one fits. */
#include "plot_figure.h"

static const ns_layer_spec act_ms = {
    .name = "act_ms",
    .title = "Mean square of the residual stream x_l",
    .ylabel = "mean square of x_l (act_ms)",
    .metric = NS_DS_ACT_MS, .theory = NS_DS_THEORY_ACT_MS, .bound = NS_DS_THEORY_ACT_MS_BOUND,
    .logy = 1};

static const ns_layer_spec grad_ms = {
    .name = "grad_ms",
    .title = "Mean square of the gradient ∂Loss/∂x_l (Loss = sum(x_L · G), G ~ N(0,1))",
    .ylabel = "mean square of ∂Loss/∂x_l (grad_ms)",
    .metric = NS_DS_GRAD_MS, .theory = NS_DS_THEORY_GRAD_MS, .bound = NS_DS_NONE, .logy = 1,
    /* /theory/grad_ms is p_l / p_L: anchored to the measured grad_ms at l = L (no closed-form
     * bound: the files have none for gradients) */
    .theory_relative_to_last = 1};

static const ns_layer_spec cos_tokens = {
    .name = "cos_tokens",
    .title = "Cosine similarity between tokens of the same sequence",
    .ylabel = "mean cosine over token pairs (cos_tokens)",
    .metric = NS_DS_COS_TOKENS, .theory = NS_DS_THEORY_COS_TOKENS, .bound = NS_DS_NONE,
    .ycap = 1};

static const ns_layer_spec eff_rank = {
    .name = "eff_rank",
    .title = "Effective rank of each sequence's [T x d] stream",
    .ylabel = "effective rank of x_l (eff_rank)",
    .metric = NS_DS_EFF_RANK, .theory = NS_DS_NONE, .bound = NS_DS_NONE,
    .reference = NS_REF_RANK_LIMIT};

static const ns_layer_spec cos_layer = {
    .name = "cos_layer",
    .title = "How much a block turns the stream: cos(x_{l-1}, x_l)",
    .ylabel = "cos(x_{l-1}, x_l), mean over tokens (cos_layer)",
    .metric = NS_DS_COS_LAYER, .theory = NS_DS_THEORY_COS_LAYER, .bound = NS_DS_NONE,
    .ycap = 1};

static const ns_layer_spec attn_entropy = {
    .name = "attn_entropy",
    .title = "Entropy of the causal attention distributions (mean over heads and queries)",
    .ylabel = "attention entropy (nats)",
    .metric = NS_DS_ATTN_ENTROPY, .theory = NS_DS_NONE, .bound = NS_DS_NONE,
    .reference = NS_REF_UNIFORM_ATTENTION};

/* mixture of experts (`--block moe`) */
static const ns_layer_spec router_entropy = {
    .name = "router_entropy",
    .title = "Entropy of the router distribution (mean over tokens)",
    .ylabel = "router entropy (nats)",
    .metric = NS_DS_ROUTER_ENTROPY, .theory = NS_DS_NONE, .bound = NS_DS_NONE,
    .reference = NS_REF_UNIFORM_ROUTER, .nonneg = 1};

static const ns_layer_spec load_cv = {
    .name = "load_cv",
    .title = "Expert load imbalance: coefficient of variation of the loads",
    .ylabel = "sd / mean of the expert loads (load_cv)",
    .metric = NS_DS_LOAD_CV, .theory = NS_DS_NONE, .bound = NS_DS_NONE,
    .reference = NS_REF_ROUTING_NOISE, .nonneg = 1};

static int has_capacity(const ns_plot_file *f) { return f->capacity > 0; }

static const ns_layer_spec dropped_frac = {
    .name = "dropped_frac",
    .title = "Routed token slots dropped by the expert capacity limit",
    .ylabel = "share of routed slots dropped (dropped_frac)",
    .metric = NS_DS_DROPPED_FRAC, .theory = NS_DS_NONE, .bound = NS_DS_NONE,
    .ycap = 1, .nonneg = 1, .applies = has_capacity,
    .note = "runs with a capacity limit (--capacity > 0) only: without one nothing is dropped"};

/* depth sweeps (/sweep/fits) */
static const ns_depth_spec depth_act_ms = {
    .name = "depth_act_ms",
    .title = "Mean square of the last layer's stream, act_ms[L], against depth L",
    .ylabel = "act_ms[L] (mean square of x_L)",
    .q = NS_DEPTH_ACT_MS,
    .slope = NS_FIT_ACT_MS_SLOPE, .slope_se = NS_FIT_ACT_MS_SLOPE_SE,
    .slope_theory = NS_FIT_ACT_MS_SLOPE_THEORY,
    .slope_theory_se = NS_FIT_ACT_MS_SLOPE_THEORY_SE};

static const ns_depth_spec depth_grad_ratio = {
    .name = "depth_grad_ratio",
    .title = "Gradient growth through the stack, grad_ms[0] / grad_ms[L], against depth L",
    .ylabel = "grad_ms[0] / grad_ms[L]",
    .q = NS_DEPTH_GRAD_RATIO,
    .slope = NS_FIT_GRAD_RATIO_SLOPE, .slope_se = NS_FIT_GRAD_RATIO_SLOPE_SE,
    .slope_theory = NS_FIT_GRAD_RATIO_SLOPE_THEORY,
    .slope_theory_se = NS_FIT_GRAD_RATIO_SLOPE_THEORY_SE};

const ns_figure_entry ns_figure_table[] = {
    {ns_fig_layer, &act_ms},
    {ns_fig_layer, &grad_ms},
    {ns_fig_layer, &cos_tokens},
    {ns_fig_layer, &eff_rank},
    {ns_fig_layer, &cos_layer},
    {ns_fig_layer, &attn_entropy},
    {ns_fig_head_heatmap, NULL},
    {ns_fig_layer, &router_entropy},
    {ns_fig_layer, &load_cv},
    {ns_fig_layer, &dropped_frac},
    {ns_fig_expert_heatmap, NULL},
    {ns_fig_depth, &depth_act_ms},
    {ns_fig_depth, &depth_grad_ratio},
    {ns_fig_train, NULL},
};
const int ns_figure_count = (int)(sizeof ns_figure_table / sizeof ns_figure_table[0]);
