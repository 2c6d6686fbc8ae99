/* adamw.c: AdamW with decoupled weight decay, a warmup-cosine schedule, and the global gradient
 * norm used for clipping. Sums run in double over fixed chunks, combined in chunk order (an
 * ordered block, not a reduction, whose combining order is unspecified), so results
 * do not depend on the thread count. */
#include "internal.h"

#define CHUNK 16384

/* w -= lr (mhat / (sqrt(vhat) + eps) + wd w), with the gradient multiplied by grad_scale (clipping);
 * step counts from 1. Returns sum of squared updates and of squared weights (before the step) in
 * *du2 and *w2, for update ratios. */
void ns_adamw_update(ns_real *w, const ns_real *g, ns_real *m, ns_real *v, size_t n,
                     const ns_adamw *o, double lr, double wd, long step, double grad_scale,
                     double *du2, double *w2)
{
    double bc1 = 1 - pow(o->beta1, (double)step), bc2 = 1 - pow(o->beta2, (double)step);
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
    double sdu = 0, sw = 0;
#pragma omp parallel for schedule(static) ordered if (n >= NS_PAR_MIN)
    for (size_t c = 0; c < nchunks; c++) {
        double cdu = 0, cw = 0;
        size_t end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
        for (size_t i = c * CHUNK; i < end; i++) {
            double gi = (double)g[i] * grad_scale;
            double mi = o->beta1 * m[i] + (1 - o->beta1) * gi;
            double vi = o->beta2 * v[i] + (1 - o->beta2) * gi * gi;
            m[i] = (ns_real)mi, v[i] = (ns_real)vi;
            double du = -lr * ((mi / bc1) / (sqrt(vi / bc2) + o->eps) + wd * w[i]);
            cw += (double)w[i] * w[i];
            cdu += du * du;
            w[i] = (ns_real)(w[i] + du);
        }
#pragma omp ordered
        {
            sdu += cdu;
            sw += cw;
        }
    }
    *du2 = sdu;
    *w2 = sw;
}

double ns_sum_squares(const ns_real *x, size_t n)
{
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
    double s = 0;
#pragma omp parallel for schedule(static) ordered if (n >= NS_PAR_MIN)
    for (size_t c = 0; c < nchunks; c++) {
        double cs = 0;
        size_t end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
        for (size_t i = c * CHUNK; i < end; i++)
            cs += (double)x[i] * x[i];
#pragma omp ordered
        s += cs;
    }
    return s;
}

double ns_lr_at(long step, long warmup, long total, double lr_max, double lr_min)
{
    if (step <= warmup)
        return lr_max * (double)step / (double)(warmup > 0 ? warmup : 1);
    double progress = (double)(step - warmup) / (double)(total > warmup ? total - warmup : 1);
    if (progress > 1)
        progress = 1;
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + cos(3.14159265358979323846 * progress));
}
