/* ops_norm.c: LayerNorm and RMSNorm over the last axis, row statistics in double. */
#include "internal.h"

void ns_norm_forward(ns_real *out, ns_real *mean, ns_real *rstd, const ns_real *inp,
                     const ns_real *g, const ns_real *b, int N, int C, ns_norm_kind kind, double eps)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C >= NS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const ns_real *x = inp + (size_t)i * C;
        ns_real *y = out + (size_t)i * C;
        double m = 0;
        if (kind == NS_NORM_LAYERNORM) {
            for (int k = 0; k < C; k++)
                m += x[k];
            m /= C;
        }
        double v = 0; /* two-pass: variance (LayerNorm) or mean square (RMSNorm) */
        for (int k = 0; k < C; k++)
            v += (x[k] - m) * (x[k] - m);
        v /= C;
        double r = 1.0 / sqrt(v + eps);
        for (int k = 0; k < C; k++) {
            double o = (x[k] - m) * r * g[k];
            if (b)
                o += b[k];
            y[k] = (ns_real)o;
        }
        if (mean)
            mean[i] = (ns_real)m;
        rstd[i] = (ns_real)r;
    }
}

/* With xhat = (x - mean) rstd and dxhat = g * dout:
 *   dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))   (LayerNorm)
 *   dx = rstd (dxhat - xhat mean(dxhat xhat))                  (RMSNorm)
 * dinp, dg and db accumulate; dg and db may be NULL. The parameter gradients are a sum over rows,
 * done per column in a fixed row order so that the result does not depend on the thread count. */
void ns_norm_backward(ns_real *dinp, ns_real *dg, ns_real *db, const ns_real *dout,
                      const ns_real *inp, const ns_real *g, const ns_real *mean,
                      const ns_real *rstd, int N, int C, ns_norm_kind kind)
{
    int centered = kind == NS_NORM_LAYERNORM;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= NS_PAR_MIN)
    for (int i = 0; i < N; i++) {
        const ns_real *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
        ns_real *dx = dinp + (size_t)i * C;
        double m = centered ? mean[i] : 0, r = rstd[i];
        double sum_dxhat = 0, sum_dxhat_xhat = 0;
        for (int k = 0; k < C; k++) {
            double dxhat = (double)g[k] * dy[k];
            sum_dxhat += dxhat;
            sum_dxhat_xhat += dxhat * (x[k] - m) * r;
        }
        double mean_dxhat = centered ? sum_dxhat / C : 0, mean_dxhat_xhat = sum_dxhat_xhat / C;
        for (int k = 0; k < C; k++) {
            double xhat = (x[k] - m) * r;
            double dxhat = (double)g[k] * dy[k];
            dx[k] += (ns_real)(r * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
        }
    }
    if (!dg && !db)
        return;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= NS_PAR_MIN)
    for (int k = 0; k < C; k++) {
        double sg = 0, sb = 0;
        for (int i = 0; i < N; i++) {
            double dy = dout[(size_t)i * C + k];
            double m = centered ? mean[i] : 0;
            sg += dy * (inp[(size_t)i * C + k] - m) * rstd[i];
            sb += dy;
        }
        if (dg)
            dg[k] += (ns_real)sg;
        if (db)
            db[k] += (ns_real)sb;
    }
}
