/* adamw.c: AdamW with decoupled weight decay, a warmup-cosine schedule, and the global gradient
 * norm used for clipping. Sums run in double over fixed chunks, combined in chunk order (an
 * ordered block, not a reduction, whose combining order is unspecified), so results
 * do not depend on the thread count. The chunks are handed out one at a time: with the default
 * static schedule's contiguous shares, the second thread's first ordered block would wait for
 * the whole of the first thread's share, and the two threads would run one after the other. */
#include "internal.h"
#include "simd.h"

#define CHUNK 16384

/* AdamW on w[0..n): the arithmetic of every element in double, in the same order on every CPU;
 * the sums of squared updates and weights in NS_LANES lanes (simd.h), so that the loop
 * vectorizes: one chain of dependent adds kept it scalar, at about 3x the time of the lanes. */
static inline void adamw_one(ns_real *w, ns_real g, ns_real *m, ns_real *v, const ns_adamw *o,
                             double lr, double wd, double bc1, double bc2, double grad_scale,
                             double *du2, double *w2)
{
    double gi = (double)g * grad_scale;
    double mi = o->beta1 * *m + (1 - o->beta1) * gi;
    double vi = o->beta2 * *v + (1 - o->beta2) * gi * gi;
    *m = (ns_real)mi, *v = (ns_real)vi;
    double du = -lr * ((mi / bc1) / (sqrt(vi / bc2) + o->eps) + wd * *w);
    *w2 += (double)*w * *w;
    *du2 += du * du;
    *w = (ns_real)(*w + du);
}

NS_CLONES static void adamw_chunk(ns_real *w, const ns_real *g, ns_real *m, ns_real *v, size_t n,
                                  const ns_adamw *o, double lr, double wd, double bc1, double bc2,
                                  double grad_scale, double *du2, double *w2)
{
    double adu[NS_LANES] = {0}, aw[NS_LANES] = {0};
    size_t i = 0;
    for (; i + NS_LANES <= n; i += NS_LANES)
        for (int l = 0; l < NS_LANES; l++)
            adamw_one(w + i + l, g[i + l], m + i + l, v + i + l, o, lr, wd, bc1, bc2, grad_scale,
                      &adu[l], &aw[l]);
    for (; i < n; i++)
        adamw_one(w + i, g[i], m + i, v + i, o, lr, wd, bc1, bc2, grad_scale, &adu[i % NS_LANES],
                  &aw[i % NS_LANES]);
    *du2 = ns_lanes_total(adu);
    *w2 = ns_lanes_total(aw);
}

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
#pragma omp parallel for schedule(dynamic, 1) ordered if (n >= NS_PAR_MIN)
    for (size_t c = 0; c < nchunks; c++) {
        double cdu, cw;
        size_t i0 = c * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
        adamw_chunk(w + i0, g + i0, m + i0, v + i0, len, o, lr, wd, bc1, bc2, grad_scale, &cdu,
                    &cw);
#pragma omp ordered
        {
            sdu += cdu;
            sw += cw;
        }
    }
    *du2 = sdu;
    *w2 = sw;
}

/* the sum of x[0..n)^2 in double, in lanes (simd.h) */
NS_CLONES static double sum_squares_chunk(const ns_real *x, size_t n)
{
    double acc[NS_LANES] = {0};
    size_t i = 0;
    for (; i + NS_LANES <= n; i += NS_LANES)
        for (int l = 0; l < NS_LANES; l++)
            acc[l] += (double)x[i + l] * x[i + l];
    for (; i < n; i++)
        acc[i % NS_LANES] += (double)x[i] * x[i];
    return ns_lanes_total(acc);
}

double ns_sum_squares(const ns_real *x, size_t n)
{
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
    double s = 0;
#pragma omp parallel for schedule(dynamic, 1) ordered if (n >= NS_PAR_MIN)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i0 = c * CHUNK;
        double cs = sum_squares_chunk(x + i0, n - i0 < CHUNK ? n - i0 : CHUNK);
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
