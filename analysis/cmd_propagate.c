/* cmd_propagate.c: `normscope propagate`, the propagate protocol written to one HDF5 file.
 *
 * Options come from one table: it makes the argp options, parses and validates values, and
 * writes /config. Every option but --out and --threads may take a comma list (--depth 8,16,32
 * --scheme pre,post,span); the Cartesian product of the lists runs, first option slowest, into
 * one file: /sweep (one row per point) and /runs/<i>/ in the single-run layout. A single point
 * keeps the single-run layout at the root. Every point is validated before any work starts. */
#define _GNU_SOURCE
#include "cli.h"
#include "fit.h"
#include "h5out.h"
#include "options.h"
#include "progress.h"
#include "propagate.h"
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
    {"input", K_CHOICE, F(input), inputs, "gaussian", 1, "KIND",
     "input x_0: gaussian (N(0,1) i.i.d.) or tokens (random ids through a random embedding "
     "N(0,1) plus random positions N(0,0.1^2))"},
    {"vocab", K_INT, F(vocab), NULL, "256", 1, "V", "vocabulary size for --input tokens"},
    {"seeds", K_INT, F(seeds), NULL, "4", 1, "S",
     "independent draws of weights, input and cotangent"},
    {"seed", K_SEED, F(seed), NULL, "0", 1, "N", "first seed; draw s uses seed N+s"},
    {"threads", K_INT, F(threads), NULL, NULL, 0, "N", "OpenMP threads (default: all cores)"},
    {"out", K_TEXT, F(out), NULL, "propagate.h5", 0, "FILE", "output HDF5 file"},
};

/* the model and run options of a point, or a usage message */
static int resolve(const point *p, ns_propagate_opts *po, const char **scale_init, char *err,
                   size_t errlen)
{
    ns_config c;
    if (ns_model_opts_resolve(&p->model, &c, scale_init, err, errlen) != 0)
        return -1;
    *po = (ns_propagate_opts){.model = c, .seeds = p->seeds, .seed = (uint64_t)p->seed,
                              .input = (ns_input_kind)p->input, .vocab = p->vocab};
    return 0;
}

/* the theory's prediction for a point, or a status: NS_ERR_INVALID when no theory covers it.
 * MLP stacks: the mean-field recursion, exact as d -> infinity. Transformer and MoE stacks: the
 * approximate Gram recursion over positions (theory_transformer.c, exact = 0), at d = infinity
 * (width 0): with two norms per block the finite-width factor 1 - 2/d compounds and moves the
 * prediction away from the simulation (analysis/README.md section 9.6). MoE only without a
 * capacity limit and without auxiliary losses, which the theory does not model. */
static int predict(const ns_propagate_opts *po, ns_theory *t)
{
    const ns_config *c = &po->model;
    if (po->input != NS_INPUT_GAUSSIAN)
        return NS_ERR_INVALID;
    ns_theory_input in = {.placement = c->placement->name, .act = c->act, .norm = c->norm,
                          .depth = c->depth, .width = c->width, .hidden = c->hidden,
                          .alpha = c->alpha, .q0 = 1, .rho0 = 0};
    if (c->block == NS_BLOCK_MLP)
        return ns_theory_mlp(&in, t);
    if (c->seq > NS_THEORY_MAX_SEQ ||
        (c->block == NS_BLOCK_MOE && (c->capacity > 0 || c->aux_coef > 0 || c->zloss_coef > 0)))
        return NS_ERR_INVALID;
    in.width = 0;
    ns_theory_tf_input ti = {.base = in, .block = c->block, .seq = c->seq,
                             .attn = NS_THEORY_ATTN_SOFTMAX, .experts = c->experts,
                             .top_k = c->top_k};
    return ns_theory_transformer(&ti, t);
}

typedef struct {
    ns_progress bar;
    long done_before, total; /* blocks of the points already run, and of the whole sweep */
} tick_ctx;

static int tick(void *ctx, long done, long total)
{
    tick_ctx *t = ctx;
    (void)total;
    ns_progress_update(&t->bar, t->done_before + done, t->total);
    return ns_cli_interrupted();
}

/* a sweep point's prefix: "" for a single run, "/runs/<i>" in a sweep */
static void prefix_of(char *out, size_t n, long npoints, long i)
{
    if (npoints == 1)
        out[0] = 0;
    else
        snprintf(out, n, "/runs/%ld", i);
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
        swept[nswept++] = s->option;
        long stride = ns_opt_stride(g, i); /* the digit of option i in the point index */
        for (long p = 0; p < npoints; p++) {
            text[p] = g->values[i][(p / stride) % g->n[i]];
            num[p] = strtod(text[p], NULL);
        }
        char path[64], desc[160];
        snprintf(path, sizeof path, "/sweep/%s", s->option);
        snprintf(desc, sizeof desc, "--%s at each point; point i is /runs/i", s->option);
        size_t dims[] = {(size_t)npoints};
        static const char *const label[] = {"point"};
        st = s->k == K_CHOICE || s->k == K_TEXT
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
static int write_fits(ns_h5 *h, const ns_opt_given *g, long npoints, const double *act_L,
                      const double *ratio, const double *act_L_th, const double *ratio_th)
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
    for (long s = 0; s < nseries; s++) {
        long first = (s / stride) * stride * nd + s % stride;
        for (int k = 0; k < nd; k++) {
            long p = first + (long)k * stride;
            x[k] = strtod(g->values[id][k], NULL);
            y[0][k] = act_L[p], y[1][k] = act_L_th[p], y[2][k] = ratio[p], y[3][k] = ratio_th[p];
        }
        for (int q = 0; q < 4; q++)
            ns_fit_loglog(x, y[q], nd, &col[(2 * q) * nseries + s], &col[(2 * q + 1) * nseries + s]);
        col[(NCOL - 1) * nseries + s] = (double)first;
    }
    static const char *const names[NCOL] = {
        "act_ms_slope", "act_ms_slope_se", "act_ms_slope_theory", "act_ms_slope_theory_se",
        "grad_ratio_slope", "grad_ratio_slope_se", "grad_ratio_slope_theory",
        "grad_ratio_slope_theory_se", "first_point"};
    static const char *const descs[NCOL] = {
        "fitted slope of ln(final act_ms) against ln(depth), seed means",
        "standard error of act_ms_slope",
        "the same fit to the theory's final act_ms (NaN where no theory applies)",
        "standard error of act_ms_slope_theory",
        "fitted slope of ln(grad_ms[0] / grad_ms[L]) against ln(depth), seed means",
        "standard error of grad_ratio_slope",
        "the same fit to the theory's gradient ratio (NaN where no theory applies)",
        "standard error of grad_ratio_slope_theory",
        "the first point of the series in /runs and /sweep (the others follow in depth order)"};
    size_t dims[] = {(size_t)nseries};
    static const char *const label[] = {"series"};
    int st = ns_h5_group(h, "/sweep/fits");
    char path[64];
    for (int c = 0; st == NS_OK && c < NCOL; c++) {
        snprintf(path, sizeof path, "/sweep/fits/%s", names[c]);
        st = ns_h5_dataset(h, path, 1, dims, col + (size_t)c * nseries, descs[c], label);
    }
    free(col);
    return st;
}

int ns_cmd_propagate(int argc, char **argv)
{
    static ns_opt_spec specs[NS_OPT_MAX_SPECS];
    int nspecs = ns_opt_table(specs, run_specs, (int)(sizeof run_specs / sizeof run_specs[0]));
    const char *command_line = ns_cli_command_line(argc, argv);
    ns_opt_given g;
    memset(&g, 0, sizeof g);
    g.specs = specs, g.nspecs = nspecs;
    if (ns_opt_parse_argv(&g, "normscope propagate",
                          "Run the propagate protocol at initialization and write per-layer "
                          "metrics (and the mean-field theory where it applies) to an HDF5 file.",
                          argc, argv) != 0) {
        ns_opt_free(&g);
        return NS_EXIT_USAGE;
    }

    /* every point, checked before any work */
    long npoints = ns_opt_npoints(&g), total_blocks = 0;
    int status = NS_EXIT_OK;
    ns_h5 *h = NULL;
    double *act_L = calloc(4 * (size_t)npoints, sizeof(double));
    double *ratio = act_L + npoints, *act_L_th = ratio + npoints, *ratio_th = act_L_th + npoints;
    point p0 = {0};
    ns_opt_point_at(&g, 0, &p0);
    if (!act_L) {
        ns_cli_error("out of memory");
        status = NS_EXIT_RUNTIME;
        goto done;
    }
    for (long i = 0; i < npoints; i++) {
        point p = {0};
        ns_propagate_opts po;
        const char *si;
        char err[256];
        ns_opt_point_at(&g, i, &p);
        if (resolve(&p, &po, &si, err, sizeof err) != 0) {
            ns_cli_error("%s", err);
            status = NS_EXIT_USAGE;
            goto done;
        }
        total_blocks += 2L * p.model.depth * p.seeds;
    }
    ns_cli_install_signals(); /* before the output exists: a signal must never leave a partial */
    if (ns_h5_create(&h, p0.out) != NS_OK) { /* before any work: a bad path costs nothing */
        ns_cli_error("%s", ns_h5_error(h));
        status = NS_EXIT_USAGE;
        goto done;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ns_set_threads(p0.threads ? p0.threads : (ncpu > 0 ? (int)ncpu : 1));
    if (!p0.threads)
        p0.threads = ncpu > 0 ? (int)ncpu : 1;

    tick_ctx tc = {.done_before = 0, .total = total_blocks};
    ns_progress_start(&tc.bar, "propagate", "blocks");
    double t0 = ns_now();
    int st = ns_h5_write_root_attrs(h, command_line);
    if (!st && npoints > 1 && !(st = ns_h5_group(h, "/runs")))
        st = ns_h5_group(h, "/sweep");
    for (long i = 0; st == NS_OK && i < npoints; i++) {
        point p = {0};
        ns_propagate_opts po;
        const char *si;
        char err[256], pre[32], path[64];
        ns_opt_point_at(&g, i, &p);
        p.threads = p0.threads;
        resolve(&p, &po, &si, err, sizeof err);
        ns_propagate_result r;
        ns_theory t = {0};
        prefix_of(pre, sizeof pre, npoints, i);
        if ((st = ns_propagate(&po, &r, tick, &tc)))
            break;
        tc.done_before += 2L * p.model.depth * p.seeds;
        int L = p.model.depth, S = p.seeds;
        for (int s = 0; s < S; s++) { /* the seed means of the depth-sweep quantities */
            act_L[i] += r.act_ms[(size_t)s * (L + 1) + L] / S;
            ratio[i] += r.grad_ms[(size_t)s * (L + 1)] / r.grad_ms[(size_t)s * (L + 1) + L] / S;
        }
        act_L_th[i] = ratio_th[i] = NAN;
        snprintf(path, sizeof path, "%s/config", pre);
        if (pre[0] && (st = ns_h5_group(h, pre)))
            goto point_done;
        if ((st = ns_opt_write_config(h, path, &g, &p, si)) ||
            (st = ns_model_write_derived(h, path, &po.model)) ||
            (st = ns_propagate_write(h, pre, &r)))
            goto point_done;
        int th = predict(&po, &t);
        if (th == NS_OK) {
            act_L_th[i] = t.act_ms[L];
            ratio_th[i] = t.grad_ms[0] / t.grad_ms[L];
            st = ns_theory_write(h, pre, &po, &t);
        } else if (th != NS_ERR_INVALID) {
            st = th; /* a theory that applies but failed numerically */
        }
    point_done:
        ns_theory_free(&t);
        ns_propagate_result_free(&r);
    }
    ns_progress_finish(&tc.bar);
    double seconds = ns_now() - t0;
    if (st == NS_OK && npoints > 1)
        st = write_sweep_table(h, npoints, &g);
    if (st == NS_OK && npoints > 1)
        st = write_fits(h, &g, npoints, act_L, ratio, act_L_th, ratio_th);
    if (st == NS_OK)
        st = ns_h5_attr_double(h, "/", "wall_seconds", seconds);
    if (st == NS_OK)
        st = ns_h5_commit(h);
    if (st != NS_OK) {
        if (st == NS_ERR_INTERRUPTED)
            ns_cli_error("interrupted; no output written to %s", p0.out);
        else if (st == NS_ERR_IO)
            ns_cli_error("%s", ns_h5_error(h));
        else
            ns_cli_error("propagate failed: %s", ns_strerror(st));
        status = NS_EXIT_RUNTIME;
        goto done;
    }
    if (npoints == 1)
        printf("wrote %s: %s %s, L=%d d=%d T=%d B=%d, %d seed%s, %.2f s\n", p0.out,
               ns_opt_blocks[p0.model.block], ns_opt_schemes[p0.model.scheme], p0.model.depth,
               p0.model.width, p0.model.seq, p0.model.batch, p0.seeds, p0.seeds == 1 ? "" : "s",
               seconds);
    else
        printf("wrote %s: a sweep of %ld points, %.2f s\n", p0.out, npoints, seconds);
done:
    ns_h5_free(h);
    free(act_L);
    ns_opt_free(&g);
    return status;
}
