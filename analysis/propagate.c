/* propagate.c: forward and backward through the stack at init, metrics per layer and seed. */
#include "propagate.h"
#include "metrics.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ns_propagate_result_free(ns_propagate_result *r)
{
    free(r->act_ms); /* one allocation holds every metric array */
    memset(r, 0, sizeof *r);
}

static int result_alloc(ns_propagate_result *r, int S, int L, int P)
{
    memset(r, 0, sizeof *r);
    size_t n1 = (size_t)S * (L + 1), n0 = (size_t)S * L, np = (size_t)S * L * P;
    double *base = calloc(5 * n1 + 2 * n0 + np, sizeof(double));
    if (!base)
        return NS_ERR_NOMEM;
    double **slots1[] = {&r->act_ms, &r->act_var, &r->grad_ms, &r->cos_tokens, &r->eff_rank};
    for (int i = 0; i < 5; i++, base += n1)
        *slots1[i] = base;
    r->cos_layer = base;
    r->branch_ms = base + n0;
    r->param_grad_ms = base + 2 * n0;
    r->seeds = S, r->depth = L, r->nparams = P;
    return NS_OK;
}

/* the metrics of the residual stream x_l of seed s */
static int stream_metrics(ns_propagate_result *r, int s, int l, const float *x, const float *x_prev,
                          const float *branch, int nseq, int seq, int d)
{
    size_t k = (size_t)s * (r->depth + 1) + l, n = (size_t)nseq * seq * d;
    r->act_ms[k] = ns_metric_mean_square(x, n);
    r->act_var[k] = ns_metric_act_var(x, nseq * seq, d);
    r->cos_tokens[k] = ns_metric_cos_tokens(x, nseq, seq, d);
    if (ns_metric_eff_rank(x, nseq, seq, d, &r->eff_rank[k]) != 0)
        return NS_ERR_NUMERIC;
    if (x_prev) {
        size_t kb = (size_t)s * r->depth + (l - 1);
        r->cos_layer[kb] = ns_metric_cos_layer(x_prev, x, nseq * seq, d);
        r->branch_ms[kb] = ns_metric_mean_square(branch, n);
    }
    return NS_OK;
}

int ns_propagate_run(const ns_config *cfg, int seq, int seeds, uint64_t seed,
                     ns_propagate_result *r, ns_tick_fn tick, void *tick_ctx)
{
    if (seq < 1 || seeds < 1 || cfg->ntok % seq != 0)
        return NS_ERR_INVALID;
    ns_model *m = NULL;
    float *g = NULL;
    int status = ns_model_create(&m, cfg);
    if (status)
        return status;
    int L = cfg->depth, d = cfg->width, P = ns_model_nparams(m), nseq = cfg->ntok / seq;
    size_t nd = (size_t)cfg->ntok * d;
    if (P > NS_MAX_PARAM_NAMES) {
        ns_model_free(m);
        return NS_ERR_INVALID;
    }
    if ((status = result_alloc(r, seeds, L, P)))
        goto done;
    for (int i = 0; i < P; i++)
        snprintf(r->param_names[i], sizeof r->param_names[i], "%s", ns_model_param_info(m, i)->name);
    g = malloc(2 * nd * sizeof(float)); /* ping-pong dLoss/dx_l */
    if (!g) {
        status = NS_ERR_NOMEM;
        goto done;
    }
    long done = 0, total = 2L * L * seeds;
    for (int s = 0; s < seeds; s++) {
        uint64_t sd = seed + (uint64_t)s;
        if ((status = ns_model_init(m, sd)) ||
            (status = ns_fill_gaussian(ns_model_stream(m, 0), nd, 1.0, sd, -1, "input")) ||
            (status = ns_fill_gaussian(g, nd, 1.0, sd, -1, "cotangent")))
            goto done;
        if ((status = stream_metrics(r, s, 0, ns_model_stream(m, 0), NULL, NULL, nseq, seq, d)))
            goto done;
        for (int l = 1; l <= L; l++) {
            if ((status = ns_model_block_forward(m, l)) ||
                (status = stream_metrics(r, s, l, ns_model_stream(m, l), ns_model_stream(m, l - 1),
                                         ns_model_branch_out(m, l), nseq, seq, d)))
                goto done;
            if (tick && tick(tick_ctx, ++done, total)) {
                status = NS_ERR_INTERRUPTED;
                goto done;
            }
        }
        /* Loss = sum(x_L * G), so dLoss/dx_L = G */
        ns_model_zero_grad(m);
        float *dy = g, *dx = g + nd;
        r->grad_ms[(size_t)s * (L + 1) + L] = ns_metric_mean_square(dy, nd);
        for (int l = L; l >= 1; l--) {
            memset(dx, 0, nd * sizeof(float));
            if ((status = ns_model_block_backward(m, l, dx, dy)))
                goto done;
            r->grad_ms[(size_t)s * (L + 1) + l - 1] = ns_metric_mean_square(dx, nd);
            for (int i = 0; i < P; i++) {
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
done:
    free(g);
    ns_model_free(m);
    if (status)
        ns_propagate_result_free(r);
    return status;
}

int ns_propagate_write(ns_h5 *h, const ns_propagate_result *r)
{
    static const char *const seed_layer[] = {"seed", "layer"};
    static const char *const seed_block[] = {"seed", "block"};
    static const char *const seed_block_param[] = {"seed", "block", "param"};
    size_t S = (size_t)r->seeds, L = (size_t)r->depth;
    size_t d1[] = {S, L + 1}, d0[] = {S, L}, dp[] = {S, L, (size_t)r->nparams};
    const struct {
        const char *name;
        const double *data;
        const size_t *dims;
        int rank;
        const char *const *labels;
        const char *description;
    } sets[] = {
        {"act_ms", r->act_ms, d1, 2, seed_layer,
         "mean of x_l^2 over all elements of the residual stream; layer 0 is the input"},
        {"act_var", r->act_var, d1, 2, seed_layer,
         "mean over tokens of the variance of x_l across features"},
        {"grad_ms", r->grad_ms, d1, 2, seed_layer,
         "mean of (dLoss/dx_l)^2 with Loss = sum(x_L * G), G ~ N(0,1)"},
        {"cos_tokens", r->cos_tokens, d1, 2, seed_layer,
         "mean cosine similarity over distinct token pairs within a sequence"},
        {"eff_rank", r->eff_rank, d1, 2, seed_layer,
         "effective rank (exp of the entropy of the normalized singular values) of each "
         "sequence's [seq x width] matrix, averaged over sequences"},
        {"cos_layer", r->cos_layer, d0, 2, seed_block,
         "mean over tokens of cos(x_{l-1}, x_l); entry l-1 is block l"},
        {"branch_ms", r->branch_ms, d0, 2, seed_block,
         "mean square of block l's branch output F(.) before it enters any norm or sum"},
        {"param_grad_ms", r->param_grad_ms, dp, 3, seed_block_param,
         "mean square gradient of each parameter tensor of block l; names in attribute `names`"},
    };
    int status = ns_h5_group(h, "/propagate");
    char path[64];
    for (size_t i = 0; status == NS_OK && i < sizeof sets / sizeof sets[0]; i++) {
        snprintf(path, sizeof path, "/propagate/%s", sets[i].name);
        status = ns_h5_dataset(h, path, sets[i].rank, sets[i].dims, sets[i].data,
                               sets[i].description, sets[i].labels);
    }
    if (status == NS_OK) {
        const char *names[NS_MAX_PARAM_NAMES];
        for (int i = 0; i < r->nparams; i++)
            names[i] = r->param_names[i];
        status = ns_h5_attr_strings(h, "/propagate/param_grad_ms", "names", names, r->nparams);
    }
    return status;
}
