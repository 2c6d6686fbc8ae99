/* fig_layer.c: a metric against layer, one curve per input run (a file, or a point of a sweep).
 *
 * The data file holds one block per run (gnuplot `index k`), columns
 *     layer|block  mean  sd  ci95_lo  ci95_hi  theory  bound
 * with "nan" where a value does not exist (one seed: no interval; no /theory: no theory). The
 * script draws, back to front: the bands, reference lines, bounds (dotted), theory (dashed),
 * then the measured means; the legend names each run once and explains each line style once. */
#include "plot_figure.h"
#include "plot_stats.h"
#include "normscope.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REFS 8

/* what the script draws for one run */
typedef struct {
    int block;         /* index in the .dat, or -1 if the run lacks the metric */
    int band;          /* 2+ seeds: a confidence band */
    int theory, bound; /* dashed and dotted curves */
} drawn;

/* one figure under construction */
typedef struct {
    const ns_layer_spec *sp;
    const ns_plot_set *set;
    drawn *dr;             /* [set->n] */
    int first, last;       /* x axis: layer 0 or block 1 .. the deepest run's L */
    double ylo, yhi;       /* positive finite values drawn: the range of a log axis */
    int n_theory, n_exact, n_approx, n_finite, any_band, any_bound;
    char approx[256];      /* the keys of runs whose theory is approximate */
    double refs[MAX_REFS]; /* reference lines, distinct values */
    int nrefs, ref_run[MAX_REFS];
} layer_fig;

/* the run's metric, or NULL if it lacks it or the figure leaves it out */
static const ns_plot_array *metric_of(const ns_layer_spec *sp, const ns_plot_file *f)
{
    return sp->applies && !sp->applies(f) ? NULL : ns_plot_get(f, sp->metric);
}

/* the reference value a run implies, or NAN */
static double reference_value(ns_reference r, const ns_plot_file *f)
{
    switch (r) {
    case NS_REF_UNIFORM_ROUTER: return f->experts > 0 ? log((double)f->experts) : NAN;
    case NS_REF_ROUTING_NOISE:
        return f->experts > 0 && f->top_k > 0 && f->top_k <= f->experts && f->batch > 0 &&
                       f->seq > 0
                   ? sqrt((double)(f->experts - f->top_k) /
                          ((double)f->top_k * f->batch * f->seq))
                   : NAN;
    case NS_REF_RANK_LIMIT:
        return f->seq > 0 && f->width > 0 ? (f->seq < f->width ? f->seq : f->width) : NAN;
    case NS_REF_UNIFORM_ATTENTION: return f->seq > 0 ? ns_uniform_causal_entropy(f->seq) : NAN;
    case NS_REF_NONE: break;
    }
    return NAN;
}

static void reference_title(ns_reference r, double v, const ns_plot_file *f, char *out, size_t n)
{
    if (r == NS_REF_RANK_LIMIT)
        snprintf(out, n, "rank limit min(T, d) = %g", v);
    else if (r == NS_REF_UNIFORM_ROUTER)
        snprintf(out, n, "uniform router (maximum): ln E = %.3g nats at E=%d", v, f->experts);
    else if (r == NS_REF_ROUTING_NOISE)
        snprintf(out, n, "balanced router, counting noise of %d tokens: √((E−k)/(k·B·T)) = %.3g",
                 f->batch * f->seq, v);
    else
        snprintf(out, n, "uniform causal attention (maximum): %.3g nats at T=%d", v, f->seq);
}

/* widens the y range to take in v if it can sit on a log axis */
static void take(layer_fig *fg, double v)
{
    if (isfinite(v) && v > 0) {
        fg->ylo = fmin(fg->ylo, v);
        fg->yhi = fmax(fg->yhi, v);
    }
}

/* run i's block of the .dat: statistics over seeds, and its theory as drawn */
static int data_block(layer_fig *fg, int i, int k, ns_buf *dat)
{
    const ns_layer_spec *sp = fg->sp;
    const ns_plot_file *f = &fg->set->files[i];
    const ns_plot_style *st = &fg->set->styles[i];
    const ns_plot_array *a = metric_of(sp, f);
    int S = (int)a->dims[0], N = (int)a->dims[1], x0 = N == f->depth + 1 ? 0 : 1;
    const char *xname = x0 == 0 ? "layer" : "block";
    const ns_plot_array *th = ns_plot_get(f, sp->theory), *bd = ns_plot_get(f, sp->bound);
    if (th && (int)th->dims[0] != N) /* a spec pairing [L] with [L+1]: never read past */
        th = NULL;
    if (bd && (int)bd->dims[0] != N)
        bd = NULL;
    double *work = malloc(4 * (size_t)N * sizeof *work);
    if (!work)
        return NS_ERR_NOMEM;
    double *mean = work, *sd = work + N, *lo = work + 2 * N, *hi = work + 3 * N;
    ns_seed_stats(a->v, S, N, mean, sd, lo, hi);
    double scale = sp->theory_relative_to_last ? mean[N - 1] : 1;
    if (!(isfinite(scale) && scale > 0))
        th = bd = NULL; /* nothing to anchor a relative theory to */
    fg->dr[i] = (drawn){.block = k, .band = S > 1, .theory = th != NULL, .bound = bd != NULL};
    fg->any_band |= S > 1;
    fg->any_bound |= bd != NULL;
    fg->n_theory += th != NULL;
    fg->n_exact += th && th->exact == 1;
    fg->n_finite += th && strcmp(th->order, "O(1/d)") == 0;
    if (th && th->exact == 0) { /* the legend names the approximate ones */
        size_t len = strlen(fg->approx);
        fg->n_approx++;
        snprintf(fg->approx + len, sizeof fg->approx - len, "%s%s", len ? ", " : "", st->key);
    }

    ns_buf_printf(dat, "%s# index %d: %s\n# file: ", k ? "\n\n" : "\n", k, st->label);
    ns_gp_comment(dat, f->source);
    if (S > 1)
        ns_buf_printf(dat, "\n# %d seeds, t_{0.975,%d} = %.6g\n", S, S - 1, ns_t975(S));
    else
        ns_buf_printf(dat, "\n# 1 seed: no interval\n");
    if (th) {
        ns_buf_printf(dat, "# theory: %s (%s)", ns_plot_ds_path(sp->theory),
                      th->exact == 1   ? "exact as width -> infinity"
                      : th->exact == 0 ? "approximate"
                                       : "exactness not recorded");
        if (th->model[0]) {
            ns_buf_printf(dat, "; model: ");
            ns_gp_comment(dat, th->model);
        }
        ns_buf_printf(dat, "\n");
    }
    if (bd)
        ns_buf_printf(dat, "# bound: %s\n", ns_plot_ds_path(sp->bound));
    if ((th || bd) && sp->theory_relative_to_last)
        ns_buf_printf(dat, "# theory and bound are relative to their value at %s %d: drawn "
                           "times the measured mean there, %.12g\n", xname, x0 + N - 1, scale);
    ns_buf_printf(dat, "# %s mean sd ci95_lo ci95_hi theory bound\n", xname);
    for (int j = 0; j < N; j++) {
        double row[6] = {mean[j], sd[j], lo[j], hi[j], th ? th->v[j] * scale : NAN,
                         bd ? bd->v[j] * scale : NAN};
        ns_buf_printf(dat, "%d", x0 + j);
        for (int c = 0; c < 6; c++) {
            ns_buf_printf(dat, " ");
            ns_buf_num(dat, row[c]);
            if (c != 1) /* everything drawn; sd is not */
                take(fg, row[c]);
        }
        ns_buf_printf(dat, "\n");
    }
    free(work);
    return NS_OK;
}

/* reference lines: one per distinct value among the runs drawn */
static void references(layer_fig *fg)
{
    for (int i = 0; i < fg->set->n && fg->sp->reference != NS_REF_NONE; i++) {
        double v = fg->dr[i].block >= 0 ? reference_value(fg->sp->reference, &fg->set->files[i])
                                        : NAN;
        int seen = !isfinite(v);
        for (int r = 0; r < fg->nrefs && !seen; r++)
            seen = fabs(fg->refs[r] - v) <= 1e-12 * fabs(v);
        if (!seen && fg->nrefs < MAX_REFS) {
            fg->ref_run[fg->nrefs] = i;
            fg->refs[fg->nrefs++] = v;
            take(fg, v);
        }
    }
}

/* the script's comments, terminal, colours, title and axes */
static void script_head(const layer_fig *fg, int logy, ns_buf *gp)
{
    const char *name = fg->sp->name;
    const ns_plot_set *set = fg->set;
    ns_gp_header(gp, name, fg->sp->title);
    ns_buf_printf(gp, "# Data: %s.dat, one block per input run:\n", name);
    for (int i = 0; i < set->n; i++)
        if (fg->dr[i].block >= 0) {
            ns_buf_printf(gp, "#   index %d: %s <- ", fg->dr[i].block, set->styles[i].label);
            ns_gp_comment(gp, set->files[i].source);
            ns_buf_printf(gp, "\n");
        }
    ns_buf_printf(gp, "#   columns: 1 %s, 2 mean, 3 sd, 4 ci95_lo, 5 ci95_hi, 6 theory, "
                      "7 bound\n\n", fg->first == 0 ? "layer" : "block");
    ns_gp_terminal(gp, name);
    ns_gp_frame(gp);
    ns_buf_printf(gp, "\n# one colour per input run (Okabe-Ito; fixed per placement)\n");
    for (int i = 0; i < set->n; i++)
        if (fg->dr[i].block >= 0)
            ns_buf_printf(gp, "c%d = \"%s\"  # %s\n", fg->dr[i].block, set->styles[i].color,
                          set->styles[i].label);
    char title[512];
    snprintf(title, sizeof title, "%s\n%s", fg->sp->title, set->context);
    ns_buf_printf(gp, "\nset title ");
    ns_gp_quoted(gp, title);
    ns_buf_printf(gp, "\n");
    ns_gp_layer_axis(gp, fg->first, fg->last,
                     fg->first == 0 ? "layer l (0 = input x_0)" : "block l");
    ns_buf_printf(gp, "set ylabel ");
    ns_gp_quoted(gp, fg->sp->ylabel);
    ns_buf_printf(gp, "\n");
    if (logy)
        ns_gp_log_y(gp, fg->ylo, fg->yhi);
    else if (fg->sp->ycap > 0 || fg->sp->nonneg) { /* autoscaled, but not past what the
                                                     * metric can reach */
        ns_buf_printf(gp, "set yrange [%s*:*", fg->sp->nonneg ? "0 < " : "");
        if (fg->sp->ycap > 0)
            ns_buf_printf(gp, " < %g", fg->sp->ycap);
        ns_buf_printf(gp, "]\n");
    }
    ns_buf_printf(gp, "data = \"%s.dat\"\n\n", name);
}

/* "plot \" before the first item, ", \" between items */
static void item(ns_buf *gp, int *items)
{
    ns_buf_printf(gp, *items ? ", \\\n    " : "plot \\\n    ");
    (*items)++;
}

/* the plot command, back to front, and the legend's style entries */
static void script_plot(const layer_fig *fg, int logy, ns_buf *gp)
{
    const ns_plot_set *set = fg->set;
    const drawn *dr = fg->dr;
    int items = 0, pi = fg->last > 24 ? fg->last / 12 : 1; /* a dozen markers per curve */
    for (int i = 0; i < set->n; i++)
        if (dr[i].block >= 0 && dr[i].band) {
            item(gp, &items);
            /* a band's lower edge stops at the bottom of a log axis, and at 0 for a metric
             * that cannot be negative (gnuplot leaves a point outside a fixed range out of
             * the autoscaled top) */
            ns_buf_printf(gp, "data index %d using 1:%s:5 with filledcurves fc rgb c%d "
                              "fs transparent solid 0.18 noborder notitle", dr[i].block,
                          logy ? "(clip($4))" : fg->sp->nonneg ? "($4 > 0 ? $4 : 0)" : "4",
                          dr[i].block);
        }
    for (int r = 0; r < fg->nrefs; r++) {
        item(gp, &items);
        ns_buf_printf(gp, "%.12g with lines lc rgb \"%s\" dt 4 lw 1.2 notitle", fg->refs[r],
                      NS_GP_GREY);
    }
    for (int i = 0; i < set->n; i++)
        if (dr[i].block >= 0 && dr[i].bound) {
            item(gp, &items);
            ns_buf_printf(gp, "data index %d using 1:7 with lines lc rgb c%d dt 3 lw 1.6 notitle",
                          dr[i].block, dr[i].block);
        }
    for (int i = 0; i < set->n; i++)
        if (dr[i].block >= 0 && dr[i].theory) {
            item(gp, &items);
            ns_buf_printf(gp, "data index %d using 1:6 with lines lc rgb c%d dt (8,5) lw 1.6 "
                              "notitle", dr[i].block, dr[i].block);
        }
    for (int i = 0; i < set->n; i++)
        if (dr[i].block >= 0) {
            /* runs with one label (the depths of a depth series) share one legend entry */
            int named = 0;
            for (int j = 0; j < i && !named; j++)
                named = dr[j].block >= 0 && strcmp(set->styles[j].label, set->styles[i].label) == 0;
            item(gp, &items);
            ns_buf_printf(gp, "data index %d using 1:2 with linespoints lc rgb c%d lw 2 pt %d "
                              "ps marker pi %d ", dr[i].block, dr[i].block,
                          set->styles[i].point, pi);
            if (named) {
                ns_buf_printf(gp, "notitle");
            } else {
                ns_buf_printf(gp, "title ");
                ns_gp_quoted(gp, set->styles[i].label);
            }
        }
    /* the legend explains each line style once, in grey */
    if (fg->any_band) {
        item(gp, &items);
        ns_buf_printf(gp, "keyentry with filledcurves fc rgb \"%s\" fs transparent solid 0.3 "
                          "noborder title \"95%% CI of the mean over seeds\"", NS_GP_GREY);
    }
    if (fg->n_theory) {
        char t[400];
        /* the drawn theory is the file's /theory: at the run's width, with the O(1/d) correction
         * where it is derived (MLP stacks), which the legend says */
        const char *order = fg->n_finite == fg->n_theory ? ", O(1/d)"
                            : fg->n_finite > 0           ? ", O(1/d) where derived"
                                                         : "";
        if (fg->n_exact == fg->n_theory && fg->n_finite == fg->n_theory)
            snprintf(t, sizeof t, "theory, O(1/d)");
        else if (fg->n_exact == fg->n_theory)
            snprintf(t, sizeof t, "theory (exact as width → ∞)");
        else if (fg->n_approx == fg->n_theory)
            snprintf(t, sizeof t, "theory%s (approximate)", order);
        else if (fg->n_approx > 0)
            snprintf(t, sizeof t, "theory%s (approximate for %s)", order, fg->approx);
        else
            snprintf(t, sizeof t, "theory%s", order);
        item(gp, &items);
        ns_buf_printf(gp, "keyentry with lines lc rgb \"%s\" dt (8,5) lw 1.6 title ", NS_GP_GREY);
        ns_gp_quoted(gp, t);
    }
    if (fg->any_bound) {
        item(gp, &items);
        ns_buf_printf(gp, "keyentry with lines lc rgb \"%s\" dt 3 lw 1.6 title "
                          "\"closed-form bound\"", NS_GP_GREY);
    }
    for (int r = 0; r < fg->nrefs; r++) {
        char t[200];
        reference_title(fg->sp->reference, fg->refs[r], &set->files[fg->ref_run[r]], t, sizeof t);
        item(gp, &items);
        ns_buf_printf(gp, "keyentry with lines lc rgb \"%s\" dt 4 lw 1.2 title ", NS_GP_GREY);
        ns_gp_quoted(gp, t);
    }
    ns_buf_printf(gp, "\nunset output\n");
}

int ns_fig_layer(const ns_plot_set *set, const void *spec, ns_plot_figs *out)
{
    layer_fig fg = {.sp = spec, .set = set, .ylo = INFINITY, .yhi = -INFINITY};
    int nblocks = 0;
    for (int i = 0; i < set->n; i++) {
        const ns_plot_array *a = metric_of(fg.sp, &set->files[i]);
        if (!a)
            continue;
        nblocks++;
        /* [S, L+1] starts at the input, layer 0; [S, L] at block 1 */
        fg.first = a->dims[1] == (size_t)set->files[i].depth + 1 ? 0 : 1;
        if (set->files[i].depth > fg.last)
            fg.last = set->files[i].depth;
    }
    if (!nblocks)
        return NS_OK;
    ns_plot_fig *fig = ns_figs_add(out, fg.sp->name);
    int status = NS_ERR_NOMEM;
    if (!fig || !(fg.dr = calloc((size_t)set->n, sizeof *fg.dr)))
        goto done;
    ns_buf_printf(&fig->dat, "# %s.dat: %s; drawn by %s.gp\n", fg.sp->name, fg.sp->title,
                  fg.sp->name);
    ns_buf_printf(&fig->dat, "# one block per input run, blocks separated by two blank lines "
                             "(gnuplot: index 0, 1, ...); nan = not available\n"
                             "# mean, sd: over seeds; ci95_lo, ci95_hi: mean -/+ "
                             "t_{0.975,S-1} sd/sqrt(S); theory, bound: the run's /theory, as "
                             "drawn\n");
    if (fg.sp->note)
        ns_buf_printf(&fig->dat, "# %s\n", fg.sp->note);
    for (int i = 0, k = 0; i < set->n; i++) {
        fg.dr[i].block = -1;
        if (metric_of(fg.sp, &set->files[i]) &&
            (status = data_block(&fg, i, k++, &fig->dat)) != NS_OK)
            goto done;
    }
    references(&fg);
    int logy = fg.sp->logy && isfinite(fg.ylo);
    script_head(&fg, logy, &fig->gp);
    script_plot(&fg, logy, &fig->gp);
    status = ns_buf_ok(&fig->dat) && ns_buf_ok(&fig->gp) ? NS_OK : NS_ERR_NOMEM;
done:
    free(fg.dr);
    return status;
}
