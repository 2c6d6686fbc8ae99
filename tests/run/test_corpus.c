/* test_corpus.c: the byte corpus (corpus.h) and its held-out evaluation.
 *  - a directory contributes its regular text files sorted by name: not its links, its
 *    subdirectory, its FIFO or its binary file; a comma list concatenates in order;
 *  - the split: the held-out chunks are those of an independent rule (every k-th chunk for
 *    f = 1/k), floor(K f) of the first K, the two parts are disjoint and together the corpus
 *    (rebuilt chunk by chunk), and a second read gives the same bytes;
 *  - bad inputs: a missing path, an empty directory, a FIFO (refused, never waited on);
 *  - the held-out loss of a trainer equals a direct cross-entropy over the softmax
 *    probabilities of the same held-out windows (and bits = nats / ln 2), and the held-out
 *    windows are the same for every seed. */
#define _POSIX_C_SOURCE 200809L
#include "corpus.h"
#include "normscope.h"
#include "train.h"
#include "train_data.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char dir[64];

static void put(const char *name, const void *data, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n, "write %s", path);
    if (f)
        fclose(f);
}

/* n letters of a fixed pseudo-random text */
static char *text(size_t n, unsigned seed)
{
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + (seed = seed * 1103515245u + 12345u) % 26);
    s[n] = 0;
    return s;
}

static void check_split(const char *spec, const unsigned char *whole, size_t n, double f)
{
    ns_corpus c, again;
    char err[512];
    CHECK(ns_corpus_read(&c, spec, f, err, sizeof err) == NS_OK, "read %s: %s", spec, err);
    CHECK(ns_corpus_read(&again, spec, f, err, sizeof err) == NS_OK, "reread %s: %s", spec, err);
    CHECK(c.ntrain + c.nheldout == n, "f=%g: %zu + %zu bytes, corpus %zu", f, c.ntrain,
          c.nheldout, n);
    CHECK(again.ntrain == c.ntrain && !memcmp(again.bytes, c.bytes, n),
          "f=%g: two reads differ", f);
    /* rebuild the corpus chunk by chunk from the two parts */
    size_t chunk = ns_corpus_chunk_bytes(n), at_train = 0, at_held = 0, nchunks = 0, held = 0;
    int rebuilt = 1;
    for (size_t i = 0, lo = 0; lo < n; i++, lo += chunk, nchunks++) {
        size_t len = n - lo < chunk ? n - lo : chunk;
        int h = ns_corpus_chunk_heldout(i, f);
        const unsigned char *part = h ? c.bytes + c.ntrain + at_held : c.bytes + at_train;
        rebuilt &= !memcmp(part, whole + lo, len);
        *(h ? &at_held : &at_train) += len;
        held += (size_t)h;
    }
    CHECK(rebuilt && at_train == c.ntrain && at_held == c.nheldout,
          "f=%g: the parts do not rebuild the corpus", f);
    CHECK(held == (size_t)floor((double)nchunks * f), "f=%g: %zu of %zu chunks held out", f, held,
          nchunks);
    CHECK(fabs((double)c.nheldout / (double)n - f) <= (double)chunk / (double)n + 1e-12,
          "f=%g: held-out fraction %.4f", f, (double)c.nheldout / (double)n);
    ns_corpus_free(&c);
    ns_corpus_free(&again);
}

/* the mean cross-entropy of the held-out batches, computed from the probabilities of an LM
 * built and initialized on its own */
static double direct_heldout(const ns_train_opts *o, const ns_data *d)
{
    ns_lm *lm = NULL;
    const ns_config *c = &o->lm.blocks;
    int T = c->seq, B = c->ntok / T, V = o->lm.vocab;
    int *ids = malloc(2 * (size_t)c->ntok * sizeof *ids), *targets = ids + c->ntok;
    CHECK(ns_lm_create(&lm, &o->lm) == NS_OK && ns_lm_init(lm, o->seed) == NS_OK, "lm");
    double nll = 0, loss;
    for (int e = 0; lm && e < o->eval_batches; e++) {
        CHECK(ns_data_batch(d, ids, targets, B, T, 12345, e, 1) == NS_OK, "held-out batch");
        CHECK(ns_lm_forward(lm, ids, targets, &loss) == NS_OK, "forward");
        const ns_real *p = ns_lm_probs(lm);
        for (int i = 0; i < c->ntok; i++)
            nll -= log((double)p[(size_t)i * V + targets[i]]);
    }
    ns_lm_free(lm);
    free(ids);
    return nll / ((double)o->eval_batches * c->ntok);
}

static void check_heldout_loss(const char *spec)
{
    ns_train_opts o = {.lm = {.vocab = 256}, .steps = 1, .lr = 1e-3,
                       .adam = {.beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8}, .seed = 7,
                       .eval_batches = 3, .spike_window = 50, .spike_z = 6};
    o.lm.blocks = (ns_config){.block = NS_BLOCK_TRANSFORMER, .placement = ns_placement_at(0),
                              .depth = 2, .width = 16, .hidden = 32, .ntok = 24, .seq = 8,
                              .heads = 2, .act = NS_ACT_GELU, .norm = NS_NORM_LAYERNORM,
                              .norm_eps = 1e-5, .alpha = 1};
    ns_data *d = NULL, *mine = NULL;
    ns_trainer *t = NULL;
    char err[512];
    CHECK(ns_data_corpus(&d, spec, 0.2, 256, 8, err, sizeof err) == NS_OK, "%s", err);
    CHECK(ns_data_corpus(&mine, spec, 0.2, 256, 8, err, sizeof err) == NS_OK, "%s", err);
    if (!d || !mine)
        return;
    /* the held-out windows do not depend on the seed */
    int a[48], b[48];
    ns_data_batch(mine, a, a + 24, 3, 8, 1, 2, 1);
    ns_data_batch(mine, b, b + 24, 3, 8, 99, 2, 1);
    CHECK(!memcmp(a, b, sizeof a), "held-out batch 2 depends on the seed");
    CHECK(ns_trainer_create(&t, &o, d) == NS_OK, "trainer");
    double nats = NAN, direct = direct_heldout(&o, mine);
    CHECK(t && ns_trainer_heldout(t, &nats) == NS_OK, "heldout");
    /* float probabilities against the loss's log-sum-exp */
    CHECK(fabs(nats - direct) < 1e-5 * direct, "held-out loss %.9f, direct %.9f", nats, direct);
    CHECK(fabs(nats / log(2.0) - direct / log(2.0)) < 1e-5 * direct && nats / log(2.0) > 1 &&
              nats / log(2.0) < 16, "held-out bits %.6f, direct %.6f", nats / log(2.0),
          direct / log(2.0));
    ns_trainer_free(t);
    ns_data_free(mine);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_corpus.XXXXXX");
    if (!mkdtemp(dir)) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    char path[256], list[600], sub[256], empty[256];
    /* b, a, c written out of order; a binary file, a link, a subdirectory and a FIFO beside */
    char *ta = text(30000, 1), *tb = text(12345, 2), *tc = text(777, 3);
    put("b.txt", tb, strlen(tb));
    put("a", ta, strlen(ta));
    put("c.txt", tc, strlen(tc));
    put("index.dat", "\0\0\0\2binary", 10);
    snprintf(path, sizeof path, "%s/a.u8", dir);
    CHECK(symlink("a", path) == 0, "symlink");
    snprintf(sub, sizeof sub, "%s/sub", dir);
    CHECK(mkdir(sub, 0700) == 0, "mkdir");
    snprintf(path, sizeof path, "%s/sub/inner", dir);
    FILE *f = fopen(path, "w");
    if (f)
        fputs("never read", f), fclose(f);
    snprintf(path, sizeof path, "%s/pipe", dir);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo");

    size_t na = strlen(ta), nb = strlen(tb), nc = strlen(tc), n = na + nb + nc;
    unsigned char *whole = malloc(2 * n);
    memcpy(whole, ta, na), memcpy(whole + na, tb, nb), memcpy(whole + na + nb, tc, nc);
    ns_corpus c;
    char err[512];
    CHECK(ns_corpus_read(&c, dir, 0.1, err, sizeof err) == NS_OK, "read: %s", err);
    CHECK(c.nfiles == 3 && strstr(c.files[0], "/a") && strstr(c.files[1], "/b.txt") &&
              strstr(c.files[2], "/c.txt"), "files: %d", c.nfiles);
    ns_corpus_free(&c);
    for (double fr = 0.05; fr < 0.96; fr += 0.15)
        check_split(dir, whole, n, fr);
    /* the independent rule: for f = 1/k, exactly the chunks k-1, 2k-1, ... */
    for (int k = 2; k <= 20; k++)
        for (size_t i = 0; i < 1000; i++)
            CHECK(ns_corpus_chunk_heldout(i, 1.0 / k) == (i % (size_t)k == (size_t)k - 1),
                  "k=%d chunk %zu", k, i);
    /* a comma list: the directory, then a file again */
    snprintf(list, sizeof list, "%s,%s/c.txt", dir, dir);
    memcpy(whole + n, tc, nc);
    check_split(list, whole, n + nc, 0.1);

    /* bad inputs */
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK(ns_corpus_read(&c, path, 0.1, err, sizeof err) == NS_ERR_IO && strstr(err, "missing"),
          "missing: %s", err);
    snprintf(empty, sizeof empty, "%s/empty", dir);
    CHECK(mkdir(empty, 0700) == 0, "mkdir");
    CHECK(ns_corpus_read(&c, empty, 0.1, err, sizeof err) == NS_ERR_INVALID &&
              strstr(err, "empty"), "empty directory: %s", err);
    snprintf(path, sizeof path, "%s/pipe", dir);
    CHECK(ns_corpus_read(&c, path, 0.1, err, sizeof err) == NS_ERR_INVALID &&
              strstr(err, "FIFO"), "FIFO: %s", err);
    snprintf(list, sizeof list, "%s,", dir);
    CHECK(ns_corpus_read(&c, list, 0.1, err, sizeof err) == NS_ERR_INVALID, "trailing comma");
    CHECK(ns_corpus_read(&c, dir, 1.0, err, sizeof err) == NS_ERR_INVALID, "--heldout 1");

    check_heldout_loss(dir);

    /* clean up */
    const char *names[] = {"a", "b.txt", "c.txt", "index.dat", "a.u8", "sub/inner", "pipe"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(sub), rmdir(empty), rmdir(dir);
    free(ta), free(tb), free(tc), free(whole);
    printf("test_corpus: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
