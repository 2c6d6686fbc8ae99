/* sweep_store.c: the finished points of a sweep and its progress file (sweep_store.h). */
#define _POSIX_C_SOURCE 200809L
#include "sweep_store.h"
#include "normscope.h"
#include "files.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROGRESS_VERSION 2 /* a format_version and a checksum (ns_h5_seal); 1 had neither */
#define CONFIG_MAX 65536 /* bytes of the configuration text (64 options of 64 values fit) */

struct ns_sweep_store {
    ns_h5 *h;
    char *path;
    long npoints, count;
    unsigned char *done;
    int dirty, broken; /* points added since the last save; a failed add */
    char err[512];
};

/* the value of option key in a configuration text ("option=values" lines), in buf */
static const char *value_of(const char *text, const char *key, size_t keylen, char *buf,
                            size_t n)
{
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n'), *eq = strchr(line, '=');
        if (!end)
            end = line + strlen(line);
        if (eq && eq < end && (size_t)(eq - line) == keylen && strncmp(line, key, keylen) == 0) {
            snprintf(buf, n, "%.*s", (int)(end - eq - 1), eq + 1);
            return buf;
        }
        line = *end ? end + 1 : end;
    }
    return NULL;
}

/* a one-line account of how two configurations differ: the first option that does */
static void describe_mismatch(const char *here, const char *there, const char *path, char *err,
                              size_t errlen)
{
    char a[256], b[256];
    for (const char *line = here; *line;) {
        const char *end = strchr(line, '\n'), *eq = strchr(line, '=');
        if (!end)
            end = line + strlen(line);
        if (eq && eq < end) {
            size_t keylen = (size_t)(eq - line);
            const char *mine = value_of(here, line, keylen, a, sizeof a);
            const char *theirs = value_of(there, line, keylen, b, sizeof b);
            if (!theirs || strcmp(mine, theirs) != 0) {
                snprintf(err, errlen,
                         "%s holds an interrupted sweep with another configuration (--%.*s %s "
                         "there, %s here): rerun that sweep's command to finish it, or delete "
                         "the file to start over",
                         path, (int)keylen, line, theirs ? theirs : "absent", mine);
                return;
            }
        }
        line = *end ? end + 1 : end;
    }
    snprintf(err, errlen,
             "%s holds an interrupted sweep with another configuration: rerun that sweep's "
             "command to finish it, or delete the file to start over",
             path);
}

/* the read that load makes up to the checksum, in a child first (files.h: ns_file_probe) */
static void probe_read(void *path)
{
    ns_h5 *h = NULL;
    if (ns_h5_load_memory(&h, path) == NS_OK)
        ns_h5_check_seal(h, "the sweep progress file", PROGRESS_VERSION);
    ns_h5_free(h);
}

static int load(ns_sweep_store *s, const char *configuration, char *err, size_t errlen)
{
    char how[64];
    int st = ns_file_probe(probe_read, s->path, how, sizeof how);
    if (st != NS_OK) {
        if (st == NS_ERR_INTERRUPTED)
            snprintf(err, errlen, "interrupted; nothing written");
        else
            snprintf(err, errlen, "cannot resume from the sweep progress file: the HDF5 library "
                     "failed reading %s (%s): a corrupt file (delete it to start over)", s->path,
                     how);
        return st == NS_ERR_INTERRUPTED ? st : NS_ERR_INVALID;
    }
    char *there = malloc(CONFIG_MAX);
    long long points = -1;
    if (!there)
        return NS_ERR_NOMEM;
    st = ns_h5_load_memory(&s->h, s->path);
    if (st == NS_OK && ns_h5_check_seal(s->h, "the sweep progress file", PROGRESS_VERSION)) {
        snprintf(err, errlen, "%s", ns_h5_error(s->h)); /* damaged, or older: one line */
        free(there);
        return NS_ERR_INVALID;
    }
    if (st == NS_OK)
        st = ns_h5_read_attr_string(s->h, "/", "configuration", there, CONFIG_MAX);
    if (st == NS_OK)
        st = ns_h5_read_attr_int(s->h, "/", "points", 0, 1LL << 40, &points);
    if (st != NS_OK) {
        snprintf(err, errlen, "cannot resume from the sweep progress file: %s (delete it to start "
                 "over)", ns_h5_error(s->h));
        st = NS_ERR_INVALID;
    } else if (strcmp(there, configuration) != 0 || points != s->npoints) {
        describe_mismatch(configuration, there, s->path, err, errlen);
        st = NS_ERR_INVALID;
    }
    for (long i = 0; st == NS_OK && i < s->npoints; i++) {
        char run[48];
        snprintf(run, sizeof run, "/runs/%ld", i);
        s->done[i] = (unsigned char)ns_h5_exists(s->h, run);
        s->count += s->done[i];
    }
    free(there);
    return st;
}

static int create(ns_sweep_store *s, const char *output, const char *configuration,
                  const char *command_line, char *err, size_t errlen)
{
    int st = ns_h5_create_memory(&s->h, s->path);
    if (st == NS_OK && (st = ns_h5_attr_string(s->h, "/", "progress_of", output)) == NS_OK &&
        (st = ns_h5_attr_string(s->h, "/", "configuration", configuration)) == NS_OK &&
        (st = ns_h5_attr_string(s->h, "/", "command_line", command_line)) == NS_OK &&
        (st = ns_h5_attr_int(s->h, "/", "points", s->npoints)) == NS_OK)
        st = ns_h5_group(s->h, "/runs");
    if (st != NS_OK)
        snprintf(err, errlen, "%s", ns_h5_error(s->h));
    return st;
}

int ns_sweep_store_open(ns_sweep_store **out, const char *output, const char *configuration,
                        const char *command_line, long npoints, char *err, size_t errlen)
{
    ns_sweep_store *s = *out = calloc(1, sizeof *s);
    size_t n = strlen(output) + 32;
    if (s) {
        s->npoints = npoints;
        s->path = malloc(n);
        s->done = calloc((size_t)npoints, 1);
    }
    if (!s || !s->path || !s->done) {
        snprintf(err, errlen, "out of memory");
        return NS_ERR_NOMEM;
    }
    if (strlen(configuration) + 1 > CONFIG_MAX) {
        snprintf(err, errlen, "the sweep's configuration is too long to record (%zu bytes)",
                 strlen(configuration));
        return NS_ERR_INVALID;
    }
    snprintf(s->path, n, "%s.partial-sweep", output);
    if (access(s->path, F_OK) == 0)
        return load(s, configuration, err, errlen);
    return create(s, output, configuration, command_line, err, errlen);
}

int ns_sweep_store_has(const ns_sweep_store *s, long i) { return s->done[i]; }
long ns_sweep_store_count(const ns_sweep_store *s) { return s->count; }
const unsigned char *ns_sweep_store_done(const ns_sweep_store *s) { return s->done; }
ns_h5 *ns_sweep_store_h5(ns_sweep_store *s) { return s->h; }
const char *ns_sweep_store_path(const ns_sweep_store *s) { return s->path; }

const char *ns_sweep_store_error(const ns_sweep_store *s)
{
    return s->err[0] ? s->err : ns_h5_error(s->h);
}

int ns_sweep_store_add(ns_sweep_store *s, long i, ns_h5 *point)
{
    char run[48];
    if (i < 0 || i >= s->npoints || s->done[i]) {
        snprintf(s->err, sizeof s->err, "point %ld arrived twice or does not exist", i);
        s->broken = 1;
        return NS_ERR_INVALID;
    }
    snprintf(run, sizeof run, "/runs/%ld", i);
    int st = ns_h5_copy(s->h, run, point, "/"); /* the point's root becomes /runs/<i> */
    if (st != NS_OK) {
        snprintf(s->err, sizeof s->err, "%s", ns_h5_error(s->h));
        s->broken = 1;
        return st;
    }
    s->done[i] = 1;
    s->count++;
    s->dirty = 1;
    return NS_OK;
}

int ns_sweep_store_save(ns_sweep_store *s)
{
    if (s->broken || !s->dirty)
        return NS_OK;
    int st = ns_h5_seal(s->h, PROGRESS_VERSION);
    if (st == NS_OK)
        st = ns_h5_save(s->h, s->path);
    if (st != NS_OK)
        snprintf(s->err, sizeof s->err, "%s", ns_h5_error(s->h));
    else
        s->dirty = 0;
    return st;
}

int ns_sweep_store_copy_runs(ns_sweep_store *s, ns_h5 *out)
{
    char run[48];
    for (long i = 0; i < s->npoints; i++) {
        snprintf(run, sizeof run, "/runs/%ld", i);
        if (!s->done[i]) {
            snprintf(s->err, sizeof s->err, "point %ld has not run", i);
            return NS_ERR_INVALID;
        }
        int st = ns_h5_copy(out, run, s->h, run);
        if (st != NS_OK) {
            snprintf(s->err, sizeof s->err, "%s", ns_h5_error(out));
            return st;
        }
    }
    return NS_OK;
}

void ns_sweep_store_remove(ns_sweep_store *s)
{
    if (unlink(s->path) != 0 && errno != ENOENT)
        snprintf(s->err, sizeof s->err, "cannot remove %s: %s", s->path, strerror(errno));
}

void ns_sweep_store_free(ns_sweep_store *s)
{
    if (!s)
        return;
    ns_h5_free(s->h);
    free(s->path);
    free(s->done);
    free(s);
}
