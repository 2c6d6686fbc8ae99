/* normscope.h: the public interface of libnormscope, the numerical core.
 *
 * A deep stack of residual blocks (MLP today; attention and MoE sublayers slot into the same
 * block machinery) under a normalization placement taken from one table, run forward and
 * backward over a [tokens x width] residual stream with cblas GEMMs.
 *
 * Conventions (llm.c style):
 *  - every function returns an int status (NS_OK = 0) or a plain value; the library never prints
 *    or exits; ns_strerror() names a status for the program at the edge;
 *  - ops are forward/backward pairs with outputs first and shapes as plain ints; a backward
 *    *accumulates* (+=) into its input and parameter gradients;
 *  - ns_real is float in the shipped library. The same sources compile with NS_REAL_DOUBLE into a
 *    test-only double library, so every backward is checked by finite differences in double.
 */
#ifndef NORMSCOPE_H
#define NORMSCOPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef NS_REAL_DOUBLE
typedef double ns_real;
#else
typedef float ns_real;
#endif

/* ---- status codes ---------------------------------------------------------------------- */
enum {
    NS_OK = 0,
    NS_ERR_NOMEM,       /* an allocation failed */
    NS_ERR_INVALID,     /* an argument is out of range (size, choice, shape) */
    NS_ERR_NUMERIC,     /* a numerical routine failed (e.g. an eigensolver did not converge) */
    NS_ERR_INTERRUPTED, /* the caller asked to stop */
    NS_ERR_IO           /* reading or writing a file failed (used by the analysis layer) */
};
const char *ns_strerror(int status);
const char *ns_version(void);

/* ---- random numbers ---------------------------------------------------------------------- */
/* Every tensor draws from its own GSL stream keyed by (seed, layer, name), so a tensor's values do
 * not depend on the order tensors are built, on the depth of the stack or on the thread count.
 * layer = -1 names model-level tensors (the propagate input and cotangent, embeddings). */
uint64_t ns_stream_key(uint64_t seed, int layer, const char *name);
/* n values N(0, std^2) from stream (seed, layer, name): MT19937 seeded with the key folded to
 * 32 bits (key ^ key >> 32, 0 -> 1), then gsl_ran_gaussian_ziggurat's numbers, bit for bit */
int ns_fill_gaussian(ns_real *out, size_t n, double std, uint64_t seed, int layer, const char *name);
/* 1 when ns_fill_gaussian draws inline (faster than through GSL), 0 when it fell back
 * to calling gsl_ran_gaussian_ziggurat because this GSL's ziggurat did not give its numbers */
int ns_rng_inline(void);
/* n integers uniform in 0..bound-1 from stream (seed, layer, name) */
int ns_fill_uniform_int(int *out, size_t n, int bound, uint64_t seed, int layer, const char *name);

/* ---- ops: forward/backward pairs -------------------------------------------------------- */
/* linear: out[N,nout] = inp[N,nin] . w[nin,nout] (one GEMM over all N rows) */
void ns_linear_forward(ns_real *out, const ns_real *inp, const ns_real *w, int N, int nin, int nout);
void ns_linear_backward(ns_real *dinp, ns_real *dw, const ns_real *dout, const ns_real *inp,
                        const ns_real *w, int N, int nin, int nout);

/* DyT (Dynamic Tanh, Zhu et al. 2025, arXiv 2503.10622) is a norm kind without row statistics:
 * it has its own op pair (ns_dyt_forward/backward) */
typedef enum { NS_NORM_LAYERNORM = 0, NS_NORM_RMSNORM = 1, NS_NORM_DYT = 2 } ns_norm_kind;
/* per row of inp[N,C]: LayerNorm y = g (x - mean) rstd + b, RMSNorm y = g x rstd (b unused, may be
 * NULL); rstd = 1/sqrt(var + eps) (LayerNorm) or 1/sqrt(mean(x^2) + eps) (RMSNorm). The forward
 * caches mean[N] (LayerNorm only; may be NULL for RMSNorm) and rstd[N] for the backward. */
void ns_norm_forward(ns_real *out, ns_real *mean, ns_real *rstd, const ns_real *inp,
                     const ns_real *g, const ns_real *b, int N, int C, ns_norm_kind kind, double eps);
void ns_norm_backward(ns_real *dinp, ns_real *dg, ns_real *db, const ns_real *dout,
                      const ns_real *inp, const ns_real *g, const ns_real *mean,
                      const ns_real *rstd, int N, int C, ns_norm_kind kind);
/* DyT elementwise over inp[N,C]: y = g tanh(a x) + b, a = a[0] one learnable scalar, g and b per
 * feature [C]. Nothing is cached: the backward recomputes tanh(a x) from inp. The backward
 * accumulates dinp, da[0] (a sum over all N C entries in double, in a fixed order), dg and db. */
void ns_dyt_forward(ns_real *out, const ns_real *inp, const ns_real *a, const ns_real *g,
                    const ns_real *b, int N, int C);
void ns_dyt_backward(ns_real *dinp, ns_real *da, ns_real *dg, ns_real *db, const ns_real *dout,
                     const ns_real *inp, const ns_real *a, const ns_real *g, int N, int C);

typedef enum { NS_ACT_GELU = 0, NS_ACT_RELU = 1, NS_ACT_LINEAR = 2 } ns_act_kind;
/* elementwise over n values; GELU in its tanh form */
void ns_act_forward(ns_real *out, const ns_real *inp, size_t n, ns_act_kind kind);
void ns_act_backward(ns_real *dinp, const ns_real *dout, const ns_real *inp, size_t n,
                     ns_act_kind kind);

/* causal multi-head attention on projected q, k, v [nseq*T, d] (head h in columns h*d/H ..):
 * cat = softmax(q k^T / sqrt(d/H), causal) v per (sequence, head); probs [nseq, H, T, T] is
 * cached for the backward. The backward writes dq, dk, dv and uses dprobs (the size of probs)
 * as scratch. */
void ns_attention_forward(ns_real *cat, ns_real *probs, const ns_real *q, const ns_real *k,
                          const ns_real *v, int nseq, int T, int d, int H);
void ns_attention_backward(ns_real *dq, ns_real *dk, ns_real *dv, ns_real *dprobs,
                           const ns_real *dcat, const ns_real *probs, const ns_real *q,
                           const ns_real *k, const ns_real *v, int nseq, int T, int d, int H);

/* ---- placements: where the norms sit and what the skip carries, as data ------------------ */
typedef enum {
    NS_SPAN_NONE = 0,  /* block output = the sublayer stream */
    NS_SPAN_WRAP,      /* block output = x + stream (a clean skip around the whole block) */
    NS_SPAN_AGGREGATE  /* block output = x + N_span(sum of branch outputs) */
} ns_span_kind;

typedef enum {
    NS_ALPHA_BRANCH_WEIGHT = 0, /* the std of each branch's last weight matrix (W2, W_O) */
    NS_ALPHA_SPAN_GAIN,         /* the gain of the span norm */
    NS_ALPHA_LAST_NORM_GAIN,    /* the gain of the block's last sum norm (wrapped SpanNorm) */
    NS_ALPHA_OUT_NORM_GAIN      /* the gains of the branches' output norms (Sandwich) */
} ns_alpha_site;

/* what multiplies the stream on the skip path: v = a s + b (DeepNorm's up-weighted skip) */
typedef enum {
    NS_SKIP_ONE = 0,  /* a = 1 */
    NS_SKIP_DEEPNORM, /* a = (2L)^(1/4) */
    NS_SKIP_DSLM      /* a = lambda = sqrt(1 - 1/L) (DeepScaleLM, with NS_BRANCH_DSLM) */
} ns_skip_gain;

/* what multiplies the branch output on its way into the sum: v = a s + c b (DeepScaleLM's
 * lambda x + beta F; only rows without a span or a dual stream carry one) */
typedef enum {
    NS_BRANCH_ONE = 0, /* c = 1 */
    NS_BRANCH_DSLM     /* c = beta = 1/sqrt(L), so lambda^2 + beta^2 = 1 */
} ns_branch_gain;

/* the init of the value and output projections (W_V, W_O) and of the MLP's W1, W2: their std is
 * multiplied by 1, (8L)^(-1/4) (DeepNorm), (9L)^(-1/4) (T-Fixup) or sqrt(log(2L)) (Sub-LN);
 * W_Q, W_K, routers unscaled. DeepScaleLM's rule multiplies only the std of W2 (the MLP's and every expert's) by
 * 1/sqrt(ns_act_unit_ms(act)), so a unit-variance branch input gives a unit-variance output */
typedef enum {
    NS_INIT_PLAIN = 0,
    NS_INIT_DEEPNORM,
    NS_INIT_TFIXUP,
    NS_INIT_SUBLN,
    NS_INIT_DSLM
} ns_init_rule;
/* E[phi(u)^2] at u ~ N(0, 1) for the activation as ops_act.c computes it (GELU's tanh form),
 * to double precision; NAN for an unknown kind */
double ns_act_unit_ms(ns_act_kind act);

typedef struct {
    const char *name;         /* what --placement takes, e.g. "pre" */
    const char *title;        /* e.g. "PreNorm" */
    const char *paper;        /* where the placement comes from */
    const char *equation;     /* the MLP block, for --help and file attributes */
    const char *equation2;    /* the two-sublayer block (A attention, F MLP or mixture) */
    /* per sublayer, on stream s:  z = norm_in ? N(s) : s;  b = F(z);  b = norm_out ? N(b) : b;
     *                             s = s + b;  s = norm_sum ? N(s) : s */
    int norm_in, norm_out, norm_sum;
    ns_span_kind span;
    ns_alpha_site alpha_site;
    const char *alpha_on;           /* alpha_site in words, for --help */
    const char *default_scale_init; /* "none", "sqrtL", ... */
    ns_skip_gain skip_gain;
    ns_init_rule init_rule;
    int layer_scaled;  /* LayerNorm Scaling: the branch input N(s) times 1/sqrt(l) in block l */
    int gated;         /* ReZero: each branch output times a learnable scalar gate that starts
                        * at ns_config.gate_init */
    int block_skip;    /* B2T: the last sublayer's sum also adds the block input x (blocks of two
                        * sublayers only) */
    int final_norm;                 /* a language model needs a norm before its head: the stream
                                     * is not normalized at the top (pre, span) */
    /* /config/scheme and /config/span_variant, the attributes files have carried since before
     * --placement (which writes /config/placement): the family and the SpanNorm reading */
    const char *config_scheme, *config_span_variant;
    /* Mix-LN: a row that is a schedule of two others: `early` for blocks l <= floor(f L),
     * `late` after, f = ns_config.post_fraction (NULL: a row of one structure) */
    const char *early, *late;
    /* ResiDual: a second, unnormalized stream r beside the main one (r_0 = x_0, r += each
     * branch output; the stack's output is x_L + N_dual(r_L)); refused inside a schedule */
    int dual_stream;
    /* Admin: each sublayer's skip carries w_i x, w_i profiled from the run's own input
     * (ns_model_profile_begin/end); a model of this row refuses a forward until profiled */
    int profiled_skip;
    /* Sub-LN: a norm inside every branch before its last matrix, on the attention output before
     * W_O and on the MLP's (each expert's) activation before W2; sublayer j's branch becomes
     * W_O Nm(Attn_V(z)) or W2 Nm(phi(W1 z)) */
    int norm_mid;
    /* DeepScaleLM: the branch output times beta on its way into the sum (ns_branch_gain) */
    ns_branch_gain branch_gain;
} ns_placement;

/* The table, in a fixed order (plots give row i the i-th colour and marker; new rows go at the
 * end): NULL for an unknown name or an index past the end. */
const ns_placement *ns_placement_find(const char *name);
const ns_placement *ns_placement_at(int i);
int ns_placement_count(void);
int ns_placement_index(const ns_placement *p); /* its row, or -1 if not in the table */
/* 1 if placement p has a norm slot (norm_in, norm_out, norm_sum, norm_mid, a span norm or a final
 * norm), else 0: a norm kind means nothing without one (DyT is refused there) */
int ns_placement_has_norms(const ns_placement *p);

/* ---- schedules: a placement per block ----------------------------------------------------- */
/* Blocks take the entries' rows in order: entry i covers count[i] blocks; count 0 on the last
 * entry means "the rest". The text form is "post*8,pre": NAME[*COUNT] entries joined by commas.
 * Every block shares one parameter layout (the union of the entries' norm slots and gates), so
 * the entries must agree on what sets it up: no span kind, and one Scale Init site and init
 * rule. */
#define NS_SCHEDULE_MAX 16
typedef struct {
    int n; /* entries; 0: no schedule */
    const ns_placement *row[NS_SCHEDULE_MAX];
    int count[NS_SCHEDULE_MAX];
} ns_schedule;

/* what is wrong with a schedule (ns_schedule_parse, ns_schedule_check) */
typedef enum {
    NS_SCHEDULE_OK = 0,
    NS_SCHEDULE_SYNTAX,        /* an empty entry, or a count that is not an integer */
    NS_SCHEDULE_UNKNOWN,       /* an entry names no row */
    NS_SCHEDULE_COUNT,         /* a count below 1 */
    NS_SCHEDULE_FILL,          /* an entry without a count before the last */
    NS_SCHEDULE_TOO_MANY,      /* more than NS_SCHEDULE_MAX entries */
    NS_SCHEDULE_NESTED,        /* an entry that is itself a schedule (mixln) */
    NS_SCHEDULE_SHAPE,         /* entries that cannot share a layout (span, dual stream, alpha
                                * site, init, a profiled skip) */
    NS_SCHEDULE_EXCEEDS,       /* the counts exceed L (or leave no block to the last entry) */
    NS_SCHEDULE_SHORT,         /* the counts sum to less than L and the last entry has one */
    NS_SCHEDULE_BLOCK          /* an entry cannot build this block kind (b2t on MLP blocks) */
} ns_schedule_problem;

/* 1 if text is a schedule ("NAME*COUNT..." or several entries), not a single row's name */
int ns_schedule_is(const char *text);
/* text -> *out (names and counts only; L is checked by ns_schedule_check); on a problem,
 * *entry is the 0-based entry it concerns */
ns_schedule_problem ns_schedule_parse(const char *text, ns_schedule *out, int *entry);
/* the text form of s into out[n] ("post*8,pre") */
void ns_schedule_text(const ns_schedule *s, char *out, size_t n);
/* the placement of block `layer` (1..L) of a stack of L blocks; NULL out of range */
const ns_placement *ns_schedule_row(const ns_schedule *s, int layer, int depth);
/* the blocks' placements of a model: its schedule if it has one, Mix-LN's two rows split at
 * floor(post_fraction L) (either side may be empty), or the one row for every block */
void ns_schedule_resolve(const ns_placement *p, const ns_schedule *given, double post_fraction,
                         int depth, ns_schedule *out);

/* ---- models ------------------------------------------------------------------------------ */
typedef enum {
    NS_BLOCK_MLP = 0,         /* one sublayer: the MLP branch */
    NS_BLOCK_TRANSFORMER = 1, /* two sublayers: causal multi-head attention, then the MLP */
    NS_BLOCK_MOE = 2          /* two sublayers: causal multi-head attention, then a mixture of
                               * experts in place of the MLP */
} ns_block_kind;

/* 1 if placement p can build blocks of this kind (B2T needs two sublayers), else 0 */
int ns_placement_takes(const ns_placement *p, ns_block_kind block);
/* a schedule's problem at depth L for blocks of this kind (NS_SCHEDULE_OK if none); *entry
 * as ns_schedule_parse */
ns_schedule_problem ns_schedule_check(const ns_schedule *s, int depth, ns_block_kind block,
                                      int *entry);

typedef struct {
    ns_block_kind block;
    const ns_placement *placement; /* NULL when `schedule` gives every block its own */
    ns_schedule schedule;          /* n = 0: every block takes `placement` */
    double post_fraction;          /* Mix-LN (a row with early/late): the share f of blocks
                                    * l <= floor(f L) that take the early row, in [0, 1] */
    int depth;          /* L blocks */
    int width;          /* d */
    int hidden;         /* MLP hidden width (r d) */
    int ntok;           /* rows of the residual stream per forward (batch * seq) */
    int seq;            /* tokens per sequence (attention mixes within a sequence) */
    int heads;          /* attention heads; width must be divisible by it */
    /* Mixture of experts (NS_BLOCK_MOE): E experts, each an MLP of hidden width expert_hidden;
     * a softmax router picks top_k (1 or 2) per token. k = 2 renormalizes the two gates to sum
     * to 1; k = 1 uses the raw router probability (Switch). capacity > 0 caps each expert at
     * ceil(capacity k ntok / E) token slots (first choices first, then in token order); slots
     * over it are dropped and the token keeps only its residual for them. The backward adds the
     * gradients of aux_coef * (E sum_e f_e P_e) (Switch load balancing: f_e the share of routed
     * slots, P_e the mean router probability) and zloss_coef * mean(logsumexp(logits)^2). */
    int experts, expert_hidden, top_k;
    double capacity, aux_coef, zloss_coef;
    ns_act_kind act;
    ns_norm_kind norm;
    double norm_eps;
    double dyt_init;    /* DyT: the start of each norm slot's scalar a in tanh(a x) */
    double alpha;       /* the Scale Init factor, applied where the placement says */
    double gate_init;   /* the start of the branch gates of a gated placement (ReZero: 0) */
    /* Blocks resident at once (0: all L). With 0 < window < L the model keeps the parameters,
     * gradients and caches of `window` blocks (block l in slot (l-1) % window) and window + 1
     * residual streams (x_l in slot l % (window + 1)): a caller walking the stack in segments
     * draws each block's weights with ns_model_init_block and recomputes a segment's forward
     * before its backward, in memory independent of L. */
    int window;
    /* 0: each resident block has its own parameter-gradient slice, and the backward
     * accumulates into it. 1: every block shares one slice, and each block's backward first
     * zeroes it: for callers that read a block's gradients before the next block's backward
     * (propagate's per-layer metrics), saving the memory of every other block's gradients. */
    int shared_grads;
} ns_config;

/* block l's placement in a model of configuration c (1 <= l <= c->depth) */
const ns_placement *ns_config_block_placement(const ns_config *c, int layer);

/* Scale Init names: "none" (1), "sqrtL" (1/sqrt(L)), "sqrt2L" (1/sqrt(2L)) or a positive number */
int ns_scale_init_parse(const char *text, int depth, double *alpha);

typedef struct ns_model ns_model;

/* one parameter tensor of a block, e.g. "mlp.w1" [width x hidden] */
typedef struct {
    const char *name;
    int rows, cols;
    size_t offset;      /* into the block's parameter slice */
    int is_matrix;      /* a weight matrix (as opposed to a norm gain or bias) */
} ns_param_info;

int ns_model_create(ns_model **out, const ns_config *cfg);

/* Memory a caller reuses from one model to the next (sweep points, repeats): a model created in
 * a workspace takes its families from it, growing it when too small, and gives them back on
 * ns_model_free. The kernel zeroes a fresh page on its first touch far more slowly than memset
 * rewrites a resident page. A model in a workspace starts with zero gradients, as one of its
 * own does, but its parameters and caches hold what the last model left until ns_model_init and
 * the forward write them. One model at a time: creating a second while the first lives is
 * NS_ERR_INVALID. */
typedef struct ns_workspace ns_workspace;
int ns_workspace_create(ns_workspace **out);
void ns_workspace_free(ns_workspace *ws); /* accepts NULL; after its model is freed */
/* ns_model_create in ws (NULL: the model allocates its own) */
int ns_model_create_in(ns_model **out, const ns_config *cfg, ns_workspace *ws);
/* the bytes ns_model_create would allocate for cfg: per resident block (parameters, gradients,
 * caches), per resident stream, and the rest (scratch); NS_ERR_INVALID for a bad cfg */
int ns_model_bytes(const ns_config *cfg, size_t *per_block, size_t *per_stream, size_t *fixed);
void ns_model_free(ns_model *m); /* accepts NULL */
const ns_config *ns_model_config(const ns_model *m);

/* parameters of one block (the same list for every block) */
int ns_model_nparams(const ns_model *m);
const ns_param_info *ns_model_param_info(const ns_model *m, int i);
ns_real *ns_model_param(ns_model *m, int layer, int i);      /* layer 1..L */
ns_real *ns_model_param_grad(ns_model *m, int layer, int i);
size_t ns_model_param_count(const ns_model *m);              /* all resident blocks */

/* draw every parameter from its (seed, layer, name) stream; norms start at gain 1 (or alpha
 * where the placement puts it), bias 0 and (DyT) a = ns_config.dyt_init. A windowed model
 * (ns_config.window) draws the blocks of its first window. */
int ns_model_init(ns_model *m, uint64_t seed);
/* draw block l's parameters, the same values ns_model_init gives it, into its slot */
int ns_model_init_block(ns_model *m, uint64_t seed, int layer);
/* blocks resident at once: L, or the window */
int ns_model_window(const ns_model *m);

/* The residual stream x_0..x_L, each [ntok x width]; x_0 is written by the caller. In a
 * windowed model x_l shares its buffer with x_{l + window + 1}. */
ns_real *ns_model_stream(ns_model *m, int layer);
/* block l (1..L): x_l = block(x_{l-1}); caches what the backward needs */
int ns_model_block_forward(ns_model *m, int layer);
/* block l: given dy = dLoss/dx_l, *accumulate* dLoss/dx_{l-1} into dx and the block's parameter
 * gradients into its gradient slice (with shared_grads: overwrite the shared slice); dx and dy
 * are [ntok x width] and must not alias */
int ns_model_block_backward(ns_model *m, int layer, ns_real *dx, const ns_real *dy);
/* the output of the last branch of block l before it enters any norm or sum (F(.)) */
const ns_real *ns_model_branch_out(const ns_model *m, int layer);
/* sublayers per block (1 for MLP blocks, 2 for Transformer blocks: attention, MLP) */
int ns_model_nsublayers(const ns_model *m);
/* the output of sublayer j (0-based) of block l before it enters any norm or sum */
const ns_real *ns_model_sublayer_out(const ns_model *m, int layer, int j);
/* the residual stream between the first and second sublayer of block l (NULL for MLP blocks):
 * h = x + A(N(x)) (pre), N(x + A(x)) (post, span-wrapped), x + A(x) (span) */
const ns_real *ns_model_mid_stream(const ns_model *m, int layer);
/* ResiDual's dual stream r_l (0..L; r_0 is x_0's buffer), or NULL for a placement without one.
 * In a windowed model r_l shares its buffer with r_{l + window + 1}, as x_l does. */
ns_real *ns_model_dual_stream(ns_model *m, int layer);
/* dLoss/dr_l, the same for every l, once block L's backward has run (NULL: no dual stream) */
const ns_real *ns_model_dual_grad(const ns_model *m);
/* the attention probabilities of block l, [nseq, heads, seq, seq] (NULL for MLP blocks) */
const ns_real *ns_model_attn_probs(const ns_model *m, int layer);
/* the routing of block l's mixture of experts (NS_BLOCK_MOE; else NS_ERR_INVALID): router
 * probabilities [ntok, experts]; for each token its top_k experts, best first, [ntok, top_k];
 * and for each of those slots a row index, -1 where the capacity limit dropped it [ntok, top_k] */
int ns_model_routing(const ns_model *m, int layer, const ns_real **probs, const int **expert,
                     const int **row);
/* block l's auxiliary losses after its forward: the Switch load-balancing loss E sum_e f_e P_e
 * and the router z-loss mean(logsumexp(logits)^2), before their coefficients */
int ns_model_moe_losses(const ns_model *m, int layer, double *aux, double *zloss);
void ns_model_zero_grad(ns_model *m);
/* every block parameter (or gradient) of every layer, one contiguous family of *n values */
ns_real *ns_model_params_all(ns_model *m, size_t *n);

/* Profiled skip weights (Admin, a row with profiled_skip; NS_ERR_INVALID for other rows).
 * Sublayer i = 1 .. L nsub computes x_i = N(w_i x_{i-1} + G_i(x_{i-1})); a profiling pass sets
 * w_1 = 1 and w_i^2 = ms(x_0) + sum_{j<i} ms(G_j) (ms: the mean square of every entry) from a
 * forward with every w = 1. The caller writes x_0, calls ns_model_profile_begin, runs
 * ns_model_block_forward for blocks 1..L in order (a windowed model drawing each block's weights
 * first) and ns_model_profile_end. The weights are then constants (no gradient). Until they are
 * set, by a pass or ns_model_set_skip_weights (a checkpoint's), the blocks refuse to run. */
int ns_model_profile_begin(ns_model *m);
int ns_model_profile_end(ns_model *m); /* NS_ERR_INVALID unless blocks 1..L ran since begin */
/* the weights w_1 .. w_{L nsub} (block l's sublayer j at (l-1) nsub + j), NULL and *n = 0 for
 * a row without them */
const double *ns_model_skip_weights(const ns_model *m, size_t *n);
int ns_model_set_skip_weights(ns_model *m, const double *w, size_t n); /* each > 0, finite */

/* ---- language model ---------------------------------------------------------------------- */
/* A decoder-only LM around the block stack (lm.c): token embedding E [vocab, d] ~ N(0,1) and
 * learned positions P [seq, d] ~ N(0, 0.1^2); the blocks; a final norm where the placement needs
 * one; an LM head W [d, vocab] ~ N(0, 1/d), or tied to E (logits h E^T / sqrt(d)); mean softmax
 * cross-entropy over the blocks.ntok tokens. */
typedef struct {
    ns_config blocks; /* blocks.seq tokens per sequence; blocks.ntok = batch * seq */
    int vocab;
    int tied;
} ns_lm_config;

typedef struct ns_lm ns_lm;
int ns_lm_create(ns_lm **out, const ns_lm_config *cfg);
void ns_lm_free(ns_lm *lm); /* accepts NULL */
int ns_lm_init(ns_lm *lm, uint64_t seed);
ns_model *ns_lm_model(ns_lm *lm);
const ns_lm_config *ns_lm_config_of(const ns_lm *lm);
/* the LM's own tensors, t = 0 .. ns_lm_ntensors()-1 (NULL for an absent one, e.g. the head when
 * tied): embeddings, final norm, head; *w and *g point at the values and gradients */
int ns_lm_ntensors(const ns_lm *lm);
const ns_param_info *ns_lm_tensor(const ns_lm *lm, int t, ns_real **w, ns_real **g);
void ns_lm_zero_grad(ns_lm *lm); /* the LM's and the blocks' gradients */
/* the LM's own tensors (embeddings, final norm, head) as one contiguous family of *n values */
ns_real *ns_lm_params_all(ns_lm *lm, size_t *n);
/* ids and targets [ntok] in 0..vocab-1; the mean cross-entropy in *loss */
int ns_lm_forward(ns_lm *lm, const int *ids, const int *targets, double *loss);
/* accumulates every gradient of the loss of the last forward; stream_grad_ms, if not NULL,
 * receives the mean square of dLoss/dx_l for l = 0..L */
int ns_lm_backward(ns_lm *lm, double *stream_grad_ms);
/* the profiling pass of a stack with profiled skip weights (ns_model_profile_begin) on the input
 * of these ids; NS_ERR_INVALID for other stacks */
int ns_lm_profile(ns_lm *lm, const int *ids);
/* the softmax probabilities [ntok, vocab] of the last forward (overwritten by the backward) */
const ns_real *ns_lm_probs(const ns_lm *lm);

/* ---- optimizer ---------------------------------------------------------------------------- */
typedef struct {
    double beta1, beta2, eps;
} ns_adamw;
/* one AdamW step on n values (step counts from 1); the gradient is multiplied by grad_scale
 * (global-norm clipping); returns the sums of squared updates and squared weights */
void ns_adamw_update(ns_real *w, const ns_real *g, ns_real *m, ns_real *v, size_t n,
                     const ns_adamw *o, double lr, double wd, long step, double grad_scale,
                     double *du2, double *w2);
/* sum of x_i^2 in double, the same for any thread count */
double ns_sum_squares(const ns_real *x, size_t n);
/* linear warmup to lr_max over `warmup` steps, then cosine decay to lr_min at `total` */
double ns_lr_at(long step, long warmup, long total, double lr_max, double lr_min);

/* ---- memory ------------------------------------------------------------------------------- */
/* `bytes` zeroed bytes, 64-byte aligned, for a large array: on transparent huge pages where the
 * kernel offers them (one page fault per 2 MiB instead of per 4 KiB; core/bigmem.c says why);
 * NULL when out of memory. Free with ns_free_large (accepts NULL). */
void *ns_alloc_large(size_t bytes);
void ns_free_large(void *p);

/* ---- threads ------------------------------------------------------------------------------ */
/* n OpenMP threads (n < 1: keep the current count); the BLAS always runs single-threaded
 * because the core shares out fixed GEMM blocks itself, which keeps results bit-identical
 * across thread counts. ns_model_create calls it with 0. */
void ns_set_threads(int n);
/* the BLAS build and the kernel it chose, e.g. "OpenBLAS 0.3.21 ... Haswell" */
const char *ns_blas_info(void);

#ifdef __cplusplus
}
#endif
#endif
