/* test_sweep_plan.c: the sharing of a sweep's points among ranks (analysis/sweep_plan.c).
 * Longest first to the least-loaded rank, done points left out, ties broken the same way every
 * time, and the classic cases: a depth sweep splits by cost, not by count. */
#include "check.h"
#include "sweep_plan.h"
#include <string.h>

static double load_of(const double *cost, const int *owner, long n, int rank)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += owner[i] == rank ? cost[i] : 0;
    return s;
}

int main(void)
{
    long order[16];
    int owner[16], again[16];

    /* a depth sweep 8..128 x 2 schemes: costs 8,16,32,64,128 twice. Two ranks: each gets one
     * 128, one 64, ... exactly half; by count a split could be 5 and 5 yet 3:1 in work */
    double depth[10] = {8, 16, 32, 64, 128, 8, 16, 32, 64, 128};
    long n = ns_sweep_plan(depth, NULL, 10, 2, order, owner);
    CHECK(n == 10, "planned %ld points of 10", n);
    CHECK(order[0] == 4 && order[1] == 9 && order[2] == 3, "longest first: %ld %ld %ld",
          order[0], order[1], order[2]);
    CHECK(load_of(depth, owner, 10, 0) == 248 && load_of(depth, owner, 10, 1) == 248,
          "loads %g and %g, want 248 each", load_of(depth, owner, 10, 0),
          load_of(depth, owner, 10, 1));
    CHECK(owner[4] == 0 && owner[9] == 1, "ties go to the lower rank");

    /* deterministic: the same plan again */
    ns_sweep_plan(depth, NULL, 10, 2, order, again);
    CHECK(memcmp(owner, again, sizeof(int) * 10) == 0, "a second plan differs");

    /* done points are left out and owned by nobody */
    unsigned char done[10] = {0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    n = ns_sweep_plan(depth, done, 10, 3, order, owner);
    CHECK(n == 8 && owner[4] == -1 && owner[9] == -1, "done points: n %ld owners %d %d", n,
          owner[4], owner[9]);
    for (long k = 0; k < n; k++)
        CHECK(!done[order[k]], "done point %ld planned", order[k]);

    /* the 240 left over 3 ranks: 64+16, 64+16, 32+32+8+8 */
    for (int r = 0; r < 3; r++)
        CHECK(load_of(depth, owner, 10, r) == 80, "rank %d's load %g, want 80", r,
              load_of(depth, owner, 10, r));

    /* one rank: everything, in cost order; more ranks than points: one each, rest idle */
    n = ns_sweep_plan(depth, NULL, 10, 1, order, owner);
    for (long i = 0; i < 10; i++)
        CHECK(owner[i] == 0, "one rank: point %ld on rank %d", i, owner[i]);
    double three[3] = {1, 3, 2};
    n = ns_sweep_plan(three, NULL, 3, 8, order, owner);
    CHECK(owner[1] == 0 && owner[2] == 1 && owner[0] == 2, "more ranks than points: %d %d %d",
          owner[0], owner[1], owner[2]);

    if (failures)
        printf("test_sweep_plan: %d of %d checks failed\n", failures, checks);
    return failures != 0;
}
