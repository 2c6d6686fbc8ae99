/* cmd_bench.c: `normscope bench`, the performance targets measured in one run (bench.h).
 *
 * Prints a table (or, with --json, one JSON object): per workload the median wall time, the
 * matrix-product GFLOP/s, the sgemm ceiling measured at the same shapes, their ratio against
 * the target, and the peak resident memory; then the cost of the metrics on W1 and the time
 * per block of W4 at each depth. Exit 0 when it ran (whether or not a target was met: the
 * verdicts are in the output), 2 for bad options, 1 if a workload failed. */
#define _GNU_SOURCE
#include "bench.h"
#include "cli.h"
#include "normscope.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    ns_bench_opts b;
    int json;
} opts;

enum { OPT_QUICK = 1000, OPT_THREADS, OPT_REPEATS, OPT_ONLY, OPT_JSON };

static const struct argp_option options[] = {
    {"quick", OPT_QUICK, NULL, 0,
     "toy sizes: checks the machinery in seconds; no targets apply", 0},
    {"threads", OPT_THREADS, "N", 0, "OpenMP threads, and the sgemm ceiling's (default: all cores)",
     0},
    {"repeats", OPT_REPEATS, "N", 0, "runs per workload; the median is reported (default 3)", 0},
    {"only", OPT_ONLY, "LIST", 0, "comma list of workloads to run, e.g. W1,W3 (default: all)", 0},
    {"json", OPT_JSON, NULL, 0, "print one JSON object instead of the table", 0},
    {0}};

static error_t parse(int key, char *arg, struct argp_state *st)
{
    opts *o = st->input;
    switch (key) {
    case OPT_QUICK: o->b.quick = 1; break;
    case OPT_THREADS: o->b.threads = ns_cli_positive_int(st, "--threads", arg); break;
    case OPT_REPEATS: o->b.repeats = ns_cli_positive_int(st, "--repeats", arg); break;
    case OPT_ONLY: o->b.only = arg; break;
    case OPT_JSON: o->json = 1; break;
    case ARGP_KEY_ARG: argp_failure(st, NS_EXIT_USAGE, 0, "unexpected argument '%s'", arg); break;
    default: return ARGP_ERR_UNKNOWN;
    }
    return 0;
}

/* one line per workload on stderr when it is a terminal: a full bench takes minutes */
static void note(void *ctx, int i, int n, const char *what)
{
    if (*(int *)ctx)
        fprintf(stderr, "bench: workload %d of %d (%s)...\n", i + 1, n, what);
}

static const char *verdict(double ratio, double target)
{
    return target <= 0 ? "" : ratio >= target ? "met" : "missed";
}

static void print_table(const ns_bench_opts *o, const ns_bench_result *r)
{
    printf("normscope %s bench: %d thread%s, median of %d run%s%s\nBLAS: %s\n\n", ns_version(),
           o->threads, o->threads == 1 ? "" : "s", o->repeats, o->repeats == 1 ? "" : "s",
           o->quick ? " (--quick: toy sizes, no targets)" : "", r->kernels);
    printf("%-3s %-56s %7s %9s %8s %8s %8s %8s %6s %12s %9s\n", "id", "workload", "window",
           "seconds", "first s", "GFLOP", "GFLOP/s", "sgemm", "ratio", "target", "peak MiB");
    for (int i = 0; i < r->nrows; i++) {
        const ns_bench_row *w = &r->rows[i];
        char window[16], target[32] = "";
        if (w->window > 0)
            snprintf(window, sizeof window, "%d", w->window);
        else
            snprintf(window, sizeof window, "all");
        if (w->target > 0)
            snprintf(target, sizeof target, ">= %.2f %s", w->target,
                     verdict(w->ratio, w->target));
        printf("%-3s %-56s %7s %9.3f %8.3f %8.2f %8.1f %8.1f %6.2f %12s %9.0f\n", w->id, w->name,
               window, w->seconds, w->first_seconds, w->gflop, w->gflops, w->sgemm_gflops,
               w->ratio, target, w->peak_rss_mib);
    }
    printf("\nseconds: the median of the repeats; first s: a first run before them, on fresh "
           "memory (the repeats reuse its pages, as a sweep's points do; for W2 the warm-up "
           "step).\n"
           "sgemm: the median of readings taken before each run and after the last; a reading "
           "takes, at each of the workload's product shapes, the better of OpenBLAS's threaded "
           "sgemm and one single-threaded sgemm per thread at once, weighted as the workload "
           "computes them (--json: the lowest and highest reading too).\n");
    if (isfinite(r->metrics_overhead))
        printf("metrics on W1 pre: %+.1f%% wall time over forward and backward alone (runs "
               "with and without them in turn, medians)%s\n",
               100 * r->metrics_overhead,
               o->quick ? "" : r->metrics_overhead <= 0.15 ? " (target <= 15%: met)"
                                                             : " (target <= 15%: missed)");
    int nw4 = 0;
    for (int i = 0; i < r->nrows; i++)
        if (strcmp(r->rows[i].id, "W4") == 0) {
            if (!nw4++)
                printf("W4 seconds per block (constant when the time is linear in L):");
            printf(" L=%d %.4f", r->rows[i].depth, r->rows[i].seconds / r->rows[i].depth);
        }
    if (nw4)
        printf("\n");
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void json_number(double x)
{
    if (isfinite(x))
        printf("%.6g", x);
    else
        printf("null");
}

/* , "name": x */
static void json_field(const char *name, double x)
{
    printf(", \"%s\": ", name);
    json_number(x);
}

static void print_json(const ns_bench_opts *o, const ns_bench_result *r)
{
    printf("{\"version\": ");
    json_string(ns_version());
    printf(", \"blas\": ");
    json_string(r->kernels);
    printf(", \"threads\": %d, \"repeats\": %d, \"quick\": %s, \"workloads\": [", o->threads,
           o->repeats, o->quick ? "true" : "false");
    for (int i = 0; i < r->nrows; i++) {
        const ns_bench_row *w = &r->rows[i];
        printf("%s\n  {\"id\": ", i ? "," : "");
        json_string(w->id);
        printf(", \"name\": ");
        json_string(w->name);
        printf(", \"depth\": %d, \"window\": %d, \"metrics\": %s", w->depth, w->window,
               w->metrics ? "true" : "false");
        json_field("seconds", w->seconds);
        json_field("first_seconds", w->first_seconds);
        json_field("gflop", w->gflop);
        json_field("gflops", w->gflops);
        json_field("sgemm_gflops", w->sgemm_gflops);
        json_field("sgemm_low_gflops", w->sgemm_low_gflops);
        json_field("sgemm_high_gflops", w->sgemm_high_gflops);
        json_field("ratio", w->ratio);
        json_field("target", w->target > 0 ? w->target : NAN);
        printf(", \"met\": %s", w->target > 0 ? (w->ratio >= w->target ? "true" : "false")
                                                 : "null");
        json_field("peak_rss_mib", w->peak_rss_mib);
        json_field("with_metrics_seconds", w->with_metrics_seconds);
        printf("}");
    }
    printf("\n]");
    json_field("metrics_overhead", r->metrics_overhead);
    printf(", \"w4_seconds_per_block\": [");
    for (int i = 0, k = 0; i < r->nrows; i++)
        if (strcmp(r->rows[i].id, "W4") == 0) {
            printf("%s", k++ ? ", " : "");
            json_number(r->rows[i].seconds / r->rows[i].depth);
        }
    printf("]}\n");
}

int ns_cmd_bench(int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    opts o = {.b = {.threads = ncpu > 0 ? (int)ncpu : 1, .repeats = 3}};
    static const struct argp argp = {
        options, parse, NULL,
        "Time the standard workloads (W1 Transformer propagate, W2 a training step, W3 MLP "
        "propagate, W4 deep MLP propagate in bounded memory) against the machine's sgemm.",
        NULL, NULL, NULL};
    argv[1] = "normscope bench";
    argp_err_exit_status = NS_EXIT_USAGE;
    if (argp_parse(&argp, argc - 1, argv + 1, 0, NULL, &o) != 0)
        return NS_EXIT_USAGE;
    ns_bench_result r;
    char msg[512];
    int tty = isatty(STDERR_FILENO);
    int st = ns_bench_run(&o.b, &r, note, &tty, msg, sizeof msg);
    if (st != NS_OK) {
        ns_cli_error("%s", msg);
        return st == NS_ERR_INVALID ? NS_EXIT_USAGE : NS_EXIT_RUNTIME;
    }
    if (o.json)
        print_json(&o.b, &r);
    else
        print_table(&o.b, &r);
    return NS_EXIT_OK;
}
