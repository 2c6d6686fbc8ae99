/* sweep_run.c: the points of a sweep, alone or over MPI ranks, into the store (sweep_run.h). */
#define _POSIX_C_SOURCE 200809L
#include "sweep_run.h"
#include "clock.h"
#include "sweep_plan.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAVE_EVERY 1.0 /* seconds between saves of the progress file while points arrive */

/* rank 0's view of the job */
typedef struct {
    ns_sweep_job *job;
    int status;     /* the first failure (NS_OK: none yet) */
    char *err;
    size_t errlen;
    int active;     /* workers that have not reported their end */
    int stopped;    /* the workers were asked to stop */
    double last_save, save_seconds; /* when the last save ended, and what it took */
    long blocks_done, blocks_total;
} lead;

static void lead_fail(lead *w, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lead_fail(lead *w, int status, const char *fmt, ...)
{
    if (w->status != NS_OK)
        return; /* the first failure is the cause; the rest follow from it */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, w->errlen, fmt, ap);
    va_end(ap);
    w->status = status;
}

/* saves the progress file unless the last save was recent: at least SAVE_EVERY seconds ago, and
 * ten times as long ago as it took (a store of many points costs more to write; the saves then
 * take at most a tenth of the time) */
static void maybe_save(lead *w, int force)
{
    double now = ns_now(), wait = 10 * w->save_seconds;
    if (!force && now - w->last_save < (wait > SAVE_EVERY ? wait : SAVE_EVERY))
        return;
    if (ns_sweep_store_save(w->job->store) != NS_OK)
        lead_fail(w, NS_ERR_IO, "%s", ns_sweep_store_error(w->job->store));
    w->last_save = ns_now();
    w->save_seconds = w->last_save - now;
}

/* a finished point into the store */
static void take(lead *w, long point, ns_h5 *h)
{
    if (ns_sweep_store_add(w->job->store, point, h) != NS_OK) {
        lead_fail(w, NS_ERR_IO, "%s", ns_sweep_store_error(w->job->store));
        return;
    }
    w->blocks_done += w->job->blocks[point];
    maybe_save(w, 0);
}

/* takes what the workers sent; asks them to stop once something failed */
static void serve(lead *w)
{
    ns_mpi_msg msg;
    int got;
    while ((got = ns_mpi_poll(w->job->mpi, &msg)) != 0) {
        if (got < 0) {
            lead_fail(w, NS_ERR_NOMEM, "out of memory receiving a point from rank %d",
                      msg.source);
            break;
        }
        if (msg.kind == NS_MPI_RESULT) {
            char name[64];
            ns_h5 *h = NULL;
            snprintf(name, sizeof name, "point %ld from rank %d", msg.point, msg.source);
            if (ns_h5_open_image(&h, msg.data, msg.size, name) == NS_OK)
                take(w, msg.point, h);
            else
                lead_fail(w, NS_ERR_IO, "%s", ns_h5_error(h));
            ns_h5_free(h);
        } else if (msg.kind == NS_MPI_FAILURE) {
            w->active--;
            if (msg.status == NS_ERR_INTERRUPTED)
                lead_fail(w, msg.status, "%s (rank %d)", (const char *)msg.data, msg.source);
            else
                lead_fail(w, msg.status, "%s (rank %d, point %ld)", (const char *)msg.data,
                          msg.source, msg.point);
        } else {
            w->active--;
        }
        free(msg.data);
    }
    if (w->status != NS_OK && !w->stopped) {
        ns_mpi_stop_all(w->job->mpi);
        w->stopped = 1;
    }
}

/* the caller's progress and stop request */
static int caller_stops(const ns_sweep_job *job, long done, long total)
{
    return job->tick && job->tick(job->tick_ctx, done, total);
}

static int lead_tick(void *ctx, long done, long total)
{
    lead *w = ctx;
    (void)total;
    int stop = caller_stops(w->job, w->blocks_done + done, w->blocks_total);
    serve(w);
    return stop || w->status != NS_OK;
}

static void nap(void)
{
    struct timespec ts = {0, 5000000}; /* 5 ms: waiting for workers costs nothing */
    nanosleep(&ts, NULL);
}

static int run_lead(ns_sweep_job *job, const long *mine, long nmine, char *err, size_t errlen)
{
    /* the first point is saved at once, the rest at most once a second */
    lead w = {.job = job, .err = err, .errlen = errlen, .active = job->mpi->size - 1,
              .last_save = -1e300};
    for (long i = 0; i < job->npoints; i++)
        if (!job->done[i])
            w.blocks_total += job->blocks[i];
    for (long k = 0; k < nmine && w.status == NS_OK; k++) {
        char perr[512];
        ns_h5 *h = NULL;
        if (caller_stops(job, w.blocks_done, w.blocks_total)) {
            lead_fail(&w, NS_ERR_INTERRUPTED, "interrupted");
            break;
        }
        int st = ns_h5_create_memory(&h, "a sweep point");
        if (st == NS_OK)
            st = job->run(job->ctx, mine[k], h, lead_tick, &w, perr, sizeof perr);
        else
            snprintf(perr, sizeof perr, "%s", ns_h5_error(h));
        if (st == NS_OK)
            take(&w, mine[k], h);
        else if (st == NS_ERR_INTERRUPTED || job->mpi->size == 1)
            lead_fail(&w, st, "%s", perr);
        else
            lead_fail(&w, st, "%s (rank 0, point %ld)", perr, mine[k]);
        ns_h5_free(h);
        serve(&w);
    }
    while (w.active > 0) { /* the workers' points, or their reports that they stopped */
        serve(&w);
        if (w.active > 0 && caller_stops(job, w.blocks_done, w.blocks_total) &&
            w.status == NS_OK)
            lead_fail(&w, NS_ERR_INTERRUPTED, "interrupted");
        else if (w.active > 0)
            nap();
    }
    if (w.status != NS_OK)
        maybe_save(&w, 1); /* a failed save keeps the first failure as the message */
    return w.status;
}

/* a worker's view: stop when rank 0 says so or the caller asks */
static int worker_tick(void *ctx, long done, long total)
{
    ns_sweep_job *job = ctx;
    return caller_stops(job, done, total) || ns_mpi_stop_asked(job->mpi);
}

static int run_worker(ns_sweep_job *job, const long *mine, long nmine)
{
    ns_mpi *m = job->mpi;
    for (long k = 0; k < nmine; k++) {
        char perr[512];
        ns_h5 *h = NULL;
        void *image = NULL;
        size_t size = 0;
        int st = NS_ERR_INTERRUPTED;
        if (!worker_tick(job, 0, 0)) {
            if ((st = ns_h5_create_memory(&h, "a sweep point")) != NS_OK)
                snprintf(perr, sizeof perr, "%s", ns_h5_error(h));
            else
                st = job->run(job->ctx, mine[k], h, worker_tick, job, perr, sizeof perr);
            if (st == NS_OK && (st = ns_h5_image(h, &image, &size)) != NS_OK)
                snprintf(perr, sizeof perr, "%s", ns_h5_error(h));
            if (st == NS_OK && (st = ns_mpi_send_result(m, mine[k], image, size)) != NS_OK)
                snprintf(perr, sizeof perr, "the results of a point are too large to send "
                         "(%zu bytes)", size);
        }
        free(image);
        ns_h5_free(h);
        if (st != NS_OK) {
            /* a stop from rank 0 is not news to it; a signal here is */
            if (st == NS_ERR_INTERRUPTED)
                snprintf(perr, sizeof perr, "%s", ns_mpi_stop_asked(m) ? "stopped" : "interrupted");
            if (ns_mpi_send_failure(m, mine[k], st, perr) != NS_OK)
                return NS_ERR_NOMEM;
            return st;
        }
    }
    return ns_mpi_send_done(m);
}

int ns_sweep_run(ns_sweep_job *job, char *err, size_t errlen)
{
    long *order = malloc((size_t)job->npoints * sizeof *order);
    int *owner = malloc((size_t)job->npoints * sizeof *owner);
    if (!order || !owner) {
        free(order);
        free(owner);
        snprintf(err, errlen, "out of memory");
        if (job->mpi->rank > 0)
            ns_mpi_send_failure(job->mpi, -1, NS_ERR_NOMEM, err);
        return NS_ERR_NOMEM;
    }
    long n = ns_sweep_plan(job->cost, job->done, job->npoints, job->mpi->size, order, owner);
    long nmine = 0;
    for (long k = 0; k < n; k++) /* this rank's points, most expensive first */
        if (owner[order[k]] == job->mpi->rank)
            order[nmine++] = order[k];
    int st = job->mpi->rank == 0 ? run_lead(job, order, nmine, err, errlen)
                                 : run_worker(job, order, nmine);
    free(order);
    free(owner);
    return st;
}

int ns_sweep_end(ns_mpi *mpi, int exit_status)
{
    if (mpi->rank > 0)
        return ns_mpi_wait_end(mpi);
    ns_mpi_end_all(mpi, exit_status);
    return exit_status;
}
