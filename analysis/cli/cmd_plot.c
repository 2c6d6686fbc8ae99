/* cmd_plot.c: `normscope plot`, the command-line edge of the plots library (plots/plots.h):
 * options in, one line per image out, one line and an exit status on failure. */
#define _GNU_SOURCE
#include "cli.h"
#include "options.h"
#include "normscope.h"
#include "plots.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *out;
    int format;
} opts;

#define F(field) offsetof(opts, field)
static const ns_opt_spec plot_specs[] = {
    {"out", K_TEXT, F(out), NULL, NULL, NS_ONE, "DIR",
     "output directory (created if missing); each figure is written there as NAME.dat (its "
     "numbers), NAME.gp (a gnuplot script: cd DIR && gnuplot NAME.gp re-renders it) and one "
     "image per format", NULL, NULL},
    {"format", K_CHOICE, F(format), ns_plot_format_names, "png", NS_SET, "LIST",
     "image formats, comma-separated: png (1280x800, for slides), pdf, svg", NULL, NULL},
};

static void wrote(void *ctx, const char *path)
{
    (void)ctx;
    printf("wrote %s\n", path);
    fflush(stdout); /* one line as each image lands, also when piped */
}

int ns_cmd_plot(int argc, char **argv)
{
    static const ns_command cmd = {
        .name = "normscope plot",
        .args_doc = "FILE.h5 [FILE.h5 ...]",
        .doc = "Draw the figures that normscope files allow (act_ms, grad_ms, cos_tokens, "
               "eff_rank, cos_layer against layer with 95% bands over seeds and theory where the "
               "file has it; attention entropy per layer and per head), overlaying the files, one "
               "curve per file or, for a sweep file, per point. Exit 2 for a bad input (nothing is "
               "written), 1 if gnuplot (apt-get install gnuplot-nox) is missing or fails.",
        .own = plot_specs,
        .nown = (int)(sizeof plot_specs / sizeof plot_specs[0])};
    static ns_opt_given g;
    opts o = {0};
    int status = NS_EXIT_USAGE;
    if (ns_opt_parse(&g, &cmd, argc, argv) != 0)
        goto done;
    ns_opt_point_at(&g, 0, &o);
    if (g.nargs == 0) {
        ns_cli_error("no input files (usage: normscope plot FILE.h5 [FILE.h5 ...] --out DIR "
                     "[--format png,pdf,svg])");
        goto done;
    }
    if (!o.out) {
        ns_cli_error("--out DIR is required");
        goto done;
    }
    unsigned mask = 0;
    int i = ns_opt_find(&g, "format");
    for (int k = 0; k < (g.n[i] ? g.n[i] : 1); k++)
        for (int f = 0; ns_plot_format_names[f]; f++)
            if (strcmp(g.n[i] ? g.values[i][k] : g.specs[i].dflt, ns_plot_format_names[f]) == 0)
                mask |= 1u << f;
    ns_cli_install_signals();
    char msg[1024];
    ns_plot_request rq = {.files = (const char **)g.args, .nfiles = g.nargs, .dir = o.out,
                          .formats = mask, .wrote = wrote, .ctx = NULL,
                          .stop = ns_cli_interrupted};
    int st = ns_plot_run(&rq, msg, sizeof msg);
    if (st == NS_OK)
        status = NS_EXIT_OK;
    else
        ns_cli_error("%s", msg);
    if (st != NS_OK && st != NS_ERR_INVALID)
        status = NS_EXIT_RUNTIME;
done:
    ns_opt_free(&g);
    return status;
}
