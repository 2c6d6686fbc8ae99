/* train_data.c: training batches from the Markov language or from a file. */
#define _POSIX_C_SOURCE 200809L
#include "train_data.h"
#include "files.h"
#include "markov.h"
#include "normscope.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BYTES INT_MAX /* of a --data file */

struct ns_data {
    ns_markov *mc;        /* the synthetic language, or NULL */
    unsigned char *bytes; /* file data: train part [0, split), held out [split, n) */
    size_t n, split;
};

int ns_data_markov(ns_data **out, int vocab, int order, int branching, double eps, uint64_t seed)
{
    ns_data *d = calloc(1, sizeof *d);
    *out = NULL;
    if (!d)
        return NS_ERR_NOMEM;
    int st = ns_markov_create(&d->mc, vocab, order, branching, eps, seed);
    if (st) {
        free(d);
        return st;
    }
    *out = d;
    return NS_OK;
}

int ns_data_file(ns_data **out, const char *path, int vocab, int seq, char *err, size_t errlen)
{
    *out = NULL;
    /* a regular file only: a FIFO would block, a device (/dev/zero) never end */
    int st = NS_OK, fd = ns_file_open_input("--data", path, &st, err, errlen);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        if (fd >= 0) {
            snprintf(err, errlen, "cannot read --data %s: %s", path, strerror(errno));
            close(fd);
        }
        return fd >= 0 ? NS_ERR_IO : st;
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0 && sb.st_size > MAX_BYTES) { /* refused before it is read */
        snprintf(err, errlen, "--data %s is larger than %d bytes", path, MAX_BYTES);
        fclose(f);
        return NS_ERR_INVALID;
    }
    ns_data *d = calloc(1, sizeof *d);
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    size_t n = 0, got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n > MAX_BYTES) /* the sampler indexes windows with an int */
            break;
        if (n == cap) {
            unsigned char *bigger = realloc(buf, cap *= 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
        }
    }
    int read_error = ferror(f);
    fclose(f);
    if (!d || !buf) {
        free(d), free(buf);
        snprintf(err, errlen, "out of memory reading --data %s", path);
        return NS_ERR_NOMEM;
    }
    int max = -1;
    for (size_t i = 0; i < n && n <= MAX_BYTES; i++)
        max = buf[i] > max ? buf[i] : max;
    size_t split = n - n / 10;
    if (read_error)
        snprintf(err, errlen, "cannot read --data %s", path), st = NS_ERR_IO;
    else if (n > MAX_BYTES)
        snprintf(err, errlen, "--data %s is larger than %d bytes", path, MAX_BYTES),
            st = NS_ERR_INVALID;
    else if (n == 0)
        snprintf(err, errlen, "--data %s is empty", path), st = NS_ERR_INVALID;
    else if (max >= vocab)
        snprintf(err, errlen, "--vocab %d is smaller than the data's (byte value %d in %s)", vocab,
                 max, path), st = NS_ERR_INVALID;
    else if (split < (size_t)seq + 1 || n - split < (size_t)seq + 1)
        snprintf(err, errlen, "--data %s has %zu bytes: too short for --seq %d with a tenth held "
                 "out", path, n, seq), st = NS_ERR_INVALID;
    if (st) {
        free(d), free(buf);
        return st;
    }
    d->bytes = buf, d->n = n, d->split = split;
    *out = d;
    return NS_OK;
}

void ns_data_free(ns_data *d)
{
    if (!d)
        return;
    ns_markov_free(d->mc);
    free(d->bytes);
    free(d);
}

int ns_data_batch(const ns_data *d, int *ids, int *targets, int B, int T, uint64_t seed,
                  long index, int eval)
{
    int *seqbuf = malloc((size_t)(T + 1) * sizeof *seqbuf);
    if (!seqbuf)
        return NS_ERR_NOMEM;
    int st = NS_OK;
    for (int b = 0; st == NS_OK && b < B; b++) {
        long key = index * B + b; /* one stream per sequence: the batch size does not shift them */
        if (d->mc) {
            st = ns_markov_sample(d->mc, seqbuf, T + 1, seed, key, eval ? "eval" : "train");
        } else {
            /* a random window of the train part, or of the held-out part */
            size_t lo = eval ? d->split : 0, hi = eval ? d->n : d->split;
            int pick;
            st = ns_fill_uniform_int(&pick, 1, (int)(hi - lo - (size_t)T), seed, (int)(key % 2147483647),
                                     eval ? "eval_offset" : "train_offset");
            for (int t = 0; st == NS_OK && t <= T; t++)
                seqbuf[t] = d->bytes[lo + (size_t)pick + (size_t)t];
        }
        for (int t = 0; st == NS_OK && t < T; t++) {
            ids[b * T + t] = seqbuf[t];
            targets[b * T + t] = seqbuf[t + 1];
        }
    }
    free(seqbuf);
    return st;
}

double ns_data_loss_floor(const ns_data *d, int T)
{
    return d->mc ? ns_markov_loss_floor(d->mc, T) : NAN;
}

double ns_data_entropy_rate(const ns_data *d) { return d->mc ? ns_markov_entropy_rate(d->mc) : NAN; }
