/* train.c: the training loop of train.h. */
#include "train.h"
#include "metrics.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ns_trainer {
    ns_train_opts o;
    ns_lm *lm;
    ns_data *data;
    long step;             /* the last completed step (0 before training) */
    size_t nblock, nlm;    /* parameter counts: all blocks, the LM's own tensors */
    ns_real *opt;          /* AdamW state, one allocation: m and v of the blocks, then the LM's */
    int *ids, *targets;    /* [ntok] */
    double *window;        /* the trailing losses, oldest first [spike_window] */
    int nwindow;
    double *layer_g2, *layer_du2, *layer_w2; /* per block, of the current step [L] */
    double *row;           /* a probe row */
    char err[512];         /* why the last checkpoint could not be written */
};

static const char *const event_kinds[] = {"nan_loss", "nan_grad", "loss_spike"};

int ns_trainer_create(ns_trainer **out, const ns_train_opts *o, ns_data *data)
{
    *out = NULL;
    ns_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        ns_data_free(data);
        return NS_ERR_NOMEM;
    }
    t->o = *o;
    t->data = data;
    int st = ns_lm_create(&t->lm, &o->lm);
    if (!st)
        st = ns_lm_init(t->lm, o->seed);
    if (st) {
        ns_trainer_free(t);
        return st;
    }
    ns_model_params_all(ns_lm_model(t->lm), &t->nblock);
    ns_lm_params_all(t->lm, &t->nlm);
    const ns_config *c = &o->lm.blocks;
    int L = c->depth, E = c->block == NS_BLOCK_MOE ? c->experts : 1;
    t->opt = ns_alloc_large(2 * (t->nblock + t->nlm) * sizeof(ns_real));
    t->ids = malloc(2 * (size_t)c->ntok * sizeof(int));
    t->window = calloc((size_t)(o->spike_window > 0 ? o->spike_window : 1), sizeof(double));
    t->layer_g2 = calloc(3 * (size_t)L + (size_t)(L + 1) * E, sizeof(double));
    if (!t->opt || !t->ids || !t->window || !t->layer_g2) {
        ns_trainer_free(t);
        return NS_ERR_NOMEM;
    }
    t->targets = t->ids + c->ntok;
    t->layer_du2 = t->layer_g2 + L, t->layer_w2 = t->layer_du2 + L, t->row = t->layer_w2 + L;
    /* Admin: the skip weights are profiled on the run's own input, the first step's batch; a
     * resume reads them back from the checkpoint */
    size_t nw;
    if (ns_model_skip_weights(ns_lm_model(t->lm), &nw) &&
        ((st = ns_data_batch(t->data, t->ids, t->targets, c->ntok / c->seq, c->seq, o->seed, 1,
                             0)) ||
         (st = ns_lm_profile(t->lm, t->ids)))) {
        ns_trainer_free(t);
        return st;
    }
    *out = t;
    return NS_OK;
}

const char *ns_trainer_error(const ns_trainer *t) { return t->err; }

void ns_trainer_free(ns_trainer *t)
{
    if (!t)
        return;
    ns_lm_free(t->lm);
    ns_data_free(t->data);
    ns_free_large(t->opt);
    free(t->ids);
    free(t->window);
    free(t->layer_g2);
    free(t);
}

/* ---- the log layout ------------------------------------------------------------------------ */

int ns_trainer_log_layout(ns_trainer *t, ns_h5 *log)
{
    const ns_config *c = &t->o.lm.blocks;
    /* descriptions, labels and shapes: the schema table (h5schema.c) */
    const ns_h5schema_sizes z = {.depth = (size_t)c->depth, .experts = (size_t)c->experts};
    unsigned kind = c->block == NS_BLOCK_MOE           ? NS_H5B_MOE
                    : c->block == NS_BLOCK_TRANSFORMER ? NS_H5B_TRANSFORMER
                                                       : NS_H5B_MLP;
    int st = NS_OK;
    const char *groups[] = {"/train", "/train/probe", "/train/events"};
    for (int i = 0; st == NS_OK && i < 3; i++)
        st = ns_h5_group(log, groups[i]);
    for (int i = NS_H5S_TRAIN_STEP; st == NS_OK && i <= NS_H5S_TRAIN_EVENTS_VALUE; i++)
        if (ns_h5schema_get((ns_h5schema_id)i)->blocks & kind)
            st = ns_h5_entry_series(log, "", (ns_h5schema_id)i, &z);
    /* the run's status, overwritten at the end (attributes cannot change under SWMR) */
    double running = NS_RUN_RUNNING;
    if (st == NS_OK)
        st = ns_h5_entry(log, "", NS_H5S_TRAIN_STATUS, &z, &running);
    if (st == NS_OK && ns_h5_rows(log, "/train/status") < 0) /* opened now, written under SWMR */
        st = NS_ERR_IO;
    if (st == NS_OK)
        st = ns_h5_attr_strings(log, "/train/events", "kinds", event_kinds, 3);
    size_t nw;
    const ns_model *m = ns_lm_model(t->lm);
    const double *w = ns_model_skip_weights(m, &nw);
    if (st == NS_OK && w) {
        const ns_h5schema_sizes zw = {.depth = (size_t)c->depth,
                                      .sublayers = (size_t)ns_model_nsublayers(m)};
        st = ns_h5_entry(log, "", NS_H5S_TRAIN_SKIP_WEIGHT, &zw, w);
    }
    if (st == NS_OK)
        st = ns_h5_attr_double(log, "/train", "entropy_rate",
                               ns_data_entropy_rate(t->data));
    if (st == NS_OK)
        st = ns_h5_attr_double(log, "/train", "loss_floor",
                               ns_data_loss_floor(t->data, c->seq));
    if (st == NS_OK)
        st = ns_h5_attr_int(log, "/train", "tokens_per_step", c->ntok);
    const ns_corpus *corpus = ns_data_corpus_of(t->data);
    if (st == NS_OK && corpus) /* byte data: the sizes of its parts and the files read */
        st = ns_h5_attr_int(log, "/train", "train_bytes", (long long)corpus->ntrain);
    if (st == NS_OK && corpus)
        st = ns_h5_attr_int(log, "/train", "heldout_bytes", (long long)corpus->nheldout);
    if (st == NS_OK && corpus)
        st = ns_h5_attr_strings(log, "/train", "data_files", (const char *const *)corpus->files,
                                corpus->nfiles);
    return st;
}

/* ---- one step ------------------------------------------------------------------------------- */

/* squared gradient norm, per block into layer_g2 and in all */
static double grad_norm2(ns_trainer *t)
{
    ns_model *m = ns_lm_model(t->lm);
    int L = t->o.lm.blocks.depth, P = ns_model_nparams(m);
    double total = 0;
    for (int l = 1; l <= L; l++) {
        t->layer_g2[l - 1] = 0;
        for (int i = 0; i < P; i++) {
            const ns_param_info *pi = ns_model_param_info(m, i);
            t->layer_g2[l - 1] += ns_sum_squares(ns_model_param_grad(m, l, i),
                                                 (size_t)pi->rows * pi->cols);
        }
        total += t->layer_g2[l - 1];
    }
    for (int k = 0; k < ns_lm_ntensors(t->lm); k++) {
        ns_real *w, *g;
        const ns_param_info *pi = ns_lm_tensor(t->lm, k, &w, &g);
        if (pi)
            total += ns_sum_squares(g, (size_t)pi->rows * pi->cols);
    }
    return total;
}

/* AdamW on every tensor; decay on weight matrices only (not norms, not embeddings) */
static void update(ns_trainer *t, double lr, double scale, double *du2, double *w2)
{
    ns_model *m = ns_lm_model(t->lm);
    int L = t->o.lm.blocks.depth, P = ns_model_nparams(m);
    size_t bp = t->nblock / (size_t)L;
    ns_real *mb = t->opt, *vb = mb + t->nblock, *ml = vb + t->nblock, *vl = ml + t->nlm;
    *du2 = *w2 = 0;
    for (int l = 1; l <= L; l++) {
        t->layer_du2[l - 1] = t->layer_w2[l - 1] = 0;
        for (int i = 0; i < P; i++) {
            const ns_param_info *pi = ns_model_param_info(m, i);
            size_t off = (size_t)(l - 1) * bp + pi->offset, n = (size_t)pi->rows * pi->cols;
            double du, w;
            ns_adamw_update(ns_model_param(m, l, i), ns_model_param_grad(m, l, i), mb + off,
                            vb + off, n, &t->o.adam, lr, pi->is_matrix ? t->o.weight_decay : 0,
                            t->step + 1, scale, &du, &w);
            t->layer_du2[l - 1] += du, t->layer_w2[l - 1] += w;
        }
        *du2 += t->layer_du2[l - 1], *w2 += t->layer_w2[l - 1];
    }
    for (int k = 0; k < ns_lm_ntensors(t->lm); k++) {
        ns_real *w, *g;
        const ns_param_info *pi = ns_lm_tensor(t->lm, k, &w, &g);
        if (!pi)
            continue;
        double du, ww;
        ns_adamw_update(w, g, ml + pi->offset, vl + pi->offset, (size_t)pi->rows * pi->cols,
                        &t->o.adam, lr, pi->is_matrix ? t->o.weight_decay : 0, t->step + 1,
                        scale, &du, &ww);
        *du2 += du, *w2 += ww;
    }
}

static int event(ns_h5 *log, long step, int kind, double value)
{
    int st = ns_h5_append(log, "/train/events/step", &(double){(double)step});
    if (!st)
        st = ns_h5_append(log, "/train/events/kind", &(double){(double)kind});
    if (!st)
        st = ns_h5_append(log, "/train/events/value", &value);
    return st ? st : ns_h5_flush(log);
}

int ns_trainer_heldout(ns_trainer *t, double *loss)
{
    const ns_config *c = &t->o.lm.blocks;
    int T = c->seq, B = c->ntok / T, st = NS_OK;
    double sum = 0, batch_loss = 0;
    for (int e = t->o.eval_batches - 1; st == NS_OK && e >= 0; e--) { /* batch 0 last: probed */
        st = ns_data_batch(t->data, t->ids, t->targets, B, T, t->o.seed, e, 1);
        if (!st)
            st = ns_lm_forward(t->lm, t->ids, t->targets, &batch_loss);
        sum += batch_loss;
    }
    *loss = sum / t->o.eval_batches;
    return st;
}

#define NS_LN2 0.693147180559945309417232121458 /* nats per bit */

/* held-out loss, then the per-layer metrics on the probe batch (held-out batch 0) */
static int probe(ns_trainer *t, ns_h5 *log, double *eval_loss)
{
    const ns_config *c = &t->o.lm.blocks;
    int L = c->depth, d = c->width, T = c->seq, B = c->ntok / T;
    int st = ns_trainer_heldout(t, eval_loss);
    if (st)
        return st;
    ns_model *m = ns_lm_model(t->lm);
    size_t n = (size_t)c->ntok * d;
    double *r = t->row;
    st = ns_h5_append(log, "/train/probe/step", &(double){(double)t->step});
    if (!st)
        st = ns_h5_append(log, "/train/probe/eval_loss", eval_loss);
    if (!st)
        st = ns_h5_append(log, "/train/probe/eval_bits", &(double){*eval_loss / NS_LN2});
    for (int l = 0; l <= L; l++)
        r[l] = ns_metric_mean_square(ns_model_stream(m, l), n);
    if (!st)
        st = ns_h5_append(log, "/train/probe/act_ms", r);
    for (int l = 0; l <= L; l++)
        r[l] = ns_metric_cos_tokens(ns_model_stream(m, l), B, T, d);
    if (!st)
        st = ns_h5_append(log, "/train/probe/cos_tokens", r);
    for (int l = 0; l <= L && !st; l++)
        if (ns_metric_eff_rank(ns_model_stream(m, l), B, T, d, &r[l]) != 0)
            st = NS_ERR_NUMERIC;
    if (!st)
        st = ns_h5_append(log, "/train/probe/eff_rank", r);
    for (int l = 1; l <= L; l++)
        r[l - 1] = ns_metric_cos_layer(ns_model_stream(m, l - 1), ns_model_stream(m, l), c->ntok, d);
    if (!st)
        st = ns_h5_append(log, "/train/probe/cos_layer", r);
    if (c->block != NS_BLOCK_MLP) {
        double *per_head = malloc((size_t)c->heads * sizeof *per_head);
        for (int l = 1; per_head && l <= L; l++)
            r[l - 1] = ns_metric_attn_entropy(ns_model_attn_probs(m, l), B, c->heads, T, per_head);
        free(per_head);
        if (!st)
            st = per_head ? ns_h5_append(log, "/train/probe/attn_entropy", r) : NS_ERR_NOMEM;
    }
    if (c->block == NS_BLOCK_MOE) {
        for (int l = 1; l <= L; l++) {
            const ns_real *probs;
            const int *expert, *row;
            ns_model_routing(m, l, &probs, &expert, &row);
            ns_metric_expert_load(expert, c->ntok, c->top_k, c->experts, r + (size_t)(l - 1) * c->experts);
        }
        if (!st)
            st = ns_h5_append(log, "/train/probe/expert_load", r);
    }
    for (int l = 0; l < L; l++)
        r[l] = sqrt(t->layer_g2[l]);
    if (!st)
        st = ns_h5_append(log, "/train/probe/param_grad_norm", r);
    for (int l = 0; l < L; l++)
        r[l] = t->layer_w2[l] > 0 ? sqrt(t->layer_du2[l] / t->layer_w2[l]) : 0;
    if (!st)
        st = ns_h5_append(log, "/train/probe/update_ratio", r);
    /* the stream's gradient on the probe batch (its parameter gradients are discarded: the next
     * step zeroes them) */
    if (!st)
        st = ns_lm_backward(t->lm, r);
    if (!st)
        st = ns_h5_append(log, "/train/probe/grad_ms", r);
    return st ? st : ns_h5_flush(log);
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

static const char *const step_series[] = {"/train/step", "/train/loss", "/train/lr",
                                          "/train/grad_norm", "/train/update_ratio",
                                          "/train/clipped"};
static const char *const probe_series[] = {
    "/train/probe/step", "/train/probe/eval_loss", "/train/probe/eval_bits",
    "/train/probe/act_ms", "/train/probe/grad_ms", "/train/probe/cos_tokens",
    "/train/probe/eff_rank", "/train/probe/cos_layer", "/train/probe/param_grad_norm", "/train/probe/update_ratio",
    "/train/probe/attn_entropy", "/train/probe/expert_load"};
static const char *const event_series[] = {"/train/events/step", "/train/events/kind",
                                           "/train/events/value"};

/* version 2: a format_version and a checksum (ns_h5_seal); version 1 had neither */
#define CKPT_VERSION 2

static int save(ns_trainer *t, ns_h5 *log, const char *path, const char *signature)
{
    ns_h5 *h = NULL;
    size_t nb, nl;
    ns_real *pb = ns_model_params_all(ns_lm_model(t->lm), &nb), *pl = ns_lm_params_all(t->lm, &nl);
    /* the log on disk holds every row the checkpoint counts, even after a kill -9 (a resume
     * refuses counts past the log's) */
    int st = ns_h5_flush(log);
    if (st) {
        snprintf(t->err, sizeof t->err, "%s", ns_h5_error(log));
        return st;
    }
    st = ns_h5_create(&h, path);
    if (!st && !(st = ns_h5_attr_string(h, "/", "schema", NS_SCHEMA "/checkpoint")) &&
        !(st = ns_h5_attr_string(h, "/", "signature", signature)) &&
        !(st = ns_h5_attr_int(h, "/", "step", t->step)) &&
        !(st = ns_h5_attr_int(h, "/", "rows_steps", ns_h5_rows(log, step_series[0]))) &&
        !(st = ns_h5_attr_int(h, "/", "rows_probe", ns_h5_rows(log, probe_series[0]))) &&
        !(st = ns_h5_attr_int(h, "/", "rows_events", ns_h5_rows(log, event_series[0]))) &&
        !(st = ns_h5_attr_int(h, "/", "nwindow", t->nwindow)) &&
        !(st = ns_h5_dataset_f32(h, "/block_params", nb, pb)) &&
        !(st = ns_h5_dataset_f32(h, "/lm_params", nl, pl)) &&
        !(st = ns_h5_dataset_f32(h, "/adam_state", 2 * (nb + nl), t->opt))) {
        size_t nw[] = {(size_t)(t->o.spike_window > 0 ? t->o.spike_window : 1)};
        st = ns_h5_dataset(h, "/loss_window", 1, nw, t->window, "trailing losses", NULL);
    }
    size_t ns;
    const double *skip = ns_model_skip_weights(ns_lm_model(t->lm), &ns);
    if (!st && skip) /* Admin: the profiled weights are model state */
        st = ns_h5_dataset(h, "/skip_weights", 1, &ns, skip, "profiled skip weights", NULL);
    if (!st)
        st = ns_h5_seal(h, CKPT_VERSION); /* last: the checksum covers everything above */
    if (!st)
        st = ns_h5_commit(h);
    if (st)
        snprintf(t->err, sizeof t->err, "%s", ns_h5_error(h));
    ns_h5_free(h);
    return st;
}

/* Reads a checkpoint, checking everything before any of it is used: its seal (format version and
 * checksum), the signature, the step (0..--steps), the log's row counts (at most what the log
 * holds), nwindow (0..--spike-window), every tensor's shape (the model's parameter counts) and
 * that every value is finite. Nothing of the trainer changes unless all of it passes, but the
 * parameters, which are read in place (the caller frees the trainer on failure). */
int ns_trainer_resume(ns_trainer *t, const char *path, const char *signature, ns_h5 *log,
                      char *err, size_t errlen)
{
    ns_h5 *h = NULL;
    char sig[4096], schema[64];
    long long step, rows[3], nwindow;
    size_t nb, nl;
    ns_real *pb = ns_model_params_all(ns_lm_model(t->lm), &nb), *pl = ns_lm_params_all(t->lm, &nl);
    size_t nw = (size_t)(t->o.spike_window > 0 ? t->o.spike_window : 1);
    size_t nopt = 2 * (nb + nl);
    const char *const *sets[] = {step_series, probe_series, event_series};
    size_t counts[] = {sizeof step_series / sizeof *step_series,
                       sizeof probe_series / sizeof *probe_series,
                       sizeof event_series / sizeof *event_series};
    long have[3];
    for (int s = 0; s < 3; s++)
        have[s] = ns_h5_rows(log, sets[s][0]);
    int st = ns_h5_open_read(&h, path);
    if (!st && !(st = ns_h5_read_attr_string(h, "/", "schema", schema, sizeof schema)) &&
        strcmp(schema, NS_SCHEMA "/checkpoint") != 0) {
        snprintf(err, errlen, "%s is not a normscope checkpoint (schema '%s')", path, schema);
        ns_h5_free(h);
        return NS_ERR_INVALID;
    }
    if (!st && (st = ns_h5_check_seal(h, "checkpoint", CKPT_VERSION)) != NS_OK) {
        snprintf(err, errlen, "%s", ns_h5_error(h)); /* damaged, or older: one line */
        ns_h5_free(h);
        return NS_ERR_INVALID;
    }
    if (!st)
        st = ns_h5_read_attr_string(h, "/", "signature", sig, sizeof sig);
    if (!st && strcmp(sig, signature) != 0) {
        /* name the first option that differs: the signatures are "name=value;..." lists */
        const char *a = sig, *b = signature;
        while (*a && *a == *b)
            a++, b++;
        while (a > sig && a[-1] != ';')
            a--, b--;
        snprintf(err, errlen, "the checkpoint %s was made with a different configuration: %.*s "
                 "there, %.*s here", path, (int)strcspn(a, ";"), a, (int)strcspn(b, ";"), b);
        ns_h5_free(h);
        return NS_ERR_INVALID;
    }
    if (!st && !(st = ns_h5_read_attr_int(h, "/", "step", 0, t->o.steps, &step)) &&
        !(st = ns_h5_read_attr_int(h, "/", "rows_steps", 0, have[0], &rows[0])) &&
        !(st = ns_h5_read_attr_int(h, "/", "rows_probe", 0, have[1], &rows[1])) &&
        !(st = ns_h5_read_attr_int(h, "/", "rows_events", 0, have[2], &rows[2])) &&
        !(st = ns_h5_read_attr_int(h, "/", "nwindow", 0,
                                   t->o.spike_window > 1 ? t->o.spike_window : 0, &nwindow)) &&
        !(st = ns_h5_read_f32_shape(h, "/block_params", 1, &nb, pb, 1)) &&
        !(st = ns_h5_read_f32_shape(h, "/lm_params", 1, &nl, pl, 1)) &&
        !(st = ns_h5_read_f32_shape(h, "/adam_state", 1, &nopt, t->opt, 1)))
        st = ns_h5_read_f64_shape(h, "/loss_window", 1, &nw, t->window, 1);
    size_t nskip;
    double *skip = NULL;
    if (!st && ns_model_skip_weights(ns_lm_model(t->lm), &nskip)) {
        if (!(skip = malloc(nskip * sizeof *skip)))
            st = NS_ERR_NOMEM;
        else if (!(st = ns_h5_read_f64_shape(h, "/skip_weights", 1, &nskip, skip, 1)) &&
                 ns_model_set_skip_weights(ns_lm_model(t->lm), skip, nskip) != NS_OK) {
            snprintf(err, errlen, "cannot resume from %s: its skip weights are not positive",
                     path);
            free(skip);
            ns_h5_free(h);
            return NS_ERR_INVALID;
        }
        free(skip);
    }
    if (st) {
        snprintf(err, errlen, "cannot resume from %s: %s", path, ns_h5_error(h));
        ns_h5_free(h);
        return NS_ERR_INVALID;
    }
    ns_h5_free(h);
    t->step = (long)step;
    t->nwindow = (int)nwindow;
    /* the log may hold rows past the checkpoint: cut it back to what the checkpoint saw */
    for (int s = 0; s < 3; s++)
        for (size_t i = 0; i < counts[s]; i++)
            if (ns_h5_rows(log, sets[s][i]) >= 0 &&
                ns_h5_truncate(log, sets[s][i], (size_t)rows[s]) != NS_OK) {
                snprintf(err, errlen, "%s", ns_h5_error(log));
                return NS_ERR_IO;
            }
    return NS_OK;
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* step s's batch, forward and backward: its loss and gradient norm (before clipping) */
static int forward_backward(ns_trainer *t, long s, double *loss, double *gn)
{
    const ns_config *c = &t->o.lm.blocks;
    int st = ns_data_batch(t->data, t->ids, t->targets, c->ntok / c->seq, c->seq, t->o.seed, s, 0);
    if (st)
        return st;
    ns_lm_zero_grad(t->lm);
    if ((st = ns_lm_forward(t->lm, t->ids, t->targets, loss)) ||
        (st = ns_lm_backward(t->lm, NULL)))
        return st;
    *gn = sqrt(grad_norm2(t));
    return NS_OK;
}

static double clip_scale(const ns_train_opts *o, double gn)
{
    return o->clip > 0 && gn > o->clip ? o->clip / gn : 1;
}

int ns_trainer_step(ns_trainer *t, long s, double *loss)
{
    double gn, du2, w2;
    int st = forward_backward(t, s, loss, &gn);
    if (st == NS_OK)
        update(t, ns_lr_at(s, t->o.warmup, t->o.steps, t->o.lr, t->o.min_lr),
               clip_scale(&t->o, gn), &du2, &w2);
    return st;
}

int ns_trainer_run(ns_trainer *t, ns_h5 *log, const char *ckpt_path, const char *signature,
                   ns_tick_fn tick, void *tick_ctx, ns_train_result *r)
{
    const ns_train_opts *o = &t->o;
    const ns_config *c = &o->lm.blocks;
    int W = o->spike_window, st = NS_OK;
    *r = (ns_train_result){.status = NS_RUN_RUNNING, .diverged_at = -1, .last_eval = NAN};
    long first = t->step + 1;
    double t0 = ns_now();
    for (long s = first; s <= o->steps; s++) {
        double loss, gn, du2 = 0, w2 = 0;
        if ((st = forward_backward(t, s, &loss, &gn)))
            break;
        double lr = ns_lr_at(s, o->warmup, o->steps, o->lr, o->min_lr);
        int bad_loss = !isfinite(loss), bad_grad = !isfinite(gn), diverged = bad_loss || bad_grad;
        if (bad_loss && (st = event(log, s, NS_EVENT_NAN_LOSS, loss)))
            break;
        if (bad_grad && (st = event(log, s, NS_EVENT_NAN_GRAD, gn)))
            break;
        if (diverged && r->diverged_at < 0)
            r->diverged_at = s;
        double scale = clip_scale(o, gn);
        int apply = !diverged || o->on_divergence == NS_DIV_CONTINUE;
        if (apply)
            update(t, lr, scale, &du2, &w2);
        double row[] = {(double)s, loss, lr, gn, w2 > 0 ? sqrt(du2 / w2) : 0, scale < 1};
        for (int i = 0; i < 6 && !st; i++)
            st = ns_h5_append(log, step_series[i], &row[i]);
        if (st)
            break;
        /* a spike: the loss far above its trailing window */
        if (W > 1 && isfinite(loss)) {
            if (t->nwindow == W) {
                double mean = 0, ss = 0;
                for (int i = 0; i < W; i++)
                    mean += t->window[i] / W;
                for (int i = 0; i < W; i++)
                    ss += (t->window[i] - mean) * (t->window[i] - mean);
                double sd = sqrt(ss / (W - 1)), z = sd > 0 ? (loss - mean) / sd : 0;
                if (z > o->spike_z && (st = event(log, s, NS_EVENT_LOSS_SPIKE, z)))
                    break;
                memmove(t->window, t->window + 1, (size_t)(W - 1) * sizeof *t->window);
                t->window[W - 1] = loss;
            } else {
                t->window[t->nwindow++] = loss;
            }
        }
        t->step = s;
        r->steps_done = s;
        r->last_loss = loss;
        if (diverged && o->on_divergence == NS_DIV_STOP) {
            r->status = NS_RUN_DIVERGED;
            break;
        }
        if ((o->probe_every > 0 && s % o->probe_every == 0) || s == o->steps)
            if ((st = probe(t, log, &r->last_eval)))
                break;
        if (o->checkpoint_every > 0 && s % o->checkpoint_every == 0 &&
            (st = save(t, log, ckpt_path, signature)))
            break;
        if (tick && tick(tick_ctx, s - first + 1, o->steps - first + 1)) {
            r->status = NS_RUN_INTERRUPTED;
            break;
        }
    }
    double seconds = ns_now() - t0;
    r->tokens_per_s = seconds > 0 ? (double)(t->step - first + 1) * c->ntok / seconds : 0;
    if (st)
        return st;
    if (r->status == NS_RUN_RUNNING)
        r->status = NS_RUN_COMPLETE;
    if (r->status == NS_RUN_INTERRUPTED && (st = save(t, log, ckpt_path, signature)))
        return st;
    if ((st = ns_h5_set(log, "/train/status", 0, r->status)))
        return st;
    return ns_h5_flush(log);
}
