/* lm.c: a decoder-only language model around the block stack.
 *
 *   x_0[b,t] = E[id_bt] + P[t]              token embedding E [V,d], learned positions P [T,d]
 *   x_L      = blocks(x_0)                  ns_model
 *   h        = N_final(x_L)                 where the last block's placement needs it (final_norm),
 *                                           of the blocks' norm kind (DyT: a starts at dyt_init)
 *   logits   = h W_head  or  h E^T / sqrt(d) (tied head)
 *   loss     = mean over tokens of -log softmax(logits)[target]
 * Init: E ~ N(0,1) and P ~ N(0, 0.1^2) as the propagate token input; W_head ~ N(0, 1/d). The tied
 * head divides by sqrt(d) so that logits start at unit variance, as the untied head does.
 * The LM's own tensors (embeddings, final norm, head) are one allocation beside the model's
 * block parameters; gradients and caches likewise. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

#define POSITION_STD 0.1

/* DyT's scalar comes last, so the other tensors keep their indices */
enum { LM_TOK, LM_POS, LM_NORM_G, LM_NORM_B, LM_HEAD, LM_NORM_A, LM_NTENSORS };

struct ns_lm {
    ns_lm_config cfg;
    ns_model *m;
    ns_param_info info[LM_NTENSORS];
    int present[LM_NTENSORS];
    size_t nparams;
    ns_real *params, *grads;
    ns_real *h, *mean, *rstd, *probs; /* [N,d], [N], [N], [N,V] */
    ns_real *dh, *dx;                 /* backward scratch [N,d] x 2 */
    int *targets;                     /* [N] of the last forward */
    const int *ids;                   /* [N] of the last forward (the caller's) */
};

static void add(ns_lm *lm, int t, const char *name, int rows, int cols, int is_matrix)
{
    lm->present[t] = 1;
    lm->info[t] = (ns_param_info){.name = name, .rows = rows, .cols = cols,
                                  .offset = lm->nparams, .is_matrix = is_matrix};
    lm->nparams += (size_t)rows * cols;
}

int ns_lm_create(ns_lm **out, const ns_lm_config *c)
{
    *out = NULL;
    const ns_config *b = &c->blocks;
    /* training keeps every block and its gradients resident: an optimizer step updates all */
    if (c->vocab < 2 || b->seq < 1 || b->ntok % b->seq != 0 ||
        (b->window > 0 && b->window < b->depth) || b->shared_grads)
        return NS_ERR_INVALID;
    ns_lm *lm = calloc(1, sizeof *lm);
    if (!lm)
        return NS_ERR_NOMEM;
    lm->cfg = *c;
    int st = ns_model_create(&lm->m, b);
    if (st) {
        free(lm);
        return st;
    }
    int d = b->width, V = c->vocab, N = b->ntok;
    add(lm, LM_TOK, "tok_embedding", V, d, 0);
    add(lm, LM_POS, "pos_embedding", b->seq, d, 0);
    /* a final norm when the last block leaves the stream unnormalized (a schedule's last row) */
    if (ns_config_block_placement(b, b->depth)->final_norm) {
        add(lm, LM_NORM_G, "final_norm.gain", 1, d, 0);
        if (b->norm != NS_NORM_RMSNORM)
            add(lm, LM_NORM_B, "final_norm.bias", 1, d, 0);
        if (b->norm == NS_NORM_DYT)
            add(lm, LM_NORM_A, "final_norm.alpha_dyt", 1, 1, 0);
    }
    if (!c->tied)
        add(lm, LM_HEAD, "head", d, V, 1);
    size_t nd = (size_t)N * d;
    lm->params = calloc(lm->nparams, sizeof(ns_real));
    lm->grads = calloc(lm->nparams, sizeof(ns_real));
    lm->h = calloc(4 * nd + 2 * (size_t)N + (size_t)N * V, sizeof(ns_real));
    lm->targets = calloc((size_t)N, sizeof(int));
    if (!lm->params || !lm->grads || !lm->h || !lm->targets) {
        ns_lm_free(lm);
        return NS_ERR_NOMEM;
    }
    lm->dh = lm->h + nd, lm->dx = lm->h + 2 * nd;
    lm->mean = lm->h + 4 * nd, lm->rstd = lm->mean + N, lm->probs = lm->rstd + N;
    *out = lm;
    return NS_OK;
}

void ns_lm_free(ns_lm *lm)
{
    if (!lm)
        return;
    ns_model_free(lm->m);
    free(lm->params);
    free(lm->grads);
    free(lm->h);
    free(lm->targets);
    free(lm);
}

ns_model *ns_lm_model(ns_lm *lm) { return lm->m; }
const ns_lm_config *ns_lm_config_of(const ns_lm *lm) { return &lm->cfg; }
int ns_lm_ntensors(const ns_lm *lm) { (void)lm; return LM_NTENSORS; }

const ns_param_info *ns_lm_tensor(const ns_lm *lm, int t, ns_real **w, ns_real **g)
{
    if (t < 0 || t >= LM_NTENSORS || !lm->present[t])
        return NULL;
    if (w)
        *w = lm->params + lm->info[t].offset;
    if (g)
        *g = lm->grads + lm->info[t].offset;
    return &lm->info[t];
}

#define T_(t) (lm->params + lm->info[t].offset)
#define G_(t) (lm->grads + lm->info[t].offset)

int ns_lm_init(ns_lm *lm, uint64_t seed)
{
    int st = ns_model_init(lm->m, seed);
    const ns_config *b = &lm->cfg.blocks;
    int d = b->width, V = lm->cfg.vocab;
    if (!st)
        st = ns_fill_gaussian(T_(LM_TOK), (size_t)V * d, 1.0, seed, -1, "tok_embedding");
    if (!st)
        st = ns_fill_gaussian(T_(LM_POS), (size_t)b->seq * d, POSITION_STD, seed, -1,
                              "pos_embedding");
    if (!st && lm->present[LM_HEAD])
        st = ns_fill_gaussian(T_(LM_HEAD), (size_t)d * V, 1.0 / sqrt(d), seed, -1, "head");
    if (!st && lm->present[LM_NORM_G]) {
        for (int k = 0; k < d; k++)
            T_(LM_NORM_G)[k] = 1;
        if (lm->present[LM_NORM_B])
            memset(T_(LM_NORM_B), 0, (size_t)d * sizeof(ns_real));
        if (lm->present[LM_NORM_A])
            T_(LM_NORM_A)[0] = (ns_real)b->dyt_init;
    }
    return st;
}

ns_real *ns_lm_params_all(ns_lm *lm, size_t *n)
{
    *n = lm->nparams;
    return lm->params;
}

void ns_lm_zero_grad(ns_lm *lm)
{
    memset(lm->grads, 0, lm->nparams * sizeof(ns_real));
    ns_model_zero_grad(lm->m);
}

/* x_0 = E[ids] + P */
static void embed(ns_lm *lm, const int *ids)
{
    const ns_config *b = &lm->cfg.blocks;
    int N = b->ntok, d = b->width, T = b->seq;
    ns_real *x = ns_model_stream(lm->m, 0);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < d; k++)
            x[(size_t)i * d + k] = T_(LM_TOK)[(size_t)ids[i] * d + k] + T_(LM_POS)[(size_t)(i % T) * d + k];
}

int ns_lm_profile(ns_lm *lm, const int *ids)
{
    const ns_config *b = &lm->cfg.blocks;
    for (int i = 0; i < b->ntok; i++)
        if (ids[i] < 0 || ids[i] >= lm->cfg.vocab)
            return NS_ERR_INVALID;
    embed(lm, ids);
    int st = ns_model_profile_begin(lm->m);
    for (int l = 1; st == NS_OK && l <= b->depth; l++)
        st = ns_model_block_forward(lm->m, l);
    return st ? st : ns_model_profile_end(lm->m);
}

int ns_lm_forward(ns_lm *lm, const int *ids, const int *targets, double *loss)
{
    const ns_config *b = &lm->cfg.blocks;
    int N = b->ntok, d = b->width, V = lm->cfg.vocab;
    for (int i = 0; i < N; i++)
        if (ids[i] < 0 || ids[i] >= V || targets[i] < 0 || targets[i] >= V)
            return NS_ERR_INVALID;
    lm->ids = ids;
    memcpy(lm->targets, targets, (size_t)N * sizeof(int));
    embed(lm, ids);
    int st = NS_OK;
    for (int l = 1; st == NS_OK && l <= b->depth; l++)
        st = ns_model_block_forward(lm->m, l);
    if (st)
        return st;
    const ns_real *top = ns_model_stream(lm->m, b->depth), *h = top;
    if (lm->present[LM_NORM_A]) {
        ns_dyt_forward(lm->h, top, T_(LM_NORM_A), T_(LM_NORM_G), T_(LM_NORM_B), N, d);
        h = lm->h;
    } else if (lm->present[LM_NORM_G]) {
        ns_norm_forward(lm->h, lm->mean, lm->rstd, top, T_(LM_NORM_G),
                        lm->present[LM_NORM_B] ? T_(LM_NORM_B) : NULL, N, d, b->norm, b->norm_eps);
        h = lm->h;
    }
    if (lm->present[LM_HEAD]) {
        ns_linear_forward(lm->probs, h, T_(LM_HEAD), N, d, V);
    } else { /* tied: h E^T / sqrt(d) */
        ns_gemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, V, d, (ns_real)(1 / sqrt(d)), h, d,
                T_(LM_TOK), d, 0, lm->probs, V);
    }
    double total = 0;
    for (int i = 0; i < N; i++) { /* softmax in place, cross-entropy in double */
        ns_real *p = lm->probs + (size_t)i * V;
        double max = p[0], sum = 0;
        for (int v = 1; v < V; v++)
            max = p[v] > max ? p[v] : max;
        double logit_t = p[targets[i]];
        for (int v = 0; v < V; v++)
            sum += exp((double)p[v] - max);
        total += max + log(sum) - logit_t;
        for (int v = 0; v < V; v++)
            p[v] = (ns_real)(exp((double)p[v] - max) / sum);
    }
    *loss = total / N;
    return NS_OK;
}

int ns_lm_backward(ns_lm *lm, double *stream_grad_ms)
{
    const ns_config *b = &lm->cfg.blocks;
    int N = b->ntok, d = b->width, V = lm->cfg.vocab, T = b->seq, L = b->depth;
    size_t nd = (size_t)N * d;
    /* dlogits = (softmax - onehot) / N, in place of the probabilities */
    ns_real *dl = lm->probs;
    for (int i = 0; i < N; i++)
        dl[(size_t)i * V + lm->targets[i]] -= 1;
    for (size_t k = 0; k < (size_t)N * V; k++)
        dl[k] /= (ns_real)N;
    const ns_real *top = ns_model_stream(lm->m, L);
    const ns_real *h = lm->present[LM_NORM_G] ? lm->h : top;
    ns_real *dh = lm->dh;
    memset(dh, 0, nd * sizeof(ns_real));
    if (lm->present[LM_HEAD]) {
        ns_linear_backward(dh, G_(LM_HEAD), dl, h, T_(LM_HEAD), N, d, V);
    } else {
        ns_real s = (ns_real)(1 / sqrt(d));
        ns_gemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, d, V, s, dl, V, T_(LM_TOK), d, 1,
                dh, d);
        ns_gemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, d, N, s, dl, V, h, d, 1, G_(LM_TOK),
                d);
    }
    /* dy: the gradient of x_L, through the final norm where there is one */
    ns_real *dy = lm->dx + nd, *dx = lm->dx;
    memset(dy, 0, nd * sizeof(ns_real));
    if (lm->present[LM_NORM_A])
        ns_dyt_backward(dy, G_(LM_NORM_A), G_(LM_NORM_G), G_(LM_NORM_B), dh, top, T_(LM_NORM_A),
                        T_(LM_NORM_G), N, d);
    else if (lm->present[LM_NORM_G])
        ns_norm_backward(dy, G_(LM_NORM_G), lm->present[LM_NORM_B] ? G_(LM_NORM_B) : NULL, dh,
                         top, T_(LM_NORM_G), lm->mean, lm->rstd, N, d, b->norm);
    else
        memcpy(dy, dh, nd * sizeof(ns_real));
    if (stream_grad_ms)
        stream_grad_ms[L] = ns_sum_squares(dy, nd) / nd;
    for (int l = L; l >= 1; l--) {
        memset(dx, 0, nd * sizeof(ns_real));
        int st = ns_model_block_backward(lm->m, l, dx, dy);
        if (st)
            return st;
        if (stream_grad_ms)
            stream_grad_ms[l - 1] = ns_sum_squares(dx, nd) / nd;
        ns_real *t = dx;
        dx = dy, dy = t;
    }
    /* the embeddings: a scatter-add in token order (repeated ids accumulate deterministically) */
    for (int i = 0; i < N; i++)
        for (int k = 0; k < d; k++) {
            G_(LM_TOK)[(size_t)lm->ids[i] * d + k] += dy[(size_t)i * d + k];
            G_(LM_POS)[(size_t)(i % T) * d + k] += dy[(size_t)i * d + k];
        }
    return NS_OK;
}

const ns_real *ns_lm_probs(const ns_lm *lm) { return lm->probs; }
