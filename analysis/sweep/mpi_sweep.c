/* mpi_sweep.c: the messages of mpi_sweep.h, over MPI when the build has it.
 *
 * Worker -> rank 0, tag TAG_WORK: a header {kind, point, status} of three int64, then the image
 * (RESULT) or the message (FAILURE). Rank 0 -> worker: TAG_STOP (empty), TAG_END (the exit
 * status). Messages between two ranks arrive in the order they were sent. */
#define _POSIX_C_SOURCE 200809L
#include "mpi_sweep.h"
#include "normscope.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef NS_HAVE_MPI
#include <limits.h>
#include <mpi.h>
#endif

/* the variables a launcher sets: Open MPI's mpirun, then PMI and PMIx (srun) */
static const char *launch_var(const char *const *names)
{
    for (int i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return v;
    }
    return NULL;
}

void ns_mpi_launch_env(int *rank, int *size)
{
    static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", NULL};
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", NULL};
    const char *r = launch_var(ranks), *s = launch_var(sizes);
    *rank = r ? atoi(r) : 0;
    *size = s ? atoi(s) : r ? 0 : 1; /* 0: launched, but the launcher (PMIx) names no size */
}

static int saved_stderr = -1;

/* a worker that exits while still quiet (a usage error: exit 2 from the option parser) lingers a
 * little, so that the launcher does not kill rank 0 before it has reported the error */
static void linger(void)
{
    struct timespec half = {0, 500000000};
    if (saved_stderr >= 0)
        nanosleep(&half, NULL);
}

void ns_mpi_quiet(int on)
{
    static int registered;
    if (!on) {
        if (saved_stderr >= 0) {
            fflush(stderr);
            dup2(saved_stderr, STDERR_FILENO);
            close(saved_stderr);
            saved_stderr = -1;
        }
        return;
    }
    int null = open("/dev/null", O_WRONLY);
    if (null < 0)
        return;
    fflush(stdout);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    if (!registered)
        registered = atexit(linger) == 0;
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    close(null);
}

#ifdef NS_HAVE_MPI

enum { TAG_WORK = 1, TAG_STOP = 2, TAG_END = 3 };
enum { HEADER = 3 * sizeof(int64_t) };

int ns_mpi_start(ns_mpi *m)
{
    int rank, size, provided;
    *m = (ns_mpi){.rank = 0, .size = 1};
    ns_mpi_launch_env(&rank, &size);
    if (size == 1)
        return NS_OK; /* not launched by mpirun or srun, or alone: no MPI at all */
    /* OpenMP threads compute; only the main thread talks */
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &m->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &m->size);
    m->started = 1;
    return NS_OK;
}

void ns_mpi_finish(ns_mpi *m)
{
    if (m->started)
        MPI_Finalize();
    m->started = 0;
}

void ns_mpi_abort(const ns_mpi *m, int status)
{
    if (m->started)
        MPI_Abort(MPI_COMM_WORLD, status);
}

void ns_mpi_bcast(const ns_mpi *m, void *buf, size_t size)
{
    if (m->size > 1)
        MPI_Bcast(buf, (int)size, MPI_BYTE, 0, MPI_COMM_WORLD);
}

static int send_work(int kind, long point, int status, const void *data, size_t size)
{
    unsigned char *buf = malloc(HEADER + size);
    if (!buf)
        return NS_ERR_NOMEM;
    int64_t head[3] = {kind, point, status};
    memcpy(buf, head, HEADER);
    if (size)
        memcpy(buf + HEADER, data, size);
    MPI_Send(buf, (int)(HEADER + size), MPI_BYTE, 0, TAG_WORK, MPI_COMM_WORLD);
    free(buf);
    return NS_OK;
}

int ns_mpi_send_result(const ns_mpi *m, long point, const void *image, size_t size)
{
    (void)m;
    if (size > (size_t)INT_MAX - HEADER)
        return NS_ERR_INVALID;
    return send_work(NS_MPI_RESULT, point, NS_OK, image, size);
}

int ns_mpi_send_failure(const ns_mpi *m, long point, int status, const char *message)
{
    (void)m;
    return send_work(NS_MPI_FAILURE, point, status, message, strlen(message) + 1);
}

int ns_mpi_send_done(const ns_mpi *m)
{
    (void)m;
    return send_work(NS_MPI_DONE, -1, NS_OK, NULL, 0);
}

int ns_mpi_stop_asked(ns_mpi *m)
{
    int flag = 0;
    if (!m->stop) {
        MPI_Iprobe(0, TAG_STOP, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
        if (flag) {
            MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            m->stop = 1;
        }
    }
    return m->stop;
}

int ns_mpi_wait_end(const ns_mpi *m)
{
    (void)m;
    for (;;) { /* a stop may still be on its way: take it, then the verdict */
        int status = -1, flag = 0;
        MPI_Status s;
        struct timespec nap = {0, 10000000}; /* 10 ms */
        /* Iprobe and a nap rather than a blocking probe, which spins and takes the core that
         * rank 0 (or another worker) still computes on when ranks outnumber cores */
        MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &s);
        if (!flag) {
            nanosleep(&nap, NULL);
            continue;
        }
        if (s.MPI_TAG == TAG_END) {
            MPI_Recv(&status, 1, MPI_INT, 0, TAG_END, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            return status;
        }
        MPI_Recv(NULL, 0, MPI_BYTE, 0, s.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
}

int ns_mpi_poll(const ns_mpi *m, ns_mpi_msg *msg)
{
    int flag = 0, count = 0;
    MPI_Status s;
    memset(msg, 0, sizeof *msg);
    if (m->size == 1)
        return 0;
    MPI_Iprobe(MPI_ANY_SOURCE, TAG_WORK, MPI_COMM_WORLD, &flag, &s);
    if (!flag)
        return 0;
    MPI_Get_count(&s, MPI_BYTE, &count);
    unsigned char *buf = malloc((size_t)count + 1); /* + 1: a message is NUL-terminated */
    if (!buf) {
        msg->source = s.MPI_SOURCE;
        return -1; /* the message stays queued */
    }
    MPI_Recv(buf, count, MPI_BYTE, s.MPI_SOURCE, TAG_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    int64_t head[3];
    memcpy(head, buf, HEADER);
    msg->kind = (int)head[0], msg->point = (long)head[1], msg->status = (int)head[2];
    msg->source = s.MPI_SOURCE;
    msg->size = (size_t)count - HEADER;
    memmove(buf, buf + HEADER, msg->size);
    buf[msg->size] = 0;
    msg->data = buf;
    return 1;
}

void ns_mpi_stop_all(const ns_mpi *m)
{
    for (int r = 1; r < m->size; r++)
        MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
}

void ns_mpi_end_all(const ns_mpi *m, int status)
{
    for (int r = 1; r < m->size; r++)
        MPI_Send(&status, 1, MPI_INT, r, TAG_END, MPI_COMM_WORLD);
}

#else /* no MPI: one process */

int ns_mpi_start(ns_mpi *m)
{
    int rank, size;
    *m = (ns_mpi){.rank = 0, .size = 1};
    ns_mpi_launch_env(&rank, &size);
    return size > 1 || rank > 0 ? NS_ERR_INVALID : NS_OK;
}

void ns_mpi_finish(ns_mpi *m) { (void)m; }
void ns_mpi_abort(const ns_mpi *m, int status) { (void)m, (void)status; }
void ns_mpi_bcast(const ns_mpi *m, void *buf, size_t size) { (void)m, (void)buf, (void)size; }

int ns_mpi_send_result(const ns_mpi *m, long point, const void *image, size_t size)
{
    (void)m, (void)point, (void)image, (void)size;
    return NS_ERR_INVALID;
}

int ns_mpi_send_failure(const ns_mpi *m, long point, int status, const char *message)
{
    (void)m, (void)point, (void)status, (void)message;
    return NS_OK;
}

int ns_mpi_send_done(const ns_mpi *m)
{
    (void)m;
    return NS_OK;
}
int ns_mpi_stop_asked(ns_mpi *m) { return m->stop; }
int ns_mpi_wait_end(const ns_mpi *m)
{
    (void)m;
    return 0;
}

int ns_mpi_poll(const ns_mpi *m, ns_mpi_msg *msg)
{
    (void)m;
    memset(msg, 0, sizeof *msg);
    return 0;
}

void ns_mpi_stop_all(const ns_mpi *m) { (void)m; }
void ns_mpi_end_all(const ns_mpi *m, int status) { (void)m, (void)status; }

#endif
