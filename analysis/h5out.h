/* h5out.h: writing a normscope HDF5 file atomically.
 *
 * The file is written under a temporary name beside the output path and renamed onto it only when
 * complete, so a failed, interrupted or disk-full run never leaves a file (or a half-written
 * one) at the output path. Every failure leaves a one-line message in ns_h5_error(). */
#ifndef NS_H5OUT_H
#define NS_H5OUT_H
#include <stddef.h>

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

/* a complete, readable normscope file? (used before reading one, and by resume logic later) */
int ns_h5_check_readable(const char *path, char *msg, size_t msglen);

#endif
