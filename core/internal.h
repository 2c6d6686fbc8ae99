/* internal.h: what the core's sources share and the public header does not promise. */
#ifndef NS_INTERNAL_H
#define NS_INTERNAL_H

#include "normscope.h"
#include <cblas.h>
#include <math.h>

/* one GEMM name for both precisions: the shipped float library and the double test library */
#ifdef NS_REAL_DOUBLE
#define ns_gemm cblas_dgemm
#define ns_exp exp
#else
#define ns_gemm cblas_sgemm
#define ns_exp expf
#endif

#define NS_NONE ((size_t)-1) /* an absent buffer or parameter slot */

/* workspace.c: `bytes` zeroed bytes of ws for one model, growing it if needed (NS_ERR_INVALID
 * while another model holds it, NS_ERR_NOMEM); and giving them back */
int ns_workspace_take(ns_workspace *ws, size_t bytes, void **base);
void ns_workspace_give_back(ns_workspace *ws);
/* memcpy(out, in, bytes), or memset(out, 0, bytes) for in == NULL, in chunks that the threads
 * share: a block's backward clears and copies 20-30 MB of buffers (W3), a reused workspace
 * 1.4 GiB, and on one thread the others waited through it */
void ns_copy_or_zero(void *out, const void *in, size_t bytes);

/* c[m,n] = alpha op(a)[m,k] op(b)[k,n] + beta c, row-major, one BLAS call on the calling
 * thread (ops_linear.c) */
void ns_matmul(int trans_a, int trans_b, int m, int n, int k, ns_real alpha, const ns_real *a,
               int lda, const ns_real *b, int ldb, ns_real beta, ns_real *c, int ldc);

/* ---- jobs: steps over blocks of rows that the threads share (ops_linear.c) ---------------- */
/* A job is a chain of steps over the rows 0..m-1 of its outputs, run block of rows by block of
 * rows; each step on a block sees the earlier steps' results for the same rows only. The blocks
 * are fixed by m alone, so the numbers do not depend on the thread count (ops_linear.c). */
typedef enum {
    NS_STEP_GEMM,        /* c[rows, n] = op(a)[rows, k] op(b) + beta c[rows] */
    NS_STEP_ACT_FORWARD, /* c[rows, n] = phi(a[rows, n]) */
    NS_STEP_ACT_BACKWARD /* c[rows, n] = beta c + phi'(a[rows, n]) b[rows, n], beta 0 or 1 */
} ns_step_kind;

typedef struct {
    ns_step_kind kind;
    int trans_a, trans_b, n, k, lda, ldb, ldc; /* row-major; lda etc. for GEMM steps only */
    const ns_real *a, *b;
    ns_real beta, *c;
    ns_act_kind act;
} ns_step;

#define NS_JOB_STEPS 3
typedef struct {
    int m, nsteps;
    ns_step step[NS_JOB_STEPS];
} ns_job;

/* Runs the jobs' blocks as one set of tasks that the threads take in turn (one barrier for all,
 * and the faster thread takes more). Jobs must be independent: none writes what another reads
 * or writes. */
void ns_jobs_run(const ns_job *jobs, int njobs);
/* a one-GEMM step */
ns_step ns_gemm_step(int trans_a, int trans_b, int n, int k, const ns_real *a, int lda,
                     const ns_real *b, int ldb, ns_real beta, ns_real *c, int ldc);
/* the activations over n values on the calling thread (ops_act.c) */
void ns_act_forward_serial(ns_real *out, const ns_real *inp, size_t n, ns_act_kind kind);
void ns_act_backward_serial(ns_real *dinp, const ns_real *dout, const ns_real *inp, size_t n,
                            ns_act_kind kind, int accumulate);

/* Below this many elements of work a loop runs serially: opening a parallel region costs a
 * barrier, and when other processes hold the cores, libgomp's spin-waiting at that barrier can
 * cost far more than the loop (on a loaded machine, many times the loop's own cost). */
#define NS_PAR_MIN 32768

/* ---- the mixture-of-experts op (ops_moe.c) ------------------------------------------------ */
/* what the forward caches: N tokens, E experts, k choices per token, He expert hidden width */
typedef struct {
    ns_real *probs;         /* [N, E] router probabilities */
    ns_real *lse;           /* [N] logsumexp of each token's router logits (z-loss) */
    ns_real *gates;         /* [N, k] gate of each choice */
    int *expert;            /* [N, k] chosen experts, best first */
    int *row;               /* [N, k] the choice's row in the gathered buffers, -1 if dropped */
    int *offset;            /* [E + 1] first gathered row of each expert; offset[E] rows in all */
    ns_real *x, *h, *a, *y; /* gathered rows: input [N k, d], hidden [N k, He] x 2, out [N k, d] */
    ns_real *an;            /* [N k, He] the mid norm's output (NULL: no mid norm) */
    ns_real *mean, *rstd;   /* [N k] the mid norm's row statistics (LayerNorm, RMSNorm) */
} ns_moe_cache;

/* Sub-LN's norm on each expert's activation before its W2, y_e = W2_e Nm_e(phi(W1_e z)): expert
 * e's gain and bias at e He, DyT's scalar a at e; the backward accumulates dg, db, da alike */
typedef struct {
    ns_norm_kind kind;
    double eps;
    const ns_real *g, *b, *a;
    ns_real *dg, *db, *da;
} ns_moe_mid;

typedef struct {
    ns_real *dy, *dx, *da, *dh; /* [N k, d], [N k, d], [N k, He], [N k, He] */
    ns_real *dg;                /* [N, k] */
    ns_real *dlogits;           /* [N, E] */
    int *count;                 /* [E] */
} ns_moe_scratch;

/* w_router [d, E]; w1 [E, d, He] and w2 [E, He, d], expert e's matrices one after another; mid
 * NULL: no mid norm (else c->an, c->rstd and, for LayerNorm, c->mean are set) */
void ns_moe_forward(ns_real *out, ns_moe_cache *c, const ns_real *z, const ns_real *w_router,
                    const ns_real *w1, const ns_real *w2, int N, int d, int E, int He, int k,
                    double capacity, ns_act_kind act, const ns_moe_mid *mid);
/* accumulates dz and the weight gradients; adds the gradients of aux_coef * aux and
 * zloss_coef * zloss (ns_moe_losses) */
void ns_moe_backward(ns_real *dz, ns_real *dw_router, ns_real *dw1, ns_real *dw2,
                     const ns_real *dout, const ns_moe_cache *c, ns_moe_scratch *s,
                     const ns_real *z, const ns_real *w_router, const ns_real *w1,
                     const ns_real *w2, int N, int d, int E, int He, int k, ns_act_kind act,
                     double aux_coef, double zloss_coef, const ns_moe_mid *mid);
/* the Switch load-balancing loss E sum_e f_e P_e and the router z-loss mean(lse^2) */
void ns_moe_losses(const ns_moe_cache *c, int N, int E, int k, double *aux, double *zloss);

/* ---- ResiDual's dual stream (residual.c) -------------------------------------------------- */
/* r_out = r_in + o1 (+ o2 unless NULL): block l's branch outputs summed onto r_{l-1} */
void ns_dual_forward(ns_real *r_out, const ns_real *r_in, const ns_real *o1, const ns_real *o2,
                     size_t n);

#endif
