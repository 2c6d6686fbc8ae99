/* theory_internal.h: internals shared by the files of the Transformer/MoE theory
 * (theory_transformer.c: the recursion; theory_attention.c: the attention moments;
 * theory_moe.c: the router's gate statistics). Not part of the API (that is theory.h).
 *
 * Every matrix is a T x T Gram matrix over the token positions of one sequence, row-major, in
 * double: entry (i, j) is the expectation of v_i . v_j / d for the vectors v of a stream (or of a
 * gradient). analysis/theory/README.md, section 9, derives every map. */
#ifndef NS_THEORY_INTERNAL_H
#define NS_THEORY_INTERNAL_H
#include "theory.h"

#include <stdint.h>

/* ---- quadrature (theory_gauss.c) ---------------------------------------------------------------- */
/* Gauss-Legendre nodes and weights on [0, 1] for n = 32, 48 or 64 nodes: GSL's tables, built
 * once (thread-safe) with the MLP theory's rules; NULL pointers for another n. The entry points
 * check ns_tf_quadrature_ready() (0 if GSL could not build them) before anything uses them. */
void ns_tf_gauss_legendre(int n, const double **x, const double **w);
int ns_tf_quadrature_ready(void);

/* ---- attention (theory_attention.c) -------------------------------------------------------- */
typedef struct ns_tf_attn ns_tf_attn; /* the model and its caches, for one prediction */

/* what the forward of one attention sublayer keeps for its backward */
typedef struct {
    double *Z;          /* [T*T] the attention input's Gram matrix */
    double *Qm;         /* [T*T] the query path's matrix (analysis/theory/README.md, section 9.3) */
    double *ratio;      /* [T*T] the softmax model's scaling of the query and key paths per pair */
    double *dm2;        /* [T] m2 - 1/n of each query (0 when uniform) */
    double *spread;     /* [T] D_i - O_i: the mean key variance minus the mean key covariance */
    uint64_t stream;    /* the Monte Carlo stream of this sublayer */
    double *fields;     /* [ns_tf_attn_fields] the Monte Carlo model's sampled P, kept by the
                         * forward for the backward; NULL: the backward draws them again from
                         * the same stream (the same numbers, at the forward's cost again) */
} ns_tf_attn_layer;

int ns_tf_attn_create(ns_tf_attn **out, ns_theory_attn kind, int T, int samples, uint64_t seed);
void ns_tf_attn_free(ns_tf_attn *a);
/* points st's arrays into mem, which holds 3 T*T + 2 T doubles; st->fields NULL */
void ns_tf_attn_layer_bind(ns_tf_attn_layer *st, double *mem, int T);
/* the doubles a layer's fields take (samples T*T for the Monte Carlo model, else 0) */
size_t ns_tf_attn_fields(const ns_tf_attn *a);
/* A = E[P Z P^T] (the output Gram before W_O's alpha^2); keeps what the backward needs in *st */
int ns_tf_attn_forward(ns_tf_attn *a, ns_tf_attn_layer *st, const double *Z, double *A,
                       uint64_t stream);
/* the Gram of the input gradient given the output gradient's Gram G (before alpha^2):
 * the value path E[P^T G P] plus the query and key paths through the softmax */
int ns_tf_attn_backward(ns_tf_attn *a, const ns_tf_attn_layer *st, const double *G, double *Gz);

/* ---- the blocks' rows (theory.c) ----------------------------------------------------------------- */
/* NS_OK and the row of every block of *in (a schedule's, Mix-LN's split, or the one row), once
 * *in is valid (theory.c checks the numbers, the norm and activation kinds and the schedule);
 * NS_ERR_INVALID otherwise */
int ns_theory_rows(const ns_theory_input *in, ns_schedule *rows);

/* ---- the O(1/d) terms the finite-width files share (theory_finite*.c) ------------------------ */
/* the one-block averages of a PostNorm MLP block y = N(x + F(x)) at width d (README section
 * 10.2): pi = gain (1 + a_pi/d) for an isotropic cotangent, tau = gain (1 + a_tau/d) for one
 * orthogonal to x (and 1 for LayerNorm, ell = 1), pi0 = gain (1 + a_pi0/d) for the first block,
 * whose input is i.i.d. N(0, 1); r = hidden/d */
typedef struct {
    double gain, a_pi, a_tau, a_pi0;
} ns_post_terms;
int ns_theory_post_terms(const ns_theory_input *in, double r, int ell, ns_post_terms *pt);
/* the same for y = N(w x + F(x)) = N(x + F(x)/w): the branch's W2 variance times 1/w^2 in a2
 * (alpha^2 / w^2), its W1 variance v/d (1 for PostNorm); on an input i.i.d. N(0, 1) for pi0 */
int ns_theory_post_terms_scaled(ns_act_kind act, double a2, double v, double r, int ell,
                                ns_post_terms *pt);
/* DeepNorm and Admin MLP stacks (README section 10.8): p_l, l = 0..L, at width in->width, on an
 * input i.i.d. N(0, 1) */
int ns_theory_finite_post(const ns_theory_input *in, double *p);
/* one branch of a PreNorm chain x <- x + F(N(x)) (README section 10.3): its output mean square
 * s = E|F|^2/d, backward gain chi, its hidden units' kurtosis kappa = E[phi^4]/E[phi^2]^2 - 1,
 * m4 = alpha^4 E[phi^2 phi'^2], cda = alpha^4 Cov(phi^2, phi'^2), r = hidden/d; mid: a norm
 * inside the branch (Sub-LN's) makes its gain chi (1 + mid/(r d)) at width d (0 without one) */
typedef struct {
    double s, chi, kappa, m4, cda, r, mid;
} ns_pre_branch;
/* one branch of a Sandwich chain x <- x + alpha No(B(Ni(x))) (README section 10.7): c0 =
 * alpha^2 chi/s, its backward gain over its output mean square (both at a unit input), and jx
 * = (E[phi^4]/E[phi^2]^2 - 2 E[phi^2 phi'^2]/(E[phi^2] E[phi'^2]))/r, its hidden units' share
 * of No's Jensen gap */
typedef struct {
    double c0, jx;
} ns_sandwich_branch;
/* the MLP's branch: moments at variance 1, W2's variance a2/H, r = H/d */
ns_sandwich_branch ns_sandwich_branch_of(const ns_gauss_moments *m, double a2, double r);
/* n branches, branch k = br[k % nbr], each adding a2 to the mean square from q0: p[0..n] to
 * O(1/d) relative to the top, and where t is not NULL t[0..n] at d -> infinity */
int ns_theory_sandwich_chain(const ns_sandwich_branch *br, int nbr, int n, double a2,
                             double q0, int ell, double d, double *p, double *t);
/* factor[l] = p_l / t_l, l = 0..n: the O(1/d) factor of the gradient mean square at width d over
 * its d -> infinity value t_l, for a chain of n branches on an input of mean square q0 whose
 * |x|^2/d has variance v0/d (2 q0^2 for i.i.d. N(0, q0); 0 for a normalized input); radial
 * (NULL: not wanted) gets R_l - 1, the cotangent's radial excess, whose share of factor[l] is
 * (R_l - 1)/d */
int ns_theory_pre_chain(const ns_pre_branch *br, int n, double q0, double v0, double d,
                        double *factor, double *radial);
/* multiplies the d -> infinity p[0..L] of a stack by the O(1/d) factors of its chain of L branches
 * br on the propagate protocol's input, i.i.d. N(0, in->q0), at width in->width */
int ns_theory_pre_chain_scale(const ns_pre_branch *br, const ns_theory_input *in, double *p);
/* the branch W2 phi(W1 z) on a unit-variance z, W2's variance times a2, W1's v/d (moments m of phi
 * at variance v: s and kappa as they are, chi, m4 and cda each with one factor v) */
ns_pre_branch ns_pre_branch_of(const ns_gauss_moments *m, double a2, double v, double r);
/* Mix-LN and schedules of PostNorm blocks 1..m, PreNorm blocks m+1..L (1 <= m < L): m, else -1
 * (theory_finite_mix.c) */
int ns_theory_mix_split(const ns_theory_input *in);
/* their p_l, l = 0..L, at width in->width on an input i.i.d. N(0, 1) (README section 10.11) */
int ns_theory_finite_mix(const ns_theory_input *in, int m, double *p);
/* Sub-LN's MLP stack at width in->width: multiplies the d -> infinity p[0..L] by the O(1/d)
 * factors of its PreNorm chain (theory_finite_subln.c) */
int ns_theory_finite_subln(const ns_theory_input *in, double *p);
/* DeepScaleLM's MLP stack at width in->width (README section 10.9): multiplies the d -> infinity
 * p[0..L] by the O(1/d) factors of the equivalent PreNorm chain; depth >= 2 (theory_finite_pre.c) */
int ns_theory_finite_dslm(const ns_theory_input *in, double *p);
/* at in->base.width > 0, multiplies a Transformer prediction's grad_ms by the norms' O(1/d)
 * factors (the trajectories' standard error of the result: theory_trajectory.c) and sets out->finite where they are derived (PostNorm and PreNorm
 * stacks, README section 9.10); leaves out at d -> infinity otherwise */
int ns_tf_finite(const ns_theory_tf_input *in, const ns_schedule *rows, ns_theory *out);

/* ResiDual's MLP stack (theory_residual.c, README section 2.14): p[0..L] = p_l / p_L to O(1/d)
 * at width in->width; q0 = 1, depth <= NS_THEORY_RESIDUAL_FINITE_MAX_DEPTH (its Gram
 * quantities cost O(L^3)) */
#define NS_THEORY_RESIDUAL_FINITE_MAX_DEPTH 512
int ns_theory_finite_residual(const ns_theory_input *in, double *p);

/* ---- the score-field trajectory Monte Carlo (theory_trajectory.c) ---------------------------- */
/* points a Transformer prediction's arrays into one allocation base, in this order: act_ms,
 * grad_ms, cos_tokens (L+1 each), cos_layer, branch_ms, attn_out_ms, mlp_out_ms, mid_act_ms (L
 * each), then with dual ResiDual's dual_act_ms, dual_grad_ms (L+1 each); sets t->depth */
void ns_tf_arrays_at(ns_theory *t, double *base, int L, int dual);
/* ns_theory_transformer for NS_THEORY_ATTN_TRAJECTORY, on an input it has validated, the norms'
 * O(1/d) factors of ns_tf_finite included (their standard error needs every trajectory) */
int ns_tf_trajectories(const ns_theory_tf_input *in, const ns_schedule *rows, ns_theory *out);

/* ---- mixture-of-experts gates (theory_moe.c) ------------------------------------------------- */
typedef struct ns_tf_gates ns_tf_gates;
int ns_tf_gates_create(ns_tf_gates **out, int experts, int top_k);
void ns_tf_gates_free(ns_tf_gates *g);
/* at router logit variance s and router-input correlation rho of two tokens: nu = E[sum over the
 * experts both chose of g_ie g_je] and r = E[sum over those experts x and all logits e of
 * (d g_ix / d l_ie)(d g_jx / d l_je)]; rho = 1 gives the single-token values */
int ns_tf_gates_at(ns_tf_gates *g, double s, double rho, double *nu, double *r);

/* ---- tables (theory_gauss.c) ------------------------------------------------------------------- */
/* cubic Lagrange interpolation at grid coordinate x in [0, n - 1] of two tables of n values on a
 * uniform grid, v[0..n-1] and v[n..2n-1]: the four nodes around x (kept inside the table) */
void ns_tf_lagrange4(const double *v, int n, double x, double *a, double *b);

#endif
