/* test_h5read.c: reads a file written by `normscope propagate` with the HDF5 C API and the
 * high-level H5LT/H5DS libraries, as a C consumer of the normscope/1 schema would.
 *
 * usage: test_h5read FILE DEPTH SEEDS
 *
 * Checks the schema attribute, /config/depth and /config/seeds against DEPTH and SEEDS, the rank,
 * dims and type of all eight /propagate datasets ([S, L+1], [S, L], [S, L, P] with P the length
 * of param_grad_ms's `names`), reads act_ms whole and checks it is finite, and reads every
 * dimension label with H5DSget_label. Every id is closed (verified with H5Fget_obj_count before
 * the file is closed) and every return value is checked. Prints only failures and a summary. */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int nchecks, nfail;

static int check(int ok, const char *what, const char *detail)
{
    nchecks++;
    if (!ok) {
        nfail++;
        fprintf(stderr, "FAIL: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    }
    return ok;
}

/* a scalar string attribute (fixed- or variable-length) into buf; 0 on success */
static int string_attr(hid_t file, const char *obj, const char *name, char *buf, size_t n)
{
    char what[256];
    int rank = -1, status = -1;
    snprintf(what, sizeof what, "attribute %s of %s", name, obj);
    if (!check(H5Aexists_by_name(file, obj, name, H5P_DEFAULT) > 0, what, "missing") ||
        !check(H5LTget_attribute_ndims(file, obj, name, &rank) >= 0 && rank == 0, what,
               "not a scalar"))
        return -1;
    hid_t a = H5Aopen_by_name(file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (!check(a >= 0, what, "H5Aopen_by_name failed"))
        return -1;
    hid_t ftype = H5Aget_type(a), mtype = H5I_INVALID_HID;
    if (check(ftype >= 0, what, "H5Aget_type failed") &&
        check(H5Tget_class(ftype) == H5T_STRING, what, "not a string")) {
        htri_t var = H5Tis_variable_str(ftype);
        size_t size = H5Tget_size(ftype);
        H5T_cset_t cset = H5Tget_cset(ftype); /* HDF5 converts no string between charsets */
        mtype = H5Tcopy(H5T_C_S1);
        if (!check(var >= 0 && cset >= 0 && mtype >= 0 && H5Tset_cset(mtype, cset) >= 0, what,
                   "H5Tis_variable_str/H5Tget_cset/H5Tcopy/H5Tset_cset failed")) {
            status = -1;
        } else if (var) {
            char *s = NULL;
            if (check(H5Tset_size(mtype, H5T_VARIABLE) >= 0, what, "H5Tset_size failed") &&
                check(H5Aread(a, mtype, &s) >= 0 && s != NULL, what, "H5Aread failed") &&
                check(strlen(s) < n, what, "longer than expected")) {
                memcpy(buf, s, strlen(s) + 1);
                status = 0;
            }
            if (s)
                check(H5free_memory(s) >= 0, what, "H5free_memory failed");
        } else if (check(size > 0 && size < n, what, "unexpected string size") &&
                   check(H5Tset_size(mtype, size + 1) >= 0, what, "H5Tset_size failed")) {
            memset(buf, 0, n);
            if (check(H5Aread(a, mtype, buf) >= 0, what, "H5Aread failed"))
                status = 0;
        }
    }
    if (mtype >= 0 && !check(H5Tclose(mtype) >= 0, what, "H5Tclose failed"))
        status = -1;
    if (ftype >= 0 && !check(H5Tclose(ftype) >= 0, what, "H5Tclose failed"))
        status = -1;
    if (!check(H5Aclose(a) >= 0, what, "H5Aclose failed"))
        status = -1;
    return status;
}

/* an integer attribute; 0 on success */
static int int_attr(hid_t file, const char *obj, const char *name, long long *v)
{
    char what[256];
    hsize_t dims[1] = {0};
    H5T_class_t cls;
    size_t size = 0;
    int rank = -1;
    snprintf(what, sizeof what, "attribute %s of %s", name, obj);
    if (!check(H5Aexists_by_name(file, obj, name, H5P_DEFAULT) > 0, what, "missing"))
        return -1;
    if (!check(H5LTget_attribute_ndims(file, obj, name, &rank) >= 0 && rank == 0, what,
               "not a scalar") ||
        !check(H5LTget_attribute_info(file, obj, name, dims, &cls, &size) >= 0, what,
               "H5LTget_attribute_info failed") ||
        !check(cls == H5T_INTEGER, what, "not an integer"))
        return -1;
    if (!check(H5LTget_attribute_long_long(file, obj, name, v) >= 0, what,
               "H5LTget_attribute_long_long failed"))
        return -1;
    return 0;
}

/* the length of the 1-D `names` attribute of param_grad_ms, or -1 */
static long long names_count(hid_t file)
{
    const char *obj = "/propagate/param_grad_ms", *what = "attribute names of param_grad_ms";
    if (!check(H5Aexists_by_name(file, obj, "names", H5P_DEFAULT) > 0, what, "missing"))
        return -1;
    hid_t a = H5Aopen_by_name(file, obj, "names", H5P_DEFAULT, H5P_DEFAULT);
    if (!check(a >= 0, what, "H5Aopen_by_name failed"))
        return -1;
    long long count = -1;
    hid_t space = H5Aget_space(a), type = H5Aget_type(a);
    if (check(space >= 0 && type >= 0, what, "H5Aget_space/H5Aget_type failed")) {
        int rank = H5Sget_simple_extent_ndims(space);
        hssize_t np = H5Sget_simple_extent_npoints(space);
        if (check(rank == 1 && np > 0, what, "not a non-empty 1-D array") &&
            check(H5Tget_class(type) == H5T_STRING, what, "not strings"))
            count = (long long)np;
    }
    if (type >= 0 && !check(H5Tclose(type) >= 0, what, "H5Tclose failed"))
        count = -1;
    if (space >= 0 && !check(H5Sclose(space) >= 0, what, "H5Sclose failed"))
        count = -1;
    if (!check(H5Aclose(a) >= 0, what, "H5Aclose failed"))
        count = -1;
    return count;
}

/* rank, dims, type and dimension labels of one dataset; 1 if rank, dims and type are right */
static int check_dataset(hid_t file, const char *name, int rank, const hsize_t *want,
                          const char *const *labels)
{
    char path[128], what[160], detail[256];
    snprintf(path, sizeof path, "/propagate/%s", name);
    snprintf(what, sizeof what, "dataset %s", path);
    if (!check(H5Lexists(file, "/propagate", H5P_DEFAULT) > 0 &&
                   H5Lexists(file, path, H5P_DEFAULT) > 0,
               what, "missing"))
        return 0;
    int got_rank = -1;
    if (!check(H5LTget_dataset_ndims(file, path, &got_rank) >= 0, what,
               "H5LTget_dataset_ndims failed"))
        return 0;
    snprintf(detail, sizeof detail, "rank %d, expected %d", got_rank, rank);
    if (!check(got_rank == rank, what, detail))
        return 0;
    hsize_t dims[3] = {0, 0, 0};
    H5T_class_t cls;
    size_t size = 0;
    if (!check(H5LTget_dataset_info(file, path, dims, &cls, &size) >= 0, what,
               "H5LTget_dataset_info failed"))
        return 0;
    int ok = 1;
    for (int i = 0; i < rank; i++) {
        snprintf(detail, sizeof detail, "dim %d is %llu, expected %llu", i,
                 (unsigned long long)dims[i], (unsigned long long)want[i]);
        ok &= check(dims[i] == want[i], what, detail);
    }
    ok &= check(cls == H5T_FLOAT && size == 8, what, "not float64");

    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (!check(d >= 0, what, "H5Dopen2 failed"))
        return 0;
    hid_t type = H5Dget_type(d);
    if (check(type >= 0, what, "H5Dget_type failed")) {
        check(H5Tequal(type, H5T_IEEE_F64LE) > 0, what, "type is not H5T_IEEE_F64LE");
        check(H5Tclose(type) >= 0, what, "H5Tclose failed");
    }
    for (int i = 0; i < rank; i++) {
        char label[64];
        memset(label, 0, sizeof label);
        ssize_t n = H5DSget_label(d, (unsigned)i, label, sizeof label);
        snprintf(detail, sizeof detail, "dimension %d label '%s' (length %zd), expected '%s'", i,
                 n >= 0 ? label : "?", n, labels[i]);
        check(n >= 0 && strcmp(label, labels[i]) == 0, what, detail);
    }
    check(H5Dclose(d) >= 0, what, "H5Dclose failed");
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test_h5read FILE DEPTH SEEDS\n");
        return 2;
    }
    const char *fname = argv[1];
    long long want_depth = atoll(argv[2]), want_seeds = atoll(argv[3]);
    if (want_depth < 1 || want_seeds < 1) {
        fprintf(stderr, "test_h5read: DEPTH and SEEDS must be positive\n");
        return 2;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* failures are reported one line each, below */

    if (!check(H5Fis_hdf5(fname) > 0, fname, "not an HDF5 file (or missing)"))
        goto summary;
    hid_t f = H5Fopen(fname, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (!check(f >= 0, fname, "H5Fopen failed"))
        goto summary;

    char buf[256], detail[512];
    if (string_attr(f, "/", "schema", buf, sizeof buf) == 0) {
        snprintf(detail, sizeof detail, "'%s', expected 'normscope/1'", buf);
        check(strcmp(buf, "normscope/1") == 0, "schema", detail);
    }
    long long depth = -1, seeds = -1;
    if (int_attr(f, "/config", "depth", &depth) == 0) {
        snprintf(detail, sizeof detail, "%lld, expected %lld", depth, want_depth);
        check(depth == want_depth, "/config/depth", detail);
    }
    if (int_attr(f, "/config", "seeds", &seeds) == 0) {
        snprintf(detail, sizeof detail, "%lld, expected %lld", seeds, want_seeds);
        check(seeds == want_seeds, "/config/seeds", detail);
    }
    long long P = names_count(f);

    /* shapes follow from the expected values, not from what the file says */
    hsize_t S = (hsize_t)want_seeds, L = (hsize_t)want_depth;
    static const char *const seed_layer[] = {"seed", "layer"};
    static const char *const seed_block[] = {"seed", "block"};
    static const char *const seed_block_param[] = {"seed", "block", "param"};
    const hsize_t d1[] = {S, L + 1}, d0[] = {S, L};
    static const char *const l1[] = {"act_ms", "act_var", "grad_ms", "cos_tokens", "eff_rank"};
    static const char *const l0[] = {"cos_layer", "branch_ms"};
    int act_ms_ok = 0;
    for (size_t i = 0; i < sizeof l1 / sizeof l1[0]; i++) {
        int ok = check_dataset(f, l1[i], 2, d1, seed_layer);
        if (i == 0)
            act_ms_ok = ok;
    }
    for (size_t i = 0; i < sizeof l0 / sizeof l0[0]; i++)
        check_dataset(f, l0[i], 2, d0, seed_block);
    if (P > 0) {
        const hsize_t dp[] = {S, L, (hsize_t)P};
        check_dataset(f, "param_grad_ms", 3, dp, seed_block_param);
    }

    /* act_ms whole (only if its shape is right: the buffer is sized from it): finite, and
     * layer 0 (the N(0,1) input) positive */
    size_t n = (size_t)(S * (L + 1));
    double *act = act_ms_ok ? calloc(n, sizeof *act) : NULL;
    if (act_ms_ok && check(act != NULL, "calloc", "out of memory")) {
        if (check(H5LTread_dataset_double(f, "/propagate/act_ms", act) >= 0,
                  "dataset /propagate/act_ms", "H5LTread_dataset_double failed")) {
            size_t bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += !isfinite(act[i]);
            snprintf(detail, sizeof detail, "%zu of %zu values are not finite", bad, n);
            check(bad == 0, "act_ms", detail);
            for (hsize_t s = 0; s < S; s++)
                check(act[s * (L + 1)] > 0, "act_ms", "input mean square is not positive");
        }
        free(act);
    }

    /* every id we opened is closed: only the file itself is still open */
    ssize_t open_ids = H5Fget_obj_count(f, H5F_OBJ_ALL);
    snprintf(detail, sizeof detail, "%zd ids open in the file before closing it, expected 1",
             open_ids);
    check(open_ids == 1, "id leak", detail);
    check(H5Fclose(f) >= 0, fname, "H5Fclose failed");

summary:
    if (nfail) {
        fprintf(stderr, "test_h5read: %d of %d checks FAILED\n", nfail, nchecks);
        return 1;
    }
    printf("test_h5read: all %d checks passed\n", nchecks);
    return 0;
}
