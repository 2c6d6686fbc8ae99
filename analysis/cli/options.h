/* options.h: the one option system of the normscope program. Each command declares its options
 * once, as a table (ns_command); the table drives argp, strict parsing into one-line errors,
 * comma lists (propagate's sweeps, plot's formats), the help text and the /config attributes.
 * The model options are shared by every command that builds a model: a command's record starts
 * with ns_model_opts, so the model table's offsets fit it. */
#ifndef NS_OPTIONS_H
#define NS_OPTIONS_H
#include "h5out.h"
#include "normscope.h"
#include <stddef.h>

/* K_DOUBLE: a positive number, K_NONNEG: at least 0, K_REAL: any finite number. K_FLAG: an
 * option without a value that sets an int to 1. K_PLACEMENT: a row of the placement table, by
 * name, or a per-block schedule (a value with a '*', commas included: "post*8,pre"), into an
 * ns_opt_placement. K_THREADS: an int from 1 to NS_OPT_MAX_THREADS. */
typedef enum {
    K_INT, K_DOUBLE, K_NONNEG, K_REAL, K_SEED, K_CHOICE, K_PLACEMENT, K_TEXT, K_FLAG, K_THREADS
} ns_opt_kind;

/* what a comma list means for an option */
enum {
    NS_ONE = 0,   /* one value */
    NS_SWEEP = 1, /* in a command that sweeps (propagate), every combination runs; elsewhere one */
    NS_SET = 2    /* several values that the command takes together (plot --format) */
};

typedef struct {
    const char *option;         /* --option */
    ns_opt_kind k;
    size_t off;                 /* of the field in the command's record */
    const char *const *choices; /* K_CHOICE, NULL-terminated */
    const char *dflt;           /* as text; NULL: the doc says what happens */
    int list;                   /* NS_ONE, NS_SWEEP or NS_SET */
    const char *arg, *doc;      /* NULL doc: written from the placement table (K_PLACEMENT) */
    const char *alias;          /* another name that --option answers to (NULL: none) */
    const char *attr;           /* its /config attribute and /sweep dataset (NULL: the option
                                 * with '-' as '_') */
} ns_opt_spec;

#define NS_OPT_MAX_SPECS 64
#define NS_OPT_MAX_VALUES 64
#define NS_OPT_MAX_THREADS 1024 /* --threads: far above any machine's cores, far below what
                                 * makes the OpenMP runtime fail to start its threads */
#define NS_OPT_MAX_POINTS (1L << 20) /* points of a sweep: each is a whole run */
#define NS_OPT_MAX_RECORD 1024 /* bytes: every command's record is smaller (checked where built) */

/* a command of the program, as its options see it */
typedef struct {
    const char *name;        /* "normscope propagate" */
    const char *args_doc;    /* its arguments, e.g. "FILE.h5 [FILE.h5 ...]"; NULL: none */
    const char *doc;         /* one paragraph for --help */
    int model;               /* 1: the model options come first */
    int sweeps;              /* 1: NS_SWEEP options take comma lists */
    const ns_opt_spec *own;  /* then its own */
    int nown;
    const char *const *defaults; /* "option=value" replacing a default (NULL-terminated; NULL) */
} ns_command;

/* what the command line gave: per option the values (n = 0: its default), and the arguments */
typedef struct {
    const ns_command *cmd;
    ns_opt_spec specs[NS_OPT_MAX_SPECS];
    int nspecs;
    char *text[NS_OPT_MAX_SPECS];
    int n[NS_OPT_MAX_SPECS];
    char *values[NS_OPT_MAX_SPECS][NS_OPT_MAX_VALUES];
    char **args;
    int nargs;
} ns_opt_given;

/* --placement: a row of the table, or (row -1) a schedule's text, checked against the depth
 * and block kind by ns_model_opts_resolve */
typedef struct {
    int row;
    const char *schedule;
} ns_opt_placement;

/* a --placement value as given: the row's name or the schedule's text */
const char *ns_opt_placement_text(const ns_opt_placement *v);

/* the options every model shares */
typedef struct {
    ns_opt_placement placement;
    int block, depth, width, heads, seq, batch, act, norm, experts, top_k;
    double mlp_ratio, norm_eps, expert_ratio, capacity, rezero_init, dyt_init, post_fraction;
    const char *scale_init; /* NULL: the placement's default */
} ns_model_opts;

extern const char *const ns_opt_blocks[];

/* parses argv (argv[1] is the command) for cmd into g (zeroed here); on a bad value or option
 * one line on stderr and exit 2 (argp), --help exits 0; returns 0, or nonzero on an argp error
 * (then the caller returns 2). Free with ns_opt_free. */
int ns_opt_parse(ns_opt_given *g, const ns_command *cmd, int argc, char **argv);
void ns_opt_free(ns_opt_given *g);
/* parses one value into the record; a message in err on failure */
int ns_opt_set_value(const ns_opt_spec *s, const char *text, void *record, char *err,
                     size_t errlen);
/* the number of points of the product of the NS_SWEEP lists (at most NS_OPT_MAX_POINTS: the
 * parse refuses more), and point idx (first option slowest) written into record; NS_SET options
 * get their first value */
long ns_opt_npoints(const ns_opt_given *g);
void ns_opt_point_at(const ns_opt_given *g, long idx, void *record);
/* the stride of option i in the point index, and its index in the table (-1: none) */
long ns_opt_stride(const ns_opt_given *g, int i);
int ns_opt_find(const ns_opt_given *g, const char *option);
/* the attribute name of spec s ("scale_init" for --scale-init) */
void ns_opt_attr_name(const ns_opt_spec *s, char *out, size_t n);
/* what the command line asks for, as text: the version, then one line "option=value,value" per
 * option (its default when not given) except the option named skip; nonzero if n is too small.
 * Equal texts mean the same points with the same values. */
int ns_opt_describe(const ns_opt_given *g, const char *skip, char *buf, size_t n);
/* a record's value of spec s as text (a choice's name, a number in full precision) */
void ns_opt_value_text(const ns_opt_spec *s, const void *record, char *out, size_t n);
/* one attribute per option on group (created), from the record; resolved_scale_init replaces a
 * NULL --scale-init */
int ns_opt_write_config(ns_h5 *h, const char *group, const ns_opt_given *g, const void *record,
                        const char *resolved_scale_init);

/* the model configuration of a record, or a usage message in err (a value that parses but does
 * not fit the others: width not divisible by heads, top-k above experts, ...) */
int ns_model_opts_resolve(const ns_model_opts *o, ns_config *c, const char **scale_init,
                          char *err, size_t errlen);
/* on <prefix>/config, beside the options: placement (a row's name or the schedule), its
 * legacy span_variant, block equation, hidden width and alpha; and the dataset
 * config/block_placement, every block's row */
int ns_model_write_derived(ns_h5 *h, const char *prefix, const ns_config *c);

#endif
