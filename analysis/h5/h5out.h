/* h5out.h: writing a normscope HDF5 file atomically.
 *
 * The file is written under a temporary name beside the output path and renamed onto it only when
 * complete, so a failed, interrupted or disk-full run never leaves a file (or a half-written
 * one) at the output path. Every failure leaves a one-line message in ns_h5_error(). */
#ifndef NS_H5OUT_H
#define NS_H5OUT_H
#include <stddef.h>
#include <stdint.h>
#include "h5schema.h"

#define NS_SCHEMA "normscope/1"

typedef struct ns_h5 ns_h5;

/* creates <path>.partial-<pid>; status NS_ERR_IO with a message if it cannot */
int ns_h5_create(ns_h5 **out, const char *path);
/* root attributes: schema, version, command_line, created_utc, blas */
int ns_h5_write_root_attrs(ns_h5 *h, const char *command_line);
int ns_h5_group(ns_h5 *h, const char *path);
/* attributes on an existing object (group or dataset) */
int ns_h5_attr_string(ns_h5 *h, const char *obj, const char *name, const char *value);
int ns_h5_attr_double(ns_h5 *h, const char *obj, const char *name, double value);
int ns_h5_attr_int(ns_h5 *h, const char *obj, const char *name, long long value);
int ns_h5_attr_strings(ns_h5 *h, const char *obj, const char *name, const char *const *values,
                       int n);
/* a float64 dataset of the given shape, with a `description` attribute and one label per
 * dimension (HDF5 dimension-scale labels, e.g. "seed", "layer") */
int ns_h5_dataset(ns_h5 *h, const char *path, int rank, const size_t *dims, const double *data,
                  const char *description, const char *const *labels);
/* a 1-D dataset of n variable-length UTF-8 strings, with a `description` attribute */
int ns_h5_dataset_strings(ns_h5 *h, const char *path, int n, const char *const *values,
                          const char *description);
/* writes the file under its temporary name and renames it onto the output path; on failure the
 * temporary file is removed by ns_h5_free. Either way, call ns_h5_free afterwards. */
int ns_h5_commit(ns_h5 *h);
/* closes, removes the temporary file if it is still there, frees; accepts NULL */
void ns_h5_free(ns_h5 *h);
const char *ns_h5_error(const ns_h5 *h);

/* a float32 dataset of n values, exactly as the model holds them (checkpoints) */
int ns_h5_dataset_f32(ns_h5 *h, const char *path, size_t n, const float *data);

/* ---- datasets of the schema table (h5schema.h) --------------------------------------------- */
/* dataset id of the table at PREFIX/path (prefix "" or "/runs/<i>"), shaped by z, with the table's
 * description and dimension labels; NS_ERR_INVALID if id is not of the function's type */
int ns_h5_entry(ns_h5 *h, const char *prefix, ns_h5schema_id id, const ns_h5schema_sizes *z,
                const double *data);
int ns_h5_entry_strings(ns_h5 *h, const char *prefix, ns_h5schema_id id, int n,
                        const char *const *values);
/* a series (ns_h5_series) with the table's inner dimensions for z */
int ns_h5_entry_series(ns_h5 *h, const char *prefix, ns_h5schema_id id,
                       const ns_h5schema_sizes *z);

/* ---- reading ------------------------------------------------------------------------------ */
/* opens a complete file read-only; the readers fail with a message naming what is missing or
 * has the wrong size */
int ns_h5_open_read(ns_h5 **out, const char *path);
/* Every reader checks before it uses a value: the dataset's class (float), its size per value,
 * its rank and every dimension against what the caller expects, the size of the product
 * (overflow-checked, at most NS_H5_MAX_BYTES); attributes must hold exactly one value of the
 * right class. A mismatch is NS_ERR_IO with one line naming the file, the object and both
 * shapes. */
#define NS_H5_MAX_BYTES ((size_t)1 << 31) /* the most one read may allocate */
/* *out = a * b; 0 if that overflows a size_t */
int ns_h5_mul(size_t *out, size_t a, size_t b);
/* *bytes = elem * dims[0] * ... ; 0 if that overflows or exceeds NS_H5_MAX_BYTES */
int ns_h5_extent_size(int rank, const size_t *dims, size_t elem, size_t *bytes);
/* a float32 (float64) dataset of exactly this shape; every value finite if finite */
int ns_h5_read_f32_shape(ns_h5 *h, const char *path, int rank, const size_t *dims, float *buf,
                         int finite);
int ns_h5_read_f64_shape(ns_h5 *h, const char *path, int rank, const size_t *dims, double *buf,
                         int finite);
/* a float32 dataset of shape [n] */
int ns_h5_read_f32(ns_h5 *h, const char *path, float *buf, size_t n);
/* a numeric dataset of n values in all, of any rank, as float64 */
int ns_h5_read_f64(ns_h5 *h, const char *path, double *buf, size_t n);
int ns_h5_read_attr_f64(ns_h5 *h, const char *obj, const char *name, double *value);
/* a numeric attribute that is an integer from lo to hi (no NaN, no fraction) */
int ns_h5_read_attr_int(ns_h5 *h, const char *obj, const char *name, long long lo,
                        long long hi, long long *value);
int ns_h5_read_attr_string(ns_h5 *h, const char *obj, const char *name, char *buf, size_t len);

/* ---- seals: a format version and a checksum of everything in a file ------------------------ */
/* FNV-1a (64-bit) over every object's name, every attribute (but `checksum`) and every
 * dataset's values, in name order; numbers in native form, strings as text */
int ns_h5_checksum(ns_h5 *h, uint64_t *sum);
/* opens path read-only and reads every object in it once, as ns_h5_checksum does, and nothing
 * else: a read for ns_file_probe (files.h) to make in a child before the real one (path is a
 * const char *) */
void ns_h5_probe_read(void *path);
/* writes (or rewrites) the root attributes format_version = version and checksum, last */
int ns_h5_seal(ns_h5 *h, int version);
/* NS_OK if the file carries format_version = version and its checksum matches; else NS_ERR_IO
 * with one line: "WHAT PATH is damaged (checksum mismatch); remove it to start over" */
int ns_h5_check_seal(ns_h5 *h, const char *what, int version);

/* ---- logs: files that grow on disk while readers watch them (SWMR) ---------------------- */
/* A log grows in place: create its groups, attributes and series first, then
 * ns_h5_start_swmr; after that only appends and overwrites of existing data are allowed, and
 * readers (h5py with swmr=True, the notebooks, normscope plot) see everything up to the last
 * ns_h5_flush, even if the writer is killed. Until ns_h5_start_swmr a new log lies under a
 * temporary name (PATH.partial-PID), which ns_h5_free removes if it never got that far. */
int ns_h5_create_log(ns_h5 **out, const char *path);
/* reopens an existing log for appending (resume) */
int ns_h5_open_log(ns_h5 **out, const char *path);
/* a float64 dataset of shape [0, inner...], unlimited along the first dimension, chunked */
int ns_h5_series(ns_h5 *h, const char *path, int rank_inner, const size_t *inner,
                 const char *description, const char *const *labels);
/* one row at the end of a series (its size is the product of the inner dimensions) */
int ns_h5_append(ns_h5 *h, const char *path, const double *row);
/* rows of a series; and cutting it back to `rows` (resume after a checkpoint) */
long ns_h5_rows(ns_h5 *h, const char *path);
int ns_h5_truncate(ns_h5 *h, const char *path, size_t rows);
/* overwrites element idx of an existing 1-D float64 dataset (a status flag under SWMR) */
int ns_h5_set(ns_h5 *h, const char *path, size_t idx, double value);
int ns_h5_start_swmr(ns_h5 *h);
int ns_h5_flush(ns_h5 *h);

/* ---- in-memory files: one sweep point, and a sweep's progress (sweep_store.h) ------------ */
/* a file that lives in memory only; name is used in messages */
int ns_h5_create_memory(ns_h5 **out, const char *name);
/* a file on disk read into memory, writable there; nothing goes back to disk but ns_h5_save */
int ns_h5_load_memory(ns_h5 **out, const char *path);
/* an image (ns_h5_image, perhaps from another process) opened read-only; the bytes are copied */
int ns_h5_open_image(ns_h5 **out, const void *image, size_t size, const char *name);
/* the bytes of a file as it stands (malloc'd, the caller frees them) */
int ns_h5_image(ns_h5 *h, void **image, size_t *size);
/* writes the file's image to path atomically: path.partial-<pid>, fsync, rename */
int ns_h5_save(ns_h5 *h, const char *path);
/* copies the object src_path of src (a group with everything under it, or a dataset) to
 * dst_path of h, creating missing parent groups */
int ns_h5_copy(ns_h5 *h, const char *dst_path, ns_h5 *src, const char *src_path);
/* 1 if path names an object (every parent must exist or the answer is 0) */
int ns_h5_exists(ns_h5 *h, const char *path);

/* a complete, readable normscope file? (used before reading one, and by resume logic later) */
int ns_h5_check_readable(const char *path, char *msg, size_t msglen);
/* H5Fopen read-only, as a SWMR reader if the file is a log still (or last) open for writing:
 * an hid_t (hdf5.h), negative on failure, for readers that use the HDF5 API themselves */
int64_t ns_h5_open_readonly(const char *path);

#endif
