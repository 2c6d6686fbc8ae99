/* plot_buf.c: growable text and atomic file writes. */
#define _POSIX_C_SOURCE 200809L
#include "plot_buf.h"
#include "files.h"
#include "normscope.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ns_buf_printf(ns_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->s && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        /* grow geometrically, then format again */
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        if (!b->s)
            s[0] = 0;
        b->s = s, b->cap = cap;
    }
}

void ns_buf_num(ns_buf *b, double x)
{
    if (isfinite(x))
        ns_buf_printf(b, "%.12g", x);
    else
        ns_buf_printf(b, "nan");
}

int ns_buf_ok(const ns_buf *b) { return !b->failed && b->s; }

void ns_buf_free(ns_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

int ns_path_join(char *out, size_t n, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    int slash = dl > 0 && dir[dl - 1] == '/';
    int w = snprintf(out, n, "%s%s%s", dir, slash ? "" : "/", name);
    return w < 0 || (size_t)w >= n ? NS_ERR_INVALID : NS_OK;
}

int ns_write_atomic(const char *dir, const char *name, const char *text, size_t len, char *msg,
                    size_t msglen)
{
    char path[4096], *tmp = NULL;
    int fd = -1, st, err;
    if (ns_path_join(path, sizeof path, dir, name) != NS_OK) {
        snprintf(msg, msglen, "output path too long: %s/%s", dir, name);
        return NS_ERR_IO;
    }
    /* a new temporary beside it, never a file planted at its name (analysis/files) */
    if ((st = ns_file_temp(path, &tmp, &fd, msg, msglen)) != NS_OK)
        return st;
    if ((err = ns_file_write_close(fd, text, len)) != 0) {
        snprintf(msg, msglen, "cannot write %s: %s", path, strerror(err));
        st = NS_ERR_IO;
    } else {
        st = ns_file_commit(tmp, path, msg, msglen);
    }
    if (st != NS_OK)
        ns_file_discard(tmp, 0);
    free(tmp);
    return st;
}
