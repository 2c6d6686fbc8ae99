/* plot_buf.h: growable text for .dat and .gp files, and writing a file so that it appears whole
 * or not at all.
 *
 * A buffer's error is sticky (like a FILE's ferror): builders append freely and check
 * ns_buf_ok() once at the end instead of after every line. */
#ifndef NS_PLOT_BUF_H
#define NS_PLOT_BUF_H
#include <stddef.h>

typedef struct {
    char *s;        /* NUL-terminated text; NULL until the first append */
    size_t len, cap;
    int failed;     /* an allocation failed: the text is incomplete */
} ns_buf;

void ns_buf_printf(ns_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* a number for a data column: %.12g, and "nan" for anything non-finite (gnuplot skips the point;
 * Python's float() reads it) */
void ns_buf_num(ns_buf *b, double x);
int ns_buf_ok(const ns_buf *b);
void ns_buf_free(ns_buf *b); /* accepts a zeroed or freed buffer */

/* dir/name, without a doubled slash; NS_ERR_INVALID if it does not fit */
int ns_path_join(char *out, size_t n, const char *dir, const char *name);

/* Writes len bytes to dir/name via a new temporary dir/name.partial-<pid> (created exclusively:
 * analysis/files/files.h) and a rename, so that readers (and a failed run) never see a
 * half-written file. NS_OK, or NS_ERR_IO (NS_ERR_INVALID if dir/name is not a regular file) with
 * a one-line message. */
int ns_write_atomic(const char *dir, const char *name, const char *text, size_t len, char *msg,
                    size_t msglen);

#endif
