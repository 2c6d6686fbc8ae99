/* model.c: a deep stack of residual blocks, laid out from the placement table.
 *
 * A block is a list of sublayers (MLP block: [MLP]; Transformer block: [attention, MLP]; MoE
 * block: [attention, mixture of experts]) on a
 * residual stream s, followed by the block's outer skip. Each sublayer computes, with the placement's norm slots switched on or off,
 *     z = norm_in ? N(s) : s;   b = F(z);   bn = norm_out ? N(b) : b;
 *     v = s + bn;               s = norm_sum ? N(v) : v
 * and the block output is, by the placement's span kind,
 *     NONE:      y = s                      (PreNorm, PostNorm)
 *     WRAP:      y = x + s                  (wrapped SpanNorm; alpha on the last norm's gain)
 *     AGGREGATE: y = x + N_span(sum_j bn_j) (SpanNorm; alpha on the span norm's gain)
 * where F carries the norm_mid slot (Sub-LN) inside it, before its last matrix: W_O Nm(Attn_V(z))
 * or W2 Nm(phi(W1 z)), and in a mixture W2_e Nm_e(phi(W1_e z)) with expert e's own gain.
 * The forward and the backward read the placement here and nowhere else. Under a schedule
 * (ns_config.schedule, Mix-LN) each block reads its own row; the layout is the union of the
 * rows' norm slots and gates, so a block's unused slots stay at their init with zero gradient.
 * ResiDual (dual_stream) also sums the branch outputs onto a stream r (residual.c) and ends the
 * stack with y_L = s + N_dual(r_L); every block carries the dual norm, block L alone uses it.
 *
 * Memory, one allocation per family (llm.c style): params [K, P], grads [K or 1, P],
 * activations = streams [K+1 or L+1, ntok, d] then per-block caches [K, A], and backward
 * scratch, where K = L, or the window (ns_config.window) of blocks resident at once. */
#include "internal.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 24
#define MAX_SUB 2
#define NAME_LEN 40

typedef enum { BRANCH_ATTN, BRANCH_MLP, BRANCH_MOE } branch_kind;

/* a norm slot: parameter indices of its gain, bias (LayerNorm, DyT) and scalar a (DyT), -1 when
 * absent; activation offsets of its row statistics [N] (LayerNorm, RMSNorm; NS_NONE for DyT) */
typedef struct {
    int g, b, a;
    size_t mean, rstd;
} norm_slot;

typedef struct {
    branch_kind kind;
    /* parameter indices (-1: absent); the branch's matrices in order, the last one carries
     * alpha for NS_ALPHA_BRANCH_WEIGHT: MLP w1, w2; attention wq, wk, wv, wo; MoE router,
     * w1, w2 (every expert's matrices stacked) */
    int w[4];
    norm_slot nin, nout, nsum;    /* norm_in, norm_out, norm_sum */
    norm_slot nmid;               /* norm_mid (Sub-LN): before W_O, W2 (each expert's W2) */
    /* activation offsets into the block's cache slice (NS_NONE: absent or aliased) */
    size_t z;                     /* [N,d]: the branch input after norm_in */
    size_t h, a;                  /* MLP [N,H]: pre-activation and activation */
    size_t q, k, v, cat, probs;   /* attention: [N,d] x 4 and [nseq,heads,T,T] */
    /* MoE (internal.h, ns_moe_cache): float offsets, then offsets into the int family */
    size_t moe_probs, moe_lse, moe_gates, moe_x, moe_h, moe_a, moe_y;
    size_t moe_expert, moe_row, moe_offset;
    size_t moe_an;                /* norm_mid's output [N k, He] (its statistics in nmid) */
    size_t an;                    /* norm_mid's output: MLP [N,H], attention [N,d] */
    size_t b;                     /* [N,d]: branch output */
    size_t bn;                    /* [N,d]: the branch output after norm_out */
    size_t v_sum;                 /* [N,d]: the sum before norm_sum */
    int gate;                     /* parameter index of the branch gate (-1: not gated) */
    size_t bg;                    /* [N,d]: the gated branch output */
    size_t s_out;                 /* [N,d]: this sublayer's output stream, unless it is y */
} sublayer;

struct ns_model {
    ns_config cfg;
    ns_schedule sched;  /* the blocks' rows (ns_schedule_resolve) */
    ns_placement shape; /* what the layout follows: the union of the rows' slots and gates */
    int nsub;
    sublayer sub[MAX_SUB];
    norm_slot span;                      /* the span norm (indices -1: absent) */
    norm_slot dual;                      /* ResiDual's norm on the dual stream (-1: absent) */
    size_t acc;                          /* [N,d]: the sum of branch outputs (two sublayers) */

    int nparams;
    ns_param_info info[MAX_PARAMS];
    char names[MAX_PARAMS][NAME_LEN];
    double init_std[MAX_PARAMS];   /* matrices: N(0, std^2) */
    double init_value[MAX_PARAMS]; /* vectors: constant */

    size_t block_params, block_acts, block_ints, nd, nh;
    int nslots, nstreams; /* blocks and streams resident: L and L + 1, or K and K + 1 */
    int ngrad_slots;      /* gradient slices: nslots, or 1 (ns_config.shared_grads) */
    ns_real *params, *grads, *acts, *scratch;
    int *ints; /* integer activations (MoE routing) [L, block_ints], then [experts] of scratch */
    ns_workspace *ws; /* where the families live, or NULL: allocated one by one */
    ns_moe_scratch moe_s;
    /* backward scratch, views into `scratch` */
    ns_real *g_v, *g_bn, *g_b, *g_z, *g_s[2], *g_acc, *g_a, *g_h;
    ns_real *g_q, *g_k, *g_vv, *g_cat, *g_probs; /* attention only */
    ns_real *g_mid; /* norm_mid: the gradient of its output [N, max(d, H)], else NULL */
    ns_real *dual_streams; /* ResiDual: r_1..r_L in the stream slots [nstreams, N, d], else NULL */
    ns_real *g_dual;       /* ResiDual: dLoss/dr_l, the same for every l (scratch), else NULL */
    size_t nprobs; /* nseq * heads * T * T for Transformer blocks, else 0 */
    /* Admin (a row with profiled_skip): every sublayer's skip weight [L, nsub] (NULL for other
     * rows), and the profiling pass: the running sum of w^2 and the next block it runs (0: no
     * pass under way); `profiled` once the weights are set */
    double *skip_w;
    double profile_sum;
    int profile_next, profiled;
};

static int add_param(ns_model *m, const char *prefix, const char *what, int rows, int cols,
                     int is_matrix, double init)
{
    int i = m->nparams++;
    snprintf(m->names[i], NAME_LEN, "%s%s", prefix, what);
    m->info[i] = (ns_param_info){.name = m->names[i], .rows = rows, .cols = cols,
                                 .offset = m->block_params, .is_matrix = is_matrix};
    m->init_std[i] = is_matrix ? init : 0;
    m->init_value[i] = is_matrix ? 0 : init;
    m->block_params += (size_t)rows * cols;
    return i;
}

static size_t add_act(ns_model *m, size_t n)
{
    size_t off = m->block_acts;
    m->block_acts += n;
    return off;
}

static size_t add_ints(ns_model *m, size_t n)
{
    size_t off = m->block_ints;
    m->block_ints += n;
    return off;
}

/* a norm slot over rows of width C, `copies` of it (a mixture's experts, each its own): gain
 * (init g0), a bias for LayerNorm and DyT, DyT's scalar a (init dyt_init), each [copies x ...];
 * the cache of the statistics of N rows (LayerNorm, RMSNorm) */
static void add_norm_sized(ns_model *m, const char *prefix, norm_slot *n, double g0, int copies,
                           int C, int N)
{
    int dyt = m->cfg.norm == NS_NORM_DYT;
    n->g = add_param(m, prefix, "gain", copies, C, 0, g0);
    n->b = m->cfg.norm != NS_NORM_RMSNORM ? add_param(m, prefix, "bias", copies, C, 0, 0.0) : -1;
    n->a = dyt ? add_param(m, prefix, "alpha_dyt", copies, 1, 0, m->cfg.dyt_init) : -1;
    n->mean = dyt ? NS_NONE : add_act(m, (size_t)N);
    n->rstd = dyt ? NS_NONE : add_act(m, (size_t)N);
}

/* a norm slot on the residual stream's rows [ntok, width] */
static void add_norm(ns_model *m, const char *prefix, norm_slot *n, double g0)
{
    add_norm_sized(m, prefix, n, g0, 1, m->cfg.width, m->cfg.ntok);
}

/* the init rule's factor on the std of W_V, W_O, W1, W2 (exactly 1 for the plain rule); Sub-LN
 * takes torchscale's decoder-only rule, gamma = sqrt(log(2L)) */
static double init_factor(const ns_placement *pl, int depth)
{
    switch (pl->init_rule) {
    case NS_INIT_DEEPNORM:
        return pow(8.0 * depth, -0.25);
    case NS_INIT_TFIXUP:
        return pow(9.0 * depth, -0.25);
    case NS_INIT_SUBLN:
        return sqrt(log(2.0 * depth));
    default:
        return 1.0;
    }
}

static void layout(ns_model *m)
{
    const ns_config *c = &m->cfg;
    const ns_placement *pl = &m->shape;
    size_t nd = m->nd, nh = m->nh;
    m->nsub = c->block == NS_BLOCK_MLP ? 1 : 2;
    for (int j = 0; j < m->nsub; j++) {
        sublayer *s = &m->sub[j];
        int last = j == m->nsub - 1;
        memset(s, 0xff, sizeof *s); /* every index -1, every offset NS_NONE */
        s->kind = m->nsub == 2 && j == 0 ? BRANCH_ATTN
                  : c->block == NS_BLOCK_MOE ? BRANCH_MOE : BRANCH_MLP;
        int attn = s->kind == BRANCH_ATTN;
        char pre[16];
        snprintf(pre, sizeof pre, "%s.", attn ? "attn" : s->kind == BRANCH_MOE ? "moe" : "mlp");
        char slot[32];
        double alpha_w = pl->alpha_site == NS_ALPHA_BRANCH_WEIGHT ? c->alpha : 1.0;
        double sc = init_factor(pl, c->depth);
        /* DeepScaleLM's factor on W2 alone: a unit-variance input gives a unit-variance output */
        double sc2 = pl->init_rule == NS_INIT_DSLM ? 1 / sqrt(ns_act_unit_ms(c->act)) : sc;
        if (pl->norm_in) {
            snprintf(slot, sizeof slot, "%snorm_in.", pre);
            add_norm(m, slot, &s->nin, 1);
            s->z = add_act(m, nd);
        }
        if (attn) {
            /* W_Q, W_K, W_V, W_O ~ N(0, 1/d); Scale Init on W_O, the init rule on W_V, W_O */
            const char *names[] = {"wq", "wk", "wv", "wo"};
            for (int i = 0; i < 4; i++)
                s->w[i] = add_param(m, pre, names[i], c->width, c->width, 1,
                                    (i == 3 ? alpha_w * sc : i == 2 ? sc : 1.0) / sqrt(c->width));
            s->q = add_act(m, nd);
            s->k = add_act(m, nd);
            s->v = add_act(m, nd);
            s->cat = add_act(m, nd);
            s->probs = add_act(m, m->nprobs);
            if (pl->norm_mid) {
                snprintf(slot, sizeof slot, "%snorm_mid.", pre);
                add_norm(m, slot, &s->nmid, 1);
                s->an = add_act(m, nd);
            }
        } else if (s->kind == BRANCH_MOE) {
            /* router W_r ~ N(0, 1/d); expert e: W1 ~ N(0, 1/d), W2 ~ N(0, alpha^2/He) */
            int E = c->experts, He = c->expert_hidden, k = c->top_k;
            size_t nk = (size_t)c->ntok * k;
            s->w[0] = add_param(m, pre, "router", c->width, E, 1, 1.0 / sqrt(c->width));
            s->w[1] = add_param(m, pre, "w1", E * c->width, He, 1, sc / sqrt(c->width));
            s->w[2] = add_param(m, pre, "w2", E * He, c->width, 1, alpha_w * sc2 / sqrt(He));
            s->moe_probs = add_act(m, (size_t)c->ntok * E);
            s->moe_lse = add_act(m, (size_t)c->ntok);
            s->moe_gates = add_act(m, nk);
            s->moe_x = add_act(m, nk * c->width);
            s->moe_h = add_act(m, nk * He);
            s->moe_a = add_act(m, nk * He);
            s->moe_y = add_act(m, nk * c->width);
            s->moe_expert = add_ints(m, nk);
            s->moe_row = add_ints(m, nk);
            s->moe_offset = add_ints(m, (size_t)E + 1);
            if (pl->norm_mid) { /* each expert its own norm, as each its own matrices */
                snprintf(slot, sizeof slot, "%snorm_mid.", pre);
                add_norm_sized(m, slot, &s->nmid, 1, E, He, (int)nk);
                s->moe_an = add_act(m, nk * He);
            }
        } else {
            s->w[0] = add_param(m, pre, "w1", c->width, c->hidden, 1, sc / sqrt(c->width));
            s->w[1] = add_param(m, pre, "w2", c->hidden, c->width, 1,
                                alpha_w * sc2 / sqrt(c->hidden));
            s->h = add_act(m, nh);
            s->a = add_act(m, nh);
            if (pl->norm_mid) {
                snprintf(slot, sizeof slot, "%snorm_mid.", pre);
                add_norm_sized(m, slot, &s->nmid, 1, 1, c->hidden, c->ntok);
                s->an = add_act(m, nh);
            }
        }
        s->b = add_act(m, nd);
        if (pl->norm_out) {
            snprintf(slot, sizeof slot, "%snorm_out.", pre);
            add_norm(m, slot, &s->nout, pl->alpha_site == NS_ALPHA_OUT_NORM_GAIN ? c->alpha : 1.0);
            s->bn = add_act(m, nd);
        }
        if (pl->gated) {
            s->gate = add_param(m, pre, "gate", 1, 1, 0, c->gate_init);
            s->bg = add_act(m, nd);
        }
        if (pl->span == NS_SPAN_AGGREGATE && last)
            continue; /* the stream after the last branch is not used: y sums the branches */
        if (pl->norm_sum) {
            double g0 = last && pl->alpha_site == NS_ALPHA_LAST_NORM_GAIN ? c->alpha : 1.0;
            snprintf(slot, sizeof slot, "%snorm_sum.", pre);
            add_norm(m, slot, &s->nsum, g0);
            s->v_sum = add_act(m, nd);
        }
        if (!last || pl->span == NS_SPAN_WRAP || pl->dual_stream)
            s->s_out = add_act(m, nd);
    }
    memset(&m->span, 0xff, sizeof m->span);
    m->acc = NS_NONE;
    if (pl->span == NS_SPAN_AGGREGATE) {
        double g0 = pl->alpha_site == NS_ALPHA_SPAN_GAIN ? c->alpha : 1.0;
        add_norm(m, "span_norm.", &m->span, g0);
        if (m->nsub > 1)
            m->acc = add_act(m, nd);
    }
    memset(&m->dual, 0xff, sizeof m->dual);
    if (pl->dual_stream)
        add_norm(m, "dual_norm.", &m->dual, 1.0);
}

static int config_ok(const ns_config *cfg)
{
    if (!cfg || (!cfg->placement && !cfg->schedule.n) || cfg->window < 0 ||
        (cfg->shared_grads & ~1) || !(cfg->post_fraction >= 0 && cfg->post_fraction <= 1) ||
        (cfg->block != NS_BLOCK_MLP && cfg->block != NS_BLOCK_TRANSFORMER &&
         cfg->block != NS_BLOCK_MOE) || cfg->depth < 1 ||
        cfg->width < 1 || cfg->hidden < 1 || cfg->ntok < 1 || !(cfg->norm_eps > 0) ||
        !(cfg->alpha > 0) || !isfinite(cfg->alpha) ||
        (cfg->act != NS_ACT_GELU && cfg->act != NS_ACT_RELU && cfg->act != NS_ACT_LINEAR) ||
        (cfg->norm != NS_NORM_LAYERNORM && cfg->norm != NS_NORM_RMSNORM &&
         cfg->norm != NS_NORM_DYT))
        return NS_ERR_INVALID;
    ns_schedule sched;
    int entry;
    ns_schedule_resolve(cfg->placement, &cfg->schedule, cfg->post_fraction, cfg->depth, &sched);
    if (ns_schedule_check(&sched, cfg->depth, cfg->block, &entry) != NS_SCHEDULE_OK)
        return NS_ERR_INVALID;
    for (int i = 0; i < sched.n; i++) {
        const ns_placement *pl = sched.row[i];
        /* DyT: a finite start for a, and placements with norms (elsewhere it means nothing) */
        if (cfg->norm == NS_NORM_DYT && (!isfinite(cfg->dyt_init) || !ns_placement_has_norms(pl)))
            return NS_ERR_INVALID;
        if ((pl->layer_scaled && !pl->norm_in) || (pl->gated && !isfinite(cfg->gate_init)))
            return NS_ERR_INVALID;
        /* a branch gain weighs the branch in the sum only: no span aggregate, no dual stream */
        if (pl->branch_gain != NS_BRANCH_ONE && (pl->span != NS_SPAN_NONE || pl->dual_stream))
            return NS_ERR_INVALID;
    }
    if (cfg->block != NS_BLOCK_MLP &&
        (cfg->heads < 1 || cfg->width % cfg->heads != 0 || cfg->seq < 1 || cfg->ntok % cfg->seq))
        return NS_ERR_INVALID;
    if (cfg->block == NS_BLOCK_MOE &&
        (cfg->experts < 1 || cfg->expert_hidden < 1 || cfg->top_k < 1 || cfg->top_k > 2 ||
         cfg->top_k > cfg->experts || !(cfg->capacity >= 0) || !(cfg->aux_coef >= 0) ||
         !(cfg->zloss_coef >= 0)))
        return NS_ERR_INVALID;
    return NS_OK;
}

/* norm_mid's output gradient: the attention output's [N,d] or the MLP activation's [N,H] (a
 * mixture's is in its own scratch) */
static size_t mid_scratch(const ns_model *m)
{
    return m->shape.norm_mid ? (m->nd > m->nh ? m->nd : m->nh) : 0;
}

/* the sizes of everything but the allocations themselves */
static void size_model(ns_model *m, const ns_config *cfg, size_t *nscratch)
{
    m->cfg = *cfg;
    ns_schedule_resolve(cfg->placement, &cfg->schedule, cfg->post_fraction, cfg->depth, &m->sched);
    m->shape = *m->sched.row[0]; /* the rows agree on span, alpha site and init rule */
    for (int i = 1; i < m->sched.n; i++) {
        const ns_placement *r = m->sched.row[i];
        m->shape.norm_in |= r->norm_in;
        m->shape.norm_out |= r->norm_out;
        m->shape.norm_sum |= r->norm_sum;
        m->shape.gated |= r->gated;
        m->shape.norm_mid |= r->norm_mid;
    }
    m->nd = (size_t)cfg->ntok * cfg->width;
    m->nh = (size_t)cfg->ntok * cfg->hidden;
    if (cfg->block != NS_BLOCK_MLP)
        m->nprobs = (size_t)(cfg->ntok / cfg->seq) * cfg->heads * cfg->seq * cfg->seq;
    layout(m);
    m->nslots = cfg->window > 0 && cfg->window < cfg->depth ? cfg->window : cfg->depth;
    m->nstreams = m->nslots == cfg->depth ? cfg->depth + 1 : m->nslots + 1;
    m->ngrad_slots = cfg->shared_grads ? 1 : m->nslots;
    size_t nattn = m->nprobs ? 4 * m->nd + m->nprobs : 0;
    size_t nk = cfg->block == NS_BLOCK_MOE ? (size_t)cfg->ntok * cfg->top_k : 0;
    size_t nmoe = nk ? nk * (2 * (size_t)cfg->width + 2 * (size_t)cfg->expert_hidden + 1) +
                           (size_t)cfg->ntok * cfg->experts
                     : 0;
    *nscratch = (7 + (size_t)m->shape.dual_stream) * m->nd + 2 * m->nh + nattn + nmoe +
                mid_scratch(m);
}

int ns_model_bytes(const ns_config *cfg, size_t *per_block, size_t *per_stream, size_t *fixed)
{
    if (config_ok(cfg) != NS_OK)
        return NS_ERR_INVALID;
    ns_model *m = calloc(1, sizeof *m);
    if (!m)
        return NS_ERR_NOMEM;
    size_t nscratch;
    size_model(m, cfg, &nscratch);
    size_t grads_per_block = cfg->shared_grads ? 0 : m->block_params;
    *per_block = (m->block_params + grads_per_block + m->block_acts) * sizeof(ns_real) +
                 m->block_ints * sizeof(int);
    *per_stream = (1 + (size_t)m->shape.dual_stream) * m->nd * sizeof(ns_real);
    *fixed = (nscratch + m->block_params - grads_per_block) * sizeof(ns_real) +
             (size_t)cfg->experts * sizeof(int) + sizeof *m;
    if (m->shape.profiled_skip) /* the skip weights of every block, windowed or not */
        *fixed += (size_t)cfg->depth * m->nsub * sizeof(double);
    free(m);
    return NS_OK;
}

/* each family 64-byte aligned within a workspace */
static size_t aligned(size_t bytes) { return (bytes + 63) / 64 * 64; }

int ns_model_create_in(ns_model **out, const ns_config *cfg, ns_workspace *ws)
{
    *out = NULL;
    if (config_ok(cfg) != NS_OK)
        return NS_ERR_INVALID;
    ns_model *m = calloc(1, sizeof *m);
    if (!m)
        return NS_ERR_NOMEM;
    ns_set_threads(0); /* keep the OpenMP count, make the BLAS single-threaded (threads.c) */
    size_t nscratch;
    size_model(m, cfg, &nscratch);
    size_t L = (size_t)m->nslots; /* from here on: the blocks resident */
    size_t nattn = m->nprobs ? 4 * m->nd + m->nprobs : 0;
    size_t nk = cfg->block == NS_BLOCK_MOE ? (size_t)cfg->ntok * cfg->top_k : 0;
    size_t counts[] = {L * m->block_params, (size_t)m->ngrad_slots * m->block_params,
                       (1 + (size_t)m->shape.dual_stream) * m->nstreams * m->nd +
                           L * m->block_acts,
                       nscratch,
                       L * m->block_ints + (nk ? (size_t)cfg->experts : 0) + 1};
    void **families[] = {(void **)&m->params, (void **)&m->grads, (void **)&m->acts,
                         (void **)&m->scratch, (void **)&m->ints};
    size_t sizes[] = {sizeof(ns_real), sizeof(ns_real), sizeof(ns_real), sizeof(ns_real),
                      sizeof(int)};
    int missing = 0;
    if (ws) {
        size_t total = 0;
        for (int f = 0; f < 5; f++)
            total += aligned(counts[f] * sizes[f]);
        void *base;
        int st = ns_workspace_take(ws, total, &base);
        if (st) {
            free(m);
            return st;
        }
        m->ws = ws;
        char *p = base;
        for (int f = 0; f < 5; p += aligned(counts[f] * sizes[f]), f++)
            *families[f] = p;
        /* what is accumulated into starts at calloc's zeros, as in a model of its own: the
         * gradients, the scratch and the counts (parameters and caches are written first) */
        ns_model_zero_grad(m);
        ns_copy_or_zero(m->scratch, NULL, counts[3] * sizeof(ns_real));
        ns_copy_or_zero(m->ints, NULL, counts[4] * sizeof(int));
    } else {
        for (int f = 0; f < 5; f++)
            missing |= !(*families[f] = counts[f] <= SIZE_MAX / sizes[f]
                                            ? ns_alloc_large(counts[f] * sizes[f])
                                            : NULL);
    }
    if (m->shape.profiled_skip) { /* O(L) doubles: kept whole even when blocks are windowed */
        size_t nw = (size_t)cfg->depth * m->nsub;
        missing |= !(m->skip_w = malloc(nw * sizeof *m->skip_w));
        for (size_t i = 0; !missing && i < nw; i++)
            m->skip_w[i] = 1;
    }
    if (missing) {
        ns_model_free(m);
        return NS_ERR_NOMEM;
    }
    ns_real *p = m->scratch;
    ns_real **views[] = {&m->g_v, &m->g_bn, &m->g_b, &m->g_z, &m->g_s[0], &m->g_s[1], &m->g_acc};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++, p += m->nd)
        *views[i] = p;
    if (m->shape.dual_stream) { /* after the streams and caches; dLoss/dr after the views */
        m->dual_streams = m->acts + (size_t)m->nstreams * m->nd + L * m->block_acts;
        m->g_dual = p;
        p += m->nd;
    }
    m->g_a = p;
    m->g_h = p + m->nh;
    p += 2 * m->nh;
    if (m->nprobs) {
        m->g_q = p, m->g_k = p + m->nd, m->g_vv = p + 2 * m->nd, m->g_cat = p + 3 * m->nd;
        m->g_probs = p + 4 * m->nd;
        p += nattn;
    }
    if (m->shape.norm_mid) {
        m->g_mid = p;
        p += mid_scratch(m);
    }
    if (nk) {
        size_t d = (size_t)cfg->width, He = (size_t)cfg->expert_hidden;
        m->moe_s = (ns_moe_scratch){.dy = p, .dx = p + nk * d, .da = p + 2 * nk * d,
                                    .dh = p + 2 * nk * d + nk * He,
                                    .dg = p + 2 * nk * (d + He),
                                    .dlogits = p + 2 * nk * (d + He) + nk,
                                    .count = m->ints + L * m->block_ints};
    }
    *out = m;
    return NS_OK;
}

int ns_model_create(ns_model **out, const ns_config *cfg)
{
    return ns_model_create_in(out, cfg, NULL);
}

void ns_model_free(ns_model *m)
{
    if (!m)
        return;
    free(m->skip_w);
    if (m->ws) {
        ns_workspace_give_back(m->ws);
        free(m);
        return;
    }
    ns_free_large(m->params);
    ns_free_large(m->grads);
    ns_free_large(m->acts);
    ns_free_large(m->scratch);
    ns_free_large(m->ints);
    free(m);
}

const ns_config *ns_model_config(const ns_model *m) { return &m->cfg; }
int ns_model_nparams(const ns_model *m) { return m->nparams; }
size_t ns_model_param_count(const ns_model *m) { return m->nslots * m->block_params; }
int ns_model_window(const ns_model *m) { return m->nslots; }

/* the slot of block l (1..L) among the resident ones, and of stream x_l (0..L) */
static size_t block_slot(const ns_model *m, int layer) { return (size_t)((layer - 1) % m->nslots); }
static size_t stream_slot(const ns_model *m, int layer) { return (size_t)(layer % m->nstreams); }
static size_t grad_slot(const ns_model *m, int layer)
{
    return m->ngrad_slots == 1 ? 0 : block_slot(m, layer);
}

const ns_param_info *ns_model_param_info(const ns_model *m, int i)
{
    return i >= 0 && i < m->nparams ? &m->info[i] : NULL;
}

ns_real *ns_model_param(ns_model *m, int layer, int i)
{
    if (layer < 1 || layer > m->cfg.depth || i < 0 || i >= m->nparams)
        return NULL;
    return m->params + block_slot(m, layer) * m->block_params + m->info[i].offset;
}

ns_real *ns_model_param_grad(ns_model *m, int layer, int i)
{
    if (layer < 1 || layer > m->cfg.depth || i < 0 || i >= m->nparams)
        return NULL;
    return m->grads + grad_slot(m, layer) * m->block_params + m->info[i].offset;
}

ns_real *ns_model_stream(ns_model *m, int layer)
{
    if (layer < 0 || layer > m->cfg.depth)
        return NULL;
    return m->acts + stream_slot(m, layer) * m->nd;
}

static ns_real *block_cache(const ns_model *m, int layer)
{
    return m->acts + (size_t)m->nstreams * m->nd + block_slot(m, layer) * m->block_acts;
}

const ns_real *ns_model_branch_out(const ns_model *m, int layer)
{
    return ns_model_sublayer_out(m, layer, m->nsub - 1);
}

int ns_model_nsublayers(const ns_model *m) { return m->nsub; }

const ns_real *ns_model_sublayer_out(const ns_model *m, int layer, int j)
{
    if (layer < 1 || layer > m->cfg.depth || j < 0 || j >= m->nsub)
        return NULL;
    return block_cache(m, layer) + m->sub[j].b;
}

ns_real *ns_model_dual_stream(ns_model *m, int layer)
{
    if (!m->dual_streams || layer < 0 || layer > m->cfg.depth)
        return NULL;
    return layer == 0 ? ns_model_stream(m, 0) : m->dual_streams + stream_slot(m, layer) * m->nd;
}

const ns_real *ns_model_dual_grad(const ns_model *m) { return m->g_dual; }

const ns_real *ns_model_mid_stream(const ns_model *m, int layer)
{
    if (layer < 1 || layer > m->cfg.depth || m->nsub < 2)
        return NULL;
    return block_cache(m, layer) + m->sub[0].s_out;
}

/* the MoE cache of block l as views into the activation families */
static ns_moe_cache moe_cache(const ns_model *m, const sublayer *sl, int layer)
{
    ns_real *A = block_cache(m, layer);
    int *ints = m->ints + block_slot(m, layer) * m->block_ints;
    return (ns_moe_cache){.probs = A + sl->moe_probs, .lse = A + sl->moe_lse,
                          .gates = A + sl->moe_gates, .expert = ints + sl->moe_expert,
                          .row = ints + sl->moe_row, .offset = ints + sl->moe_offset,
                          .x = A + sl->moe_x, .h = A + sl->moe_h, .a = A + sl->moe_a,
                          .y = A + sl->moe_y,
                          .an = sl->moe_an != NS_NONE ? A + sl->moe_an : NULL,
                          .mean = sl->nmid.mean != NS_NONE ? A + sl->nmid.mean : NULL,
                          .rstd = sl->nmid.rstd != NS_NONE ? A + sl->nmid.rstd : NULL};
}

int ns_model_routing(const ns_model *m, int layer, const ns_real **probs, const int **expert,
                     const int **row)
{
    if (layer < 1 || layer > m->cfg.depth || m->cfg.block != NS_BLOCK_MOE)
        return NS_ERR_INVALID;
    ns_moe_cache c = moe_cache(m, &m->sub[1], layer);
    *probs = c.probs;
    *expert = c.expert;
    *row = c.row;
    return NS_OK;
}

int ns_model_moe_losses(const ns_model *m, int layer, double *aux, double *zloss)
{
    if (layer < 1 || layer > m->cfg.depth || m->cfg.block != NS_BLOCK_MOE)
        return NS_ERR_INVALID;
    ns_moe_cache c = moe_cache(m, &m->sub[1], layer);
    ns_moe_losses(&c, m->cfg.ntok, m->cfg.experts, m->cfg.top_k, aux, zloss);
    return NS_OK;
}

const ns_real *ns_model_attn_probs(const ns_model *m, int layer)
{
    if (layer < 1 || layer > m->cfg.depth || m->sub[0].kind != BRANCH_ATTN)
        return NULL;
    return block_cache(m, layer) + m->sub[0].probs;
}

ns_real *ns_model_params_all(ns_model *m, size_t *n)
{
    *n = (size_t)m->nslots * m->block_params;
    return m->params;
}

void ns_model_zero_grad(ns_model *m)
{
    ns_copy_or_zero(m->grads, NULL, (size_t)m->ngrad_slots * m->block_params * sizeof(ns_real));
}

/* blocks first..last, each into its slot */
static int init_blocks(ns_model *m, uint64_t seed, int first, int last)
{
    int P = m->nparams, ntasks = (last - first + 1) * P;
    int status = NS_OK;
    /* every (layer, tensor) pair is its own task with its own stream: thread-count independent */
#pragma omp parallel for schedule(dynamic)
    for (int t = 0; t < ntasks; t++) {
        int layer = first + t / P, i = t % P;
        ns_real *w = ns_model_param(m, layer, i);
        size_t n = (size_t)m->info[i].rows * m->info[i].cols;
        if (m->info[i].is_matrix) {
            int st = ns_fill_gaussian(w, n, m->init_std[i], seed, layer, m->info[i].name);
            if (st) {
#pragma omp atomic write
                status = st;
            }
        } else {
            for (size_t k = 0; k < n; k++)
                w[k] = (ns_real)m->init_value[i];
        }
    }
    return status;
}

int ns_model_init(ns_model *m, uint64_t seed) { return init_blocks(m, seed, 1, m->nslots); }

int ns_model_init_block(ns_model *m, uint64_t seed, int layer)
{
    if (layer < 1 || layer > m->cfg.depth)
        return NS_ERR_INVALID;
    return init_blocks(m, seed, layer, layer);
}

/* ---- block forward/backward -------------------------------------------------------------- */

/* in n elements, over the threads (workspace.c) */
static void copy_or_zero(ns_real *out, const ns_real *in, size_t n)
{
    ns_copy_or_zero(out, in, n * sizeof(ns_real));
}

static void add_into(ns_real *out, const ns_real *a, const ns_real *b, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

/* out = a s + c b: a skip path with a gain, and a branch gain (DeepScaleLM) */
static void skip_into(ns_real *out, double a, const ns_real *s, double c, const ns_real *b,
                      size_t n)
{
    ns_real ar = (ns_real)a, cr = (ns_real)c;
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = ar * s[i] + cr * b[i];
}

/* out = c in (out may be in) */
static void scale_into(ns_real *out, double c, const ns_real *in, size_t n)
{
    ns_real cr = (ns_real)c;
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = cr * in[i];
}

/* sum of a_i b_i in double, in index order: the same for any thread count */
static double dot(const ns_real *a, const ns_real *b, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)a[i] * b[i];
    return sum;
}

/* the skip gain a of v = a s + b in a block of row pl */
static double skip_gain(const ns_config *c, const ns_placement *pl)
{
    return pl->skip_gain == NS_SKIP_DEEPNORM ? pow(2.0 * c->depth, 0.25)
           : pl->skip_gain == NS_SKIP_DSLM   ? sqrt(1 - 1.0 / c->depth)
                                             : 1.0;
}

/* the branch gain c of v = a s + c b in a block of row pl (DeepScaleLM's beta) */
static double branch_gain(const ns_config *c, const ns_placement *pl)
{
    return pl->branch_gain == NS_BRANCH_DSLM ? 1 / sqrt((double)c->depth) : 1.0;
}

/* ---- profiled skip weights (Admin) ----------------------------------------------------------
 * Sublayer i of the stack (i = 1 .. L nsub, in order) computes x_i = N(w_i x_{i-1} + G_i(x_{i-1})).
 * A profiling pass runs the stack once with every w = 1 on the run's own input x_0 and sets
 *     w_1 = 1,   w_i^2 = ms(x_0) + sum_{j < i} ms(G_j)   (i >= 2),
 * ms the mean square over every entry. After Transformer-Clinic's
 * fairseq/fairseq/modules/transformer_layer.py, whose ratio starts at w_1 = 1 and becomes
 * sqrt(var(w_i x_{i-1}) + var(G_i)) after sublayer i: with x_{i-1} a unit-variance norm output
 * for i >= 2, the same running sum (it takes variances and sets each w as its pass goes; here the
 * pass runs with w = 1, which changes no branch input of an MLP stack, as each is normalized).
 * So w_i is the scale the stream would have reached without its norms. The weights are
 * constants from then on (no gradient), part of the model's state. */

static int profile_ready(const ns_model *m, int layer)
{
    return m->profile_next ? layer == m->profile_next : m->profiled;
}

/* during the pass: sublayer j of block l is about to add its branch output b */
static void profile_record(ns_model *m, int layer, int j, const ns_real *b)
{
    size_t i = (size_t)(layer - 1) * m->nsub + j;
    m->skip_w[i] = i == 0 ? 1.0 : sqrt(m->profile_sum);
    m->profile_sum += ns_sum_squares(b, m->nd) / (double)m->nd;
}

/* the weight on sublayer j's skip in block l: w_i, 1 while profiling, or the row's skip gain */
static double skip_weight(const ns_model *m, const ns_placement *pl, int layer, int j)
{
    if (!pl->profiled_skip)
        return skip_gain(&m->cfg, pl);
    return m->profile_next ? 1.0 : m->skip_w[(size_t)(layer - 1) * m->nsub + j];
}

int ns_model_profile_begin(ns_model *m)
{
    if (!m->skip_w)
        return NS_ERR_INVALID;
    m->profile_sum = ns_sum_squares(ns_model_stream(m, 0), m->nd) / (double)m->nd;
    m->profile_next = 1;
    m->profiled = 0; /* the pass rewrites the weights: a pass cut short leaves none usable */
    return NS_OK;
}

int ns_model_profile_end(ns_model *m)
{
    if (!m->skip_w || m->profile_next != m->cfg.depth + 1)
        return NS_ERR_INVALID;
    m->profile_next = 0;
    m->profiled = 1;
    return NS_OK;
}

const double *ns_model_skip_weights(const ns_model *m, size_t *n)
{
    *n = m->skip_w ? (size_t)m->cfg.depth * m->nsub : 0;
    return m->skip_w;
}

int ns_model_set_skip_weights(ns_model *m, const double *w, size_t n)
{
    size_t want;
    ns_model_skip_weights(m, &want);
    if (!want || n != want)
        return NS_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!(w[i] > 0) || !isfinite(w[i]))
            return NS_ERR_INVALID;
    memcpy(m->skip_w, w, n * sizeof *w);
    m->profile_next = 0;
    m->profiled = 1;
    return NS_OK;
}

#define PARAM(P, i) ((i) >= 0 ? (P) + m->info[i].offset : NULL)

/* out = N(inp) through norm slot n over rows of width C, the kind from the config; caches in A */
static void norm_forward_rows(const ns_model *m, const norm_slot *n, const ns_real *P, ns_real *A,
                              ns_real *out, const ns_real *inp, int C)
{
    const ns_config *c = &m->cfg;
    if (c->norm == NS_NORM_DYT)
        ns_dyt_forward(out, inp, PARAM(P, n->a), PARAM(P, n->g), PARAM(P, n->b), c->ntok, C);
    else
        ns_norm_forward(out, A + n->mean, A + n->rstd, inp, PARAM(P, n->g), PARAM(P, n->b),
                        c->ntok, C, c->norm, c->norm_eps);
}

/* out = N(inp) on the residual stream's rows */
static void norm_forward(const ns_model *m, const norm_slot *n, const ns_real *P, ns_real *A,
                         ns_real *out, const ns_real *inp)
{
    norm_forward_rows(m, n, P, A, out, inp, m->cfg.width);
}

/* dinp and the slot's parameter gradients in G accumulate the gradient of N(inp) given dout,
 * rows of width C */
static void norm_backward_rows(const ns_model *m, const norm_slot *n, const ns_real *P,
                               ns_real *G, const ns_real *A, ns_real *dinp, const ns_real *dout,
                               const ns_real *inp, int C)
{
    const ns_config *c = &m->cfg;
    if (c->norm == NS_NORM_DYT)
        ns_dyt_backward(dinp, PARAM(G, n->a), PARAM(G, n->g), PARAM(G, n->b), dout, inp,
                        PARAM(P, n->a), PARAM(P, n->g), c->ntok, C);
    else
        ns_norm_backward(dinp, PARAM(G, n->g), PARAM(G, n->b), dout, inp, PARAM(P, n->g),
                         A + n->mean, A + n->rstd, c->ntok, C, c->norm);
}

/* the same on the residual stream's rows */
static void norm_backward(const ns_model *m, const norm_slot *n, const ns_real *P, ns_real *G,
                          const ns_real *A, ns_real *dinp, const ns_real *dout, const ns_real *inp)
{
    norm_backward_rows(m, n, P, G, A, dinp, dout, inp, m->cfg.width);
}

/* the mixture's mid norm (Sub-LN) with parameters P and gradients G (NULL in the forward) */
static ns_moe_mid moe_mid(const ns_model *m, const sublayer *sl, const ns_real *P, ns_real *G)
{
    const norm_slot *n = &sl->nmid;
    return (ns_moe_mid){.kind = m->cfg.norm, .eps = m->cfg.norm_eps, .g = PARAM(P, n->g),
                        .b = PARAM(P, n->b), .a = PARAM(P, n->a), .dg = G ? PARAM(G, n->g) : NULL,
                        .db = G ? PARAM(G, n->b) : NULL, .da = G ? PARAM(G, n->a) : NULL};
}

/* b = F(z): the MLP W2 phi(W1 z), or attention (softmax(Q K^T / sqrt(dh)) V) W_O; with the
 * block's row's norm_mid (mid), W2 Nm(phi(W1 z)) or W_O Nm(attention) */
static void branch_forward(const ns_model *m, const sublayer *sl, const ns_real *P, ns_real *A,
                           const ns_real *z, int layer, int mid)
{
    const ns_config *c = &m->cfg;
    int N = c->ntok, d = c->width;
    if (sl->kind == BRANCH_MOE) {
        ns_moe_cache mc = moe_cache(m, sl, layer);
        ns_moe_mid mm = moe_mid(m, sl, P, NULL);
        ns_moe_forward(A + sl->b, &mc, z, PARAM(P, sl->w[0]), PARAM(P, sl->w[1]),
                       PARAM(P, sl->w[2]), N, d, c->experts, c->expert_hidden, c->top_k,
                       c->capacity, c->act, mid ? &mm : NULL);
        return;
    }
    if (sl->kind == BRANCH_MLP && mid) { /* h = z W1, a = phi(h); an = Nm(a); b = an W2 */
        int H = c->hidden;
        ns_job up = {N, 2,
                     {ns_gemm_step(0, 0, H, d, z, d, PARAM(P, sl->w[0]), H, 0, A + sl->h, H),
                      {.kind = NS_STEP_ACT_FORWARD, .n = H, .a = A + sl->h, .c = A + sl->a,
                       .act = c->act}}};
        ns_jobs_run(&up, 1);
        norm_forward_rows(m, &sl->nmid, P, A, A + sl->an, A + sl->a, H);
        ns_linear_forward(A + sl->b, A + sl->an, PARAM(P, sl->w[1]), N, H, d);
        return;
    }
    if (sl->kind == BRANCH_MLP) { /* h = z W1, a = phi(h), b = a W2, block of rows by block */
        int H = c->hidden;
        ns_job mlp = {N, 3,
                      {ns_gemm_step(0, 0, H, d, z, d, PARAM(P, sl->w[0]), H, 0, A + sl->h, H),
                       {.kind = NS_STEP_ACT_FORWARD, .n = H, .a = A + sl->h, .c = A + sl->a,
                        .act = c->act},
                       ns_gemm_step(0, 0, d, H, A + sl->a, H, PARAM(P, sl->w[1]), d, 0, A + sl->b,
                                    d)}};
        ns_jobs_run(&mlp, 1);
        return;
    }
    ns_job qkv[3];
    for (int i = 0; i < 3; i++) {
        ns_real *out = A + (i == 0 ? sl->q : i == 1 ? sl->k : sl->v);
        qkv[i] = (ns_job){N, 1, {ns_gemm_step(0, 0, d, d, z, d, PARAM(P, sl->w[i]), d, 0, out, d)}};
    }
    ns_jobs_run(qkv, 3);
    ns_attention_forward(A + sl->cat, A + sl->probs, A + sl->q, A + sl->k, A + sl->v, N / c->seq,
                         c->seq, d, c->heads);
    if (mid)
        norm_forward_rows(m, &sl->nmid, P, A, A + sl->an, A + sl->cat, d);
    ns_linear_forward(A + sl->b, A + (mid ? sl->an : sl->cat), PARAM(P, sl->w[3]), N, d, d);
}

/* given db, accumulate dz and the branch's weight gradients */
static void branch_backward(ns_model *m, const sublayer *sl, const ns_real *P, ns_real *G,
                            const ns_real *A, const ns_real *z, const ns_real *db, ns_real *dz,
                            int layer, int mid)
{
    const ns_config *c = &m->cfg;
    int N = c->ntok, d = c->width;
    if (sl->kind == BRANCH_MOE) {
        ns_moe_cache mc = moe_cache(m, sl, layer);
        ns_moe_mid mm = moe_mid(m, sl, P, G);
        ns_moe_backward(dz, PARAM(G, sl->w[0]), PARAM(G, sl->w[1]), PARAM(G, sl->w[2]), db, &mc,
                        &m->moe_s, z, PARAM(P, sl->w[0]), PARAM(P, sl->w[1]), PARAM(P, sl->w[2]),
                        N, d, c->experts, c->expert_hidden, c->top_k, c->act, c->aux_coef,
                        c->zloss_coef, mid ? &mm : NULL);
        return;
    }
    if (sl->kind == BRANCH_MLP && mid) {
        int H = c->hidden;
        /* g_mid = db W2^T, dW2 += an^T db; g_a = Nm's backward; g_h = phi'(h) g_a */
        ns_job back2[2] = {
            {N, 1, {ns_gemm_step(0, 1, H, d, db, d, PARAM(P, sl->w[1]), d, 0, m->g_mid, H)}},
            {H, 1, {ns_gemm_step(1, 0, d, N, A + sl->an, H, db, d, 1, PARAM(G, sl->w[1]), d)}}};
        ns_jobs_run(back2, 2);
        copy_or_zero(m->g_a, NULL, m->nh);
        norm_backward_rows(m, &sl->nmid, P, G, A, m->g_a, m->g_mid, A + sl->a, H);
        ns_job act = {N, 1, {{.kind = NS_STEP_ACT_BACKWARD, .n = H, .a = A + sl->h, .b = m->g_a,
                              .beta = 0, .c = m->g_h, .act = c->act}}};
        ns_jobs_run(&act, 1);
        ns_linear_backward(dz, PARAM(G, sl->w[0]), m->g_h, z, PARAM(P, sl->w[0]), N, d, H);
        return;
    }
    if (sl->kind == BRANCH_MLP) {
        int H = c->hidden;
        const ns_real *w1 = PARAM(P, sl->w[0]), *w2 = PARAM(P, sl->w[1]);
        /* g_a = db W2^T and at once g_h = phi'(h) g_a on its rows; dW2 += a^T db */
        ns_job back2[2] = {
            {N, 2,
             {ns_gemm_step(0, 1, H, d, db, d, w2, d, 0, m->g_a, H),
              {.kind = NS_STEP_ACT_BACKWARD, .n = H, .a = A + sl->h, .b = m->g_a, .beta = 0,
               .c = m->g_h, .act = c->act}}},
            {H, 1, {ns_gemm_step(1, 0, d, N, A + sl->a, H, db, d, 1, PARAM(G, sl->w[1]), d)}}};
        ns_jobs_run(back2, 2);
        ns_linear_backward(dz, PARAM(G, sl->w[0]), m->g_h, z, w1, N, d, H);
        return;
    }
    /* g_cat = db W_O^T (written, not added), dW_O += cat^T db; with the mid norm, its output's
     * gradient goes to g_mid first and its backward into g_cat */
    const ns_real *o_in = A + (mid ? sl->an : sl->cat);
    ns_job back_o[2] = {
        {N, 1,
         {ns_gemm_step(0, 1, d, d, db, d, PARAM(P, sl->w[3]), d, 0, mid ? m->g_mid : m->g_cat,
                       d)}},
        {d, 1, {ns_gemm_step(1, 0, d, N, o_in, d, db, d, 1, PARAM(G, sl->w[3]), d)}}};
    ns_jobs_run(back_o, 2);
    if (mid) {
        copy_or_zero(m->g_cat, NULL, m->nd);
        norm_backward_rows(m, &sl->nmid, P, G, A, m->g_cat, m->g_mid, A + sl->cat, d);
    }
    ns_attention_backward(m->g_q, m->g_k, m->g_vv, m->g_probs, m->g_cat, A + sl->probs, A + sl->q,
                          A + sl->k, A + sl->v, N / c->seq, c->seq, d, c->heads);
    /* dz += g_q Wq^T + g_k Wk^T + g_v Wv^T, added in that order on each block of rows as when
     * they were three GEMMs; dWq, dWk, dWv += z^T g_q, g_k, g_v */
    const ns_real *gqkv[3] = {m->g_q, m->g_k, m->g_vv};
    ns_job back_qkv[4] = {{N, 3, {{0}}}};
    for (int i = 0; i < 3; i++) {
        back_qkv[0].step[i] = ns_gemm_step(0, 1, d, d, gqkv[i], d, PARAM(P, sl->w[i]), d, 1, dz, d);
        back_qkv[1 + i] = (ns_job){
            d, 1, {ns_gemm_step(1, 0, d, N, z, d, gqkv[i], d, 1, PARAM(G, sl->w[i]), d)}};
    }
    ns_jobs_run(back_qkv, 4);
}

/* ResiDual: r_l = r_{l-1} + the block's branch outputs (r_0 = x_0); in the top block, the
 * stack's output y = s + N_dual(r_L), s the main stream after the last sublayer */
static void dual_forward(ns_model *m, const ns_real *P, ns_real *A, int layer, const ns_real *s)
{
    const ns_real *o2 = m->nsub > 1 ? A + m->sub[1].b : NULL;
    ns_real *r = ns_model_dual_stream(m, layer);
    ns_dual_forward(r, ns_model_dual_stream(m, layer - 1), A + m->sub[0].b, o2, m->nd);
    if (layer == m->cfg.depth) {
        ns_real *y = ns_model_stream(m, layer);
        norm_forward(m, &m->dual, P, A, y, r);
        add_into(y, s, y, m->nd);
    }
}

/* ResiDual: in the top block, dLoss/dr_L = N_dual's backward of dy (and N_dual's parameter
 * gradients); r only accumulates, so every block below reads the same dLoss/dr */
static const ns_real *dual_backward(ns_model *m, const ns_real *P, ns_real *G, int layer,
                                    const ns_real *dy)
{
    if (layer == m->cfg.depth) {
        copy_or_zero(m->g_dual, NULL, m->nd);
        norm_backward(m, &m->dual, P, G, block_cache(m, layer), m->g_dual, dy,
                      ns_model_dual_stream(m, layer));
    }
    return m->g_dual;
}

int ns_model_block_forward(ns_model *m, int layer)
{
    const ns_config *c = &m->cfg;
    if (layer < 1 || layer > c->depth)
        return NS_ERR_INVALID;
    const ns_placement *pl = ns_schedule_row(&m->sched, layer, c->depth);
    if (pl->profiled_skip && !profile_ready(m, layer))
        return NS_ERR_INVALID;
    ns_real *P = m->params + block_slot(m, layer) * m->block_params;
    ns_real *A = block_cache(m, layer);
    const ns_real *x = ns_model_stream(m, layer - 1);
    ns_real *y = ns_model_stream(m, layer);
    const ns_real *s = x;
    const ns_real *acc = NULL;
    for (int j = 0; j < m->nsub; j++) {
        const sublayer *sl = &m->sub[j];
        int last = j == m->nsub - 1;
        const ns_real *z = s;
        if (pl->norm_in) {
            norm_forward(m, &sl->nin, P, A, A + sl->z, s);
            z = A + sl->z;
            if (pl->layer_scaled)
                scale_into(A + sl->z, 1 / sqrt((double)layer), z, m->nd);
        }
        branch_forward(m, sl, P, A, z, layer, pl->norm_mid);
        if (pl->profiled_skip && m->profile_next)
            profile_record(m, layer, j, A + sl->b);
        const ns_real *bn = A + sl->b;
        if (pl->norm_out) {
            norm_forward(m, &sl->nout, P, A, A + sl->bn, bn);
            bn = A + sl->bn;
        }
        if (pl->gated) {
            scale_into(A + sl->bg, PARAM(P, sl->gate)[0], bn, m->nd);
            bn = A + sl->bg;
        }
        if (pl->span == NS_SPAN_AGGREGATE) {
            if (m->nsub == 1)
                acc = bn;
            else if (j == 0)
                copy_or_zero(A + m->acc, bn, m->nd), acc = A + m->acc;
            else
                add_into(A + m->acc, A + m->acc, bn, m->nd);
            if (last)
                break;
        }
        /* ResiDual's top block adds N_dual(r_L) to its last stream, kept in the cache */
        int top_dual = pl->dual_stream && layer == c->depth;
        ns_real *s_out = last && pl->span == NS_SPAN_NONE && !top_dual ? y : A + sl->s_out;
        ns_real *v = pl->norm_sum ? A + sl->v_sum : s_out;
        if (pl->skip_gain == NS_SKIP_ONE && !pl->profiled_skip && pl->branch_gain == NS_BRANCH_ONE)
            add_into(v, s, bn, m->nd);
        else
            skip_into(v, skip_weight(m, pl, layer, j), s, branch_gain(c, pl), bn, m->nd);
        if (pl->block_skip && last)
            add_into(v, v, x, m->nd);
        if (pl->norm_sum)
            norm_forward(m, &sl->nsum, P, A, s_out, v);
        s = s_out;
    }
    if (pl->span == NS_SPAN_WRAP) {
        add_into(y, x, s, m->nd);
    } else if (pl->span == NS_SPAN_AGGREGATE) {
        norm_forward(m, &m->span, P, A, y, acc);
        add_into(y, y, x, m->nd);
    }
    if (pl->dual_stream)
        dual_forward(m, P, A, layer, s);
    if (pl->profiled_skip && m->profile_next)
        m->profile_next++;
    return NS_OK;
}

static void accumulate(ns_real *out, const ns_real *in, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] += in[i];
}

int ns_model_block_backward(ns_model *m, int layer, ns_real *dx, const ns_real *dy)
{
    const ns_config *c = &m->cfg;
    if (layer < 1 || layer > c->depth || dx == dy)
        return NS_ERR_INVALID;
    const ns_placement *pl = ns_schedule_row(&m->sched, layer, c->depth);
    if (pl->profiled_skip && (m->profile_next || !m->profiled))
        return NS_ERR_INVALID; /* no gradients of a profiling pass, nor of unset weights */
    size_t nd = m->nd;
    ns_real *P = m->params + block_slot(m, layer) * m->block_params;
    ns_real *G = m->grads + grad_slot(m, layer) * m->block_params;
    ns_real *A = block_cache(m, layer);
    const ns_real *x = ns_model_stream(m, layer - 1);
    if (c->shared_grads)
        copy_or_zero(G, NULL, m->block_params);

    const ns_real *ds = dy;   /* gradient of the last sublayer's output stream; NULL = zero */
    const ns_real *dacc = NULL; /* gradient of the span norm's input, the sum of branch outputs */
    if (pl->span != NS_SPAN_NONE)
        accumulate(dx, dy, nd); /* the clean skip around the block */
    if (pl->span == NS_SPAN_AGGREGATE) {
        const ns_real *acc = m->nsub == 1 ? A + (pl->norm_out ? m->sub[0].bn : m->sub[0].b)
                                          : A + m->acc;
        copy_or_zero(m->g_acc, NULL, nd);
        norm_backward(m, &m->span, P, G, A, m->g_acc, dy, acc);
        dacc = m->g_acc;
        ds = NULL;
    }
    if (pl->dual_stream) /* the dual stream's gradient joins every branch's (residual.c) */
        dacc = dual_backward(m, P, G, layer, dy);
    int ping = 0;
    for (int j = m->nsub - 1; j >= 0; j--) {
        const sublayer *sl = &m->sub[j];
        const ns_real *s_in = j == 0 ? x : A + m->sub[j - 1].s_out;
        ns_real *ds_in = m->g_s[ping]; /* gradient of this sublayer's input stream */
        ping ^= 1;
        /* through norm_sum to the sum v = s_in + bn */
        const ns_real *dv = ds;
        if (pl->norm_sum && ds) {
            copy_or_zero(m->g_v, NULL, nd);
            norm_backward(m, &sl->nsum, P, G, A, m->g_v, ds, A + sl->v_sum);
            dv = m->g_v;
        }
        /* the skip carries a dv to the input (B2T's also dv to the block input); the branch gets
         * dv plus the span norm's gradient */
        if ((pl->skip_gain == NS_SKIP_ONE && !pl->profiled_skip) || !dv)
            copy_or_zero(ds_in, dv, nd);
        else
            scale_into(ds_in, skip_weight(m, pl, layer, j), dv, nd);
        if (pl->block_skip && j == m->nsub - 1 && dv)
            accumulate(dx, dv, nd);
        if (dv && dacc)
            add_into(m->g_bn, dv, dacc, nd);
        else
            copy_or_zero(m->g_bn, dv ? dv : dacc, nd);
        if (pl->branch_gain != NS_BRANCH_ONE) /* v = a s + c bn (no aggregate, no dual stream) */
            scale_into(m->g_bn, branch_gain(c, pl), m->g_bn, nd);
        if (pl->gated) { /* bg = w bn: dw += <g_bg, bn>, g_bn = w g_bg */
            const ns_real *bn = A + (pl->norm_out ? sl->bn : sl->b);
            PARAM(G, sl->gate)[0] += (ns_real)dot(m->g_bn, bn, nd);
            scale_into(m->g_bn, PARAM(P, sl->gate)[0], m->g_bn, nd);
        }
        const ns_real *db = m->g_bn;
        if (pl->norm_out) {
            copy_or_zero(m->g_b, NULL, nd);
            norm_backward(m, &sl->nout, P, G, A, m->g_b, m->g_bn, A + sl->b);
            db = m->g_b;
        }
        /* the branch, then norm_in, into the input stream's gradient */
        const ns_real *z = pl->norm_in ? A + sl->z : s_in;
        if (pl->norm_in) {
            copy_or_zero(m->g_z, NULL, nd);
            branch_backward(m, sl, P, G, A, z, db, m->g_z, layer, pl->norm_mid);
            if (pl->layer_scaled)
                scale_into(m->g_z, 1 / sqrt((double)layer), m->g_z, nd);
            norm_backward(m, &sl->nin, P, G, A, ds_in, m->g_z, s_in);
        } else {
            branch_backward(m, sl, P, G, A, z, db, ds_in, layer, pl->norm_mid);
        }
        ds = ds_in;
    }
    accumulate(dx, ds, nd);
    if (pl->dual_stream && layer == 1) /* r_0 = x_0 */
        accumulate(dx, m->g_dual, nd);
    return NS_OK;
}
