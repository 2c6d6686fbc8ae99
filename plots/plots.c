/* plots.c: the plot pipeline: read and check every input, build every figure in memory, and
 * only then touch the output directory; write data and scripts; render each format. */
#define _POSIX_C_SOURCE 200809L
#include "plots.h"
#include "plot_figure.h"
#include "plot_gnuplot.h"
#include "normscope.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    unsigned bit;
    const char *ext;
} formats[] = {{NS_PLOT_PNG, "png"}, {NS_PLOT_PDF, "pdf"}, {NS_PLOT_SVG, "svg"}};
#define NFORMATS (int)(sizeof formats / sizeof formats[0])

int ns_plot_parse_formats(const char *list, unsigned *mask, char *msg, size_t msglen)
{
    *mask = 0;
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (int i = 0; i < NFORMATS && !found; i++)
            if (len == strlen(formats[i].ext) && strncmp(p, formats[i].ext, len) == 0) {
                *mask |= formats[i].bit;
                found = 1;
            }
        if (!found) {
            snprintf(msg, msglen, "unknown --format '%.*s' in '%s' (choose from png, pdf, svg, "
                     "comma-separated)", (int)(len > 40 ? 40 : len), p, list);
            return NS_ERR_INVALID;
        }
        if (!p[len])
            return NS_OK;
        p += len + 1;
    }
}

ns_plot_fig *ns_figs_add(ns_plot_figs *figs, const char *name)
{
    if (figs->n == figs->cap) {
        int cap = figs->cap ? 2 * figs->cap : 16;
        ns_plot_fig *v = realloc(figs->v, (size_t)cap * sizeof *v);
        if (!v)
            return NULL;
        figs->v = v, figs->cap = cap;
    }
    ns_plot_fig *f = &figs->v[figs->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

void ns_figs_free(ns_plot_figs *figs)
{
    for (int i = 0; i < figs->n; i++) {
        ns_buf_free(&figs->v[i].dat);
        ns_buf_free(&figs->v[i].gp);
    }
    free(figs->v);
    memset(figs, 0, sizeof *figs);
}

/* mkdir -p, then check that we can create files in it */
static int prepare_dir(const char *dir, char *msg, size_t msglen)
{
    char path[4096];
    struct stat st;
    if (!dir[0] || snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(msg, msglen, "--out: bad output directory '%s'", dir);
        return NS_ERR_INVALID;
    }
    for (char *p = path + 1;; p++) {
        int end = *p == 0;
        if (*p == '/' || end) {
            *p = 0;
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                snprintf(msg, msglen, "cannot create output directory %s: %s", path,
                         strerror(errno));
                return NS_ERR_INVALID;
            }
            if (end)
                break;
            *p = '/';
        }
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(msg, msglen, "output path %s is not a directory", dir);
        return NS_ERR_INVALID;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(msg, msglen, "cannot write to output directory %s: %s", dir, strerror(errno));
        return NS_ERR_INVALID;
    }
    return NS_OK;
}

static int write_figure(const ns_plot_request *rq, const ns_plot_fig *fig, const char *gnuplot,
                        char *msg, size_t msglen)
{
    char name[128], path[4096 + 128];
    int st;
    snprintf(name, sizeof name, "%s.dat", fig->name);
    if ((st = ns_write_atomic(rq->dir, name, fig->dat.s, fig->dat.len, msg, msglen)) != NS_OK)
        return st;
    snprintf(name, sizeof name, "%s.gp", fig->name);
    if ((st = ns_write_atomic(rq->dir, name, fig->gp.s, fig->gp.len, msg, msglen)) != NS_OK)
        return st;
    for (int i = 0; i < NFORMATS; i++) {
        if (!(rq->formats & formats[i].bit))
            continue;
        if (rq->stop && rq->stop()) {
            snprintf(msg, msglen, "interrupted; the figures reported so far are complete");
            return NS_ERR_INTERRUPTED;
        }
        st = ns_gnuplot_render(gnuplot, rq->dir, fig->name, formats[i].ext, msg, msglen);
        if (st != NS_OK && rq->stop && rq->stop()) { /* gnuplot shares our Ctrl-C */
            snprintf(msg, msglen, "interrupted; the figures reported so far are complete");
            return NS_ERR_INTERRUPTED;
        }
        if (st != NS_OK)
            return st;
        snprintf(name, sizeof name, "%s.%s", fig->name, formats[i].ext);
        if (rq->wrote && ns_path_join(path, sizeof path, rq->dir, name) == NS_OK)
            rq->wrote(rq->ctx, path);
    }
    return NS_OK;
}

/* every input run into set, read and checked; a sweep file is one run per point /runs/<i> */
static int read_inputs(const ns_plot_request *rq, ns_plot_set *set, char *msg, size_t msglen)
{
    int total = 0, st = NS_ERR_NOMEM, *runs = calloc((size_t)rq->nfiles, sizeof *runs);
    snprintf(msg, msglen, "out of memory");
    if (!runs)
        goto done;
    for (int i = 0; i < rq->nfiles; i++) {
        if ((st = ns_plot_file_runs(rq->files[i], &runs[i], msg, msglen)) != NS_OK)
            goto done;
        total += runs[i] ? runs[i] : 1;
    }
    set->files = calloc((size_t)total, sizeof *set->files);
    set->styles = calloc((size_t)total, sizeof *set->styles);
    st = NS_ERR_NOMEM;
    if (!set->files || !set->styles) {
        snprintf(msg, msglen, "out of memory");
        goto done;
    }
    for (int i = 0; i < rq->nfiles; i++)
        for (int r = runs[i] ? 0 : -1; r < runs[i]; r++, set->n++)
            if ((st = ns_plot_file_read(&set->files[set->n], rq->files[i], r, msg, msglen)))
                goto done;
    st = NS_OK;
done:
    free(runs); /* set is freed by the caller, also on failure */
    return st;
}

int ns_plot_run(const ns_plot_request *rq, char *msg, size_t msglen)
{
    ns_plot_set set = {0};
    ns_plot_figs figs = {0};
    char gnuplot[4096];
    int st = NS_ERR_NOMEM;
    if (rq->nfiles < 1) {
        snprintf(msg, msglen, "no input files (usage: normscope plot FILE.h5 ... --out DIR)");
        return NS_ERR_INVALID;
    }
    if (rq->formats == 0) {
        snprintf(msg, msglen, "no output format");
        return NS_ERR_INVALID;
    }
    /* 1. every input, checked before anything is written */
    if ((st = read_inputs(rq, &set, msg, msglen)) != NS_OK)
        goto done;
    ns_style_assign(set.files, set.n, set.styles, set.context, sizeof set.context);
    /* 2. every figure, in memory */
    for (int i = 0; i < ns_figure_count; i++)
        if ((st = ns_figure_table[i].build(&set, ns_figure_table[i].spec, &figs)) != NS_OK) {
            snprintf(msg, msglen, "out of memory building the figures");
            goto done;
        }
    if (figs.n == 0) {
        snprintf(msg, msglen, "nothing to plot: %s%s has no propagate metrics",
                 rq->files[0], rq->nfiles > 1 ? " (nor any other input)" : "");
        st = NS_ERR_INVALID;
        goto done;
    }
    /* 3. the tools and the place */
    if ((st = ns_gnuplot_find(gnuplot, sizeof gnuplot, msg, msglen)) != NS_OK ||
        (st = prepare_dir(rq->dir, msg, msglen)) != NS_OK)
        goto done;
    /* 4. write and render */
    for (int i = 0; i < figs.n; i++)
        if ((st = write_figure(rq, &figs.v[i], gnuplot, msg, msglen)) != NS_OK)
            goto done;
    st = NS_OK;
done:
    ns_figs_free(&figs);
    for (int i = 0; i < set.n; i++)
        ns_plot_file_free(&set.files[i]);
    free(set.files);
    free(set.styles);
    return st;
}
