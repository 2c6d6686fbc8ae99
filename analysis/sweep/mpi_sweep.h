/* mpi_sweep.h: the messages that share a sweep's points among MPI ranks.
 *
 * MPI lives here and nowhere else (the core never sees it). Rank 0 owns the output: workers
 * (ranks 1..N-1) send it each finished point as an in-memory HDF5 image, or why they failed, and
 * then wait for the status the whole job ends with; rank 0 can tell them to stop. MPI starts only
 * when a launcher (mpirun, srun) started the process. Built without MPI (NS_HAVE_MPI undefined)
 * every process is rank 0 of 1, and a launch with more processes is refused. */
#ifndef NS_MPI_SWEEP_H
#define NS_MPI_SWEEP_H
#include <stddef.h>

typedef struct {
    int rank, size;
    int started; /* MPI_Init ran: MPI_Finalize is due */
    int stop;    /* a worker: rank 0 asked it to stop */
} ns_mpi;

/* what a launcher says before MPI starts: this process's rank and the number of processes
 * (0 and 1 when none launched it; size 0 when the launcher does not say) */
void ns_mpi_launch_env(int *rank, int *size);
/* a worker is silent: stdout goes to /dev/null for good, and stderr while options are parsed
 * (every rank sees the same usage error; rank 0 reports it); on = 0 gives stderr back */
void ns_mpi_quiet(int on);
/* starts MPI if a launcher asked for it; NS_ERR_INVALID if more than one process was launched
 * but this build has no MPI */
int ns_mpi_start(ns_mpi *m);
void ns_mpi_finish(ns_mpi *m);
/* ends every rank at once with this exit status (after the caller printed why); returns only
 * without MPI */
void ns_mpi_abort(const ns_mpi *m, int status);
/* rank 0's bytes to every rank */
void ns_mpi_bcast(const ns_mpi *m, void *buf, size_t size);

/* ---- workers ---- */
/* NS_ERR_INVALID if the image is too large for one message (2 GiB); NS_ERR_NOMEM if the message
 * could not be put together (then only ns_mpi_abort ends the job: rank 0 waits for this rank) */
int ns_mpi_send_result(const ns_mpi *m, long point, const void *image, size_t size);
/* status: the failure (NS_ERR_INTERRUPTED after a signal or a stop) and a one-line message */
int ns_mpi_send_failure(const ns_mpi *m, long point, int status, const char *message);
int ns_mpi_send_done(const ns_mpi *m);
/* has rank 0 asked this worker to stop? (does not wait) */
int ns_mpi_stop_asked(ns_mpi *m);
/* waits for rank 0's verdict: the exit status of the job */
int ns_mpi_wait_end(const ns_mpi *m);

/* ---- rank 0 ---- */
enum { NS_MPI_RESULT = 1, NS_MPI_FAILURE, NS_MPI_DONE };
typedef struct {
    int kind, source, status;
    long point;
    void *data; /* RESULT: the image; FAILURE: the message (NUL-terminated); free() it */
    size_t size;
} ns_mpi_msg;
/* the next message from a worker if one is waiting: 1 and msg filled, else 0; -1 if there was
 * no memory to take it (msg->source names the sender) */
int ns_mpi_poll(const ns_mpi *m, ns_mpi_msg *msg);
/* asks every worker to stop after its current block */
void ns_mpi_stop_all(const ns_mpi *m);
/* the job's exit status to every worker */
void ns_mpi_end_all(const ns_mpi *m, int status);

#endif
