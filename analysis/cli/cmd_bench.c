/* cmd_bench.c: `normscope bench`, the performance targets measured in one run (bench.h).
 *
 * Prints a table (or, with --json, one JSON object): per workload the median wall time, the
 * matrix-product GFLOP/s, the sgemm ceiling measured at the same shapes, their ratio against
 * the target, and the peak resident memory; then the cost of the metrics on W1, W1's and W2's
 * speed-up over their PyTorch peer (or why it did not run), and the time per block of W4 at
 * each depth. Exit 0 when it ran (whether or not a target was met: the verdicts are in the
 * output), 2 for bad options, 1 if a workload or the peer failed. */
#define _GNU_SOURCE
#include "bench.h"
#include "cli.h"
#include "options.h"
#include "normscope.h"
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int quick, threads, repeats, json;
    const char *only, *python;
} opts;

#define F(field) offsetof(opts, field)
static const ns_opt_spec bench_specs[] = {
    {"quick", K_FLAG, F(quick), NULL, NULL, NS_ONE, NULL,
     "toy sizes: checks the machinery in seconds; no targets apply", NULL, NULL},
    {"threads", K_THREADS, F(threads), NULL, NULL, NS_ONE, "N",
     "OpenMP threads, and the sgemm ceiling's (default: all cores)", NULL, NULL},
    {"repeats", K_INT, F(repeats), NULL, "3", NS_ONE, "N",
     "runs per workload; the median is reported", NULL, NULL},
    {"only", K_TEXT, F(only), NULL, NULL, NS_ONE, "LIST",
     "comma list of workloads to run, e.g. W1,W3 (default: all)", NULL, NULL},
    {"json", K_FLAG, F(json), NULL, NULL, NS_ONE, NULL, "print one JSON object instead of the table",
     NULL, NULL},
    {"python", K_TEXT, F(python), NULL, "python3", NS_ONE, "PATH",
     "the Python that runs W1 and W2 in PyTorch, the peer rows (skipped if it lacks torch)", NULL,
     NULL},
};

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
    for (int i = 0; i < r->npeers; i++) {
        const ns_bench_peer_row *p = &r->peers[i];
        char target[32] = "";
        if (p->target > 0)
            snprintf(target, sizeof target, " (target >= %.1fx: %s)", p->target,
                     verdict(p->speedup, p->target));
        printf("%s%s in PyTorch %s (torch_peer.py, same shapes and statistics, %d thread%s): "
               "%.3f s, normscope %.3f s: %.2fx%s\n", i ? "" : "\n", p->id, r->torch_version,
               o->threads, o->threads == 1 ? "" : "s", p->torch_seconds, p->normscope_seconds,
               p->speedup, target);
    }
    if (r->peer_note[0])
        printf("%s\n", r->peer_note);
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

/* , "target": t, "met": value >= t (null and null without a target, t <= 0) */
static void json_target(double value, double target)
{
    json_field("target", target > 0 ? target : NAN);
    printf(", \"met\": %s", target <= 0 ? "null" : value >= target ? "true" : "false");
}

static void print_json(const ns_bench_opts *o, const ns_bench_result *r)
{
    printf("{\"version\": ");
    ns_cli_json_string(ns_version());
    printf(", \"blas\": ");
    ns_cli_json_string(r->kernels);
    printf(", \"threads\": %d, \"repeats\": %d, \"quick\": %s, \"workloads\": [", o->threads,
           o->repeats, o->quick ? "true" : "false");
    for (int i = 0; i < r->nrows; i++) {
        const ns_bench_row *w = &r->rows[i];
        printf("%s\n  {\"id\": ", i ? "," : "");
        ns_cli_json_string(w->id);
        printf(", \"name\": ");
        ns_cli_json_string(w->name);
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
        json_target(w->ratio, w->target);
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
    printf("], \"torch_peer\": [");
    for (int i = 0; i < r->npeers; i++) {
        const ns_bench_peer_row *p = &r->peers[i];
        printf("%s\n  {\"id\": ", i ? "," : "");
        ns_cli_json_string(p->id);
        json_field("torch_seconds", p->torch_seconds);
        json_field("normscope_seconds", p->normscope_seconds);
        json_field("speedup", p->speedup);
        json_target(p->speedup, p->target);
        printf("}");
    }
    printf("], \"torch_version\": ");
    if (r->npeers)
        ns_cli_json_string(r->torch_version);
    else
        printf("null");
    printf(", \"torch_peer_note\": ");
    if (r->peer_note[0])
        ns_cli_json_string(r->peer_note);
    else
        printf("null");
    printf("}\n");
}

int ns_cmd_bench(int argc, char **argv)
{
    static const ns_command cmd = {
        .name = "normscope bench",
        .doc = "Time the standard workloads (W1 Transformer propagate, W2 a training step, W3 MLP "
               "propagate, W4 deep MLP propagate in bounded memory) against the machine's sgemm.",
        .own = bench_specs,
        .nown = (int)(sizeof bench_specs / sizeof bench_specs[0])};
    static ns_opt_given g;
    opts o = {0};
    if (ns_opt_parse(&g, &cmd, argc, argv) != 0) {
        ns_opt_free(&g);
        return NS_EXIT_USAGE;
    }
    ns_opt_point_at(&g, 0, &o);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ns_bench_opts b = {.quick = o.quick, .repeats = o.repeats, .only = o.only,
                       .threads = o.threads ? o.threads : ncpu > 0 ? (int)ncpu : 1,
                       .kernels_note = ns_cli_kernels_note(), .python = o.python};
    ns_bench_result r;
    char msg[512];
    /* the threads' own needs; the workloads' models are not estimated */
    if (ns_cli_memory_fits(0, b.threads, msg, sizeof msg) != 0) {
        ns_cli_error("%s", msg);
        ns_opt_free(&g);
        return NS_EXIT_USAGE;
    }
    ns_cli_blas_reserve(b.threads); /* the workloads' threads, then the sgemm ceiling's */
    int tty = isatty(STDERR_FILENO);
    int st = ns_bench_run(&b, &r, note, &tty, msg, sizeof msg);
    if (st != NS_OK)
        ns_cli_error("%s", msg);
    else if (o.json)
        print_json(&b, &r);
    else
        print_table(&b, &r);
    ns_opt_free(&g);
    return st == NS_OK ? NS_EXIT_OK : st == NS_ERR_INVALID ? NS_EXIT_USAGE : NS_EXIT_RUNTIME;
}
