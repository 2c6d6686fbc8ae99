/* cmd_propagate.c: `normscope propagate`, the propagate protocol written to one HDF5 file.
 *
 * Options come from one table: it makes the argp options, parses and validates values, and
 * writes /config. Every option but --out and --threads may take a comma list (--depth 8,16,32
 * --scheme pre,post,span); the Cartesian product of the lists runs, first option slowest, into
 * one file: /sweep (one row per point) and /runs/<i>/ in the single-run layout. A single point
 * keeps the single-run layout at the root. Every point is validated before any work starts. */
#define _GNU_SOURCE
#include "cli.h"
#include "fit.h"
#include "h5out.h"
#include "progress.h"
#include "propagate.h"
#include "theory.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const blocks[] = {"mlp", "transformer", "moe", NULL}; /* ns_block_kind order */
static const char *const schemes[] = {"pre", "post", "span", NULL};
static const char *const span_variants[] = {"aggregate", "wrapped", NULL};
static const char *const acts[] = {"gelu", "relu", "linear", NULL};   /* ns_act_kind order */
static const char *const norms[] = {"layernorm", "rmsnorm", NULL};    /* ns_norm_kind order */
static const char *const inputs[] = {"gaussian", "tokens", NULL};     /* ns_input_kind order */

/* one point of the sweep: every option's value */
typedef struct {
    int block, scheme, span_variant, depth, width, heads, seq, batch, act, norm, input, vocab,
        seeds, threads, experts, top_k;
    double mlp_ratio, norm_eps, expert_ratio, capacity;
    long long seed;
    const char *scale_init, *out;
} point;

typedef enum { K_INT, K_DOUBLE, K_NONNEG, K_SEED, K_CHOICE, K_TEXT } kind;

typedef struct {
    const char *option;         /* --option; the /config attribute is the same with '_' */
    kind k;
    size_t off;                 /* of the field in point */
    const char *const *choices; /* K_CHOICE */
    const char *dflt;           /* as text; NULL: see the doc */
    int list;                   /* may take a comma list */
    const char *arg, *doc;
} spec;

#define F(field) offsetof(point, field)
static const spec specs[] = {
    {"block", K_CHOICE, F(block), blocks, "mlp", 1, "KIND",
     "mlp (one MLP sublayer), transformer (causal attention, then MLP) or moe (causal "
     "attention, then a mixture of experts)"},
    {"scheme", K_CHOICE, F(scheme), schemes, "pre", 1, "NAME", "placement: pre, post, span"},
    {"span-variant", K_CHOICE, F(span_variant), span_variants, "aggregate", 1, "V",
     "SpanNorm form: aggregate y = x + N(F(x)), or wrapped y = x + alpha N(x + F(x))"},
    {"depth", K_INT, F(depth), NULL, "32", 1, "L", "number of blocks"},
    {"width", K_INT, F(width), NULL, "256", 1, "D", "residual width d"},
    {"heads", K_INT, F(heads), NULL, "4", 1, "H", "attention heads (d divisible by H)"},
    {"seq", K_INT, F(seq), NULL, "64", 1, "T", "tokens per sequence"},
    {"batch", K_INT, F(batch), NULL, "4", 1, "B", "sequences per seed"},
    {"mlp-ratio", K_DOUBLE, F(mlp_ratio), NULL, "4", 1, "R", "MLP hidden width = round(R d)"},
    {"experts", K_INT, F(experts), NULL, "8", 1, "E", "experts of a moe block"},
    {"expert-ratio", K_DOUBLE, F(expert_ratio), NULL, "4", 1, "R",
     "hidden width of each expert = round(R d)"},
    {"top-k", K_INT, F(top_k), NULL, "2", 1, "K",
     "experts per token: 1 (gate = router probability, Switch) or 2 (gates renormalized)"},
    {"capacity", K_NONNEG, F(capacity), NULL, "0", 1, "C",
     "capacity factor: each expert takes at most ceil(C k tokens / E) token slots, the rest are "
     "dropped (0: no limit)"},
    {"act", K_CHOICE, F(act), acts, "gelu", 1, "PHI", "activation: gelu (tanh form), relu, linear"},
    {"norm", K_CHOICE, F(norm), norms, "layernorm", 1, "N", "norm: layernorm, rmsnorm"},
    {"norm-eps", K_DOUBLE, F(norm_eps), NULL, "1e-5", 1, "EPS", "norm epsilon"},
    {"scale-init", K_TEXT, F(scale_init), NULL, NULL, 1, "S",
     "Scale Init alpha: none (1), sqrtL (1/sqrt(L)), sqrt2L (1/sqrt(2L)) or a number; on W2 and "
     "W_O for pre/post, on the span norm's gain for span (default none for pre/post, sqrtL for "
     "span)"},
    {"input", K_CHOICE, F(input), inputs, "gaussian", 1, "KIND",
     "input x_0: gaussian (N(0,1) i.i.d.) or tokens (random ids through a random embedding "
     "N(0,1) plus random positions N(0,0.1^2))"},
    {"vocab", K_INT, F(vocab), NULL, "256", 1, "V", "vocabulary size for --input tokens"},
    {"seeds", K_INT, F(seeds), NULL, "4", 1, "S",
     "independent draws of weights, input and cotangent"},
    {"seed", K_SEED, F(seed), NULL, "0", 1, "N", "first seed; draw s uses seed N+s"},
    {"threads", K_INT, F(threads), NULL, NULL, 0, "N", "OpenMP threads (default: all cores)"},
    {"out", K_TEXT, F(out), NULL, "propagate.h5", 0, "FILE", "output HDF5 file"},
};
#define NSPECS (int)(sizeof specs / sizeof specs[0])
#define MAX_VALUES 64

/* the raw values given for each option (NULL: its default) */
typedef struct {
    char *text[NSPECS];
    int n[NSPECS];
    char *values[NSPECS][MAX_VALUES];
} given;

/* parses one value of option s into p; a message in err on failure */
static int set_value(const spec *s, const char *text, point *p, char *err, size_t errlen)
{
    void *field = (char *)p + s->off;
    char *end;
    errno = 0;
    switch (s->k) {
    case K_INT: {
        long v = strtol(text, &end, 10);
        if (errno || end == text || *end || v < 1 || v > INT_MAX) {
            snprintf(err, errlen, "--%s must be a positive integer, got '%s'", s->option, text);
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case K_SEED: {
        long long v = strtoll(text, &end, 10);
        if (errno || end == text || *end || v < 0) { /* stored as a signed 64-bit attribute */
            snprintf(err, errlen, "--%s must be an integer from 0 to 2^63-1, got '%s'", s->option,
                     text);
            return -1;
        }
        *(long long *)field = v;
        return 0;
    }
    case K_DOUBLE:
    case K_NONNEG: {
        double v = strtod(text, &end);
        int ok = s->k == K_DOUBLE ? v > 0 : v >= 0;
        if (errno || end == text || *end || !isfinite(v) || !ok) {
            snprintf(err, errlen, "--%s must be a %s number, got '%s'", s->option,
                     s->k == K_DOUBLE ? "positive" : "non-negative", text);
            return -1;
        }
        *(double *)field = v;
        return 0;
    }
    case K_CHOICE:
        for (int i = 0; s->choices[i]; i++)
            if (strcmp(text, s->choices[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
        snprintf(err, errlen, "unknown --%s '%s' (choose from", s->option, text);
        for (int i = 0; s->choices[i]; i++)
            snprintf(err + strlen(err), errlen - strlen(err), "%s %s", i ? "," : "", s->choices[i]);
        snprintf(err + strlen(err), errlen - strlen(err), ")");
        return -1;
    case K_TEXT:
        *(const char **)field = text;
        return 0;
    }
    return -1;
}

static error_t parse(int key, char *arg, struct argp_state *st)
{
    given *g = st->input;
    char err[256];
    if (key == ARGP_KEY_ARG)
        argp_failure(st, NS_EXIT_USAGE, 0, "unexpected argument '%s'", arg);
    if (key < 1000 || key >= 1000 + NSPECS)
        return ARGP_ERR_UNKNOWN;
    int i = key - 1000;
    const spec *s = &specs[i];
    free(g->text[i]); /* a repeated option: the last one counts */
    g->text[i] = strdup(arg);
    g->n[i] = 0;
    if (!g->text[i])
        argp_failure(st, NS_EXIT_RUNTIME, ENOMEM, "--%s", s->option);
    /* split a comma list (only where the option allows one); validate every value now */
    char *save = NULL, *tok = s->list ? strtok_r(g->text[i], ",", &save) : g->text[i];
    if (!tok)
        argp_failure(st, NS_EXIT_USAGE, 0, "--%s needs a value", s->option);
    for (; tok; tok = s->list ? strtok_r(NULL, ",", &save) : NULL) {
        point scratch;
        if (g->n[i] == MAX_VALUES)
            argp_failure(st, NS_EXIT_USAGE, 0, "--%s takes at most %d values", s->option,
                         MAX_VALUES);
        if (set_value(s, tok, &scratch, err, sizeof err) != 0)
            argp_failure(st, NS_EXIT_USAGE, 0, "%s", err);
        g->values[i][g->n[i]++] = tok;
    }
    return 0;
}

/* the model and run options of a point, or a usage message */
static int resolve(const point *p, ns_propagate_opts *po, const char **scale_init, char *err,
                   size_t errlen)
{
    const char *pname = schemes[p->scheme];
    if (p->scheme == 2 && p->span_variant == 1)
        pname = "span-wrapped";
    ns_config c = {.block = (ns_block_kind)p->block, .placement = ns_placement_find(pname),
                   .depth = p->depth, .width = p->width, .seq = p->seq, .heads = p->heads,
                   .act = (ns_act_kind)p->act, .norm = (ns_norm_kind)p->norm,
                   .norm_eps = p->norm_eps};
    *scale_init = p->scale_init ? p->scale_init : c.placement->default_scale_init;
    double hidden = round(p->mlp_ratio * p->width);
    if (ns_scale_init_parse(*scale_init, p->depth, &c.alpha) != NS_OK)
        snprintf(err, errlen, "--scale-init must be none, sqrtL, sqrt2L or a positive number, "
                 "got '%s'", *scale_init);
    else if (p->block != NS_BLOCK_MLP && p->width % p->heads != 0)
        snprintf(err, errlen, "--width %d is not divisible by --heads %d", p->width, p->heads);
    else if (p->block == NS_BLOCK_MOE && (p->top_k > 2 || p->top_k > p->experts))
        snprintf(err, errlen, "--top-k must be 1 or 2 and at most --experts (%d), got %d",
                 p->experts, p->top_k);
    else if (p->block == NS_BLOCK_MOE &&
             (round(p->expert_ratio * p->width) < 1 || round(p->expert_ratio * p->width) > 1 << 28))
        snprintf(err, errlen, "--expert-ratio %g gives an expert width of %.0f, outside 1..2^28",
                 p->expert_ratio, round(p->expert_ratio * p->width));
    else if (hidden < 1 || hidden > 1 << 28)
        snprintf(err, errlen, "--mlp-ratio %g gives a hidden width of %.0f, outside 1..2^28",
                 p->mlp_ratio, hidden);
    else if ((long long)p->seq * p->batch > 1 << 30)
        snprintf(err, errlen, "--seq times --batch is %lld tokens, more than 2^30",
                 (long long)p->seq * p->batch);
    else {
        c.hidden = (int)hidden;
        c.ntok = p->seq * p->batch;
        c.experts = p->experts, c.top_k = p->top_k, c.capacity = p->capacity;
        c.expert_hidden = (int)round(p->expert_ratio * p->width);
        *po = (ns_propagate_opts){.model = c, .seeds = p->seeds, .seed = (uint64_t)p->seed,
                                  .input = (ns_input_kind)p->input, .vocab = p->vocab};
        return 0;
    }
    return -1;
}

/* point number idx of the product (first option slowest) */
static void point_at(const given *g, long idx, point *p)
{
    char err[256];
    for (int i = NSPECS - 1; i >= 0; i--) {
        int n = g->n[i] ? g->n[i] : 1;
        const char *text = g->n[i] ? g->values[i][idx % n] : specs[i].dflt;
        idx /= n;
        if (text)
            set_value(&specs[i], text, p, err, sizeof err); /* validated while parsing */
    }
}

static int write_config(ns_h5 *h, const char *group, const point *p, const ns_config *c,
                        const char *scale_init)
{
    char attr[32];
    int st = ns_h5_group(h, group);
    for (int i = 0; st == NS_OK && i < NSPECS; i++) {
        const spec *s = &specs[i];
        const void *field = (const char *)p + s->off;
        snprintf(attr, sizeof attr, "%s", s->option);
        for (char *q = attr; *q; q++)
            *q = *q == '-' ? '_' : *q;
        if (s->k == K_CHOICE)
            st = ns_h5_attr_string(h, group, attr, s->choices[*(const int *)field]);
        else if (s->k == K_INT)
            st = ns_h5_attr_int(h, group, attr, *(const int *)field);
        else if (s->k == K_SEED)
            st = ns_h5_attr_int(h, group, attr, *(const long long *)field);
        else if (s->k == K_DOUBLE || s->k == K_NONNEG)
            st = ns_h5_attr_double(h, group, attr, *(const double *)field);
        else
            st = ns_h5_attr_string(h, group, attr, s->off == F(scale_init) ? scale_init
                                                                         : *(char *const *)field);
    }
    if (st == NS_OK && !(st = ns_h5_attr_string(h, group, "placement", c->placement->name)) &&
        !(st = ns_h5_attr_string(h, group, "block_equation", c->placement->equation)) &&
        !(st = ns_h5_attr_int(h, group, "hidden", c->hidden)))
        st = ns_h5_attr_double(h, group, "alpha", c->alpha);
    return st;
}

/* the mean-field prediction for an MLP stack, or a status: NS_ERR_INVALID when no theory covers
 * the point (Transformer blocks, for now) */
static int predict(const ns_propagate_opts *po, ns_theory *t)
{
    const ns_config *c = &po->model;
    if (c->block != NS_BLOCK_MLP || po->input != NS_INPUT_GAUSSIAN)
        return NS_ERR_INVALID;
    ns_theory_input in = {.placement = c->placement->name, .act = c->act, .norm = c->norm,
                          .depth = c->depth, .width = c->width, .hidden = c->hidden,
                          .alpha = c->alpha, .q0 = 1, .rho0 = 0};
    return ns_theory_mlp(&in, t);
}

typedef struct {
    ns_progress bar;
    long done_before, total; /* blocks of the points already run, and of the whole sweep */
} tick_ctx;

static int tick(void *ctx, long done, long total)
{
    tick_ctx *t = ctx;
    (void)total;
    ns_progress_update(&t->bar, t->done_before + done, t->total);
    return ns_cli_interrupted();
}

/* a sweep point's prefix: "" for a single run, "/runs/<i>" in a sweep */
static void prefix_of(char *out, size_t n, long npoints, long i)
{
    if (npoints == 1)
        out[0] = 0;
    else
        snprintf(out, n, "/runs/%ld", i);
}

/* /sweep: attribute `parameters` naming the options given as lists, and one dataset per such
 * option with its value at every point (numbers as float64, choices as strings) */
static int write_sweep_table(ns_h5 *h, long npoints, const given *g)
{
    const char *swept[NSPECS];
    int nswept = 0, st = NS_OK;
    const char **text = malloc((size_t)npoints * sizeof *text);
    double *num = malloc((size_t)npoints * sizeof *num);
    if (!text || !num)
        st = NS_ERR_NOMEM;
    for (int i = 0; st == NS_OK && i < NSPECS; i++) {
        const spec *s = &specs[i];
        if (g->n[i] < 2)
            continue;
        swept[nswept++] = s->option;
        long stride = 1; /* the digit of option i in the point index (first option slowest) */
        for (int j = i + 1; j < NSPECS; j++)
            stride *= g->n[j] ? g->n[j] : 1;
        for (long p = 0; p < npoints; p++) {
            text[p] = g->values[i][(p / stride) % g->n[i]];
            num[p] = strtod(text[p], NULL);
        }
        char path[64], desc[160];
        snprintf(path, sizeof path, "/sweep/%s", s->option);
        snprintf(desc, sizeof desc, "--%s at each point; point i is /runs/i", s->option);
        size_t dims[] = {(size_t)npoints};
        static const char *const label[] = {"point"};
        st = s->k == K_CHOICE || s->k == K_TEXT
                 ? ns_h5_dataset_strings(h, path, (int)npoints, text, desc)
                 : ns_h5_dataset(h, path, 1, dims, num, desc, label);
    }
    if (st == NS_OK)
        st = ns_h5_attr_strings(h, "/sweep", "parameters", swept, nswept);
    if (st == NS_OK)
        st = ns_h5_attr_int(h, "/sweep", "points", npoints);
    free(text);
    free(num);
    return st;
}

/* /sweep/fits: for every series of points that differ only in depth (three depths or more), the
 * log-log slopes against depth of the final act_ms and of the gradient ratio p_0/p_L (seed
 * means), measured and predicted by theory, with standard errors (fit.h) */
static int write_fits(ns_h5 *h, const given *g, long npoints, const double *act_L,
                      const double *ratio, const double *act_L_th, const double *ratio_th)
{
    int id = 0;
    while (strcmp(specs[id].option, "depth") != 0)
        id++;
    int nd = g->n[id];
    if (nd < 3)
        return NS_OK; /* not a depth sweep */
    long stride = 1, nseries = npoints / nd;
    for (int j = id + 1; j < NSPECS; j++)
        stride *= g->n[j] ? g->n[j] : 1;
    enum { NCOL = 9 };
    double *col = malloc((size_t)NCOL * nseries * sizeof *col), x[MAX_VALUES], y[4][MAX_VALUES];
    if (!col)
        return NS_ERR_NOMEM;
    for (long s = 0; s < nseries; s++) {
        long first = (s / stride) * stride * nd + s % stride;
        for (int k = 0; k < nd; k++) {
            long p = first + (long)k * stride;
            x[k] = strtod(g->values[id][k], NULL);
            y[0][k] = act_L[p], y[1][k] = act_L_th[p], y[2][k] = ratio[p], y[3][k] = ratio_th[p];
        }
        for (int q = 0; q < 4; q++)
            ns_fit_loglog(x, y[q], nd, &col[(2 * q) * nseries + s], &col[(2 * q + 1) * nseries + s]);
        col[(NCOL - 1) * nseries + s] = (double)first;
    }
    static const char *const names[NCOL] = {
        "act_ms_slope", "act_ms_slope_se", "act_ms_slope_theory", "act_ms_slope_theory_se",
        "grad_ratio_slope", "grad_ratio_slope_se", "grad_ratio_slope_theory",
        "grad_ratio_slope_theory_se", "first_point"};
    static const char *const descs[NCOL] = {
        "fitted slope of ln(final act_ms) against ln(depth), seed means",
        "standard error of act_ms_slope",
        "the same fit to the theory's final act_ms (NaN where no theory applies)",
        "standard error of act_ms_slope_theory",
        "fitted slope of ln(grad_ms[0] / grad_ms[L]) against ln(depth), seed means",
        "standard error of grad_ratio_slope",
        "the same fit to the theory's gradient ratio (NaN where no theory applies)",
        "standard error of grad_ratio_slope_theory",
        "the first point of the series in /runs and /sweep (the others follow in depth order)"};
    size_t dims[] = {(size_t)nseries};
    static const char *const label[] = {"series"};
    int st = ns_h5_group(h, "/sweep/fits");
    char path[64];
    for (int c = 0; st == NS_OK && c < NCOL; c++) {
        snprintf(path, sizeof path, "/sweep/fits/%s", names[c]);
        st = ns_h5_dataset(h, path, 1, dims, col + (size_t)c * nseries, descs[c], label);
    }
    free(col);
    return st;
}

int ns_cmd_propagate(int argc, char **argv)
{
    static struct argp_option options[NSPECS + 1];
    static char docs[NSPECS][320];
    for (int i = 0; i < NSPECS; i++) {
        const spec *s = &specs[i];
        snprintf(docs[i], sizeof docs[i], "%s%s%s%s%s", s->doc, s->dflt ? " (default " : "",
                 s->dflt ? s->dflt : "", s->dflt ? ")" : "", s->list ? "; a comma list sweeps" : "");
        options[i] = (struct argp_option){s->option, 1000 + i, s->arg, 0, docs[i], 0};
    }
    static const struct argp argp = {options, parse, NULL,
                                     "Run the propagate protocol at initialization and write "
                                     "per-layer metrics (and the mean-field theory where it "
                                     "applies) to an HDF5 file.", NULL, NULL, NULL};
    const char *command_line = ns_cli_command_line(argc, argv);
    given g;
    memset(&g, 0, sizeof g);
    argv[1] = "normscope propagate"; /* the name argp puts in front of its messages */
    argp_err_exit_status = NS_EXIT_USAGE;
    if (argp_parse(&argp, argc - 1, argv + 1, 0, NULL, &g) != 0)
        return NS_EXIT_USAGE;

    /* every point, checked before any work */
    long npoints = 1, total_blocks = 0;
    for (int i = 0; i < NSPECS; i++)
        npoints *= g.n[i] ? g.n[i] : 1;
    int status = NS_EXIT_OK;
    ns_h5 *h = NULL;
    double *act_L = calloc(4 * (size_t)npoints, sizeof(double));
    double *ratio = act_L + npoints, *act_L_th = ratio + npoints, *ratio_th = act_L_th + npoints;
    point p0 = {0};
    point_at(&g, 0, &p0);
    if (!act_L) {
        ns_cli_error("out of memory");
        status = NS_EXIT_RUNTIME;
        goto done;
    }
    for (long i = 0; i < npoints; i++) {
        point p = {0};
        ns_propagate_opts po;
        const char *si;
        char err[256];
        point_at(&g, i, &p);
        if (resolve(&p, &po, &si, err, sizeof err) != 0) {
            ns_cli_error("%s", err);
            status = NS_EXIT_USAGE;
            goto done;
        }
        total_blocks += 2L * p.depth * p.seeds;
    }
    if (ns_h5_create(&h, p0.out) != NS_OK) { /* before any work: a bad path costs nothing */
        ns_cli_error("%s", ns_h5_error(h));
        status = NS_EXIT_USAGE;
        goto done;
    }
    ns_cli_install_signals();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ns_set_threads(p0.threads ? p0.threads : (ncpu > 0 ? (int)ncpu : 1));
    if (!p0.threads)
        p0.threads = ncpu > 0 ? (int)ncpu : 1;

    tick_ctx tc = {.done_before = 0, .total = total_blocks};
    ns_progress_start(&tc.bar, "propagate", "blocks");
    double t0 = ns_now();
    int st = ns_h5_write_root_attrs(h, command_line);
    if (!st && npoints > 1 && !(st = ns_h5_group(h, "/runs")))
        st = ns_h5_group(h, "/sweep");
    for (long i = 0; st == NS_OK && i < npoints; i++) {
        point p = {0};
        ns_propagate_opts po;
        const char *si;
        char err[256], pre[32], path[64];
        point_at(&g, i, &p);
        p.threads = p0.threads;
        resolve(&p, &po, &si, err, sizeof err);
        ns_propagate_result r;
        ns_theory t = {0};
        prefix_of(pre, sizeof pre, npoints, i);
        if ((st = ns_propagate(&po, &r, tick, &tc)))
            break;
        tc.done_before += 2L * p.depth * p.seeds;
        int L = p.depth, S = p.seeds;
        for (int s = 0; s < S; s++) { /* the seed means of the depth-sweep quantities */
            act_L[i] += r.act_ms[(size_t)s * (L + 1) + L] / S;
            ratio[i] += r.grad_ms[(size_t)s * (L + 1)] / r.grad_ms[(size_t)s * (L + 1) + L] / S;
        }
        act_L_th[i] = ratio_th[i] = NAN;
        snprintf(path, sizeof path, "%s/config", pre);
        if (pre[0] && (st = ns_h5_group(h, pre)))
            goto point_done;
        if ((st = write_config(h, path, &p, &po.model, si)) || (st = ns_propagate_write(h, pre, &r)))
            goto point_done;
        int th = predict(&po, &t);
        if (th == NS_OK) {
            act_L_th[i] = t.act_ms[L];
            ratio_th[i] = t.grad_ms[0] / t.grad_ms[L];
            st = ns_theory_write(h, pre, &po, &t);
        } else if (th != NS_ERR_INVALID) {
            st = th; /* a theory that applies but failed numerically */
        }
    point_done:
        ns_theory_free(&t);
        ns_propagate_result_free(&r);
    }
    ns_progress_finish(&tc.bar);
    double seconds = ns_now() - t0;
    if (st == NS_OK && npoints > 1)
        st = write_sweep_table(h, npoints, &g);
    if (st == NS_OK && npoints > 1)
        st = write_fits(h, &g, npoints, act_L, ratio, act_L_th, ratio_th);
    if (st == NS_OK)
        st = ns_h5_attr_double(h, "/", "wall_seconds", seconds);
    if (st == NS_OK)
        st = ns_h5_commit(h);
    if (st != NS_OK) {
        if (st == NS_ERR_INTERRUPTED)
            ns_cli_error("interrupted; no output written to %s", p0.out);
        else if (st == NS_ERR_IO)
            ns_cli_error("%s", ns_h5_error(h));
        else
            ns_cli_error("propagate failed: %s", ns_strerror(st));
        status = NS_EXIT_RUNTIME;
        goto done;
    }
    if (npoints == 1)
        printf("wrote %s: %s %s, L=%d d=%d T=%d B=%d, %d seed%s, %.2f s\n", p0.out,
               blocks[p0.block], schemes[p0.scheme], p0.depth, p0.width, p0.seq, p0.batch,
               p0.seeds, p0.seeds == 1 ? "" : "s", seconds);
    else
        printf("wrote %s: a sweep of %ld points, %.2f s\n", p0.out, npoints, seconds);
done:
    ns_h5_free(h);
    free(act_L);
    for (int i = 0; i < NSPECS; i++)
        free(g.text[i]);
    return status;
}
