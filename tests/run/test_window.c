/* test_window.c: propagating a deep stack in segments (ns_config.window) gives, bit for bit,
 * what keeping every block resident gives, in less memory.
 *
 * For each block kind and placement (pre, post, span, span-wrapped, mixln, a schedule whose
 * blocks take three rows, ResiDual, whose dual stream r is recomputed with x, and admin,
 * whose profiling pass walks the windows too), ns_propagate with window K (blocks resident at
 * once; the backward redraws each segment's weights and recomputes its forward from the x kept
 * at the segment's start) is compared with window 0 (all L resident) on every recorded array:
 * the same operations on the same numbers must round the same way. Windows of 1, a divisor of
 * L, a
 * non-divisor (a short last segment) and L - 1 are tried. ns_model_bytes is checked against
 * the window: resident memory must not grow with L.
 *
 * A model whose blocks share one gradient slice (ns_config.shared_grads, as propagate creates
 * it) must give, block by block right after each backward, the gradients a model with a slice
 * per block gives.
 *
 * Runs in one workspace (ns_workspace: memory reused from model to model) must give what runs
 * with their own memory give, whatever ran in it before, bigger or smaller. */
#include "check.h"
#include "propagate.h"
#include <stdlib.h>
#include <string.h>

/* every array of the result, as (pointer, count) pairs; NULL arrays are absent ones */
static int same(const ns_propagate_result *a, const ns_propagate_result *b)
{
    size_t S = (size_t)a->seeds, L = (size_t)a->depth;
    size_t n1 = S * (L + 1), n0 = S * L;
    const struct {
        const double *x, *y;
        size_t n;
    } arrays[] = {
        {a->act_ms, b->act_ms, n1},         {a->act_var, b->act_var, n1},
        {a->grad_ms, b->grad_ms, n1},       {a->cos_tokens, b->cos_tokens, n1},
        {a->eff_rank, b->eff_rank, n1},     {a->cos_layer, b->cos_layer, n0},
        {a->branch_ms, b->branch_ms, n0},   {a->param_grad_ms, b->param_grad_ms, n0 * a->nparams},
        {a->attn_entropy, b->attn_entropy, n0},
        {a->attn_entropy_head, b->attn_entropy_head, n0 * a->heads},
        {a->expert_load, b->expert_load, n0 * a->experts},
        {a->load_cv, b->load_cv, n0},       {a->aux_loss, b->aux_loss, n0},
        {a->dual_act_ms, b->dual_act_ms, n1}, {a->dual_grad_ms, b->dual_grad_ms, n1},
        {a->skip_weight, b->skip_weight, n0 * a->sublayers},
    };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        if (!arrays[i].x != !arrays[i].y)
            return 0;
        if (arrays[i].x && memcmp(arrays[i].x, arrays[i].y, arrays[i].n * sizeof(double)) != 0)
            return 0;
    }
    return 1;
}

static ns_propagate_opts opts(ns_block_kind block, const char *scheme, int depth, int window)
{
    ns_propagate_opts o = {.seeds = 2, .seed = 3};
    o.model = (ns_config){.block = block, .depth = depth, .width = 16, .hidden = 32, .ntok = 12,
                          .seq = 6, .heads = 2, .experts = 4, .expert_hidden = 16, .top_k = 2,
                          .act = NS_ACT_GELU, .norm = NS_NORM_LAYERNORM, .norm_eps = 1e-5,
                          .alpha = 0.5, .window = window, .post_fraction = 0.5,
                          .gate_init = 0.5};
    int entry; /* a per-block schedule, or a row */
    if (!ns_schedule_is(scheme))
        o.model.placement = ns_placement_find(scheme);
    else if (ns_schedule_parse(scheme, &o.model.schedule, &entry) != NS_SCHEDULE_OK)
        CHECK(0, "cannot parse %s", scheme);
    return o;
}

/* shared_grads 1 against 0: every gradient of block l right after its backward, and dx */
static int shared_grads_same(ns_block_kind block, const char *scheme, int L)
{
    ns_config c[2] = {opts(block, scheme, L, 0).model, opts(block, scheme, L, 0).model};
    c[1].shared_grads = 1;
    ns_model *m[2] = {NULL, NULL};
    size_t nd = (size_t)c[0].ntok * c[0].width;
    float *g = malloc(4 * nd * sizeof *g);
    int ok = g != NULL;
    for (int k = 0; k < 2 && ok; k++) {
        ok = ns_model_create(&m[k], &c[k]) == NS_OK && ns_model_init(m[k], 5) == NS_OK &&
             ns_fill_gaussian(ns_model_stream(m[k], 0), nd, 1.0, 5, -1, "input") == NS_OK;
        size_t nw; /* Admin: the profiling pass first */
        if (ok && ns_model_skip_weights(m[k], &nw)) {
            ok = ns_model_profile_begin(m[k]) == NS_OK;
            for (int l = 1; ok && l <= L; l++)
                ok = ns_model_block_forward(m[k], l) == NS_OK;
            ok = ok && ns_model_profile_end(m[k]) == NS_OK;
        }
        for (int l = 1; ok && l <= L; l++)
            ok = ns_model_block_forward(m[k], l) == NS_OK;
    }
    if (ok)
        ok = ns_fill_gaussian(g, nd, 1.0, 5, -1, "cotangent") == NS_OK;
    if (ok)
        memcpy(g + 2 * nd, g, nd * sizeof *g);
    for (int l = L; ok && l >= 1; l--) {
        float *dy[2] = {g, g + 2 * nd}, *dx[2] = {g + nd, g + 3 * nd};
        for (int k = 0; k < 2 && ok; k++) {
            memset(dx[k], 0, nd * sizeof(float));
            ok = ns_model_block_backward(m[k], l, dx[k], dy[k]) == NS_OK;
        }
        ok = ok && memcmp(dx[0], dx[1], nd * sizeof(float)) == 0;
        for (int i = 0; ok && i < ns_model_nparams(m[0]); i++) {
            const ns_param_info *pi = ns_model_param_info(m[0], i);
            ok = memcmp(ns_model_param_grad(m[0], l, i), ns_model_param_grad(m[1], l, i),
                        (size_t)pi->rows * pi->cols * sizeof(float)) == 0;
        }
        memcpy(g, dx[0], nd * sizeof(float));
        memcpy(g + 2 * nd, dx[1], nd * sizeof(float));
    }
    ns_model_free(m[0]);
    ns_model_free(m[1]);
    free(g);
    return ok;
}

int main(void)
{
    const ns_block_kind blocks[] = {NS_BLOCK_MLP, NS_BLOCK_TRANSFORMER, NS_BLOCK_MOE};
    const char *schemes[] = {"pre",   "post",  "span", "span-wrapped",
                             "mixln", "post*3,rezero*2,pre", "residual", "admin", "subln"};
    const int L = 7, windows[] = {1, 2, 3, 6};
    for (int b = 0; b < 3; b++)
        for (int p = 0; p < (int)(sizeof schemes / sizeof *schemes); p++) {
            ns_propagate_opts full = opts(blocks[b], schemes[p], L, 0);
            ns_propagate_result want;
            if (ns_propagate(&full, &want, NULL, NULL) != NS_OK) {
                CHECK(0, "propagate block %d %s", b, schemes[p]);
                continue;
            }
            for (int w = 0; w < 4; w++) {
                ns_propagate_opts o = opts(blocks[b], schemes[p], L, windows[w]);
                ns_propagate_result got;
                int st = ns_propagate(&o, &got, NULL, NULL);
                CHECK(st == NS_OK && same(&want, &got),
                      "block %d %s window %d: not bit-identical to every block resident", b,
                      schemes[p], windows[w]);
                if (st == NS_OK)
                    ns_propagate_result_free(&got);
            }
            ns_propagate_result_free(&want);
            CHECK(shared_grads_same(blocks[b], schemes[p], L),
                  "block %d %s: a shared gradient slice differs from one slice per block", b,
                  schemes[p]);
        }

    /* a mutation the comparison must catch: a different seed for one run */
    {
        ns_propagate_opts a = opts(NS_BLOCK_MLP, "pre", L, 0), c = opts(NS_BLOCK_MLP, "pre", L, 3);
        c.seed = 4;
        ns_propagate_result ra, rc;
        if (ns_propagate(&a, &ra, NULL, NULL) == NS_OK && ns_propagate(&c, &rc, NULL, NULL) == NS_OK) {
            CHECK(!same(&ra, &rc), "the comparison cannot tell two seeds apart");
            ns_propagate_result_free(&ra);
            ns_propagate_result_free(&rc);
        } else {
            CHECK(0, "propagate (mutation)");
        }
    }

    /* one workspace through runs of growing and shrinking size, against runs on their own */
    {
        ns_workspace *ws = NULL;
        CHECK(ns_workspace_create(&ws) == NS_OK, "workspace");
        const ns_block_kind kinds[] = {NS_BLOCK_MOE, NS_BLOCK_MLP, NS_BLOCK_TRANSFORMER,
                                       NS_BLOCK_MLP};
        const int depths[] = {3, 9, 5, 2};
        for (int k = 0; k < 4 && ws; k++) {
            ns_propagate_opts own = opts(kinds[k], "span", depths[k], k == 1 ? 4 : 0);
            ns_propagate_opts in = own;
            in.workspace = ws;
            ns_propagate_result a, b;
            int sa = ns_propagate(&own, &a, NULL, NULL), sb = ns_propagate(&in, &b, NULL, NULL);
            CHECK(sa == NS_OK && sb == NS_OK && same(&a, &b),
                  "run %d in a workspace differs from the run on its own", k);
            if (sa == NS_OK)
                ns_propagate_result_free(&a);
            if (sb == NS_OK)
                ns_propagate_result_free(&b);
        }
        ns_model *m1 = NULL, *m2 = NULL;
        ns_config c = opts(NS_BLOCK_MLP, "pre", 4, 0).model;
        CHECK(ns_model_create_in(&m1, &c, ws) == NS_OK &&
                  ns_model_create_in(&m2, &c, ws) == NS_ERR_INVALID && !m2,
              "a second model in a workspace that holds one is refused");
        ns_model_free(m1);
        CHECK(ns_model_create_in(&m2, &c, ws) == NS_OK, "the workspace is free again");
        ns_model_free(m2);
        ns_workspace_free(ws);
    }

    /* resident memory: K blocks and K + 1 streams, whatever L */
    {
        ns_config c = opts(NS_BLOCK_MLP, "pre", 1024, 8).model;
        size_t per_block, per_stream, fixed;
        CHECK(ns_model_bytes(&c, &per_block, &per_stream, &fixed) == NS_OK, "ns_model_bytes");
        /* a PreNorm MLP block: the norm's gain and bias, w1, w2; their gradients, and at least
         * the hidden pre-activation */
        size_t params = 2 * (size_t)c.width * c.hidden + 2 * (size_t)c.width;
        CHECK(per_block >= 2 * params * sizeof(float) + (size_t)c.ntok * c.hidden * sizeof(float),
              "per-block bytes %zu too small", per_block);
        CHECK(per_stream == (size_t)c.ntok * c.width * sizeof(float), "per-stream bytes %zu",
              per_stream);
        ns_model *m = NULL;
        CHECK(ns_model_create(&m, &c) == NS_OK && ns_model_window(m) == 8, "window 8 of 1024");
        CHECK(m && ns_model_param_count(m) == 8 * params, "resident parameters: 8 blocks' worth");
        ns_model_free(m);
        c.window = -1;
        CHECK(ns_model_create(&m, &c) == NS_ERR_INVALID, "a negative window is refused");
        /* one shared gradient slice: a block's worth of gradients moves out of per_block */
        c.window = 8, c.shared_grads = 1;
        size_t per_block1, per_stream1, fixed1;
        CHECK(ns_model_bytes(&c, &per_block1, &per_stream1, &fixed1) == NS_OK &&
                  per_block1 == per_block - params * sizeof(float) &&
                  fixed1 == fixed + params * sizeof(float),
              "shared gradients: per-block %zu, fixed %zu", per_block1, fixed1);
        c.shared_grads = 2;
        CHECK(ns_model_create(&m, &c) == NS_ERR_INVALID, "shared_grads 2 is refused");
        /* ResiDual keeps r_l beside x_l: two streams' worth per resident stream */
        ns_config cr = opts(NS_BLOCK_MLP, "residual", 1024, 8).model;
        CHECK(ns_model_bytes(&cr, &per_block1, &per_stream1, &fixed1) == NS_OK &&
                  per_stream1 == 2 * per_stream,
              "ResiDual per-stream bytes %zu", per_stream1);
        ns_lm_config lc = {.blocks = opts(NS_BLOCK_TRANSFORMER, "pre", 4, 0).model, .vocab = 8};
        lc.blocks.shared_grads = 1;
        ns_lm *lm = NULL;
        CHECK(ns_lm_create(&lm, &lc) == NS_ERR_INVALID && !lm,
              "a language model (trained: every block's gradients at once) refuses shared_grads");
    }

    printf("test_window: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
