/* propagate.c: forward and backward through the stack at init, metrics per layer and seed. */
#include "propagate.h"
#include "metrics.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ns_propagate_result_free(ns_propagate_result *r)
{
    free(r->act_ms); /* one allocation holds every metric array */
    free(r->skip_weight);
    memset(r, 0, sizeof *r);
}

static int result_alloc(ns_propagate_result *r, int S, int L, int P, int heads, int experts,
                        int dual)
{
    memset(r, 0, sizeof *r);
    size_t n1 = (size_t)S * (L + 1), n0 = (size_t)S * L, np = (size_t)S * L * P;
    size_t nt = heads ? 4 * n0 + n0 * heads : 0; /* the Transformer's extra metrics */
    size_t nm = experts ? 4 * n0 + n0 * experts : 0; /* and the mixture of experts' */
    size_t nr = dual ? 2 * n1 : 0; /* and ResiDual's dual stream's */
    double *base = calloc(5 * n1 + 2 * n0 + np + nt + nm + nr, sizeof(double));
    if (!base)
        return NS_ERR_NOMEM;
    double **slots1[] = {&r->act_ms, &r->act_var, &r->grad_ms, &r->cos_tokens, &r->eff_rank};
    for (int i = 0; i < 5; i++, base += n1)
        *slots1[i] = base;
    double **slots0[] = {&r->cos_layer, &r->branch_ms, &r->attn_out_ms, &r->mlp_out_ms,
                         &r->mid_act_ms, &r->attn_entropy};
    for (int i = 0; i < (heads ? 6 : 2); i++, base += n0)
        *slots0[i] = base;
    r->param_grad_ms = base;
    base += np;
    if (heads) {
        r->attn_entropy_head = base;
        base += n0 * heads;
    }
    if (experts) {
        double **slots[] = {&r->router_entropy, &r->load_cv, &r->dropped_frac, &r->aux_loss};
        for (int i = 0; i < 4; i++, base += n0)
            *slots[i] = base;
        r->expert_load = base;
        base += n0 * experts;
    }
    if (dual) {
        r->dual_act_ms = base;
        r->dual_grad_ms = base + n1;
    }
    r->seeds = S, r->depth = L, r->nparams = P, r->heads = heads, r->experts = experts;
    return NS_OK;
}

/* x_0 for seed sd: Gaussian, or token and position embeddings (propagate.h) */
static int draw_input(const ns_propagate_opts *o, float *x0, uint64_t sd)
{
    const ns_config *c = &o->model;
    size_t nd = (size_t)c->ntok * c->width;
    if (o->input == NS_INPUT_GAUSSIAN)
        return ns_fill_gaussian(x0, nd, 1.0, sd, -1, "input");
    size_t d = (size_t)c->width;
    int *ids = malloc((size_t)c->ntok * sizeof *ids);
    float *emb = malloc(((size_t)o->vocab + c->seq) * d * sizeof *emb), *pos = emb + o->vocab * d;
    int st = !ids || !emb ? NS_ERR_NOMEM : NS_OK;
    if (!st && !(st = ns_fill_uniform_int(ids, (size_t)c->ntok, o->vocab, sd, -1, "token_ids")) &&
        !(st = ns_fill_gaussian(emb, o->vocab * d, 1.0, sd, -1, "token_embedding")) &&
        !(st = ns_fill_gaussian(pos, c->seq * d, NS_POSITION_STD, sd, -1, "position_embedding")))
        for (int i = 0; i < c->ntok; i++)
            for (size_t k = 0; k < d; k++)
                x0[i * d + k] = emb[ids[i] * d + k] + pos[(i % c->seq) * d + k];
    free(ids);
    free(emb);
    return st;
}

/* the metrics of the residual stream x_l of seed s (and, for l >= 1, of block l's internals) */
static int forward_metrics(ns_propagate_result *r, ns_model *m, int s, int l, int seq)
{
    const ns_config *c = ns_model_config(m);
    int d = c->width, nseq = c->ntok / seq;
    size_t k = (size_t)s * (r->depth + 1) + l, n = (size_t)c->ntok * d;
    const float *x = ns_model_stream(m, l);
    r->act_ms[k] = ns_metric_mean_square(x, n);
    if (r->dual_act_ms)
        r->dual_act_ms[k] = ns_metric_mean_square(ns_model_dual_stream(m, l), n);
    r->act_var[k] = ns_metric_act_var(x, c->ntok, d);
    r->cos_tokens[k] = ns_metric_cos_tokens(x, nseq, seq, d);
    if (ns_metric_eff_rank(x, nseq, seq, d, &r->eff_rank[k]) != 0)
        return NS_ERR_NUMERIC;
    if (l == 0)
        return NS_OK;
    size_t kb = (size_t)s * r->depth + (l - 1);
    r->cos_layer[kb] = ns_metric_cos_layer(ns_model_stream(m, l - 1), x, c->ntok, d);
    r->branch_ms[kb] = ns_metric_mean_square(ns_model_branch_out(m, l), n);
    if (r->heads) {
        r->attn_out_ms[kb] = ns_metric_mean_square(ns_model_sublayer_out(m, l, 0), n);
        r->mlp_out_ms[kb] = ns_metric_mean_square(ns_model_sublayer_out(m, l, 1), n);
        r->mid_act_ms[kb] = ns_metric_mean_square(ns_model_mid_stream(m, l), n);
        r->attn_entropy[kb] = ns_metric_attn_entropy(ns_model_attn_probs(m, l), nseq, r->heads,
                                                     seq, r->attn_entropy_head + kb * r->heads);
    }
    if (r->experts) {
        const float *probs;
        const int *expert, *row;
        double zloss;
        ns_model_routing(m, l, &probs, &expert, &row);
        r->load_cv[kb] = ns_metric_expert_load(expert, c->ntok, c->top_k, c->experts,
                                               r->expert_load + kb * r->experts);
        r->router_entropy[kb] = ns_metric_router_entropy(probs, c->ntok, c->experts);
        r->dropped_frac[kb] = ns_metric_dropped_frac(row, c->ntok, c->top_k);
        ns_model_moe_losses(m, l, &r->aux_loss[kb], &zloss);
    }
    return NS_OK;
}

/* the model propagate creates for c: the metrics read each block's parameter gradients right
 * after its backward, so the blocks share one gradient slice */
static ns_config model_config(const ns_config *c)
{
    ns_config shared = *c;
    shared.shared_grads = 1;
    return shared;
}

/* block l's forward; a windowed model first draws block l's weights into its slot */
static int forward_block(ns_model *m, int windowed, uint64_t sd, int l)
{
    int st = windowed ? ns_model_init_block(m, sd, l) : NS_OK;
    return st ? st : ns_model_block_forward(m, l);
}

/* Admin: the profiling pass over blocks 1..L on seed sd's input, which sets the skip weights
 * (ns_model_profile_begin); a windowed walk draws each block as the forward does and reuses
 * x_0's buffer, so x_0 is drawn again after it. The weights go to r's row for seed s. */
static int profile(const ns_propagate_opts *o, ns_propagate_result *r, ns_model *m, int windowed,
                   uint64_t sd, int s)
{
    int st = ns_model_profile_begin(m);
    for (int l = 1; st == NS_OK && l <= o->model.depth; l++)
        st = forward_block(m, windowed, sd, l);
    if (st == NS_OK && (st = ns_model_profile_end(m)) == NS_OK) {
        size_t n;
        const double *w = ns_model_skip_weights(m, &n);
        memcpy(r->skip_weight + (size_t)s * n, w, n * sizeof *w);
        st = draw_input(o, ns_model_stream(m, 0), sd);
    }
    return st;
}

int ns_propagate(const ns_propagate_opts *o, ns_propagate_result *r, ns_tick_fn tick,
                 void *tick_ctx)
{
    const ns_config *cfg = &o->model;
    int seq = cfg->seq, seeds = o->seeds;
    if (seq < 1 || seeds < 1 || cfg->ntok % seq != 0 ||
        (o->input == NS_INPUT_TOKENS && o->vocab < 1))
        return NS_ERR_INVALID;
    ns_model *m = NULL;
    float *g = NULL;
    ns_config shared = model_config(cfg);
    int status = ns_model_create_in(&m, &shared, o->workspace);
    if (status)
        return status;
    int L = cfg->depth, P = ns_model_nparams(m);
    int heads = cfg->block != NS_BLOCK_MLP ? cfg->heads : 0;
    int experts = cfg->block == NS_BLOCK_MOE ? cfg->experts : 0;
    size_t nd = (size_t)cfg->ntok * cfg->width;
    /* Segments of K blocks: with every block resident (K = L) one segment. Otherwise the
     * forward keeps x at the start of each segment, and the backward walks the segments from
     * the top, redrawing each one's weights and recomputing its forward from the kept x before
     * its backward: the forward runs twice, memory does not grow with L, and the results are
     * bit for bit those of K = L (the same operations on the same numbers). */
    int K = ns_model_window(m), nseg = (L + K - 1) / K, windowed = K < L;
    if (P > NS_MAX_PARAM_NAMES) {
        ns_model_free(m);
        return NS_ERR_INVALID;
    }
    int dual = ns_model_dual_stream(m, 0) != NULL; /* ResiDual keeps r beside x */
    if ((status = result_alloc(r, seeds, L, P, heads, experts, dual)))
        goto done;
    size_t nskip;
    if (ns_model_skip_weights(m, &nskip)) {
        r->sublayers = ns_model_nsublayers(m);
        if (!(r->skip_weight = malloc((size_t)seeds * nskip * sizeof *r->skip_weight))) {
            status = NS_ERR_NOMEM;
            goto done;
        }
    }
    for (int i = 0; i < P; i++)
        snprintf(r->param_names[i], sizeof r->param_names[i], "%s", ns_model_param_info(m, i)->name);
    /* ping-pong dLoss/dx_l, then the kept x of each segment but the last (ResiDual's r needs no
     * keeping: below the top its backward reads only dLoss/dr, and r_L stays resident) */
    g = malloc((2 + (size_t)(windowed ? nseg - 1 : 0)) * nd * sizeof(float));
    if (!g) {
        status = NS_ERR_NOMEM;
        goto done;
    }
    float *kept = g + 2 * nd;
    long done = 0, total = 2L * L * seeds;
    for (int s = 0; s < seeds; s++) {
        uint64_t sd = o->seed + (uint64_t)s;
        if ((!windowed && (status = ns_model_init(m, sd))) ||
            (status = draw_input(o, ns_model_stream(m, 0), sd)) ||
            (r->skip_weight && (status = profile(o, r, m, windowed, sd, s))) ||
            (status = ns_fill_gaussian(g, nd, 1.0, sd, -1, "cotangent")) ||
            (!o->no_metrics && (status = forward_metrics(r, m, s, 0, seq))))
            goto done;
        for (int l = 1; l <= L; l++) {
            if (windowed && (l - 1) % K == 0 && (l - 1) / K < nseg - 1)
                memcpy(kept + (size_t)((l - 1) / K) * nd, ns_model_stream(m, l - 1),
                       nd * sizeof(float));
            if ((status = forward_block(m, windowed, sd, l)) ||
                (!o->no_metrics && (status = forward_metrics(r, m, s, l, seq))))
                goto done;
            if (tick && tick(tick_ctx, ++done, total)) {
                status = NS_ERR_INTERRUPTED;
                goto done;
            }
        }
        /* Loss = sum(x_L * G), so dLoss/dx_L = G */
        float *dy = g, *dx = g + nd;
        r->grad_ms[(size_t)s * (L + 1) + L] = ns_metric_mean_square(dy, nd);
        for (int seg = nseg - 1; seg >= 0; seg--) {
            int first = seg * K + 1, last = seg == nseg - 1 ? L : first + K - 1;
            if (seg < nseg - 1) { /* the last segment is still resident from the forward */
                memcpy(ns_model_stream(m, first - 1), kept + (size_t)seg * nd,
                       nd * sizeof(float));
                for (int l = first; l <= last; l++)
                    if ((status = forward_block(m, windowed, sd, l)))
                        goto done;
            }
            for (int l = last; l >= first; l--) {
                memset(dx, 0, nd * sizeof(float));
                if ((status = ns_model_block_backward(m, l, dx, dy)))
                    goto done;
                r->grad_ms[(size_t)s * (L + 1) + l - 1] = ns_metric_mean_square(dx, nd);
                if (dual) { /* dLoss/dr_l: set by block L's backward, the same below */
                    double *dg = r->dual_grad_ms + (size_t)s * (L + 1);
                    dg[l - 1] = ns_metric_mean_square(ns_model_dual_grad(m), nd);
                    if (l == L)
                        dg[L] = dg[l - 1];
                }
                for (int i = 0; i < P && !o->no_metrics; i++) {
                    const ns_param_info *pi = ns_model_param_info(m, i);
                    r->param_grad_ms[((size_t)s * L + (l - 1)) * P + i] = ns_metric_mean_square(
                        ns_model_param_grad(m, l, i), (size_t)pi->rows * pi->cols);
                }
                float *t = dx;
                dx = dy, dy = t;
                if (tick && tick(tick_ctx, ++done, total)) {
                    status = NS_ERR_INTERRUPTED;
                    goto done;
                }
            }
        }
    }
done:
    free(g);
    ns_model_free(m);
    if (status)
        ns_propagate_result_free(r);
    return status;
}

int ns_propagate_auto_window(const ns_config *c, size_t budget)
{
    size_t per_block, per_stream, fixed;
    ns_config shared = model_config(c);
    if (ns_model_bytes(&shared, &per_block, &per_stream, &fixed) != NS_OK)
        return 0; /* ns_model_create will refuse c, and say so */
    double L = c->depth;
    if (L * per_block + (L + 1) * per_stream + fixed <= (double)budget)
        return 0;
    int K = (int)lround(sqrt(L * (double)per_stream / (double)per_block));
    return K < 1 ? 1 : K >= c->depth ? 0 : K;
}

double ns_propagate_bytes(const ns_config *c)
{
    size_t per_block, per_stream, fixed;
    ns_config shared = model_config(c);
    if (ns_model_bytes(&shared, &per_block, &per_stream, &fixed) != NS_OK)
        return 0;
    int K = c->window > 0 && c->window < c->depth ? c->window : c->depth;
    return (double)K * per_block + (K + 1.0) * per_stream + (double)fixed;
}

/* Gaussian input with cfg->seq set from seq: kept while callers move to ns_propagate */
int ns_propagate_run(const ns_config *cfg, int seq, int seeds, uint64_t seed,
                     ns_propagate_result *r, ns_tick_fn tick, void *tick_ctx)
{
    ns_propagate_opts o = {.model = *cfg, .seeds = seeds, .seed = seed};
    o.model.seq = seq;
    return ns_propagate(&o, r, tick, tick_ctx);
}

int ns_propagate_write(ns_h5 *h, const char *prefix, const ns_propagate_result *r)
{
    /* descriptions, labels and shapes: the schema table (h5schema.c) */
    const ns_h5schema_sizes z = {.seeds = (size_t)r->seeds, .depth = (size_t)r->depth,
                                 .params = (size_t)r->nparams, .heads = (size_t)r->heads,
                                 .experts = (size_t)r->experts,
                                 .sublayers = (size_t)r->sublayers};
    const struct {
        ns_h5schema_id id;
        const double *data; /* NULL: a metric this block kind does not have */
    } sets[] = {
        {NS_H5S_PROPAGATE_ACT_MS, r->act_ms},
        {NS_H5S_PROPAGATE_ACT_VAR, r->act_var},
        {NS_H5S_PROPAGATE_GRAD_MS, r->grad_ms},
        {NS_H5S_PROPAGATE_COS_TOKENS, r->cos_tokens},
        {NS_H5S_PROPAGATE_EFF_RANK, r->eff_rank},
        {NS_H5S_PROPAGATE_COS_LAYER, r->cos_layer},
        {NS_H5S_PROPAGATE_BRANCH_MS, r->branch_ms},
        {NS_H5S_PROPAGATE_PARAM_GRAD_MS, r->param_grad_ms},
        /* Transformer blocks only */
        {NS_H5S_PROPAGATE_ATTN_OUT_MS, r->attn_out_ms},
        {NS_H5S_PROPAGATE_MLP_OUT_MS, r->mlp_out_ms},
        {NS_H5S_PROPAGATE_MID_ACT_MS, r->mid_act_ms},
        {NS_H5S_PROPAGATE_ATTN_ENTROPY, r->attn_entropy},
        {NS_H5S_PROPAGATE_ATTN_ENTROPY_HEAD, r->attn_entropy_head},
        /* MoE blocks only */
        {NS_H5S_PROPAGATE_EXPERT_LOAD, r->expert_load},
        {NS_H5S_PROPAGATE_ROUTER_ENTROPY, r->router_entropy},
        {NS_H5S_PROPAGATE_LOAD_CV, r->load_cv},
        {NS_H5S_PROPAGATE_DROPPED_FRAC, r->dropped_frac},
        {NS_H5S_PROPAGATE_AUX_LOSS, r->aux_loss},
        /* ResiDual only */
        {NS_H5S_PROPAGATE_DUAL_ACT_MS, r->dual_act_ms},
        {NS_H5S_PROPAGATE_DUAL_GRAD_MS, r->dual_grad_ms},
    };
    char path[96], group[64];
    snprintf(group, sizeof group, "%s/propagate", prefix);
    int status = ns_h5_group(h, group);
    for (size_t i = 0; status == NS_OK && i < sizeof sets / sizeof sets[0]; i++)
        if (sets[i].data)
            status = ns_h5_entry(h, prefix, sets[i].id, &z, sets[i].data);
    if (status == NS_OK) {
        const char *names[NS_MAX_PARAM_NAMES];
        for (int i = 0; i < r->nparams; i++)
            names[i] = r->param_names[i];
        snprintf(path, sizeof path, "%s/%s", prefix,
                 ns_h5schema_get(NS_H5S_PROPAGATE_PARAM_GRAD_MS)->path);
        status = ns_h5_attr_strings(h, path, "names", names, r->nparams);
    }
    if (status == NS_OK && r->skip_weight) {
        snprintf(group, sizeof group, "%s/profile", prefix);
        if ((status = ns_h5_group(h, group)) == NS_OK)
            status = ns_h5_entry(h, prefix, NS_H5S_PROFILE_SKIP_WEIGHT, &z, r->skip_weight);
    }
    return status;
}

/* the order a prediction is taken to: the `order` attribute of its group */
static const char *theory_order(const ns_theory *t)
{
    return t->finite ? "O(1/d)" : "d -> infinity";
}

int ns_theory_write(ns_h5 *h, const char *prefix, const ns_propagate_opts *o, const ns_theory *t,
                    const ns_theory *t_inf)
{
    const ns_config *c = &o->model;
    size_t L = (size_t)t->depth;
    const ns_h5schema_sizes z = {.depth = L};
    /* the closed-form bound at every depth l <= L with this run's alpha: what a stack of l
     * blocks can reach (exact for every form but span-wrapped, where it is an upper bound) */
    double *bound = malloc((L + 1) * sizeof *bound);
    if (!bound)
        return NS_ERR_NOMEM;
    ns_theory_input in = {.placement = c->placement ? c->placement->name : NULL,
                          .act = c->act, .norm = c->norm,
                          .width = c->width, .hidden = c->hidden, .alpha = c->alpha,
                          .gate = c->gate_init, .q0 = 1, .rho0 = 0};
    bound[0] = in.q0;
    /* the closed forms are MLP-only, and of one row: a schedule (Mix-LN too) has none */
    int st = NS_OK, with_bound = c->block == NS_BLOCK_MLP && c->placement && !c->placement->early;
    for (size_t l = 1; with_bound && st == NS_OK && l <= L; l++) {
        in.depth = (int)l;
        st = ns_theory_bound_act_ms(&in, &bound[l]);
    }
    /* descriptions, labels and shapes: the schema table (h5schema.c) */
    const struct {
        ns_h5schema_id id;
        const double *data;
    } sets[] = {
        {NS_H5S_THEORY_ACT_MS, t->act_ms},
        {NS_H5S_THEORY_GRAD_MS, t->grad_ms},
        {NS_H5S_THEORY_COS_TOKENS, t->cos_tokens},
        {NS_H5S_THEORY_COS_LAYER, t->cos_layer},
        {NS_H5S_THEORY_BRANCH_MS, t->branch_ms},
        {NS_H5S_THEORY_ATTN_OUT_MS, t->attn_out_ms},
        {NS_H5S_THEORY_MLP_OUT_MS, t->mlp_out_ms},
        {NS_H5S_THEORY_MID_ACT_MS, t->mid_act_ms},
        {NS_H5S_THEORY_ACT_MS_BOUND, bound},
        {NS_H5S_THEORY_ACT_MS_SE, t->act_ms_se},
        {NS_H5S_THEORY_GRAD_MS_SE, t->grad_ms_se},
        {NS_H5S_THEORY_COS_TOKENS_SE, t->cos_tokens_se},
        {NS_H5S_THEORY_DUAL_ACT_MS, t->dual_act_ms},
        {NS_H5S_THEORY_DUAL_GRAD_MS, t->dual_grad_ms},
        {NS_H5S_THEORY_INF_ACT_MS, t_inf ? t_inf->act_ms : NULL},
        {NS_H5S_THEORY_INF_GRAD_MS, t_inf ? t_inf->grad_ms : NULL},
        {NS_H5S_THEORY_INF_COS_TOKENS, t_inf ? t_inf->cos_tokens : NULL},
        {NS_H5S_THEORY_INF_COS_LAYER, t_inf ? t_inf->cos_layer : NULL},
        {NS_H5S_THEORY_INF_BRANCH_MS, t_inf ? t_inf->branch_ms : NULL},
    };
    char group[64], group_inf[64];
    snprintf(group, sizeof group, "%s/theory", prefix);
    snprintf(group_inf, sizeof group_inf, "%s/theory_inf", prefix);
    if (st == NS_OK)
        st = ns_h5_group(h, group);
    if (st == NS_OK && t_inf)
        st = ns_h5_group(h, group_inf);
    for (size_t i = 0; st == NS_OK && i < sizeof sets / sizeof sets[0]; i++) {
        if (!sets[i].data || (sets[i].data == bound && !with_bound))
            continue;
        st = ns_h5_entry(h, prefix, sets[i].id, &z, sets[i].data);
    }
    if (st == NS_OK && !(st = ns_h5_attr_string(h, group, "model", t->model)) &&
        !(st = ns_h5_attr_int(h, group, "exact", t->exact)))
        st = ns_h5_attr_string(h, group, "order", theory_order(t));
    if (st == NS_OK && t_inf && !(st = ns_h5_attr_string(h, group_inf, "model", t_inf->model)) &&
        !(st = ns_h5_attr_int(h, group_inf, "exact", t_inf->exact)))
        st = ns_h5_attr_string(h, group_inf, "order", theory_order(t_inf));
    free(bound);
    return st;
}
