/* fig_experts.c: expert load per (block, expert) as a heatmap, one figure per MoE run.
 *
 * expert_load[s, l, e] is the share of block l's routed token slots (tokens x top_k, before
 * capacity drops) that chose expert e, so each block's row sums to 1 and a balanced router gives
 * 1/E everywhere. The data file has columns `block expert load` (mean over seeds), one line per
 * cell and a blank line after each block. All heatmaps of one `normscope plot` share one colour
 * scale, from 0 to the largest cell of any of them and at least 2/E (a balanced router then sits
 * at most halfway up): the same colour is the same load in every one. 1/E is marked on the bar.
 * Experts are exchangeable: which one is busy differs between seeds, so the seed mean shrinks
 * toward 1/E, and load_cv (per seed, then averaged) is the measure of imbalance. */
#include "plot_figure.h"
#include "plot_stats.h"
#include "normscope.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* the top of the shared colour scale: max(largest seed-mean cell, 2/E) over the MoE runs,
 * rounded up to a multiple of 0.05 (or to two significant digits below that) */
static int shared_top(const ns_plot_set *set, double *top)
{
    double m = 0;
    for (int i = 0; i < set->n; i++) {
        const ns_plot_array *a = ns_plot_get(&set->files[i], NS_DS_EXPERT_LOAD);
        if (!a)
            continue;
        int S = (int)a->dims[0], LE = (int)(a->dims[1] * a->dims[2]);
        double *mean = malloc((size_t)LE * sizeof *mean);
        if (!mean)
            return NS_ERR_NOMEM;
        ns_seed_stats(a->v, S, LE, mean, NULL, NULL, NULL);
        for (int j = 0; j < LE; j++)
            if (isfinite(mean[j]) && mean[j] > m)
                m = mean[j];
        free(mean);
        m = fmax(m, 2.0 / (double)a->dims[2]);
    }
    double q = m >= 0.1 ? 0.05 : pow(10, floor(log10(m)) - 1);
    *top = fmin(1.0, ceil(m / q - 1e-9) * q);
    return NS_OK;
}

static int one_heatmap(const ns_plot_file *f, const ns_plot_style *st, const ns_plot_array *a,
                       double top, ns_plot_figs *out)
{
    int S = (int)a->dims[0], L = (int)a->dims[1], E = (int)a->dims[2];
    char name[96];
    snprintf(name, sizeof name, "expert_load_%s", st->tag);
    ns_plot_fig *fig = ns_figs_add(out, name);
    double *mean = malloc((size_t)L * E * sizeof *mean);
    if (!fig || !mean) {
        free(mean);
        return NS_ERR_NOMEM;
    }
    ns_seed_stats(a->v, S, L * E, mean, NULL, NULL, NULL);
    double maxcell = 0;
    for (int j = 0; j < L * E; j++)
        maxcell = isfinite(mean[j]) && mean[j] > maxcell ? mean[j] : maxcell;
    ns_buf *dat = &fig->dat, *gp = &fig->gp;

    ns_buf_printf(dat, "# %s.dat: share of routed token slots per block and expert, mean over "
                       "%d seed%s; drawn by %s.gp\n# %s <- ", name, S, S == 1 ? "" : "s", name,
                  st->label);
    ns_gp_comment(dat, f->source);
    ns_buf_printf(dat, "\n# experts are exchangeable: the busy ones differ between seeds, so the "
                       "mean over seeds shrinks toward 1/E (load_cv measures imbalance per seed)"
                       "\n# each block's loads sum to 1; balanced: 1/E = %.6g; largest cell "
                       "here %.6g\n# colour scale 0 .. %.6g, shared by every expert_load "
                       "heatmap of this plot\n# one line per cell, a blank line after each "
                       "block\n# block expert load\n", 1.0 / E, maxcell, top);
    for (int l = 0; l < L; l++) {
        for (int e = 0; e < E; e++) {
            ns_buf_printf(dat, "%d %d ", l + 1, e + 1);
            ns_buf_num(dat, mean[(size_t)l * E + e]);
            ns_buf_printf(dat, "\n");
        }
        ns_buf_printf(dat, "\n");
    }
    free(mean);

    char context[512], title[700];
    ns_style_file_context(f, context, sizeof context);
    snprintf(title, sizeof title, "Expert load: share of routed token slots, mean over seeds\n%s",
             context);
    ns_gp_heatmap_head(gp, name, "expert load per block and expert", "1 block, 2 expert, 3 load",
                       f->source, title, L, "expert e", E);
    ns_buf_printf(gp, "# one scale for every expert_load heatmap of this plot: 0 to the largest "
                      "cell of any (at least 2/E)\nset cbrange [0:%.12g]\n", top);
    ns_buf_printf(gp, "set cbtics add (\"1/E\" %.12g)\n", 1.0 / E);
    ns_buf_printf(gp, "set cblabel \"share of routed slots (balanced: 1/E = %.3g)\"\n", 1.0 / E);
    /* one filled rectangle per cell; a NaN cell stays white */
    ns_buf_printf(gp, "plot \"%s.dat\" using 1:2:(0.5):(0.5):3 with boxxyerror fc palette "
                      "fs solid 1.0 noborder\nunset output\n", name);
    return ns_buf_ok(dat) && ns_buf_ok(gp) ? NS_OK : NS_ERR_NOMEM;
}

int ns_fig_expert_heatmap(const ns_plot_set *set, const void *spec, ns_plot_figs *out)
{
    (void)spec;
    double top = 1;
    int any = 0, st;
    for (int i = 0; i < set->n; i++)
        any |= ns_plot_get(&set->files[i], NS_DS_EXPERT_LOAD) != NULL;
    if (!any)
        return NS_OK;
    if ((st = shared_top(set, &top)) != NS_OK)
        return st;
    for (int i = 0; i < set->n; i++) {
        const ns_plot_array *a = ns_plot_get(&set->files[i], NS_DS_EXPERT_LOAD);
        if (a && (st = one_heatmap(&set->files[i], &set->styles[i], a, top, out)) != NS_OK)
            return st;
    }
    return NS_OK;
}
