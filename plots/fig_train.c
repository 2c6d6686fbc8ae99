/* fig_train.c: training runs (/train, written by `normscope train`), all of them overlaid.
 *
 * train_loss       the training loss of every step (thin), the held-out loss at every probe
 *                  (points), the data's loss floor (grey, dashed), divergence events marked;
 * train_grad_norm  the global gradient norm before clipping, every step (log y), the clipping
 *                  threshold, events marked;
 * train_grad_ms_<tag>, one per run: log10 of grad_ms, the mean square of the gradient of the
 *                  loss with respect to x_l on the probe batch, as a (probe step, layer) heatmap;
 *                  one colour scale for all of them; the first divergence as a vertical line.
 *
 * A run still being written is drawn as far as it has been flushed. Events are drawn where they
 * happened: at the step, at the curve's value there, or at the top of the axis when that value
 * is not finite (NaN/Inf) or above the axis. */
#include "plot_figure.h"
#include "normscope.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int has_steps(const ns_plot_file *f) { return f->train.present && f->train.nsteps > 0; }

/* the value of series v at step s (v runs over t->step), NAN if s is not a recorded step */
static double at_step(const ns_plot_train *t, const double *v, double s)
{
    for (size_t i = 0; i < t->nsteps; i++)
        if (t->step[i] == s)
            return v[i];
    return NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the q-quantile of the finite values of v[0..n-1] (nearest rank), NAN if there are none */
static double finite_quantile(const double *v, size_t n, double q, int *nomem)
{
    double *w = malloc((n ? n : 1) * sizeof *w);
    size_t m = 0;
    if (!w) {
        *nomem = 1;
        return NAN;
    }
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]))
            w[m++] = v[i];
    double r = NAN;
    if (m) {
        qsort(w, m, sizeof *w, cmp_double);
        r = w[(size_t)fmin((double)m - 1, floor(q * (double)m))];
    }
    free(w);
    return r;
}

#define MAX_LINES 8 /* distinct reference lines (loss floors, clipping thresholds) drawn */

/* adds v to the n distinct values of vals (at most MAX_LINES), if it is not there already */
static void add_distinct(double *vals, int *n, double v)
{
    for (int j = 0; j < *n; j++)
        if (fabs(vals[j] - v) <= 1e-9 * fmax(1, fabs(v)))
            return;
    if (*n < MAX_LINES)
        vals[(*n)++] = v;
}

/* rows "x y" of two series, x an integer (a step) */
static void two_columns(ns_buf *dat, const double *x, const double *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ns_buf_printf(dat, "%.0f ", x[i]);
        ns_buf_num(dat, y[i]);
        ns_buf_printf(dat, "\n");
    }
}

/* "plot \" before the first item, ", \" between items */
static void item(ns_buf *gp, int *items)
{
    ns_buf_printf(gp, *items ? ", \\\n    " : "plot \\\n    ");
    (*items)++;
}

/* the index lines of a script's opening comment */
static void script_runs(const ns_plot_set *set, const int *block, ns_buf *gp)
{
    for (int i = 0; i < set->n; i++)
        if (block[i] >= 0) {
            ns_buf_printf(gp, "#   index %d..: %s <- ", block[i], set->styles[i].label);
            ns_gp_comment(gp, set->files[i].source);
            ns_buf_printf(gp, "\n");
        }
}

/* one colour per run: c<i>, and ct<i> for its translucent per-step curve */
static void colours(const ns_plot_set *set, const int *block, ns_buf *gp)
{
    ns_buf_printf(gp, "\n# one colour per run (Okabe-Ito; fixed per placement); ct*: the same, "
                      "translucent (#AARRGGBB)\n");
    for (int i = 0; i < set->n; i++)
        if (block[i] >= 0)
            ns_buf_printf(gp, "c%d = \"%s\"; ct%d = \"#80%s\"  # %s\n", i, set->styles[i].color,
                          i, set->styles[i].color + 1, set->styles[i].label);
}

/* the opening of a training figure's script, up to its axes: header comment naming the .dat
 * layout, terminal, frame, colours, the title (first line, then what the runs share) and the
 * step axis */
static void script_open(const ns_plot_set *set, const int *blk, const char *name,
                        const char *what, const char *layout, const char *title_line, double xmax,
                        ns_buf *gp)
{
    ns_gp_header(gp, name, what);
    ns_buf_printf(gp, "# Data: %s.dat; %s:\n", name, layout);
    script_runs(set, blk, gp);
    ns_buf_printf(gp, "\n");
    ns_gp_terminal(gp, name);
    ns_gp_frame(gp);
    colours(set, blk, gp);
    char title[512];
    snprintf(title, sizeof title, "%s\n%s", title_line, set->context);
    ns_buf_printf(gp, "\nset title ");
    ns_gp_quoted(gp, title);
    ns_buf_printf(gp, "\nset xlabel \"optimizer step\"\n");
    ns_buf_printf(gp, "set xrange [0:%.0f]\n", fmax(xmax, 1));
}

/* an events block of the .dat: step kind value y, y where the marker is drawn (the curve's
 * value at the step, or top when that is not finite or above it); the block index, or -1 */
static int events_block(const ns_plot_train *t, const double *curve, double top, int *k,
                        ns_buf *dat, unsigned *kinds)
{
    if (!t->nevents)
        return -1;
    ns_buf_printf(dat, "\n\n# index %d: divergence events (kind 0 NaN/Inf loss, 1 NaN/Inf "
                       "gradient, 2 loss spike); y: where the marker is drawn\n"
                       "# step kind value y\n", *k);
    for (size_t e = 0; e < t->nevents; e++) {
        double y = at_step(t, curve, t->ev_step[e]);
        if (!isfinite(y) || y > top)
            y = top;
        ns_buf_printf(dat, "%.0f %.0f ", t->ev_step[e], t->ev_kind[e]);
        ns_buf_num(dat, t->ev_value[e]);
        ns_buf_printf(dat, " ");
        ns_buf_num(dat, y);
        ns_buf_printf(dat, "\n");
        *kinds |= t->ev_kind[e] == NS_EVENT_LOSS_SPIKE ? 2u : 1u;
    }
    return (*k)++;
}

/* the markers of an events block, and (once per figure) their legend entries */
static void event_items(ns_buf *gp, int *items, int block)
{
    item(gp, items);
    ns_buf_printf(gp, "data index %d using 1:($2 < 2 ? $4 : NaN) with points lc rgb \"black\" "
                      "pt 2 ps 2.2*marker lw 2 notitle", block);
    item(gp, items);
    ns_buf_printf(gp, "data index %d using 1:($2 == 2 ? $4 : NaN) with points lc rgb \"black\" "
                      "pt 8 ps 2*marker lw 2 notitle", block);
}

static void event_keys(ns_buf *gp, int *items, unsigned kinds)
{
    if (kinds & 1u) {
        item(gp, items);
        ns_buf_printf(gp, "keyentry with points lc rgb \"black\" pt 2 ps 2*marker lw 2 "
                          "title \"NaN/Inf loss or gradient (at the top if off the axis)\"");
    }
    if (kinds & 2u) {
        item(gp, items);
        ns_buf_printf(gp, "keyentry with points lc rgb \"black\" pt 8 ps 2*marker lw 2 "
                          "title \"loss spike (z-score over the trailing window)\"");
    }
}

/* ---- loss ---------------------------------------------------------------------------------- */

static int fig_loss(const ns_plot_set *set, ns_plot_figs *out)
{
    int n = 0, k = 0, nomem = 0, items = 0, status = NS_ERR_NOMEM;
    double ylo = INFINITY, yhi = -INFINITY, xmax = 0, floors[MAX_LINES];
    int nfloors = 0;
    unsigned kinds = 0;
    for (int i = 0; i < set->n; i++)
        n += has_steps(&set->files[i]);
    if (!n)
        return NS_OK;
    int *blk = malloc(3 * (size_t)set->n * sizeof *blk);
    ns_plot_fig *fig = ns_figs_add(out, "train_loss");
    if (!blk || !fig)
        goto done;
    int *probes = blk + set->n, *events = blk + 2 * set->n;
    /* the y axis: from the lowest loss or floor to the 99th percentile of the training losses
     * (a spike or a divergence runs off the top rather than flattening every other curve) and
     * the highest held-out loss */
    for (int i = 0; i < set->n; i++) {
        const ns_plot_train *t = &set->files[i].train;
        if (!has_steps(&set->files[i]))
            continue;
        yhi = fmax(yhi, finite_quantile(t->loss, t->nsteps, 0.99, &nomem));
        for (size_t s = 0; s < t->nsteps; s++) {
            ylo = isfinite(t->loss[s]) ? fmin(ylo, t->loss[s]) : ylo;
            xmax = fmax(xmax, t->step[s]);
        }
        for (size_t r = 0; r < t->nrecords; r++)
            if (isfinite(t->eval_loss[r]))
                ylo = fmin(ylo, t->eval_loss[r]), yhi = fmax(yhi, t->eval_loss[r]);
        if (isfinite(t->loss_floor)) {
            ylo = fmin(ylo, t->loss_floor);
            add_distinct(floors, &nfloors, t->loss_floor);
        }
    }
    if (nomem)
        goto done;
    /* and never above twice the loss of a uniform guess, 2 ln V, which only a diverging run
     * reaches: its values there would flatten every other curve (they run off the top, and
     * its events sit on the top edge) */
    double cap = -INFINITY;
    for (int i = 0; i < set->n; i++)
        if (has_steps(&set->files[i]) && set->files[i].vocab > 1)
            cap = fmax(cap, 2 * log((double)set->files[i].vocab));
    if (isfinite(cap) && cap > ylo)
        yhi = fmin(yhi, cap);
    if (!(isfinite(ylo) && isfinite(yhi))) /* nothing finite yet: any range will do */
        ylo = 0, yhi = 1;
    double pad = 0.04 * fmax(yhi - ylo, 0.1);
    ylo -= pad, yhi += pad;

    ns_buf *dat = &fig->dat, *gp = &fig->gp;
    ns_buf_printf(dat, "# train_loss.dat: training and held-out loss against step; drawn by "
                       "train_loss.gp\n# blocks separated by two blank lines (gnuplot: index "
                       "0, 1, ...); nan = not finite\n");
    for (int i = 0; i < set->n; i++) {
        const ns_plot_file *f = &set->files[i];
        const ns_plot_train *t = &f->train;
        blk[i] = probes[i] = events[i] = -1;
        if (!has_steps(f))
            continue;
        ns_buf_printf(dat, "%s# index %d: %s, training loss of each step\n# file: ",
                      k ? "\n\n" : "\n", k, set->styles[i].label);
        ns_gp_comment(dat, f->source);
        ns_buf_printf(dat, "\n# loss floor (/train loss_floor): ");
        ns_buf_num(dat, t->loss_floor);
        ns_buf_printf(dat, "\n# step loss\n");
        two_columns(dat, t->step, t->loss, t->nsteps);
        blk[i] = k++;
        if (t->nrecords) {
            ns_buf_printf(dat, "\n\n# index %d: %s, held-out loss at each probe\n"
                               "# step eval_loss\n", k, set->styles[i].label);
            two_columns(dat, t->probe_step, t->eval_loss, t->nrecords);
            probes[i] = k++;
        }
        events[i] = events_block(t, t->loss, yhi, &k, dat, &kinds);
    }

    script_open(set, blk, "train_loss", "training and held-out loss against step",
                "per run an index of steps (1 step, 2 loss), one of probes (1 step, 2 eval_loss) "
                "if any, one of events (1 step, 2 kind, 3 value, 4 y) if any",
                "Training loss (thin: every step) and held-out loss (points)", xmax, gp);
    ns_buf_printf(gp, "set ylabel \"cross-entropy (nats per token)\"\nset yrange [%.6g:%.6g]\n"
                      "set offsets 0, 0, 0, 0\ndata = \"train_loss.dat\"\n\n", ylo, yhi);
    for (int j = 0; j < nfloors; j++) {
        item(gp, &items);
        ns_buf_printf(gp, "%.12g with lines lc rgb \"%s\" dt (8,5) lw 1.6 notitle", floors[j],
                      NS_GP_GREY);
    }
    for (int i = 0; i < set->n; i++)
        if (blk[i] >= 0) {
            item(gp, &items);
            ns_buf_printf(gp, "data index %d using 1:2 with lines lc rgb ct%d lw 0.8 notitle",
                          blk[i], i);
        }
    for (int i = 0; i < set->n; i++)
        if (blk[i] >= 0) {
            item(gp, &items);
            if (probes[i] >= 0)
                ns_buf_printf(gp, "data index %d using 1:2 with linespoints lc rgb c%d lw 2.5 pt "
                                  "%d ps marker title ", probes[i], i, set->styles[i].point);
            else /* no probe yet: the legend still names the run */
                ns_buf_printf(gp, "keyentry with linespoints lc rgb c%d lw 2.5 pt %d ps marker "
                                  "title ", i, set->styles[i].point);
            ns_gp_quoted(gp, set->styles[i].label);
        }
    for (int i = 0; i < set->n; i++)
        if (events[i] >= 0)
            event_items(gp, &items, events[i]);
    for (int j = 0; j < nfloors; j++) {
        item(gp, &items);
        ns_buf_printf(gp, "keyentry with lines lc rgb \"%s\" dt (8,5) lw 1.6 title "
                          "\"loss floor of the data: %.4g nats\"", NS_GP_GREY, floors[j]);
    }
    event_keys(gp, &items, kinds);
    ns_buf_printf(gp, "\nunset output\n");
    status = ns_buf_ok(dat) && ns_buf_ok(gp) ? NS_OK : NS_ERR_NOMEM;
done:
    free(blk);
    return status;
}

/* ---- gradient norm ------------------------------------------------------------------------- */

static int fig_grad_norm(const ns_plot_set *set, ns_plot_figs *out)
{
    int n = 0, k = 0, items = 0, nclips = 0, status = NS_ERR_NOMEM;
    double ylo = INFINITY, yhi = -INFINITY, xmax = 0, clips[MAX_LINES];
    unsigned kinds = 0;
    for (int i = 0; i < set->n; i++)
        n += has_steps(&set->files[i]);
    if (!n)
        return NS_OK;
    int *blk = malloc(2 * (size_t)set->n * sizeof *blk);
    ns_plot_fig *fig = ns_figs_add(out, "train_grad_norm");
    if (!blk || !fig)
        goto done;
    int *events = blk + set->n;
    for (int i = 0; i < set->n; i++) {
        const ns_plot_file *f = &set->files[i];
        if (!has_steps(f))
            continue;
        for (size_t s = 0; s < f->train.nsteps; s++) {
            double g = f->train.grad_norm[s];
            if (isfinite(g) && g > 0)
                ylo = fmin(ylo, g), yhi = fmax(yhi, g);
            xmax = fmax(xmax, f->train.step[s]);
        }
        if (isfinite(f->clip) && f->clip > 0)
            add_distinct(clips, &nclips, f->clip);
    }
    for (int j = 0; j < nclips; j++)
        ylo = fmin(ylo, clips[j]), yhi = fmax(yhi, clips[j]);
    if (!(isfinite(ylo) && isfinite(yhi)))
        ylo = 0.1, yhi = 10;

    ns_buf *dat = &fig->dat, *gp = &fig->gp;
    ns_buf_printf(dat, "# train_grad_norm.dat: global gradient norm (before clipping) against "
                       "step; drawn by train_grad_norm.gp\n# blocks separated by two blank "
                       "lines (gnuplot: index 0, 1, ...); nan = not finite\n");
    for (int i = 0; i < set->n; i++) {
        const ns_plot_file *f = &set->files[i];
        const ns_plot_train *t = &f->train;
        blk[i] = events[i] = -1;
        if (!has_steps(f))
            continue;
        ns_buf_printf(dat, "%s# index %d: %s\n# file: ", k ? "\n\n" : "\n", k,
                      set->styles[i].label);
        ns_gp_comment(dat, f->source);
        ns_buf_printf(dat, "\n# clip threshold (/config clip, 0: none): ");
        ns_buf_num(dat, f->clip);
        ns_buf_printf(dat, "\n# step grad_norm\n");
        two_columns(dat, t->step, t->grad_norm, t->nsteps);
        blk[i] = k++;
        events[i] = events_block(t, t->grad_norm, yhi, &k, dat, &kinds);
    }

    script_open(set, blk, "train_grad_norm", "global gradient norm against step",
                "per run an index of steps (1 step, 2 grad_norm), one of events (1 step, 2 kind, "
                "3 value, 4 y) if any",
                "Global gradient norm before clipping, every step", xmax, gp);
    ns_buf_printf(gp, "set ylabel \"‖∇Loss‖ (all parameters)\"\n");
    ns_gp_log_y(gp, ylo, yhi);
    ns_buf_printf(gp, "data = \"train_grad_norm.dat\"\n\n");
    for (int j = 0; j < nclips; j++) {
        item(gp, &items);
        ns_buf_printf(gp, "%.12g with lines lc rgb \"%s\" dt 4 lw 1.2 notitle", clips[j],
                      NS_GP_GREY);
    }
    for (int i = 0; i < set->n; i++)
        if (blk[i] >= 0) {
            item(gp, &items);
            ns_buf_printf(gp, "data index %d using 1:2 with lines lc rgb c%d lw 1.2 title ",
                          blk[i], i);
            ns_gp_quoted(gp, set->styles[i].label);
        }
    for (int i = 0; i < set->n; i++)
        if (events[i] >= 0)
            event_items(gp, &items, events[i]);
    for (int j = 0; j < nclips; j++) {
        item(gp, &items);
        ns_buf_printf(gp, "keyentry with lines lc rgb \"%s\" dt 4 lw 1.2 title \"clipping "
                          "threshold %g (larger norms are scaled down to it)\"", NS_GP_GREY,
                      clips[j]);
    }
    event_keys(gp, &items, kinds);
    ns_buf_printf(gp, "\nunset output\n");
    status = ns_buf_ok(dat) && ns_buf_ok(gp) ? NS_OK : NS_ERR_NOMEM;
done:
    free(blk);
    return status;
}

/* ---- per-layer gradient heatmap ------------------------------------------------------------ */

/* cell edges in step: halfway to the neighbouring probes, and as far beyond the first and last
 * as the nearest gap (half a step for a single probe) */
static void cell_edges(const double *x, size_t n, size_t r, double *lo, double *hi)
{
    double left = r > 0 ? x[r] - x[r - 1] : n > 1 ? x[1] - x[0] : 1;
    double right = r + 1 < n ? x[r + 1] - x[r] : n > 1 ? x[n - 1] - x[n - 2] : 1;
    *lo = x[r] - left / 2, *hi = x[r] + right / 2;
}

/* the range of log10 grad_ms over a run's finite positive cells; 0 if it has none */
static int log_range(const ns_plot_file *f, double *lo, double *hi)
{
    const ns_plot_train *t = &f->train;
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t c = 0; t->present && c < t->nrecords * (size_t)(f->depth + 1); c++)
        if (isfinite(t->grad_ms[c]) && t->grad_ms[c] > 0) {
            *lo = fmin(*lo, log10(t->grad_ms[c]));
            *hi = fmax(*hi, log10(t->grad_ms[c]));
        }
    return isfinite(*lo);
}

/* a colour scale over [lo, hi]: whole or half decades, at least one decade */
static void round_scale(double *lo, double *hi)
{
    *lo = floor(2 * *lo) / 2, *hi = ceil(2 * *hi) / 2;
    if (*hi - *lo < 1)
        *hi = *lo + 1;
}

static int heatmap(const ns_plot_set *set, int i, double cblo, double cbhi, int shared,
                   ns_plot_figs *out)
{
    const ns_plot_file *f = &set->files[i];
    const ns_plot_train *t = &f->train;
    const ns_plot_style *st = &set->styles[i];
    int L = f->depth;
    char name[96];
    snprintf(name, sizeof name, "train_grad_ms_%s", st->tag);
    ns_plot_fig *fig = ns_figs_add(out, name);
    if (!fig)
        return NS_ERR_NOMEM;
    ns_buf *dat = &fig->dat, *gp = &fig->gp;
    double first_event = INFINITY;
    for (size_t e = 0; e < t->nevents; e++)
        first_event = fmin(first_event, t->ev_step[e]);

    ns_buf_printf(dat, "# %s.dat: per-layer gradient mean square on the probe batch over "
                       "training; drawn by %s.gp\n# %s <- ", name, name, st->label);
    ns_gp_comment(dat, f->source);
    ns_buf_printf(dat, "\n# grad_ms: /train/probe/grad_ms[record, layer], the mean square of "
                       "dLoss/dx_l; log10_grad_ms: nan where grad_ms is not positive and "
                       "finite\n# step_lo, step_hi: the cell's edges (halfway to the "
                       "neighbouring probes)\n# colour scale %.6g .. %.6g (log10), %s\n# one "
                       "line per cell, a blank line after each probe\n# step layer "
                       "log10_grad_ms grad_ms step_lo step_hi\n", cblo, cbhi,
                  shared ? "shared by every train_grad_ms heatmap of this plot" : "this run's own");
    for (size_t r = 0; r < t->nrecords; r++) {
        double lo, hi;
        cell_edges(t->probe_step, t->nrecords, r, &lo, &hi);
        for (int l = 0; l <= L; l++) {
            double g = t->grad_ms[r * (size_t)(L + 1) + (size_t)l];
            ns_buf_printf(dat, "%.0f %d ", t->probe_step[r], l);
            ns_buf_num(dat, isfinite(g) && g > 0 ? log10(g) : NAN);
            ns_buf_printf(dat, " ");
            ns_buf_num(dat, g);
            ns_buf_printf(dat, " %.12g %.12g\n", lo, hi);
        }
        ns_buf_printf(dat, "\n");
    }

    char what[160], context[512], title[700];
    snprintf(what, sizeof what, "per-layer gradient mean square over training, one run");
    ns_gp_header(gp, name, what);
    ns_buf_printf(gp, "# Data: %s.dat, columns 1 step, 2 layer, 3 log10_grad_ms, 4 grad_ms, "
                      "5 step_lo, 6 step_hi\n# ", name);
    ns_gp_comment(gp, f->source);
    ns_buf_printf(gp, "\n\n");
    ns_gp_terminal(gp, name);
    ns_style_file_context(f, context, sizeof context);
    double own_lo, own_hi;
    log_range(f, &own_lo, &own_hi);
    snprintf(title, sizeof title, "log10 grad_ms per layer on the probe batch, over training "
             "(this run: %.1f to %.1f%s)\n%s", own_lo, own_hi, shared ? "" : "; its own scale",
             context);
    double x0 = 0, x1 = 1, lo, hi;
    cell_edges(t->probe_step, t->nrecords, 0, &x0, &hi);
    cell_edges(t->probe_step, t->nrecords, t->nrecords - 1, &lo, &x1);
    if (isfinite(first_event) && first_event >= x1) /* a divergence after the last probe */
        x1 = first_event + (x1 - lo);
    ns_buf_printf(gp, "set tics out scale 0.6\nunset key\nset title ");
    ns_gp_quoted(gp, title);
    ns_buf_printf(gp, "\nset xlabel \"optimizer step (one column per probe)\"\nset xrange "
                      "[%.12g:%.12g]\nset ylabel \"layer l (0 = input x_0)\"\nset yrange "
                      "[-0.5:%d.5]\n", x0, x1, L);
    if (x1 - x0 <= 12) /* a few probes: whole steps only */
        ns_buf_printf(gp, "set xtics 1\n");
    if (L <= 16)
        ns_buf_printf(gp, "set ytics 1\n");
    ns_gp_viridis(gp);
    ns_buf_printf(gp, "# %s\nset cbrange [%.12g:%.12g]\nset cblabel \"log10 grad_ms (mean "
                      "square of ∂Loss/∂x_l)\"\n",
                  shared ? "one scale for every train_grad_ms heatmap of this plot"
                         : "this run's own scale: one shared with the other runs would show it "
                           "as one colour",
                  cblo, cbhi);
    if (isfinite(first_event))
        ns_buf_printf(gp, "# the first divergence event\nset arrow from %.0f, graph 0 to %.0f, "
                          "graph 1 nohead front lc rgb \"#D55E00\" dt 2 lw 2\nset label "
                          "\"first divergence (step %.0f)\" at %.0f, graph 1.02 center front "
                          "tc rgb \"#D55E00\"\n", first_event, first_event, first_event,
                      first_event);
    /* one filled rectangle per cell; a NaN cell stays white */
    ns_buf_printf(gp, "plot \"%s.dat\" using 1:2:5:6:($2 - 0.5):($2 + 0.5):3 with boxxyerror "
                      "fc palette fs solid 1.0 noborder\nunset output\n", name);
    return ns_buf_ok(dat) && ns_buf_ok(gp) ? NS_OK : NS_ERR_NOMEM;
}

/* One colour scale for all the heatmaps, so that a colour means the same gradient in each,
 * unless some run would then span less than a quarter of it (a PostNorm run vanishing over
 * 50 decades beside one that varies over one decade): then each run gets its own scale, and
 * every title gives its run's range. */
static int fig_heatmaps(const ns_plot_set *set, ns_plot_figs *out)
{
    double lo = INFINITY, hi = -INFINITY, narrowest = INFINITY, a, b;
    for (int i = 0; i < set->n; i++)
        if (log_range(&set->files[i], &a, &b)) {
            round_scale(&a, &b);
            lo = fmin(lo, a), hi = fmax(hi, b), narrowest = fmin(narrowest, b - a);
        }
    if (!isfinite(lo)) /* no probe yet anywhere: no heatmap */
        return NS_OK;
    int shared = narrowest >= 0.25 * (hi - lo);
    for (int i = 0; i < set->n; i++) {
        int st;
        if (!log_range(&set->files[i], &a, &b))
            continue;
        round_scale(&a, &b);
        if ((st = heatmap(set, i, shared ? lo : a, shared ? hi : b, shared, out)) != NS_OK)
            return st;
    }
    return NS_OK;
}

int ns_fig_train(const ns_plot_set *set, const void *spec, ns_plot_figs *out)
{
    (void)spec;
    int st = fig_loss(set, out);
    if (st == NS_OK)
        st = fig_grad_norm(set, out);
    if (st == NS_OK)
        st = fig_heatmaps(set, out);
    return st;
}
