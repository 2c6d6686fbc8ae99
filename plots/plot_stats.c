/* plot_stats.c: seed statistics, two-pass (the mean first, then squared deviations from it) for
 * accuracy when the seeds agree to many digits, as the PostNorm act_ms = 1 does. */
#include "plot_stats.h"
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stddef.h>

double ns_t975(int seeds)
{
    /* GSL's error handler is not involved: Pinv is defined for every P in (0, 1) and nu > 0 */
    return seeds < 2 ? NAN : gsl_cdf_tdist_Pinv(0.975, (double)(seeds - 1));
}

void ns_seed_stats(const double *x, int S, int n, double *mean, double *sd, double *lo,
                   double *hi)
{
    double t = ns_t975(S);
    for (int j = 0; j < n; j++) {
        double m = 0, ss = 0;
        for (int s = 0; s < S; s++)
            m += x[(size_t)s * n + j];
        m /= S;
        for (int s = 0; s < S; s++) {
            double dev = x[(size_t)s * n + j] - m;
            ss += dev * dev;
        }
        double sdev = S > 1 ? sqrt(ss / (S - 1)) : NAN;
        double half = t * sdev / sqrt((double)S); /* NAN with one seed */
        mean[j] = m;
        if (sd)
            sd[j] = sdev;
        if (lo)
            lo[j] = m - half;
        if (hi)
            hi[j] = m + half;
    }
}
