/* plots.h: the figures of normscope files, as images plus the data and gnuplot script behind
 * each (libnormscope_plots; the command-line edge is analysis/cmd_plot.c).
 *
 * Like the rest of normscope this library never prints or exits: it returns a status and leaves
 * a one-line message; the caller is told of each image written through a callback. */
#ifndef NS_PLOTS_H
#define NS_PLOTS_H
#include <stddef.h>

enum { NS_PLOT_PNG = 1u, NS_PLOT_PDF = 2u, NS_PLOT_SVG = 4u };

/* the formats' names, NULL-terminated: name i is the format of bit 1 << i */
extern const char *const ns_plot_format_names[];

/* the colour ("#RRGGBB") and gnuplot point type that figures give row `row` of the placement
 * table */
void ns_plot_placement_style(int row, const char **color, int *point);

typedef struct {
    const char *const *files; /* normscope HDF5 files, overlaid in this order */
    int nfiles;
    const char *dir;          /* output directory, created (with parents) if missing */
    unsigned formats;         /* NS_PLOT_* mask */
    void (*wrote)(void *ctx, const char *path); /* after each image is in place; may be NULL */
    void *ctx;
    int (*stop)(void);        /* polled between renders: nonzero stops the run; may be NULL */
} ns_plot_request;

/* Reads every file, builds every figure the files allow, then writes each figure's NAME.dat and
 * NAME.gp and renders NAME.<fmt> per format with gnuplot (all in dir).
 * Returns NS_OK, or:
 *   NS_ERR_INVALID  the user's input is bad (a file is missing, unreadable, truncated, not a
 *                   normscope/1 file; no files; nothing to plot; dir cannot be made): checked
 *                   before anything is written, so nothing is
 *   NS_ERR_IO       gnuplot is missing or failed, or a write failed (no half-written image is
 *                   ever left: images are rendered to a temporary name and renamed)
 *   NS_ERR_NOMEM, NS_ERR_INTERRUPTED (stop() returned nonzero)
 * and a one-line message in msg. */
int ns_plot_run(const ns_plot_request *rq, char *msg, size_t msglen);

#endif
