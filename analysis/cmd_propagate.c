/* cmd_propagate.c: `normscope propagate`, the propagate protocol written to one HDF5 file. */
#define _GNU_SOURCE
#include "cli.h"
#include "h5out.h"
#include "progress.h"
#include "propagate.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const blocks[] = {"mlp", "transformer", NULL};   /* ns_block_kind order */
static const char *const inputs[] = {"gaussian", "tokens", NULL};    /* ns_input_kind order */
static const char *const schemes[] = {"pre", "post", "span", NULL};
static const char *const span_variants[] = {"aggregate", "wrapped", NULL};
static const char *const acts[] = {"gelu", "relu", "linear", NULL};     /* ns_act_kind order */
static const char *const norms[] = {"layernorm", "rmsnorm", NULL};      /* ns_norm_kind order */

typedef struct {
    int block, scheme, span_variant, depth, width, seq, batch, act, norm, seeds, threads;
    int heads, input, vocab;
    double mlp_ratio, norm_eps;
    uint64_t seed;
    const char *scale_init; /* NULL: the placement's default */
    const char *out;
} opts;

enum { OPT_BLOCK = 1000, OPT_SCHEME, OPT_SPAN_VARIANT, OPT_DEPTH, OPT_WIDTH, OPT_SEQ, OPT_BATCH,
       OPT_MLP_RATIO, OPT_ACT, OPT_NORM, OPT_NORM_EPS, OPT_SCALE_INIT, OPT_SEEDS, OPT_SEED,
       OPT_THREADS, OPT_OUT, OPT_HEADS, OPT_INPUT, OPT_VOCAB };

static const struct argp_option options[] = {
    {"block", OPT_BLOCK, "KIND", 0,
     "block kind: mlp (one MLP sublayer) or transformer (causal attention, then MLP) "
     "(default mlp)", 0},
    {"heads", OPT_HEADS, "H", 0, "attention heads; the width must be divisible by H (default 4)",
     0},
    {"input", OPT_INPUT, "KIND", 0,
     "input x_0: gaussian (N(0,1) i.i.d.) or tokens (random ids through a random token "
     "embedding N(0,1) plus random positions N(0, 0.1^2)) (default gaussian)", 0},
    {"vocab", OPT_VOCAB, "V", 0, "vocabulary size for --input tokens (default 256)", 0},
    {"scheme", OPT_SCHEME, "NAME", 0, "placement: pre, post, span (default pre)", 0},
    {"span-variant", OPT_SPAN_VARIANT, "V", 0,
     "SpanNorm form: aggregate y = x + N(F(x)), or wrapped y = x + alpha N(x + F(x)) "
     "(default aggregate)", 0},
    {"depth", OPT_DEPTH, "L", 0, "number of blocks (default 32)", 0},
    {"width", OPT_WIDTH, "D", 0, "residual width d (default 256)", 0},
    {"seq", OPT_SEQ, "T", 0, "tokens per sequence (default 64)", 0},
    {"batch", OPT_BATCH, "B", 0, "sequences per seed (default 4)", 0},
    {"mlp-ratio", OPT_MLP_RATIO, "R", 0, "MLP hidden width = round(R d) (default 4)", 0},
    {"act", OPT_ACT, "PHI", 0, "activation: gelu (tanh form), relu, linear (default gelu)", 0},
    {"norm", OPT_NORM, "N", 0, "norm: layernorm, rmsnorm (default layernorm)", 0},
    {"norm-eps", OPT_NORM_EPS, "EPS", 0, "norm epsilon (default 1e-5)", 0},
    {"scale-init", OPT_SCALE_INIT, "S", 0,
     "Scale Init alpha: none (1), sqrtL (1/sqrt(L)), sqrt2L (1/sqrt(2L)) or a number; on W2 for "
     "pre/post, on the span norm's gain for span (default none for pre/post, sqrtL for span)", 0},
    {"seeds", OPT_SEEDS, "S", 0, "independent draws of weights, input and cotangent (default 4)",
     0},
    {"seed", OPT_SEED, "N", 0, "first seed; draw s uses seed N+s (default 0)", 0},
    {"threads", OPT_THREADS, "N", 0, "BLAS and OpenMP threads (default: all cores)", 0},
    {"out", OPT_OUT, "FILE", 0, "output HDF5 file (default propagate.h5)", 0},
    {0}};

static error_t parse(int key, char *arg, struct argp_state *st)
{
    opts *o = st->input;
    switch (key) {
    case OPT_BLOCK: o->block = ns_cli_choice(st, "--block", arg, blocks); break;
    case OPT_SCHEME: o->scheme = ns_cli_choice(st, "--scheme", arg, schemes); break;
    case OPT_SPAN_VARIANT:
        o->span_variant = ns_cli_choice(st, "--span-variant", arg, span_variants);
        break;
    case OPT_DEPTH: o->depth = ns_cli_positive_int(st, "--depth", arg); break;
    case OPT_WIDTH: o->width = ns_cli_positive_int(st, "--width", arg); break;
    case OPT_SEQ: o->seq = ns_cli_positive_int(st, "--seq", arg); break;
    case OPT_BATCH: o->batch = ns_cli_positive_int(st, "--batch", arg); break;
    case OPT_MLP_RATIO: o->mlp_ratio = ns_cli_positive_double(st, "--mlp-ratio", arg); break;
    case OPT_ACT: o->act = ns_cli_choice(st, "--act", arg, acts); break;
    case OPT_NORM: o->norm = ns_cli_choice(st, "--norm", arg, norms); break;
    case OPT_NORM_EPS: o->norm_eps = ns_cli_positive_double(st, "--norm-eps", arg); break;
    case OPT_SCALE_INIT: o->scale_init = arg; break;
    case OPT_SEEDS: o->seeds = ns_cli_positive_int(st, "--seeds", arg); break;
    case OPT_SEED: o->seed = ns_cli_seed(st, "--seed", arg); break;
    case OPT_THREADS: o->threads = ns_cli_positive_int(st, "--threads", arg); break;
    case OPT_OUT: o->out = arg; break;
    case OPT_HEADS: o->heads = ns_cli_positive_int(st, "--heads", arg); break;
    case OPT_INPUT: o->input = ns_cli_choice(st, "--input", arg, inputs); break;
    case OPT_VOCAB: o->vocab = ns_cli_positive_int(st, "--vocab", arg); break;
    case ARGP_KEY_ARG:
        argp_failure(st, NS_EXIT_USAGE, 0, "unexpected argument '%s'", arg);
        break;
    default: return ARGP_ERR_UNKNOWN;
    }
    return 0;
}

static int write_config(ns_h5 *h, const opts *o, const ns_config *c, const char *scale_init)
{
    int st;
    const char *g = "/config";
    if ((st = ns_h5_group(h, g)) || (st = ns_h5_attr_string(h, g, "block", blocks[o->block])) ||
        (st = ns_h5_attr_string(h, g, "scheme", schemes[o->scheme])) ||
        (st = ns_h5_attr_string(h, g, "span_variant", span_variants[o->span_variant])) ||
        (st = ns_h5_attr_string(h, g, "placement", c->placement->name)) ||
        (st = ns_h5_attr_string(h, g, "block_equation", c->placement->equation)) ||
        (st = ns_h5_attr_int(h, g, "heads", o->heads)) ||
        (st = ns_h5_attr_string(h, g, "input", inputs[o->input])) ||
        (st = ns_h5_attr_int(h, g, "vocab", o->vocab)) ||
        (st = ns_h5_attr_int(h, g, "depth", o->depth)) ||
        (st = ns_h5_attr_int(h, g, "width", o->width)) ||
        (st = ns_h5_attr_int(h, g, "seq", o->seq)) ||
        (st = ns_h5_attr_int(h, g, "batch", o->batch)) ||
        (st = ns_h5_attr_double(h, g, "mlp_ratio", o->mlp_ratio)) ||
        (st = ns_h5_attr_int(h, g, "hidden", c->hidden)) ||
        (st = ns_h5_attr_string(h, g, "act", acts[o->act])) ||
        (st = ns_h5_attr_string(h, g, "norm", norms[o->norm])) ||
        (st = ns_h5_attr_double(h, g, "norm_eps", o->norm_eps)) ||
        (st = ns_h5_attr_string(h, g, "scale_init", scale_init)) ||
        (st = ns_h5_attr_double(h, g, "alpha", c->alpha)) ||
        (st = ns_h5_attr_int(h, g, "seeds", o->seeds)) ||
        (st = ns_h5_attr_int(h, g, "seed", (long long)o->seed)) ||
        (st = ns_h5_attr_int(h, g, "threads", o->threads)) ||
        (st = ns_h5_attr_string(h, g, "out", o->out)))
        return st;
    return 0;
}

typedef struct {
    ns_progress bar;
} tick_ctx;

static int tick(void *ctx, long done, long total)
{
    ns_progress_update(&((tick_ctx *)ctx)->bar, done, total);
    return ns_cli_interrupted();
}

int ns_cmd_propagate(int argc, char **argv)
{
    opts o = {.block = 0, .scheme = 0, .span_variant = 0, .depth = 32, .width = 256, .seq = 64,
              .batch = 4, .act = 0, .norm = 0, .seeds = 4, .threads = 0, .mlp_ratio = 4.0,
              .norm_eps = 1e-5, .seed = 0, .scale_init = NULL, .out = "propagate.h5", .heads = 4,
              .input = 0, .vocab = 256};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = ncpu > 0 ? (int)ncpu : 1;
    const char *command_line = ns_cli_command_line(argc, argv);
    static const struct argp argp = {options, parse, NULL,
                                     "Run the propagate protocol at initialization and write "
                                     "per-layer metrics to an HDF5 file.", NULL, NULL, NULL};
    argv[1] = "normscope propagate"; /* the name argp puts in front of its messages */
    argp_err_exit_status = NS_EXIT_USAGE;
    if (argp_parse(&argp, argc - 1, argv + 1, 0, NULL, &o) != 0)
        return NS_EXIT_USAGE;

    const char *pname = schemes[o.scheme];
    if (o.scheme == 2 && o.span_variant == 1)
        pname = "span-wrapped";
    if (o.block == NS_BLOCK_TRANSFORMER && o.width % o.heads != 0) {
        ns_cli_error("--width %d is not divisible by --heads %d", o.width, o.heads);
        return NS_EXIT_USAGE;
    }
    ns_config c = {.block = (ns_block_kind)o.block, .placement = ns_placement_find(pname),
                   .depth = o.depth, .width = o.width, .ntok = 0, .seq = o.seq, .heads = o.heads,
                   .act = (ns_act_kind)o.act, .norm = (ns_norm_kind)o.norm,
                   .norm_eps = o.norm_eps};
    const char *scale_init = o.scale_init ? o.scale_init : c.placement->default_scale_init;
    if (ns_scale_init_parse(scale_init, o.depth, &c.alpha) != NS_OK) {
        ns_cli_error("--scale-init must be none, sqrtL, sqrt2L or a positive number, got '%s'",
                     scale_init);
        return NS_EXIT_USAGE;
    }
    double hidden = round(o.mlp_ratio * o.width);
    if (hidden < 1 || hidden > 1 << 28) {
        ns_cli_error("--mlp-ratio %g gives a hidden width of %.0f, outside 1..2^28", o.mlp_ratio,
                     hidden);
        return NS_EXIT_USAGE;
    }
    c.hidden = (int)hidden;
    if ((long long)o.seq * o.batch > 1 << 30) {
        ns_cli_error("--seq times --batch is %lld tokens, more than 2^30",
                     (long long)o.seq * o.batch);
        return NS_EXIT_USAGE;
    }
    c.ntok = o.seq * o.batch;

    ns_cli_install_signals();
    ns_set_threads(o.threads);
    ns_h5 *h = NULL;
    if (ns_h5_create(&h, o.out) != NS_OK) { /* before any work: a bad path costs nothing */
        ns_cli_error("%s", ns_h5_error(h));
        ns_h5_free(h);
        return NS_EXIT_USAGE;
    }
    tick_ctx tc;
    ns_progress_start(&tc.bar, "propagate", "blocks");
    double t0 = ns_now();
    ns_propagate_result r;
    ns_propagate_opts po = {.model = c, .seeds = o.seeds, .seed = o.seed,
                            .input = (ns_input_kind)o.input, .vocab = o.vocab};
    int st = ns_propagate(&po, &r, tick, &tc);
    ns_progress_finish(&tc.bar);
    if (st != NS_OK) {
        ns_h5_free(h);
        if (st == NS_ERR_INTERRUPTED)
            ns_cli_error("interrupted; no output written to %s", o.out);
        else
            ns_cli_error("propagate failed: %s", ns_strerror(st));
        return NS_EXIT_RUNTIME;
    }
    double seconds = ns_now() - t0;
    if ((st = ns_h5_write_root_attrs(h, command_line)) || (st = write_config(h, &o, &c, scale_init)) ||
        (st = ns_propagate_write(h, &r)) || (st = ns_h5_attr_double(h, "/", "wall_seconds", seconds))) {
        ns_cli_error("%s", ns_h5_error(h));
        ns_h5_free(h);
        ns_propagate_result_free(&r);
        return NS_EXIT_RUNTIME;
    }
    ns_propagate_result_free(&r);
    if (ns_h5_commit(h) != NS_OK) {
        ns_cli_error("%s", ns_h5_error(h));
        ns_h5_free(h);
        return NS_EXIT_RUNTIME;
    }
    ns_h5_free(h);
    printf("wrote %s: %s %s, L=%d d=%d T=%d B=%d, %d seed%s, %.2f s\n", o.out, blocks[o.block],
           c.placement->name, o.depth, o.width, o.seq, o.batch, o.seeds, o.seeds == 1 ? "" : "s", seconds);
    return NS_EXIT_OK;
}
