/* train_data.c: training batches from the Markov language or from a byte corpus. */
#define _POSIX_C_SOURCE 200809L
#include "train_data.h"
#include "markov.h"
#include "normscope.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct ns_data {
    ns_markov *mc;        /* the synthetic language, or NULL */
    ns_corpus corpus;     /* byte data, or zeroed */
    unsigned char *bytes; /* corpus.bytes: train part [0, split), held out [split, n) */
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

int ns_data_corpus(ns_data **out, const char *spec, double heldout, int vocab, int seq,
                   char *err, size_t errlen)
{
    *out = NULL;
    ns_data *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory reading --data %s", spec);
        return NS_ERR_NOMEM;
    }
    int st = ns_corpus_read(&d->corpus, spec, heldout, err, errlen);
    const ns_corpus *c = &d->corpus;
    size_t n = c->ntrain + c->nheldout;
    int max = -1;
    for (size_t i = 0; st == NS_OK && i < n; i++)
        max = c->bytes[i] > max ? c->bytes[i] : max;
    if (st == NS_OK && max >= vocab)
        snprintf(err, errlen, "--vocab %d is smaller than the data's (byte value %d in %s): "
                 "byte text takes --vocab 256", vocab, max, spec), st = NS_ERR_INVALID;
    else if (st == NS_OK && (c->ntrain < (size_t)seq + 1 || c->nheldout < (size_t)seq + 1))
        snprintf(err, errlen, "--data %s has %zu bytes: too short for --seq %d with --heldout %g "
                 "(%zu held out)", spec, n, seq, heldout, c->nheldout), st = NS_ERR_INVALID;
    if (st) {
        ns_data_free(d);
        return st;
    }
    d->bytes = c->bytes, d->n = n, d->split = c->ntrain;
    *out = d;
    return NS_OK;
}

const ns_corpus *ns_data_corpus_of(const ns_data *d) { return d->mc ? NULL : &d->corpus; }

void ns_data_free(ns_data *d)
{
    if (!d)
        return;
    ns_markov_free(d->mc);
    ns_corpus_free(&d->corpus);
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
            /* a random window of the train part; or a window of the held-out part at the
             * fraction frac(key phi) of its length, phi the golden ratio's conjugate: the same
             * for every seed, and spread evenly over the part for any number of windows */
            size_t lo = eval ? d->split : 0, hi = eval ? d->n : d->split;
            int pick = 0, windows = (int)(hi - lo - (size_t)T);
            if (eval) {
                double at = fmod((double)key * 0.6180339887498949, 1.0);
                pick = (int)(at * windows);
                pick = pick < windows ? pick : windows - 1;
            } else {
                st = ns_fill_uniform_int(&pick, 1, windows, seed, (int)(key % 2147483647),
                                         "train_offset");
            }
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
