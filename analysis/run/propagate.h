/* propagate.h: the propagate protocol at initialization.
 *
 * For each of S seeds: draw the weights, an input x_0 [batch, seq, d] and a cotangent
 * G ~ N(0,1) of the same shape; run the L blocks forward; Loss = sum(x_L * G); run backward to
 * every x_l and every parameter; record the per-layer metrics. Seed index s uses seed + s, so
 * `--seed 5 --seeds 1` reproduces the sixth seed of `--seed 0 --seeds 8`.
 * Inputs: Gaussian, x_0 ~ N(0,1) i.i.d.; or tokens, x_0[b,t] = E[id_bt] + P[t] with ids uniform
 * over the vocabulary, a token embedding E ~ N(0,1) [vocab, d] and learned-style random positions
 * P ~ N(0, 0.1^2) [seq, d], so tokens repeat within a sequence as in text. */
#ifndef NS_PROPAGATE_H
#define NS_PROPAGATE_H
#include "clock.h"
#include "h5out.h"
#include "normscope.h"
#include "theory.h"

#define NS_MAX_PARAM_NAMES 32
#define NS_POSITION_STD 0.1

typedef enum { NS_INPUT_GAUSSIAN = 0, NS_INPUT_TOKENS = 1 } ns_input_kind;

typedef struct {
    ns_config model;     /* model.seq tokens per sequence, model.ntok = batch * seq */
    int seeds;
    uint64_t seed;
    ns_input_kind input;
    int vocab;           /* for NS_INPUT_TOKENS */
    int no_metrics;      /* 1: forward and backward only, nothing recorded (what `normscope
                          * bench` compares the metrics' cost against) */
    ns_workspace *workspace; /* the model's memory, reused across runs (NULL: its own) */
} ns_propagate_opts;

typedef struct {
    int seeds, depth, nparams, heads; /* heads = 0 for MLP blocks */
    int experts;                      /* 0 unless MoE blocks */
    /* [seeds, depth+1], layer 0 = the input */
    double *act_ms, *act_var, *grad_ms, *cos_tokens, *eff_rank;
    /* [seeds, depth], entry l-1 for block l */
    double *cos_layer, *branch_ms;
    /* [seeds, depth, nparams] */
    double *param_grad_ms;
    /* Transformer blocks only (NULL otherwise): [seeds, depth] and [seeds, depth, heads] */
    double *attn_out_ms, *mlp_out_ms, *mid_act_ms, *attn_entropy, *attn_entropy_head;
    /* MoE blocks only (NULL otherwise): [seeds, depth, experts] and [seeds, depth] */
    double *expert_load, *router_entropy, *load_cv, *dropped_frac, *aux_loss;
    /* ResiDual only (NULL otherwise): the dual stream r_l and dLoss/dr_l, [seeds, depth+1] */
    double *dual_act_ms, *dual_grad_ms;
    char param_names[NS_MAX_PARAM_NAMES][40];
    /* a row with profiled skip weights only (NULL otherwise): [seeds, depth, sublayers] */
    double *skip_weight;
    int sublayers;
} ns_propagate_result;

int ns_propagate(const ns_propagate_opts *o, ns_propagate_result *r, ns_tick_fn tick,
                 void *tick_ctx);
int ns_propagate_run(const ns_config *cfg, int seq, int seeds, uint64_t seed,
                     ns_propagate_result *r, ns_tick_fn tick, void *tick_ctx);
void ns_propagate_result_free(ns_propagate_result *r);

/* What a propagate run may allocate for the model before it walks the stack in segments. */
#define NS_PROPAGATE_MEMORY_BUDGET ((size_t)3 << 30)
/* The window (ns_config.window) for c: 0 (every block resident) if that fits in budget bytes,
 * else the number of blocks K that makes K blocks plus the L/K kept streams smallest,
 * about sqrt(L x stream / block). The results do not depend on it (bit for bit). */
int ns_propagate_auto_window(const ns_config *c, size_t budget);
/* the bytes a propagate run of c allocates for its model (c->window as it will run); 0 for a
 * configuration the model refuses */
double ns_propagate_bytes(const ns_config *c);
/* writes the group <prefix>/propagate with every dataset, its description and dimension
 * labels; prefix "" for a single run, "/runs/<i>" in a sweep */
int ns_propagate_write(ns_h5 *h, const char *prefix, const ns_propagate_result *r);
/* writes <prefix>/theory: the prediction under the same names as the measurement, the
 * closed-form bound on act_ms per layer (act_ms_bound), and attributes naming the model and its
 * order ("O(1/d)" when t->finite, else "d -> infinity"); and, if t_inf is not NULL (MLP stacks),
 * <prefix>/theory_inf: the d -> infinity prediction under the same names and attributes */
int ns_theory_write(ns_h5 *h, const char *prefix, const ns_propagate_opts *o, const ns_theory *t,
                    const ns_theory *t_inf);

#endif
