/* plot_file.c: reading a normscope file for plotting. Every HDF5 id is closed by the function
 * that opened it; every call is checked; a failure path closes everything. */
#define _POSIX_C_SOURCE 200809L
#include "plot_file.h"
#include "h5out.h"
#include "normscope.h"
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the shape a dataset must have, in terms of /config's seeds S, depth L and heads H */
typedef enum { SHAPE_S_L1, SHAPE_S_L, SHAPE_S_L_H, SHAPE_S_L_E, SHAPE_L1, SHAPE_L } shape_kind;

static const struct {
    const char *path;
    shape_kind shape;
} catalog[NS_DS_COUNT] = {
    [NS_DS_ACT_MS] = {"/propagate/act_ms", SHAPE_S_L1},
    [NS_DS_GRAD_MS] = {"/propagate/grad_ms", SHAPE_S_L1},
    [NS_DS_COS_TOKENS] = {"/propagate/cos_tokens", SHAPE_S_L1},
    [NS_DS_EFF_RANK] = {"/propagate/eff_rank", SHAPE_S_L1},
    [NS_DS_COS_LAYER] = {"/propagate/cos_layer", SHAPE_S_L},
    [NS_DS_ATTN_ENTROPY] = {"/propagate/attn_entropy", SHAPE_S_L},
    [NS_DS_ATTN_ENTROPY_HEAD] = {"/propagate/attn_entropy_head", SHAPE_S_L_H},
    [NS_DS_EXPERT_LOAD] = {"/propagate/expert_load", SHAPE_S_L_E},
    [NS_DS_ROUTER_ENTROPY] = {"/propagate/router_entropy", SHAPE_S_L},
    [NS_DS_LOAD_CV] = {"/propagate/load_cv", SHAPE_S_L},
    [NS_DS_DROPPED_FRAC] = {"/propagate/dropped_frac", SHAPE_S_L},
    [NS_DS_THEORY_ACT_MS] = {"/theory/act_ms", SHAPE_L1},
    [NS_DS_THEORY_ACT_MS_BOUND] = {"/theory/act_ms_bound", SHAPE_L1},
    [NS_DS_THEORY_GRAD_MS] = {"/theory/grad_ms", SHAPE_L1},
    [NS_DS_THEORY_GRAD_MS_BOUND] = {"/theory/grad_ms_bound", SHAPE_L1},
    [NS_DS_THEORY_COS_TOKENS] = {"/theory/cos_tokens", SHAPE_L1},
    [NS_DS_THEORY_COS_LAYER] = {"/theory/cos_layer", SHAPE_L},
};

const char *ns_plot_ds_path(ns_plot_ds d) { return d < NS_DS_COUNT ? catalog[d].path : ""; }

const ns_plot_array *ns_plot_get(const ns_plot_file *f, ns_plot_ds d)
{
    return d < NS_DS_COUNT && f->ds[d].v ? &f->ds[d] : NULL;
}

/* 1 if obj has attribute name, 0 if not, -1 if HDF5 cannot tell */
static int attr_exists(hid_t file, const char *obj, const char *name)
{
    htri_t e = H5Aexists_by_name(file, obj, name, H5P_DEFAULT);
    return e < 0 ? -1 : e > 0;
}

/* A scalar string attribute, variable- or fixed-length, into out (truncated to n - 1 bytes).
 * 1 read, 0 absent, -1 present but unreadable or not a scalar string. */
static int read_string_attr(hid_t file, const char *obj, const char *name, char *out, size_t n)
{
    int e = attr_exists(file, obj, name);
    if (e <= 0)
        return e;
    int result = -1;
    char *fixed = NULL;
    hid_t a = H5Aopen_by_name(file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = a < 0 ? H5I_INVALID_HID : H5Aget_type(a);
    hid_t space = a < 0 ? H5I_INVALID_HID : H5Aget_space(a);
    hid_t mem = H5I_INVALID_HID;
    if (t < 0 || space < 0 || H5Tget_class(t) != H5T_STRING ||
        H5Sget_simple_extent_npoints(space) != 1)
        goto done;
    htri_t vlen = H5Tis_variable_str(t);
    if (vlen < 0 || (mem = H5Tcopy(t)) < 0)
        goto done;
    if (vlen) {
        char *s = NULL;
        if (H5Aread(a, mem, &s) < 0 || !s)
            goto done;
        snprintf(out, n, "%s", s);
        H5free_memory(s);
    } else {
        size_t size = H5Tget_size(t);
        if (size == 0 || !(fixed = calloc(size + 1, 1)) || H5Aread(a, mem, fixed) < 0)
            goto done;
        snprintf(out, n, "%s", fixed);
    }
    result = 1;
done:
    free(fixed);
    if (mem >= 0)
        H5Tclose(mem);
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    return result;
}

/* A scalar numeric (integer or float) attribute as a double: 1 read, 0 absent, -1 unreadable */
static int read_number_attr(hid_t file, const char *obj, const char *name, double *out)
{
    int e = attr_exists(file, obj, name);
    if (e <= 0)
        return e;
    int result = -1;
    hid_t a = H5Aopen_by_name(file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = a < 0 ? H5I_INVALID_HID : H5Aget_type(a);
    hid_t space = a < 0 ? H5I_INVALID_HID : H5Aget_space(a);
    if (t >= 0 && space >= 0 && (H5Tget_class(t) == H5T_INTEGER || H5Tget_class(t) == H5T_FLOAT) &&
        H5Sget_simple_extent_npoints(space) == 1 && H5Aread(a, H5T_NATIVE_DOUBLE, out) >= 0)
        result = 1;
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    return result;
}

/* a float or integer dataset of any rank up to 3, converted to double; an empty one only if
 * allow_empty (then out->v is a valid, empty allocation) */
static int read_dataset(hid_t file, const char *path, ns_plot_array *out, int allow_empty)
{
    int status = NS_ERR_INVALID;
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    hid_t t = d < 0 ? H5I_INVALID_HID : H5Dget_type(d);
    hid_t space = d < 0 ? H5I_INVALID_HID : H5Dget_space(d);
    if (t < 0 || space < 0 || (H5Tget_class(t) != H5T_FLOAT && H5Tget_class(t) != H5T_INTEGER))
        goto done;
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[3];
    if (rank < 1 || rank > 3 || H5Sget_simple_extent_dims(space, dims, NULL) != rank)
        goto done;
    size_t count = 1;
    out->rank = rank;
    for (int i = 0; i < rank; i++)
        out->dims[i] = (size_t)dims[i], count *= (size_t)dims[i];
    if (count == 0 && !allow_empty)
        goto done;
    if (!(out->v = malloc((count ? count : 1) * sizeof *out->v))) {
        status = NS_ERR_NOMEM;
        goto done;
    }
    if (count && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->v) < 0) {
        free(out->v);
        out->v = NULL;
        goto done;
    }
    status = NS_OK;
done:
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return status;
}

static void format_dims(char *out, size_t n, int rank, const size_t *dims)
{
    size_t k = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < rank && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%zu", i ? ", " : "", dims[i]);
    if (k < n)
        snprintf(out + k, n - k, "]");
}

/* does a's shape match what the catalog says, given /config? H = 0: any number of heads (and
 * E = 0 any number of experts) */
static int shape_ok(const ns_plot_array *a, shape_kind kind, const ns_plot_file *f, size_t want[3],
                    int *want_rank)
{
    size_t S = (size_t)f->seeds, L = (size_t)f->depth, H = f->heads > 0 ? (size_t)f->heads : 0;
    size_t E = f->experts > 0 ? (size_t)f->experts : 0;
    *want_rank = 0;
    switch (kind) {
    case SHAPE_S_L1: *want_rank = 2, want[0] = S, want[1] = L + 1; break;
    case SHAPE_S_L: *want_rank = 2, want[0] = S, want[1] = L; break;
    case SHAPE_S_L_H: *want_rank = 3, want[0] = S, want[1] = L, want[2] = H ? H : a->dims[2]; break;
    case SHAPE_S_L_E: *want_rank = 3, want[0] = S, want[1] = L, want[2] = E ? E : a->dims[2]; break;
    case SHAPE_L1: *want_rank = 1, want[0] = L + 1; break;
    case SHAPE_L: *want_rank = 1, want[0] = L; break;
    }
    if (a->rank != *want_rank)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != want[i])
            return 0;
    return 1;
}

static int read_config(hid_t file, const char *config, ns_plot_file *f, char *msg, size_t msglen)
{
    struct {
        const char *name;
        char *out;
    } strings[] = {{"block", f->block}, {"scheme", f->scheme}, {"span_variant", f->span_variant},
                   {"placement", f->placement}, {"act", f->act}, {"norm", f->norm},
                   {"input", f->input}, {"scale_init", f->scale_init}};
    struct {
        const char *name;
        int *out;
    } ints[] = {{"depth", &f->depth}, {"width", &f->width}, {"seq", &f->seq},
                {"batch", &f->batch}, {"heads", &f->heads}, {"seeds", &f->seeds},
                {"experts", &f->experts}, {"top_k", &f->top_k}, {"vocab", &f->vocab},
                {"steps", &f->steps}};
    struct {
        const char *name;
        double *out;
    } doubles[] = {{"alpha", &f->alpha}, {"mlp_ratio", &f->mlp_ratio}, {"norm_eps", &f->norm_eps},
                   {"capacity", &f->capacity}, {"expert_ratio", &f->expert_ratio},
                   {"lr", &f->lr}, {"clip", &f->clip}};
    const char *bad = NULL;
    for (size_t i = 0; !bad && i < sizeof strings / sizeof strings[0]; i++)
        if (read_string_attr(file, config, strings[i].name, strings[i].out, 32) < 0)
            bad = strings[i].name;
    for (size_t i = 0; !bad && i < sizeof ints / sizeof ints[0]; i++) {
        double v = 0;
        int r = read_number_attr(file, config, ints[i].name, &v);
        if (r < 0 || (r > 0 && !(v >= 0 && v <= 1 << 30 && v == floor(v))))
            bad = ints[i].name;
        *ints[i].out = (int)v;
    }
    for (size_t i = 0; !bad && i < sizeof doubles / sizeof doubles[0]; i++)
        if (read_number_attr(file, config, doubles[i].name, doubles[i].out) < 0)
            bad = doubles[i].name;
    if (!bad)
        return NS_OK;
    snprintf(msg, msglen, "%s: %s has a malformed attribute %s", f->source, config, bad);
    return NS_ERR_INVALID;
}

/* theory metadata: on the dataset itself, else on its group (where propagate writes it) */
static int read_theory_attrs(hid_t file, const char *dpath, const char *group, ns_plot_array *a)
{
    double exact;
    int r = read_number_attr(file, dpath, "exact", &exact);
    if (r == 0)
        r = read_number_attr(file, group, "exact", &exact);
    if (r < 0)
        return NS_ERR_INVALID;
    a->exact = r ? exact != 0 : -1;
    r = read_string_attr(file, dpath, "model", a->model, sizeof a->model);
    if (r == 0)
        r = read_string_attr(file, group, "model", a->model, sizeof a->model);
    return r < 0 ? NS_ERR_INVALID : NS_OK;
}

/* opens a readable normscope/1 file, or says in msg why it is not one */
static hid_t open_normscope(const char *path, char *msg, size_t msglen)
{
    char schema[64] = "";
    /* missing, unreadable, not HDF5, truncated, no schema attribute: one message each */
    if (ns_h5_check_readable(path, msg, msglen) != NS_OK)
        return H5I_INVALID_HID;
    hid_t file = ns_h5_open_readonly(path); /* a training log may still be being written */
    if (file < 0) {
        snprintf(msg, msglen, "cannot open %s as HDF5 (truncated or corrupt?)", path);
        return H5I_INVALID_HID;
    }
    if (read_string_attr(file, "/", "schema", schema, sizeof schema) != 1 ||
        strcmp(schema, NS_SCHEMA) != 0) {
        snprintf(msg, msglen, "%s: schema '%s' is not %s", path, schema, NS_SCHEMA);
        H5Fclose(file);
        return H5I_INVALID_HID;
    }
    return file;
}

int ns_plot_file_runs(const char *path, int *nruns, char *msg, size_t msglen)
{
    *nruns = 0;
    hid_t file = open_normscope(path, msg, msglen), runs = H5I_INVALID_HID;
    if (file < 0)
        return NS_ERR_INVALID;
    int status = NS_ERR_INVALID;
    htri_t sweep = H5LTpath_valid(file, "/runs", 1);
    H5G_info_t info;
    if (sweep < 0) {
        snprintf(msg, msglen, "%s: cannot look up /runs (corrupt file?)", path);
        goto done;
    }
    if (!sweep) {
        status = NS_OK;
        goto done;
    }
    if ((runs = H5Gopen2(file, "/runs", H5P_DEFAULT)) < 0 || H5Gget_info(runs, &info) < 0 ||
        info.nlinks > 1 << 20) {
        snprintf(msg, msglen, "%s: /runs is not a readable group", path);
        goto done;
    }
    /* the points are /runs/0 .. /runs/n-1, nothing else */
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[32];
        snprintf(name, sizeof name, "%llu", (unsigned long long)i);
        if (H5LTpath_valid(runs, name, 1) <= 0) {
            snprintf(msg, msglen, "%s: /runs has %llu entries but no /runs/%s", path,
                     (unsigned long long)info.nlinks, name);
            goto done;
        }
    }
    *nruns = (int)info.nlinks;
    status = NS_OK;
done:
    if (runs >= 0)
        H5Gclose(runs);
    H5Fclose(file);
    return status;
}

/* ---- training records ------------------------------------------------------------------- */

/* A series of /train: rank 1, or rank 2 with `cols` columns when cols > 0; zero rows is fine
 * (a run that has not reached its first probe). *rows receives the row count. */
static int read_series(hid_t file, const char *path, size_t cols, size_t *rows, double **out,
                       const ns_plot_file *f, char *msg, size_t msglen)
{
    ns_plot_array a = {0};
    int st = read_dataset(file, path, &a, 1);
    if (st == NS_OK && (a.rank != (cols ? 2 : 1) || (cols && a.dims[1] != cols)))
        st = NS_ERR_INVALID;
    if (st == NS_ERR_NOMEM)
        snprintf(msg, msglen, "out of memory reading %s from %s", path, f->source);
    else if (st != NS_OK)
        snprintf(msg, msglen, "%s: %s is not a numeric %s", f->source, path,
                 cols ? "[records, L+1] array (L from /config)" : "vector");
    if (st != NS_OK) {
        free(a.v);
        return st;
    }
    *rows = a.dims[0];
    *out = a.v;
    return NS_OK;
}

/* /train, if the file has it. A writer appends a step's series one after another and flushes
 * them together, so a reader may see one series a row ahead: each family is cut to its
 * shortest member. */
static int read_train(hid_t file, ns_plot_file *f, char *msg, size_t msglen)
{
    ns_plot_train *t = &f->train;
    htri_t has = H5LTpath_valid(file, "/train", 1);
    if (has <= 0) {
        if (has < 0)
            snprintf(msg, msglen, "%s: cannot look up /train (corrupt file?)", f->source);
        return has < 0 ? NS_ERR_INVALID : NS_OK;
    }
    if (f->depth < 1) {
        snprintf(msg, msglen, "%s: has /train but no /config depth", f->source);
        return NS_ERR_INVALID;
    }
    const struct {
        const char *path;
        double **out;
        int family; /* 0 per step, 1 per probe, 2 per event */
        size_t cols;
    } series[] = {
        {"/train/step", &t->step, 0, 0},
        {"/train/loss", &t->loss, 0, 0},
        {"/train/grad_norm", &t->grad_norm, 0, 0},
        {"/train/probe/step", &t->probe_step, 1, 0},
        {"/train/probe/eval_loss", &t->eval_loss, 1, 0},
        {"/train/probe/grad_ms", &t->grad_ms, 1, (size_t)f->depth + 1},
        {"/train/events/step", &t->ev_step, 2, 0},
        {"/train/events/kind", &t->ev_kind, 2, 0},
        {"/train/events/value", &t->ev_value, 2, 0},
    };
    size_t *len[3] = {&t->nsteps, &t->nrecords, &t->nevents};
    for (int k = 0; k < 3; k++)
        *len[k] = (size_t)-1;
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++) {
        size_t rows = 0;
        int st = read_series(file, series[i].path, series[i].cols, &rows, series[i].out, f, msg,
                             msglen);
        if (st != NS_OK)
            return st; /* the caller frees what was read */
        if (rows < *len[series[i].family])
            *len[series[i].family] = rows;
    }
    double floor;
    int r = read_number_attr(file, "/train", "loss_floor", &floor);
    if (r < 0) {
        snprintf(msg, msglen, "%s: /train has a malformed attribute loss_floor", f->source);
        return NS_ERR_INVALID;
    }
    t->loss_floor = r ? floor : NAN;
    t->present = 1;
    return NS_OK;
}

int ns_plot_file_read(ns_plot_file *f, const char *path, int run, char *msg, size_t msglen)
{
    memset(f, 0, sizeof *f);
    f->alpha = f->mlp_ratio = f->norm_eps = f->capacity = f->expert_ratio = NAN;
    f->lr = f->clip = f->train.loss_floor = NAN;
    f->run = run;
    char prefix[32] = "", group[64], dp[128];
    if (run >= 0)
        snprintf(prefix, sizeof prefix, "/runs/%d", run);
    snprintf(f->source, sizeof f->source, "%s%s%s", path, run >= 0 ? ":" : "", prefix);
    hid_t file = open_normscope(path, msg, msglen);
    if (file < 0)
        return NS_ERR_INVALID;
    int status = NS_ERR_NOMEM;
    if (!(f->path = strdup(path))) {
        snprintf(msg, msglen, "out of memory reading %s", path);
        goto fail;
    }
    status = NS_ERR_INVALID;
    snprintf(group, sizeof group, "%s/config", prefix);
    htri_t has_config = H5LTpath_valid(file, group, 1);
    if (has_config < 0) {
        snprintf(msg, msglen, "%s: cannot look up %s (corrupt file?)", f->source, group);
        goto fail;
    }
    if (has_config && (status = read_config(file, group, f, msg, msglen)) != NS_OK)
        goto fail;
    status = NS_ERR_INVALID;
    snprintf(group, sizeof group, "%s/theory", prefix);
    for (int d = 0; d < NS_DS_COUNT; d++) {
        snprintf(dp, sizeof dp, "%s%s", prefix, catalog[d].path);
        htri_t present = H5LTpath_valid(file, dp, 1);
        if (present < 0) {
            snprintf(msg, msglen, "%s: cannot look up %s (corrupt file?)", path, dp);
            goto fail;
        }
        if (!present)
            continue;
        if (f->depth < 1 || (catalog[d].shape <= SHAPE_S_L_E && f->seeds < 1)) {
            snprintf(msg, msglen, "%s: has %s but no /config depth and seeds", f->source,
                     catalog[d].path);
            goto fail;
        }
        ns_plot_array *a = &f->ds[d];
        a->exact = -1;
        if ((status = read_dataset(file, dp, a, 0)) != NS_OK) {
            if (status == NS_ERR_NOMEM)
                snprintf(msg, msglen, "out of memory reading %s from %s", dp, path);
            else
                snprintf(msg, msglen, "%s: cannot read %s as a numeric dataset of rank 1 to 3",
                         path, dp);
            goto fail;
        }
        status = NS_ERR_INVALID;
        size_t want[3] = {0, 0, 0};
        int want_rank = 0;
        if (!shape_ok(a, catalog[d].shape, f, want, &want_rank)) {
            char got[64], exp[64];
            format_dims(got, sizeof got, a->rank, a->dims);
            format_dims(exp, sizeof exp, want_rank, want);
            snprintf(msg, msglen, "%s: %s has shape %s, expected %s from /config", f->source,
                     catalog[d].path, got, exp);
            goto fail;
        }
        if (strncmp(catalog[d].path, "/theory/", 8) == 0 &&
            read_theory_attrs(file, dp, group, a) != NS_OK) {
            snprintf(msg, msglen, "%s: %s has a malformed exact or model attribute", f->source,
                     catalog[d].path);
            goto fail;
        }
    }
    if (run < 0 && (status = read_train(file, f, msg, msglen)) != NS_OK)
        goto fail;
    if (H5Fclose(file) < 0) {
        file = H5I_INVALID_HID;
        snprintf(msg, msglen, "cannot close %s", path);
        goto fail;
    }
    return NS_OK;
fail:
    if (file >= 0)
        H5Fclose(file);
    ns_plot_file_free(f);
    return status;
}

void ns_plot_file_free(ns_plot_file *f)
{
    for (int d = 0; d < NS_DS_COUNT; d++)
        free(f->ds[d].v);
    ns_plot_train *t = &f->train;
    double *series[] = {t->step,     t->loss,    t->grad_norm, t->probe_step, t->eval_loss,
                        t->grad_ms,  t->ev_step, t->ev_kind,   t->ev_value};
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
        free(series[i]);
    free(f->path);
    memset(f, 0, sizeof *f);
    f->alpha = f->mlp_ratio = f->norm_eps = f->capacity = f->expert_ratio = NAN;
    f->lr = f->clip = f->train.loss_floor = NAN;
}

/* ---- depth-sweep fits ------------------------------------------------------------------- */

static const char *const fit_names[NS_FIT_COUNT] = {
    [NS_FIT_ACT_MS_SLOPE] = "act_ms_slope",
    [NS_FIT_ACT_MS_SLOPE_SE] = "act_ms_slope_se",
    [NS_FIT_ACT_MS_SLOPE_THEORY] = "act_ms_slope_theory",
    [NS_FIT_ACT_MS_SLOPE_THEORY_SE] = "act_ms_slope_theory_se",
    [NS_FIT_GRAD_RATIO_SLOPE] = "grad_ratio_slope",
    [NS_FIT_GRAD_RATIO_SLOPE_SE] = "grad_ratio_slope_se",
    [NS_FIT_GRAD_RATIO_SLOPE_THEORY] = "grad_ratio_slope_theory",
    [NS_FIT_GRAD_RATIO_SLOPE_THEORY_SE] = "grad_ratio_slope_theory_se",
};

const char *ns_plot_fit_name(ns_plot_fit c) { return c < NS_FIT_COUNT ? fit_names[c] : ""; }

void ns_plot_sweep_free(ns_plot_sweep *s)
{
    free(s->first);
    for (int c = 0; c < NS_FIT_COUNT; c++)
        free(s->fit[c]);
    memset(s, 0, sizeof *s);
}

/* a rank-1 dataset of n values, or NS_ERR_INVALID naming it */
static int read_column(hid_t file, const char *path, const char *fname, size_t *n, double **out,
                       char *msg, size_t msglen)
{
    ns_plot_array a = {0};
    int st = read_dataset(file, path, &a, 0);
    if (st == NS_OK && (a.rank != 1 || (*n && a.dims[0] != *n)))
        st = NS_ERR_INVALID;
    if (st == NS_ERR_NOMEM)
        snprintf(msg, msglen, "out of memory reading %s from %s", path, fname);
    else if (st != NS_OK)
        snprintf(msg, msglen, "%s: %s is not a numeric vector of one value per series%s", fname,
                 path, *n ? " like /sweep/fits/first_point" : "");
    if (st != NS_OK) {
        free(a.v);
        return st;
    }
    *n = a.dims[0];
    *out = a.v;
    return NS_OK;
}

int ns_plot_sweep_read(ns_plot_sweep *s, const char *path, int npoints, char *msg, size_t msglen)
{
    memset(s, 0, sizeof *s);
    hid_t file = open_normscope(path, msg, msglen);
    if (file < 0)
        return NS_ERR_INVALID;
    double *first = NULL;
    size_t n = 0;
    int st = NS_OK;
    htri_t has = H5LTpath_valid(file, "/sweep/fits/first_point", 1);
    if (has < 0) {
        snprintf(msg, msglen, "%s: cannot look up /sweep/fits (corrupt file?)", path);
        st = NS_ERR_INVALID;
    }
    if (has <= 0 || npoints < 2)
        goto done;
    if ((st = read_column(file, "/sweep/fits/first_point", path, &n, &first, msg, msglen)))
        goto done;
    for (int c = 0; c < NS_FIT_COUNT && st == NS_OK; c++) {
        char dp[64];
        snprintf(dp, sizeof dp, "/sweep/fits/%s", fit_names[c]);
        st = read_column(file, dp, path, &n, &s->fit[c], msg, msglen);
    }
    if (st != NS_OK)
        goto done;
    if (!(s->first = malloc(n * sizeof *s->first))) {
        snprintf(msg, msglen, "out of memory reading %s", path);
        st = NS_ERR_NOMEM;
        goto done;
    }
    /* the layout of the writer (cmd_propagate.c): series s starts at
     * (s / stride) stride per_series + s % stride, so the first `stride` series start at
     * 0, 1, ..., stride - 1 */
    st = NS_ERR_INVALID;
    int nseries = (int)n, per = nseries > 0 && npoints % nseries == 0 ? npoints / nseries : 0;
    int stride = 1;
    while (stride < nseries && first[stride] == stride)
        stride++;
    for (int k = 0; k < nseries && per >= 2; k++) {
        if (!(first[k] == (double)((k / stride) * stride * per + k % stride))) {
            per = 0;
            break;
        }
        s->first[k] = (int)first[k];
    }
    if (per < 2) {
        snprintf(msg, msglen, "%s: /sweep/fits/first_point does not lay out %d series over the "
                 "%d points of /runs", path, nseries, npoints);
        goto done;
    }
    s->nseries = nseries, s->per_series = per, s->stride = stride;
    st = NS_OK;
done:
    free(first);
    H5Fclose(file);
    if (st != NS_OK)
        ns_plot_sweep_free(s);
    return st;
}
