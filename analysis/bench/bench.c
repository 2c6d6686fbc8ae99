/* bench.c: the workloads of `normscope bench` (bench.h). */
#define _GNU_SOURCE
#include "bench.h"
#include "clock.h"
#include "propagate.h"
#include "train.h"
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

void openblas_set_num_threads(int num_threads);

typedef enum { W_PROPAGATE, W_TRAIN } wkind;

typedef struct {
    const char *id;
    wkind kind;
    ns_block_kind block;
    int row; /* the placement: a row of the table (core/placement.c) */
    int depth, width, heads, seq, batch, vocab;
    int metrics;
    int window;    /* -1: chosen by ns_propagate_auto_window, else as given (0: all) */
    double target; /* rate / ceiling to reach, 0: none */
    const char *peer;   /* torch_peer.py's task for this row, NULL: none */
    double peer_target; /* the speed-up over the peer to reach */
} workload;

/* The standard workloads; the quick set has the same structure at toy sizes. Placements by row:
 * W1 runs the table's first three (PreNorm, PostNorm, SpanNorm), W2 SpanNorm, W3 and W4 PreNorm.
 * The peer rows are the ones torch_peer.py writes out: its propagate is W1's first row's block,
 * its train W2's. */
static const workload full_set[] = {
    {"W1", W_PROPAGATE, NS_BLOCK_TRANSFORMER, 0, 64, 256, 4, 128, 8, 0, 1, 0, 0.80, "propagate",
     1.8},
    {"W1", W_PROPAGATE, NS_BLOCK_TRANSFORMER, 1, 64, 256, 4, 128, 8, 0, 1, 0, 0.80, NULL, 0},
    {"W1", W_PROPAGATE, NS_BLOCK_TRANSFORMER, 2, 64, 256, 4, 128, 8, 0, 1, 0, 0.80, NULL, 0},
    {"W1", W_PROPAGATE, NS_BLOCK_TRANSFORMER, 0, 64, 256, 4, 128, 8, 0, 0, 0, 0, NULL, 0},
    {"W2", W_TRAIN, NS_BLOCK_TRANSFORMER, 2, 64, 256, 4, 128, 8, 256, 0, 0, 0.75, "train", 1.5},
    {"W3", W_PROPAGATE, NS_BLOCK_MLP, 0, 64, 512, 0, 128, 8, 0, 1, 0, 0.80, NULL, 0},
    {"W4", W_PROPAGATE, NS_BLOCK_MLP, 0, 256, 512, 0, 128, 8, 0, 1, -1, 0, NULL, 0},
    {"W4", W_PROPAGATE, NS_BLOCK_MLP, 0, 512, 512, 0, 128, 8, 0, 1, -1, 0, NULL, 0},
    {"W4", W_PROPAGATE, NS_BLOCK_MLP, 0, 1024, 512, 0, 128, 8, 0, 1, -1, 0, NULL, 0},
};
static const workload quick_set[] = {
    {"W1", W_PROPAGATE, NS_BLOCK_TRANSFORMER, 0, 4, 64, 2, 32, 2, 0, 1, 0, 0, "propagate", 0},
    {"W1", W_PROPAGATE, NS_BLOCK_TRANSFORMER, 1, 4, 64, 2, 32, 2, 0, 1, 0, 0, NULL, 0},
    {"W1", W_PROPAGATE, NS_BLOCK_TRANSFORMER, 2, 4, 64, 2, 32, 2, 0, 1, 0, 0, NULL, 0},
    {"W1", W_PROPAGATE, NS_BLOCK_TRANSFORMER, 0, 4, 64, 2, 32, 2, 0, 0, 0, 0, NULL, 0},
    {"W2", W_TRAIN, NS_BLOCK_TRANSFORMER, 2, 4, 64, 2, 32, 2, 64, 0, 0, 0, "train", 0},
    {"W3", W_PROPAGATE, NS_BLOCK_MLP, 0, 4, 64, 0, 32, 2, 0, 1, 0, 0, NULL, 0},
    {"W4", W_PROPAGATE, NS_BLOCK_MLP, 0, 16, 64, 0, 32, 2, 0, 1, 4, 0, NULL, 0},
    {"W4", W_PROPAGATE, NS_BLOCK_MLP, 0, 32, 64, 0, 32, 2, 0, 1, 4, 0, NULL, 0},
    {"W4", W_PROPAGATE, NS_BLOCK_MLP, 0, 64, 64, 0, 32, 2, 0, 1, 4, 0, NULL, 0},
};
#define NSET (int)(sizeof full_set / sizeof full_set[0])

static ns_config config_of(const workload *w)
{
    return (ns_config){.block = w->block, .placement = ns_placement_at(w->row),
                       .depth = w->depth, .width = w->width, .hidden = 4 * w->width,
                       .ntok = w->seq * w->batch, .seq = w->seq, .heads = w->heads,
                       .act = NS_ACT_GELU, .norm = NS_NORM_LAYERNORM, .norm_eps = 1e-5,
                       .alpha = 1, .window = w->window > 0 ? w->window : 0};
}

/* ---- the matrix products of a workload ----------------------------------------------------- */

typedef struct {
    int M, N, K, ta, tb;
    double count; /* per repeat */
} product;

#define MAX_PRODUCTS 24 /* the most a workload has: 18 (W2) */

static int add(product *p, int n, int M, int N, int K, int ta, int tb, double count)
{
    p[n] = (product){M, N, K, ta, tb, count};
    return n + 1;
}

/* y = x W [rows, nin] -> [rows, nout], and its backward (dx = dy W^T, dW = x^T dy) */
static int linear(product *p, int n, int rows, int nin, int nout, double count)
{
    n = add(p, n, rows, nout, nin, 0, 0, count);
    n = add(p, n, rows, nin, nout, 0, 1, count);
    return add(p, n, nin, nout, rows, 1, 0, count);
}

/* every product of one repeat, forward and backward (ops_linear.c, ops_attention.c, lm.c) */
static int products_of(const workload *w, product *p)
{
    int n = 0, N = w->seq * w->batch, d = w->width, h = 4 * d, L = w->depth;
    n = linear(p, n, N, d, h, L); /* MLP: w1, w2 */
    n = linear(p, n, N, h, d, L);
    if (w->block != NS_BLOCK_MLP) {
        int T = w->seq, dh = d / w->heads;
        double per = (double)L * w->batch * w->heads; /* per sequence and head */
        n = linear(p, n, N, d, d, 4.0 * L);           /* W_Q, W_K, W_V, W_O */
        n = add(p, n, T, T, dh, 0, 1, per);           /* Q K^T */
        n = add(p, n, T, dh, T, 0, 0, per);           /* P V */
        n = add(p, n, T, T, dh, 0, 1, per);           /* dP = dO V^T */
        n = add(p, n, T, dh, T, 1, 0, per);           /* dV = P^T dO */
        n = add(p, n, T, dh, T, 0, 0, per);           /* dQ = dS K */
        n = add(p, n, T, dh, T, 1, 0, per);           /* dK = dS^T Q */
    }
    if (w->kind == W_TRAIN)
        n = linear(p, n, N, d, w->vocab, 1); /* the LM head */
    return n;
}

static double gflop_of(const product *p, int n)
{
    double f = 0;
    for (int i = 0; i < n; i++)
        f += 2.0 * p[i].M * p[i].N * p[i].K * p[i].count;
    return f * 1e-9;
}

/* one product of shape q: OpenBLAS threading over `threads` (concurrent = 0), or `threads`
 * single-threaded products at once, one per OpenMP thread, each into its own C (concurrent = 1);
 * the wall seconds */
static double time_product(const product *q, const float *A, const float *B, float *C,
                           size_t stride_c, int threads, int concurrent)
{
    int lda = q->ta ? q->M : q->K, ldb = q->tb ? q->K : q->N;
    CBLAS_TRANSPOSE ta = q->ta ? CblasTrans : CblasNoTrans, tb = q->tb ? CblasTrans : CblasNoTrans;
    double t0 = ns_now();
    if (!concurrent) {
        cblas_sgemm(CblasRowMajor, ta, tb, q->M, q->N, q->K, 1, A, lda, B, ldb, 0, C, q->N);
    } else {
#pragma omp parallel num_threads(threads)
        {
#ifdef _OPENMP
            size_t me = (size_t)omp_get_thread_num();
#else
            size_t me = 0;
#endif
            cblas_sgemm(CblasRowMajor, ta, tb, q->M, q->N, q->K, 1, A, lda, B, ldb, 0,
                        C + me * stride_c, q->N);
        }
    }
    return ns_now() - t0;
}

/* The sgemm ceiling at a workload's product shapes. One reading, GFLOP/s: for each shape the
 * better of OpenBLAS's own threading over `threads` on one product, and `threads`
 * single-threaded products running at once (how the core runs its row blocks and attention
 * heads), each as the best of enough calls for a steady minimum (at least 3, and `window`
 * seconds, 0.05 but for --quick's toy shapes, after one that only wakes the threads and caches);
 * then the shapes weighted by their counts.
 * Readings are taken before each of the workload's runs and after the last, and the ceiling is
 * their median, the statistic the workload's time gets: on a virtual machine the rate at one
 * shape can move by 20-30% over seconds (analysis/bench/README.md, Method), and the best of
 * readings minutes apart would set every run against the fastest moment of the session. */
typedef struct {
    const product *p;
    int n, threads;
    double window;
    float *buf, *A, *B, *C;
    size_t most_c;
    double *reading; /* GFLOP/s, one per reading */
    int nreadings, most_readings;
} ceiling;

static int ceiling_init(ceiling *c, const product *p, int n, int threads, double window,
                        int most_readings)
{
    size_t most = 0, most_c = 0;
    for (int i = 0; i < n; i++) {
        size_t a = (size_t)p[i].M * p[i].K, b = (size_t)p[i].K * p[i].N;
        size_t cc = (size_t)p[i].M * p[i].N;
        most = a > most ? a : most, most = b > most ? b : most;
        most_c = cc > most_c ? cc : most_c;
    }
    size_t total = 2 * most + (size_t)threads * most_c;
    *c = (ceiling){.p = p, .n = n, .threads = threads, .window = window, .most_c = most_c,
                   .most_readings = most_readings};
    c->buf = malloc(total * sizeof *c->buf);
    c->reading = calloc((size_t)most_readings, sizeof *c->reading);
    if (!c->buf || !c->reading)
        return NS_ERR_NOMEM;
    for (size_t i = 0; i < total; i++)
        c->buf[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    c->A = c->buf, c->B = c->buf + most, c->C = c->buf + 2 * most;
    return NS_OK;
}

static void ceiling_free(ceiling *c)
{
    free(c->buf);
    free(c->reading);
}

static void ceiling_read(ceiling *c)
{
    if (c->nreadings >= c->most_readings)
        return;
    const product *p = c->p;
    double best_rate[MAX_PRODUCTS] = {0};
    /* all shapes one way, then all the other way: OpenBLAS's worker threads and OpenMP's spin a
     * while after their last job, and would steal a core from a measurement of the other kind
     * that followed at once; the concurrent kind goes last, as the workload runs the same way */
    for (int concurrent = 0; concurrent < 2; concurrent++) {
        openblas_set_num_threads(concurrent ? 1 : c->threads);
        for (int i = 0; i < c->n; i++) {
            double best = INFINITY, spent = 0;
            time_product(&p[i], c->A, c->B, c->C, c->most_c, c->threads, concurrent);
            for (int r = 0; r < 3 || (spent < c->window && r < 10000); r++) {
                double dt = time_product(&p[i], c->A, c->B, c->C, c->most_c, c->threads,
                                         concurrent);
                spent += dt;
                best = dt < best ? dt : best;
            }
            double rate = (concurrent ? c->threads : 1) * 2.0 * p[i].M * p[i].N * p[i].K / best;
            best_rate[i] = rate > best_rate[i] ? rate : best_rate[i];
        }
    }
    openblas_set_num_threads(1); /* the core's setting (threads.c) */
    double flop = 0, seconds = 0;
    for (int i = 0; i < c->n; i++) {
        double one = 2.0 * p[i].M * p[i].N * p[i].K;
        flop += one * p[i].count, seconds += one * p[i].count / best_rate[i];
    }
    c->reading[c->nreadings++] = flop / seconds * 1e-9;
}

/* ---- one workload, in the child ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the median of x[0..n), which it sorts in place */
static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

/* one propagate in o's workspace, with or without the metrics; its wall seconds */
static int timed_propagate(ns_propagate_opts *o, int no_metrics, double *seconds)
{
    ns_propagate_result res;
    o->no_metrics = no_metrics;
    double t0 = ns_now();
    int st = ns_propagate(o, &res, NULL, NULL);
    *seconds = ns_now() - t0;
    if (st == NS_OK)
        ns_propagate_result_free(&res);
    return st;
}

/* A first run on fresh memory (*first), not one of the repeats: the repeats reuse its workspace,
 * as a sweep's points do, and the median is their steady time, as W2's is after its warm-up
 * step. A reading of the ceiling c comes before each repeat. With `paired`, every repeat also
 * runs once with every metric on, in the same workspace, the two in turn (in alternating
 * order), so that the metrics' cost is measured under the same conditions as the run without
 * them: separate workloads minutes apart can differ by more than that cost on a shared or
 * virtual machine. */
static int run_propagate(const workload *w, ceiling *c, int repeats, double *times,
                         double *paired, double *first, int *window)
{
    ns_propagate_opts o = {.model = config_of(w), .seeds = 1, .seed = 1};
    if (w->window < 0)
        o.model.window = ns_propagate_auto_window(&o.model, NS_PROPAGATE_MEMORY_BUDGET);
    *window = o.model.window;
    int st = ns_workspace_create(&o.workspace);
    if (st == NS_OK)
        st = timed_propagate(&o, !w->metrics, first);
    for (int r = 0; r < repeats && st == NS_OK; r++) {
        ceiling_read(c);
        for (int k = 0; k < (paired ? 2 : 1) && st == NS_OK; k++) {
            int metrics_run = paired && k != r % 2; /* even repeats run without metrics first */
            st = timed_propagate(&o, !w->metrics && !metrics_run,
                                 metrics_run ? &paired[r] : &times[r]);
        }
    }
    ns_workspace_free(o.workspace);
    return st;
}

static int run_train(const workload *w, ceiling *c, int repeats, double *times, double *first)
{
    ns_data *data = NULL;
    ns_trainer *t = NULL;
    int st = ns_data_markov(&data, w->vocab, 1, 4, 0.05, 1);
    ns_train_opts o = {.lm = {.blocks = config_of(w), .vocab = w->vocab},
                       .steps = repeats + 1, .warmup = 1, .lr = 1e-3, .min_lr = 1e-4,
                       .weight_decay = 0.1, .clip = 1,
                       .adam = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8}, .seed = 1,
                       .probe_every = 0, .eval_batches = 1, .spike_window = 50, .spike_z = 6};
    o.lm.blocks.alpha = 1 / sqrt(w->depth); /* SpanNorm's Scale Init */
    if (!st)
        st = ns_trainer_create(&t, &o, data); /* takes data */
    else
        ns_data_free(data);
    double loss;
    /* step 1 warms up (first touch of the activations and the optimizer state) */
    for (int s = 1; !st && s <= repeats + 1; s++) {
        if (s > 1)
            ceiling_read(c);
        double t0 = ns_now();
        st = ns_trainer_step(t, s, &loss);
        *(s > 1 ? &times[s - 2] : first) = ns_now() - t0;
    }
    ns_trainer_free(t);
    return st;
}

typedef struct {
    int status;
    char msg[160];
    ns_bench_row row;
} child_report;

static void child(const workload *w, const ns_bench_opts *o, int fd)
{
    child_report rep = {0};
    ns_bench_row *row = &rep.row;
    product p[MAX_PRODUCTS];
    int np = products_of(w, p);
    /* the W1 run without metrics is paired with runs with them (run_propagate) */
    int paired = w->kind == W_PROPAGATE && !w->metrics;
    double *times = calloc(2 * (size_t)o->repeats, sizeof *times), *paired_times = NULL;
    if (times && paired)
        paired_times = times + o->repeats;
    ns_set_threads(o->threads);
    snprintf(row->id, sizeof row->id, "%s", w->id);
    row->depth = w->depth, row->repeats = o->repeats, row->target = o->quick ? 0 : w->target;
    row->metrics = w->metrics;
    const char *placement = ns_placement_at(w->row)->name;
    if (w->kind == W_TRAIN)
        snprintf(row->name, sizeof row->name, "train step %s L=%d d=%d H=%d T=%d B=%d V=%d",
                 placement, w->depth, w->width, w->heads, w->seq, w->batch, w->vocab);
    else {
        char heads[16] = "";
        if (w->block != NS_BLOCK_MLP)
            snprintf(heads, sizeof heads, " H=%d", w->heads);
        snprintf(row->name, sizeof row->name, "%s propagate %s L=%d d=%d%s T=%d B=%d%s",
                 w->block == NS_BLOCK_MLP ? "MLP" : "transformer", placement, w->depth, w->width,
                 heads, w->seq, w->batch, w->metrics ? "" : " (no metrics)");
    }
    /* readings before each repeat (run_propagate, run_train) and after the last */
    ceiling c = {0};
    double window = o->quick ? 0.002 : 0.05; /* seconds per shape and kind of a reading */
    rep.status = !times ? NS_ERR_NOMEM
                        : ceiling_init(&c, p, np, o->threads, window, o->repeats + 1);
    if (rep.status == NS_OK)
        rep.status = w->kind == W_TRAIN
                         ? run_train(w, &c, o->repeats, times, &row->first_seconds)
                         : run_propagate(w, &c, o->repeats, times, paired_times,
                                         &row->first_seconds, &row->window);
    row->with_metrics_seconds = NAN;
    if (rep.status == NS_OK) {
        ceiling_read(&c);
        row->seconds = median(times, o->repeats);
        if (paired_times)
            row->with_metrics_seconds = median(paired_times, o->repeats);
        row->gflop = gflop_of(p, np);
        row->gflops = row->gflop / row->seconds;
        row->sgemm_gflops = median(c.reading, c.nreadings); /* sorts them */
        row->sgemm_low_gflops = c.reading[0];
        row->sgemm_high_gflops = c.reading[c.nreadings - 1];
        row->ratio = row->gflops / row->sgemm_gflops;
    } else {
        snprintf(rep.msg, sizeof rep.msg, "%s: %s", row->name, ns_strerror(rep.status));
    }
    ceiling_free(&c);
    free(times);
    ssize_t n = write(fd, &rep, sizeof rep);
    _exit(n == (ssize_t)sizeof rep ? 0 : 1);
}

/* runs w in a child; its row, with the child's peak resident set */
static int run_child(const workload *w, const ns_bench_opts *o, ns_bench_row *row, char *msg,
                     size_t msglen)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(msg, msglen, "cannot create a pipe: %s", strerror(errno));
        return NS_ERR_IO;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        snprintf(msg, msglen, "cannot fork: %s", strerror(errno));
        return NS_ERR_IO;
    }
    if (pid == 0) {
        close(fds[0]);
        child(w, o, fds[1]);
    }
    close(fds[1]);
    child_report rep;
    size_t got = 0;
    while (got < sizeof rep) {
        ssize_t n = read(fds[0], (char *)&rep + got, sizeof rep - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int wst = 0;
    struct rusage ru;
    while (wait4(pid, &wst, 0, &ru) < 0 && errno == EINTR)
        ;
    if (got != sizeof rep || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
        snprintf(msg, msglen, "workload %s (%s L=%d) died%s", w->id,
                 ns_placement_at(w->row)->name, w->depth, WIFSIGNALED(wst) ? " on a signal" : "");
        return NS_ERR_IO;
    }
    if (rep.status != NS_OK) {
        snprintf(msg, msglen, "%s", rep.msg);
        return rep.status;
    }
    *row = rep.row;
    row->peak_rss_mib = (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
    return NS_OK;
}

/* ---- the PyTorch peer (torch_peer.py) ------------------------------------------------------ */

/* Runs argv (argv[0] looked up in PATH) with its stdout into *out (malloc'd, NUL-terminated) and
 * its stderr discarded; its exit status, or -1 if it could not run or be read. */
static int run_captured(char *const argv[], char **out)
{
    extern char **environ;
    int fds[2], wst = 0, status = -1;
    *out = NULL;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    fflush(NULL);
    int spawned = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) == 0;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    size_t len = 0, cap = 0;
    char *buf = NULL;
    int ok = spawned;
    while (ok) {
        if (cap - len < 4096) {
            char *b = realloc(buf, cap = 2 * cap + 65536);
            if (!b) {
                ok = 0;
                break;
            }
            buf = b;
        }
        ssize_t n = read(fds[0], buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fds[0]);
    if (spawned) {
        while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
            ;
        if (ok && WIFEXITED(wst))
            status = WEXITSTATUS(wst);
    }
    if (status < 0 || !buf) {
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    *out = buf;
    return status;
}

/* the number or string after "key": in a flat JSON text, or NAN / "" */
static double json_number_of(const char *json, const char *key)
{
    char pat[48];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

static void json_string_of(const char *json, const char *key, char *to, size_t n)
{
    char pat[48];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(json, pat);
    size_t len = p ? strcspn(p += strlen(pat), "\"") : 0;
    snprintf(to, n, "%.*s", (int)len, p ? p : "");
}

/* runs w's peer task with o's threads and repeats; its median seconds. The script is
 * NS_TORCH_PEER_SCRIPT, its path in the source tree (CMakeLists.txt). */
static int run_peer(const workload *w, const ns_bench_opts *o, ns_bench_result *r,
                    double *seconds, char *msg, size_t msglen)
{
    char num[8][16];
    int v[] = {w->depth, w->width, w->heads, w->seq, w->batch, w->vocab ? w->vocab : 256,
               o->threads, o->repeats};
    for (int i = 0; i < 8; i++)
        snprintf(num[i], sizeof num[i], "%d", v[i]);
    char *argv[] = {(char *)o->python, NS_TORCH_PEER_SCRIPT, (char *)w->peer,
                    "--depth", num[0], "--width", num[1], "--heads", num[2], "--seq", num[3],
                    "--batch", num[4], "--vocab", num[5], "--threads", num[6],
                    "--repeats", num[7], NULL};
    char *out;
    int st = run_captured(argv, &out);
    *seconds = st == 0 ? json_number_of(out, "seconds") : NAN;
    if (st == 0)
        json_string_of(out, "torch", r->torch_version, sizeof r->torch_version);
    free(out);
    if (!(*seconds > 0) || !isfinite(*seconds)) {
        snprintf(msg, msglen, "the PyTorch peer of %s failed (exit %d): run %s %s %s --depth %s "
                 "--width %s --heads %s --seq %s --batch %s to see why", w->id, st, argv[0],
                 argv[1], argv[2], num[0], num[1], num[2], num[3], num[4]);
        return NS_ERR_IO;
    }
    return NS_OK;
}

/* whether the peer can run; else a note in r->peer_note */
static int peer_available(const ns_bench_opts *o, ns_bench_result *r)
{
    if (!o->python) {
        snprintf(r->peer_note, sizeof r->peer_note, "PyTorch peer not asked for");
        return 0;
    }
    if (access(NS_TORCH_PEER_SCRIPT, R_OK) != 0) {
        snprintf(r->peer_note, sizeof r->peer_note, "PyTorch peer skipped: %s not found",
                 NS_TORCH_PEER_SCRIPT);
        return 0;
    }
    char *argv[] = {(char *)o->python, "-c", "import torch", NULL}, *out;
    int st = run_captured(argv, &out);
    free(out);
    if (st != 0)
        snprintf(r->peer_note, sizeof r->peer_note,
                 "PyTorch peer skipped: %s cannot import torch (Debian: python3-torch; "
                 "--python names another interpreter)", o->python);
    return st == 0;
}

static int selected(const char *only, const char *id)
{
    if (!only)
        return 1;
    size_t n = strlen(id);
    for (const char *p = only; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && strncasecmp(p, id, n) == 0)
            return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}

int ns_bench_run(const ns_bench_opts *o, ns_bench_result *r, ns_bench_note_fn note, void *ctx,
                 char *msg, size_t msglen)
{
    const workload *set = o->quick ? quick_set : full_set;
    memset(r, 0, sizeof *r);
    r->metrics_overhead = NAN;
    for (int k = 0; k < 3; k++)
        r->w4_per_block[k] = NAN;
    snprintf(r->kernels, sizeof r->kernels, "%s%s%s", ns_blas_info(),
             o->kernels_note ? "; " : "", o->kernels_note ? o->kernels_note : "");
    if (o->only) { /* every id named must exist */
        for (const char *p = o->only; *p;) {
            size_t len = strcspn(p, ",");
            int found = 0;
            for (int i = 0; i < NSET && !found; i++)
                found = len == strlen(set[i].id) && strncasecmp(p, set[i].id, len) == 0;
            if (!found) {
                snprintf(msg, msglen, "--only: unknown workload '%.*s' (W1, W2, W3, W4)",
                         (int)(len > 20 ? 20 : len), p);
                return NS_ERR_INVALID;
            }
            p += len + (p[len] == ',');
        }
    }
    int n = 0, peers = 0;
    for (int i = 0; i < NSET; i++)
        n += selected(o->only, set[i].id), peers += selected(o->only, set[i].id) && set[i].peer;
    int with_peer = peers && peer_available(o, r);
    for (int i = 0, k = 0, w4 = 0; i < NSET; i++) {
        if (!selected(o->only, set[i].id))
            continue;
        if (note)
            note(ctx, k++, n, set[i].id);
        ns_bench_row *row = &r->rows[r->nrows];
        int st = run_child(&set[i], o, row, msg, msglen);
        if (st)
            return st;
        r->nrows++;
        if (isfinite(row->with_metrics_seconds))
            r->metrics_overhead = row->with_metrics_seconds / row->seconds - 1;
        if (strcmp(set[i].id, "W4") == 0 && w4 < 3)
            r->w4_per_block[w4++] = row->seconds / row->depth;
        if (with_peer && set[i].peer) { /* right after normscope's run, for like conditions */
            ns_bench_peer_row *p = &r->peers[r->npeers];
            *p = (ns_bench_peer_row){.normscope_seconds = row->seconds,
                                     .target = o->quick ? 0 : set[i].peer_target};
            snprintf(p->id, sizeof p->id, "%s", set[i].id);
            char what[32];
            snprintf(what, sizeof what, "%s in PyTorch", set[i].id);
            if (note)
                note(ctx, k - 1, n, what);
            if ((st = run_peer(&set[i], o, r, &p->torch_seconds, msg, msglen)))
                return st;
            p->speedup = p->torch_seconds / p->normscope_seconds;
            r->npeers++;
        }
    }
    return NS_OK;
}
