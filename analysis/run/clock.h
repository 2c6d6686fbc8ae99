/* clock.h: monotonic time, and the callback through which long runs report progress and learn
 * that they should stop. */
#ifndef NS_CLOCK_H
#define NS_CLOCK_H

/* monotonic seconds */
double ns_now(void);

/* called as work proceeds with the units done so far and in all; a nonzero return stops the
 * run with NS_ERR_INTERRUPTED (how the program's Ctrl-C reaches a run) */
typedef int (*ns_tick_fn)(void *ctx, long done, long total);

#endif
