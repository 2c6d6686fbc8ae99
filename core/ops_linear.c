/* ops_linear.c: y = x W as GEMMs over the whole residual stream (never per token), and the jobs
 * that run GEMMs and the steps that follow them on the same rows.
 *
 * Determinism. OpenBLAS's own threading, and even a different row split of a single-threaded
 * sgemm, change the rounding of individual elements. So the BLAS runs single-threaded (see
 * threads.c) and every GEMM is cut into fixed blocks of output rows that OpenMP threads share
 * out: the partition depends on the shapes only, and results are bit-identical for any thread
 * count. At our shapes this runs as fast as OpenBLAS's threading.
 *
 * Balance. Every parallel region ends in a barrier where the thread that finished first waits,
 * and cores' speeds can wander from one GEMM to the next (notably on virtual machines): with a
 * region per GEMM, the threads spend a noticeable share of the run waiting. So independent
 * GEMMs (the backward's dX and dW; Q, K and V) run as one region whose blocks the threads take
 * dynamically, and a GEMM and the elementwise step after it (GELU) share a block. */
#include "internal.h"
#include <string.h>

/* Rows per block: about half of M (even shares for 1 or 2 threads), in multiples of 32, at
 * least 64. Each block packs all of op(B) again, so fewer, taller blocks pack less and run
 * faster. So at most two threads share one GEMM; more share jobs that run together (Q, K and V;
 * dX and dW). */
static int block_rows(int M)
{
    int rows = (M / 2 + 31) / 32 * 32;
    return rows < 64 ? 64 : rows;
}

ns_step ns_gemm_step(int trans_a, int trans_b, int n, int k, const ns_real *a, int lda,
                     const ns_real *b, int ldb, ns_real beta, ns_real *c, int ldc)
{
    return (ns_step){.kind = NS_STEP_GEMM, .trans_a = trans_a, .trans_b = trans_b, .n = n, .k = k,
                     .a = a, .lda = lda, .b = b, .ldb = ldb, .beta = beta, .c = c, .ldc = ldc};
}

void ns_matmul(int trans_a, int trans_b, int m, int n, int k, ns_real alpha, const ns_real *a,
               int lda, const ns_real *b, int ldb, ns_real beta, ns_real *c, int ldc)
{
    /* For beta 0, OpenBLAS zeroes c in a scalar loop and then adds the product to it. The same
     * zeros from memset and beta 1 give the same numbers, and memset is faster than OpenBLAS's
     * scalar loop. */
    if (beta == 0) {
        for (int i = 0; i < m; i++)
            memset(c + (size_t)i * ldc, 0, (size_t)n * sizeof(ns_real));
        beta = 1;
    }
    ns_gemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
            trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* rows r0 .. r0 + m - 1 of one step */
static void step_rows(const ns_step *s, int r0, int m)
{
    size_t off = (size_t)r0 * s->n, len = (size_t)m * s->n;
    switch (s->kind) {
    case NS_STEP_GEMM: {
        /* rows r0.. of op(a): a row offset in a, or a column offset when a is transposed */
        const ns_real *a = s->trans_a ? s->a + r0 : s->a + (size_t)r0 * s->lda;
        ns_matmul(s->trans_a, s->trans_b, m, s->n, s->k, 1, a, s->lda, s->b, s->ldb, s->beta,
                  s->c + (size_t)r0 * s->ldc, s->ldc);
        break;
    }
    case NS_STEP_ACT_FORWARD:
        ns_act_forward_serial(s->c + off, s->a + off, len, s->act);
        break;
    case NS_STEP_ACT_BACKWARD:
        ns_act_backward_serial(s->c + off, s->b + off, s->a + off, len, s->act, s->beta != 0);
        break;
    }
}

/* the work of `rows` rows of a job: multiply-adds of its GEMM steps, elements of the others */
static double job_work(const ns_job *job, int rows)
{
    double work = 0;
    for (int s = 0; s < job->nsteps; s++)
        work += (double)rows * job->step[s].n *
                (job->step[s].kind == NS_STEP_GEMM ? job->step[s].k : 1);
    return work;
}

static int job_blocks(const ns_job *job)
{
    int R = block_rows(job->m);
    return (job->m + R - 1) / R;
}

/* task t's job, and its block's first row and row count: blocks count across the jobs in order */
static const ns_job *task_block(const ns_job *jobs, int t, int *r0, int *m)
{
    const ns_job *job = jobs;
    for (; t >= job_blocks(job); job++)
        t -= job_blocks(job);
    int R = block_rows(job->m);
    *r0 = t * R, *m = job->m - *r0 < R ? job->m - *r0 : R;
    return job;
}

void ns_jobs_run(const ns_job *jobs, int njobs)
{
    int ntasks = 0;
    double work = 0;
    for (int j = 0; j < njobs; j++) {
        ntasks += job_blocks(&jobs[j]);
        work += job_work(&jobs[j], jobs[j].m);
    }
#pragma omp parallel for schedule(dynamic) if (ntasks > 1 && work >= 32.0 * NS_PAR_MIN)
    for (int t = 0; t < ntasks; t++) {
        int r0, m;
        const ns_job *job = task_block(jobs, t, &r0, &m);
        for (int s = 0; s < job->nsteps; s++)
            step_rows(&job->step[s], r0, m);
    }
}

/* out[N,nout] = inp[N,nin] . w[nin,nout] */
void ns_linear_forward(ns_real *out, const ns_real *inp, const ns_real *w, int N, int nin, int nout)
{
    ns_job job = {N, 1, {ns_gemm_step(0, 0, nout, nin, inp, nin, w, nout, 0, out, nout)}};
    ns_jobs_run(&job, 1);
}

/* dinp[N,nin] += dout . w^T ;  dw[nin,nout] += inp^T . dout.  Either output may be NULL. */
void ns_linear_backward(ns_real *dinp, ns_real *dw, const ns_real *dout, const ns_real *inp,
                        const ns_real *w, int N, int nin, int nout)
{
    ns_job jobs[2];
    int n = 0;
    if (dinp)
        jobs[n++] = (ns_job){N, 1, {ns_gemm_step(0, 1, nin, nout, dout, nout, w, nout, 1, dinp,
                                                 nin)}};
    if (dw)
        jobs[n++] = (ns_job){nin, 1, {ns_gemm_step(1, 0, nout, N, inp, nin, dout, nout, 1, dw,
                                                   nout)}};
    if (n)
        ns_jobs_run(jobs, n);
}
