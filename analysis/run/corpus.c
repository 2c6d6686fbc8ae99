/* corpus.c: reading a byte corpus from files and directories, and splitting off its held-out
 * chunks (corpus.h). */
#define _POSIX_C_SOURCE 200809L
#include "corpus.h"
#include "files.h"
#include "normscope.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    unsigned char *p;
    size_t n, cap;
} bytes;

typedef struct {
    char **v;
    int n, cap;
} names;

static int names_add(names *s, const char *name)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return NS_ERR_NOMEM;
        s->v = v, s->cap = cap;
    }
    return (s->v[s->n] = strdup(name)) ? (s->n++, NS_OK) : NS_ERR_NOMEM;
}

static void names_free(names *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    *s = (names){0};
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* appends the bytes of path to b, reading at most NS_CORPUS_MAX_BYTES in all; a file holding a
 * NUL byte is dropped again when skip_binary is set (*kept = 0) */
static int append_file(bytes *b, const char *path, int skip_binary, int *kept, char *err,
                       size_t errlen)
{
    int st = NS_OK, fd = ns_file_open_input("--data", path, &st, err, errlen);
    *kept = 0;
    if (fd < 0)
        return st;
    struct stat sb;
    size_t start = b->n;
    if (fstat(fd, &sb) == 0 && (size_t)sb.st_size > (size_t)NS_CORPUS_MAX_BYTES - b->n) {
        st = NS_ERR_INVALID; /* refused before it is read */
    }
    while (st == NS_OK) {
        if (b->n == b->cap) {
            size_t cap = b->cap ? 2 * b->cap : (size_t)1 << 20;
            unsigned char *p = realloc(b->p, cap);
            if (!p) {
                snprintf(err, errlen, "out of memory reading --data %s", path);
                st = NS_ERR_NOMEM;
                break;
            }
            b->p = p, b->cap = cap;
        }
        ssize_t got = read(fd, b->p + b->n, b->cap - b->n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "cannot read --data %s: %s", path, strerror(errno));
            st = NS_ERR_IO;
        } else if (got == 0) {
            break;
        } else if ((b->n += (size_t)got) > (size_t)NS_CORPUS_MAX_BYTES) { /* grew while read */
            st = NS_ERR_INVALID;
        }
    }
    close(fd);
    if (st == NS_ERR_INVALID)
        snprintf(err, errlen, "--data is larger than %d bytes (at %s)", NS_CORPUS_MAX_BYTES, path);
    *kept = st == NS_OK && !(skip_binary && memchr(b->p + start, 0, b->n - start));
    if (!*kept)
        b->n = start;
    return st;
}

/* the regular files directly inside dir (no links, no subdirectories), sorted by name */
static int list_dir(const char *dir, names *out, int *total, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot read --data %s: %s", dir, strerror(errno));
        return NS_ERR_IO;
    }
    names found = {0};
    int st = NS_OK;
    struct dirent *e;
    while (st == NS_OK && (errno = 0, e = readdir(d))) {
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (++*total > NS_CORPUS_MAX_FILES) {
            snprintf(err, errlen, "--data has more than %d files (at %s)", NS_CORPUS_MAX_FILES,
                     dir);
            st = NS_ERR_INVALID;
        } else {
            st = names_add(&found, e->d_name);
        }
    }
    if (st == NS_OK && errno) {
        snprintf(err, errlen, "cannot list --data %s: %s", dir, strerror(errno));
        st = NS_ERR_IO;
    }
    closedir(d);
    if (st == NS_OK && found.n > 1)
        qsort(found.v, (size_t)found.n, sizeof *found.v, by_name);
    for (int i = 0; st == NS_OK && i < found.n; i++) {
        size_t len = strlen(dir) + strlen(found.v[i]) + 2;
        char *path = malloc(len);
        if (!path) {
            st = NS_ERR_NOMEM;
            break;
        }
        snprintf(path, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", found.v[i]);
        st = names_add(out, path);
        free(path);
    }
    if (st == NS_ERR_NOMEM)
        snprintf(err, errlen, "out of memory listing --data %s", dir);
    names_free(&found);
    return st;
}

/* reads one element of the comma list: a file, or a directory's text files */
static int read_path(bytes *b, names *files, const char *path, int *total, char *err,
                     size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) != 0) { /* stat, not open: a FIFO is never opened here */
        snprintf(err, errlen, "cannot read --data %s: %s", path, strerror(errno));
        return NS_ERR_IO;
    }
    names listed = {0};
    int st = NS_OK, dir = S_ISDIR(sb.st_mode), kept;
    if (dir)
        st = list_dir(path, &listed, total, err, errlen);
    else if (++*total > NS_CORPUS_MAX_FILES)
        snprintf(err, errlen, "--data has more than %d files", NS_CORPUS_MAX_FILES),
            st = NS_ERR_INVALID;
    else
        st = names_add(&listed, path);
    for (int i = 0; st == NS_OK && i < listed.n; i++) {
        st = append_file(b, listed.v[i], dir, &kept, err, errlen);
        if (st == NS_OK && kept && (st = names_add(files, listed.v[i])) != NS_OK)
            snprintf(err, errlen, "out of memory reading --data %s", path);
    }
    names_free(&listed);
    return st;
}

size_t ns_corpus_chunk_bytes(size_t n)
{
    size_t c = n / 100;
    return c > NS_CORPUS_CHUNK ? NS_CORPUS_CHUNK : c > 0 ? c : 1;
}

int ns_corpus_chunk_heldout(size_t i, double f)
{
    return floor((double)(i + 1) * f) > floor((double)i * f);
}

int ns_corpus_read(ns_corpus *c, const char *spec, double f, char *err, size_t errlen)
{
    *c = (ns_corpus){0};
    if (!(f > 0 && f < 1)) {
        snprintf(err, errlen, "--heldout must be in (0, 1), got %g", f);
        return NS_ERR_INVALID;
    }
    char *list = strdup(spec);
    bytes b = {0};
    names files = {0};
    int st = list ? NS_OK : NS_ERR_NOMEM, total = 0;
    char *rest = list;
    while (st == NS_OK && rest) {
        char *path = rest, *comma = strchr(rest, ',');
        rest = comma ? comma + 1 : NULL;
        if (comma)
            *comma = 0;
        if (!*path) {
            snprintf(err, errlen, "--data %s has an empty path in its list", spec);
            st = NS_ERR_INVALID;
        } else {
            st = read_path(&b, &files, path, &total, err, errlen);
        }
    }
    free(list);
    if (st == NS_OK && b.n == 0) {
        snprintf(err, errlen, "--data %s is empty: no bytes in its regular text files", spec);
        st = NS_ERR_INVALID;
    }
    unsigned char *split = st == NS_OK ? malloc(b.n) : NULL;
    if (st == NS_OK && !split)
        st = NS_ERR_NOMEM;
    if (st == NS_ERR_NOMEM)
        snprintf(err, errlen, "out of memory reading --data %s", spec);
    if (st != NS_OK) {
        free(b.p);
        names_free(&files);
        return st;
    }
    /* the train chunks in order, then the held-out chunks in order */
    size_t chunk = ns_corpus_chunk_bytes(b.n), at = 0;
    for (int heldout = 0; heldout < 2; heldout++) {
        for (size_t i = 0, lo = 0; lo < b.n; i++, lo += chunk) {
            size_t len = b.n - lo < chunk ? b.n - lo : chunk;
            if (ns_corpus_chunk_heldout(i, f) == heldout) {
                memcpy(split + at, b.p + lo, len);
                at += len;
            }
        }
        if (!heldout)
            c->ntrain = at;
    }
    free(b.p);
    c->bytes = split, c->nheldout = b.n - c->ntrain;
    c->nfiles = files.n, c->files = files.v;
    return NS_OK;
}

uint64_t ns_corpus_digest(const ns_corpus *c)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < c->ntrain + c->nheldout; i++)
        h = (h ^ c->bytes[i]) * 1099511628211ull;
    return h;
}

void ns_corpus_free(ns_corpus *c)
{
    for (int i = 0; i < c->nfiles; i++)
        free(c->files[i]);
    free(c->files);
    free(c->bytes);
    *c = (ns_corpus){0};
}
