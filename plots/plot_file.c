/* plot_file.c: reading a normscope file for plotting. Every HDF5 id is closed by the function
 * that opened it; every call is checked; a failure path closes everything. */
#define _POSIX_C_SOURCE 200809L
#include "plot_file.h"
#include "h5out.h"
#include "h5schema.h"
#include "normscope.h"
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the datasets a figure may use, by their paths in the schema table (analysis/h5/h5schema.c), which
 * gives their shapes: a path that is not in the table cannot be read (read_entry) */
static const char *const catalog[] = {
    [NS_DS_ACT_MS] = "/propagate/act_ms",
    [NS_DS_GRAD_MS] = "/propagate/grad_ms",
    [NS_DS_COS_TOKENS] = "/propagate/cos_tokens",
    [NS_DS_EFF_RANK] = "/propagate/eff_rank",
    [NS_DS_COS_LAYER] = "/propagate/cos_layer",
    [NS_DS_ATTN_ENTROPY] = "/propagate/attn_entropy",
    [NS_DS_ATTN_ENTROPY_HEAD] = "/propagate/attn_entropy_head",
    [NS_DS_EXPERT_LOAD] = "/propagate/expert_load",
    [NS_DS_ROUTER_ENTROPY] = "/propagate/router_entropy",
    [NS_DS_LOAD_CV] = "/propagate/load_cv",
    [NS_DS_DROPPED_FRAC] = "/propagate/dropped_frac",
    [NS_DS_THEORY_ACT_MS] = "/theory/act_ms",
    [NS_DS_THEORY_ACT_MS_BOUND] = "/theory/act_ms_bound",
    [NS_DS_THEORY_GRAD_MS] = "/theory/grad_ms",
    [NS_DS_THEORY_COS_TOKENS] = "/theory/cos_tokens",
    [NS_DS_THEORY_COS_LAYER] = "/theory/cos_layer",
};
_Static_assert(sizeof catalog / sizeof catalog[0] == NS_DS_COUNT, "one path per ns_plot_ds");

const char *ns_plot_ds_path(ns_plot_ds d) { return d < NS_DS_COUNT ? catalog[d] : ""; }

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

enum { WRONG_SHAPE = -1, TOO_LARGE = -2 }; /* read_dataset's refusals, besides NS_ERR_* */

/* a float or integer dataset of any rank up to 3, converted to double; an empty one only if
 * allow_empty (then out->v is a valid, empty allocation). Its shape is known (out->rank,
 * out->dims) before anything is allocated: fits(ctx, out) must accept it, and its size must not
 * overflow or pass NS_H5_MAX_BYTES (ns_h5_extent_size). WRONG_SHAPE, TOO_LARGE: refused. */
static int read_dataset(hid_t file, const char *path, ns_plot_array *out, int allow_empty,
                        int (*fits)(const void *, const ns_plot_array *), const void *ctx)
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
    size_t bytes;
    out->rank = rank;
    for (int i = 0; i < rank; i++)
        out->dims[i] = (size_t)dims[i];
    if (!fits(ctx, out) || !ns_h5_extent_size(rank, out->dims, sizeof *out->v, &bytes)) {
        status = fits(ctx, out) ? TOO_LARGE : WRONG_SHAPE;
        goto done;
    }
    if (bytes == 0 && !allow_empty)
        goto done;
    if (!(out->v = malloc(bytes ? bytes : 1))) {
        status = NS_ERR_NOMEM;
        goto done;
    }
    if (bytes && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->v) < 0) {
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

/* the shape of the table's entry for the sizes of /config (0: any size there) */
struct want {
    int rank;
    size_t dims[NS_H5SCHEMA_MAX_RANK];
};

static int shape_fits(const void *ctx, const ns_plot_array *a)
{
    const struct want *w = ctx;
    int ok = a->rank == w->rank;
    for (int i = 0; ok && i < w->rank; i++)
        ok = w->dims[i] == 0 || a->dims[i] == w->dims[i];
    return ok;
}

/* Reads prefix + path (a table path, "/propagate/act_ms") into *out, an empty dataset only if
 * allow_empty. The path must be in the schema table (analysis/h5/h5schema.c), and the dataset must
 * have the table's rank and its symbolic shape with the sizes z (0 in z: any size there).
 * NS_ERR_INVALID or NS_ERR_NOMEM with a one-line message naming source. */
static int read_entry(hid_t file, const char *prefix, const char *path, const ns_h5schema_sizes *z,
                      int allow_empty, ns_plot_array *out, const char *source, char *msg,
                      size_t msglen)
{
    int id = ns_h5schema_find(path);
    if (id < 0) {
        snprintf(msg, msglen, "%s: %s is not a dataset of the schema table", source, path);
        return NS_ERR_INVALID;
    }
    char dp[160];
    snprintf(dp, sizeof dp, "%s/%s", prefix, ns_h5schema_get((ns_h5schema_id)id)->path);
    struct want w;
    w.rank = ns_h5schema_dims((ns_h5schema_id)id, z, w.dims);
    int st = read_dataset(file, dp, out, allow_empty, shape_fits, &w);
    if (st == NS_ERR_NOMEM)
        snprintf(msg, msglen, "out of memory reading %s from %s", dp, source);
    else if (st == NS_ERR_INVALID)
        snprintf(msg, msglen, "%s: cannot read %s as a numeric dataset of rank 1 to 3", source,
                 dp);
    else if (st == TOO_LARGE)
        snprintf(msg, msglen, "%s: %s is too large to read", source, dp);
    if (st != WRONG_SHAPE)
        return st == TOO_LARGE ? NS_ERR_INVALID : st;
    char got[64], exp[64], sym[64];
    for (int i = 0; i < w.rank; i++)
        if (w.dims[i] == 0 && i < out->rank)
            w.dims[i] = out->dims[i];
    format_dims(got, sizeof got, out->rank, out->dims);
    format_dims(exp, sizeof exp, w.rank, w.dims);
    ns_h5schema_shape((ns_h5schema_id)id, sym, sizeof sym);
    snprintf(msg, msglen, "%s: %s has shape %s, expected %s (%s, sizes from /config)", source,
             dp, got, exp, sym);
    return NS_ERR_INVALID;
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
    if (r < 0)
        return NS_ERR_INVALID;
    /* files written before the finite-width theory have no order: their MLP theory is the
     * d -> infinity one with the old norm factor, and the legend then says nothing of order */
    r = read_string_attr(file, group, "order", a->order, sizeof a->order);
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
        const char *path; /* of the schema table, which gives the shape */
        double **out;
        int family; /* 0 per step, 1 per probe, 2 per event */
    } series[] = {
        {"/train/step", &t->step, 0},
        {"/train/loss", &t->loss, 0},
        {"/train/grad_norm", &t->grad_norm, 0},
        {"/train/probe/step", &t->probe_step, 1},
        {"/train/probe/eval_loss", &t->eval_loss, 1},
        {"/train/probe/grad_ms", &t->grad_ms, 1},
        {"/train/events/step", &t->ev_step, 2},
        {"/train/events/kind", &t->ev_kind, 2},
        {"/train/events/value", &t->ev_value, 2},
    };
    const ns_h5schema_sizes z = {.depth = (size_t)f->depth};
    size_t *len[3] = {&t->nsteps, &t->nrecords, &t->nevents};
    for (int k = 0; k < 3; k++)
        *len[k] = (size_t)-1;
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++) {
        ns_plot_array a = {0};
        int st = read_entry(file, "", series[i].path, &z, 1, &a, f->source, msg, msglen);
        if (st != NS_OK)
            return st; /* the caller frees what was read */
        size_t rows = a.dims[0];
        *series[i].out = a.v;
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
    /* sizes /config fixes; heads and experts only when it gives them */
    const ns_h5schema_sizes z = {.seeds = (size_t)f->seeds, .depth = (size_t)f->depth,
                                 .heads = f->heads > 0 ? (size_t)f->heads : 0,
                                 .experts = f->experts > 0 ? (size_t)f->experts : 0};
    for (int d = 0; d < NS_DS_COUNT; d++) {
        /* a path the table lacks is a dataset nothing writes: refused, never silently absent */
        int id = ns_h5schema_find(catalog[d]);
        if (id < 0) {
            snprintf(msg, msglen, "%s is not a dataset of the schema table (analysis/h5/h5schema.c)",
                     catalog[d]);
            goto fail;
        }
        snprintf(dp, sizeof dp, "%s%s", prefix, catalog[d]);
        htri_t present = H5LTpath_valid(file, dp, 1);
        if (present < 0) {
            snprintf(msg, msglen, "%s: cannot look up %s (corrupt file?)", path, dp);
            goto fail;
        }
        if (!present)
            continue;
        if (f->depth < 1 ||
            (ns_h5schema_get((ns_h5schema_id)id)->dims[0] == NS_H5D_SEED && f->seeds < 1)) {
            snprintf(msg, msglen, "%s: has %s but no /config depth and seeds", f->source,
                     catalog[d]);
            goto fail;
        }
        ns_plot_array *a = &f->ds[d];
        a->exact = -1;
        if ((status = read_entry(file, prefix, catalog[d], &z, 0, a, f->source, msg, msglen)))
            goto fail;
        status = NS_ERR_INVALID;
        if (strncmp(catalog[d], "/theory/", 8) == 0 &&
            read_theory_attrs(file, dp, group, a) != NS_OK) {
            snprintf(msg, msglen, "%s: %s has a malformed exact or model attribute", f->source,
                     catalog[d]);
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

/* a /sweep/fits column of the schema table: n values (any n if *n is 0; then *n receives it) */
static int read_column(hid_t file, const char *name, const char *fname, size_t *n, double **out,
                       char *msg, size_t msglen)
{
    ns_plot_array a = {0};
    char path[64];
    snprintf(path, sizeof path, "/sweep/fits/%s", name);
    const ns_h5schema_sizes z = {.series = *n};
    int st = read_entry(file, "", path, &z, 0, &a, fname, msg, msglen);
    if (st != NS_OK)
        return st;
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
    if ((st = read_column(file, "first_point", path, &n, &first, msg, msglen)))
        goto done;
    for (int c = 0; c < NS_FIT_COUNT && st == NS_OK; c++)
        st = read_column(file, fit_names[c], path, &n, &s->fit[c], msg, msglen);
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
