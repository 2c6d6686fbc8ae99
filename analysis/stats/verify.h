/* verify.h: measurement against theory, layer by layer, with confidence intervals over seeds. */
#ifndef NS_VERIFY_H
#define NS_VERIFY_H

typedef struct {
    double worst_rel_err; /* max over compared layers of |mean - theory| / max(|theory|, floor) */
    int worst_layer;      /* where it happens (index into the arrays) */
    double share_in_ci;   /* share of compared layers whose 95% interval over seeds holds theory */
    int pass;             /* every compared layer within tol_rel, or within k_se standard errors */
    int nlayers;          /* layers compared */
    double k_se;          /* the simultaneous interval's half-width in se (NAN: one seed) */
} ns_verify_stats;

/* x is [seeds, n] (row-major), theory [n]; layers first..last-1 are compared. The 95% interval is
 * mean +- t_{0.975, S-1} se (GSL's Student t quantile), se = sd / sqrt(S) combined with the
 * theory's own standard error theory_se[l] where it has one (a Monte Carlo theory; NULL: none),
 * se^2 = sd^2 / S + theory_se^2. A layer passes if its relative error is at most tol_rel, or if
 * |mean - theory| is at most k_se such standard errors (which admits the seed noise of a
 * finite-width run when it is larger than the tolerance), where k_se makes the intervals of all
 * compared layers hold together with probability at least level (Bonferroni: the t quantile at
 * 1 - (1 - level) / (2 n)). With one seed no interval exists: share_in_ci is NAN and only
 * tol_rel counts. floor keeps the relative error of quantities near 0 (cosines) meaningful.
 * Returns -1 (and compares nothing) for an empty layer range or a level outside (0, 1). */
int ns_verify_compare(const double *x, int seeds, int n, const double *theory,
                      const double *theory_se, int first, int last, double floor, double tol_rel,
                      double level, ns_verify_stats *out);

#endif
