/* plots.c: the plot pipeline: read and check every input, build every figure in memory, and
 * only then touch the output directory; write data and scripts; render each format. */
#define _POSIX_C_SOURCE 200809L
#include "plots.h"
#include "plot_figure.h"
#include "plot_gnuplot.h"
#include "files.h"
#include "normscope.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *const ns_plot_format_names[] = {"png", "pdf", "svg", NULL};
#define NFORMATS 3
_Static_assert(NS_PLOT_SVG == 1u << (NFORMATS - 1), "a format name for every format bit");

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

/* removes the files of a figure that failed, so that none of it is left: its .dat and .gp and
 * the images of the formats done before the failure (none of them reported yet) */
static void remove_figure(const ns_plot_request *rq, const ns_plot_fig *fig, int nformats_done)
{
    char name[128], path[4096 + 128];
    for (int i = -2; i < NFORMATS; i++) {
        if (i >= 0 && (!(rq->formats & 1u << i) || nformats_done-- <= 0))
            continue;
        snprintf(name, sizeof name, "%s.%s", fig->name,
                 i == -2 ? "dat" : i == -1 ? "gp" : ns_plot_format_names[i]);
        if (ns_path_join(path, sizeof path, rq->dir, name) == NS_OK)
            unlink(path);
    }
}

/* A figure appears whole or not at all: its data, its script and its image in every format, each
 * written under a temporary name and renamed into place; if any of them fails, those already in
 * place are removed, and the images are reported only once all of them are there. */
static int write_figure(const ns_plot_request *rq, const ns_plot_fig *fig, const char *gnuplot,
                        char *msg, size_t msglen)
{
    char name[128], path[4096 + 128];
    int st, done = 0;
    snprintf(name, sizeof name, "%s.dat", fig->name);
    if ((st = ns_write_atomic(rq->dir, name, fig->dat.s, fig->dat.len, msg, msglen)) != NS_OK)
        return st;
    snprintf(name, sizeof name, "%s.gp", fig->name);
    if ((st = ns_write_atomic(rq->dir, name, fig->gp.s, fig->gp.len, msg, msglen)) != NS_OK)
        goto fail;
    for (int i = 0; i < NFORMATS; i++) {
        if (!(rq->formats & 1u << i))
            continue;
        if (rq->stop && rq->stop()) {
            snprintf(msg, msglen, "interrupted; the figures reported so far are complete");
            st = NS_ERR_INTERRUPTED;
            goto fail;
        }
        st = ns_gnuplot_render(gnuplot, rq->dir, fig->name, ns_plot_format_names[i], msg, msglen);
        if (st != NS_OK && rq->stop && rq->stop()) { /* gnuplot shares our Ctrl-C */
            snprintf(msg, msglen, "interrupted; the figures reported so far are complete");
            st = NS_ERR_INTERRUPTED;
        }
        if (st != NS_OK)
            goto fail;
        done++;
    }
    for (int i = 0; i < NFORMATS && rq->wrote; i++) {
        snprintf(name, sizeof name, "%s.%s", fig->name, ns_plot_format_names[i]);
        if ((rq->formats & 1u << i) && ns_path_join(path, sizeof path, rq->dir, name) == NS_OK)
            rq->wrote(rq->ctx, path);
    }
    return NS_OK;
fail:
    remove_figure(rq, fig, done);
    return st;
}

/* do two runs of a depth series differ in anything but depth (and the alpha it implies)? */
static const char *differs_besides_depth(const ns_plot_file *a, const ns_plot_file *b)
{
    const struct {
        const char *name, *x, *y;
    } strings[] = {{"block", a->block, b->block},
                   {"scheme", a->scheme, b->scheme},
                   {"span_variant", a->span_variant, b->span_variant},
                   {"act", a->act, b->act},
                   {"norm", a->norm, b->norm},
                   {"input", a->input, b->input},
                   {"scale_init", a->scale_init, b->scale_init}};
    const struct {
        const char *name;
        double x, y;
    } numbers[] = {{"width", a->width, b->width},       {"seq", a->seq, b->seq},
                   {"batch", a->batch, b->batch},       {"heads", a->heads, b->heads},
                   {"seeds", a->seeds, b->seeds},       {"experts", a->experts, b->experts},
                   {"top_k", a->top_k, b->top_k},       {"mlp_ratio", a->mlp_ratio, b->mlp_ratio},
                   {"norm_eps", a->norm_eps, b->norm_eps}, {"capacity", a->capacity, b->capacity},
                   {"expert_ratio", a->expert_ratio, b->expert_ratio}};
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
        if (strcmp(strings[i].x, strings[i].y) != 0)
            return strings[i].name;
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        if (!(numbers[i].x == numbers[i].y || (isnan(numbers[i].x) && isnan(numbers[i].y))))
            return numbers[i].name;
    return NULL;
}

/* every series of /sweep/fits holds runs that differ only in depth, each depth once */
static int check_series(const ns_plot_set *set, int k, const char *path, char *msg, size_t msglen)
{
    const ns_plot_sweep *sw = &set->sweeps[k];
    for (int s = 0; s < sw->nseries; s++) {
        const ns_plot_file *f0 = &set->files[set->run0[k] + sw->first[s]];
        for (int j = 1; j < sw->per_series; j++) {
            const ns_plot_file *f = &set->files[set->run0[k] + sw->first[s] + j * sw->stride];
            const char *what = differs_besides_depth(f0, f);
            for (int i = 0; i < j && !what; i++)
                if (set->files[set->run0[k] + sw->first[s] + i * sw->stride].depth == f->depth)
                    what = "depth (repeated)";
            if (what) {
                snprintf(msg, msglen, "%s: /sweep/fits series %d: /runs/%d and /runs/%d differ in "
                         "%s, not only in depth", path, s, f0->run, f->run, what);
                return NS_ERR_INVALID;
            }
        }
    }
    return NS_OK;
}

/* every input run into set, read and checked; a sweep file is one run per point /runs/<i>, and
 * its depth-sweep fits, if any */
static int read_inputs_unguarded(const ns_plot_request *rq, ns_plot_set *set, char *msg,
                                 size_t msglen)
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
    set->sweeps = calloc((size_t)rq->nfiles, sizeof *set->sweeps);
    set->run0 = calloc((size_t)rq->nfiles, sizeof *set->run0);
    st = NS_ERR_NOMEM;
    if (!set->files || !set->styles || !set->sweeps || !set->run0) {
        snprintf(msg, msglen, "out of memory");
        goto done;
    }
    for (int i = 0; i < rq->nfiles; i++) {
        set->run0[i] = set->n;
        for (int r = runs[i] ? 0 : -1; r < runs[i]; r++, set->n++)
            if ((st = ns_plot_file_read(&set->files[set->n], rq->files[i], r, msg, msglen)))
                goto done;
        set->ninputs++;
        if ((st = ns_plot_sweep_read(&set->sweeps[i], rq->files[i], runs[i], msg, msglen)) ||
            (st = check_series(set, i, rq->files[i], msg, msglen)))
            goto done;
    }
    st = NS_OK;
done:
    free(runs); /* set is freed by the caller, also on failure */
    return st;
}

/* Every input is first read in a child process, one file per child (files.h: libhdf5 aborts
 * on some crafted metadata before any check of ours can see it), and read here only if each
 * child finished; a child that did not names its file. */
typedef struct {
    const ns_plot_request *rq;
    int i;
} probe_ctx;

static void probe_read(void *ctx)
{
    const probe_ctx *c = ctx;
    ns_plot_request one = *c->rq;
    one.files = &c->rq->files[c->i], one.nfiles = 1;
    ns_plot_set set = {0};
    char m[256];
    read_inputs_unguarded(&one, &set, m, sizeof m);
}

static int probe_inputs(const ns_plot_request *rq, char *msg, size_t msglen)
{
    for (int i = 0; i < rq->nfiles; i++) {
        char how[64];
        int st = ns_file_probe(probe_read, &(probe_ctx){rq, i}, how, sizeof how);
        if (st == NS_ERR_INTERRUPTED)
            snprintf(msg, msglen, "interrupted; nothing written");
        else if (st != NS_OK)
            snprintf(msg, msglen, "%s: the HDF5 library failed reading it (%s): a corrupt file",
                     rq->files[i], how);
        if (st != NS_OK)
            return st;
    }
    return NS_OK;
}

/* a signal while the inputs are read ends the process at once (files.h) */
static int read_inputs(const ns_plot_request *rq, ns_plot_set *set, char *msg, size_t msglen)
{
    ns_file_reading_paths(1, rq->files, rq->nfiles);
    int st = probe_inputs(rq, msg, msglen);
    if (st == NS_OK)
        st = read_inputs_unguarded(rq, set, msg, msglen);
    ns_file_reading_paths(0, NULL, 0);
    return st;
}

/* When every run belongs to a depth series (the inputs are depth sweeps and nothing else), the
 * figures against layer colour each run by its series, as the depth figures do, and name each
 * series once ("pre, scale none (L=8, 16, 32)"): a curve's depth shows where it ends. Tags stay
 * per run. */
static int restyle_depth_series(ns_plot_set *set)
{
    int nseries = 0, covered = 0;
    for (int k = 0; k < set->ninputs; k++) {
        nseries += set->sweeps[k].nseries;
        covered += set->sweeps[k].nseries * set->sweeps[k].per_series;
    }
    if (nseries == 0 || covered != set->n)
        return NS_OK;
    const ns_plot_file **firsts = malloc((size_t)nseries * sizeof *firsts);
    ns_plot_style *st = calloc((size_t)nseries, sizeof *st);
    char context[256];
    if (!firsts || !st) {
        free(firsts);
        free(st);
        return NS_ERR_NOMEM;
    }
    for (int k = 0, i = 0; k < set->ninputs; k++)
        for (int r = 0; r < set->sweeps[k].nseries; r++)
            firsts[i++] = &set->files[set->run0[k] + set->sweeps[k].first[r]];
    ns_style_series(firsts, nseries, st, context, sizeof context);
    for (int k = 0, i = 0; k < set->ninputs; k++) {
        const ns_plot_sweep *sw = &set->sweeps[k];
        for (int r = 0; r < sw->nseries; r++, i++) {
            char depths[160] = "";
            size_t len = 0;
            for (int j = 0; j < sw->per_series && len < sizeof depths; j++) {
                int depth = set->files[set->run0[k] + sw->first[r] + j * sw->stride].depth;
                len += (size_t)snprintf(depths + len, sizeof depths - len, "%s%d", j ? ", " : "",
                                        depth);
            }
            for (int j = 0; j < sw->per_series; j++) {
                ns_plot_style *s = &set->styles[set->run0[k] + sw->first[r] + j * sw->stride];
                snprintf(s->color, sizeof s->color, "%s", st[i].color);
                s->point = st[i].point;
                snprintf(s->key, sizeof s->key, "%s", st[i].key);
                snprintf(s->label, sizeof s->label, "%.200s (L=%.80s)", st[i].label, depths);
            }
        }
    }
    free(firsts);
    free(st);
    return NS_OK;
}

/* every file a figure will write into the output directory can be an output (not a device, a
 * FIFO, a directory) and is none of the inputs (same device and inode): NS_ERR_INVALID if not */
static int check_outputs(const ns_plot_request *rq, const ns_plot_figs *figs, char *msg,
                         size_t msglen)
{
    static const char *const data_ext[] = {"dat", "gp"};
    char name[160], path[4096 + 160];
    for (int i = 0; i < figs->n; i++)
        for (int e = 0; e < 2 + NFORMATS; e++) {
            const char *ext = e < 2 ? data_ext[e] : ns_plot_format_names[e - 2];
            if (e >= 2 && !(rq->formats & 1u << (e - 2)))
                continue;
            snprintf(name, sizeof name, "%s.%s", figs->v[i].name, ext);
            if (ns_path_join(path, sizeof path, rq->dir, name) != NS_OK)
                continue; /* reported when it is written */
            if (ns_file_check_output(path, msg, msglen) != NS_OK)
                return NS_ERR_INVALID;
            for (int k = 0; k < rq->nfiles; k++)
                if (ns_file_same(path, rq->files[k])) {
                    snprintf(msg, msglen, "--out %s: %s would replace the input %s", rq->dir,
                             path, rq->files[k]);
                    return NS_ERR_INVALID;
                }
        }
    return NS_OK;
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
    /* 0. an input that is not a regular file (a FIFO would block the reader) is a usage error */
    for (int i = 0; i < rq->nfiles; i++)
        if (ns_file_check_input(NULL, rq->files[i], msg, msglen) == NS_ERR_INVALID)
            return NS_ERR_INVALID;
    /* 1. every input, checked before anything is written; a file that cannot be read or is
     * not what it should be is a runtime failure (exit 1), not a usage error */
    if ((st = read_inputs(rq, &set, msg, msglen)) != NS_OK) {
        st = st == NS_ERR_INVALID ? NS_ERR_IO : st;
        goto done;
    }
    ns_style_assign(set.files, set.n, set.styles, set.context, sizeof set.context);
    if ((st = restyle_depth_series(&set)) != NS_OK) {
        snprintf(msg, msglen, "out of memory");
        goto done;
    }
    /* 2. every figure, in memory */
    for (int i = 0; i < ns_figure_count; i++)
        if ((st = ns_figure_table[i].build(&set, ns_figure_table[i].spec, &figs)) != NS_OK) {
            snprintf(msg, msglen, "out of memory building the figures");
            goto done;
        }
    if (figs.n == 0) {
        snprintf(msg, msglen, "nothing to plot: %s%s has no propagate metrics and no training "
                              "records",
                 rq->files[0], rq->nfiles > 1 ? " (nor any other input)" : "");
        st = NS_ERR_IO;
        goto done;
    }
    /* 3. the tools and the place */
    if ((st = check_outputs(rq, &figs, msg, msglen)) != NS_OK ||
        (st = ns_gnuplot_find(gnuplot, sizeof gnuplot, msg, msglen)) != NS_OK ||
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
    for (int i = 0; i < set.ninputs; i++)
        ns_plot_sweep_free(&set.sweeps[i]);
    free(set.files);
    free(set.styles);
    free(set.sweeps);
    free(set.run0);
    return st;
}
