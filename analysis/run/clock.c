/* clock.c: monotonic seconds. */
#define _POSIX_C_SOURCE 199309L
#include "clock.h"
#include <time.h>

double ns_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
