/* progress.h: one self-overwriting progress line (step, rate, ETA) on a terminal, nothing when
 * stderr is not a terminal (piped, redirected, CI). */
#ifndef NS_PROGRESS_H
#define NS_PROGRESS_H

typedef struct {
    const char *label, *unit;
    int enabled;
    double t0, last;
} ns_progress;

void ns_progress_start(ns_progress *p, const char *label, const char *unit);
void ns_progress_update(ns_progress *p, long done, long total);
void ns_progress_finish(ns_progress *p);

#endif
