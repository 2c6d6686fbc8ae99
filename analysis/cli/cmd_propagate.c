/* cmd_propagate.c: `normscope propagate`, the propagate protocol written to one HDF5 file.
 *
 * Options come from one table: it makes the argp options, parses and validates values, and
 * writes /config. Every option but --out and --threads may take a comma list (--depth 8,16,32
 * --placement pre,post,span); the Cartesian product of the lists runs, first option slowest, into
 * one file: /sweep (one row per point) and /runs/<i>/ in the single-run layout. A single point
 * keeps the single-run layout at the root. Every point is validated before any work starts.
 * A sweep's points run into a store (sweep_store.h) saved beside the output as OUT.partial-sweep,
 * so a rerun of an interrupted sweep resumes; under mpirun they are shared among the ranks
 * (sweep_run.h) and rank 0 writes the one file. Either way the file is assembled from the store
 * at the end, so it holds the same numbers however the points were run. */
#define _GNU_SOURCE
#include "cli.h"
#include "files.h"
#include "clock.h"
#include "fit.h"
#include "h5out.h"
#include "mpi_sweep.h"
#include "options.h"
#include "progress.h"
#include "propagate.h"
#include "sweep_run.h"
#include "sweep_store.h"
#include "theory.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const inputs[] = {"gaussian", "tokens", NULL}; /* ns_input_kind order */

/* one point of the sweep: every option's value */
typedef struct {
    ns_model_opts model; /* first: the model table's offsets fit */
    int input, vocab, seeds, threads;
    long long seed;
    const char *out;
} point;
_Static_assert(sizeof(point) <= NS_OPT_MAX_RECORD, "the option record outgrew the scratch");

#define F(field) offsetof(point, field)
static const ns_opt_spec run_specs[] = {
    {"input", K_CHOICE, F(input), inputs, "gaussian", NS_SWEEP, "KIND",
     "input x_0: gaussian (N(0,1) i.i.d.) or tokens (random ids through a random embedding "
     "N(0,1) plus random positions N(0,0.1^2))", NULL, NULL},
    {"vocab", K_INT, F(vocab), NULL, "256", NS_SWEEP, "V", "vocabulary size for --input tokens",
     NULL, NULL},
    {"seeds", K_INT, F(seeds), NULL, "4", NS_SWEEP, "S",
     "independent draws of weights, input and cotangent", NULL, NULL},
    {"seed", K_SEED, F(seed), NULL, "0", NS_SWEEP, "N", "first seed; draw s uses seed N+s",
     NULL, NULL},
    {"threads", K_THREADS, F(threads), NULL, NULL, 0, "N", "OpenMP threads (default: all cores)",
     NULL, NULL},
    {"out", K_TEXT, F(out), NULL, "propagate.h5", 0, "FILE", "output HDF5 file", NULL, NULL},
};

/* the model and run options of a point, or a usage message */
static int resolve(const point *p, ns_propagate_opts *po, const char **scale_init, char *err,
                   size_t errlen)
{
    ns_config c;
    if (ns_model_opts_resolve(&p->model, &c, scale_init, err, errlen) != 0)
        return -1;
    /* a stack too deep to keep whole walks in segments: the same numbers, bounded memory */
    c.window = ns_propagate_auto_window(&c, NS_PROPAGATE_MEMORY_BUDGET);
    *po = (ns_propagate_opts){.model = c, .seeds = p->seeds, .seed = (uint64_t)p->seed,
                              .input = (ns_input_kind)p->input, .vocab = p->vocab};
    return 0;
}

/* the theory's prediction for a point, or a status: NS_ERR_INVALID when no theory covers it.
 * MLP stacks: the mean-field recursion at the run's width (grad_ms to O(1/d) where that is
 * derived, analysis/theory/README.md, section 10) in *t, and the d -> infinity prediction in
 * *t_inf. Transformer stacks: the score-field trajectory Monte Carlo with the run's heads
 * (section 9.9, with its standard errors; PostNorm's grad_ms with the norms' O(1/d) terms of
 * section 9.10) in *t, and beside it the expected-Gram recursion (section 9.3) at d = infinity
 * in *t_inf. MoE stacks: the expected-Gram
 * recursion in *t only (section 9.9 says why), and only without a capacity limit and without
 * auxiliary losses, which the theory does not model. */
static int predict(const ns_propagate_opts *po, ns_theory *t, ns_theory *t_inf)
{
    const ns_config *c = &po->model;
    if (po->input != NS_INPUT_GAUSSIAN)
        return NS_ERR_INVALID;
    ns_theory_input in = {.placement = c->placement ? c->placement->name : NULL,
                          .schedule = c->schedule, .post_fraction = c->post_fraction,
                          .act = c->act, .norm = c->norm,
                          .depth = c->depth, .width = c->width, .hidden = c->hidden,
                          .alpha = c->alpha, .gate = c->gate_init, .q0 = 1, .rho0 = 0,
                          .norm_eps = c->norm_eps};
    if (c->block == NS_BLOCK_MLP) {
        int st = ns_theory_mlp(&in, t);
        in.width = 0;
        if (st == NS_OK && (st = ns_theory_mlp(&in, t_inf)) != NS_OK)
            ns_theory_free(t);
        return st;
    }
    if (c->seq > NS_THEORY_MAX_SEQ ||
        (c->block == NS_BLOCK_MOE && (c->capacity > 0 || c->aux_coef > 0 || c->zloss_coef > 0)))
        return NS_ERR_INVALID;
    in.width = 0;
    ns_theory_tf_input ti = {.base = in, .block = c->block, .seq = c->seq,
                             .attn = NS_THEORY_ATTN_SOFTMAX, .experts = c->experts,
                             .top_k = c->top_k};
    if (c->block == NS_BLOCK_MOE)
        return ns_theory_transformer(&ti, t);
    int st = ns_theory_transformer(&ti, t_inf);
    ti.attn = NS_THEORY_ATTN_TRAJECTORY;
    ti.base.width = c->width; /* the norms' O(1/d) terms, where derived */
    ti.heads = c->heads;
    ti.mc_samples = NS_THEORY_TRAJECTORIES;
    if (st == NS_OK && (st = ns_theory_transformer(&ti, t)) != NS_OK)
        ns_theory_free(t_inf);
    return st;
}

/* /sweep: attribute `parameters` naming the options given as lists, and one dataset per such
 * option with its value at every point (numbers as float64, choices as strings) */
static int write_sweep_table(ns_h5 *h, long npoints, const ns_opt_given *g)
{
    const char *swept[NS_OPT_MAX_SPECS];
    int nswept = 0, st = NS_OK;
    const char **text = malloc((size_t)npoints * sizeof *text);
    double *num = malloc((size_t)npoints * sizeof *num);
    if (!text || !num)
        st = NS_ERR_NOMEM;
    for (int i = 0; st == NS_OK && i < g->nspecs; i++) {
        const ns_opt_spec *s = &g->specs[i];
        if (g->n[i] < 2)
            continue;
        /* named by the option (with its '-'), or by its attribute where that differs: the
         * name files have carried since before --placement */
        swept[nswept++] = s->attr ? s->attr : s->option;
        long stride = ns_opt_stride(g, i); /* the digit of option i in the point index */
        for (long p = 0; p < npoints; p++) {
            text[p] = g->values[i][(p / stride) % g->n[i]];
            num[p] = strtod(text[p], NULL);
        }
        char path[64], desc[160];
        snprintf(path, sizeof path, "/sweep/%s", swept[nswept - 1]);
        snprintf(desc, sizeof desc, "--%s at each point; point i is /runs/i", swept[nswept - 1]);
        size_t dims[] = {(size_t)npoints};
        static const char *const label[] = {"point"};
        st = s->k == K_CHOICE || s->k == K_PLACEMENT || s->k == K_TEXT
                 ? ns_h5_dataset_strings(h, path, (int)npoints, text, desc)
                 : ns_h5_dataset(h, path, 1, dims, num, desc, label);
    }
    if (st == NS_OK)
        st = ns_h5_attr_strings(h, "/sweep", "parameters", swept, nswept);
    if (st == NS_OK)
        st = ns_h5_attr_int(h, "/sweep", "points", npoints);
    free(text);
    free(num);
    return st;
}

/* /sweep/fits: for every series of points that differ only in depth (three depths or more), the
 * log-log slopes against depth of the final act_ms and of the gradient ratio p_0/p_L (seed
 * means), measured and predicted by theory, with standard errors (fit.h) */
/* The standard error of a measured slope: the seeds of a series share their draws across
 * depths (seed s has the same first blocks at every depth), so the points of one seed's curve
 * are correlated and the residuals of a fit to the seed means understate the error. Each seed's
 * curve is fitted on its own, and the error is the spread of those slopes over sqrt(S). One seed
 * (or seeds that differ between the points): the fit's own error, as before. by_seed is
 * [npoints, smax], NaN where a point has no such seed. */
static double seed_slope_se(const double *x, const double *by_seed, const long *pts, int nd,
                            int smax, double fit_se)
{
    double y[NS_OPT_MAX_VALUES], sum = 0, sum2 = 0;
    int n = 0;
    for (int sd = 0; sd < smax; sd++) {
        double slope, se;
        int ok = 1;
        for (int k = 0; k < nd && ok; k++) {
            y[k] = by_seed[pts[k] * smax + sd];
            ok = isfinite(y[k]);
        }
        if (!ok || ns_fit_loglog(x, y, nd, &slope, &se) != 0)
            continue;
        sum += slope, sum2 += slope * slope, n++;
    }
    if (n < 2)
        return fit_se;
    double mean = sum / n, var = (sum2 - n * mean * mean) / (n - 1);
    return sqrt(var > 0 ? var : 0) / sqrt((double)n);
}

static int write_fits(ns_h5 *h, const ns_opt_given *g, long npoints, const double *act_L,
                      const double *ratio, const double *act_L_th, const double *ratio_th,
                      const double *act_L_seed, const double *ratio_seed, int smax)
{
    int id = ns_opt_find(g, "depth");
    int nd = g->n[id];
    if (nd < 3)
        return NS_OK; /* not a depth sweep */
    long stride = ns_opt_stride(g, id), nseries = npoints / nd;
    enum { NCOL = 9 };
    double *col = malloc((size_t)NCOL * nseries * sizeof *col), x[NS_OPT_MAX_VALUES],
           y[4][NS_OPT_MAX_VALUES];
    if (!col)
        return NS_ERR_NOMEM;
    long pts[NS_OPT_MAX_VALUES];
    for (long s = 0; s < nseries; s++) {
        long first = (s / stride) * stride * nd + s % stride;
        for (int k = 0; k < nd; k++) {
            long p = pts[k] = first + (long)k * stride;
            x[k] = strtod(g->values[id][k], NULL);
            y[0][k] = act_L[p], y[1][k] = act_L_th[p], y[2][k] = ratio[p], y[3][k] = ratio_th[p];
        }
        for (int q = 0; q < 4; q++)
            ns_fit_loglog(x, y[q], nd, &col[(2 * q) * nseries + s], &col[(2 * q + 1) * nseries + s]);
        /* the measured slopes' errors from the seeds' own slopes; the theory's stay the fit's */
        col[1 * nseries + s] = seed_slope_se(x, act_L_seed, pts, nd, smax, col[1 * nseries + s]);
        col[5 * nseries + s] = seed_slope_se(x, ratio_seed, pts, nd, smax, col[5 * nseries + s]);
        col[(NCOL - 1) * nseries + s] = (double)first;
    }
    /* the columns are the table's /sweep/fits entries, in order (h5schema.h) */
    _Static_assert(NS_H5S_FITS_FIRST_POINT - NS_H5S_FITS_ACT_MS_SLOPE == NCOL - 1,
                   "one /sweep/fits entry per column");
    const ns_h5schema_sizes z = {.series = (size_t)nseries};
    int st = ns_h5_group(h, "/sweep/fits");
    for (int c = 0; st == NS_OK && c < NCOL; c++)
        st = ns_h5_entry(h, "", (ns_h5schema_id)(NS_H5S_FITS_ACT_MS_SLOPE + c), &z,
                         col + (size_t)c * nseries);
    free(col);
    return st;
}

/* point i of the command line, resolved: the thread count is this process's */
static void point_of(const ns_opt_given *g, long i, int threads, point *p, ns_propagate_opts *po,
                     const char **scale_init)
{
    char err[256];
    memset(p, 0, sizeof *p);
    ns_opt_point_at(g, i, p);
    p->threads = threads;
    resolve(p, po, scale_init, err, sizeof err); /* every point was validated up front */
}

/* the points' models, one after another, in the same memory: the pages are touched once */
static ns_workspace *points_workspace;

/* point i run and written at prefix of h in the single-run layout (config, propagate, theory);
 * on failure a one-line message in err */
static int write_point(ns_h5 *h, const char *prefix, const ns_opt_given *g, long i, int threads,
                       ns_tick_fn tick, void *tick_ctx, char *err, size_t errlen)
{
    point p;
    ns_propagate_opts po;
    const char *si;
    ns_propagate_result r;
    ns_theory t = {0}, t_inf = {0};
    char path[64];
    point_of(g, i, threads, &p, &po, &si);
    if (!points_workspace && ns_workspace_create(&points_workspace) != NS_OK)
        points_workspace = NULL; /* then each model allocates its own */
    po.workspace = points_workspace;
    int st = ns_propagate(&po, &r, tick, tick_ctx);
    if (st != NS_OK) {
        snprintf(err, errlen, st == NS_ERR_INTERRUPTED ? "interrupted" : "propagate failed: %s",
                 ns_strerror(st));
        return st;
    }
    snprintf(path, sizeof path, "%s/config", prefix);
    if (!(st = ns_opt_write_config(h, path, g, &p, si)) &&
        !(st = ns_model_write_derived(h, prefix, &po.model)) &&
        !(st = ns_propagate_write(h, prefix, &r))) {
        int th = predict(&po, &t, &t_inf);
        if (th == NS_OK)
            st = ns_theory_write(h, prefix, &po, &t, t_inf.act_ms ? &t_inf : NULL);
        else if (th != NS_ERR_INVALID)
            st = th; /* a theory that applies but failed numerically */
    }
    if (st == NS_ERR_IO)
        snprintf(err, errlen, "%s", ns_h5_error(h));
    else if (st != NS_OK)
        snprintf(err, errlen, "propagate failed: %s", ns_strerror(st));
    ns_theory_free(&t);
    ns_theory_free(&t_inf);
    ns_propagate_result_free(&r);
    return st;
}

/* the work of a point in multiply-adds per token and block, up to a constant factor: the
 * branch's GEMMs (d x hidden twice; attention's four d x d and its T-long rows; top-k experts
 * and the router), forward and backward alike. It only has to rank points and add up. */
static double point_cost(const point *p)
{
    const ns_model_opts *m = &p->model;
    double d = m->width, T = m->seq, per_token = 2 * m->mlp_ratio * d * d;
    if (m->block != NS_BLOCK_MLP)
        per_token += 4 * d * d + 2 * T * d;
    if (m->block == NS_BLOCK_MOE)
        per_token += m->top_k * 2 * m->expert_ratio * d * d + m->experts * d -
                     2 * m->mlp_ratio * d * d;
    return per_token * m->depth * (double)m->seq * m->batch * p->seeds;
}

typedef struct {
    const ns_opt_given *g;
    int threads;
} point_ctx;

static int run_point(void *ctx, long i, ns_h5 *out, ns_tick_fn tick, void *tick_ctx, char *err,
                     size_t errlen)
{
    const point_ctx *c = ctx;
    return write_point(out, "", c->g, i, c->threads, tick, tick_ctx, err, errlen);
}

/* the seed means behind /sweep/fits, read back from the stored points: final act_ms, gradient
 * ratio p_0/p_L, and the theory's (NaN where none applies). Read back rather than kept, so a
 * resumed or distributed sweep computes them from the very numbers its file holds. */
static int summaries(ns_h5 *store, const ns_opt_given *g, long npoints, double *act_L,
                     double *ratio, double *act_L_th, double *ratio_th, double *act_L_seed,
                     double *ratio_seed, int smax)
{
    int st = NS_OK;
    for (long i = 0; st == NS_OK && i < npoints; i++) {
        point p;
        ns_propagate_opts po;
        const char *si;
        char path[96];
        point_of(g, i, 1, &p, &po, &si);
        int L = p.model.depth, S = p.seeds;
        size_t n = (size_t)S * (L + 1), shape[] = {(size_t)S, (size_t)L + 1};
        double *a = malloc(2 * n * sizeof *a), *gr = a + n;
        if (!a)
            return NS_ERR_NOMEM;
        snprintf(path, sizeof path, "/runs/%ld/propagate/act_ms", i);
        st = ns_h5_read_f64_shape(store, path, 2, shape, a, 0);
        snprintf(path, sizeof path, "/runs/%ld/propagate/grad_ms", i);
        if (st == NS_OK)
            st = ns_h5_read_f64_shape(store, path, 2, shape, gr, 0);
        act_L[i] = ratio[i] = 0;
        for (int s = 0; st == NS_OK && s < S; s++) { /* as the run alone would sum them */
            act_L[i] += a[(size_t)s * (L + 1) + L] / S;
            ratio[i] += gr[(size_t)s * (L + 1)] / gr[(size_t)s * (L + 1) + L] / S;
            act_L_seed[i * smax + s] = a[(size_t)s * (L + 1) + L];
            ratio_seed[i * smax + s] = gr[(size_t)s * (L + 1)] / gr[(size_t)s * (L + 1) + L];
        }
        act_L_th[i] = ratio_th[i] = NAN;
        snprintf(path, sizeof path, "/runs/%ld/theory", i);
        if (st == NS_OK && ns_h5_exists(store, path)) {
            snprintf(path, sizeof path, "/runs/%ld/theory/act_ms", i);
            st = ns_h5_read_f64_shape(store, path, 1, shape + 1, a, 0);
            snprintf(path, sizeof path, "/runs/%ld/theory/grad_ms", i);
            if (st == NS_OK)
                st = ns_h5_read_f64_shape(store, path, 1, shape + 1, gr, 0);
            if (st == NS_OK) {
                act_L_th[i] = a[L];
                ratio_th[i] = gr[0] / gr[L];
            }
        }
        free(a);
    }
    return st;
}

/* the sweep's file from the store: root attributes, /runs, /sweep, /sweep/fits; written aside
 * and renamed onto the output. A message in err on failure. */
static int assemble(const char *out, const char *command_line, ns_sweep_store *store,
                    const ns_opt_given *g, long npoints, double seconds, char *err,
                    size_t errlen)
{
    ns_h5 *h = NULL;
    int smax = 1; /* the most seeds of any point: the per-seed arrays' row length */
    for (long i = 0; i < npoints; i++) {
        point p;
        ns_propagate_opts po;
        const char *si;
        point_of(g, i, 1, &p, &po, &si);
        smax = p.seeds > smax ? p.seeds : smax;
    }
    double *act_L = calloc((4 + 2 * (size_t)smax) * (size_t)npoints, sizeof(double));
    double *ratio = act_L + npoints, *act_L_th = ratio + npoints, *ratio_th = act_L_th + npoints;
    double *act_L_seed = ratio_th + npoints, *ratio_seed = act_L_seed + (size_t)smax * npoints;
    for (size_t k = 0; act_L && k < 2 * (size_t)smax * npoints; k++)
        act_L_seed[k] = NAN; /* a point with fewer seeds */
    int st = act_L ? ns_h5_create(&h, out) : NS_ERR_NOMEM;
    if (st == NS_OK && !(st = ns_h5_write_root_attrs(h, command_line)) &&
        !(st = ns_h5_group(h, "/runs")) && !(st = ns_h5_group(h, "/sweep"))) {
        if ((st = ns_sweep_store_copy_runs(store, h)) != NS_OK)
            snprintf(err, errlen, "%s", ns_sweep_store_error(store));
        else if ((st = summaries(ns_sweep_store_h5(store), g, npoints, act_L, ratio, act_L_th,
                                 ratio_th, act_L_seed, ratio_seed, smax)) != NS_OK)
            snprintf(err, errlen, "%s", ns_h5_error(ns_sweep_store_h5(store)));
        else if (!(st = write_sweep_table(h, npoints, g)) &&
                 !(st = write_fits(h, g, npoints, act_L, ratio, act_L_th, ratio_th, act_L_seed,
                                   ratio_seed, smax)) &&
                 !(st = ns_h5_attr_double(h, "/", "wall_seconds", seconds)))
            st = ns_h5_commit(h);
        if (st == NS_ERR_IO && !err[0])
            snprintf(err, errlen, "%s", ns_h5_error(h));
    }
    if (st != NS_OK && !err[0])
        snprintf(err, errlen, "%s", st == NS_ERR_NOMEM ? "out of memory" : ns_h5_error(h));
    ns_h5_free(h);
    free(act_L);
    return st;
}

/* one point: the single-run layout at the root of the output */
static int run_single(const ns_opt_given *g, const point *p0, const char *command_line)
{
    ns_h5 *h = NULL;
    ns_progress bar;
    char err[512] = "";
    int st;
    ns_cli_install_signals(); /* before the output exists: a signal must never leave a partial */
    ns_cli_note_no_output(p0->out);
    if (ns_h5_create(&h, p0->out) != NS_OK) { /* before any work: a bad path costs nothing */
        ns_cli_error("%s", ns_h5_error(h));
        ns_h5_free(h);
        return NS_EXIT_USAGE;
    }
    ns_progress_start(&bar, "propagate", "blocks");
    double t0 = ns_now();
    st = ns_h5_write_root_attrs(h, command_line);
    if (st == NS_OK)
        st = write_point(h, "", g, 0, p0->threads, ns_cli_tick, &bar, err, sizeof err);
    else
        snprintf(err, sizeof err, "%s", ns_h5_error(h));
    ns_progress_finish(&bar);
    double seconds = ns_now() - t0;
    if (st == NS_OK)
        st = ns_h5_attr_double(h, "/", "wall_seconds", seconds);
    if (st == NS_OK)
        st = ns_h5_commit(h);
    if (st != NS_OK && !err[0])
        snprintf(err, sizeof err, "%s", ns_h5_error(h));
    ns_h5_free(h);
    if (st == NS_ERR_INTERRUPTED)
        ns_cli_error("interrupted; no output written to %s", p0->out);
    else if (st != NS_OK)
        ns_cli_error("%s", err);
    if (st != NS_OK)
        return NS_EXIT_RUNTIME;
    printf("wrote %s: %s %s, L=%d d=%d T=%d B=%d, %d seed%s, %.2f s\n", p0->out,
           ns_opt_blocks[p0->model.block], ns_opt_placement_text(&p0->model.placement),
           p0->model.depth,
           p0->model.width, p0->model.seq, p0->model.batch, p0->seeds, p0->seeds == 1 ? "" : "s",
           seconds);
    return NS_EXIT_OK;
}

/* rank 0 before a sweep: the output path and the progress file, checked before any work; a
 * usage error (exit 2) or 0 */
static int open_sweep(const ns_opt_given *g, const point *p0, const char *command_line,
                      long npoints, ns_sweep_store **store)
{
    ns_h5 *h = NULL;
    char err[1024], *config = malloc(65536);
    int bad = ns_h5_create(&h, p0->out) != NS_OK; /* a bad path costs nothing */
    if (bad)
        ns_cli_error("%s", ns_h5_error(h));
    ns_h5_free(h); /* the output is written at the end, from the store */
    if (!bad && !config) {
        ns_cli_error("out of memory");
        bad = 1;
    }
    if (!bad && ns_opt_describe(g, "threads", config, 65536) != 0) {
        ns_cli_error("the sweep's configuration is too long to record");
        bad = 1;
    }
    /* a signal in a damaged file's read ends at once, and so does a stuck read (files.h) */
    char progress[4096];
    snprintf(progress, sizeof progress, "%s.partial-sweep", p0->out);
    const char *inputs[] = {progress};
    if (!bad)
        ns_file_reading_paths(1, inputs, 1);
    int st = bad ? NS_OK : ns_sweep_store_open(store, p0->out, config, command_line, npoints,
                                                 err, sizeof err);
    if (!bad)
        ns_file_reading_paths(0, NULL, 0);
    if (st != NS_OK) {
        ns_cli_error("%s", err);
        bad = 1;
    }
    free(config);
    return bad ? NS_EXIT_USAGE : NS_EXIT_OK;
}

/* several points: shared among the MPI ranks (one rank without MPI), into one file */
static int run_sweep(const ns_opt_given *g, const point *p0, const char *command_line,
                     long npoints, ns_mpi *mpi)
{
    ns_sweep_store *store = NULL;
    double *cost = malloc((size_t)npoints * sizeof *cost);
    long *blocks = malloc((size_t)npoints * sizeof *blocks);
    unsigned char *done = calloc((size_t)npoints, 1);
    int status = NS_EXIT_OK;
    char err[1024] = "";
    if (!cost || !blocks || !done) { /* a rank that cannot follow the plan ends the job */
        ns_cli_error("out of memory");
        ns_mpi_abort(mpi, NS_EXIT_RUNTIME);
        status = NS_EXIT_RUNTIME;
        goto done;
    }
    ns_cli_install_signals(); /* before the progress file can exist */
    if (mpi->rank == 0)
        ns_cli_note_no_output(p0->out);
    else
        ns_cli_set_interrupt_note(NULL); /* rank 0 says it: one line for the whole run */
    if (mpi->rank == 0)
        status = open_sweep(g, p0, command_line, npoints, &store);
    ns_mpi_bcast(mpi, &status, sizeof status);
    if (status != NS_EXIT_OK)
        goto done;
    if (mpi->rank == 0)
        memcpy(done, ns_sweep_store_done(store), (size_t)npoints);
    ns_mpi_bcast(mpi, done, (size_t)npoints); /* what the progress file already holds */
    for (long i = 0; i < npoints; i++) {
        point p;
        ns_propagate_opts po;
        const char *si;
        point_of(g, i, p0->threads, &p, &po, &si);
        cost[i] = point_cost(&p);
        blocks[i] = 2L * p.model.depth * p.seeds;
    }
    point_ctx pc = {.g = g, .threads = p0->threads};
    ns_progress bar;
    ns_progress_start(&bar, "propagate", "blocks");
    bar.enabled &= mpi->rank == 0; /* one line, rank 0's */
    ns_sweep_job job = {.npoints = npoints, .cost = cost, .blocks = blocks, .done = done,
                        .run = run_point, .ctx = &pc, .mpi = mpi, .store = store,
                        .tick = ns_cli_tick, .tick_ctx = &bar};
    double t0 = ns_now();
    int st = ns_sweep_run(&job, err, sizeof err);
    ns_progress_finish(&bar);
    if (st == NS_ERR_NOMEM && mpi->size > 1) { /* a lost message: no rank can finish */
        ns_cli_error("%s", mpi->rank > 0 ? "out of memory" : err);
        ns_mpi_abort(mpi, NS_EXIT_RUNTIME);
    }
    if (mpi->rank > 0) {
        status = ns_sweep_end(mpi, NS_EXIT_OK) != NS_EXIT_OK || st != NS_OK ? NS_EXIT_RUNTIME
                                                                            : NS_EXIT_OK;
        goto done;
    }
    long resumed = 0, saved = ns_sweep_store_count(store);
    for (long i = 0; i < npoints; i++)
        resumed += done[i];
    if (st == NS_OK) {
        st = assemble(p0->out, command_line, store, g, npoints, ns_now() - t0, err, sizeof err);
        if (st != NS_OK)
            ns_sweep_store_save(store); /* the points stay: a rerun only assembles */
    }
    if (st == NS_OK) {
        ns_sweep_store_remove(store);
        printf("wrote %s: a sweep of %ld points", p0->out, npoints);
        if (mpi->size > 1 || resumed)
            printf(" (");
        if (mpi->size > 1)
            printf("%d MPI ranks%s", mpi->size, resumed ? ", " : ")");
        if (resumed)
            printf("%ld resumed from %s)", resumed, ns_sweep_store_path(store));
        printf(", %.2f s\n", ns_now() - t0);
    } else {
        int kept = saved > 0 && access(ns_sweep_store_path(store), F_OK) == 0;
        if (kept)
            ns_cli_error("%s; %ld of %ld points kept in %s: rerun the same command to resume",
                         err, saved, npoints, ns_sweep_store_path(store));
        else if (st == NS_ERR_INTERRUPTED)
            ns_cli_error("interrupted; no output written to %s", p0->out);
        else
            ns_cli_error("%s", err);
        status = NS_EXIT_RUNTIME;
    }
    ns_sweep_end(mpi, status);
done:
    ns_sweep_store_free(store);
    free(cost);
    free(blocks);
    free(done);
    return status;
}

int ns_cmd_propagate(int argc, char **argv)
{
    static const ns_command cmd = {
        .name = "normscope propagate",
        .doc = "Run the propagate protocol at initialization and write per-layer metrics (and the "
               "mean-field theory where it applies) to an HDF5 file. Under mpirun a sweep's "
               "points are shared among the ranks.",
        .model = 1,
        .sweeps = 1,
        .own = run_specs,
        .nown = (int)(sizeof run_specs / sizeof run_specs[0])};
    const char *command_line = ns_cli_command_line(argc, argv);
    int launch_rank, launch_size, status = NS_EXIT_OK;
    ns_mpi mpi = {.rank = 0, .size = 1};
    ns_mpi_launch_env(&launch_rank, &launch_size);
    if (launch_rank > 0)
        ns_mpi_quiet(1); /* every rank parses the same line: rank 0 reports its errors */
    static ns_opt_given g; /* large: not on the stack */
    if (ns_opt_parse(&g, &cmd, argc, argv) != 0) {
        ns_opt_free(&g);
        return NS_EXIT_USAGE;
    }

    /* every point, checked before any work */
    long npoints = ns_opt_npoints(&g);
    point p0 = {0};
    ns_opt_point_at(&g, 0, &p0);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (!p0.threads)
        p0.threads = ncpu > 0 ? (int)ncpu : 1;
    for (long i = 0; i < npoints; i++) {
        point p = {0};
        ns_propagate_opts po;
        const char *si;
        char err[256];
        ns_opt_point_at(&g, i, &p);
        if (resolve(&p, &po, &si, err, sizeof err) != 0 ||
            ns_cli_memory_fits(ns_propagate_bytes(&po.model), p0.threads, err, sizeof err) != 0) {
            ns_cli_error("%s", err);
            status = NS_EXIT_USAGE;
            goto done;
        }
    }
    if (ns_mpi_start(&mpi) != NS_OK) {
        ns_cli_error("this normscope was built without MPI: run it without mpirun, or rebuild "
                     "with MPI (apt-get install libopenmpi-dev; cmake -DNS_MPI=ON)");
        status = NS_EXIT_USAGE;
        goto done;
    }
    ns_mpi_quiet(0); /* a worker's stdout stays silent; its stderr may carry MPI's own errors */
    ns_set_threads(p0.threads);
    ns_cli_blas_reserve(p0.threads);
    if (npoints > 1)
        status = run_sweep(&g, &p0, command_line, npoints, &mpi);
    else if (mpi.rank == 0) /* one point: rank 0 runs it, any other rank has nothing to do */
        status = run_single(&g, &p0, command_line);
    ns_mpi_finish(&mpi);
done:
    ns_workspace_free(points_workspace);
    points_workspace = NULL;
    ns_opt_free(&g);
    return status;
}
