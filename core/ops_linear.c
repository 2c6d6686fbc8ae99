/* ops_linear.c: y = x W as GEMMs over the whole residual stream (never per token).
 *
 * Determinism. OpenBLAS's own threading, and even a different row split of a single-threaded
 * sgemm, change the rounding of individual elements. So the BLAS runs single-threaded (see
 * threads.c) and every GEMM is cut into fixed blocks of output rows that OpenMP threads share
 * out: the partition depends on the shapes only, and results are bit-identical for any thread
 * count. At our shapes this runs as fast as OpenBLAS's threading. */
#include "internal.h"

/* Rows per block: about a quarter of M (even shares for 1, 2 or 4 threads), in multiples of
 * 32, at least 64. Each block packs all of op(B) again, so fewer, taller blocks pack less: at
 * M = 1024 tokens, 256-row blocks ran 5-10% faster than 128-row ones on 2 cores. */
static int block_rows(int M)
{
    int rows = (M / 4 + 31) / 32 * 32;
    return rows < 64 ? 64 : rows;
}

/* C[M,N] = alpha op(A) B + beta C, row-major, cut into blocks of rows of C */
static void gemm_rows(int trans_a, int trans_b, int M, int N, int K, const ns_real *A, int lda,
                      const ns_real *B, int ldb, ns_real beta, ns_real *C, int ldc)
{
    int R = block_rows(M), nblocks = (M + R - 1) / R;
#pragma omp parallel for schedule(static) if (nblocks > 1 && (double)M * N * K >= 32.0 * NS_PAR_MIN)
    for (int blk = 0; blk < nblocks; blk++) {
        int r0 = blk * R, m = M - r0 < R ? M - r0 : R;
        /* rows r0.. of op(A): row offset in A, or column offset when A is transposed */
        const ns_real *a = trans_a ? A + r0 : A + (size_t)r0 * lda;
        ns_gemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, N, K, 1, a, lda, B, ldb, beta,
                C + (size_t)r0 * ldc, ldc);
    }
}

/* out[N,nout] = inp[N,nin] . w[nin,nout] */
void ns_linear_forward(ns_real *out, const ns_real *inp, const ns_real *w, int N, int nin, int nout)
{
    gemm_rows(0, 0, N, nout, nin, inp, nin, w, nout, 0, out, nout);
}

/* dinp[N,nin] += dout . w^T ;  dw[nin,nout] += inp^T . dout.  Either output may be NULL. */
void ns_linear_backward(ns_real *dinp, ns_real *dw, const ns_real *dout, const ns_real *inp,
                        const ns_real *w, int N, int nin, int nout)
{
    if (dinp)
        gemm_rows(0, 1, N, nin, nout, dout, nout, w, nout, 1, dinp, nin);
    if (dw)
        gemm_rows(1, 0, nin, nout, N, inp, nin, dout, nout, 1, dw, nout);
}
