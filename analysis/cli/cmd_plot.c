/* cmd_plot.c: `normscope plot`, the command-line edge of the plots library (plots/plots.h):
 * options in, one line per image out, one line and an exit status on failure. */
#define _GNU_SOURCE
#include "cli.h"
#include "normscope.h"
#include "plots.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char **files; /* room for argc entries */
    int nfiles;
    const char *out;
    unsigned formats;
} opts;

enum { OPT_OUT = 1000, OPT_FORMAT };

static const struct argp_option options[] = {
    {"out", OPT_OUT, "DIR", 0,
     "output directory (created if missing); each figure is written there as NAME.dat (its "
     "numbers), NAME.gp (a gnuplot script: cd DIR && gnuplot NAME.gp re-renders it) and one "
     "image per format", 0},
    {"format", OPT_FORMAT, "LIST", 0,
     "image formats, comma-separated: png (1280x800, for slides), pdf, svg (default png)", 0},
    {0}};

static error_t parse(int key, char *arg, struct argp_state *st)
{
    opts *o = st->input;
    char msg[256];
    switch (key) {
    case OPT_OUT: o->out = arg; break;
    case OPT_FORMAT:
        if (ns_plot_parse_formats(arg, &o->formats, msg, sizeof msg) != NS_OK)
            argp_failure(st, NS_EXIT_USAGE, 0, "%s", msg);
        break;
    case ARGP_KEY_ARG: o->files[o->nfiles++] = arg; break;
    case ARGP_KEY_END:
        /* argp_failure, not argp_error: one line, without the "Try --help" hint */
        if (o->nfiles == 0)
            argp_failure(st, NS_EXIT_USAGE, 0, "no input files (usage: normscope plot FILE.h5 "
                         "[FILE.h5 ...] --out DIR [--format png,pdf,svg])");
        else if (!o->out)
            argp_failure(st, NS_EXIT_USAGE, 0, "--out DIR is required");
        break;
    default: return ARGP_ERR_UNKNOWN;
    }
    return 0;
}

static void wrote(void *ctx, const char *path)
{
    (void)ctx;
    printf("wrote %s\n", path);
    fflush(stdout); /* one line as each image lands, also when piped */
}

int ns_cmd_plot(int argc, char **argv)
{
    opts o = {.files = calloc((size_t)argc, sizeof(char *)), .formats = NS_PLOT_PNG};
    if (!o.files) {
        ns_cli_error("out of memory");
        return NS_EXIT_RUNTIME;
    }
    static const struct argp argp = {
        options, parse, "FILE.h5 [FILE.h5 ...]",
        "Draw the figures that normscope files allow (act_ms, grad_ms, cos_tokens, eff_rank, "
        "cos_layer against layer with 95% bands over seeds and theory where the file has it; "
        "attention entropy per layer and per head), overlaying the files, one curve per file "
        "or, for a sweep file, per point. Exit 2 for a bad input (nothing is written), 1 if "
        "gnuplot (apt-get install gnuplot-nox) is missing or fails.",
        NULL, NULL, NULL};
    argv[1] = "normscope plot"; /* the name argp puts in front of its messages */
    argp_err_exit_status = NS_EXIT_USAGE;
    if (argp_parse(&argp, argc - 1, argv + 1, 0, NULL, &o) != 0) {
        free(o.files);
        return NS_EXIT_USAGE;
    }
    ns_cli_install_signals();
    char msg[1024];
    ns_plot_request rq = {.files = o.files, .nfiles = o.nfiles, .dir = o.out,
                          .formats = o.formats, .wrote = wrote, .ctx = NULL,
                          .stop = ns_cli_interrupted};
    int st = ns_plot_run(&rq, msg, sizeof msg);
    free(o.files);
    if (st == NS_OK)
        return NS_EXIT_OK;
    ns_cli_error("%s", msg);
    return st == NS_ERR_INVALID ? NS_EXIT_USAGE : NS_EXIT_RUNTIME;
}
