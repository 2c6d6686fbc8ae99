/* train_data.h: where training batches come from. The built-in synthetic Markov language
 * (markov.h), or a byte corpus with its held-out chunks (corpus.h). Batch `index` is the same for
 * a given seed whatever happened before, so a resumed run sees exactly the batches an
 * uninterrupted one would; a corpus's held-out batches are the same for every seed. */
#ifndef NS_TRAIN_DATA_H
#define NS_TRAIN_DATA_H
#include <stddef.h>
#include <stdint.h>
#include "corpus.h"

typedef struct ns_data ns_data;

int ns_data_markov(ns_data **out, int vocab, int order, int branching, double eps, uint64_t seed);
/* the corpus named by spec (corpus.h) with the held-out fraction heldout; a one-line message in
 * err (unreadable or empty, a byte >= vocab, a part too short for seq) */
int ns_data_corpus(ns_data **out, const char *spec, double heldout, int vocab, int seq,
                   char *err, size_t errlen);
/* the corpus of byte data (its files and part sizes), NULL for the Markov language */
const ns_corpus *ns_data_corpus_of(const ns_data *d);
void ns_data_free(ns_data *d);
/* B sequences of T inputs and their next-token targets: training batch `index`, or held-out
 * batch `index` when eval is set */
int ns_data_batch(const ns_data *d, int *ids, int *targets, int B, int T, uint64_t seed,
                  long index, int eval);
/* the best achievable loss and the entropy rate (NAN for file data) */
double ns_data_loss_floor(const ns_data *d, int T);
double ns_data_entropy_rate(const ns_data *d);

#endif
