/* sweep_run.h: running a sweep's points, in one process or shared among MPI ranks.
 *
 * Every rank plans the same way (sweep_plan.h) over the points not yet done and runs its own,
 * each into a fresh in-memory HDF5 file (a point file: config/, propagate/, theory/ at its root).
 * Rank 0 keeps the store (sweep_store.h): its own points go in directly, the workers' arrive as
 * images (mpi_sweep.h) and are taken in between rank 0's blocks. The progress file is saved when
 * the first point is in, then at most once a second while points arrive (and never for more
 * than a tenth of the time: a kill -9 loses the points of the last second or so), and at once
 * when the sweep fails or is interrupted: then every rank stops after its current block, the
 * finished points are kept, and the caller reports one line. */
#ifndef NS_SWEEP_RUN_H
#define NS_SWEEP_RUN_H
#include "h5out.h"
#include "mpi_sweep.h"
#include "propagate.h"
#include "sweep_store.h"

/* runs point i into out (a point file), calling tick after every block; on failure a status and
 * a one-line message in err ("interrupted" for NS_ERR_INTERRUPTED) */
typedef int (*ns_sweep_point_fn)(void *ctx, long point, ns_h5 *out, ns_tick_fn tick,
                                 void *tick_ctx, char *err, size_t errlen);

typedef struct {
    long npoints;
    const double *cost;         /* [npoints] estimated work: the plan */
    const long *blocks;         /* [npoints] blocks run (forward and backward): progress */
    const unsigned char *done;  /* [npoints] already in the store (every rank has it) */
    ns_sweep_point_fn run;
    void *ctx;
    ns_mpi *mpi;
    ns_sweep_store *store;      /* rank 0; NULL on the workers */
    /* progress and stop requests: called with the blocks (forward and backward) done and to do
     * (rank 0; 0 and 0 on the workers); a nonzero return stops the sweep as interrupted. NULL:
     * no progress, no stop */
    ns_tick_fn tick;
    void *tick_ctx;
} ns_sweep_job;

/* rank 0: NS_OK when every point is in the store; else the first failure's status, a one-line
 * message in err naming it (and where it happened), and the store saved. Workers: NS_OK after
 * sending their points, or the status they stopped with; then ns_sweep_end tells them how the
 * job ended. NS_ERR_NOMEM with more than one rank: a message was lost, and only ns_mpi_abort
 * ends the job. */
int ns_sweep_run(ns_sweep_job *job, char *err, size_t errlen);
/* rank 0: the job's exit status to every worker; workers: wait for it and return it */
int ns_sweep_end(ns_mpi *mpi, int exit_status);

#endif
