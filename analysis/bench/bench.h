/* bench.h: the standard workloads of `normscope bench`, each timed in a child process of its
 * own so that its peak resident memory is its own.
 *
 * A workload's rate counts the FLOPs of its matrix products, forward and backward (2 M N K per
 * product; attention's T x T products in full, as they are computed; norms, activations,
 * softmax and metrics not at all), divided by the median wall time of its repeats. Its ceiling
 * is OpenBLAS's sgemm, threaded over the same number of threads, timed in the same child on
 * every product shape of the workload and weighted by how often the workload computes each:
 * the rate the machine reaches on exactly that arithmetic and nothing else. It is read before
 * each repeat and after the last, and the median reading is the ceiling, so that both sides
 * of the ratio are medians over the same stretch of time. */
#ifndef NS_BENCH_H
#define NS_BENCH_H
#include <stddef.h>

#define NS_BENCH_MAX_ROWS 16

typedef struct {
    char id[8];          /* "W1", ... */
    char name[96];       /* what ran, e.g. "transformer propagate pre L=64 d=256 H=4 T=128 B=8" */
    int depth;
    int window;          /* blocks resident at once (propagate), 0: all */
    int repeats;
    double seconds;      /* median wall time of the repeats */
    double first_seconds; /* the first run, on fresh memory, before the repeats and not one of
                           * them (propagate: the repeats reuse its workspace; train: the
                           * warm-up step) */
    double gflop;        /* matrix-product GFLOP per repeat, forward and backward */
    double gflops;       /* gflop / seconds */
    double sgemm_gflops; /* the sgemm ceiling at the workload's shapes: the median of the
                          * readings before each repeat and after the last */
    double sgemm_low_gflops, sgemm_high_gflops; /* the lowest and highest reading */
    double ratio;        /* gflops / sgemm_gflops */
    double peak_rss_mib; /* the child's peak resident set */
    double target;       /* the ratio to reach (0: none) */
    int metrics;         /* propagate: 1 with every metric, 0 forward and backward only */
    double with_metrics_seconds; /* a run without metrics: the median of runs with every
                                  * metric, interleaved with its own repeats (else NAN) */
} ns_bench_row;

/* a workload run again as a user would write it in PyTorch (torch_peer.py), right after
 * normscope's own run of it */
typedef struct {
    char id[8];               /* the workload: "W1" (its first row, pre with metrics) or "W2" */
    double torch_seconds;     /* the peer's median over the same number of repeats, after one
                               * warm-up run */
    double normscope_seconds; /* the workload row's seconds */
    double speedup;           /* torch_seconds / normscope_seconds */
    double target;            /* the speed-up to reach (0: none) */
} ns_bench_peer_row;

typedef struct {
    int quick;           /* small shapes: a smoke test of the machinery, no targets */
    int threads;
    int repeats;
    const char *only;    /* NULL, or a comma list of workload ids ("W1,W3") */
    const char *kernels_note; /* why the BLAS runs the kernels it does (NULL: nothing to say) */
    const char *python;  /* the interpreter for the PyTorch peer; NULL: no peer */
} ns_bench_opts;

typedef struct {
    int nrows;
    ns_bench_row rows[NS_BENCH_MAX_ROWS];
    double metrics_overhead; /* W1 pre, interleaved runs: seconds with metrics / without - 1
                              * (NAN if not run) */
    double w4_per_block[3];  /* W4: seconds per block at each depth (NAN if not run) */
    char kernels[256];       /* the BLAS and its kernels */
    int npeers;
    ns_bench_peer_row peers[2];
    char torch_version[32];  /* the peer's PyTorch ("" if it did not run) */
    char peer_note[256];     /* why there are no peer rows ("" if they ran) */
} ns_bench_result;

/* progress: called before each workload with its index and the count; may be NULL */
typedef void (*ns_bench_note_fn)(void *ctx, int i, int n, const char *what);

/* Runs the workloads, and the PyTorch peer of those that have one when o->python imports torch
 * (else a note in r->peer_note). NS_OK; NS_ERR_INVALID for an unknown id in `only`; NS_ERR_NOMEM or
 * NS_ERR_IO (a child or the peer failed: msg says which) otherwise. */
int ns_bench_run(const ns_bench_opts *o, ns_bench_result *r, ns_bench_note_fn note, void *ctx,
                 char *msg, size_t msglen);

#endif
