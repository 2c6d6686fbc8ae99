/* figures.c: the figures `normscope plot` knows, in the order it writes them. Each row is a
 * builder and its spec; a row whose data no input file has produces nothing. A new figure (MoE,
 * training, sweeps) is a row here, plus a builder in its own file if no existing one fits. */
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
    .metric = NS_DS_GRAD_MS, .theory = NS_DS_THEORY_GRAD_MS, .bound = NS_DS_THEORY_GRAD_MS_BOUND,
    .logy = 1,
    /* /theory/grad_ms is p_l / p_L: anchored to the measured grad_ms at l = L */
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

const ns_figure_entry ns_figure_table[] = {
    {ns_fig_layer, &act_ms},
    {ns_fig_layer, &grad_ms},
    {ns_fig_layer, &cos_tokens},
    {ns_fig_layer, &eff_rank},
    {ns_fig_layer, &cos_layer},
    {ns_fig_layer, &attn_entropy},
    {ns_fig_head_heatmap, NULL},
};
const int ns_figure_count = (int)(sizeof ns_figure_table / sizeof ns_figure_table[0]);
