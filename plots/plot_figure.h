/* plot_figure.h: what a figure builder sees and produces.
 *
 * A builder turns the input files into zero or more figures, each a .dat text (the numbers it
 * shows) and a .gp text (a standalone gnuplot script that reads the .dat by relative path). It
 * only builds text in memory; plots.c writes and renders. A new figure is a builder (or a new
 * spec for an existing one) and one row of the table in figures.c. */
#ifndef NS_PLOT_FIGURE_H
#define NS_PLOT_FIGURE_H
#include "plot_buf.h"
#include "plot_file.h"
#include "plot_style.h"

typedef struct {
    int n;                 /* runs (a file, or a sweep point), in command-line order */
    ns_plot_file *files;
    ns_plot_style *styles; /* styles[i] belongs to files[i] */
    char context[256];     /* what all runs share, for titles */
    int ninputs;           /* input files, in command-line order */
    ns_plot_sweep *sweeps; /* [ninputs]: each input's depth-sweep fits (nseries 0: none) */
    int *run0;             /* [ninputs]: the index in files of each input's first run */
} ns_plot_set;

typedef struct {
    char name[96]; /* file stem in the output directory: NAME.dat, NAME.gp, NAME.png, ... */
    ns_buf dat, gp;
} ns_plot_fig;

typedef struct {
    ns_plot_fig *v;
    int n, cap;
} ns_plot_figs;

/* a new, empty figure at the end of figs, or NULL if out of memory */
ns_plot_fig *ns_figs_add(ns_plot_figs *figs, const char *name);
void ns_figs_free(ns_plot_figs *figs);

/* NS_OK (having added nothing if the files do not have the data) or NS_ERR_NOMEM */
typedef int (*ns_figure_fn)(const ns_plot_set *set, const void *spec, ns_plot_figs *out);

typedef struct {
    ns_figure_fn build;
    const void *spec;
} ns_figure_entry;

/* the table of figures, in the order they are written (figures.c) */
extern const ns_figure_entry ns_figure_table[];
extern const int ns_figure_count;

/* ---- builders ---------------------------------------------------------------------------- */

/* horizontal reference lines a layer figure may draw, one per distinct value among the files */
typedef enum {
    NS_REF_NONE,
    NS_REF_RANK_LIMIT,       /* eff_rank cannot exceed min(T, d) */
    NS_REF_UNIFORM_ATTENTION, /* uniform causal attention: the largest possible entropy */
    NS_REF_UNIFORM_ROUTER,   /* ln E: a uniform router distribution, the largest entropy */
    NS_REF_ROUTING_NOISE     /* load_cv of a balanced router whose B T tokens each pick k of E
                              * experts independently: sqrt((E - k) / (k B T)), counting noise */
} ns_reference;

/* A metric against layer, one curve per file that has it: the mean over seeds with a 95% band,
 * the file's theory dashed and its closed-form bound dotted when present. */
typedef struct {
    const char *name;   /* figure name, e.g. "act_ms" */
    const char *title;  /* first title line; the second says what the files share */
    const char *ylabel;
    ns_plot_ds metric;  /* [S, L+1] (x = layer 0..L) or [S, L] (x = block 1..L) */
    ns_plot_ds theory, bound; /* [L+1] or [L] like the metric, or NS_DS_NONE */
    int logy;
    int theory_relative_to_last; /* theory and bound are given relative to their value at the
                                  * last layer: scale them by the measured mean there */
    ns_reference reference;
    double ycap;        /* > 0: the y axis never runs above it (a cosine's 1), else 0 */
    int nonneg;         /* the metric cannot be negative: nor can the axis (a band may reach
                         * past 0, the axis stops there) */
    int (*applies)(const ns_plot_file *f); /* NULL, or 0 for runs the figure leaves out */
    const char *note;   /* NULL, or a line for the .dat header saying which runs are drawn */
} ns_layer_spec;
int ns_fig_layer(const ns_plot_set *set, const void *spec, ns_plot_figs *out);

/* Per-head attention entropy as a layer x head heatmap (mean over seeds), one per file that has
 * /propagate/attn_entropy_head. spec is unused. */
int ns_fig_head_heatmap(const ns_plot_set *set, const void *spec, ns_plot_figs *out);

/* Expert load (the share of routed token slots per expert, mean over seeds) as a block x expert
 * heatmap, one per MoE run; one colour scale for all of them. spec is unused. */
int ns_fig_expert_heatmap(const ns_plot_set *set, const void *spec, ns_plot_figs *out);

/* A quantity at the last layer against depth, log-log, one series per depth-sweep series of
 * the inputs (/sweep/fits): points with 95% bands over seeds, the theory dashed, and in the
 * legend the file's fitted slope +/- se and the theory's slope. */
typedef enum {
    NS_DEPTH_ACT_MS,    /* act_ms[L] */
    NS_DEPTH_GRAD_RATIO /* grad_ms[0] / grad_ms[L], per seed */
} ns_depth_quantity;
typedef struct {
    const char *name, *title, *ylabel;
    ns_depth_quantity q;
    ns_plot_fit slope, slope_se, slope_theory, slope_theory_se;
} ns_depth_spec;
int ns_fig_depth(const ns_plot_set *set, const void *spec, ns_plot_figs *out);

/* Training runs (/train): train_loss (training loss per step, held-out loss per probe, the
 * loss floor, divergence events), train_grad_norm (log y, the clipping threshold, events), and
 * per run train_grad_ms_<tag>, log10 grad_ms as a (probe step, layer) heatmap on one shared
 * colour scale. spec is unused. */
int ns_fig_train(const ns_plot_set *set, const void *spec, ns_plot_figs *out);

/* mean over query positions i = 0..T-1 of ln(i + 1): the entropy of uniform causal attention,
 * the largest any causal attention can have */
double ns_uniform_causal_entropy(int seq);

#endif
