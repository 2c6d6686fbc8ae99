/* cmd_train.c: `normscope train`, training a deep stack as a language model with per-layer
 * tracking (train.h). The metrics file grows on disk and can be read while it is written
 * (SWMR); checkpoints go to FILE.ckpt; --resume continues bit-identically. */
#define _GNU_SOURCE
#include "cli.h"
#include "files.h"
#include "options.h"
#include "progress.h"
#include "train.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const yes_no[] = {"no", "yes", NULL};
static const char *const divergence[] = {"stop", "skip", "continue", NULL}; /* NS_DIV_* order */

typedef struct {
    ns_model_opts model; /* first: the model table's offsets fit */
    int steps, warmup, vocab, tied, markov_order, branching, probe_every, eval_batches,
        checkpoint_every, on_divergence, spike_window, threads, resume;
    double lr, min_lr, weight_decay, clip, beta1, beta2, adam_eps, markov_eps, spike_z, aux_coef,
        zloss_coef, heldout;
    long long seed;
    const char *data, *out;
} record;
_Static_assert(sizeof(record) <= NS_OPT_MAX_RECORD, "the option record outgrew the scratch");

#define F(field) offsetof(record, field)
static const ns_opt_spec train_specs[] = {
    {"steps", K_INT, F(steps), NULL, "200", 0, "N", "optimizer steps", NULL, NULL},
    {"lr", K_DOUBLE, F(lr), NULL, "3e-3", 0, "LR", "peak learning rate", NULL, NULL},
    {"min-lr", K_NONNEG, F(min_lr), NULL, "3e-4", 0, "LR", "learning rate at the end of the cosine",
     NULL, NULL},
    {"warmup", K_INT, F(warmup), NULL, "20", 0, "N", "linear warmup steps", NULL, NULL},
    {"weight-decay", K_NONNEG, F(weight_decay), NULL, "0.1", 0, "WD",
     "decoupled weight decay, on weight matrices only (not norms, not embeddings)", NULL, NULL},
    {"clip", K_NONNEG, F(clip), NULL, "1", 0, "C", "global gradient-norm clipping (0: none)",
     NULL, NULL},
    {"beta1", K_DOUBLE, F(beta1), NULL, "0.9", 0, "B1", "AdamW beta1", NULL, NULL},
    {"beta2", K_DOUBLE, F(beta2), NULL, "0.95", 0, "B2", "AdamW beta2", NULL, NULL},
    {"adam-eps", K_DOUBLE, F(adam_eps), NULL, "1e-8", 0, "EPS", "AdamW epsilon", NULL, NULL},
    {"aux-coef", K_NONNEG, F(aux_coef), NULL, "0.01", 0, "C",
     "coefficient of the Switch load-balancing loss of moe blocks (trained, not in `loss`)",
     NULL, NULL},
    {"zloss-coef", K_NONNEG, F(zloss_coef), NULL, "0", 0, "C",
     "coefficient of the router z-loss of moe blocks", NULL, NULL},
    {"vocab", K_INT, F(vocab), NULL, "32", 0, "V",
     "vocabulary (the Markov language's symbols; at least 256 for byte data)", NULL, NULL},
    {"tied", K_CHOICE, F(tied), yes_no, "no", 0, "yes|no", "tie the LM head to the embedding",
     NULL, NULL},
    {"data", K_TEXT, F(data), NULL, NULL, 0, "PATHS",
     "train on the bytes of a comma list of files and directories (a directory: its regular "
     "text files, by name; default: the built-in Markov language)", NULL, NULL},
    {"heldout", K_DOUBLE, F(heldout), NULL, "0.1", 0, "F",
     "fraction of --data held out, as whole chunks spread over it", NULL, NULL},
    {"markov-order", K_INT, F(markov_order), NULL, "2", 0, "K", "order of the Markov language",
     NULL, NULL},
    {"branching", K_INT, F(branching), NULL, "4", 0, "B", "next symbols allowed per context",
     NULL, NULL},
    {"markov-eps", K_NONNEG, F(markov_eps), NULL, "0.05", 0, "E",
     "weight of the uniform distribution mixed into every context (makes the chain ergodic)",
     NULL, NULL},
    {"probe-every", K_INT, F(probe_every), NULL, "50", 0, "N",
     "held-out loss and per-layer metrics every N steps (and at the last step)", NULL, NULL},
    {"eval-batches", K_INT, F(eval_batches), NULL, "4", 0, "N", "held-out batches per evaluation",
     NULL, NULL},
    {"checkpoint-every", K_INT, F(checkpoint_every), NULL, "100", 0, "N",
     "checkpoint every N steps (also on Ctrl-C)", NULL, NULL},
    {"on-divergence", K_CHOICE, F(on_divergence), divergence, "stop", 0, "WHAT",
     "after a NaN/Inf loss or gradient: stop (exit 3), skip the update, or continue", NULL, NULL},
    {"spike-window", K_INT, F(spike_window), NULL, "50", 0, "N", "trailing window of the spike detector",
     NULL, NULL},
    {"spike-z", K_DOUBLE, F(spike_z), NULL, "6", 0, "Z", "z-score above which a loss is a spike",
     NULL, NULL},
    {"seed", K_SEED, F(seed), NULL, "0", 0, "N", "seed of weights, data and batches", NULL, NULL},
    {"threads", K_THREADS, F(threads), NULL, NULL, 0, "N", "OpenMP threads (default: all cores)",
     NULL, NULL},
    {"resume", K_FLAG, F(resume), NULL, NULL, 0, NULL,
     "continue from FILE.ckpt (the configuration must match)", NULL, NULL},
    {"out", K_TEXT, F(out), NULL, "train.h5", 0, "FILE", "metrics file (HDF5, readable while written)",
     NULL, NULL},
};

/* "name=value;" for every option that shapes the run: a resume must match it exactly */
static void signature(const ns_opt_given *g, const record *r, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < g->nspecs; i++) {
        const ns_opt_spec *s = &g->specs[i];
        if (!strcmp(s->option, "threads") || !strcmp(s->option, "out") ||
            !strcmp(s->option, "resume"))
            continue;
        char v[256];
        ns_opt_value_text(s, r, v, sizeof v);
        len += (size_t)snprintf(out + len, len < n ? n - len : 0, "%s=%s;", s->option, v);
    }
}

int ns_cmd_train(int argc, char **argv)
{
    /* a language model needs token mixing: MLP blocks alone would learn unigram statistics */
    static const char *const defaults[] = {"block=transformer", NULL};
    static const ns_command cmd = {
        .name = "normscope train",
        .doc = "Train a deep stack as a language model and record per-layer metrics, "
               "instabilities and checkpoints.",
        .model = 1,
        .own = train_specs,
        .nown = (int)(sizeof train_specs / sizeof train_specs[0]),
        .defaults = defaults};
    const char *command_line = ns_cli_command_line(argc, argv);
    static ns_opt_given g; /* large: not on the stack */
    int status = NS_EXIT_USAGE, write_failed = 0;
    ns_h5 *log = NULL;
    ns_trainer *t = NULL;
    char err[512], sig[4096], ckpt[4096];
    if (ns_opt_parse(&g, &cmd, argc, argv) != 0)
        goto done;
    record r = {0};
    ns_opt_point_at(&g, 0, &r);
    ns_config c;
    const char *si;
    size_t per_block, per_stream, fixed;
    if (ns_model_opts_resolve(&r.model, &c, &si, err, sizeof err) != 0) {
        ns_cli_error("%s", err);
        goto done;
    }
    /* every block resident, and AdamW's two moments beside its parameters and gradients (the
     * per-block bytes count parameters, gradients and caches: twice them bounds the moments) */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = r.threads ? r.threads : (ncpu > 0 ? (int)ncpu : 1);
    if (ns_model_bytes(&c, &per_block, &per_stream, &fixed) == NS_OK &&
        ns_cli_memory_fits(3.0 * c.depth * per_block + (c.depth + 1.0) * per_stream + fixed,
                           threads, err, sizeof err) != 0) {
        ns_cli_error("%s", err);
        goto done;
    }
    c.aux_coef = r.aux_coef, c.zloss_coef = r.zloss_coef;
    if (!(r.beta1 < 1) || !(r.beta2 < 1)) {
        ns_cli_error("--beta1 and --beta2 must be below 1, got %g and %g", r.beta1, r.beta2);
        goto done;
    }
    if (!r.data && g.n[ns_opt_find(&g, "heldout")]) {
        ns_cli_error("--heldout holds out part of a --data corpus; the Markov language has no "
                     "corpus (give --data PATHS)");
        goto done;
    }
    if (r.warmup > r.steps) {
        ns_cli_error("--warmup %d is longer than --steps %d", r.warmup, r.steps);
        goto done;
    }
    /* the outputs (the log and its checkpoint) are none of the inputs, and can be outputs */
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", r.out);
    if (ns_file_check_output(ckpt, err, sizeof err) != NS_OK) {
        ns_cli_error("%s", err);
        goto done;
    }
    if (ns_file_same(r.out, ckpt)) {
        ns_cli_error("--out %s and its checkpoint %s are the same file", r.out, ckpt);
        goto done;
    }
    ns_data *data = NULL;
    int dst;
    if (r.data) {
        if ((dst = ns_data_corpus(&data, r.data, r.heldout, r.vocab, r.model.seq, err,
                                  sizeof err)) != NS_OK) {
            ns_cli_error("%s", err);
            status = dst == NS_ERR_NOMEM ? NS_EXIT_RUNTIME : NS_EXIT_USAGE;
            goto done;
        }
        const ns_corpus *corpus = ns_data_corpus_of(data);
        for (int i = 0; i < corpus->nfiles * 2; i++)
            if (ns_file_same(corpus->files[i / 2], i % 2 ? ckpt : r.out)) {
                ns_cli_error("--data %s is the same file as %s: training would overwrite its "
                             "data", corpus->files[i / 2], i % 2 ? ckpt : r.out);
                ns_data_free(data);
                goto done;
            }
    } else if ((dst = ns_data_markov(&data, r.vocab, r.markov_order, r.branching, r.markov_eps,
                                     (uint64_t)r.seed)) != NS_OK) {
        if (dst == NS_ERR_NOMEM) {
            ns_cli_error("out of memory building the Markov language (--vocab %d, "
                         "--markov-order %d)", r.vocab, r.markov_order);
            status = NS_EXIT_RUNTIME;
        } else {
            ns_cli_error("--vocab %d, --markov-order %d, --branching %d: the Markov language "
                         "needs branching <= vocab and vocab^order <= 2^22 contexts", r.vocab,
                         r.markov_order, r.branching);
        }
        goto done;
    }
    ns_train_opts o = {.lm = {.blocks = c, .vocab = r.vocab, .tied = r.tied},
                       .steps = r.steps, .warmup = r.warmup, .lr = r.lr, .min_lr = r.min_lr,
                       .weight_decay = r.weight_decay, .clip = r.clip,
                       .adam = {.beta1 = r.beta1, .beta2 = r.beta2, .eps = r.adam_eps},
                       .seed = (uint64_t)r.seed, .probe_every = r.probe_every,
                       .eval_batches = r.eval_batches, .checkpoint_every = r.checkpoint_every,
                       .on_divergence = r.on_divergence, .spike_window = r.spike_window,
                       .spike_z = r.spike_z};
    ns_set_threads(threads);
    ns_cli_blas_reserve(threads);
    if (ns_trainer_create(&t, &o, data) != NS_OK) {
        ns_cli_error("cannot build the model (out of memory?)");
        status = NS_EXIT_RUNTIME;
        goto done;
    }
    ns_cli_install_signals(); /* before any file: Ctrl-C ends in a checkpoint when it can */
    ns_cli_set_interrupt_note("; --resume continues from the last checkpoint");
    signature(&g, &r, sig, sizeof sig);
    if (r.data) { /* the same --data text must also be the same bytes */
        size_t len = strlen(sig);
        snprintf(sig + len, sizeof sig - len, "corpus_fnv1a=%016" PRIx64 ";",
                 ns_corpus_digest(ns_data_corpus_of(data)));
    }
    if (r.resume && access(ckpt, F_OK) != 0 && errno == ENOENT &&
        ns_file_check_input(NULL, r.out, err, sizeof err) == NS_OK) {
        /* a log stopped (or killed) before its first checkpoint: nothing to continue from */
        ns_cli_error("cannot resume: there is no checkpoint %s (the run stopped before its "
                     "first); start it again without --resume", ckpt);
        goto done;
    }
    if (r.resume) {
        /* a signal in a damaged file's read ends at once, and so does a stuck read (files.h) */
        const char *inputs[] = {r.out, ckpt};
        ns_file_reading_paths(1, inputs, 2);
        int rst = NS_OK, i = 0;
        char how[64];
        while (rst == NS_OK && i < 2) /* each read in a child first (files.h) */
            rst = ns_file_probe(ns_h5_probe_read, (void *)inputs[i++], how, sizeof how);
        if (rst == NS_ERR_INTERRUPTED)
            ns_cli_error("interrupted; the log and checkpoint are as they were");
        else if (rst != NS_OK)
            ns_cli_error("cannot resume: the HDF5 library failed reading %s (%s): a corrupt "
                         "file", inputs[i - 1], how);
        else if ((rst = ns_h5_open_log(&log, r.out)) != NS_OK)
            ns_cli_error("cannot resume: %s", ns_h5_error(log));
        else if ((rst = ns_trainer_resume(t, ckpt, sig, log, err, sizeof err)) != NS_OK)
            ns_cli_error("%s", err);
        ns_file_reading_paths(0, NULL, 0);
        if (rst != NS_OK)
            goto done;
    } else {
        int st = ns_h5_create_log(&log, r.out);
        if (st) {
            ns_cli_error("%s", ns_h5_error(log));
            goto done;
        }
        if ((st = ns_h5_write_root_attrs(log, command_line)) ||
            (st = ns_opt_write_config(log, "/config", &g, &r, si)) ||
            (st = ns_model_write_derived(log, "", &c)) ||
            (st = ns_trainer_log_layout(t, log))) {
            ns_cli_error("%s", ns_h5_error(log));
            status = NS_EXIT_RUNTIME;
            goto done;
        }
    }
    if (ns_h5_start_swmr(log) != NS_OK) {
        ns_cli_error("%s", ns_h5_error(log));
        status = NS_EXIT_RUNTIME;
        write_failed = 1;
        goto done;
    }
    ns_progress bar;
    ns_progress_start(&bar, "train", "steps");
    ns_train_result res;
    double t0 = ns_now();
    int st = ns_trainer_run(t, log, ckpt, sig, ns_cli_tick, &bar, &res);
    ns_progress_finish(&bar);
    if (st) {
        ns_cli_error("train failed at step %ld: %s", res.steps_done + 1,
                     st == NS_ERR_IO ? (ns_trainer_error(t)[0] ? ns_trainer_error(t)
                                                               : ns_h5_error(log))
                                     : ns_strerror(st));
        status = NS_EXIT_RUNTIME;
        write_failed = st == NS_ERR_IO;
        goto done;
    }
    double floor = ns_data_loss_floor(data, c.seq);
    if (res.status == NS_RUN_INTERRUPTED) {
        ns_cli_error("interrupted after step %ld; checkpoint in %s, continue with --resume",
                     res.steps_done, ckpt);
        status = NS_EXIT_RUNTIME;
    } else if (res.status == NS_RUN_DIVERGED) {
        ns_cli_error("diverged at step %ld (NaN/Inf); %s is complete up to it", res.diverged_at,
                     r.out);
        status = 3;
    } else {
        printf("trained %s: %s %s L=%d d=%d, %d steps, loss %.4f, eval %.4f = %.4f bits/%s "
               "(floor %.4f), %.0f tokens/s, %.1f s\n", r.out, ns_opt_blocks[r.model.block],
               ns_opt_placement_text(&r.model.placement), c.depth, c.width, r.steps,
               res.last_loss, res.last_eval, res.last_eval / M_LN2, r.data ? "byte" : "token",
               floor, res.tokens_per_s, ns_now() - t0);
        status = NS_EXIT_OK;
    }
done:
    ns_trainer_free(t);
    ns_h5_free(log);
    ns_opt_free(&g);
    if (write_failed) {
        /* HDF5 cannot close a file whose writes failed (a full disk, a file-size limit): the
         * file stays open inside the library, and its exit handler then crashes on it
         * (H5F__close_cb). The log on disk is as kill -9 leaves it, which --resume handles. */
        fflush(NULL);
        _exit(status);
    }
    return status;
}
