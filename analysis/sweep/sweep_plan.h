/* sweep_plan.h: which rank runs which point of a sweep.
 *
 * Points differ in cost (a depth sweep's deepest point costs as much as all the shallow ones
 * together), so they are shared out by estimated cost, longest first: each point in turn, most
 * expensive first, goes to the rank with the least work so far (greedy LPT, within 4/3 of the
 * best split). Ties go to the lower index and the lower rank, so every rank computes the same
 * plan from the same costs without talking. */
#ifndef NS_SWEEP_PLAN_H
#define NS_SWEEP_PLAN_H

/* order[0..n) receives the points to run, most expensive first (done points left out; n
 * returned), owner[i] the rank of point i (-1 when done[i]); done may be NULL */
long ns_sweep_plan(const double *cost, const unsigned char *done, long npoints, int nranks,
                   long *order, int *owner);

#endif
