/* h5out.c: the HDF5 recorder. Every id is closed by its opener; every return value checked.
 *
 * The file is built in memory (HDF5's core driver) and its image written to disk by us with
 * checked write() and fsync(): a full disk or a file-size limit is then a failed write that we
 * report, rather than a failed H5Fclose after which HDF5 keeps a broken file open (and crashes at
 * exit). Propagate files are small; streaming training logs will need the sec2 driver instead. */
#define _POSIX_C_SOURCE 200809L
#include "h5out.h"
#include "files.h"
#include "normscope.h"
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERIES 64

struct ns_h5 {
    hid_t file;
    char *path, *tmp; /* the output, and the temporary it is written under (files.h) */
    char *tmpdir;     /* a log's private directory that holds tmp, or NULL */
    int fd;           /* tmp, open, for the image (ns_h5_create); or -1 */
    char err[512];
    /* logs: the open series, found by path */
    int log, nseries;
    char *series_name[MAX_SERIES];
    hid_t series[MAX_SERIES];
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

/* a new handle for path, which must be able to be an output (files.h); *out set even on
 * failure, for its message */
static int new_output(ns_h5 **out, const char *path, int log)
{
    quiet_hdf5();
    ns_h5 *h = calloc(1, sizeof *h);
    *out = h;
    if (!h)
        return NS_ERR_NOMEM;
    h->file = H5I_INVALID_HID;
    h->fd = -1;
    h->log = log;
    if (!(h->path = strdup(path)))
        return fail(h, "out of memory");
    if (ns_file_check_output(path, h->err, sizeof h->err) != NS_OK)
        return NS_ERR_IO;
    return NS_OK;
}

/* h->tmp, created empty now and exclusively (files.h): an unwritable path fails before any
 * work is done, and with errno in the message (HDF5's error stack drops it) */
static int create_partial(ns_h5 *h)
{
    return ns_file_temp(h->path, &h->tmp, &h->fd, h->err, sizeof h->err) == NS_OK ? NS_OK
                                                                                  : NS_ERR_IO;
}

int ns_h5_create(ns_h5 **out, const char *path)
{
    int status = new_output(out, path, 0);
    ns_h5 *h = *out;
    if (status == NS_OK)
        status = create_partial(h);
    if (status)
        return status;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 20, 0) >= 0)
        h->file = H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (h->file < 0)
        return fail(h, "cannot create an in-memory HDF5 file for %s", path);
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

int ns_h5_dataset_strings(ns_h5 *h, const char *path, int n, const char *const *values,
                          const char *description)
{
    hsize_t dim = (hsize_t)n;
    int status = NS_OK;
    hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate_simple(1, &dim, NULL), d = H5I_INVALID_HID;
    if (type < 0 || space < 0 || H5Tset_size(type, H5T_VARIABLE) < 0 ||
        H5Tset_cset(type, H5T_CSET_UTF8) < 0 ||
        (d = H5Dcreate2(h->file, path, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0)
        status = fail(h, "cannot write dataset %s to %s", path, h->path);
    if (d >= 0)
        H5Dclose(d);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (status == NS_OK && description)
        status = ns_h5_attr_string(h, path, "description", description);
    return status;
}

int ns_h5_commit(ns_h5 *h)
{
    int status = NS_OK, err;
    unsigned char *image = NULL;
    ssize_t size = H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0
                       ? -1 : H5Fget_file_image(h->file, NULL, 0);
    if (size > 0 && (image = malloc((size_t)size)) != NULL &&
        H5Fget_file_image(h->file, image, (size_t)size) != size)
        size = -1;
    if (size <= 0 || !image)
        status = fail(h, "cannot assemble the HDF5 image of %s", h->path);
    if (H5Fclose(h->file) < 0 && status == NS_OK)
        status = fail(h, "cannot close the in-memory HDF5 file of %s", h->path);
    h->file = H5I_INVALID_HID;
    if (status == NS_OK) { /* the image into the temporary created at the start, on disk */
        err = ns_file_write_close(h->fd, image, (size_t)size);
        h->fd = -1;
        if (err)
            status = fail(h, "cannot write %s: %s", h->path, strerror(err));
    }
    free(image);
    if (status == NS_OK &&
        (status = ns_file_commit(h->tmp, h->path, h->err, sizeof h->err)) != NS_OK)
        status = NS_ERR_IO;
    if (status == NS_OK) {
        free(h->tmp);
        h->tmp = NULL;
    }
    return status;
}

void ns_h5_free(ns_h5 *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->nseries; i++) {
        H5Dclose(h->series[i]);
        free(h->series_name[i]);
    }
    if (h->file >= 0)
        H5Fclose(h->file);
    if (h->fd >= 0)
        close(h->fd);
    if (h->tmp)
        ns_file_discard(h->tmp, 0);
    if (h->tmpdir)
        ns_file_discard(h->tmpdir, 1);
    free(h->tmp);
    free(h->tmpdir);
    free(h->path);
    free(h);
}

/* read-only; a log that is being written, or whose writer was killed, still has its
 * "open for writing" mark, and opens only as a SWMR reader */
_Static_assert(sizeof(hid_t) == sizeof(int64_t), "ns_h5_open_readonly returns an hid_t");
int64_t ns_h5_open_readonly(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0)
        return f;
    /* a SWMR reader retries a metadata read whose checksum fails (100 times by default,
     * sleeping between tries): a damaged log is refused after a few */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_metadata_read_attempts(fapl, 4) < 0) {
        if (fapl >= 0)
            H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl);
    H5Pclose(fapl);
    return f;
}

int ns_h5_check_readable(const char *path, char *msg, size_t msglen)
{
    quiet_hdf5();
    int st = ns_file_check_input(NULL, path, msg, msglen); /* a FIFO would block HDF5's open */
    if (st != NS_OK)
        return st;
    if (access(path, R_OK) != 0) {
        snprintf(msg, msglen, "cannot read %s: %s", path, strerror(errno));
        return NS_ERR_IO;
    }
    if (H5Fis_hdf5(path) <= 0) {
        snprintf(msg, msglen, "%s is not an HDF5 file (or it is truncated)", path);
        return NS_ERR_IO;
    }
    hid_t f = ns_h5_open_readonly(path);
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

/* ---- logs ---------------------------------------------------------------------------------- */

static hid_t latest_format_fapl(void)
{
    /* SWMR needs the latest file format */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

static int open_log(ns_h5 **out, const char *path, int create)
{
    int status = new_output(out, path, 1);
    ns_h5 *h = *out;
    if (status)
        return status;
    if (!create && ns_file_check_input(NULL, path, h->err, sizeof h->err) != NS_OK)
        return NS_ERR_IO; /* a FIFO would block H5Fopen */
    if (create) {
        /* A new log is laid out under a temporary name and renamed once SWMR writing has
         * started (ns_h5_start_swmr): a reader polling the path (h5py, a notebook) never finds
         * a log half laid out, nor takes a file lock that makes H5Fcreate or the start of SWMR
         * fail, as it did in e2e_train. HDF5 creates it by name (H5F_ACC_TRUNC), so it goes
         * into a private directory (files.h) where nobody else can plant a link. */
        if (ns_file_temp_dir(path, &h->tmpdir, h->err, sizeof h->err) != NS_OK)
            return NS_ERR_IO;
        size_t n = strlen(h->tmpdir) + 8;
        if (!(h->tmp = malloc(n)))
            return fail(h, "out of memory");
        snprintf(h->tmp, n, "%s/log.h5", h->tmpdir);
        ns_file_track(h->tmp, 0);
    }
    hid_t fapl = latest_format_fapl();
    if (fapl >= 0)
        h->file = create ? H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
                         : H5Fopen(path, H5F_ACC_RDWR, fapl);
    /* A writer killed with SIGKILL leaves the superblock marked "open for SWMR writing", and
     * HDF5 then refuses to open the file for writing until `h5clear -s` clears the mark. Resuming
     * is the user's own statement that the writer is gone (and HDF5's file lock still refuses a
     * writer that is alive): clear the mark as h5clear does, through the file-access property
     * it sets. */
    hbool_t clear = 1;
    if (h->file < 0 && !create && fapl >= 0 && H5Pexist(fapl, "clear_status_flags") > 0 &&
        H5Pset(fapl, "clear_status_flags", &clear) >= 0)
        h->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (h->file < 0)
        return fail(h, "cannot %s %s as an HDF5 log", create ? "create" : "open", path);
    return NS_OK;
}

int ns_h5_create_log(ns_h5 **out, const char *path) { return open_log(out, path, 1); }
int ns_h5_open_log(ns_h5 **out, const char *path) { return open_log(out, path, 0); }

static hid_t series_id(ns_h5 *h, const char *path)
{
    for (int i = 0; i < h->nseries; i++)
        if (strcmp(h->series_name[i], path) == 0)
            return h->series[i];
    if (h->nseries == MAX_SERIES)
        return H5I_INVALID_HID;
    hid_t d = H5Dopen2(h->file, path, H5P_DEFAULT); /* an existing log (resume) */
    if (d >= 0) {
        h->series_name[h->nseries] = strdup(path);
        h->series[h->nseries++] = d;
    }
    return d;
}

int ns_h5_series(ns_h5 *h, const char *path, int rank_inner, const size_t *inner,
                 const char *description, const char *const *labels)
{
    hsize_t dims[8], maxdims[8], chunk[8];
    if (rank_inner < 0 || rank_inner > 6 || h->nseries == MAX_SERIES)
        return fail(h, "series %s: too many series or dimensions", path);
    dims[0] = 0, maxdims[0] = H5S_UNLIMITED;
    size_t row = 1;
    for (int i = 0; i < rank_inner; i++)
        dims[i + 1] = maxdims[i + 1] = chunk[i + 1] = inner[i], row *= inner[i];
    /* chunks of about 32 KiB of rows, at least one row */
    chunk[0] = row * 8 >= 32768 ? 1 : 32768 / (row * 8);
    int status = NS_OK;
    hid_t space = H5Screate_simple(rank_inner + 1, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), d = H5I_INVALID_HID;
    if (space < 0 || dcpl < 0 || H5Pset_chunk(dcpl, rank_inner + 1, chunk) < 0 ||
        (d = H5Dcreate2(h->file, path, H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
        status = fail(h, "cannot create series %s in %s", path, h->path);
    for (int i = 0; status == NS_OK && labels && i <= rank_inner; i++)
        if (H5DSset_label(d, (unsigned)i, labels[i]) < 0)
            status = fail(h, "cannot label dimension %d of %s", i, path);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (space >= 0)
        H5Sclose(space);
    if (status == NS_OK) {
        h->series_name[h->nseries] = strdup(path);
        h->series[h->nseries++] = d;
        if (description)
            status = ns_h5_attr_string(h, path, "description", description);
    } else if (d >= 0) {
        H5Dclose(d);
    }
    return status;
}

/* the dataset's current shape */
static int shape_of(hid_t d, hsize_t *dims)
{
    hid_t space = H5Dget_space(d);
    int rank = space < 0 ? -1 : H5Sget_simple_extent_dims(space, dims, NULL);
    if (space >= 0)
        H5Sclose(space);
    return rank;
}

int ns_h5_append(ns_h5 *h, const char *path, const double *row)
{
    hid_t d = series_id(h, path);
    hsize_t dims[8], start[8] = {0}, count[8];
    int rank = d < 0 ? -1 : shape_of(d, dims);
    if (rank < 1)
        return fail(h, "cannot append to %s in %s", path, h->path);
    start[0] = dims[0];
    count[0] = 1;
    for (int i = 1; i < rank; i++)
        count[i] = dims[i];
    dims[0]++;
    int status = NS_OK;
    hid_t fspace = H5I_INVALID_HID, mspace = H5Screate_simple(rank, count, NULL);
    if (H5Dset_extent(d, dims) < 0 || (fspace = H5Dget_space(d)) < 0 || mspace < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dwrite(d, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, row) < 0)
        status = fail(h, "cannot append to %s in %s (disk full?)", path, h->path);
    if (mspace >= 0)
        H5Sclose(mspace);
    if (fspace >= 0)
        H5Sclose(fspace);
    return status;
}

long ns_h5_rows(ns_h5 *h, const char *path)
{
    hid_t d = series_id(h, path);
    hsize_t dims[8];
    return d < 0 || shape_of(d, dims) < 1 ? -1 : (long)dims[0];
}

int ns_h5_truncate(ns_h5 *h, const char *path, size_t rows)
{
    hid_t d = series_id(h, path);
    hsize_t dims[8];
    if (d < 0 || shape_of(d, dims) < 1 || rows > dims[0])
        return fail(h, "cannot cut %s back to %zu rows", path, rows);
    dims[0] = rows;
    return H5Dset_extent(d, dims) < 0 ? fail(h, "cannot cut %s back to %zu rows", path, rows)
                                      : NS_OK;
}

int ns_h5_set(ns_h5 *h, const char *path, size_t idx, double value)
{
    hid_t d = series_id(h, path);
    hsize_t start = idx, count = 1;
    int status = NS_OK;
    hid_t fspace = d < 0 ? H5I_INVALID_HID : H5Dget_space(d), mspace = H5Screate_simple(1, &count, NULL);
    if (fspace < 0 || mspace < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0 ||
        H5Dwrite(d, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, &value) < 0)
        status = fail(h, "cannot write %s in %s", path, h->path);
    if (mspace >= 0)
        H5Sclose(mspace);
    if (fspace >= 0)
        H5Sclose(fspace);
    return status;
}

int ns_h5_start_swmr(ns_h5 *h)
{
    if (H5Fstart_swmr_write(h->file) < 0)
        return fail(h, "cannot start SWMR writing on %s", h->path);
    if (h->tmp) { /* a new log: under its own name from now on (open_log) */
        if (ns_file_commit(h->tmp, h->path, h->err, sizeof h->err) != NS_OK)
            return NS_ERR_IO;
        free(h->tmp);
        h->tmp = NULL;
        ns_file_discard(h->tmpdir, 1);
        free(h->tmpdir);
        h->tmpdir = NULL;
    }
    return NS_OK;
}

int ns_h5_flush(ns_h5 *h)
{
    return H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0
               ? fail(h, "cannot flush %s (disk full?)", h->path) : NS_OK;
}

/* ---- checkpoints: raw float32, and reading back ------------------------------------------ */

/* ---- datasets of the schema table ---------------------------------------------------------- */

/* the entry's path under prefix, or 0 (with a message) if it is not of type `type` */
static const ns_h5schema_entry *entry_path(ns_h5 *h, const char *prefix, ns_h5schema_id id,
                                           ns_h5schema_type type, char *path, size_t n)
{
    const ns_h5schema_entry *e = ns_h5schema_get(id);
    if (!e || e->type != type) {
        fail(h, "schema entry %d is not of the type its writer expects", (int)id);
        return NULL;
    }
    if ((size_t)snprintf(path, n, "%s/%s", prefix, e->path) >= n) {
        fail(h, "path %s/%s too long", prefix, e->path);
        return NULL;
    }
    return e;
}

int ns_h5_entry(ns_h5 *h, const char *prefix, ns_h5schema_id id, const ns_h5schema_sizes *z,
                const double *data)
{
    char path[256];
    const char *labels[NS_H5SCHEMA_MAX_RANK];
    size_t dims[NS_H5SCHEMA_MAX_RANK];
    const ns_h5schema_entry *e = entry_path(h, prefix, id, NS_H5T_F64, path, sizeof path);
    if (!e)
        return NS_ERR_INVALID;
    int labelled = ns_h5schema_labels(id, labels), rank = ns_h5schema_dims(id, z, dims);
    return ns_h5_dataset(h, path, rank, dims, data, e->description, labelled ? labels : NULL);
}

int ns_h5_entry_strings(ns_h5 *h, const char *prefix, ns_h5schema_id id, int n,
                        const char *const *values)
{
    char path[256];
    const ns_h5schema_entry *e = entry_path(h, prefix, id, NS_H5T_STRINGS, path, sizeof path);
    return e ? ns_h5_dataset_strings(h, path, n, values, e->description) : NS_ERR_INVALID;
}

int ns_h5_entry_series(ns_h5 *h, const char *prefix, ns_h5schema_id id,
                       const ns_h5schema_sizes *z)
{
    char path[256];
    const char *labels[NS_H5SCHEMA_MAX_RANK];
    size_t dims[NS_H5SCHEMA_MAX_RANK];
    const ns_h5schema_entry *e = entry_path(h, prefix, id, NS_H5T_SERIES, path, sizeof path);
    if (!e)
        return NS_ERR_INVALID;
    int labelled = ns_h5schema_labels(id, labels), rank = ns_h5schema_dims(id, z, dims);
    return ns_h5_series(h, path, rank - 1, dims + 1, e->description, labelled ? labels : NULL);
}

int ns_h5_dataset_f32(ns_h5 *h, const char *path, size_t n, const float *data)
{
    hsize_t dim = n;
    int status = NS_OK;
    hid_t space = H5Screate_simple(1, &dim, NULL), d = H5I_INVALID_HID;
    if (space < 0 ||
        (d = H5Dcreate2(h->file, path, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT)) < 0 ||
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        status = fail(h, "cannot write dataset %s to %s", path, h->path);
    if (d >= 0)
        H5Dclose(d);
    if (space >= 0)
        H5Sclose(space);
    return status;
}

int ns_h5_open_read(ns_h5 **out, const char *path)
{
    quiet_hdf5();
    ns_h5 *h = calloc(1, sizeof *h);
    *out = h;
    if (!h)
        return NS_ERR_NOMEM;
    h->file = H5I_INVALID_HID;
    h->fd = -1;
    if (!(h->path = strdup(path)))
        return fail(h, "out of memory");
    char msg[400];
    if (ns_h5_check_readable(path, msg, sizeof msg) != NS_OK)
        return fail(h, "%s", msg);
    if ((h->file = ns_h5_open_readonly(path)) < 0)
        return fail(h, "cannot open %s", path);
    return NS_OK;
}

/* ---- validated reading ---------------------------------------------------------------------- */

int ns_h5_mul(size_t *out, size_t a, size_t b)
{
    if (b && a > SIZE_MAX / b)
        return 0;
    *out = a * b;
    return 1;
}

int ns_h5_extent_size(int rank, const size_t *dims, size_t elem, size_t *bytes)
{
    size_t n = elem;
    for (int i = 0; i < rank; i++)
        if (!ns_h5_mul(&n, n, dims[i]))
            return 0;
    *bytes = n;
    return n <= NS_H5_MAX_BYTES;
}

/* "[a, b, c]" */
static void dims_text(char *out, size_t n, int rank, const size_t *dims)
{
    size_t k = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < rank && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%zu", i ? ", " : "", dims[i]);
    if (k < n)
        snprintf(out + k, n - k, "]");
}

/* dataset path: a float dataset of elem bytes per value in the file, of exactly rank and dims;
 * read into buf (the product of dims values of elem bytes); every value finite if finite */
static int read_shaped(ns_h5 *h, const char *path, int rank, const size_t *dims, size_t elem,
                       void *buf, int finite)
{
    hid_t d = H5Dopen2(h->file, path, H5P_DEFAULT);
    hid_t t = d < 0 ? H5I_INVALID_HID : H5Dget_type(d);
    hid_t space = d < 0 ? H5I_INVALID_HID : H5Dget_space(d);
    hsize_t got[H5S_MAX_RANK];
    size_t gotz[H5S_MAX_RANK], bytes, n = 1;
    char want_s[96], got_s[96];
    int status = NS_OK, r = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
    if (r >= 0 && r <= H5S_MAX_RANK && H5Sget_simple_extent_dims(space, got, NULL) == r)
        for (int i = 0; i < r; i++)
            gotz[i] = (size_t)got[i];
    else
        r = -1;
    int same = r == rank;
    for (int i = 0; same && i < rank; i++)
        same = gotz[i] == dims[i] && ns_h5_mul(&n, n, dims[i]);
    dims_text(want_s, sizeof want_s, rank, dims);
    if (d < 0)
        status = fail(h, "%s has no dataset %s", h->path, path);
    else if (t < 0 || r < 0 || H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != elem)
        status = fail(h, "%s in %s is not a float%zu dataset", path, h->path, 8 * elem);
    else if (!same) {
        dims_text(got_s, sizeof got_s, r, gotz);
        status = fail(h, "%s in %s has shape %s, expected %s", path, h->path, got_s, want_s);
    } else if (!ns_h5_extent_size(rank, dims, elem, &bytes))
        status = fail(h, "%s in %s is too large (%s)", path, h->path, want_s);
    else if (n && H5Dread(d, elem == 4 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL,
                          H5P_DEFAULT, buf) < 0)
        status = fail(h, "cannot read %s from %s (truncated?)", path, h->path);
    for (size_t i = 0; status == NS_OK && finite && i < n; i++)
        if (!isfinite(elem == 4 ? (double)((const float *)buf)[i] : ((const double *)buf)[i]))
            status = fail(h, "%s in %s holds a NaN or infinite value at %zu", path, h->path, i);
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return status;
}

int ns_h5_read_f32_shape(ns_h5 *h, const char *path, int rank, const size_t *dims, float *buf,
                         int finite)
{
    return read_shaped(h, path, rank, dims, sizeof(float), buf, finite);
}

int ns_h5_read_f64_shape(ns_h5 *h, const char *path, int rank, const size_t *dims, double *buf,
                         int finite)
{
    return read_shaped(h, path, rank, dims, sizeof(double), buf, finite);
}

int ns_h5_read_f32(ns_h5 *h, const char *path, float *buf, size_t n)
{
    return read_shaped(h, path, 1, &n, sizeof(float), buf, 0);
}

/* any rank whose values number n (a [S, L+1] run of a sweep point read flat) */
int ns_h5_read_f64(ns_h5 *h, const char *path, double *buf, size_t n)
{
    hid_t d = H5Dopen2(h->file, path, H5P_DEFAULT);
    hid_t t = d < 0 ? H5I_INVALID_HID : H5Dget_type(d);
    hid_t space = d < 0 ? H5I_INVALID_HID : H5Dget_space(d);
    hssize_t have = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    int status = NS_OK;
    if (d < 0)
        status = fail(h, "%s has no dataset %s", h->path, path);
    else if (t < 0 || (H5Tget_class(t) != H5T_FLOAT && H5Tget_class(t) != H5T_INTEGER))
        status = fail(h, "%s in %s is not numeric", path, h->path);
    else if (have != (hssize_t)n)
        status = fail(h, "%s in %s has %lld values, expected %zu", path, h->path, (long long)have, n);
    else if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        status = fail(h, "cannot read %s from %s (truncated?)", path, h->path);
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    if (d >= 0)
        H5Dclose(d);
    return status;
}

/* attribute name of obj, opened if it holds one value of class cls; else H5I_INVALID_HID */
static hid_t open_attr1(ns_h5 *h, const char *obj, const char *name, H5T_class_t cls,
                        H5T_class_t cls2)
{
    htri_t e = H5Aexists_by_name(h->file, obj, name, H5P_DEFAULT);
    hid_t a = e > 0 ? H5Aopen_by_name(h->file, obj, name, H5P_DEFAULT, H5P_DEFAULT)
                    : H5I_INVALID_HID;
    hid_t t = a < 0 ? H5I_INVALID_HID : H5Aget_type(a);
    hid_t space = a < 0 ? H5I_INVALID_HID : H5Aget_space(a);
    H5T_class_t c = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
    int ok = space >= 0 && H5Sget_simple_extent_npoints(space) == 1 && (c == cls || c == cls2);
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    if (!ok && a >= 0) {
        H5Aclose(a);
        a = H5I_INVALID_HID;
    }
    return a;
}

int ns_h5_read_attr_f64(ns_h5 *h, const char *obj, const char *name, double *value)
{
    hid_t a = open_attr1(h, obj, name, H5T_FLOAT, H5T_INTEGER);
    int status = a < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, value) < 0
                     ? fail(h, "%s has no numeric attribute %s on %s", h->path, name, obj)
                     : NS_OK;
    if (a >= 0)
        H5Aclose(a);
    return status;
}

int ns_h5_read_attr_int(ns_h5 *h, const char *obj, const char *name, long long lo,
                        long long hi, long long *value)
{
    double v;
    int status = ns_h5_read_attr_f64(h, obj, name, &v);
    if (status != NS_OK)
        return status;
    if (!(v >= (double)lo && v <= (double)hi && v == floor(v)))
        return fail(h, "%s: attribute %s on %s is %g, expected an integer from %lld to %lld",
                    h->path, name, obj, v, lo, hi);
    *value = (long long)v;
    return NS_OK;
}

int ns_h5_read_attr_string(ns_h5 *h, const char *obj, const char *name, char *buf, size_t len)
{
    hid_t a = open_attr1(h, obj, name, H5T_STRING, H5T_STRING);
    hid_t ftype = a < 0 ? H5I_INVALID_HID : H5Aget_type(a);
    hid_t type = H5I_INVALID_HID;
    htri_t vlen = ftype < 0 ? -1 : H5Tis_variable_str(ftype);
    char *value = NULL, *fixed = NULL;
    size_t size = ftype < 0 ? 0 : H5Tget_size(ftype);
    int status = NS_OK;
    if (vlen < 0 || (type = H5Tcopy(ftype)) < 0 ||
        (vlen ? H5Aread(a, type, &value) < 0
              : (size == 0 || size > NS_H5_MAX_BYTES || !(fixed = calloc(size + 1, 1)) ||
                 H5Aread(a, type, fixed) < 0)))
        status = fail(h, "%s has no string attribute %s on %s", h->path, name, obj);
    else
        snprintf(buf, len, "%s", vlen ? (value ? value : "") : fixed);
    if (value)
        H5free_memory(value);
    free(fixed);
    if (type >= 0)
        H5Tclose(type);
    if (ftype >= 0)
        H5Tclose(ftype);
    if (a >= 0)
        H5Aclose(a);
    return status;
}

/* ---- checksums ------------------------------------------------------------------------------ */

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static void fnv(uint64_t *hash, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        *hash = (*hash ^ p[i]) * FNV_PRIME;
}

typedef struct {
    ns_h5 *h;
    uint64_t hash;
    char where[256]; /* the object being hashed, for messages (HDF5 frees its name) */
    int failed;
} hash_ctx;

/* the values of an attribute (is_attr) or a dataset, of file type t and dataspace space, into
 * the hash: numbers in their native form, strings as their text; other classes by class only */
static int hash_values(hash_ctx *c, hid_t obj, int is_attr, hid_t t, hid_t space)
{
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[H5S_MAX_RANK];
    size_t n = 1, bytes;
    H5T_class_t cls = H5Tget_class(t);
    if (rank < 0 || rank > H5S_MAX_RANK || H5Sget_simple_extent_dims(space, dims, NULL) != rank)
        return -1;
    for (int i = 0; i < rank; i++)
        if (!ns_h5_mul(&n, n, (size_t)dims[i]))
            return -1;
    uint64_t head[2] = {(uint64_t)cls, (uint64_t)rank};
    fnv(&c->hash, head, sizeof head);
    for (int i = 0; i < rank; i++)
        fnv(&c->hash, &(uint64_t){dims[i]}, sizeof(uint64_t));
    if (n == 0 || (cls != H5T_INTEGER && cls != H5T_FLOAT && cls != H5T_STRING))
        return 0;
    htri_t vlen = cls == H5T_STRING ? H5Tis_variable_str(t) : 0;
    hid_t mem = cls == H5T_STRING ? H5Tcopy(t) : H5Tget_native_type(t, H5T_DIR_ASCEND);
    size_t elem = vlen > 0 ? sizeof(char *) : mem < 0 ? 0 : H5Tget_size(mem);
    int st = -1;
    void *buf = NULL;
    if (vlen >= 0 && mem >= 0 && elem > 0 && ns_h5_mul(&bytes, n, elem) &&
        bytes <= NS_H5_MAX_BYTES && (buf = malloc(bytes)) &&
        (is_attr ? H5Aread(obj, mem, buf) : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)) >= 0) {
        st = 0;
        if (vlen > 0) {
            char **s = buf;
            for (size_t i = 0; i < n; i++)
                fnv(&c->hash, s[i] ? s[i] : "", s[i] ? strlen(s[i]) + 1 : 1);
            H5Dvlen_reclaim(mem, space, H5P_DEFAULT, buf);
        } else {
            fnv(&c->hash, buf, bytes);
        }
    }
    free(buf);
    if (mem >= 0)
        H5Tclose(mem);
    return st;
}

static herr_t hash_attr(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    hash_ctx *c = data;
    if (strcmp(name, "checksum") == 0)
        return 0;
    fnv(&c->hash, name, strlen(name) + 1);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = a < 0 ? H5I_INVALID_HID : H5Aget_type(a);
    hid_t space = a < 0 ? H5I_INVALID_HID : H5Aget_space(a);
    int st = t < 0 || space < 0 ? -1 : hash_values(c, a, 1, t, space);
    if (space >= 0)
        H5Sclose(space);
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    c->failed |= st < 0;
    return st < 0 ? -1 : 0;
}

#if H5_VERSION_GE(1, 12, 0)
static herr_t hash_object(hid_t root, const char *name, const H5O_info2_t *info, void *data)
#else
static herr_t hash_object(hid_t root, const char *name, const H5O_info_t *info, void *data)
#endif
{
    hash_ctx *c = data;
    snprintf(c->where, sizeof c->where, "%s", name);
    fnv(&c->hash, name, strlen(name) + 1);
    fnv(&c->hash, &(uint64_t){(uint64_t)info->type}, sizeof(uint64_t));
    hid_t o = H5Oopen(root, name, H5P_DEFAULT);
    if (o < 0 || H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, NULL, hash_attr, c) < 0)
        c->failed = 1;
    if (!c->failed && info->type == H5O_TYPE_DATASET) {
        hid_t t = H5Dget_type(o), space = H5Dget_space(o);
        if (t < 0 || space < 0 || hash_values(c, o, 0, t, space) < 0)
            c->failed = 1;
        if (space >= 0)
            H5Sclose(space);
        if (t >= 0)
            H5Tclose(t);
    }
    if (o >= 0)
        H5Oclose(o);
    return c->failed ? -1 : 0;
}

int ns_h5_checksum(ns_h5 *h, uint64_t *sum)
{
    hash_ctx c = {.h = h, .hash = FNV_OFFSET, .where = "/"};
#if H5_VERSION_GE(1, 12, 0)
    herr_t e = H5Ovisit3(h->file, H5_INDEX_NAME, H5_ITER_INC, hash_object, &c, H5O_INFO_BASIC);
#else
    herr_t e = H5Ovisit2(h->file, H5_INDEX_NAME, H5_ITER_INC, hash_object, &c, H5O_INFO_BASIC);
#endif
    if (e < 0 || c.failed)
        return fail(h, "cannot read %s of %s to check it (corrupt?)", c.where, h->path);
    *sum = c.hash;
    return NS_OK;
}

void ns_h5_probe_read(void *path)
{
    ns_h5 *h = NULL;
    uint64_t sum;
    if (ns_h5_open_read(&h, path) == NS_OK)
        ns_h5_checksum(h, &sum);
    ns_h5_free(h);
}

static void checksum_text(char *out, size_t n, uint64_t sum)
{
    snprintf(out, n, "fnv1a64:%016llx", (unsigned long long)sum);
}

int ns_h5_seal(ns_h5 *h, int version)
{
    const char *names[] = {"format_version", "checksum"};
    for (int i = 0; i < 2; i++)
        if (H5Aexists(h->file, names[i]) > 0 && H5Adelete(h->file, names[i]) < 0)
            return fail(h, "cannot update attribute %s of %s", names[i], h->path);
    uint64_t sum = 0;
    char text[32];
    int st = ns_h5_attr_int(h, "/", "format_version", version);
    if (st == NS_OK)
        st = ns_h5_checksum(h, &sum);
    if (st != NS_OK)
        return st;
    checksum_text(text, sizeof text, sum);
    return ns_h5_attr_string(h, "/", "checksum", text);
}

int ns_h5_check_seal(ns_h5 *h, const char *what, int version)
{
    long long v;
    char stored[64], text[32];
    uint64_t sum = 0;
    if (H5Aexists(h->file, "format_version") <= 0 || H5Aexists(h->file, "checksum") <= 0)
        return fail(h, "%s %s has no format version or checksum (written by an older normscope); "
                    "remove it to start over", what, h->path);
    if (ns_h5_read_attr_int(h, "/", "format_version", 0, 1 << 20, &v) != NS_OK)
        v = -1;
    if (v != version)
        return fail(h, "%s %s has format version %lld, this normscope reads %d; remove it to "
                    "start over", what, h->path, v, version);
    if (ns_h5_read_attr_string(h, "/", "checksum", stored, sizeof stored) != NS_OK ||
        ns_h5_checksum(h, &sum) != NS_OK)
        return fail(h, "%s %s is damaged (unreadable); remove it to start over", what, h->path);
    checksum_text(text, sizeof text, sum);
    if (strcmp(text, stored) != 0)
        return fail(h, "%s %s is damaged (checksum mismatch); remove it to start over", what,
                    h->path);
    return NS_OK;
}

/* ---- in-memory files ------------------------------------------------------------------------ */

static ns_h5 *new_handle(const char *name)
{
    quiet_hdf5();
    ns_h5 *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->file = H5I_INVALID_HID;
    h->fd = -1;
    h->path = strdup(name);
    return h;
}

/* the core driver without a backing store: the file is never written by HDF5 itself */
static hid_t memory_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 20, 0) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

int ns_h5_create_memory(ns_h5 **out, const char *name)
{
    ns_h5 *h = *out = new_handle(name);
    if (!h)
        return NS_ERR_NOMEM;
    if (!h->path)
        return fail(h, "out of memory");
    hid_t fapl = memory_fapl();
    if (fapl >= 0) {
        h->file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        H5Pclose(fapl);
    }
    return h->file < 0 ? fail(h, "cannot create an in-memory HDF5 file for %s", name) : NS_OK;
}

int ns_h5_load_memory(ns_h5 **out, const char *path)
{
    ns_h5 *h = *out = new_handle(path);
    if (!h)
        return NS_ERR_NOMEM;
    if (!h->path)
        return fail(h, "out of memory");
    if (ns_file_check_input(NULL, path, h->err, sizeof h->err) != NS_OK)
        return NS_ERR_IO; /* a FIFO would block H5Fis_hdf5 */
    if (H5Fis_hdf5(path) <= 0)
        return fail(h, "%s is not an HDF5 file (or it is truncated)", path);
    hid_t fapl = memory_fapl();
    if (fapl >= 0) {
        h->file = H5Fopen(path, H5F_ACC_RDWR, fapl);
        H5Pclose(fapl);
    }
    return h->file < 0 ? fail(h, "cannot read %s (truncated or corrupt?)", path) : NS_OK;
}

int ns_h5_open_image(ns_h5 **out, const void *image, size_t size, const char *name)
{
    ns_h5 *h = *out = new_handle(name);
    if (!h)
        return NS_ERR_NOMEM;
    if (!h->path)
        return fail(h, "out of memory");
    h->file = H5LTopen_file_image((void *)image, size, 0); /* read-only, on a copy */
    return h->file < 0 ? fail(h, "%s is not a readable HDF5 image", name) : NS_OK;
}

int ns_h5_image(ns_h5 *h, void **image, size_t *size)
{
    *image = NULL;
    *size = 0;
    ssize_t n = H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(h->file, NULL, 0);
    unsigned char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (!buf || H5Fget_file_image(h->file, buf, (size_t)n) != n) {
        free(buf);
        return fail(h, "cannot assemble the HDF5 image of %s", h->path);
    }
    *image = buf;
    *size = (size_t)n;
    return NS_OK;
}

int ns_h5_save(ns_h5 *h, const char *path)
{
    void *image;
    size_t size;
    int status = ns_h5_image(h, &image, &size), err, fd = -1;
    char *tmp = NULL;
    if (status == NS_OK && ns_file_temp(path, &tmp, &fd, h->err, sizeof h->err) != NS_OK)
        status = NS_ERR_IO;
    if (tmp) {
        if ((err = ns_file_write_close(fd, image, size)) != 0)
            status = fail(h, "cannot write %s: %s", path, strerror(err));
        else if (ns_file_commit(tmp, path, h->err, sizeof h->err) != NS_OK)
            status = NS_ERR_IO;
        if (status != NS_OK)
            ns_file_discard(tmp, 0);
    }
    free(tmp);
    free(image);
    return status;
}

int ns_h5_copy(ns_h5 *h, const char *dst_path, ns_h5 *src, const char *src_path)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    int status = NS_OK;
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0 ||
        H5Ocopy(src->file, src_path, h->file, dst_path, H5P_DEFAULT, lcpl) < 0)
        status = fail(h, "cannot copy %s of %s to %s of %s", src_path, src->path, dst_path,
                      h->path);
    if (lcpl >= 0)
        H5Pclose(lcpl);
    return status;
}

int ns_h5_exists(ns_h5 *h, const char *path)
{
    /* H5Lexists wants every parent to exist: walk down the path */
    char buf[256];
    if (strlen(path) >= sizeof buf || path[0] != '/')
        return 0;
    strcpy(buf, path);
    for (char *q = buf + 1;; q++) {
        if (*q == '/' || *q == 0) {
            char c = *q;
            *q = 0;
            if (H5Lexists(h->file, buf, H5P_DEFAULT) <= 0)
                return 0;
            if (!c)
                return 1;
            *q = c;
        }
    }
}
