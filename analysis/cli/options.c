/* options.c: the option tables of options.h. */
#define _GNU_SOURCE
#include "options.h"
#include "cli.h"
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const ns_opt_blocks[] = {"mlp", "transformer", "moe", NULL}; /* ns_block_kind order */
static const char *const acts[] = {"gelu", "relu", "linear", NULL}; /* ns_act_kind order */
static const char *const norms[] = {"layernorm", "rmsnorm", "dyt", NULL}; /* ns_norm_kind order */

#define F(field) offsetof(ns_model_opts, field)
static const ns_opt_spec model_specs[] = {
    {"block", K_CHOICE, F(block), ns_opt_blocks, "mlp", NS_SWEEP, "KIND",
     "mlp (one MLP sublayer), transformer (causal attention, then MLP) or moe (causal "
     "attention, then a mixture of experts)", NULL, NULL},
    /* the files' attribute keeps the name it had before --placement (core/placement.c) */
    {"placement", K_PLACEMENT, F(placement), NULL, NULL, NS_SWEEP, "NAME", NULL, "scheme",
     "scheme"}, /* default: the table's first row */
    {"depth", K_INT, F(depth), NULL, "32", NS_SWEEP, "L", "number of blocks", NULL, NULL},
    {"width", K_INT, F(width), NULL, "256", NS_SWEEP, "D", "residual width d", NULL, NULL},
    {"heads", K_INT, F(heads), NULL, "4", NS_SWEEP, "H", "attention heads (d divisible by H)",
     NULL, NULL},
    {"seq", K_INT, F(seq), NULL, "64", NS_SWEEP, "T", "tokens per sequence", NULL, NULL},
    {"batch", K_INT, F(batch), NULL, "4", NS_SWEEP, "B", "sequences per batch (or per seed)",
     NULL, NULL},
    {"mlp-ratio", K_DOUBLE, F(mlp_ratio), NULL, "4", NS_SWEEP, "R",
     "MLP hidden width = round(R d)", NULL, NULL},
    {"experts", K_INT, F(experts), NULL, "8", NS_SWEEP, "E", "experts of a moe block", NULL, NULL},
    {"expert-ratio", K_DOUBLE, F(expert_ratio), NULL, "4", NS_SWEEP, "R",
     "hidden width of each expert = round(R d)", NULL, NULL},
    {"top-k", K_INT, F(top_k), NULL, "2", NS_SWEEP, "K",
     "experts per token: 1 (gate = router probability, Switch) or 2 (gates renormalized)",
     NULL, NULL},
    {"capacity", K_NONNEG, F(capacity), NULL, "0", NS_SWEEP, "C",
     "capacity factor: each expert takes at most ceil(C k tokens / E) token slots, the rest are "
     "dropped (0: no limit)", NULL, NULL},
    {"act", K_CHOICE, F(act), acts, "gelu", NS_SWEEP, "PHI",
     "activation: gelu (tanh form), relu, linear", NULL, NULL},
    {"norm", K_CHOICE, F(norm), norms, "layernorm", NS_SWEEP, "N",
     "norm: layernorm, rmsnorm or dyt (g tanh(a x) + b, a learnable scalar a per norm; placements "
     "with norms only)", NULL, NULL},
    {"norm-eps", K_DOUBLE, F(norm_eps), NULL, "1e-5", NS_SWEEP, "EPS", "norm epsilon", NULL, NULL},
    {"dyt-init", K_DOUBLE, F(dyt_init), NULL, "0.5", NS_SWEEP, "A",
     "the start of DyT's scalar a in every norm (--norm dyt)", NULL, NULL},
    {"rezero-init", K_REAL, F(rezero_init), NULL, "0", NS_SWEEP, "W",
     "the start of the branch gates of a gated placement (ReZero)", NULL, NULL},
    {"post-fraction", K_NONNEG, F(post_fraction), NULL, "0.25", NS_SWEEP, "F",
     "--placement mixln: blocks l <= floor(F L) are PostNorm, the rest PreNorm (0 <= F <= 1)",
     NULL, NULL},
    {"scale-init", K_TEXT, F(scale_init), NULL, NULL, NS_SWEEP, "S",
     "Scale Init alpha: none (1), sqrtL (1/sqrt(L)), sqrt2L (1/sqrt(2L)) or a number, applied "
     "where the placement puts it (default: the placement's; see normscope placements)",
     NULL, NULL},
};
#define NMODEL (int)(sizeof model_specs / sizeof model_specs[0])

/* a per-block schedule's text: its names and counts here; the depth and block kind in
 * ns_model_opts_resolve */
static int schedule_value(const ns_opt_spec *s, const char *text, ns_opt_placement *v, char *err,
                          size_t errlen)
{
    ns_schedule sched;
    int entry;
    ns_schedule_problem pr = ns_schedule_parse(text, &sched, &entry);
    const char *why = pr == NS_SCHEDULE_SYNTAX ? "is not NAME or NAME*COUNT"
                      : pr == NS_SCHEDULE_UNKNOWN ? "names no placement (normscope placements)"
                      : pr == NS_SCHEDULE_COUNT ? "has a count below 1"
                      : pr == NS_SCHEDULE_FILL ? "has no count, which only the last entry may omit"
                      : pr == NS_SCHEDULE_NESTED ? "is itself a schedule"
                      : pr == NS_SCHEDULE_TOO_MANY ? "is one too many"
                                                   : NULL;
    if (why) {
        snprintf(err, errlen, "--%s schedule '%s': entry %d %s", s->option, text, entry + 1, why);
        return -1;
    }
    *v = (ns_opt_placement){.row = -1, .schedule = text};
    return 0;
}

int ns_opt_set_value(const ns_opt_spec *s, const char *text, void *record, char *err,
                     size_t errlen)
{
    void *field = (char *)record + s->off;
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
    case K_THREADS: {
        long v = strtol(text, &end, 10);
        if (errno || end == text || *end || v < 1 || v > NS_OPT_MAX_THREADS) {
            snprintf(err, errlen, "--%s must be an integer from 1 to %d, got '%s'", s->option,
                     NS_OPT_MAX_THREADS, text);
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
    case K_NONNEG:
    case K_REAL: {
        double v = strtod(text, &end);
        int ok = s->k == K_DOUBLE ? v > 0 : s->k == K_NONNEG ? v >= 0 : 1;
        if (errno || end == text || *end || !isfinite(v) || !ok) {
            snprintf(err, errlen, "--%s must be a %s number, got '%s'", s->option,
                     s->k == K_DOUBLE ? "positive" : s->k == K_NONNEG ? "non-negative" : "finite",
                     text);
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
    case K_PLACEMENT: {
        ns_opt_placement *v = field;
        if (ns_schedule_is(text))
            return schedule_value(s, text, v, err, errlen);
        const ns_placement *p = ns_placement_find(text);
        if (p) {
            *v = (ns_opt_placement){.row = ns_placement_index(p)};
            return 0;
        }
        snprintf(err, errlen, "unknown --%s '%s' (choose from", s->option, text);
        for (int i = 0; (p = ns_placement_at(i)); i++)
            snprintf(err + strlen(err), errlen - strlen(err), "%s %s", i ? "," : "", p->name);
        snprintf(err + strlen(err), errlen - strlen(err), ")");
        return -1;
    }
    case K_TEXT:
        *(const char **)field = text;
        return 0;
    case K_FLAG:
        *(int *)field = text[0] == '1';
        return 0;
    }
    return -1;
}

/* a comma list is taken apart where it means something: a sweep in a command that sweeps, or a
 * set of values */
static int takes_list(const ns_opt_given *g, const ns_opt_spec *s)
{
    return s->list == NS_SET || (s->list == NS_SWEEP && g->cmd->sweeps);
}

/* one line "COMMAND: message" on stderr, then exit with status (argp_failure, which writes to
 * the state's error stream: parse() keeps it NULL while argp could print its hint) */
static void failure(struct argp_state *st, int status, int errnum, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st->err_stream = stderr;
    argp_failure(st, status, errnum, "%s", msg);
}

/* how many values option i contributes to the points: a set counts once */
static int nvalues(const ns_opt_given *g, int i)
{
    return g->n[i] && g->specs[i].list != NS_SET ? g->n[i] : 1;
}

/* the number of points of the product of the lists (NS_SWEEP options in a command that sweeps),
 * or -1 above NS_OPT_MAX_POINTS (where a product of 64-bit integers could also overflow) */
static long count_points(const ns_opt_given *g)
{
    long n = 1;
    for (int i = 0; i < g->nspecs; i++) {
        long k = nvalues(g, i);
        if (n > NS_OPT_MAX_POINTS / k)
            return -1;
        n *= k;
    }
    return n;
}

static error_t parse(int key, char *arg, struct argp_state *st)
{
    ns_opt_given *g = st->input;
    char err[256];
    if (key == ARGP_KEY_INIT) {
        /* argp follows an unknown option's message with a "Try ... --help" hint on its error
         * stream; at a terminal that helps, in a log it is a second line: no stream, no hint
         * (getopt still prints the message itself; argp then returns EINVAL, not exit) */
        if (!isatty(STDERR_FILENO))
            st->err_stream = NULL;
        return 0;
    }
    if (key == ARGP_KEY_END) {
        if (count_points(g) < 0)
            failure(st, NS_EXIT_USAGE, 0, "the sweep has more than %ld points (the product of "
                    "the lengths of the comma lists)", (long)NS_OPT_MAX_POINTS);
        return 0;
    }
    if (key == ARGP_KEY_ARG) {
        if (!g->cmd->args_doc)
            failure(st, NS_EXIT_USAGE, 0, "unexpected argument '%s'", arg);
        g->args[g->nargs++] = arg;
        return 0;
    }
    if (key < 1000 || key >= 1000 + g->nspecs)
        return ARGP_ERR_UNKNOWN;
    int i = key - 1000;
    const ns_opt_spec *s = &g->specs[i];
    if (s->k == K_FLAG)
        arg = "1";
    /* a value with a '*' is one per-block schedule, its commas included */
    int schedule = s->k == K_PLACEMENT && strchr(arg, '*');
    if (s->list == NS_SWEEP && !g->cmd->sweeps && strchr(arg, ',') && !schedule)
        failure(st, NS_EXIT_USAGE, 0, "--%s takes one value in %s (comma lists sweep in "
                "normscope propagate), got '%s'", s->option, g->cmd->name, arg);
    free(g->text[i]); /* a repeated option: the last one counts */
    g->text[i] = strdup(arg);
    g->n[i] = 0;
    if (!g->text[i])
        failure(st, NS_EXIT_RUNTIME, ENOMEM, "--%s", s->option);
    /* split a comma list (only where the option takes one) at every comma, so that an empty
     * value ("4,,8", "4,") is refused, not skipped; validate every value now */
    int list = takes_list(g, s) && !schedule;
    for (char *tok = g->text[i], *comma; tok; tok = comma ? comma + 1 : NULL) {
        comma = list ? strchr(tok, ',') : NULL;
        if (comma)
            *comma = 0;
        if (list && !*tok)
            failure(st, NS_EXIT_USAGE, 0, "--%s has an empty value in the list '%s'", s->option,
                    arg);
        union {
            char bytes[NS_OPT_MAX_RECORD];
            long long align_ll;
            double align_d;
            void *align_p;
        } scratch; /* a throwaway record: validation only */
        if (g->n[i] == NS_OPT_MAX_VALUES)
            failure(st, NS_EXIT_USAGE, 0, "--%s takes at most %d values", s->option,
                    NS_OPT_MAX_VALUES);
        if (ns_opt_set_value(s, tok, scratch.bytes, err, sizeof err) != 0)
            failure(st, NS_EXIT_USAGE, 0, "%s", err);
        g->values[i][g->n[i]++] = tok;
    }
    return 0;
}

/* the help of --placement, from the table: names and titles (the equations would not fit
 * argp's line for every row; normscope placements prints them) */
static void placement_doc(char *out, size_t n)
{
    const ns_placement *p;
    size_t k = (size_t)snprintf(out, n, "where the norms sit:");
    for (int i = 0; k < n && (p = ns_placement_at(i)); i++)
        k += (size_t)snprintf(out + k, n - k, "%s %s (%s)", i ? "," : "", p->name, p->title);
    if (k < n)
        snprintf(out + k, n - k, "; or a schedule of rows per block, 'post*8,pre' (counts; the "
                 "last entry without one fills the rest); normscope placements shows each row's "
                 "equations and paper");
}

int ns_opt_parse(ns_opt_given *g, const ns_command *cmd, int argc, char **argv)
{
    static struct argp_option options[2 * NS_OPT_MAX_SPECS + 1];
    static char docs[NS_OPT_MAX_SPECS][1024];
    memset(g, 0, sizeof *g);
    g->cmd = cmd;
    for (int i = 0; cmd->model && i < NMODEL; i++)
        g->specs[g->nspecs++] = model_specs[i];
    for (int i = 0; i < cmd->nown && g->nspecs < NS_OPT_MAX_SPECS; i++)
        g->specs[g->nspecs++] = cmd->own[i];
    for (int i = 0; i < g->nspecs; i++)
        if (g->specs[i].k == K_PLACEMENT && !g->specs[i].dflt)
            g->specs[i].dflt = ns_placement_at(0)->name;
    for (int d = 0; cmd->defaults && cmd->defaults[d]; d++) {
        size_t len = strcspn(cmd->defaults[d], "=");
        for (int i = 0; i < g->nspecs; i++)
            if (strlen(g->specs[i].option) == len &&
                strncmp(g->specs[i].option, cmd->defaults[d], len) == 0)
                g->specs[i].dflt = cmd->defaults[d] + len + 1;
    }
    int nopt = 0;
    for (int i = 0; i < g->nspecs; i++) {
        const ns_opt_spec *s = &g->specs[i];
        char doc[800];
        if (s->doc)
            snprintf(doc, sizeof doc, "%s", s->doc);
        else
            placement_doc(doc, sizeof doc);
        snprintf(docs[i], sizeof docs[i], "%s%s%s%s%s", doc, s->dflt ? " (default " : "",
                 s->dflt ? s->dflt : "", s->dflt ? ")" : "",
                 s->list == NS_SWEEP && cmd->sweeps ? "; a comma list sweeps" : "");
        options[nopt++] = (struct argp_option){s->option, 1000 + i, s->arg, 0, docs[i], 0};
        if (s->alias)
            options[nopt++] = (struct argp_option){s->alias, 1000 + i, s->arg, OPTION_ALIAS, 0, 0};
    }
    options[nopt] = (struct argp_option){0};
    if (cmd->args_doc && !(g->args = calloc((size_t)argc, sizeof *g->args)))
        return ENOMEM;
    const struct argp argp = {options, parse, cmd->args_doc, cmd->doc, NULL, NULL, NULL};
    argv[1] = (char *)cmd->name; /* the name argp puts in front of its messages */
    argp_err_exit_status = NS_EXIT_USAGE;
    return argp_parse(&argp, argc - 1, argv + 1, 0, NULL, g);
}

long ns_opt_npoints(const ns_opt_given *g) { return count_points(g); }

long ns_opt_stride(const ns_opt_given *g, int i)
{
    long stride = 1;
    for (int j = i + 1; j < g->nspecs; j++)
        stride *= nvalues(g, j);
    return stride;
}

int ns_opt_find(const ns_opt_given *g, const char *option)
{
    for (int i = 0; i < g->nspecs; i++)
        if (strcmp(g->specs[i].option, option) == 0)
            return i;
    return -1;
}

void ns_opt_point_at(const ns_opt_given *g, long idx, void *record)
{
    char err[256];
    for (int i = g->nspecs - 1; i >= 0; i--) {
        int n = nvalues(g, i);
        const char *text = g->n[i] ? g->values[i][idx % n] : g->specs[i].dflt;
        idx /= n;
        if (text)
            ns_opt_set_value(&g->specs[i], text, record, err, sizeof err); /* validated */
    }
}

int ns_opt_describe(const ns_opt_given *g, const char *skip, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "normscope=%s\n", ns_version());
    for (int i = 0; k < n && i < g->nspecs; i++) {
        const ns_opt_spec *s = &g->specs[i];
        if (skip && strcmp(s->option, skip) == 0)
            continue;
        k += (size_t)snprintf(buf + k, n - k, "%s=", s->option);
        for (int j = 0; k < n && j < (g->n[i] ? g->n[i] : 1); j++)
            k += (size_t)snprintf(buf + k, n - k, "%s%s", j ? "," : "",
                                  g->n[i] ? g->values[i][j] : s->dflt ? s->dflt : "");
        if (k < n)
            k += (size_t)snprintf(buf + k, n - k, "\n");
    }
    return k < n ? 0 : -1;
}

void ns_opt_free(ns_opt_given *g)
{
    for (int i = 0; i < g->nspecs; i++)
        free(g->text[i]);
    free(g->args);
}

void ns_opt_attr_name(const ns_opt_spec *s, char *out, size_t n)
{
    snprintf(out, n, "%s", s->attr ? s->attr : s->option);
    for (char *q = out; *q; q++)
        *q = *q == '-' ? '_' : *q;
}

const char *ns_opt_placement_text(const ns_opt_placement *v)
{
    return v->row >= 0 ? ns_placement_at(v->row)->name : v->schedule;
}

void ns_opt_value_text(const ns_opt_spec *s, const void *record, char *out, size_t n)
{
    const void *f = (const char *)record + s->off;
    if (s->k == K_CHOICE)
        snprintf(out, n, "%s", s->choices[*(const int *)f]);
    else if (s->k == K_PLACEMENT)
        snprintf(out, n, "%s", ns_opt_placement_text(f));
    else if (s->k == K_INT || s->k == K_THREADS || s->k == K_FLAG)
        snprintf(out, n, "%d", *(const int *)f);
    else if (s->k == K_SEED)
        snprintf(out, n, "%lld", *(const long long *)f);
    else if (s->k == K_TEXT)
        snprintf(out, n, "%s", *(char *const *)f ? *(char *const *)f : "");
    else
        snprintf(out, n, "%.17g", *(const double *)f);
}

int ns_opt_write_config(ns_h5 *h, const char *group, const ns_opt_given *g, const void *record,
                        const char *resolved_scale_init)
{
    char attr[40];
    int st = ns_h5_group(h, group);
    for (int i = 0; st == NS_OK && i < g->nspecs; i++) {
        const ns_opt_spec *s = &g->specs[i];
        const void *field = (const char *)record + s->off;
        ns_opt_attr_name(s, attr, sizeof attr);
        if (s->k == K_PLACEMENT) {
            const ns_opt_placement *v = field;
            st = ns_h5_attr_string(h, group, attr, v->row >= 0
                                                       ? ns_placement_at(v->row)->config_scheme
                                                       : v->schedule);
        }
        else if (s->k == K_CHOICE)
            st = ns_h5_attr_string(h, group, attr, s->choices[*(const int *)field]);
        else if (s->k == K_INT || s->k == K_THREADS || s->k == K_FLAG)
            st = ns_h5_attr_int(h, group, attr, *(const int *)field);
        else if (s->k == K_SEED)
            st = ns_h5_attr_int(h, group, attr, *(const long long *)field);
        else if (s->k == K_DOUBLE || s->k == K_NONNEG || s->k == K_REAL)
            st = ns_h5_attr_double(h, group, attr, *(const double *)field);
        else {
            const char *v = *(char *const *)field;
            if (!v && strcmp(s->option, "scale-init") == 0)
                v = resolved_scale_init;
            st = ns_h5_attr_string(h, group, attr, v ? v : "");
        }
    }
    return st;
}

/* a usage message for a --placement the depth or block kind refuses, into err; 0 if none */
static int placement_problem(const ns_model_opts *o, const ns_schedule *rows, char *err,
                             size_t errlen)
{
    int entry;
    ns_schedule_problem pr = ns_schedule_check(rows, o->depth, (ns_block_kind)o->block, &entry);
    const ns_placement *bad = rows->row[entry];
    char sched[160];
    snprintf(sched, sizeof sched, "--placement schedule '%s'", ns_opt_placement_text(&o->placement));
    if (pr == NS_SCHEDULE_BLOCK && o->placement.row >= 0)
        snprintf(err, errlen, "--placement %s needs blocks of two sublayers (--block transformer "
                 "or moe)", bad->name);
    else if (pr == NS_SCHEDULE_BLOCK)
        snprintf(err, errlen, "%s: entry %d (%s) needs blocks of two sublayers (--block "
                 "transformer or moe)", sched, entry + 1, bad->name);
    else if (pr == NS_SCHEDULE_SHAPE && bad->profiled_skip)
        snprintf(err, errlen, "%s: entry %d (%s) profiles its skip weights over the whole "
                 "stack and cannot be part of a schedule (use --placement %s alone)", sched,
                 entry + 1, bad->name, bad->name);
    else if (pr == NS_SCHEDULE_SHAPE)
        snprintf(err, errlen, "%s: entry %d (%s) cannot share one layout with %s (a schedule's "
                 "rows have no span norm or dual stream, and one Scale Init site and init rule)",
                 sched, entry + 1, bad->name, rows->row[entry ? 0 : 1]->name);
    else if (pr == NS_SCHEDULE_EXCEEDS)
        snprintf(err, errlen, "%s: the counts up to entry %d exceed --depth %d%s", sched,
                 entry + 1, o->depth, rows->count[entry] ? "" : " (the last entry gets no block)");
    else if (pr == NS_SCHEDULE_SHORT)
        snprintf(err, errlen, "%s: the counts cover fewer than --depth %d blocks (leave the last "
                 "entry's count out to fill the rest)", sched, o->depth);
    else if (pr != NS_SCHEDULE_OK)
        snprintf(err, errlen, "%s is not a schedule", sched);
    else
        for (int i = 0; i < rows->n; i++)
            if (o->norm == NS_NORM_DYT && !ns_placement_has_norms(rows->row[i])) {
                snprintf(err, errlen, "--norm dyt needs a placement with norms; --placement %s "
                         "has none", rows->row[i]->name);
                return -1;
            }
    return pr == NS_SCHEDULE_OK ? 0 : -1;
}

int ns_model_opts_resolve(const ns_model_opts *o, ns_config *c, const char **scale_init,
                          char *err, size_t errlen)
{
    const ns_opt_placement *pl = &o->placement;
    *c = (ns_config){.block = (ns_block_kind)o->block,
                     .placement = pl->row >= 0 ? ns_placement_at(pl->row) : NULL,
                     .post_fraction = o->post_fraction,
                     .depth = o->depth, .width = o->width, .seq = o->seq, .heads = o->heads,
                     .act = (ns_act_kind)o->act, .norm = (ns_norm_kind)o->norm,
                     .norm_eps = o->norm_eps, .experts = o->experts, .top_k = o->top_k,
                     .capacity = o->capacity, .gate_init = o->rezero_init,
                     .dyt_init = o->dyt_init};
    int entry;
    if (pl->row < 0)
        ns_schedule_parse(pl->schedule, &c->schedule, &entry); /* validated by the parse */
    ns_schedule rows;
    ns_schedule_resolve(c->placement, &c->schedule, c->post_fraction, o->depth, &rows);
    /* a schedule's rows share their Scale Init site (ns_schedule_check): the first one's default */
    *scale_init = o->scale_init ? o->scale_init
                  : c->placement ? c->placement->default_scale_init
                                 : rows.row[0]->default_scale_init;
    double hidden = round(o->mlp_ratio * o->width), ehidden = round(o->expert_ratio * o->width);
    if (ns_scale_init_parse(*scale_init, o->depth, &c->alpha) != NS_OK)
        snprintf(err, errlen, "--scale-init must be none, sqrtL, sqrt2L or a positive number, "
                 "got '%s'", *scale_init);
    else if (o->post_fraction > 1)
        snprintf(err, errlen, "--post-fraction must be from 0 to 1, got %g", o->post_fraction);
    else if (placement_problem(o, &rows, err, errlen) != 0)
        ;
    else if (o->block != NS_BLOCK_MLP && o->width % o->heads != 0)
        snprintf(err, errlen, "--width %d is not divisible by --heads %d", o->width, o->heads);
    else if (o->block == NS_BLOCK_MOE && (o->top_k > 2 || o->top_k > o->experts))
        snprintf(err, errlen, "--top-k must be 1 or 2 and at most --experts (%d), got %d",
                 o->experts, o->top_k);
    else if (o->block == NS_BLOCK_MOE && (ehidden < 1 || ehidden > 1 << 28))
        snprintf(err, errlen, "--expert-ratio %g gives an expert width of %.0f, outside 1..2^28",
                 o->expert_ratio, ehidden);
    else if (hidden < 1 || hidden > 1 << 28)
        snprintf(err, errlen, "--mlp-ratio %g gives a hidden width of %.0f, outside 1..2^28",
                 o->mlp_ratio, hidden);
    else if ((long long)o->seq * o->batch > 1 << 30)
        snprintf(err, errlen, "--seq times --batch is %lld tokens, more than 2^30",
                 (long long)o->seq * o->batch);
    else {
        c->hidden = (int)hidden;
        c->expert_hidden = (int)ehidden;
        c->ntok = o->seq * o->batch;
        return 0;
    }
    return -1;
}

int ns_model_write_derived(ns_h5 *h, const char *prefix, const ns_config *c)
{
    int st, L = c->depth;
    char group[64], text[256];
    snprintf(group, sizeof group, "%s/config", prefix);
    ns_schedule rows;
    ns_schedule_resolve(c->placement, &c->schedule, c->post_fraction, L, &rows);
    const ns_placement *p = c->placement ? c->placement : rows.row[0];
    if (c->placement)
        snprintf(text, sizeof text, "%s", c->placement->name);
    else
        ns_schedule_text(&c->schedule, text, sizeof text);
    const char *equation = !c->placement ? "a schedule: block l as the row block_placement[l-1]"
                           : c->block == NS_BLOCK_MLP ? p->equation : p->equation2;
    if ((st = ns_h5_attr_string(h, group, "placement", text)) ||
        (st = ns_h5_attr_string(h, group, "span_variant", p->config_span_variant)) ||
        (st = ns_h5_attr_string(h, group, "block_equation", equation)) ||
        (st = ns_h5_attr_int(h, group, "hidden", c->hidden)) ||
        (st = ns_h5_attr_double(h, group, "alpha", c->alpha)))
        return st;
    const char **names = malloc((size_t)L * sizeof *names);
    if (!names)
        return NS_ERR_NOMEM;
    for (int l = 1; l <= L; l++)
        names[l - 1] = ns_schedule_row(&rows, l, L)->name;
    st = ns_h5_entry_strings(h, prefix, NS_H5S_CONFIG_BLOCK_PLACEMENT, L, names);
    free(names);
    return st;
}
