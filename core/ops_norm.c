/* ops_norm.c: LayerNorm and RMSNorm over the last axis, row statistics in double; DyT.
 *
 * The row sums run in lanes (simd.h), and each row is one call of a function compiled for AVX2
 * too. The parameter gradients are sums over rows, taken per block of columns with the rows in
 * order: every column's sum has a fixed order whatever the thread count, and a block reads its
 * rows' contiguous slices (a column at a time read the whole input once per column). */
#include "internal.h"
#include "simd.h"

NS_CLONES static void norm_row_forward(ns_real *y, double *mean, double *rstd, const ns_real *x,
                                       const ns_real *g, const ns_real *b, int C, int centered,
                                       double eps)
{
    double m = 0, acc[NS_LANES] = {0};
    int k;
    if (centered) {
        for (k = 0; k + NS_LANES <= C; k += NS_LANES)
            for (int j = 0; j < NS_LANES; j++)
                acc[j] += x[k + j];
        for (; k < C; k++)
            acc[k % NS_LANES] += x[k];
        m = ns_lanes_total(acc) / C;
    }
    double sq[NS_LANES] = {0}; /* two-pass: variance (LayerNorm) or mean square (RMSNorm) */
    for (k = 0; k + NS_LANES <= C; k += NS_LANES)
        for (int j = 0; j < NS_LANES; j++)
            sq[j] += (x[k + j] - m) * (x[k + j] - m);
    for (; k < C; k++)
        sq[k % NS_LANES] += (x[k] - m) * (x[k] - m);
    double r = 1.0 / sqrt(ns_lanes_total(sq) / C + eps);
    if (b)
        for (k = 0; k < C; k++)
            y[k] = (ns_real)((x[k] - m) * r * g[k] + b[k]);
    else
        for (k = 0; k < C; k++)
            y[k] = (ns_real)((x[k] - m) * r * g[k]);
    *mean = m, *rstd = r;
}

void ns_norm_forward(ns_real *out, ns_real *mean, ns_real *rstd, const ns_real *inp,
                     const ns_real *g, const ns_real *b, int N, int C, ns_norm_kind kind, double eps)
{
    int centered = kind == NS_NORM_LAYERNORM;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= NS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        double m, r;
        norm_row_forward(out + (size_t)i * C, &m, &r, inp + (size_t)i * C, g, b, C, centered, eps);
        if (mean)
            mean[i] = (ns_real)m;
        rstd[i] = (ns_real)r;
    }
}

/* dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) for one row; see ns_norm_backward */
NS_CLONES static void norm_row_backward(ns_real *dx, const ns_real *x, const ns_real *dy,
                                        const ns_real *g, double m, double r, int C, int centered)
{
    double s1[NS_LANES] = {0}, s2[NS_LANES] = {0}; /* sum dxhat, sum dxhat xhat */
    int k;
    for (k = 0; k + NS_LANES <= C; k += NS_LANES)
        for (int j = 0; j < NS_LANES; j++) {
            double dxhat = (double)g[k + j] * dy[k + j];
            s1[j] += dxhat;
            s2[j] += dxhat * (x[k + j] - m) * r;
        }
    for (; k < C; k++) {
        double dxhat = (double)g[k] * dy[k];
        s1[k % NS_LANES] += dxhat;
        s2[k % NS_LANES] += dxhat * (x[k] - m) * r;
    }
    double mean_dxhat = centered ? ns_lanes_total(s1) / C : 0;
    double mean_dxhat_xhat = ns_lanes_total(s2) / C;
    for (k = 0; k < C; k++) {
        double xhat = (x[k] - m) * r;
        double dxhat = (double)g[k] * dy[k];
        dx[k] += (ns_real)(r * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
    }
}

/* columns k0 .. k0 + nk of dg += sum_i dout xhat, db += sum_i dout, rows in order */
enum { NORM_COLS = 32 };
NS_CLONES static void norm_cols_backward(ns_real *dg, ns_real *db, const ns_real *dout,
                                         const ns_real *inp, const ns_real *mean,
                                         const ns_real *rstd, int N, int C, int k0, int nk)
{
    double sg[NORM_COLS] = {0}, sb[NORM_COLS] = {0};
    for (int i = 0; i < N; i++) {
        const ns_real *dy = dout + (size_t)i * C + k0, *x = inp + (size_t)i * C + k0;
        double m = mean ? mean[i] : 0, r = rstd[i];
        for (int k = 0; k < nk; k++) {
            sg[k] += (double)dy[k] * (x[k] - m) * r;
            sb[k] += dy[k];
        }
    }
    for (int k = 0; k < nk; k++) {
        if (dg)
            dg[k0 + k] += (ns_real)sg[k];
        if (db)
            db[k0 + k] += (ns_real)sb[k];
    }
}

/* With xhat = (x - mean) rstd and dxhat = g * dout:
 *   dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))   (LayerNorm)
 *   dx = rstd (dxhat - xhat mean(dxhat xhat))                  (RMSNorm)
 * dinp, dg and db accumulate; dg and db may be NULL. */
void ns_norm_backward(ns_real *dinp, ns_real *dg, ns_real *db, const ns_real *dout,
                      const ns_real *inp, const ns_real *g, const ns_real *mean,
                      const ns_real *rstd, int N, int C, ns_norm_kind kind)
{
    int centered = kind == NS_NORM_LAYERNORM;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= NS_PAR_MIN)
    for (int i = 0; i < N; i++)
        norm_row_backward(dinp + (size_t)i * C, inp + (size_t)i * C, dout + (size_t)i * C, g,
                          centered ? mean[i] : 0, rstd[i], C, centered);
    if (!dg && !db)
        return;
    int nblocks = (C + NORM_COLS - 1) / NORM_COLS;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= NS_PAR_MIN)
    for (int blk = 0; blk < nblocks; blk++) {
        int k0 = blk * NORM_COLS;
        norm_cols_backward(dg, db, dout, inp, centered ? mean : NULL, rstd, N, C, k0,
                           C - k0 < NORM_COLS ? C - k0 : NORM_COLS);
    }
}

/* ---- DyT: y = g tanh(a x) + b, elementwise (Zhu et al. 2025) ----------------------------- */
void ns_dyt_forward(ns_real *out, const ns_real *inp, const ns_real *a, const ns_real *g,
                    const ns_real *b, int N, int C)
{
    double alpha = a[0];
#pragma omp parallel for schedule(static) if ((size_t)N * C >= NS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const ns_real *x = inp + (size_t)i * C;
        ns_real *y = out + (size_t)i * C;
        for (int k = 0; k < C; k++)
            y[k] = (ns_real)(g[k] * tanh(alpha * x[k]) + b[k]);
    }
}

/* columns k0 .. k0 + nk: dg += sum_i dout t, db += sum_i dout, rows in order; returns the
 * block's share of da, sum_{i,k} dout g x (1 - t^2), columns in order */
static double dyt_cols_backward(ns_real *dg, ns_real *db, const ns_real *dout, const ns_real *inp,
                                double alpha, const ns_real *g, int N, int C, int k0, int nk)
{
    double sg[NORM_COLS] = {0}, sb[NORM_COLS] = {0}, sa[NORM_COLS] = {0};
    for (int i = 0; i < N; i++) {
        const ns_real *dy = dout + (size_t)i * C + k0, *x = inp + (size_t)i * C + k0;
        for (int k = 0; k < nk; k++) {
            double t = tanh(alpha * x[k]);
            sg[k] += (double)dy[k] * t;
            sb[k] += dy[k];
            sa[k] += (double)dy[k] * x[k] * (1 - t * t);
        }
    }
    double da = 0;
    for (int k = 0; k < nk; k++) {
        if (dg)
            dg[k0 + k] += (ns_real)sg[k];
        if (db)
            db[k0 + k] += (ns_real)sb[k];
        da += g[k0 + k] * sa[k];
    }
    return da;
}

/* With t = tanh(a x):  dx = dout g a (1 - t^2),  dg = sum dout t,  db = sum dout,
 * da = sum dout g x (1 - t^2). dinp, da, dg and db accumulate; da, dg and db may be NULL. */
void ns_dyt_backward(ns_real *dinp, ns_real *da, ns_real *dg, ns_real *db, const ns_real *dout,
                     const ns_real *inp, const ns_real *a, const ns_real *g, int N, int C)
{
    double alpha = a[0];
#pragma omp parallel for schedule(static) if ((size_t)N * C >= NS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const ns_real *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
        ns_real *dx = dinp + (size_t)i * C;
        for (int k = 0; k < C; k++) {
            double t = tanh(alpha * x[k]);
            dx[k] += (ns_real)((double)dy[k] * g[k] * alpha * (1 - t * t));
        }
    }
    if (!da && !dg && !db)
        return;
    /* the blocks' shares of da are added in block order whatever the thread count; blocks are
     * handed out one at a time so that the ordered additions do not serialize the threads
     * (adamw.c) */
    int nblocks = (C + NORM_COLS - 1) / NORM_COLS;
    double total = 0;
#pragma omp parallel for ordered schedule(dynamic, 1) if ((size_t)N * C >= NS_PAR_MIN)
    for (int blk = 0; blk < nblocks; blk++) {
        int k0 = blk * NORM_COLS;
        double part = dyt_cols_backward(dg, db, dout, inp, alpha, g, N, C, k0,
                                        C - k0 < NORM_COLS ? C - k0 : NORM_COLS);
#pragma omp ordered
        total += part;
    }
    if (da)
        da[0] += (ns_real)total;
}
