/* sweep_store.h: a sweep's finished points, and the progress file that lets it resume.
 *
 * The store is an in-memory HDF5 file holding /runs/<i> of every finished point exactly as the
 * output will hold it. It is saved atomically (written aside, fsync, rename) to
 * OUT.partial-sweep, the progress file, beside the output; its root attribute `configuration`
 * names the sweep (every option but --threads, and the version). Opening a store for an output
 * whose progress file exists loads the finished points when the configuration matches and
 * refuses otherwise, so a rerun of an interrupted sweep skips what is done and cannot mix two
 * sweeps. The output is assembled from the store (ns_sweep_store_copy_runs), whoever ran the
 * points and however often the sweep was interrupted. */
#ifndef NS_SWEEP_STORE_H
#define NS_SWEEP_STORE_H
#include "h5out.h"
#include <stddef.h>

typedef struct ns_sweep_store ns_sweep_store;

/* a store for the sweep of npoints points written to output: the progress file's points if it
 * exists and holds this configuration, else empty. NS_ERR_INVALID (a usage error) when the
 * progress file holds another configuration or cannot be read, with a one-line message in err;
 * NS_ERR_NOMEM / NS_ERR_IO otherwise. command_line is recorded, for people. */
int ns_sweep_store_open(ns_sweep_store **out, const char *output, const char *configuration,
                        const char *command_line, long npoints, char *err, size_t errlen);
/* point i finished (at open: loaded from the progress file) */
int ns_sweep_store_has(const ns_sweep_store *s, long i);
long ns_sweep_store_count(const ns_sweep_store *s);
const unsigned char *ns_sweep_store_done(const ns_sweep_store *s); /* [npoints] 0/1 */
/* point i from a point file whose root holds config/, propagate/, theory/ */
int ns_sweep_store_add(ns_sweep_store *s, long i, ns_h5 *point);
/* writes the progress file if a point was added since the last save; a store a failed add left
 * half-written is never saved */
int ns_sweep_store_save(ns_sweep_store *s);
/* /runs/<i> of every point into out, in index order */
int ns_sweep_store_copy_runs(ns_sweep_store *s, ns_h5 *out);
/* the store as a file to read from (/runs/<i>/...) */
ns_h5 *ns_sweep_store_h5(ns_sweep_store *s);
const char *ns_sweep_store_path(const ns_sweep_store *s);
const char *ns_sweep_store_error(const ns_sweep_store *s);
/* deletes the progress file (the output is complete) */
void ns_sweep_store_remove(ns_sweep_store *s);
void ns_sweep_store_free(ns_sweep_store *s);

#endif
