/* sweep_plan.c: greedy longest-first assignment of sweep points to ranks (sweep_plan.h). */
#include "sweep_plan.h"
#include <stdlib.h>

/* qsort has no context argument: sort (cost, index) pairs instead */
typedef struct {
    double cost;
    long index;
} item;

static int by_cost_desc(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost > y->cost ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

long ns_sweep_plan(const double *cost, const unsigned char *done, long npoints, int nranks,
                   long *order, int *owner)
{
    long n = 0;
    item *items = malloc((size_t)(npoints > 0 ? npoints : 1) * sizeof *items);
    double *load = calloc((size_t)(nranks > 0 ? nranks : 1), sizeof *load);
    for (long i = 0; i < npoints; i++) {
        owner[i] = -1;
        if (!(done && done[i]))
            order[n++] = i;
    }
    if (!items || !load) { /* no memory to sort: index order, round robin (still deterministic) */
        for (long k = 0; k < n; k++)
            owner[order[k]] = (int)(k % nranks);
        free(items);
        free(load);
        return n;
    }
    for (long k = 0; k < n; k++)
        items[k] = (item){cost[order[k]], order[k]};
    qsort(items, (size_t)n, sizeof *items, by_cost_desc);
    for (long k = 0; k < n; k++) {
        int best = 0;
        for (int r = 1; r < nranks; r++)
            if (load[r] < load[best])
                best = r;
        load[best] += items[k].cost;
        order[k] = items[k].index;
        owner[items[k].index] = best;
    }
    free(items);
    free(load);
    return n;
}
