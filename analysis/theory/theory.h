/* theory.h: mean-field theory of residual MLP stacks at initialization.
 *
 * Predicts, layer by layer, what `normscope propagate` measures (act_ms, grad_ms, cos_tokens,
 * cos_layer, branch_ms) for the MLP block F(z) = W2 phi(W1 z) under the placements of
 * core/placement.c, exactly as the width d -> infinity (gradient-independence assumption for the
 * backward); at a finite width d the gradient mean square of PreNorm, PostNorm and SpanNorm also
 * carries its O(1/d) correction (theory_finite.c; analysis/theory/README.md, section 10).
 * Derivations, assumptions and the measured agreement are in analysis/theory/README.md.
 *
 * Conventions as in libnormscope: functions return an int status (NS_OK = 0, NS_ERR_*), never
 * print or exit. The Gaussian expectations return a plain double and NAN for an invalid argument
 * (s < 0, |rho| > 1, NaN, an unknown activation) or if their quadrature tables cannot be set up. */
#ifndef NS_THEORY_H
#define NS_THEORY_H
#include "normscope.h" /* ns_act_kind, ns_norm_kind, ns_placement */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *placement;  /* the name of a row of the placement table that has a form (NULL
                             * with a schedule) */
    ns_schedule schedule;   /* n > 0: a row per block (ns_config.schedule); ns_theory_mlp
                             * composes the rows' forms, one recursion step per block */
    double post_fraction;   /* Mix-LN's split (ns_config.post_fraction), in [0, 1] */
    ns_act_kind act;
    ns_norm_kind norm;
    int depth;              /* L >= 1 */
    int width;              /* d: 0 means d = infinity; otherwise d >= 3, and ns_theory_mlp
                             * adds the O(1/d) correction to grad_ms where it is derived
                             * (ns_theory_finite_covers) */
    int hidden;             /* H: the d -> infinity theory does not depend on it (any H >= 0);
                             * the O(1/d) correction does, through r = H/d, and needs H >= 1 */
    double alpha;           /* Scale Init factor, applied where the placement puts it (> 0) */
    double gate;            /* the branch gate's start for a gated placement (ReZero: w in
                             * y = x + w F(x), ns_config.gate_init); 0 by default, when the
                             * stack is the identity; other forms ignore it */
    double q0, rho0;        /* input mean square (> 0) and token correlation (in [-1, 1]);
                             * 1 and 0 for the propagate protocol */
    double norm_eps;        /* the norms' epsilon, x / sqrt(ms + eps) (>= 0; 0 by default):
                             * only ResiDual's output act_ms at finite width is precise enough
                             * to see it */
} ns_theory_input;

typedef struct {
    int depth;
    double *act_ms, *grad_ms, *cos_tokens;  /* [L+1]; grad_ms relative to p_L = 1 */
    double *cos_layer, *branch_ms;          /* [L], entry l-1 for block l */
    int exact;      /* 1: exact as d -> infinity; 0: approximate */
    int finite;     /* 1: grad_ms carries the O(1/d) correction at width d, and so does act_ms
                     * for span-wrapped, rezero, tfixup and residual (for the other forms it is
                     * exact in expectation); 0: d -> infinity */
    char model[512]; /* one line naming the model */
    /* Transformer and MoE stacks only (NULL for MLP stacks), [L], entry l-1 for block l: the
     * mean squares of the attention and MLP (or MoE) sublayer outputs before any norm or sum,
     * and of the stream between the sublayers; branch_ms then equals mlp_out_ms */
    double *attn_out_ms, *mlp_out_ms, *mid_act_ms;
    /* ResiDual only (NULL otherwise), [L+1]: the dual stream's mean square r_l and its gradient's
     * dLoss/dr_l, relative to the top's p_L = 1 as grad_ms */
    double *dual_act_ms, *dual_grad_ms;
    /* the admin form only (NULL otherwise), [L]: the predicted profiled skip weight w_l of
     * block l, entry l-1 */
    double *skip_weight;
    /* NS_THEORY_ATTN_TRAJECTORY only (NULL otherwise), [L+1]: the Monte Carlo standard error
     * of act_ms, grad_ms and cos_tokens (over trajectories) */
    double *act_ms_se, *grad_ms_se, *cos_tokens_se;
} ns_theory;

/* The block forms the theory covers. A placement row (core/placement.c) has a form when its
 * structure is one of these, whatever its name; rows of other structures (B2T's block_skip) have
 * no MLP theory. The Transformer/MoE theory does not use the forms: it interprets each block's
 * row as core/model.c does (ns_theory_transformer_covers). */
typedef enum {
    NS_THEORY_PRE = 0,      /* norm_in:            y = x + F(N(x)),      alpha on the std of W2 */
    NS_THEORY_POST,         /* norm_sum:           y = N(x + F(x)),      alpha on the std of W2 */
    NS_THEORY_SPAN,         /* aggregate span:     y = x + N(F(x)),      alpha = gain of N */
    NS_THEORY_SPAN_WRAPPED, /* norm_sum, wrapped:  y = x + N(x + F(x)),  alpha = gain of N */
    NS_THEORY_SANDWICH,     /* norm_in + norm_out: y = x + No(F(Ni(x))), alpha = gain of No */
    NS_THEORY_DEEPNORM,     /* norm_sum, skip gain, init rule: y = N(a x + F(x)), a = (2L)^(1/4),
                             * W1 std b/sqrt(d), W2 std alpha b/sqrt(H), b = (8L)^(-1/4) */
    NS_THEORY_LNS,          /* norm_in, layer_scaled: y = x + F(N(x)/sqrt(l)), alpha on W2 */
    NS_THEORY_REZERO,       /* gated, no norms:    y = x + w F(x), w = gate, alpha on W2 */
    NS_THEORY_TFIXUP,       /* init rule, no norms: y = x + F(x), W1 std c/sqrt(d), W2 std
                             * alpha c/sqrt(H), c = (9L)^(-1/4) */
    NS_THEORY_RESIDUAL,     /* dual stream (ResiDual): x = N(x + F(x)), r = r + F(x); output
                             * x_L + Nf(r_L) (theory_residual.c) */
    NS_THEORY_ADMIN,        /* norm_sum, profiled skip: y = N(w_l x + F(x)), w_1 = 1, w_l^2 =
                             * q0 + the branch mean squares of blocks < l with every w = 1 */
    NS_THEORY_SUBLN,        /* norm_in, norm_mid, init rule: y = x + W2 Nm(phi(W1 N(x))), W1 std
                             * g/sqrt(d), W2 std alpha g/sqrt(H), g^2 = log(2L) (Sub-LN) */
    NS_THEORY_DSLM          /* norm_in, skip and branch gains, init rule (DeepScaleLM):
                             * y = lambda x + beta F(N(x)), beta^2 = 1/L = 1 - lambda^2, W2 std
                             * alpha/sqrt(H E[phi^2]) */
} ns_theory_form;
#define NS_THEORY_NFORMS 13

/* 1 if the Transformer/MoE theory (ns_theory_transformer) has the block equations of row p:
 * every row, B2T's included, which has no MLP form (Sub-LN in Transformer stacks only: its
 * per-expert mid norms are not modelled); for Mix-LN, both of its rows */
int ns_theory_transformer_covers(const ns_placement *p);

/* NS_OK and the form of placement row p, or NS_ERR_INVALID if the theory has none for it */
int ns_theory_form_of(const ns_placement *p, ns_theory_form *form);
/* NS_OK and the form of the placement if *in is something the theory covers with one form for
 * every block (a row; Mix-LN or a schedule only when all its blocks take one row), else
 * NS_ERR_INVALID */
int ns_theory_validate(const ns_theory_input *in, ns_theory_form *kind);
/* NS_OK and the form of block l (1..L) if *in is something the MLP recursion covers block by
 * block (every block's row has a form), else NS_ERR_INVALID */
int ns_theory_block_form(const ns_theory_input *in, int layer, ns_theory_form *form);

/* The layer-by-layer prediction. Allocates the arrays of *out (one allocation); free with
 * ns_theory_free. On error *out is left empty (NULL arrays) and a status is returned:
 * NS_ERR_INVALID for a bad input, NS_ERR_NOMEM, NS_ERR_NUMERIC if a quadrature failed. */
int ns_theory_mlp(const ns_theory_input *in, ns_theory *out);
/* ns_theory_mlp's recursion for the ResiDual form (theory_residual.c; README section 2.14):
 * the main stream's metrics and the dual stream's, exact as d -> infinity */
int ns_theory_residual(const ns_theory_input *in, ns_theory *out);
void ns_theory_free(ns_theory *t); /* accepts NULL and an already freed or empty struct */

/* ---- finite width (theory_finite.c; analysis/theory/README.md, section 10) --------------- */
/* 1 if the O(1/d) correction is derived for *in: pre, span, span-wrapped, sandwich, lns, dslm
 * (L >= 2), post with q0 = 1 (x_0 ~ N(0, 1), the propagate protocol), deepnorm and admin with
 * q0 = 1 (theory_finite_post.c), rezero and tfixup (theory_finite_nonorm.c), residual with q0 = 1,
 * alpha > 0 and depth <= 512 (theory_residual.c), and
 * with q0 = 1 mixln and schedules of post blocks below pre blocks (theory_finite_mix.c), at
 * width >= 3 with hidden >= 1 */
int ns_theory_finite_covers(const ns_theory_input *in);
/* p[0..L] = p_l / p_L to O(1/d) at width d = in->width, r = in->hidden / in->width;
 * NS_ERR_INVALID where ns_theory_finite_covers is 0 (span-wrapped: ns_theory_finite_wrapped) */
int ns_theory_finite_grad(const ns_theory_input *in, double *p);
/* span-wrapped (theory_finite_wrapped.c): q[0..L] = act_ms and p[0..L] = p_l / p_L, both to
 * O(1/d) (its act_ms is not exact at finite width); NS_ERR_INVALID for another placement */
int ns_theory_finite_wrapped(const ns_theory_input *in, double *q, double *p);
/* rezero and tfixup (theory_finite_nonorm.c): p[0..L] = p_l / p_L and, where q is not NULL,
 * q[0..L] = act_ms, both to O(1/d) (for relu and the identity both are the d -> infinity values,
 * exact at every width); NS_ERR_INVALID for another placement */
int ns_theory_finite_nonorm(const ns_theory_input *in, double *q, double *p);

/* Gaussian moments at u ~ N(0, s), s > 0, and s-derivatives (taken under the Gaussian: the
 * derivative of N(u; 0, s) in s as a weight, so exact for relu's step phi') */
typedef struct {
    double phi2, dphi2;          /* E[phi^2], E[phi'^2] */
    double phi4, phi2_dphi2;     /* E[phi^4], E[phi^2 phi'^2] */
    double u_phi_dphi, dphi2_u2; /* E[u phi phi'], E[phi'^2 u^2] */
    double phi2_ds, phi2_ds2;    /* d/ds and d^2/ds^2 of E[phi^2] */
    double dphi2_ds, dphi2_ds2;  /* d/ds and d^2/ds^2 of E[phi'^2] */
} ns_gauss_moments;
int ns_gauss_moments_at(ns_act_kind act, double s, ns_gauss_moments *m);
/* Sub-LN's mid norm over H hidden units phi(u), u ~ N(0, s) (ell = 1: LayerNorm, which subtracts
 * the units' mean; 0: RMSNorm): to first order in 1/H the branch's backward gain is its
 * d -> infinity value times 1 + mid/H (README section 10.12) */
int ns_theory_subln_mid_excess(ns_act_kind act, int ell, double s, double *mid);

/* ---- closed forms (analysis/theory/README.md, section 3) ---------------------------------- */
/* No recursion over the token kernel: only q_L and p_0/p_L, from 1-D Gaussian expectations and
 * Gamma functions. Each is either exact (the same number the recursion gives, up to rounding) or
 * a rigorous bound on it; the flags say which.
 *   pre          q_L = q0 + L alpha^2 E[phi(u)^2], u ~ N(0,1)                      (exact)
 *                p_0/p_L = Gamma(L+a+b) Gamma(a) / (Gamma(a+b) Gamma(L+a)) with
 *                a = q0/s, b = c/s, s = alpha^2 E[phi^2], c = alpha^2 E[phi'^2]      (exact)
 *   post         q_L = 1;  p_0/p_L = r_1 r^(L-1),  r = (1 + alpha^2 E[phi'^2]) /
 *                (1 + alpha^2 E[phi^2]) at u ~ N(0,1), r_1 the same at u ~ N(0,q0)   (exact)
 *   span         q_L = q0 + L alpha^2                                               (exact)
 *                p_0/p_L = prod_l (1 + alpha^2 E[phi'^2]/E[phi^2] at u ~ N(0, q0 + l alpha^2))
 *                (exact; a Gamma ratio for relu and linear); grad_ratio_upper =
 *                exp(L alpha^2 max_l E[phi'^2]/E[phi^2]), which is e^(1/q0) for relu
 *                or linear with alpha = 1/sqrt(L) whatever L is
 *   span-wrapped q0 + L alpha^2 <= q_L <= (sqrt(q0) + L alpha)^2                     (bounds)
 *                p_0/p_L: no closed form (grad_ratio = NAN, grad_exact = 0); for relu and
 *                linear p_0/p_L <= q_L/q0 <= (sqrt(q0) + L alpha)^2/q0 (grad_ratio_upper),
 *                with equality in the first at d = infinity; NAN for GELU
 *   sandwich     q_L = q0 + L alpha^2 (exact); p_0/p_L the Gamma ratio of pre with
 *                a = q0/alpha^2, b = E[phi'^2]/E[phi^2] at u ~ N(0,1)                  (exact)
 *   deepnorm     q_L = 1; p_0/p_L = r_1 r^(L-1) as post with the skip gain a^2 and the branch's
 *                variance b^2 q (exact)
 *   admin        q_L = 1; p_0/p_L = r_1 G(x + L - 1) G(y) / (G(x) G(y + L - 1)), r_1 as post,
 *                x = (W + alpha^2 E[phi'^2])/s, y = W/s + 1, s = alpha^2 E[phi^2] at u ~ N(0,1),
 *                W = q0 + alpha^2 E[phi^2] at u ~ N(0,q0) = w_2^2: a power of L,
 *                L^(E[phi'^2]/E[phi^2] - 1) (exact; 1 for relu and linear at q0 = 1)
 *   subln        q_L = q0 + L g^2 alpha^2, g^2 = log(2L); p_0/p_L the Gamma ratio of pre with
 *                a = q0/(g^2 alpha^2), b = g^2 E[phi'^2]/var at u ~ N(0, g^2), var = E[phi^2] -
 *                E[phi]^2 (LayerNorm mid norm) or E[phi^2] (RMSNorm) (exact)
 *   lns, rezero, tfixup: q_L and p_0/p_L from the scalar recursion of q alone (1-D Gaussian
 *                expectations, no token kernel; exact); for relu and linear in closed form:
 *                lns q_L = q0 + alpha^2 c H_L (H_L the harmonic number), rezero
 *                q0 (1 + w^2 alpha^2 c)^L, tfixup q0 (1 + alpha^2 c/(9L))^L, c = E[phi^2] at
 *                unit variance (1/2 relu, 1 linear)
 * For relu and linear at d = infinity every placement has p_0/p_L = q_L/q0
 * (analysis/theory/README.md, section 2.5), but subln with LayerNorm on relu (b = pi/(pi - 1)).
 * All are the d -> infinity values whatever in->width is: the O(1/d) correction is a recursion
 * (ns_theory_finite_grad), and PostNorm's is pi0 tau^(L-1) (README section 10.2). */
typedef struct {
    double act_ms_L;        /* q_L, exact if act_ms_exact, else an upper bound */
    double act_ms_L_lower;  /* a lower bound on q_L (equal to act_ms_L when exact) */
    int act_ms_exact;
    double grad_ratio;      /* p_0 / p_L (p_L = 1), exact if grad_exact; NAN if none */
    double grad_ratio_upper;/* an upper bound on p_0 / p_L (= grad_ratio when that is the best
                             * available closed form); NAN if none */
    int grad_exact;
} ns_theory_bounds;

int ns_theory_bounds_mlp(const ns_theory_input *in, ns_theory_bounds *b);
/* the act_ms entry alone: q_L exact (every form but span-wrapped) or its upper bound
 * (span-wrapped) */
int ns_theory_bound_act_ms(const ns_theory_input *in, double *q_L_bound);
/* the grad entry alone: p_0/p_L exact (every form but span-wrapped); NS_ERR_INVALID for
 * span-wrapped */
int ns_theory_bound_grad_ratio(const ns_theory_input *in, double *p0_over_pL);

/* ---- Transformer and MoE stacks at initialization (approximate; theory_transformer.c) ----- */
/* Block equations as core/model.c runs them: each block's row interpreted field by field (norm_in
 * with LNS's 1/sqrt(l), the branch with its init rule's factors on W_V, W_O, W1, W2, norm_out,
 * ReZero's gate, the skip weight of DeepNorm or Admin (profiled in a first pass with every
 * weight 1, as the model does), norm_sum, B2T's block skip, the wrapped or aggregate span), so
 * a schedule (Mix-LN) takes a row per block; causal attention with W_Q, W_K, W_V, W_O ~
 * N(0, 1/d) and scores scaled by 1/sqrt(d/H). The recursion tracks the T x T Gram matrices of
 * the stream and of the gradient over the token positions of a sequence, so every position has
 * its own mean square and every pair its own covariance (causal averaging makes them differ). d -> infinity with the
 * head width d/H -> infinity, gradient independence, and the Gram matrices replaced by their
 * expectations; the scores stay random in that limit (unit variance per head), and the attention
 * model says how their softmax is averaged. NS_THEORY_ATTN_TRAJECTORY instead keeps each
 * sequence's Gram random and its queries correlated (section 9.9). The derivation and the
 * measured accuracy are in analysis/theory/README.md, section 9; the prediction's exact flag
 * is 0. */
typedef enum {
    /* default: the uniform causal mean 1/(i+1) plus the softmax's fluctuations: each query's
     * weights are taken as exchangeable, with the second moments of a softmax of i+1 i.i.d.
     * Gaussian scores of the variance the Gram matrix gives (1-D integrals, tabulated) */
    NS_THEORY_ATTN_SOFTMAX = 0,
    NS_THEORY_ATTN_UNIFORM,    /* P_ij = 1/(i+1) for j <= i, in every moment */
    /* the d -> infinity expectation itself, by sampling the Gaussian score field: exact up to
     * Monte Carlo error (mc_samples score matrices per sublayer), and slow: a reference */
    NS_THEORY_ATTN_MONTE_CARLO,
    /* the score-field trajectory Monte Carlo (theory_trajectory.c): up to mc_samples
     * trajectories (0: 256), each drawing its own H = heads score fields per sublayer and
     * carrying its own Gram matrices through every block, forward and backward; the prediction
     * is the mean over trajectories, with its standard errors in act_ms_se, grad_ms_se,
     * cos_tokens_se. The run stops early, after 32 or more, once every standard error is below
     * 0.5% of its value (the model line says how many ran). Queries stay correlated and each
     * sequence's Gram stays random, as they are at d -> infinity with H fixed
     * (analysis/theory/README.md, section 9.9). Deterministic for a given mc_seed. */
    NS_THEORY_ATTN_TRAJECTORY
} ns_theory_attn;

typedef struct {
    ns_theory_input base;  /* placement, act, norm, depth, alpha, q0, rho0; width 0 for
                            * d -> infinity, or d > 0 for the norms' O(1/d) terms where they
                            * are derived (Transformer stacks of pre, lns and dslm, and with
                            * q0 = 1 of post, deepnorm and mixln, which also read hidden;
                            * out->finite then says so; README section 9.10) */
    ns_block_kind block;   /* NS_BLOCK_TRANSFORMER or NS_BLOCK_MOE */
    int seq;               /* T tokens per sequence, 1..NS_THEORY_MAX_SEQ */
    ns_theory_attn attn;
    int mc_samples;        /* NS_THEORY_ATTN_MONTE_CARLO: samples per sublayer (0: 256);
                            * NS_THEORY_ATTN_TRAJECTORY: at most this many trajectories
                            * (0: 256) */
    uint64_t mc_seed;      /* NS_THEORY_ATTN_MONTE_CARLO, _TRAJECTORY: seed of the samples */
    size_t mc_keep_bytes;  /* NS_THEORY_ATTN_MONTE_CARLO, _TRAJECTORY: memory in which the
                            * forward keeps the sampled attention matrices for the backward,
                            * per prediction (per trajectory); the blocks beyond it draw them
                            * again, with the same numbers (0: NS_THEORY_MC_KEEP) */
    int heads;             /* NS_THEORY_ATTN_TRAJECTORY: H >= 1 attention heads (score fields
                            * per sublayer); the other models do not depend on H */
    int experts, top_k;    /* NS_BLOCK_MOE: E >= 1 experts, top-k 1 (raw router probability)
                            * or 2 (renormalized), k <= E; no capacity limit, no auxiliary losses */
} ns_theory_tf_input;

#define NS_THEORY_MAX_SEQ 256
/* mc_keep_bytes' default: every block's fields up to T = 128 at L = 64, H = 4 (32 MiB) */
#define NS_THEORY_MC_KEEP ((size_t)64 << 20)
/* the most trajectories `normscope propagate` and `verify` draw (NS_THEORY_ATTN_TRAJECTORY):
 * a standard error near 1% of grad_ms for span, alpha = 1, L = 16, T = 32, where the gradient is
 * heavy-tailed (analysis/theory/README.md, section 9.9) */
#define NS_THEORY_TRAJECTORIES 128

/* The layer-by-layer prediction, with attn_out_ms, mlp_out_ms, mid_act_ms filled; free with
 * ns_theory_free. cos_tokens is NAN for T = 1 (no pairs). Status codes as ns_theory_mlp. */
int ns_theory_transformer(const ns_theory_tf_input *in, ns_theory *out);

/* The softmax of n i.i.d. N(0, s2) scores: m2 = E[sum_j P_j^2], m3 = E[sum_j P_j^3] and
 * m22 = E[(sum_j P_j^2)^2], by 1-D integrals (analysis/theory/README.md, section 9.4);
 * n >= 1, s2 >= 0 */
int ns_theory_softmax_moments(int n, double s2, double *m2, double *m3, double *m22);

/* Router gate statistics of a mixture of experts (Monte Carlo over the router logits, fixed
 * seed, 8192 draws): for two tokens whose router inputs have correlation rho and logit
 * variance s, nu = E[sum over experts chosen by both of g_ie g_je] (rho = 1: the gate factor
 * nu = E[sum_chosen g_e^2] of analysis/theory/README.md, section 9.5) and r, the same for the
 * gate Jacobian (the router's own gradient path, section 9.5) */
int ns_theory_moe_gates(int experts, int top_k, double s, double rho, double *nu, double *r);

/* ---- Gaussian expectations (exposed for tests and for later Transformer theory) ---------- */
/* u ~ N(0, s); (u1, u2) jointly Gaussian with variances s and correlation rho. phi is the
 * activation exactly as core/ops_act.c computes it (GELU in its tanh form; relu'(0) = 0).
 * Accuracy (tests/theory/test_theory.c; analysis/theory/README.md, section 4): relu and linear
 * 3e-13 relative at every rho in [-1, 1], including within 1e-6 of +-1; GELU 2e-14 relative to
 * E[phi^2] for s <= 10, and at s = 100 (1000) 3e-11 (3e-10) for E[phi phi], 4e-9 (1e-6) for
 * E[phi' phi'], where phi' approaches a step of width 1/sqrt(s). */
double ns_gauss_phi(ns_act_kind act, double s);    /* E[phi(u)] */
double ns_gauss_phi2(ns_act_kind act, double s);   /* E[phi(u)^2] */
double ns_gauss_dphi2(ns_act_kind act, double s);  /* E[phi'(u)^2] */
double ns_gauss_kernel(ns_act_kind act, double s, double rho);  /* E[phi(u1) phi(u2)] */
double ns_gauss_dkernel(ns_act_kind act, double s, double rho); /* E[phi'(u1) phi'(u2)] */

/* The same rules for any f, g that are smooth except possibly at u = 0 (a kink or a jump there
 * is integrated exactly: the rules split at it). ctx is passed through. */
typedef double (*ns_gauss_fn)(double u, void *ctx);
double ns_gauss_expect(ns_gauss_fn f, void *ctx, double s);  /* E[f(u)] */
double ns_gauss_expect2(ns_gauss_fn f, void *fctx, ns_gauss_fn g, void *gctx, double s,
                        double rho);                         /* E[f(u1) g(u2)] */
/* phi and phi' as doubles (the functions the expectations above integrate) */
double ns_act_phi(ns_act_kind act, double u);
double ns_act_dphi(ns_act_kind act, double u);

#ifdef __cplusplus
}
#endif
#endif
