/* verify.c: per-layer comparison of seed means with theory. */
#include "verify.h"
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stddef.h>

int ns_verify_compare(const double *x, int seeds, int n, const double *theory,
                      const double *theory_se, int first, int last, double floor, double tol_rel,
                      double level, ns_verify_stats *out)
{
    *out = (ns_verify_stats){.worst_rel_err = 0, .worst_layer = -1, .share_in_ci = NAN,
                             .pass = 1, .nlayers = 0, .k_se = NAN};
    if (seeds < 1 || first < 0 || last > n || first >= last || !(level > 0 && level < 1))
        return -1;
    double tq = seeds > 1 ? gsl_cdf_tdist_Pinv(0.975, seeds - 1) : NAN;
    /* Bonferroni over the compared layers: the verdict is about the whole profile, and a
     * per-layer level would fail a correct theory in a few percent of 32-layer cases */
    double k_se = seeds > 1 ? gsl_cdf_tdist_Pinv(1 - (1 - level) / (2.0 * (last - first)),
                                                 seeds - 1)
                            : NAN;
    out->k_se = k_se;
    int inside = 0;
    for (int l = first; l < last; l++) {
        double mean = 0, ss = 0;
        for (int s = 0; s < seeds; s++)
            mean += x[(size_t)s * n + l] / seeds;
        for (int s = 0; s < seeds; s++)
            ss += (x[(size_t)s * n + l] - mean) * (x[(size_t)s * n + l] - mean);
        double se = seeds > 1 ? sqrt(ss / (seeds - 1) / seeds +
                                     (theory_se ? theory_se[l] * theory_se[l] : 0))
                              : 0;
        double diff = fabs(mean - theory[l]);
        double rel = diff / fmax(fabs(theory[l]), floor);
        if (!(rel <= out->worst_rel_err)) { /* also catches NaN */
            out->worst_rel_err = rel;
            out->worst_layer = l;
        }
        if (seeds > 1 && diff <= tq * se)
            inside++;
        if (!(rel <= tol_rel || (seeds > 1 && diff <= k_se * se)))
            out->pass = 0;
        out->nlayers++;
    }
    if (seeds > 1)
        out->share_in_ci = (double)inside / out->nlayers;
    return 0;
}
