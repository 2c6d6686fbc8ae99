/* test_grad.c: every backward against central finite differences, in double precision.
 *
 * Linked against the double twin of libnormscope (same sources, ns_real = double). For a
 * scalar loss sum(out * G) with a random cotangent G we compare the analytic gradient of every
 * input and parameter with (loss(p + h) - loss(p - h)) / 2h. The error is measured relative to the
 * largest gradient entry of the tensor. At h = 1e-5 in double, truncation (~h^2) and rounding
 * (~1e-16/h) errors sit near 1e-10; a wrong sign or a missing term shows up at 1e-3 or more (the
 * "broken on purpose" cases at the end prove the tolerance catches a missing LayerNorm term). */
#include "normscope.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H_STEP 1e-5
#define TOL 1e-6

static int checks, failures;

static void fill(double *x, size_t n, double std, uint64_t seed, const char *name)
{
    ns_fill_gaussian(x, n, std, seed, -1, name);
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

typedef double (*loss_fn)(void *ctx);

/* relative max error between analytic and central-difference gradients of loss wrt x[0..n) */
static double grad_error(double *x, size_t n, const double *analytic, loss_fn loss, void *ctx)
{
    double max_diff = 0, max_mag = 1e-300;
    for (size_t k = 0; k < n; k++) {
        double save = x[k];
        x[k] = save + H_STEP;
        double lp = loss(ctx);
        x[k] = save - H_STEP;
        double lm = loss(ctx);
        x[k] = save;
        double num = (lp - lm) / (2 * H_STEP);
        max_diff = fmax(max_diff, fabs(num - analytic[k]));
        max_mag = fmax(max_mag, fmax(fabs(num), fabs(analytic[k])));
    }
    return max_diff / max_mag;
}

static void expect_grad(const char *what, double *x, size_t n, const double *analytic, loss_fn loss,
                        void *ctx)
{
    double err = grad_error(x, n, analytic, loss, ctx);
    checks++;
    if (!(err < TOL)) {
        failures++;
        printf("FAIL %s: relative error %.3g (tolerance %g)\n", what, err, TOL);
    }
}

/* ---- single ops ---------------------------------------------------------------------------- */
enum { N = 6, C = 10, NOUT = 7 };

typedef struct {
    double inp[N * C], w[C * NOUT], g[C], b[C], G[N * C], out[N * C], mean[N], rstd[N]; /* C > NOUT */
    double a; /* DyT's scalar */
    ns_norm_kind norm;
    ns_act_kind act;
    int op; /* 0 linear, 1 norm, 2 activation, 3 DyT */
} op_ctx;

static double op_loss(void *p)
{
    op_ctx *c = p;
    switch (c->op) {
    case 0:
        ns_linear_forward(c->out, c->inp, c->w, N, C, NOUT);
        return dot(c->out, c->G, N * NOUT);
    case 1:
        ns_norm_forward(c->out, c->mean, c->rstd, c->inp, c->g,
                        c->norm == NS_NORM_LAYERNORM ? c->b : NULL, N, C, c->norm, 1e-5);
        return dot(c->out, c->G, N * C);
    case 3:
        ns_dyt_forward(c->out, c->inp, &c->a, c->g, c->b, N, C);
        return dot(c->out, c->G, N * C);
    default:
        ns_act_forward(c->out, c->inp, N * C, c->act);
        return dot(c->out, c->G, N * C);
    }
}

static void test_ops(void)
{
    static op_ctx c;
    double dinp[N * C], dw[C * NOUT], dg[C], db[C];
    fill(c.inp, N * C, 1.0, 1, "inp");
    fill(c.w, C * NOUT, 0.5, 2, "w");
    fill(c.G, N * NOUT, 1.0, 3, "G");
    for (int k = 0; k < C; k++) /* gains away from 1 and nonzero biases exercise every term */
        c.g[k] = 1 + 0.3 * sin(k + 1.0), c.b[k] = 0.2 * cos(k + 1.0);

    c.op = 0;
    memset(dinp, 0, sizeof dinp), memset(dw, 0, sizeof dw);
    ns_linear_backward(dinp, dw, c.G, c.inp, c.w, N, C, NOUT);
    expect_grad("linear dinp", c.inp, N * C, dinp, op_loss, &c);
    expect_grad("linear dw", c.w, C * NOUT, dw, op_loss, &c);

    const char *norm_names[] = {"layernorm", "rmsnorm"};
    for (int kind = 0; kind < 2; kind++) {
        char what[64];
        c.op = 1;
        c.norm = (ns_norm_kind)kind;
        fill(c.G, N * C, 1.0, 4, "G");
        op_loss(&c); /* caches mean and rstd */
        memset(dinp, 0, sizeof dinp), memset(dg, 0, sizeof dg), memset(db, 0, sizeof db);
        ns_norm_backward(dinp, dg, kind == 0 ? db : NULL, c.G, c.inp, c.g, c.mean, c.rstd, N, C,
                         c.norm);
        snprintf(what, sizeof what, "%s dinp", norm_names[kind]);
        expect_grad(what, c.inp, N * C, dinp, op_loss, &c);
        snprintf(what, sizeof what, "%s dgain", norm_names[kind]);
        expect_grad(what, c.g, C, dg, op_loss, &c);
        if (kind == 0)
            expect_grad("layernorm dbias", c.b, C, db, op_loss, &c);
    }

    /* DyT at a = 0.5 and at 1.7 (tanh saturating on the larger inputs); inputs of std 2 */
    const double as[] = {0.5, 1.7};
    for (int t = 0; t < 2; t++) {
        char what[64];
        double da = 0;
        c.op = 3;
        c.a = as[t];
        fill(c.inp, N * C, 2.0, 7, "inp");
        memset(dinp, 0, sizeof dinp), memset(dg, 0, sizeof dg), memset(db, 0, sizeof db);
        ns_dyt_backward(dinp, &da, dg, db, c.G, c.inp, &c.a, c.g, N, C);
        snprintf(what, sizeof what, "dyt a=%g dinp", as[t]);
        expect_grad(what, c.inp, N * C, dinp, op_loss, &c);
        snprintf(what, sizeof what, "dyt a=%g dgain", as[t]);
        expect_grad(what, c.g, C, dg, op_loss, &c);
        snprintf(what, sizeof what, "dyt a=%g dbias", as[t]);
        expect_grad(what, c.b, C, db, op_loss, &c);
        snprintf(what, sizeof what, "dyt a=%g da", as[t]);
        expect_grad(what, &c.a, 1, &da, op_loss, &c);
    }
    fill(c.inp, N * C, 1.0, 1, "inp");

    const char *act_names[] = {"gelu", "relu", "linear"};
    for (int kind = 0; kind < 3; kind++) {
        char what[64];
        c.op = 2;
        c.act = (ns_act_kind)kind;
        memset(dinp, 0, sizeof dinp);
        ns_act_backward(dinp, c.G, c.inp, N * C, c.act);
        snprintf(what, sizeof what, "%s dinp", act_names[kind]);
        expect_grad(what, c.inp, N * C, dinp, op_loss, &c);
    }
}

/* ---- attention alone, on q, k, v ------------------------------------------------------------ */
typedef struct {
    int nseq, T, d, H;
    double *q, *k, *v, *cat, *probs, *G;
} attn_ctx;

static double attn_loss(void *p)
{
    attn_ctx *c = p;
    ns_attention_forward(c->cat, c->probs, c->q, c->k, c->v, c->nseq, c->T, c->d, c->H);
    return dot(c->cat, c->G, (size_t)c->nseq * c->T * c->d);
}

static void check_attention(int nseq, int T, int d, int H)
{
    size_t n = (size_t)nseq * T * d, np = (size_t)nseq * H * T * T;
    attn_ctx c = {.nseq = nseq, .T = T, .d = d, .H = H};
    double *buf = calloc(9 * n + 2 * np, sizeof *buf);
    c.q = buf, c.k = buf + n, c.v = buf + 2 * n, c.cat = buf + 3 * n, c.G = buf + 4 * n;
    double *dq = buf + 5 * n, *dk = buf + 6 * n, *dv = buf + 7 * n;
    c.probs = buf + 9 * n;
    double *dprobs = c.probs + np;
    /* std 1.5 makes the softmax far from uniform, so every term of its backward matters */
    fill(c.q, n, 1.5, 31, "q"), fill(c.k, n, 1.5, 32, "k"), fill(c.v, n, 1.0, 33, "v");
    fill(c.G, n, 1.0, 34, "G");
    attn_loss(&c);
    ns_attention_backward(dq, dk, dv, dprobs, c.G, c.probs, c.q, c.k, c.v, nseq, T, d, H);
    char what[96];
    snprintf(what, sizeof what, "attention nseq=%d T=%d d=%d H=%d dq", nseq, T, d, H);
    expect_grad(what, c.q, n, dq, attn_loss, &c);
    what[strlen(what) - 1] = 'k';
    expect_grad(what, c.k, n, dk, attn_loss, &c);
    what[strlen(what) - 1] = 'v';
    expect_grad(what, c.v, n, dv, attn_loss, &c);
    /* the mask: no query attends to a later key */
    int leak = 0;
    for (size_t bh = 0; bh < (size_t)nseq * H; bh++)
        for (int i = 0; i < T; i++)
            for (int j = i + 1; j < T; j++)
                leak |= c.probs[(bh * T + i) * T + j] != 0;
    checks++;
    if (leak)
        failures++, printf("FAIL attention T=%d: a query attends to a later key\n", T);
    free(buf);
}

/* ---- blocks and stacks through the model ------------------------------------------------- */
typedef struct {
    ns_model *m;
    double *G;
    size_t nd;
    /* MoE: the routing at the unperturbed point, and whether a perturbation changed it */
    int *routing;
    size_t nrouting;
    int routing_changed;
} model_ctx;

/* MoE routing of every block (chosen experts, then rows), into out */
static void snapshot_routing(const ns_model *m, int *out)
{
    const ns_config *c = ns_model_config(m);
    size_t nk = (size_t)c->ntok * c->top_k;
    for (int l = 1; l <= c->depth; l++) {
        const double *probs;
        const int *expert, *row;
        ns_model_routing(m, l, &probs, &expert, &row);
        memcpy(out + (size_t)(l - 1) * 2 * nk, expert, nk * sizeof *out);
        memcpy(out + (size_t)(l - 1) * 2 * nk + nk, row, nk * sizeof *out);
    }
}

/* sum(x_L * G), plus the MoE auxiliary losses with their coefficients */
static double model_loss(void *p)
{
    model_ctx *c = p;
    const ns_config *cfg = ns_model_config(c->m);
    int L = cfg->depth;
    double loss = 0;
    for (int l = 1; l <= L; l++)
        ns_model_block_forward(c->m, l);
    for (int l = 1; cfg->block == NS_BLOCK_MOE && l <= L; l++) {
        double aux, zloss;
        ns_model_moe_losses(c->m, l, &aux, &zloss);
        loss += cfg->aux_coef * aux + cfg->zloss_coef * zloss;
    }
    if (c->routing) { /* the selection is piecewise constant: the check must not cross a switch */
        int *now = malloc(c->nrouting * sizeof *now);
        snapshot_routing(c->m, now);
        c->routing_changed |= memcmp(now, c->routing, c->nrouting * sizeof *now) != 0;
        free(now);
    }
    return loss + dot(ns_model_stream(c->m, L), c->G, c->nd);
}

/* forward, then backward from G; returns dLoss/dx_0 in dx0 and parameter gradients in the model */
static void model_backward(model_ctx *c, double *dx0)
{
    int L = ns_model_config(c->m)->depth;
    model_loss(c);
    ns_model_zero_grad(c->m);
    double *dy = malloc(c->nd * sizeof *dy), *dx = malloc(c->nd * sizeof *dx);
    memcpy(dy, c->G, c->nd * sizeof *dy);
    for (int l = L; l >= 1; l--) {
        memset(dx, 0, c->nd * sizeof *dx);
        ns_model_block_backward(c->m, l, dx, dy);
        double *t = dx;
        dx = dy, dy = t;
    }
    memcpy(dx0, dy, c->nd * sizeof *dx0);
    free(dx), free(dy);
}

/* Admin: the profiling pass on x_0, whose weights are constants for the checks that follow; a
 * first weight other than 1 would mean the pass did not run as documented, and weights all 1
 * would make the check PostNorm's */
static void profile(model_ctx *c, const char *placement)
{
    size_t n;
    if (!ns_model_skip_weights(c->m, &n))
        return;
    int L = ns_model_config(c->m)->depth, st = ns_model_profile_begin(c->m);
    for (int l = 1; st == NS_OK && l <= L; l++)
        st = ns_model_block_forward(c->m, l);
    if (st == NS_OK)
        st = ns_model_profile_end(c->m);
    const double *w = ns_model_skip_weights(c->m, &n);
    checks++;
    if (st != NS_OK || w[0] != 1 || (n > 1 && !(w[n - 1] > 1.01)))
        failures++,
            printf("FAIL %s: the profiling pass (status %d, %zu weights)\n", placement, st, n);
}

/* a row's name or a schedule ("post*2,pre") into c; Mix-LN splits at half the depth.
 * *norms: 1 if every block has a norm slot (DyT applies); *mlp_ok: 1 if MLP blocks fit */
static void set_placement(ns_config *c, const char *text, int *norms, int *mlp_ok)
{
    int entry;
    c->post_fraction = 0.5;
    if (ns_schedule_is(text)) {
        if (ns_schedule_parse(text, &c->schedule, &entry) != NS_SCHEDULE_OK)
            printf("FAIL cannot parse the schedule %s\n", text), failures++;
    } else {
        c->placement = ns_placement_find(text);
    }
    ns_schedule s;
    ns_schedule_resolve(c->placement, &c->schedule, c->post_fraction, c->depth, &s);
    *norms = *mlp_ok = 1;
    for (int i = 0; i < s.n; i++) {
        *norms &= ns_placement_has_norms(s.row[i]);
        *mlp_ok &= ns_placement_takes(s.row[i], NS_BLOCK_MLP);
    }
}

/* MoE settings for check_model: experts, top-k, capacity (0: none) */
typedef struct {
    int experts, top_k;
    double capacity;
} moe_opts;

static void check_model(ns_block_kind block, const char *placement, ns_act_kind act,
                        ns_norm_kind norm, int depth, moe_opts moe)
{
    static const char *act_names[] = {"gelu", "relu", "linear"};
    static const char *norm_names[] = {"layernorm", "rmsnorm", "dyt"};
    static const char *block_names[] = {"mlp", "transformer", "moe"};
    /* Transformer and MoE: two sequences of 5 tokens, 2 heads of width 4; MoE experts of
     * hidden width 6 with both auxiliary losses switched on */
    ns_config cfg = {.block = block, .depth = depth, .width = 8, .hidden = 12, .ntok = 10, .seq = 5, .heads = 2, .act = act,
                     .norm = norm, .norm_eps = 1e-5, .alpha = 0.7, .experts = moe.experts,
                     .expert_hidden = 6, .top_k = moe.top_k, .capacity = moe.capacity,
                     .aux_coef = 0.3, .zloss_coef = 0.2, .dyt_init = 0.8};
    model_ctx c = {0};
    int norms, mlp_ok;
    set_placement(&cfg, placement, &norms, &mlp_ok);
    if (norm == NS_NORM_DYT && !norms) { /* refused */
        checks++;
        if (ns_model_create(&c.m, &cfg) != NS_ERR_INVALID)
            failures++, printf("FAIL %s accepted DyT without norms\n", placement);
        ns_model_free(c.m);
        return;
    }
    if (block == NS_BLOCK_MLP && !mlp_ok) { /* needs two sublayers */
        checks++;
        if (ns_model_create(&c.m, &cfg) != NS_ERR_INVALID)
            failures++, printf("FAIL %s accepted MLP blocks\n", placement);
        ns_model_free(c.m);
        return;
    }
    if (ns_model_create(&c.m, &cfg) != NS_OK || ns_model_init(c.m, 11) != NS_OK) {
        failures++;
        printf("FAIL cannot build %s\n", placement);
        return;
    }
    c.nd = (size_t)cfg.ntok * cfg.width;
    c.G = malloc(c.nd * sizeof *c.G);
    double *dx0 = malloc(c.nd * sizeof *dx0);
    fill(ns_model_stream(c.m, 0), c.nd, 1.0, 5, "x0");
    fill(c.G, c.nd, 1.0, 6, "G");
    /* move norm gains and biases off their init values so their gradients are generic */
    for (int l = 1; l <= depth; l++)
        for (int i = 0; i < ns_model_nparams(c.m); i++) {
            const ns_param_info *pi = ns_model_param_info(c.m, i);
            double *w = ns_model_param(c.m, l, i);
            for (int k = 0; !pi->is_matrix && k < pi->rows * pi->cols; k++) /* every expert's */
                w[k] += 0.2 * sin(7.0 * l + 3.0 * i + k);
        }
    profile(&c, placement);
    model_backward(&c, dx0);
    if (block == NS_BLOCK_MOE) {
        c.nrouting = (size_t)depth * 2 * cfg.ntok * cfg.top_k;
        c.routing = malloc(c.nrouting * sizeof *c.routing);
        snapshot_routing(c.m, c.routing);
    }
    char what[160];
    if (block == NS_BLOCK_MOE)
        snprintf(what, sizeof what, "moe E=%d k=%d capacity=%g %s/%s/%s L=%d dx0", moe.experts,
                 moe.top_k, moe.capacity, placement, act_names[act], norm_names[norm], depth);
    else
        snprintf(what, sizeof what, "%s %s/%s/%s L=%d dx0", block_names[block], placement,
                 act_names[act], norm_names[norm], depth);
    expect_grad(what, ns_model_stream(c.m, 0), c.nd, dx0, model_loss, &c);
    for (int l = 1; l <= depth; l++)
        for (int i = 0; i < ns_model_nparams(c.m); i++) {
            const ns_param_info *pi = ns_model_param_info(c.m, i);
            size_t n = (size_t)pi->rows * pi->cols;
            double *analytic = malloc(n * sizeof *analytic);
            memcpy(analytic, ns_model_param_grad(c.m, l, i), n * sizeof *analytic);
            snprintf(what, sizeof what, "%s %s/%s/%s L=%d block %d %s", block_names[block],
                     placement, act_names[act], norm_names[norm], depth, l, pi->name);
            expect_grad(what, ns_model_param(c.m, l, i), n, analytic, model_loss, &c);
            free(analytic);
        }
    if (c.routing) {
        checks++;
        if (c.routing_changed)
            failures++, printf("FAIL %s: a perturbation changed the routing\n", what);
        else if (moe.capacity > 0) { /* the case must really drop slots */
            int dropped = 0;
            for (size_t i = 0; i < c.nrouting; i++)
                dropped += (i / (cfg.ntok * cfg.top_k)) % 2 == 1 && c.routing[i] < 0;
            checks++;
            if (!dropped)
                failures++, printf("FAIL %s: capacity %g dropped nothing\n", what, moe.capacity);
        }
        free(c.routing);
    }
    free(dx0);
    free(c.G);
    ns_model_free(c.m);
}

/* ---- the whole language model: embeddings, blocks, final norm, head, cross-entropy --------- */
typedef struct {
    ns_lm *lm;
    int ids[10], targets[10];
} lm_ctx;

static double lm_loss(void *p)
{
    lm_ctx *c = p;
    double loss = 0;
    ns_lm_forward(c->lm, c->ids, c->targets, &loss);
    return loss;
}

static void check_lm(ns_block_kind block, const char *placement, int tied, ns_norm_kind norm)
{
    ns_lm_config cfg = {.blocks = {.block = block, .depth = 2, .width = 8, .hidden = 12, .ntok = 10, .seq = 5,
                                   .heads = 2, .act = NS_ACT_GELU, .norm = norm,
                                   .norm_eps = 1e-5, .alpha = 0.7, .dyt_init = 0.8},
                        .vocab = 7, .tied = tied};
    int norms, mlp_ok;
    set_placement(&cfg.blocks, placement, &norms, &mlp_ok);
    if (norm == NS_NORM_DYT && !norms)
        return; /* refused: check_model */
    lm_ctx c = {0};
    if (block == NS_BLOCK_MLP && !mlp_ok) { /* needs two sublayers */
        checks++;
        if (ns_lm_create(&c.lm, &cfg) != NS_ERR_INVALID)
            failures++, printf("FAIL the LM took %s with MLP blocks\n", placement);
        ns_lm_free(c.lm);
        return;
    }
    if (ns_lm_create(&c.lm, &cfg) != NS_OK || ns_lm_init(c.lm, 5) != NS_OK) {
        failures++;
        printf("FAIL cannot build the LM (%s)\n", placement);
        return;
    }
    for (int i = 0; i < 10; i++) /* repeated ids exercise the embedding scatter-add */
        c.ids[i] = (3 * i + 1) % 7, c.targets[i] = (5 * i + 2) % 7;
    size_t nw;
    if (ns_model_skip_weights(ns_lm_model(c.lm), &nw) && ns_lm_profile(c.lm, c.ids) != NS_OK)
        failures++, printf("FAIL the LM's profiling pass (%s)\n", placement);
    double loss;
    ns_lm_zero_grad(c.lm);
    ns_lm_forward(c.lm, c.ids, c.targets, &loss);
    ns_lm_backward(c.lm, NULL);
    char what[128];
    ns_model *m = ns_lm_model(c.lm);
    for (int l = 1; l <= 2; l++)
        for (int i = 0; i < ns_model_nparams(m); i++) {
            const ns_param_info *pi = ns_model_param_info(m, i);
            size_t n = (size_t)pi->rows * pi->cols;
            double *analytic = malloc(n * sizeof *analytic);
            memcpy(analytic, ns_model_param_grad(m, l, i), n * sizeof *analytic);
            snprintf(what, sizeof what, "lm %s %s%s tied=%d block %d %s",
                     block ? "transformer" : "mlp", placement, norm == NS_NORM_DYT ? " dyt" : "",
                     tied, l, pi->name);
            expect_grad(what, ns_model_param(m, l, i), n, analytic, lm_loss, &c);
            free(analytic);
        }
    for (int t = 0; t < ns_lm_ntensors(c.lm); t++) {
        double *w, *g;
        const ns_param_info *pi = ns_lm_tensor(c.lm, t, &w, &g);
        if (!pi)
            continue;
        size_t n = (size_t)pi->rows * pi->cols;
        double *analytic = malloc(n * sizeof *analytic);
        memcpy(analytic, g, n * sizeof *analytic);
        snprintf(what, sizeof what, "lm %s %s%s tied=%d %s", block ? "transformer" : "mlp",
                 placement, norm == NS_NORM_DYT ? " dyt" : "", tied, pi->name);
        expect_grad(what, w, n, analytic, lm_loss, &c);
        free(analytic);
    }
    ns_lm_free(c.lm);
}

/* ---- the tolerance means something: a LayerNorm backward missing its mean term ------------ */
static void broken_layernorm_backward(double *dinp, const double *dout, const double *inp,
                                      const double *g, const double *mean, const double *rstd)
{
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int k = 0; k < C; k++)
            s += g[k] * dout[i * C + k] * (inp[i * C + k] - mean[i]) * rstd[i];
        for (int k = 0; k < C; k++) {
            double xhat = (inp[i * C + k] - mean[i]) * rstd[i];
            /* the correct form subtracts mean(dxhat) too */
            dinp[i * C + k] += rstd[i] * (g[k] * dout[i * C + k] - xhat * s / C);
        }
    }
}

static void test_broken_ops_are_caught(void)
{
    static op_ctx c;
    double dinp[N * C];
    fill(c.inp, N * C, 1.0, 21, "inp");
    fill(c.G, N * C, 1.0, 22, "G");
    for (int k = 0; k < C; k++)
        c.g[k] = 1 + 0.3 * sin(k + 1.0), c.b[k] = 0;
    c.op = 1;
    c.norm = NS_NORM_LAYERNORM;
    op_loss(&c);
    memset(dinp, 0, sizeof dinp);
    broken_layernorm_backward(dinp, c.G, c.inp, c.g, c.mean, c.rstd);
    double err = grad_error(c.inp, N * C, dinp, op_loss, &c);
    checks++;
    if (!(err > 100 * TOL)) {
        failures++;
        printf("FAIL a LayerNorm backward without its mean term passed (error %.3g)\n", err);
    }
    /* and a sign error in GELU's derivative */
    c.op = 2;
    c.act = NS_ACT_GELU;
    memset(dinp, 0, sizeof dinp);
    ns_act_backward(dinp, c.G, c.inp, N * C, c.act);
    for (int k = 0; k < N * C; k++)
        dinp[k] = -dinp[k];
    err = grad_error(c.inp, N * C, dinp, op_loss, &c);
    checks++;
    if (!(err > 100 * TOL)) {
        failures++;
        printf("FAIL a sign-flipped GELU backward passed (error %.3g)\n", err);
    }
}

int main(void)
{
    test_ops();
    check_attention(2, 7, 6, 3);
    check_attention(1, 40, 4, 1); /* a long sequence, one head */
    check_attention(3, 1, 4, 2);  /* T = 1: each token attends to itself only */
    moe_opts none = {0, 0, 0};
    for (int block = 0; block < 2; block++) {
        for (int p = 0; ns_placement_at(p); p++)
            for (int act = 0; act < 3; act++)
                for (int norm = 0; norm < 3; norm++) /* DyT: refused without norms */
                    check_model((ns_block_kind)block, ns_placement_at(p)->name, (ns_act_kind)act,
                                (ns_norm_kind)norm, 1, none);
        for (int p = 0; ns_placement_at(p); p++) {
            check_model((ns_block_kind)block, ns_placement_at(p)->name, NS_ACT_GELU,
                        NS_NORM_LAYERNORM, 3, none);
            check_model((ns_block_kind)block, ns_placement_at(p)->name, NS_ACT_GELU, NS_NORM_DYT,
                        3, none);
        }
    }
    /* MoE with routing held fixed: top-2 and top-1 (Switch gates), with and without drops */
    moe_opts moes[] = {{3, 2, 0}, {3, 1, 0}, {4, 2, 0.5}, {3, 1, 0.6}};
    for (int p = 0; ns_placement_at(p); p++)
        for (int i = 0; i < 4; i++)
            check_model(NS_BLOCK_MOE, ns_placement_at(p)->name, i % 2 ? NS_ACT_RELU : NS_ACT_GELU,
                        NS_NORM_LAYERNORM, 1, moes[i]);
    check_model(NS_BLOCK_MOE, "span", NS_ACT_GELU, NS_NORM_RMSNORM, 2, moes[2]);
    check_model(NS_BLOCK_MOE, "sandwich", NS_ACT_GELU, NS_NORM_DYT, 2, moes[0]);
    check_model(NS_BLOCK_MLP, "admin", NS_ACT_GELU, NS_NORM_RMSNORM, 3, none); /* w_3 > 1 */
    /* Admin's profiled skip weights under every norm kind in MoE blocks too */
    check_model(NS_BLOCK_MOE, "admin", NS_ACT_GELU, NS_NORM_RMSNORM, 2, moes[0]);
    check_model(NS_BLOCK_MOE, "admin", NS_ACT_GELU, NS_NORM_DYT, 2, moes[2]);
    /* Sub-LN's mid norm in every expert (each its own gain) under the other norm kinds */
    check_model(NS_BLOCK_MOE, "subln", NS_ACT_GELU, NS_NORM_RMSNORM, 2, moes[2]);
    check_model(NS_BLOCK_MOE, "subln", NS_ACT_RELU, NS_NORM_DYT, 2, moes[0]);
    /* DeepScaleLM's skip gain lambda is 0 at L = 1: at L = 3 both of its gains show, under every
     * norm kind in MoE blocks and with RMSNorm in the others (LayerNorm and DyT: the loops) */
    for (int norm = 0; norm < 3; norm++)
        check_model(NS_BLOCK_MOE, "dslm", NS_ACT_RELU, (ns_norm_kind)norm, 3, moes[norm]);
    check_model(NS_BLOCK_MLP, "dslm", NS_ACT_LINEAR, NS_NORM_RMSNORM, 3, none);
    check_model(NS_BLOCK_TRANSFORMER, "dslm", NS_ACT_GELU, NS_NORM_RMSNORM, 3, none);
    for (int p = 0; ns_placement_at(p); p++)
        for (int tied = 0; tied < 2; tied++) {
            check_lm(NS_BLOCK_MLP, ns_placement_at(p)->name, tied, NS_NORM_LAYERNORM);
            check_lm(NS_BLOCK_MLP, ns_placement_at(p)->name, tied, NS_NORM_DYT);
        }
    for (int p = 0; ns_placement_at(p); p++) {
        check_lm(NS_BLOCK_TRANSFORMER, ns_placement_at(p)->name, 0, NS_NORM_LAYERNORM);
        check_lm(NS_BLOCK_TRANSFORMER, ns_placement_at(p)->name, 0, NS_NORM_DYT);
    }
    /* per-block schedules: each block its own row on one shared layout (union of slots) */
    check_model(NS_BLOCK_MLP, "post*2,rezero*1,lns", NS_ACT_GELU, NS_NORM_LAYERNORM, 5, none);
    check_model(NS_BLOCK_MLP, "pre*1,post", NS_ACT_RELU, NS_NORM_RMSNORM, 3, none);
    check_model(NS_BLOCK_MLP, "post*1,pre", NS_ACT_GELU, NS_NORM_DYT, 2, none);
    check_model(NS_BLOCK_TRANSFORMER, "b2t*1,post*1,lns", NS_ACT_GELU, NS_NORM_LAYERNORM, 3, none);
    check_model(NS_BLOCK_TRANSFORMER, "post*1,rezero", NS_ACT_GELU, NS_NORM_LAYERNORM, 2, none);
    check_model(NS_BLOCK_MOE, "post*1,pre", NS_ACT_GELU, NS_NORM_LAYERNORM, 2, moes[0]);
    check_lm(NS_BLOCK_MLP, "pre*1,post", 0, NS_NORM_LAYERNORM);   /* last post: no final norm */
    check_lm(NS_BLOCK_TRANSFORMER, "post*1,pre", 1, NS_NORM_RMSNORM); /* last pre: final norm */
    test_broken_ops_are_caught();
    printf("test_grad: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
