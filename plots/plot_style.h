/* plot_style.h: one look for every figure.
 *
 * Colours are Okabe-Ito (safe for the common colour-vision deficiencies). Each placement has a
 * fixed colour and marker, so pre is the same blue in every figure; when two input files share a
 * placement, the files take the palette in order instead and are labelled by file name. The
 * gnuplot preamble (terminals, fonts, sizes, grid, legend below the plot) is written here so the
 * figures cannot drift apart. */
#ifndef NS_PLOT_STYLE_H
#define NS_PLOT_STYLE_H
#include "plot_buf.h"
#include "plot_file.h"
#include <stddef.h>

typedef struct {
    char color[8];   /* "#RRGGBB" */
    int point;       /* gnuplot point type (filled shapes) */
    char key[64];    /* short name in texts: the placement, or the file name when they repeat */
    char label[288]; /* legend label, e.g. "span (L=64, α=0.125)" */
    char tag[64];    /* [A-Za-z0-9_-]+, unique among the files: names per-file figures */
} ns_plot_style;

/* Styles for n files, and in context what all of them share (block kind, width, sequence
 * length, activation, norm, input, seeds) for figure titles. */
void ns_style_assign(const ns_plot_file *files, int n, ns_plot_style *styles, char *context,
                     size_t ctxlen);
/* Styles for n series of a depth sweep, each given by one of its runs: the placement's colour
 * and marker for the first series of each placement, colours no placement present has for the
 * others; labels "pre, scale none" (the placement, then whatever else differs between the
 * series); in context what all of them share. */
void ns_style_series(const ns_plot_file *const *runs, int n, ns_plot_style *styles,
                     char *context, size_t ctxlen);
/* everything about one run, for a figure that shows only it: two lines (placement, block kind,
 * depth, alpha; then the rest) */
void ns_style_file_context(const ns_plot_file *f, char *out, size_t n);

/* s as a gnuplot double-quoted string (backslashes, quotes and control characters escaped) */
void ns_gp_quoted(ns_buf *b, const char *s);
/* s with control characters replaced, for a # comment line */
void ns_gp_comment(ns_buf *b, const char *s);

/* a script's opening comment: what it draws, and how to re-render it after an edit */
void ns_gp_header(ns_buf *gp, const char *name, const char *what);
/* `fmt` and `out` (overridable with gnuplot -e), the terminal for png, pdf or svg, set output */
void ns_gp_terminal(ns_buf *gp, const char *name);
/* grid, border, tics, a legend below the plot that cannot cover data */
void ns_gp_frame(ns_buf *gp);
/* an integer x axis from first to last (layers or blocks), with a little room at the ends */
void ns_gp_layer_axis(ns_buf *gp, int first, int last, const char *xlabel);
/* a log x axis over the depths of a sweep (base 2), with a tic at each depth */
void ns_gp_log_depth_axis(ns_buf *gp, const int *depths, int n, const char *xlabel);
/* the viridis palette (`set palette defined`), for heatmaps */
void ns_gp_viridis(ns_buf *gp);
/* the opening of a block x (head or expert) heatmap script: header comment naming `what` and
 * the .dat columns, terminal, title, the block axis and the ny-cell y axis, the palette */
void ns_gp_heatmap_head(ns_buf *gp, const char *name, const char *what, const char *columns,
                        const char *source, const char *title, int L, const char *ylabel,
                        int ny);
/* a log y axis over [lo, hi] (positive, finite) with readable ticks, and clip(y) which raises a
 * band's lower edge to the bottom of the axis (where it would otherwise vanish) */
void ns_gp_log_y(ns_buf *gp, double lo, double hi);

/* the grey used for reference lines and for style-only legend entries */
#define NS_GP_GREY "#555555"

#endif
