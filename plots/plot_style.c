/* plot_style.c: palette, labels and the shared gnuplot preamble. */
#include "plot_style.h"
#include "normscope.h"
#include "plots.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Okabe & Ito (2008), "Color Universal Design", then five of Tol's muted colours (wine, teal,
 * olive, indigo, rose), ColorBrewer's dark brown (BrBG) and Tol's green for the rows past eight.
 * Yellow stays the eighth: placement rows keep their colours as rows are added, and spares
 * prefer the others (it is faint on white). */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                      "#56B4E9", "#000000", "#F0E442", "#882255", "#44AA99",
                                      "#999933", "#332288", "#CC6677", "#8C510A", "#117733"};
#define NPALETTE (int)(sizeof palette / sizeof palette[0])
/* filled circle, square, triangle up, diamond, triangle down, pentagon; open ones after; star,
 * cross, plus */
static const int points[] = {7, 5, 9, 13, 11, 15, 6, 4, 8, 10, 12, 14, 3, 2, 1};
_Static_assert(sizeof points / sizeof points[0] == NPALETTE, "a marker for every colour");

/* a fixed colour and marker per placement: row i of the placement table (core/placement.c)
 * takes slot i (-1: not a placement, or a row past the palette) */
static int placement_slot(const char *placement)
{
    int row = ns_placement_index(ns_placement_find(placement));
    return row < NPALETTE ? row : -1;
}

void ns_plot_placement_style(int row, const char **color, int *point)
{
    int slot = row >= 0 ? row % NPALETTE : 0;
    *color = palette[slot];
    *point = points[slot];
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static const char *placement_of(const ns_plot_file *f)
{
    return f->placement[0] ? f->placement : f->scheme[0] ? f->scheme : "?";
}

/* What may differ between runs besides placement, depth and alpha (always in the label). An
 * empty text means "does not apply" (the heads of an MLP block, a missing attribute). */
typedef struct {
    void (*format)(const ns_plot_file *f, char *out, size_t n);
    int title; /* shared by every run: said once in the title (else only in labels, if it differs) */
    int early; /* in a label, before L and alpha (the block kind reads best first) */
} trait;

static void t_block(const ns_plot_file *f, char *o, size_t n)
{
    /* the README's names for the block kinds */
    snprintf(o, n, "%s", strcmp(f->block, "mlp") == 0           ? "MLP"
                         : strcmp(f->block, "transformer") == 0 ? "Transformer"
                         : strcmp(f->block, "moe") == 0         ? "MoE"
                                                                : f->block);
}
static int is_moe(const ns_plot_file *f) { return strcmp(f->block, "moe") == 0; }
static void t_heads(const ns_plot_file *f, char *o, size_t n)
{
    if ((strcmp(f->block, "transformer") == 0 || is_moe(f)) && f->heads > 0)
        snprintf(o, n, "H=%d", f->heads);
    else
        o[0] = 0;
}
static void t_width(const ns_plot_file *f, char *o, size_t n) { snprintf(o, n, "d=%d", f->width); }
static void t_seq(const ns_plot_file *f, char *o, size_t n) { snprintf(o, n, "T=%d", f->seq); }
static void t_batch(const ns_plot_file *f, char *o, size_t n) { snprintf(o, n, "B=%d", f->batch); }
static void t_ratio(const ns_plot_file *f, char *o, size_t n)
{
    if (isfinite(f->mlp_ratio))
        snprintf(o, n, "mlp ratio %g", f->mlp_ratio);
    else
        o[0] = 0;
}
static void t_act(const ns_plot_file *f, char *o, size_t n) { snprintf(o, n, "%s", f->act); }
static void t_norm(const ns_plot_file *f, char *o, size_t n) { snprintf(o, n, "%s", f->norm); }
static void t_eps(const ns_plot_file *f, char *o, size_t n)
{
    if (isfinite(f->norm_eps))
        snprintf(o, n, "eps=%g", f->norm_eps);
    else
        o[0] = 0;
}
static void t_input(const ns_plot_file *f, char *o, size_t n)
{
    if (f->input[0])
        snprintf(o, n, "%s input", f->input);
    else
        o[0] = 0;
}
static void t_seeds(const ns_plot_file *f, char *o, size_t n)
{
    if (f->seeds > 0) /* a training run has one seed and no /config seeds */
        snprintf(o, n, "%d seed%s", f->seeds, f->seeds == 1 ? "" : "s");
    else
        o[0] = 0;
}
/* a training run: the vocabulary and the peak learning rate */
static void t_vocab(const ns_plot_file *f, char *o, size_t n)
{
    if (f->train.present && f->vocab > 0)
        snprintf(o, n, "V=%d", f->vocab);
    else
        o[0] = 0;
}
static void t_lr(const ns_plot_file *f, char *o, size_t n)
{
    if (f->train.present && isfinite(f->lr))
        snprintf(o, n, "lr %g", f->lr);
    else
        o[0] = 0;
}
/* the mixture of experts: only for MoE blocks (the attributes exist for every file) */
static void t_experts(const ns_plot_file *f, char *o, size_t n)
{
    if (is_moe(f) && f->experts > 0)
        snprintf(o, n, "E=%d", f->experts);
    else
        o[0] = 0;
}
static void t_topk(const ns_plot_file *f, char *o, size_t n)
{
    if (is_moe(f) && f->top_k > 0)
        snprintf(o, n, "top-%d", f->top_k);
    else
        o[0] = 0;
}
static void t_capacity(const ns_plot_file *f, char *o, size_t n)
{
    if (is_moe(f) && isfinite(f->capacity))
        snprintf(o, n, f->capacity > 0 ? "capacity %g" : "no capacity limit", f->capacity);
    else
        o[0] = 0;
}
static void t_expert_ratio(const ns_plot_file *f, char *o, size_t n)
{
    if (is_moe(f) && isfinite(f->expert_ratio))
        snprintf(o, n, "expert ratio %g", f->expert_ratio);
    else
        o[0] = 0;
}
static void t_scale(const ns_plot_file *f, char *o, size_t n)
{
    if (f->scale_init[0])
        snprintf(o, n, "scale %s", f->scale_init);
    else
        o[0] = 0;
}
static void t_depth(const ns_plot_file *f, char *o, size_t n) { snprintf(o, n, "L=%d", f->depth); }
static void t_alpha(const ns_plot_file *f, char *o, size_t n)
{
    if (isfinite(f->alpha))
        snprintf(o, n, "α=%.3g", f->alpha);
    else
        snprintf(o, n, "α=?");
}

static const trait traits[] = {{t_block, 1, 1},   {t_heads, 1, 1},    {t_experts, 1, 1},
                               {t_topk, 1, 1},    {t_capacity, 1, 1}, {t_expert_ratio, 0, 0},
                               {t_width, 1, 0},   {t_seq, 1, 0},      {t_batch, 1, 0},
                               {t_ratio, 0, 0},   {t_act, 1, 0},      {t_norm, 1, 0},
                               {t_eps, 0, 0},     {t_input, 1, 0},    {t_seeds, 1, 0},
                               {t_vocab, 1, 0},   {t_lr, 1, 0}};
#define NTRAITS (int)(sizeof traits / sizeof traits[0])

static void append(char *out, size_t n, const char *sep, const char *s)
{
    size_t k = strlen(out);
    if (k < n && s[0])
        snprintf(out + k, n - k, "%s%s", k ? sep : "", s);
}

/* control characters (a newline in a file name) would break a comment or a gnuplot string */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

/* Breaks a " · "-separated title line into lines of at most `width` characters (UTF-8 code
 * points), at separators: a long context (an MoE run's) would otherwise run past the edges of a
 * PDF, whose font is larger relative to the page than the PNG's. */
static void wrap_context(char *s, int width)
{
    static const char sep[] = " · ";
    const size_t seplen = sizeof sep - 1;
    int col = 0;
    char *last = NULL; /* the last separator on the current line */
    for (char *p = s; *p;) {
        if (strncmp(p, sep, seplen) == 0) {
            last = p;
        }
        if ((*p & 0xC0) != 0x80)
            col++;
        if (col > width && last) {
            /* the line ends before the separator; the next starts after it */
            *last = '\n';
            memmove(last + 1, last + seplen, strlen(last + seplen) + 1);
            p = last + 1, col = 0, last = NULL;
            continue;
        }
        if (*p == '\n')
            col = 0, last = NULL;
        p++;
    }
}

/* the traits that differ between runs, in label order (early ones, or the others) */
static void add_traits(char *out, size_t n, const ns_plot_file *f, const int *shared, int early)
{
    char item[64];
    for (int t = 0; t < NTRAITS; t++)
        if (!shared[t] && traits[t].early == early) {
            traits[t].format(f, item, sizeof item);
            append(out, n, ", ", item);
        }
}

void ns_style_assign(const ns_plot_file *files, int n, ns_plot_style *st, char *context,
                     size_t ctxlen)
{
    int repeated = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(placement_of(&files[i]), placement_of(&files[j])) == 0)
                repeated = 1;
    /* a trait goes into the title when every run shares it, else into each label */
    int shared[NTRAITS];
    context[0] = 0;
    for (int t = 0; t < NTRAITS; t++) {
        char first[64], other[64];
        traits[t].format(&files[0], first, sizeof first);
        shared[t] = 1;
        for (int i = 1; i < n; i++) {
            traits[t].format(&files[i], other, sizeof other);
            shared[t] &= strcmp(first, other) == 0;
        }
        if (shared[t] && traits[t].title)
            append(context, ctxlen, " · ", first);
    }
    sanitize(context);
    wrap_context(context, 88);
    int used[NPALETTE] = {0};
    for (int i = 0; i < n && !repeated; i++) {
        int slot = placement_slot(placement_of(&files[i]));
        if (slot >= 0)
            used[slot] = 1;
    }
    for (int i = 0; i < n; i++) {
        const ns_plot_file *f = &files[i];
        ns_plot_style *s = &st[i];
        int slot = repeated ? -1 : placement_slot(placement_of(f)), point;
        if (slot >= 0) {
            point = points[slot];
        } else if (repeated) { /* palette order; past the palette the markers tell them apart */
            slot = i % NPALETTE;
            point = points[(i + i / NPALETTE) % NPALETTE];
        } else { /* an unknown placement: the first colour no placement present has */
            slot = 0;
            while (used[slot] && slot < NPALETTE - 1)
                slot++;
            used[slot] = 1;
            point = points[slot];
        }
        snprintf(s->color, sizeof s->color, "%s", palette[slot]);
        s->point = point;
        /* the key and the tag: the placement, or the file name (and sweep point) */
        char stem[64];
        snprintf(stem, sizeof stem, "%s", base_name(f->path));
        size_t len = strlen(stem);
        if (len > 3 && strcmp(stem + len - 3, ".h5") == 0)
            stem[len - 3] = 0;
        /* the file name, or the path as given when two inputs share a file name */
        const char *fname = base_name(f->path);
        for (int j = 0; j < n; j++)
            if (strcmp(files[j].path, f->path) != 0 &&
                strcmp(base_name(files[j].path), fname) == 0)
                fname = f->path;
        if (!repeated)
            snprintf(s->key, sizeof s->key, "%s", placement_of(f));
        else if (f->run >= 0)
            snprintf(s->key, sizeof s->key, "%.48s run %d", fname, f->run);
        else
            snprintf(s->key, sizeof s->key, "%.60s", fname);
        char tag[64];
        if (!repeated)
            snprintf(tag, sizeof tag, "%s", placement_of(f));
        else if (f->run >= 0)
            snprintf(tag, sizeof tag, "%.40s_run%d", stem, f->run);
        else
            snprintf(tag, sizeof tag, "%s", stem);
        size_t k = 0;
        for (const char *c = tag; *c && k < sizeof s->tag - 8; c++)
            s->tag[k++] = isalnum((unsigned char)*c) || *c == '-' || *c == '_' ? *c : '_';
        s->tag[k] = 0;
        for (int j = 0; j < i; j++) /* still equal (the same file name in two directories) */
            if (strcmp(st[j].tag, s->tag) == 0) {
                snprintf(s->tag + k, sizeof s->tag - k, "_%d", i + 1);
                break;
            }
        char inner[192] = "", item[64];
        if (repeated)
            append(inner, sizeof inner, ", ", placement_of(f));
        add_traits(inner, sizeof inner, f, shared, 1);
        t_depth(f, item, sizeof item);
        append(inner, sizeof inner, ", ", item);
        t_alpha(f, item, sizeof item);
        append(inner, sizeof inner, ", ", item);
        add_traits(inner, sizeof inner, f, shared, 0);
        snprintf(s->label, sizeof s->label, "%s (%s)", s->key, inner);
        sanitize(s->key);
        sanitize(s->label);
    }
}

void ns_style_series(const ns_plot_file *const *runs, int n, ns_plot_style *st, char *context,
                     size_t ctxlen)
{
    /* the traits of a series: Scale Init first (it is what a depth sweep is usually about),
     * then everything the run figures compare; depth and alpha vary along a series */
    trait list[NTRAITS + 1] = {{t_scale, 1, 1}};
    for (int t = 0; t < NTRAITS; t++)
        list[t + 1] = traits[t];
    int shared[NTRAITS + 1];
    char first[64], other[64];
    context[0] = 0;
    for (int t = 0; t <= NTRAITS; t++) {
        list[t].format(runs[0], first, sizeof first);
        shared[t] = 1;
        for (int i = 1; i < n; i++) {
            list[t].format(runs[i], other, sizeof other);
            shared[t] &= strcmp(first, other) == 0;
        }
        if (shared[t] && list[t].title)
            append(context, ctxlen, " · ", first);
    }
    sanitize(context);
    wrap_context(context, 88);
    /* the first series of each placement takes its colour and marker; later ones (pre with
     * two Scale Inits) take the colours no placement present has */
    int used[NPALETTE] = {0}, placement_taken[NPALETTE] = {0};
    for (int i = 0; i < n; i++) {
        int slot = placement_slot(placement_of(runs[i]));
        if (slot >= 0)
            used[slot] = 1;
    }
    for (int i = 0; i < n; i++) {
        ns_plot_style *s = &st[i];
        int slot = placement_slot(placement_of(runs[i]));
        if (slot >= 0 && !placement_taken[slot]) {
            placement_taken[slot] = 1;
        } else {
            /* orange, sky blue, black, the muted five, brown and green first; then the colours of
             * absent placements; yellow, faint on white, last */
            static const int spare[] = {4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 3, 0, 1, 2, 7};
            _Static_assert(sizeof spare / sizeof spare[0] == NPALETTE, "every colour a spare");
            slot = -1;
            for (int k = 0; k < NPALETTE && slot < 0; k++)
                if (!used[spare[k]])
                    slot = spare[k];
            if (slot < 0) /* more series than colours: cycle, the markers differ */
                slot = i % NPALETTE;
            used[slot] = 1;
        }
        snprintf(s->color, sizeof s->color, "%s", palette[slot]);
        s->point = points[(slot + i / NPALETTE) % NPALETTE];
        char label[192] = "", item[64];
        append(label, sizeof label, ", ", placement_of(runs[i]));
        for (int early = 1; early >= 0; early--)
            for (int t = 0; t <= NTRAITS; t++)
                if (!shared[t] && list[t].early == early) {
                    list[t].format(runs[i], item, sizeof item);
                    append(label, sizeof label, ", ", item);
                }
        snprintf(s->key, sizeof s->key, "%.63s", label);
        snprintf(s->label, sizeof s->label, "%s", label);
        snprintf(s->tag, sizeof s->tag, "series%d", i);
        sanitize(s->key);
        sanitize(s->label);
    }
}

void ns_style_file_context(const ns_plot_file *f, char *out, size_t n)
{
    char line[2][256] = {"", ""}, item[64];
    append(line[0], sizeof line[0], ", ", placement_of(f));
    for (int early = 1; early >= 0; early--) {
        char *l = line[!early];
        for (int t = 0; t < NTRAITS; t++)
            if (traits[t].title && traits[t].early == early) {
                traits[t].format(f, item, sizeof item);
                append(l, sizeof line[0], ", ", item);
            }
        if (early) {
            t_depth(f, item, sizeof item);
            append(l, sizeof line[0], ", ", item);
            t_alpha(f, item, sizeof item);
            append(l, sizeof line[0], ", ", item);
        }
        sanitize(l);
    }
    /* two lines: one would not fit a slide's width */
    snprintf(out, n, "%s\n%s", line[0], line[1]);
}

void ns_gp_quoted(ns_buf *b, const char *s)
{
    ns_buf_printf(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            ns_buf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            ns_buf_printf(b, "\\n");
        else
            ns_buf_printf(b, "%c", (unsigned char)*s < 0x20 ? '?' : *s);
    }
    ns_buf_printf(b, "\"");
}

void ns_gp_comment(ns_buf *b, const char *s)
{
    for (; *s; s++)
        ns_buf_printf(b, "%c", (unsigned char)*s < 0x20 ? '?' : *s);
}

void ns_gp_header(ns_buf *gp, const char *name, const char *what)
{
    ns_buf_printf(gp, "# %s.gp: %s\n", name, what);
    ns_buf_printf(gp, "# Written by normscope plot. Edit freely, then re-render from this "
                      "directory:\n#   gnuplot %s.gp                  -> %s.png\n"
                      "#   gnuplot -e \"fmt='pdf'\" %s.gp   -> %s.pdf (fmt='svg': %s.svg)\n",
                  name, name, name, name, name);
}

void ns_gp_terminal(ns_buf *gp, const char *name)
{
    /* One script renders every format: `fmt` picks the terminal, `out` the file. normscope plot
     * sets both (rendering to a temporary name); a user just runs `gnuplot NAME.gp`. Sizes: PNG
     * for a 16:10 slide; PDF for a page (vector, fonts in points); SVG as large as the PNG. */
    ns_buf_printf(gp,
        "if (!exists(\"fmt\")) fmt = \"png\"\n"
        "if (!exists(\"out\")) out = \"%s.\" . fmt\n"
        "if (fmt eq \"png\") {\n"
        "    set terminal pngcairo size 1280,800 background rgb \"white\" font \"DejaVu Sans,17\" linewidth 2 noenhanced\n"
        "    keyfont = \"DejaVu Sans,15\"; marker = 1.1\n"
        "} else { if (fmt eq \"pdf\") {\n"
        "    set terminal pdfcairo size 7in,4.375in background rgb \"white\" font \"DejaVu Sans,10\" linewidth 1.25 noenhanced\n"
        "    keyfont = \"DejaVu Sans,9\"; marker = 0.55\n"
        "} else { if (fmt eq \"svg\") {\n"
        "    set terminal svg size 1280,800 fixed background rgb \"white\" font \"DejaVu Sans,17\" linewidth 2 noenhanced\n"
        "    keyfont = \"DejaVu Sans,15\"; marker = 1.1\n"
        "} else {\n"
        "    print \"fmt must be png, pdf or svg\"\n"
        "    exit status 2\n"
        "} } }\n"
        "set output out\n"
        "set encoding utf8\n", name);
}

void ns_gp_frame(ns_buf *gp)
{
    ns_buf_printf(gp,
        "set border 3 lw 1\n"
        "set tics nomirror out scale 0.6\n"
        "set grid xtics ytics lt 1 lc rgb \"#E3E3E3\" lw 1\n"
        "# the legend sits below the axes, so it can never hide a curve; its font is a little\n"
        "# smaller, so that long labels still fit two or three to a row\n"
        "# linear axes: a little room above and below, so no curve runs along the frame\n"
        "set offsets 0, 0, graph 0.04, graph 0.04\n"
        "set key below center horizontal Left reverse samplen 2.5 spacing 1.15 width -3 height 1 font keyfont\n");
}

static double nice_step(double raw)
{
    double p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

void ns_gp_layer_axis(ns_buf *gp, int first, int last, const char *xlabel)
{
    int span = last > first ? last - first : 1;
    double pad = fmax(0.3, 0.02 * span);
    double step = fmax(1, nice_step(span / 8.0));
    ns_buf_printf(gp, "set xlabel ");
    ns_gp_quoted(gp, xlabel);
    ns_buf_printf(gp, " offset 0,0.3\nset xrange [%g:%g]\nset xtics 0, %g\nset format x \"%%g\"\n",
                  first - pad, last + pad, step);
}

void ns_gp_log_y(ns_buf *gp, double lo, double hi)
{
    /* at least a factor of 2 top to bottom: seeds agreeing to 1e-6 must look flat, not noisy */
    if (hi / lo < 2) {
        double g = sqrt(lo * hi);
        lo = g / sqrt(2.0), hi = g * sqrt(2.0);
    }
    double f = pow(hi / lo, 0.04);
    lo /= f, hi *= f;
    double decades = log10(hi / lo);
    ns_buf_printf(gp, "set logscale y\nymin = %.6g\nymax = %.6g\nset yrange [ymin:ymax]\n"
                      "set format y \"%%g\"\n", lo, hi);
    if (decades >= 2.5) {
        ns_buf_printf(gp, "set mytics 10\n");
    } else if (decades >= 0.7) { /* 1, 2, 5 per decade */
        ns_buf_printf(gp, "set ytics (");
        int k0 = (int)floor(log10(lo)), k1 = (int)ceil(log10(hi)), first = 1;
        for (int k = k0; k <= k1; k++)
            for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
                double v = m * pow(10, k);
                if (v >= lo && v <= hi) {
                    ns_buf_printf(gp, "%s%g", first ? "" : ", ", v);
                    first = 0;
                }
            }
        ns_buf_printf(gp, ")\n");
    } else { /* less than a decade: evenly spaced values read best (listed: on a log axis
              * `set ytics start, incr` would multiply by incr) */
        double step = nice_step((hi - lo) / 5);
        ns_buf_printf(gp, "set ytics (");
        for (double v = ceil(lo / step) * step; v <= hi; v += step)
            ns_buf_printf(gp, "%s%g", v > ceil(lo / step) * step ? ", " : "", v);
        ns_buf_printf(gp, ")\n");
    }
    ns_buf_printf(gp, "# on a log axis a band reaching 0 would vanish: its lower edge is drawn "
                      "at the bottom of the axis instead\nclip(y) = (y > ymin ? y : ymin)\n");
}

void ns_gp_log_depth_axis(ns_buf *gp, const int *depths, int n, const char *xlabel)
{
    int lo = depths[0], hi = depths[0];
    for (int i = 1; i < n; i++)
        lo = depths[i] < lo ? depths[i] : lo, hi = depths[i] > hi ? depths[i] : hi;
    double pad = pow(hi > lo ? (double)hi / lo : 2.0, 0.05);
    ns_buf_printf(gp, "set xlabel ");
    ns_gp_quoted(gp, xlabel);
    ns_buf_printf(gp, " offset 0,0.3\nset logscale x 2\nset xrange [%.6g:%.6g]\n"
                      "set format x \"%%g\"\nset xtics (", lo / pad, hi * pad);
    /* a tic at each depth of the sweep, once */
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= depths[j] == depths[i];
        if (!seen)
            ns_buf_printf(gp, "%s%d", i ? ", " : "", depths[i]);
    }
    ns_buf_printf(gp, ")\nunset mxtics\n");
}

/* viridis at ten stops: perceptually uniform, readable in grey and with colour-vision
 * deficiencies */
void ns_gp_viridis(ns_buf *gp)
{
    static const char *const viridis[] = {"#440154", "#482878", "#3E4A89", "#31688E",
                                          "#26828E", "#1F9E89", "#35B779", "#6DCD59",
                                          "#B4DE2C", "#FDE725"};
    ns_buf_printf(gp, "set palette defined (");
    for (int i = 0; i < 10; i++)
        ns_buf_printf(gp, "%s%d \"%s\"", i ? ", " : "", i, viridis[i]);
    ns_buf_printf(gp, ")\n");
}

void ns_gp_heatmap_head(ns_buf *gp, const char *name, const char *what, const char *columns,
                        const char *source, const char *title, int L, const char *ylabel,
                        int ny)
{
    char whole[256];
    snprintf(whole, sizeof whole, "%s, one input run", what);
    ns_gp_header(gp, name, whole);
    ns_buf_printf(gp, "# Data: %s.dat, columns %s\n# ", name, columns);
    ns_gp_comment(gp, source);
    ns_buf_printf(gp, "\n\n");
    ns_gp_terminal(gp, name);
    ns_buf_printf(gp, "set tics out scale 0.6\nunset key\nset title ");
    ns_gp_quoted(gp, title);
    ns_buf_printf(gp, "\n");
    ns_gp_layer_axis(gp, 1, L, "block l");
    /* cells are centred on integers: the axes run half a cell past the first and last */
    ns_buf_printf(gp, "set xrange [0.5:%d.5]\nset ylabel \"%s\"\nset yrange [0.5:%d.5]\n", L,
                  ylabel, ny);
    if (ny <= 16)
        ns_buf_printf(gp, "set ytics 1, 1\n");
    ns_gp_viridis(gp);
}
