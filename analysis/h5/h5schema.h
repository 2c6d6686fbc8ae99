/* h5schema.h: the datasets of a normscope/1 file, in one table (h5schema.c).
 *
 * Each entry is a dataset's path under its run's prefix ("" for a single-run file, "/runs/<i>"
 * for a sweep point), its symbolic shape, its dimension labels and its description. The writers
 * (propagate.c, cmd_propagate.c, train.c, cmd_verify.c) take descriptions and labels from here,
 * the plot reader (plots/plot_file.c) reads only datasets listed here and checks their shapes
 * against the symbolic ones, and the golden test (tests/e2e/golden_schema.sh) compares files with
 * the table. A new dataset is one enum value and one row of the table, in the same order.
 *
 * A dimension names its label and its size: "seed" is S, "layer" is L+1 (x_0 .. x_L), "block" is
 * L (blocks 1..L), and so on (ns_h5schema_dim). No HDF5 here: the table is plain data. */
#ifndef NS_H5SCHEMA_H
#define NS_H5SCHEMA_H
#include <stddef.h>

#define NS_H5SCHEMA_MAX_RANK 3

typedef enum {
    NS_H5D_SEED,   /* "seed"    S   --seeds */
    NS_H5D_LAYER,  /* "layer"   L+1 the streams x_0 .. x_L */
    NS_H5D_BLOCK,  /* "block"   L   blocks 1..L, entry l-1 for block l */
    NS_H5D_PARAM,  /* "param"   P   parameter tensors of a block */
    NS_H5D_HEAD,   /* "head"    H   attention heads */
    NS_H5D_EXPERT, /* "expert"  E   experts */
    NS_H5D_POINT,  /* "point"   N   points of a sweep */
    NS_H5D_SERIES, /* "series"  F   depth series of a sweep */
    NS_H5D_ROW,    /* "row"     C   rows of the verify table */
    NS_H5D_STEP,   /* "step"    T   training steps (grows) */
    NS_H5D_RECORD, /* "record"  R   probe records (grows) */
    NS_H5D_EVENT,  /* "event"   V   divergence events (grows) */
    NS_H5D_ONE,    /* no label  1 */
    NS_H5D_SUBLAYER, /* "sublayer" J sublayers of a block: 1 (MLP), 2 (attention, MLP/MoE) */
    NS_H5D_COUNT
} ns_h5schema_dim;

/* how the dataset is stored */
typedef enum {
    NS_H5T_F64,     /* float64, every dimension labelled (unless one has no label) */
    NS_H5T_SERIES,  /* float64 grown along its first dimension (ns_h5_series), labelled */
    NS_H5T_STRINGS  /* variable-length UTF-8 strings, rank 1, not labelled */
} ns_h5schema_type;

/* the block kinds whose propagate files hold a dataset (train logs: whose logs) */
enum {
    NS_H5B_MLP = 1,
    NS_H5B_TRANSFORMER = 2,
    NS_H5B_MOE = 4,
    NS_H5B_ALL = 7,
    NS_H5B_ATTENTION = NS_H5B_TRANSFORMER | NS_H5B_MOE,
    NS_H5B_DUAL = 8 /* with a block kind: only files of a placement with a dual stream (ResiDual) */
};

typedef enum {
    /* /propagate: measured, per seed (ns_propagate_write) */
    NS_H5S_PROPAGATE_ACT_MS,
    NS_H5S_PROPAGATE_ACT_VAR,
    NS_H5S_PROPAGATE_GRAD_MS,
    NS_H5S_PROPAGATE_COS_TOKENS,
    NS_H5S_PROPAGATE_EFF_RANK,
    NS_H5S_PROPAGATE_COS_LAYER,
    NS_H5S_PROPAGATE_BRANCH_MS,
    NS_H5S_PROPAGATE_PARAM_GRAD_MS,
    NS_H5S_PROPAGATE_ATTN_OUT_MS,
    NS_H5S_PROPAGATE_MLP_OUT_MS,
    NS_H5S_PROPAGATE_MID_ACT_MS,
    NS_H5S_PROPAGATE_ATTN_ENTROPY,
    NS_H5S_PROPAGATE_ATTN_ENTROPY_HEAD,
    NS_H5S_PROPAGATE_EXPERT_LOAD,
    NS_H5S_PROPAGATE_ROUTER_ENTROPY,
    NS_H5S_PROPAGATE_LOAD_CV,
    NS_H5S_PROPAGATE_DROPPED_FRAC,
    NS_H5S_PROPAGATE_AUX_LOSS,
    NS_H5S_PROPAGATE_DUAL_ACT_MS,
    NS_H5S_PROPAGATE_DUAL_GRAD_MS,
    /* /theory: predicted (ns_theory_write) */
    NS_H5S_THEORY_ACT_MS,
    NS_H5S_THEORY_GRAD_MS,
    NS_H5S_THEORY_COS_TOKENS,
    NS_H5S_THEORY_COS_LAYER,
    NS_H5S_THEORY_BRANCH_MS,
    NS_H5S_THEORY_ATTN_OUT_MS,
    NS_H5S_THEORY_MLP_OUT_MS,
    NS_H5S_THEORY_MID_ACT_MS,
    NS_H5S_THEORY_ACT_MS_BOUND,
    NS_H5S_THEORY_ACT_MS_SE,
    NS_H5S_THEORY_GRAD_MS_SE,
    NS_H5S_THEORY_COS_TOKENS_SE,
    NS_H5S_THEORY_DUAL_ACT_MS,
    NS_H5S_THEORY_DUAL_GRAD_MS,
    /* /theory_inf: the d -> infinity prediction beside /theory's O(1/d) one (MLP stacks) */
    NS_H5S_THEORY_INF_ACT_MS,
    NS_H5S_THEORY_INF_GRAD_MS,
    NS_H5S_THEORY_INF_COS_TOKENS,
    NS_H5S_THEORY_INF_COS_LAYER,
    NS_H5S_THEORY_INF_BRANCH_MS,
    /* /sweep/fits: depth-sweep slopes (cmd_propagate.c), in column order */
    NS_H5S_FITS_ACT_MS_SLOPE,
    NS_H5S_FITS_ACT_MS_SLOPE_SE,
    NS_H5S_FITS_ACT_MS_SLOPE_THEORY,
    NS_H5S_FITS_ACT_MS_SLOPE_THEORY_SE,
    NS_H5S_FITS_GRAD_RATIO_SLOPE,
    NS_H5S_FITS_GRAD_RATIO_SLOPE_SE,
    NS_H5S_FITS_GRAD_RATIO_SLOPE_THEORY,
    NS_H5S_FITS_GRAD_RATIO_SLOPE_THEORY_SE,
    NS_H5S_FITS_FIRST_POINT,
    /* /train: a training log (train.c) */
    NS_H5S_TRAIN_STEP,
    NS_H5S_TRAIN_LOSS,
    NS_H5S_TRAIN_LR,
    NS_H5S_TRAIN_GRAD_NORM,
    NS_H5S_TRAIN_UPDATE_RATIO,
    NS_H5S_TRAIN_CLIPPED,
    NS_H5S_TRAIN_PROBE_STEP,
    NS_H5S_TRAIN_PROBE_EVAL_LOSS,
    NS_H5S_TRAIN_PROBE_EVAL_BITS,
    NS_H5S_TRAIN_PROBE_ACT_MS,
    NS_H5S_TRAIN_PROBE_GRAD_MS,
    NS_H5S_TRAIN_PROBE_COS_TOKENS,
    NS_H5S_TRAIN_PROBE_EFF_RANK,
    NS_H5S_TRAIN_PROBE_COS_LAYER,
    NS_H5S_TRAIN_PROBE_PARAM_GRAD_NORM,
    NS_H5S_TRAIN_PROBE_UPDATE_RATIO,
    NS_H5S_TRAIN_PROBE_ATTN_ENTROPY,
    NS_H5S_TRAIN_PROBE_EXPERT_LOAD,
    NS_H5S_TRAIN_EVENTS_STEP,
    NS_H5S_TRAIN_EVENTS_KIND,
    NS_H5S_TRAIN_EVENTS_VALUE,
    NS_H5S_TRAIN_STATUS,
    /* /verify: the theory battery's table (cmd_verify.c), in column order after the strings */
    NS_H5S_VERIFY_CASE,
    NS_H5S_VERIFY_METRIC,
    NS_H5S_VERIFY_WORST_REL_ERR,
    NS_H5S_VERIFY_SHARE_IN_CI,
    NS_H5S_VERIFY_TOLERANCE,
    NS_H5S_VERIFY_EXACT,
    NS_H5S_VERIFY_PASS,
    NS_H5S_VERIFY_WORST_REL_ERR_INF,
    /* /config: the model as built (options.c, ns_model_write_derived) */
    NS_H5S_CONFIG_BLOCK_PLACEMENT,
    /* /profile: the profiled skip weights of a row that has them (Admin), per seed
     * (ns_propagate_write); /train/skip_weight: a training log's (train.c) */
    NS_H5S_PROFILE_SKIP_WEIGHT,
    NS_H5S_TRAIN_SKIP_WEIGHT,
    NS_H5S_COUNT
} ns_h5schema_id;

typedef struct {
    const char *path; /* under the run's prefix, no leading slash: "propagate/act_ms" */
    ns_h5schema_type type;
    int rank;
    ns_h5schema_dim dims[NS_H5SCHEMA_MAX_RANK];
    unsigned blocks;  /* NS_H5B_*: the block kinds whose files have it */
    const char *description;
} ns_h5schema_entry;

/* the sizes of the symbolic dimensions; 0 where unknown (a reader then accepts any size) */
typedef struct {
    size_t seeds, depth, params, heads, experts, points, series, rows;
    size_t sublayers;
} ns_h5schema_sizes;

/* entry id (NULL if out of range) */
const ns_h5schema_entry *ns_h5schema_get(ns_h5schema_id id);
/* the id of the entry with this path ("propagate/act_ms"; one leading '/' is ignored), or -1 */
int ns_h5schema_find(const char *path);
/* a dimension's label ("seed"; NULL for NS_H5D_ONE) and symbol ("S", "L+1") */
const char *ns_h5schema_label(ns_h5schema_dim d);
const char *ns_h5schema_symbol(ns_h5schema_dim d);
/* the entry's labels into labels[rank]; 0 if a dimension has none (the dataset is unlabelled) */
int ns_h5schema_labels(ns_h5schema_id id, const char *labels[NS_H5SCHEMA_MAX_RANK]);
/* the entry's shape for these sizes into dims[rank] (0 where a size is unknown or grows);
 * returns the rank */
int ns_h5schema_dims(ns_h5schema_id id, const ns_h5schema_sizes *z,
                     size_t dims[NS_H5SCHEMA_MAX_RANK]);
/* the symbolic shape, "[S, L+1]" */
void ns_h5schema_shape(ns_h5schema_id id, char *out, size_t n);

#endif
