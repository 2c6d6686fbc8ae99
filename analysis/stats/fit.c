/* fit.c: log-log least squares for growth exponents. */
#include "fit.h"
#include <gsl/gsl_fit.h>
#include <math.h>
#include <stdlib.h>

int ns_fit_loglog(const double *x, const double *y, int n, double *slope, double *se)
{
    *slope = *se = NAN;
    if (n < 2)
        return -1;
    double *lx = malloc(2 * (size_t)n * sizeof *lx), *ly = lx + n;
    if (!lx)
        return -1;
    int ok = 1;
    for (int i = 0; i < n; i++) {
        ok &= x[i] > 0 && y[i] > 0 && isfinite(x[i]) && isfinite(y[i]);
        lx[i] = log(x[i]);
        ly[i] = log(y[i]);
    }
    double c0, c1, cov00, cov01, cov11, sumsq;
    if (ok && gsl_fit_linear(lx, 1, ly, 1, (size_t)n, &c0, &c1, &cov00, &cov01, &cov11,
                             &sumsq) == 0) {
        *slope = c1;
        *se = n > 2 ? sqrt(cov11) : 0.0;
    }
    free(lx);
    return ok ? 0 : -1;
}
