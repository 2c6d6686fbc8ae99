/* fig_depth.c: depth sweeps. A quantity of the whole stack (act_ms at the last layer, or the
 * gradient ratio grad_ms[0] / grad_ms[L]) against depth L on log-log axes, one series per row of
 * the inputs' /sweep/fits: the runs that differ only in depth.
 *
 * The data file holds one block per series (gnuplot `index k`), one line per depth:
 *     depth  mean  sd  ci95_lo  ci95_hi  theory  run
 * where mean, sd and the interval are over the seeds of the per-seed quantity, theory is the
 * run's /theory at the same depth (nan without one) and run is the point i of /runs/<i>. A
 * `# fit` comment line copies the file's fitted slopes (measured and theory, with standard
 * errors); the legend shows them rounded. On log-log axes a power law L^b is a straight line of
 * slope b, so the fitted slope is what the eye reads off the points. */
#include "plot_figure.h"
#include "plot_stats.h"
#include "normscope.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one series: input file `input`, row `row` of its /sweep/fits, its runs in depth order */
typedef struct {
    int input, row, n;
    int *runs; /* [n] indices in set->files, by increasing depth */
    int theory, band, exact;
} series;

typedef struct {
    const ns_depth_spec *sp;
    const ns_plot_set *set;
    series *v;
    int n;
    ns_plot_style *styles;
    char context[256];
    double ylo, yhi;
    int *depths, ndepths; /* every depth drawn, for the x tics */
} depth_fig;

static void take(depth_fig *fg, double v)
{
    if (isfinite(v) && v > 0) {
        fg->ylo = fmin(fg->ylo, v);
        fg->yhi = fmax(fg->yhi, v);
    }
}

static void free_fig(depth_fig *fg)
{
    for (int i = 0; i < fg->n; i++)
        free(fg->v[i].runs);
    free(fg->v);
    free(fg->styles);
    free(fg->depths);
}

/* every series of every input, its runs sorted by depth */
static int collect(depth_fig *fg)
{
    const ns_plot_set *set = fg->set;
    int total = 0, points = 0;
    for (int k = 0; k < set->ninputs; k++) {
        total += set->sweeps[k].nseries;
        points += set->sweeps[k].nseries * set->sweeps[k].per_series;
    }
    if (!total)
        return NS_OK;
    fg->v = calloc((size_t)total, sizeof *fg->v);
    fg->styles = calloc((size_t)total, sizeof *fg->styles);
    fg->depths = malloc((size_t)points * sizeof *fg->depths);
    if (!fg->v || !fg->styles || !fg->depths)
        return NS_ERR_NOMEM;
    for (int k = 0; k < set->ninputs; k++) {
        const ns_plot_sweep *sw = &set->sweeps[k];
        for (int r = 0; r < sw->nseries; r++) {
            series *s = &fg->v[fg->n++];
            s->input = k, s->row = r, s->n = sw->per_series;
            if (!(s->runs = malloc((size_t)s->n * sizeof *s->runs)))
                return NS_ERR_NOMEM;
            for (int j = 0; j < s->n; j++) { /* insertion sort by depth (a handful of points) */
                int idx = set->run0[k] + sw->first[r] + j * sw->stride, at = j;
                while (at > 0 && set->files[s->runs[at - 1]].depth > set->files[idx].depth) {
                    s->runs[at] = s->runs[at - 1];
                    at--;
                }
                s->runs[at] = idx;
                fg->depths[fg->ndepths++] = set->files[idx].depth;
            }
        }
    }
    return NS_OK;
}

/* the quantity of one seed of run f (NAN if the run lacks the data) */
static double measured(const depth_fig *fg, const ns_plot_file *f, int s)
{
    int L = f->depth;
    const ns_plot_array *a = ns_plot_get(f, fg->sp->q == NS_DEPTH_ACT_MS ? NS_DS_ACT_MS
                                                                         : NS_DS_GRAD_MS);
    if (!a)
        return NAN;
    const double *row = a->v + (size_t)s * (L + 1);
    return fg->sp->q == NS_DEPTH_ACT_MS ? row[L] : row[0] / row[L];
}

static const ns_plot_array *theory_of(const depth_fig *fg, const ns_plot_file *f)
{
    return ns_plot_get(f, fg->sp->q == NS_DEPTH_ACT_MS ? NS_DS_THEORY_ACT_MS
                                                       : NS_DS_THEORY_GRAD_MS);
}

static double predicted(const depth_fig *fg, const ns_plot_file *f)
{
    const ns_plot_array *t = theory_of(fg, f);
    int L = f->depth;
    if (!t)
        return NAN;
    /* /theory/grad_ms is p_l / p_L: the ratio is p_0 / p_L either way */
    return fg->sp->q == NS_DEPTH_ACT_MS ? t->v[L] : t->v[0] / t->v[L];
}

static double fit(const depth_fig *fg, const series *s, ns_plot_fit c)
{
    return fg->set->sweeps[s->input].fit[c][s->row];
}

/* x to 3 decimals, without a "-0.000" */
static double r3(double x) { return fabs(x) < 5e-4 ? 0.0 : x; }

/* "slope 0.755 ± 0.008 (theory 0.765)" */
static void slope_text(const depth_fig *fg, const series *s, char *out, size_t n)
{
    double b = fit(fg, s, fg->sp->slope), se = fit(fg, s, fg->sp->slope_se);
    double bt = fit(fg, s, fg->sp->slope_theory);
    int k = snprintf(out, n, "slope %.3f ± %.3f", r3(b), r3(se));
    if (isfinite(bt) && k > 0 && (size_t)k < n)
        snprintf(out + k, n - (size_t)k, " (theory %.3f)", r3(bt));
}

static int data_block(depth_fig *fg, int i, ns_buf *dat)
{
    series *s = &fg->v[i];
    const ns_plot_set *set = fg->set;
    const ns_plot_file *f0 = &set->files[s->runs[0]];
    int S = f0->seeds;
    double *x = malloc((size_t)(S > 0 ? S : 1) * sizeof *x);
    if (!x)
        return NS_ERR_NOMEM;
    s->band = S > 1;
    s->exact = 1;
    const ns_plot_array *t0 = theory_of(fg, f0);
    ns_buf_printf(dat, "%s# index %d: %s\n# file: ", i ? "\n\n" : "\n", i, fg->styles[i].label);
    ns_gp_comment(dat, f0->path);
    ns_buf_printf(dat, ", /sweep/fits series %d: points", s->row);
    for (int j = 0; j < s->n; j++)
        ns_buf_printf(dat, " %d", set->files[s->runs[j]].run);
    if (S > 1)
        ns_buf_printf(dat, "\n# %d seeds, t_{0.975,%d} = %.6g\n", S, S - 1, ns_t975(S));
    else
        ns_buf_printf(dat, "\n# 1 seed: no interval\n");
    if (t0) {
        ns_buf_printf(dat, "# theory: %s at each depth (%s)", ns_plot_ds_path(fg->sp->q ==
                      NS_DEPTH_ACT_MS ? NS_DS_THEORY_ACT_MS : NS_DS_THEORY_GRAD_MS),
                      t0->exact == 1   ? "exact as width -> infinity"
                      : t0->exact == 0 ? "approximate"
                                       : "exactness not recorded");
        if (t0->model[0]) {
            ns_buf_printf(dat, "; model: ");
            ns_gp_comment(dat, t0->model);
        }
        ns_buf_printf(dat, "\n");
    }
    ns_buf_printf(dat, "# fit");
    const ns_plot_fit cols[] = {fg->sp->slope, fg->sp->slope_se, fg->sp->slope_theory,
                                fg->sp->slope_theory_se};
    for (int c = 0; c < 4; c++) {
        ns_buf_printf(dat, " %s ", ns_plot_fit_name(cols[c]));
        ns_buf_num(dat, fit(fg, s, cols[c]));
    }
    ns_buf_printf(dat, "\n# depth mean sd ci95_lo ci95_hi theory run\n");
    for (int j = 0; j < s->n; j++) {
        const ns_plot_file *f = &set->files[s->runs[j]];
        for (int k = 0; k < S; k++)
            x[k] = measured(fg, f, k);
        double row[5];
        ns_seed_stats(x, S, 1, &row[0], &row[1], &row[2], &row[3]);
        row[4] = predicted(fg, f);
        const ns_plot_array *t = theory_of(fg, f);
        if (isfinite(row[4])) {
            s->theory = 1;
            s->exact &= t->exact == 1;
        }
        ns_buf_printf(dat, "%d", f->depth);
        for (int c = 0; c < 5; c++) {
            ns_buf_printf(dat, " ");
            ns_buf_num(dat, row[c]);
            if (c != 1)
                take(fg, row[c]);
        }
        ns_buf_printf(dat, " %d\n", f->run);
    }
    free(x);
    return NS_OK;
}

static void item(ns_buf *gp, int *items)
{
    ns_buf_printf(gp, *items ? ", \\\n    " : "plot \\\n    ");
    (*items)++;
}

static void script(const depth_fig *fg, ns_buf *gp)
{
    const char *name = fg->sp->name;
    ns_gp_header(gp, name, fg->sp->title);
    ns_buf_printf(gp, "# Data: %s.dat, one block per depth series:\n", name);
    for (int i = 0; i < fg->n; i++) {
        ns_buf_printf(gp, "#   index %d: %s <- ", i, fg->styles[i].label);
        ns_gp_comment(gp, fg->set->files[fg->v[i].runs[0]].path);
        ns_buf_printf(gp, " /sweep/fits series %d\n", fg->v[i].row);
    }
    ns_buf_printf(gp, "#   columns: 1 depth, 2 mean, 3 sd, 4 ci95_lo, 5 ci95_hi, 6 theory, "
                      "7 run\n\n");
    ns_gp_terminal(gp, name);
    ns_gp_frame(gp);
    ns_buf_printf(gp, "\n# one colour per series (Okabe-Ito; the placement's own for the first "
                      "series of each placement)\n");
    for (int i = 0; i < fg->n; i++)
        ns_buf_printf(gp, "c%d = \"%s\"  # %s\n", i, fg->styles[i].color, fg->styles[i].label);
    char title[512];
    snprintf(title, sizeof title, "%s\n%s", fg->sp->title, fg->context);
    ns_buf_printf(gp, "\nset title ");
    ns_gp_quoted(gp, title);
    ns_buf_printf(gp, "\n");
    ns_gp_log_depth_axis(gp, fg->depths, fg->ndepths, "depth L (log scale)");
    char ylabel[160];
    snprintf(ylabel, sizeof ylabel, "%s (log scale)", fg->sp->ylabel);
    ns_buf_printf(gp, "set ylabel ");
    ns_gp_quoted(gp, ylabel);
    ns_buf_printf(gp, "\n");
    ns_gp_log_y(gp, fg->ylo, fg->yhi);
    ns_buf_printf(gp, "data = \"%s.dat\"\n\n", name);

    int items = 0, any_band = 0, n_theory = 0, n_exact = 0;
    for (int i = 0; i < fg->n; i++)
        if (fg->v[i].band) {
            any_band = 1;
            item(gp, &items);
            ns_buf_printf(gp, "data index %d using 1:(clip($4)):5 with filledcurves fc rgb c%d "
                              "fs transparent solid 0.18 noborder notitle", i, i);
        }
    for (int i = 0; i < fg->n; i++)
        if (fg->v[i].theory) {
            n_theory++;
            n_exact += fg->v[i].exact;
            item(gp, &items);
            ns_buf_printf(gp, "data index %d using 1:6 with lines lc rgb c%d dt (8,5) lw 1.6 "
                              "notitle", i, i);
        }
    for (int i = 0; i < fg->n; i++) {
        char t[400], slope[96];
        slope_text(fg, &fg->v[i], slope, sizeof slope);
        snprintf(t, sizeof t, "%s: %s", fg->styles[i].label, slope);
        item(gp, &items);
        ns_buf_printf(gp, "data index %d using 1:2 with linespoints lc rgb c%d lw 2 pt %d "
                          "ps marker title ", i, i, fg->styles[i].point);
        ns_gp_quoted(gp, t);
    }
    if (any_band) {
        item(gp, &items);
        ns_buf_printf(gp, "keyentry with filledcurves fc rgb \"%s\" fs transparent solid 0.3 "
                          "noborder title \"95%% CI of the mean over seeds\"", NS_GP_GREY);
    }
    if (n_theory) {
        item(gp, &items);
        ns_buf_printf(gp, "keyentry with lines lc rgb \"%s\" dt (8,5) lw 1.6 title \"%s\"",
                      NS_GP_GREY, n_exact == n_theory ? "theory (exact as width → ∞)"
                                                      : "theory");
    }
    ns_buf_printf(gp, "\nunset output\n");
}

static int by_value(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int ns_fig_depth(const ns_plot_set *set, const void *spec, ns_plot_figs *out)
{
    depth_fig fg = {.sp = spec, .set = set, .ylo = INFINITY, .yhi = -INFINITY};
    int st = collect(&fg);
    if (st != NS_OK || fg.n == 0) {
        free_fig(&fg);
        return st;
    }
    const ns_plot_file **firsts = malloc((size_t)fg.n * sizeof *firsts);
    ns_plot_fig *fig = firsts ? ns_figs_add(out, fg.sp->name) : NULL;
    st = NS_ERR_NOMEM;
    if (!fig)
        goto done;
    for (int i = 0; i < fg.n; i++)
        firsts[i] = &set->files[fg.v[i].runs[0]];
    ns_style_series(firsts, fg.n, fg.styles, fg.context, sizeof fg.context);
    ns_buf_printf(&fig->dat, "# %s.dat: %s; drawn by %s.gp\n", fg.sp->name, fg.sp->title,
                  fg.sp->name);
    ns_buf_printf(&fig->dat,
                  "# one block per depth series (the runs of a sweep file that differ only in "
                  "depth: a row of its /sweep/fits), blocks separated by two blank lines "
                  "(gnuplot: index 0, 1, ...); nan = not available\n# mean, sd: over seeds of "
                  "%s; ci95_lo, ci95_hi: mean -/+ t_{0.975,S-1} sd/sqrt(S); theory: the run's "
                  "/theory at that depth\n# fit: the file's /sweep/fits (least squares of "
                  "ln(seed mean) against ln L), copied\n",
                  fg.sp->q == NS_DEPTH_ACT_MS ? "act_ms[L]" : "grad_ms[0] / grad_ms[L] (per seed)");
    for (int i = 0; i < fg.n; i++)
        if ((st = data_block(&fg, i, &fig->dat)) != NS_OK)
            goto done;
    qsort(fg.depths, (size_t)fg.ndepths, sizeof *fg.depths, by_value);
    if (!isfinite(fg.ylo)) /* nothing positive to draw: a unit axis rather than none */
        fg.ylo = 0.5, fg.yhi = 2;
    script(&fg, &fig->gp);
    st = ns_buf_ok(&fig->dat) && ns_buf_ok(&fig->gp) ? NS_OK : NS_ERR_NOMEM;
done:
    free(firsts);
    free_fig(&fg);
    return st;
}
