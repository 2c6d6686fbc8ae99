/* plot_file.h: one normscope run (schema normscope/1) read into memory for plotting.
 *
 * A run is a single-run file (/config, /propagate, /theory at the root), one point of a sweep
 * file (the same layout under /runs/<i>), or a training file (/config, /train; it may still be
 * being written, and is then read as a SWMR reader). Everything a figure may need is read up front, so that
 * a bad file is reported before any figure is written. Datasets come from a catalog of paths
 * (plot_file.c) of the schema table (analysis/h5/h5schema.c): each is optional, and when present it
 * must have the table's symbolic shape with the sizes of /config (seeds S, depth L, heads H,
 * experts E). Adding a dataset for a new figure is one enum value here and one catalog row (and,
 * if nothing writes it yet, a row of the schema table). */
#ifndef NS_PLOT_FILE_H
#define NS_PLOT_FILE_H
#include <stddef.h>

typedef enum {
    /* measured, /propagate */
    /* the shapes are the schema table's: [S, L+1] per layer, [S, L] per block (entry l-1 for
     * block l), [S, L, H] per head, [S, L, E] per expert; theory [L+1] or [L] */
    NS_DS_ACT_MS,
    NS_DS_GRAD_MS,
    NS_DS_COS_TOKENS,
    NS_DS_EFF_RANK,
    NS_DS_COS_LAYER,
    NS_DS_ATTN_ENTROPY,
    NS_DS_ATTN_ENTROPY_HEAD,
    NS_DS_EXPERT_LOAD,          /* MoE blocks only */
    NS_DS_ROUTER_ENTROPY,
    NS_DS_LOAD_CV,
    NS_DS_DROPPED_FRAC,
    /* predicted, /theory (all optional) */
    NS_DS_THEORY_ACT_MS,
    NS_DS_THEORY_ACT_MS_BOUND,  /* closed-form q_l (MLP blocks) */
    NS_DS_THEORY_GRAD_MS,       /* relative to p_L = 1 */
    NS_DS_THEORY_COS_TOKENS,
    NS_DS_THEORY_COS_LAYER,
    NS_DS_COUNT,
    NS_DS_NONE = NS_DS_COUNT    /* "no dataset" in figure specs */
} ns_plot_ds;

typedef struct {
    double *v;       /* row-major; NULL when the file does not have the dataset */
    int rank;
    size_t dims[3];
    int exact;       /* theory: attribute `exact` (1 exact, 0 approximate), -1 if absent */
    char model[256]; /* theory: attribute `model`, "" if absent */
    char order[32];  /* theory: attribute `order` ("O(1/d)", "d -> infinity"), "" if absent */
} ns_plot_array;

/* A training run's records (/train, written by `normscope train`), possibly of a run that is
 * still being written: each family of series is cut to the length all its members have. */
typedef struct {
    int present;         /* the file has /train */
    size_t nsteps;       /* per-step series */
    double *step, *loss, *grad_norm;
    size_t nrecords;     /* probes, every --probe-every steps */
    double *probe_step, *eval_loss;
    double *grad_ms;     /* [nrecords, L+1] on the probe batch */
    size_t nevents;      /* /train/events */
    double *ev_step, *ev_kind, *ev_value;
    double loss_floor;   /* the data's optimal loss (attribute), NAN if absent */
} ns_plot_train;

/* the kinds of /train/events/kind */
enum { NS_EVENT_NAN_LOSS, NS_EVENT_NAN_GRAD, NS_EVENT_LOSS_SPIKE };

typedef struct {
    char *path;        /* the file */
    int run;           /* -1 for a single-run file, else the sweep point i of /runs/<i> */
    char source[4160]; /* for messages and comments: "PATH" or "PATH:/runs/<i>" */
    /* /config; "" or 0 (NAN for doubles) when an attribute is absent */
    char block[32], scheme[32], span_variant[32], placement[32], act[32], norm[32], input[32];
    char scale_init[32];
    int depth, width, seq, batch, heads, seeds, experts, top_k;
    double alpha, mlp_ratio, norm_eps, capacity, expert_ratio;
    int vocab, steps;  /* training runs; 0 otherwise */
    double lr, clip;   /* training runs; NAN otherwise */
    ns_plot_array ds[NS_DS_COUNT];
    ns_plot_train train;
} ns_plot_file;

/* How many runs path holds: 0 for a single-run file, n for a sweep of n points (/runs/0 ..
 * /runs/n-1). NS_ERR_INVALID with a one-line message naming the file if it is missing,
 * unreadable, truncated, not HDF5 or not normscope/1. */
int ns_plot_file_runs(const char *path, int *nruns, char *msg, size_t msglen);

/* Reads run `run` of path (-1: the root of a single-run file) into *f. NS_ERR_INVALID with a
 * one-line message naming the file as above, or if a dataset has the wrong shape;
 * NS_ERR_NOMEM. On failure *f is left empty (ns_plot_file_free is still safe). */
int ns_plot_file_read(ns_plot_file *f, const char *path, int run, char *msg, size_t msglen);
void ns_plot_file_free(ns_plot_file *f);

/* The depth-sweep fits of a sweep file (/sweep/fits, written by `normscope propagate` when
 * --depth is a list of three or more): one row per series of points that differ only in depth.
 * Series s starts at point first[s]; its points are first[s] + k stride, k = 0 .. per_series-1
 * (in the order --depth listed them), where stride is the product of the list lengths of the
 * options after --depth. */
typedef enum {
    NS_FIT_ACT_MS_SLOPE,            /* slope of ln(seed mean of act_ms[L]) against ln L */
    NS_FIT_ACT_MS_SLOPE_SE,
    NS_FIT_ACT_MS_SLOPE_THEORY,     /* the same fit to the theory's act_ms[L]; NAN: no theory */
    NS_FIT_ACT_MS_SLOPE_THEORY_SE,
    NS_FIT_GRAD_RATIO_SLOPE,        /* slope of ln(seed mean of grad_ms[0]/grad_ms[L]) */
    NS_FIT_GRAD_RATIO_SLOPE_SE,
    NS_FIT_GRAD_RATIO_SLOPE_THEORY,
    NS_FIT_GRAD_RATIO_SLOPE_THEORY_SE,
    NS_FIT_COUNT
} ns_plot_fit;

typedef struct {
    int nseries;              /* 0: the file has no /sweep/fits */
    int per_series, stride;   /* points per series, and the step between them */
    int *first;               /* [nseries] first point of each series */
    double *fit[NS_FIT_COUNT]; /* [nseries] each */
} ns_plot_sweep;

/* Reads /sweep/fits of path, which holds npoints runs (ns_plot_file_runs). NS_OK with
 * nseries = 0 if there are none; NS_ERR_INVALID with a one-line message if they are malformed
 * (a wrong shape, a first point out of range or not laid out as above); NS_ERR_NOMEM. */
int ns_plot_sweep_read(ns_plot_sweep *s, const char *path, int npoints, char *msg, size_t msglen);
void ns_plot_sweep_free(ns_plot_sweep *s);
/* the dataset name of a fit column, e.g. "act_ms_slope" */
const char *ns_plot_fit_name(ns_plot_fit c);

/* the HDF5 path of a catalog dataset, e.g. "/propagate/act_ms" */
const char *ns_plot_ds_path(ns_plot_ds d);
/* a present dataset of f, or NULL */
const ns_plot_array *ns_plot_get(const ns_plot_file *f, ns_plot_ds d);

#endif
