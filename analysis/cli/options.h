/* options.h: command-line options as a table. One table per command drives argp, strict
 * parsing into one-line errors, comma-list sweeps and the /config attributes, so a command
 * declares each option once. The model options are shared by every command that builds a model:
 * a command's record starts with ns_model_opts, so the model table's offsets fit it. */
#ifndef NS_OPTIONS_H
#define NS_OPTIONS_H
#include "h5out.h"
#include "normscope.h"
#include <argp.h>
#include <stddef.h>

/* K_FLAG: an option without a value that sets an int to 1 */
typedef enum { K_INT, K_DOUBLE, K_NONNEG, K_SEED, K_CHOICE, K_TEXT, K_FLAG } ns_opt_kind;

typedef struct {
    const char *option;         /* --option; the /config attribute is the same with '_' */
    ns_opt_kind k;
    size_t off;                 /* of the field in the command's record */
    const char *const *choices; /* K_CHOICE, NULL-terminated */
    const char *dflt;           /* as text; NULL: the doc says what happens */
    int list;                   /* may take a comma list (a sweep) */
    const char *arg, *doc;
} ns_opt_spec;

#define NS_OPT_MAX_SPECS 64
#define NS_OPT_MAX_VALUES 64
#define NS_OPT_MAX_RECORD 1024 /* bytes: every command's record is smaller (checked where built) */

/* what the command line gave: per option the values (n = 0: its default) */
typedef struct {
    const ns_opt_spec *specs;
    int nspecs;
    char *text[NS_OPT_MAX_SPECS];
    int n[NS_OPT_MAX_SPECS];
    char *values[NS_OPT_MAX_SPECS][NS_OPT_MAX_VALUES];
} ns_opt_given;

/* the options every model shares */
typedef struct {
    int block, scheme, span_variant, depth, width, heads, seq, batch, act, norm, experts, top_k;
    double mlp_ratio, norm_eps, expert_ratio, capacity;
    const char *scale_init; /* NULL: the placement's default */
} ns_model_opts;

extern const char *const ns_opt_blocks[], *const ns_opt_schemes[];
/* a command's table: the model options, then its own n; returns the count */
int ns_opt_table(ns_opt_spec *out, const ns_opt_spec *own, int n);
extern const ns_opt_spec ns_model_specs[];
extern const int ns_model_nspecs;

/* parses one value into the record; a message in err on failure */
int ns_opt_set_value(const ns_opt_spec *s, const char *text, void *record, char *err,
                     size_t errlen);
/* parses argv (argv[1] is the command) with the options of g->specs; exits 2 with one line on a
 * bad value (argp), returns 0 or an argp error */
int ns_opt_parse_argv(ns_opt_given *g, const char *program, const char *doc, int argc,
                      char **argv);
/* the number of points of the product of the lists, and point idx (first option slowest) */
long ns_opt_npoints(const ns_opt_given *g);
void ns_opt_point_at(const ns_opt_given *g, long idx, void *record);
/* the stride of option i in the point index, and its index in the table (-1: none) */
long ns_opt_stride(const ns_opt_given *g, int i);
int ns_opt_find(const ns_opt_given *g, const char *option);
void ns_opt_free(ns_opt_given *g);
/* what the command line asks for, as text: the version, then one line "option=value,value" per
 * option (its default when not given) except the option named skip; nonzero if n is too small.
 * Equal texts mean the same points with the same values. */
int ns_opt_describe(const ns_opt_given *g, const char *skip, char *buf, size_t n);
/* one attribute per option on group (created), from the record; resolved_scale_init replaces a
 * NULL --scale-init */
int ns_opt_write_config(ns_h5 *h, const char *group, const ns_opt_given *g, const void *record,
                        const char *resolved_scale_init);

/* the model configuration of a record, or a usage message in err (a value that parses but does
 * not fit the others: width not divisible by heads, top-k above experts, ...) */
int ns_model_opts_resolve(const ns_model_opts *o, ns_config *c, const char **scale_init,
                          char *err, size_t errlen);
/* placement, block equation, hidden width and alpha, beside the options */
int ns_model_write_derived(ns_h5 *h, const char *group, const ns_config *c);

#endif
