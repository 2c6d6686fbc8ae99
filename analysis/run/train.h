/* train.h: training a language model with per-layer tracking, instability detection and
 * bit-identical resume.
 *
 * Every step: the batch for that step (train_data.h), forward, backward, global gradient norm,
 * clipping, AdamW with a warmup-cosine schedule (decay on weight matrices only), and one row of
 * /train/{step, loss, lr, grad_norm, update_ratio, clipped}. Every probe_every steps (and at the
 * last step): held-out loss and, on a fixed probe batch, the per-layer metrics of the stream
 * and its gradient, per-layer gradient norms and update ratios of the step, into /train/probe.
 * NaN/Inf loss or gradient, and loss spikes (z-score over a trailing window), go to
 * /train/events. The log is flushed at every probe and at every event. */
#ifndef NS_TRAIN_H
#define NS_TRAIN_H
#include "h5out.h"
#include "normscope.h"
#include "clock.h"
#include "train_data.h"

enum { NS_DIV_STOP = 0, NS_DIV_SKIP = 1, NS_DIV_CONTINUE = 2 };
/* /train/status values */
enum { NS_RUN_RUNNING = 0, NS_RUN_COMPLETE = 1, NS_RUN_DIVERGED = 2, NS_RUN_INTERRUPTED = 3 };
/* /train/events/kind values */
enum { NS_EVENT_NAN_LOSS = 0, NS_EVENT_NAN_GRAD = 1, NS_EVENT_LOSS_SPIKE = 2 };

typedef struct {
    ns_lm_config lm;
    long steps, warmup;
    double lr, min_lr, weight_decay, clip;
    ns_adamw adam;
    uint64_t seed;
    int probe_every, eval_batches, checkpoint_every;
    int on_divergence;
    int spike_window;
    double spike_z;
} ns_train_opts;

typedef struct ns_trainer ns_trainer;

typedef struct {
    int status;          /* NS_RUN_* */
    long steps_done;     /* the last step taken */
    long diverged_at;    /* the first NaN/Inf step, or -1 */
    double last_loss, last_eval, tokens_per_s;
} ns_train_result;

/* takes ownership of data */
int ns_trainer_create(ns_trainer **out, const ns_train_opts *o, ns_data *data);
void ns_trainer_free(ns_trainer *t);
/* what went wrong writing the last checkpoint (NS_ERR_IO from ns_trainer_run) */
const char *ns_trainer_error(const ns_trainer *t);
/* creates /train with every series (before ns_h5_start_swmr) */
int ns_trainer_log_layout(ns_trainer *t, ns_h5 *log);
/* runs steps after the current one up to o->steps, calling tick after each (steps done and to
 * do); a nonzero return stops it with NS_RUN_INTERRUPTED after the step in progress. Checkpoints go to ckpt_path every
 * checkpoint_every steps and when it stops early. signature names the configuration. */
int ns_trainer_run(ns_trainer *t, ns_h5 *log, const char *ckpt_path, const char *signature,
                   ns_tick_fn tick, void *tick_ctx, ns_train_result *r);
/* the held-out loss (nats per token) of the current weights over the eval_batches held-out
 * batches, which are the same at every call */
int ns_trainer_heldout(ns_trainer *t, double *loss);
/* One training step s without any record: the batch, forward, backward, gradient norm,
 * clipping and the AdamW update (what `normscope bench` times). *loss receives the loss. */
int ns_trainer_step(ns_trainer *t, long s, double *loss);
/* restores weights, optimizer state, step and detector window from a checkpoint whose
 * signature must equal this one's (a one-line message in err otherwise), and cuts the log back
 * to what it held at that step */
int ns_trainer_resume(ns_trainer *t, const char *ckpt_path, const char *signature, ns_h5 *log,
                      char *err, size_t errlen);

#endif
