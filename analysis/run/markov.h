/* markov.h: the built-in synthetic language, a sparse random Markov chain of order k over V
 * symbols, with its exact entropy rate, so a training run knows the best achievable loss.
 *
 * Each context (the last k symbols) allows `branching` next symbols with Dirichlet(1) weights,
 * mixed with the uniform distribution: P(s | c) = (1 - eps) q_c(s) + eps / V. The mixing makes
 * the chain ergodic, so the stationary distribution over contexts, the entropy rate and the
 * stationary start of every sequence are well defined. Everything comes from the seed. */
#ifndef NS_MARKOV_H
#define NS_MARKOV_H
#include <stddef.h>
#include <stdint.h>

typedef struct ns_markov ns_markov;

/* V >= 2, k >= 1, 1 <= branching <= V, 0 <= eps <= 1, V^k <= 2^22 contexts */
int ns_markov_create(ns_markov **out, int V, int k, int branching, double eps, uint64_t seed);
void ns_markov_free(ns_markov *mc);
/* nats per token: sum_c pi(c) H(P(. | c)) under the stationary distribution pi */
double ns_markov_entropy_rate(const ns_markov *mc);
/* the best achievable mean cross-entropy when predicting tokens 1..T of a stationary sequence
 * from all earlier ones: positions with fewer than k earlier symbols see less than a full context,
 * so the floor is slightly above the entropy rate */
double ns_markov_loss_floor(const ns_markov *mc, int T);
/* n tokens of a stationary sequence from the stream (seed, index, name) */
int ns_markov_sample(const ns_markov *mc, int *out, int n, uint64_t seed, long index,
                     const char *name);
/* -log P(x_t | x_{t-k} .. x_{t-1}) summed over t = k .. n-1 (for tests) */
double ns_markov_nll(const ns_markov *mc, const int *x, int n);

#endif
