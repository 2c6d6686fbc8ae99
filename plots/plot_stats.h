/* plot_stats.h: what a figure shows of a metric measured over S seeds. */
#ifndef NS_PLOT_STATS_H
#define NS_PLOT_STATS_H

/* t_{0.975, S-1}: the two-sided 95% quantile of Student's t with S - 1 degrees of freedom
 * (GSL); NAN for S < 2 */
double ns_t975(int seeds);

/* For each of the n columns of the row-major [S, n] array x: the mean over the S seeds, the
 * sample standard deviation, and the 95% confidence interval of the mean,
 * mean -/+ t_{0.975,S-1} sd / sqrt(S). With one seed sd, lo and hi are NAN (no interval).
 * Any of sd, lo, hi may be NULL. */
void ns_seed_stats(const double *x, int S, int n, double *mean, double *sd, double *lo,
                   double *hi);

#endif
