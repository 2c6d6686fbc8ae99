/* fig_heads.c: attention entropy per (block, head) as a heatmap, one figure per input run.
 *
 * The data file has columns `block head entropy` (mean over seeds), one line per cell and a
 * blank line after each block (gnuplot's grid layout, for whoever edits the script). The colour
 * scale runs from 0 to the entropy of uniform causal attention, the largest possible, so
 * heatmaps of different runs compare directly and "how far from uniform" reads off the colour. */
#include "plot_figure.h"
#include "plot_stats.h"
#include "normscope.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

double ns_uniform_causal_entropy(int seq)
{
    /* (1/T) sum_{i=1..T} ln i = ln(T!) / T */
    return seq > 0 ? lgamma(seq + 1.0) / seq : NAN;
}

static int one_heatmap(const ns_plot_file *f, const ns_plot_style *st, const ns_plot_array *a,
                       ns_plot_figs *out)
{
    int S = (int)a->dims[0], L = (int)a->dims[1], H = (int)a->dims[2];
    char name[96];
    snprintf(name, sizeof name, "attn_entropy_head_%s", st->tag);
    ns_plot_fig *fig = ns_figs_add(out, name);
    double *mean = malloc((size_t)L * H * sizeof *mean);
    if (!fig || !mean) {
        free(mean);
        return NS_ERR_NOMEM;
    }
    ns_seed_stats(a->v, S, L * H, mean, NULL, NULL, NULL);
    double top = ns_uniform_causal_entropy(f->seq);
    ns_buf *dat = &fig->dat, *gp = &fig->gp;

    ns_buf_printf(dat, "# %s.dat: attention entropy (nats) per block and head, mean over %d "
                       "seed%s; drawn by %s.gp\n# %s <- ", name, S, S == 1 ? "" : "s", name,
                  st->label);
    ns_gp_comment(dat, f->source);
    ns_buf_printf(dat, "\n# one line per cell, a blank line after each block\n"
                       "# block head entropy\n");
    for (int l = 0; l < L; l++) {
        for (int h = 0; h < H; h++) {
            ns_buf_printf(dat, "%d %d ", l + 1, h + 1);
            ns_buf_num(dat, mean[(size_t)l * H + h]);
            ns_buf_printf(dat, "\n");
        }
        ns_buf_printf(dat, "\n");
    }
    free(mean);

    char context[512], title[700];
    ns_style_file_context(f, context, sizeof context);
    snprintf(title, sizeof title, "Attention entropy per head, mean over seeds\n%s", context);
    ns_gp_heatmap_head(gp, name, "attention entropy per block and head",
                       "1 block, 2 head, 3 entropy (nats)", f->source, title, L, "head h", H);
    if (isfinite(top)) {
        ns_buf_printf(gp, "# top of the scale: uniform causal attention at T=%d, the maximum\n"
                          "set cbrange [0:%.12g]\n", f->seq, top);
        ns_buf_printf(gp, "set cblabel \"entropy (nats); top = uniform causal attention, "
                          "%.3g\"\n", top);
    } else {
        ns_buf_printf(gp, "set cblabel \"entropy (nats)\"\n");
    }
    /* one filled rectangle per cell (not `with image`, which draws nothing for a single block
     * or head); a NaN cell stays white */
    ns_buf_printf(gp, "plot \"%s.dat\" using 1:2:(0.5):(0.5):3 with boxxyerror fc palette "
                      "fs solid 1.0 noborder\nunset output\n", name);
    return ns_buf_ok(dat) && ns_buf_ok(gp) ? NS_OK : NS_ERR_NOMEM;
}

int ns_fig_head_heatmap(const ns_plot_set *set, const void *spec, ns_plot_figs *out)
{
    (void)spec;
    for (int i = 0; i < set->n; i++) {
        const ns_plot_array *a = ns_plot_get(&set->files[i], NS_DS_ATTN_ENTROPY_HEAD);
        int st = a ? one_heatmap(&set->files[i], &set->styles[i], a, out) : NS_OK;
        if (st != NS_OK)
            return st;
    }
    return NS_OK;
}
