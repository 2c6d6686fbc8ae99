/* fit.h: growth exponents from depth sweeps. */
#ifndef NS_FIT_H
#define NS_FIT_H

/* least-squares line through (ln x_i, ln y_i), i < n (GSL gsl_fit_linear): the slope and its
 * standard error (sqrt of the slope's variance estimated from the residuals; 0 when n == 2 or
 * the points lie exactly on the line). Returns 0, or -1 if n < 2 or an x or y is not positive
 * (then *slope and *se are NAN). */
int ns_fit_loglog(const double *x, const double *y, int n, double *slope, double *se);

#endif
