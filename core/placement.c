/* placement.c: the table of normalization placements, the only place that knows one.
 *
 * A placement is data: which norm slots a sublayer has, what the block's outer skip carries, and
 * where Scale Init's alpha goes. model.c interprets these fields in one place; the program's
 * --placement choices and help, the theory (by the structure of a row), verify's cases, the
 * figures' colours (by row) and the notebooks (`normscope placements --json`) all read this
 * table, so a new placement (Sandwich/Peri-LN: norm_in + norm_out; B2T, DeepNorm: a skip gain or
 * an extra skip term) is a new row here plus its tests. */
#include "internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ns_placement placements[] = {
    {.name = "pre",
     .title = "PreNorm",
     .paper = "Xiong et al. 2020, arXiv 2002.04745",
     .equation = "y = x + F(N(x))",
     .equation2 = "h = x + A(N1(x)); y = h + F(N2(h))",
     .norm_in = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .final_norm = 1,
     .config_scheme = "pre",
     .config_span_variant = "aggregate"},
    {.name = "post",
     .title = "PostNorm",
     .paper = "Vaswani et al. 2017, arXiv 1706.03762",
     .equation = "y = N(x + F(x))",
     .equation2 = "h = N1(x + A(x)); y = N2(h + F(h))",
     .norm_sum = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .final_norm = 0,
     .config_scheme = "post",
     .config_span_variant = "aggregate"},
    /* SpanNorm (arXiv 2601.22580), reconstructed from the abstract: a clean skip over the whole
     * block and one PostNorm-style norm on the aggregated branch output, its gain starting at
     * alpha = 1/sqrt(L), so q_{l+1} = q_l + alpha^2 exactly at init. */
    {.name = "span",
     .title = "SpanNorm",
     .paper = "arXiv 2601.22580 (reconstructed from the abstract)",
     .equation = "y = x + N(F(x)), gain alpha",
     .equation2 = "a = A(x); f = F(x + a); y = x + N(a + f), gain alpha",
     .span = NS_SPAN_AGGREGATE,
     .alpha_site = NS_ALPHA_SPAN_GAIN,
     .alpha_on = "the gain of the span norm",
     .default_scale_init = "sqrtL",
     .final_norm = 1,
     .config_scheme = "span",
     .config_span_variant = "aggregate"},
    /* the "wrapped" reading: a PostNorm block inside one clean skip, alpha on its last norm */
    {.name = "span-wrapped",
     .title = "SpanNorm, wrapped",
     .paper = "arXiv 2601.22580, the wrapped reading of the abstract",
     .equation = "y = x + alpha N(x + F(x))",
     .equation2 = "h = N1(x + A(x)); y = x + alpha N2(h + F(h))",
     .norm_sum = 1,
     .span = NS_SPAN_WRAP,
     .alpha_site = NS_ALPHA_LAST_NORM_GAIN,
     .alpha_on = "the gain of the block's last norm",
     .default_scale_init = "sqrtL",
     .final_norm = 1,
     .config_scheme = "span",
     .config_span_variant = "wrapped"},
    /* Sandwich-LN / Peri-LN: a norm on both sides of every branch; alpha starts the output norms'
     * gains, so q_{l+1} = q_l + alpha^2 per sublayer at init, as for SpanNorm */
    {.name = "sandwich",
     .title = "Sandwich-LN / Peri-LN",
     .paper = "Ding et al. 2021, arXiv 2105.13290; Kim et al. 2025, arXiv 2502.02732",
     .equation = "y = x + No(F(Ni(x))), gain of No alpha",
     .equation2 = "h = x + No1(A(Ni1(x))); y = h + No2(F(Ni2(h))), gains of No alpha",
     .norm_in = 1,
     .norm_out = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_OUT_NORM_GAIN,
     .alpha_on = "the gains of the output norms",
     .default_scale_init = "none",
     .final_norm = 1,
     .config_scheme = "sandwich",
     .config_span_variant = "aggregate"},
    /* DeepNet's decoder-only rule: PostNorm with the skip up-weighted and the value, output and
     * MLP weights scaled down, so the update of each block is bounded in depth */
    {.name = "deepnorm",
     .title = "DeepNorm",
     .paper = "Wang et al. 2022, arXiv 2203.00555 (decoder-only rule)",
     .equation = "y = N(a x + F(x)), a = (2L)^(1/4); W1, W2 std times (8L)^(-1/4)",
     .equation2 = "h = N1(a x + A(x)); y = N2(a h + F(h)), a = (2L)^(1/4); W_V, W_O, W1, W2 std "
                  "times (8L)^(-1/4)",
     .norm_sum = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .skip_gain = NS_SKIP_DEEPNORM,
     .init_rule = NS_INIT_DEEPNORM,
     .final_norm = 0,
     .config_scheme = "deepnorm",
     .config_span_variant = "aggregate"},
    /* B2T: PostNorm whose second sum also carries the block input past both norms */
    {.name = "b2t",
     .title = "B2T connection",
     .paper = "Takase et al. 2022, arXiv 2206.00330",
     .equation = "(Transformer and MoE blocks only)",
     .equation2 = "h = N1(x + A(x)); y = N2(h + F(h) + x)",
     .norm_sum = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .block_skip = 1,
     .final_norm = 0,
     .config_scheme = "b2t",
     .config_span_variant = "aggregate"},
    /* LayerNorm Scaling: PreNorm with the norm's output damped by 1/sqrt(l) in block l */
    {.name = "lns",
     .title = "LayerNorm Scaling",
     .paper = "Sun et al. 2025, arXiv 2502.05795",
     .equation = "y = x + F(N(x) / sqrt(l))",
     .equation2 = "h = x + A(N1(x) / sqrt(l)); y = h + F(N2(h) / sqrt(l))",
     .norm_in = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .layer_scaled = 1,
     .final_norm = 1,
     .config_scheme = "lns",
     .config_span_variant = "aggregate"},
    /* ReZero: no norms; every branch enters through a learnable scalar that starts at 0 */
    {.name = "rezero",
     .title = "ReZero",
     .paper = "Bachlechner et al. 2020, arXiv 2003.04887",
     .equation = "y = x + w F(x), w starting at --rezero-init",
     .equation2 = "h = x + w1 A(x); y = h + w2 F(h), w1, w2 starting at --rezero-init",
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .gated = 1,
     .final_norm = 0,
     .config_scheme = "rezero",
     .config_span_variant = "aggregate"},
    /* T-Fixup's decoder rule: no norms, the value, output and MLP weights scaled down */
    {.name = "tfixup",
     .title = "T-Fixup",
     .paper = "Huang et al. 2020, ICML, Improving Transformer Optimization Through Better "
              "Initialization (decoder rule)",
     .equation = "y = x + F(x); W1, W2 std times (9L)^(-1/4)",
     .equation2 = "h = x + A(x); y = h + F(h); W_V, W_O, W1, W2 std times (9L)^(-1/4)",
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .init_rule = NS_INIT_TFIXUP,
     .final_norm = 0,
     .config_scheme = "tfixup",
     .config_span_variant = "aggregate"},
    /* Mix-LN: PostNorm in the first blocks, PreNorm after (their rows decide each block; the
     * flags here are their union, and a language model's final norm follows the last block:
     * there unless --post-fraction 1 makes every block post) */
    {.name = "mixln",
     .title = "Mix-LN",
     .paper = "Li et al. 2024, arXiv 2412.13795",
     .equation = "post for blocks l <= floor(f L), pre after; f = --post-fraction",
     .equation2 = "post for blocks l <= floor(f L), pre after; f = --post-fraction",
     .norm_in = 1,
     .norm_sum = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .final_norm = 1,
     .config_scheme = "mixln",
     .config_span_variant = "aggregate",
     .early = "post",
     .late = "pre"},
    /* ResiDual, after microsoft/ResiDual (resi_dual/resi_dual_layers.py, resi_dual.py): PostNorm
     * on the main stream, every branch output also summed into an unnormalized dual stream, a
     * norm of its own on that stream at the top; the branch reads the main stream unnormalized */
    {.name = "residual",
     .title = "ResiDual",
     .paper = "Xie et al. 2023, arXiv 2304.14802",
     .equation = "o = F(x); r = r + o; y = N(x + o); output x_L + Nf(r_L), r_0 = x_0",
     .equation2 = "a = A(x); r = r + a; h = N1(x + a); f = F(h); r = r + f; y = N2(h + f); "
                  "output x_L + Nf(r_L), r_0 = x_0",
     .norm_sum = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .final_norm = 0,
     .config_scheme = "residual",
     .config_span_variant = "aggregate",
     .dual_stream = 1},
    /* Admin: PostNorm whose skip carries w_i x_{i-1}, w_i profiled once from the run's own input
     * (model.c, "profiled skip weights"); after Transformer-Clinic's
     * fairseq/fairseq/modules/transformer_layer.py, w_1 = 1 */
    {.name = "admin",
     .title = "Admin",
     .paper = "Liu et al. 2020, arXiv 2004.08249",
     .equation = "x_i = N(w_i x_{i-1} + F(x_{i-1})), w_i profiled",
     .equation2 = "h = N1(w_1 x + A(x)); y = N2(w_2 h + F(h)), w profiled per sublayer",
     .norm_sum = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .final_norm = 0,
     .config_scheme = "admin",
     .config_span_variant = "aggregate",
     .profiled_skip = 1},
    /* Sub-LN (Magneto): PreNorm with a second norm inside each branch, before its last matrix,
     * and W_V, W_O, W1, W2 scaled up by sqrt(log(2L)); after torchscale's decoder.py (the
     * decoder-only rule, L = decoder_layers), multihead_attention.py (inner_attn_ln) and
     * feedforward_network.py (ffn_layernorm, in every expert of a mixture too) */
    {.name = "subln",
     .title = "Sub-LN / Magneto",
     .paper = "Wang et al. 2022, arXiv 2210.06423",
     .equation = "y = x + W2 Nm(phi(W1 N(x))); W1, W2 std times sqrt(log(2L))",
     .equation2 = "h = x + W_O Nm1(A_V(N1(x))); y = h + W2 Nm2(phi(W1 N2(h))); W_V, W_O, W1, W2 "
                  "std times sqrt(log(2L))",
     .norm_in = 1,
     .norm_mid = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .init_rule = NS_INIT_SUBLN,
     .final_norm = 1,
     .config_scheme = "subln",
     .config_span_variant = "aggregate"},
    /* DeepScaleLM, after akhilkedia/TranformersGetStable (DSLM_signal_propagation_figures/megatron/
     * model/transformer.py, ParallelTransformerLayer.forward, and model/utils.py): PreNorm whose
     * sums weigh the skip by lambda and the branch by beta, lambda^2 + beta^2 = 1, so a
     * unit-variance branch keeps the stream at unit variance; beta^2 = 1/L (the source's default
     * beta^2 = 0.005 for its 192 layers). The init puts the branch output at unit variance: W2's
     * std times E[phi^2]^(-1/2) (the source splits that factor between W1 and W2 for its relu,
     * the same function at init); W_V and W_O stay 1/sqrt(d): the source's factor for them
     * divides by a token correlation its own data sets (analysis/theory/README.md, 2.17) */
    {.name = "dslm",
     .title = "DeepScaleLM",
     .paper = "Kedia et al. 2024, arXiv 2403.09635",
     .equation = "y = lambda x + beta F(N(x)), beta^2 = 1/L = 1 - lambda^2; W2 std times "
                 "E[phi^2]^(-1/2)",
     .equation2 = "h = lambda x + beta A(N1(x)); y = lambda h + beta F(N2(h)), beta^2 = 1/L = 1 - "
                  "lambda^2; W2 std times E[phi^2]^(-1/2)",
     .norm_in = 1,
     .span = NS_SPAN_NONE,
     .alpha_site = NS_ALPHA_BRANCH_WEIGHT,
     .alpha_on = "the std of W2 and W_O",
     .default_scale_init = "none",
     .skip_gain = NS_SKIP_DSLM,
     .init_rule = NS_INIT_DSLM,
     .final_norm = 1,
     .config_scheme = "dslm",
     .config_span_variant = "aggregate",
     .branch_gain = NS_BRANCH_DSLM},
};
#define NPLACEMENTS (int)(sizeof placements / sizeof placements[0])

int ns_placement_count(void) { return NPLACEMENTS; }

const ns_placement *ns_placement_at(int i)
{
    return i >= 0 && i < NPLACEMENTS ? &placements[i] : NULL;
}

const ns_placement *ns_placement_find(const char *name)
{
    for (int i = 0; name && i < NPLACEMENTS; i++)
        if (strcmp(placements[i].name, name) == 0)
            return &placements[i];
    return NULL;
}

int ns_placement_index(const ns_placement *p)
{
    for (int i = 0; i < NPLACEMENTS; i++) /* equality: p may point anywhere */
        if (p == &placements[i])
            return i;
    return -1;
}

int ns_placement_takes(const ns_placement *p, ns_block_kind block)
{
    /* a skip from the block input into the second sum needs a second sublayer */
    return p && (block != NS_BLOCK_MLP || !p->block_skip);
}

int ns_placement_has_norms(const ns_placement *p)
{
    return p && (p->norm_in || p->norm_out || p->norm_sum || p->norm_mid ||
                 p->span == NS_SPAN_AGGREGATE || p->final_norm);
}

/* ---- schedules ---------------------------------------------------------------------------- */

int ns_schedule_is(const char *text) { return text && strpbrk(text, "*,") != NULL; }

ns_schedule_problem ns_schedule_parse(const char *text, ns_schedule *out, int *entry)
{
    memset(out, 0, sizeof *out);
    *entry = 0;
    for (const char *tok = text;; tok++) {
        size_t len = strcspn(tok, ",");
        const char *star = memchr(tok, '*', len);
        size_t name_len = star ? (size_t)(star - tok) : len;
        char name[64];
        if (out->n == NS_SCHEDULE_MAX)
            return NS_SCHEDULE_TOO_MANY;
        *entry = out->n;
        if (name_len == 0 || name_len >= sizeof name)
            return name_len ? NS_SCHEDULE_UNKNOWN : NS_SCHEDULE_SYNTAX;
        memcpy(name, tok, name_len);
        name[name_len] = 0;
        const ns_placement *p = ns_placement_find(name);
        if (!p)
            return NS_SCHEDULE_UNKNOWN;
        if (p->early)
            return NS_SCHEDULE_NESTED;
        long count = 0;
        if (star) {
            char *end;
            const char *num = star + 1;
            if (num == tok + len || !strchr("+-0123456789", *num))
                return NS_SCHEDULE_SYNTAX;
            count = strtol(num, &end, 10);
            if (end != tok + len)
                return NS_SCHEDULE_SYNTAX;
            if (count < 1 || count > 1L << 30)
                return NS_SCHEDULE_COUNT;
        }
        out->row[out->n] = p;
        out->count[out->n++] = (int)count;
        tok += len;
        if (!*tok)
            break;
    }
    for (int i = 0; i + 1 < out->n; i++)
        if (out->count[i] == 0) {
            *entry = i;
            return NS_SCHEDULE_FILL;
        }
    return NS_SCHEDULE_OK;
}

ns_schedule_problem ns_schedule_check(const ns_schedule *s, int depth, ns_block_kind block,
                                      int *entry)
{
    long used = 0;
    *entry = 0;
    for (int i = 0; i < s->n; i++) {
        const ns_placement *a = s->row[0], *b = s->row[i];
        *entry = i;
        if (!b || b->early || s->count[i] < 0 || (s->count[i] == 0 && i + 1 < s->n))
            return NS_SCHEDULE_SYNTAX; /* not what ns_schedule_parse makes */
        /* one layout for every block: the entries agree on everything that is not a switch */
        if ((s->n > 1 && (b->span != NS_SPAN_NONE || b->dual_stream)) || b->alpha_site != a->alpha_site ||
            b->init_rule != a->init_rule)
            return NS_SCHEDULE_SHAPE;
        /* profiled weights are one row's state: a stack's own row only, never a given schedule
         * (a resolved single row has one entry without a count) */
        if (b->profiled_skip && (s->n > 1 || s->count[0]))
            return NS_SCHEDULE_SHAPE;
        if (!ns_placement_takes(b, block))
            return NS_SCHEDULE_BLOCK;
        used += s->count[i];
        if (used > depth || (s->count[i] == 0 && used == depth))
            return NS_SCHEDULE_EXCEEDS;
    }
    if (s->n && s->count[s->n - 1] && used < depth)
        return NS_SCHEDULE_SHORT;
    return NS_SCHEDULE_OK;
}

void ns_schedule_text(const ns_schedule *s, char *out, size_t n)
{
    size_t k = 0;
    if (n)
        out[0] = 0;
    for (int i = 0; i < s->n && k < n; i++) {
        k += (size_t)snprintf(out + k, n - k, "%s%s", i ? "," : "", s->row[i]->name);
        if (s->count[i] && k < n)
            k += (size_t)snprintf(out + k, n - k, "*%d", s->count[i]);
    }
}

const ns_placement *ns_schedule_row(const ns_schedule *s, int layer, int depth)
{
    if (layer < 1 || layer > depth)
        return NULL;
    int first = 1;
    for (int i = 0; i < s->n; i++) {
        if (s->count[i] == 0 || layer < first + s->count[i])
            return s->row[i];
        first += s->count[i];
    }
    return NULL;
}

void ns_schedule_resolve(const ns_placement *p, const ns_schedule *given, double post_fraction,
                         int depth, ns_schedule *out)
{
    memset(out, 0, sizeof *out);
    if (given && given->n) {
        *out = *given;
    } else if (p && p->early) {
        /* floor(f L) early blocks, the rest late; a side with no blocks is left out */
        int early = (int)floor(post_fraction * depth);
        early = early < 0 ? 0 : early > depth ? depth : early;
        if (early) {
            out->row[out->n] = ns_placement_find(p->early);
            out->count[out->n++] = early;
        }
        if (early < depth) {
            out->row[out->n] = ns_placement_find(p->late);
            out->count[out->n++] = 0;
        }
    } else if (p) {
        out->row[0] = p;
        out->n = 1;
    }
}

const ns_placement *ns_config_block_placement(const ns_config *c, int layer)
{
    ns_schedule s;
    ns_schedule_resolve(c->placement, &c->schedule, c->post_fraction, c->depth, &s);
    return ns_schedule_row(&s, layer, c->depth);
}
