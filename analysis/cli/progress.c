/* progress.c: the terminal progress line. */
#define _POSIX_C_SOURCE 200809L
#include "progress.h"
#include "clock.h"
#include <stdio.h>
#include <time.h>
#include <unistd.h>

void ns_progress_start(ns_progress *p, const char *label, const char *unit)
{
    p->label = label;
    p->unit = unit;
    p->enabled = isatty(STDERR_FILENO);
    p->t0 = p->last = ns_now();
}

void ns_progress_update(ns_progress *p, long done, long total)
{
    if (!p->enabled)
        return;
    double now = ns_now();
    if (now - p->last < 0.2 && done < total)
        return; /* at most five redraws a second */
    p->last = now;
    double rate = done / (now - p->t0 + 1e-9);
    double eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "\r%s: %ld/%ld %s  %.1f %s/s  ETA %d:%02d   ", p->label, done, total, p->unit,
            rate, p->unit, (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}

void ns_progress_finish(ns_progress *p)
{
    if (p->enabled)
        fprintf(stderr, "\r\033[K");
}
