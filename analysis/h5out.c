/* h5out.c: the HDF5 recorder. Every id is closed by its opener; every return value checked. */
#define _POSIX_C_SOURCE 200809L
#include "h5out.h"
#include "normscope.h"
#include <errno.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct ns_h5 {
    hid_t file;
    char *path, *tmp;
    char err[512];
};

static int fail(ns_h5 *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->err, sizeof h->err, fmt, ap);
    va_end(ap);
    return NS_ERR_IO;
}

/* HDF5 prints its error stack to stderr by default; we report one line ourselves */
static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

const char *ns_h5_error(const ns_h5 *h) { return h ? h->err : "out of memory"; }

int ns_h5_create(ns_h5 **out, const char *path)
{
    quiet_hdf5();
    ns_h5 *h = calloc(1, sizeof *h);
    *out = h;
    if (!h)
        return NS_ERR_NOMEM;
    h->file = H5I_INVALID_HID;
    size_t n = strlen(path) + 40;
    h->path = strdup(path);
    h->tmp = malloc(n);
    if (!h->path || !h->tmp)
        return fail(h, "out of memory");
    snprintf(h->tmp, n, "%s.partial-%ld", path, (long)getpid());
    /* probe with a plain open first: HDF5's error stack does not keep errno */
    FILE *probe = fopen(h->tmp, "wb");
    if (!probe)
        return fail(h, "cannot create output file %s: %s", path, strerror(errno));
    fclose(probe);
    h->file = H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (h->file < 0) {
        unlink(h->tmp);
        return fail(h, "cannot create HDF5 file %s", h->tmp);
    }
    return NS_OK;
}

static int write_attr(ns_h5 *h, const char *obj, const char *name, hid_t type, hid_t space,
                      const void *value)
{
    int status = NS_OK;
    hid_t o = H5Oopen(h->file, obj, H5P_DEFAULT);
    hid_t a = o < 0 ? H5I_INVALID_HID : H5Acreate2(o, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, type, value) < 0)
        status = fail(h, "cannot write attribute %s of %s in %s", name, obj, h->path);
    if (a >= 0)
        H5Aclose(a);
    if (o >= 0)
        H5Oclose(o);
    return status;
}

int ns_h5_attr_string(ns_h5 *h, const char *obj, const char *name, const char *value)
{
    return ns_h5_attr_strings(h, obj, name, &value, 0);
}

/* variable-length UTF-8, so that h5py reads them as str (fixed-length ones come back as bytes);
 * n = 0 writes one scalar string */
int ns_h5_attr_strings(ns_h5 *h, const char *obj, const char *name, const char *const *values,
                       int n)
{
    hsize_t dim = (hsize_t)n;
    hid_t type = H5Tcopy(H5T_C_S1);
    hid_t space = n ? H5Screate_simple(1, &dim, NULL) : H5Screate(H5S_SCALAR);
    int status;
    if (type < 0 || space < 0 || H5Tset_size(type, H5T_VARIABLE) < 0 ||
        H5Tset_cset(type, H5T_CSET_UTF8) < 0)
        status = fail(h, "cannot make a string type for attribute %s", name);
    else
        status = write_attr(h, obj, name, type, space, values);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    return status;
}

static int attr_scalar(ns_h5 *h, const char *obj, const char *name, hid_t type, const void *v)
{
    hid_t space = H5Screate(H5S_SCALAR);
    if (space < 0)
        return fail(h, "cannot make a dataspace for attribute %s", name);
    int status = write_attr(h, obj, name, type, space, v);
    H5Sclose(space);
    return status;
}

int ns_h5_attr_double(ns_h5 *h, const char *obj, const char *name, double value)
{
    return attr_scalar(h, obj, name, H5T_NATIVE_DOUBLE, &value);
}

int ns_h5_attr_int(ns_h5 *h, const char *obj, const char *name, long long value)
{
    return attr_scalar(h, obj, name, H5T_NATIVE_LLONG, &value);
}

int ns_h5_write_root_attrs(ns_h5 *h, const char *command_line)
{
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int status;
    if ((status = ns_h5_attr_string(h, "/", "schema", NS_SCHEMA)) ||
        (status = ns_h5_attr_string(h, "/", "version", ns_version())) ||
        (status = ns_h5_attr_string(h, "/", "command_line", command_line)) ||
        (status = ns_h5_attr_string(h, "/", "created_utc", created)) ||
        (status = ns_h5_attr_string(h, "/", "blas", ns_blas_info())))
        return status;
    return NS_OK;
}

int ns_h5_group(ns_h5 *h, const char *path)
{
    hid_t g = H5Gcreate2(h->file, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return fail(h, "cannot create group %s in %s", path, h->path);
    H5Gclose(g);
    return NS_OK;
}

int ns_h5_dataset(ns_h5 *h, const char *path, int rank, const size_t *dims, const double *data,
                  const char *description, const char *const *labels)
{
    hsize_t hd[8];
    if (rank < 1 || rank > 8)
        return fail(h, "dataset %s: rank %d out of range", path, rank);
    for (int i = 0; i < rank; i++)
        hd[i] = dims[i];
    int status = NS_OK;
    hid_t space = H5Screate_simple(rank, hd, NULL);
    hid_t d = space < 0 ? H5I_INVALID_HID
                        : H5Dcreate2(h->file, path, H5T_IEEE_F64LE, space, H5P_DEFAULT,
                                     H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        status = fail(h, "cannot write dataset %s to %s", path, h->path);
    for (int i = 0; status == NS_OK && labels && i < rank; i++)
        if (H5DSset_label(d, (unsigned)i, labels[i]) < 0)
            status = fail(h, "cannot label dimension %d of %s", i, path);
    if (d >= 0)
        H5Dclose(d);
    if (space >= 0)
        H5Sclose(space);
    if (status == NS_OK && description)
        status = ns_h5_attr_string(h, path, "description", description);
    return status;
}

int ns_h5_commit(ns_h5 *h)
{
    /* flush first: a full disk shows up here or at close, and then nothing is renamed */
    herr_t flushed = H5Fflush(h->file, H5F_SCOPE_GLOBAL);
    herr_t closed = H5Fclose(h->file);
    h->file = H5I_INVALID_HID;
    if (flushed < 0 || closed < 0) {
        int status = fail(h, "cannot finish writing %s (disk full?)", h->path);
        ns_h5_abort(h);
        return status;
    }
    if (rename(h->tmp, h->path) != 0) {
        int status = fail(h, "cannot move %s to %s: %s", h->tmp, h->path, strerror(errno));
        ns_h5_abort(h);
        return status;
    }
    free(h->tmp);
    free(h->path);
    free(h);
    return NS_OK;
}

void ns_h5_abort(ns_h5 *h)
{
    if (!h)
        return;
    if (h->file >= 0)
        H5Fclose(h->file);
    if (h->tmp)
        unlink(h->tmp);
    free(h->tmp);
    free(h->path);
    free(h);
}

int ns_h5_check_readable(const char *path, char *msg, size_t msglen)
{
    quiet_hdf5();
    if (access(path, R_OK) != 0) {
        snprintf(msg, msglen, "cannot read %s: %s", path, strerror(errno));
        return NS_ERR_IO;
    }
    if (H5Fis_hdf5(path) <= 0) {
        snprintf(msg, msglen, "%s is not an HDF5 file (or it is truncated)", path);
        return NS_ERR_IO;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        snprintf(msg, msglen, "cannot open %s as HDF5 (truncated or corrupt?)", path);
        return NS_ERR_IO;
    }
    int status = NS_OK;
    if (H5Aexists_by_name(f, "/", "schema", H5P_DEFAULT) <= 0) {
        snprintf(msg, msglen, "%s has no normscope schema attribute", path);
        status = NS_ERR_IO;
    }
    H5Fclose(f);
    return status;
}
