/* residual.c: the dual stream of ResiDual (Xie et al. 2023, arXiv 2304.14802).
 *
 * Beside the PostNorm main stream x, ResiDual keeps a stream r that no norm touches:
 * r_0 = x_0, and every branch output o (computed from x) is added to it, r = r + o. The stack's
 * output is x_L + Nf(r_L). Because r only accumulates, dLoss/dr_l is the same for every l:
 * Nf's backward of the output gradient, added to each branch output's gradient and, at the
 * bottom, to dLoss/dx_0. model.c owns the buffers; this file owns the arithmetic. */
#include "internal.h"

void ns_dual_forward(ns_real *r_out, const ns_real *r_in, const ns_real *o1, const ns_real *o2,
                     size_t n)
{
    /* (r + o1) + o2: the sublayers' order, so the sum rounds as the paper's loop does */
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        ns_real r = r_in[i] + o1[i];
        r_out[i] = o2 ? r + o2[i] : r;
    }
}
