#ifndef NS_METRICS_H
#define NS_METRICS_H
#include <stddef.h>
/* Per-layer metrics of a residual stream. Activations are float32, row-major,
 * x is [nseq, seq, width] (a token is one row of `width` floats); results in double.
 *
 * All sums are accumulated in double. Where OpenMP parallelizes (over chunks, tokens or
 * sequences), per-row partial values are stored and summed serially in index order, so every
 * result is bit-identical for any OpenMP thread count. (eff_rank additionally depends on the
 * LAPACK library's own threading: OpenBLAS's dsyev rounds ~1 ulp differently with
 * OPENBLAS_NUM_THREADS. With the pthread OpenBLAS that does not depend on the OpenMP thread count;
 * an OpenMP-built OpenBLAS goes single-threaded inside our parallel region and may differ.)
 *
 * The double-returning functions return NAN for an empty input (n == 0, ntok/nseq/seq/width < 1),
 * a NULL pointer, or an allocation failure of their small scratch arrays. */

/* mean of x[i]^2 over n elements (act_ms, grad_ms, branch_ms) */
double ns_metric_mean_square(const float *x, size_t n);
/* mean over the ntok tokens of the (biased, 1/width) variance across the features (act_var) */
double ns_metric_act_var(const float *x, int ntok, int width);
/* mean cosine similarity over the seq*(seq-1)/2 distinct token pairs of each sequence, averaged
 * over sequences (cos_tokens). A zero token has no direction and counts as cosine 0 with everything.
 * Computed in O(seq*width) per sequence as (|sum_i u_i|^2 - sum_i |u_i|^2) / (seq (seq-1)), u_i = x_i/|x_i|.
 * seq == 1: returns NAN (no pairs). */
double ns_metric_cos_tokens(const float *x, int nseq, int seq, int width);
/* effective rank (Roy & Vetterli 2007) of each sequence's [seq x width] matrix, averaged over
 * sequences: exp(-sum p_i ln p_i) with p_i = s_i / sum_j s_j over the singular values s_i.
 * Computed from the eigenvalues of the smaller Gram matrix (X X^T if seq <= width, else X^T X),
 * in double, with LAPACKE_dsyev (or dsyevd); tiny negative eigenvalues from rounding are clamped to 0.
 * More precisely, eigenvalues <= max(seq,width) * DBL_EPSILON * lambda_max are set to 0: below that
 * level a Gram eigenvalue is rounding noise, and its square root (~1e-8 s_max) would otherwise add a
 * spurious O(1e-7) per value to the entropy (a rank-1 matrix would not give exactly 1).
 * An all-zero sequence has effective rank 0. Returns 0 on success, nonzero (a LAPACKE info or -1
 * for an allocation failure or invalid arguments) on failure, result in *out (NAN on failure).
 * If several sequences fail, the info of the lowest-index one is returned. */
int ns_metric_eff_rank(const float *x, int nseq, int seq, int width, double *out);
/* mean over the ntok tokens of cos(x_prev_i, x_i) (cos_layer); a zero token counts as cosine 0 */
double ns_metric_cos_layer(const float *x_prev, const float *x, int ntok, int width);
/* attention entropy (nats): for probs [nseq, heads, seq, seq] (row i holds query i's causal
 * distribution over keys j <= i), the entropy -sum_j p ln p of every row, averaged over sequences
 * and query positions into per_head[heads]; returns the mean over heads (attn_entropy). Query 0
 * attends to itself only and contributes entropy 0; uniform causal attention would give
 * mean_i ln(i + 1). */
double ns_metric_attn_entropy(const float *probs, int nseq, int heads, int seq, double *per_head);
/* MoE routing of ntok tokens with top_k choices each among E experts (expert [ntok, top_k]):
 * load[e] = the share of the ntok top_k routed slots that chose expert e, before capacity drops
 * (the loads sum to 1); returns their coefficient of variation sd/mean (population sd; 0 for
 * perfectly balanced routing) (expert_load, load_cv) */
double ns_metric_expert_load(const int *expert, int ntok, int top_k, int E, double *load);
/* mean over tokens of the entropy (nats) of the router distribution probs [ntok, E], in [0, ln E]
 * (router_entropy) */
double ns_metric_router_entropy(const float *probs, int ntok, int E);
/* share of the ntok top_k slots that the capacity limit dropped (row < 0) (dropped_frac) */
double ns_metric_dropped_frac(const int *row, int ntok, int top_k);
#endif
