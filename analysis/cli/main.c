/* main.c: the normscope program: subcommand dispatch. */
#define _GNU_SOURCE
#include "cli.h"
#include "normscope.h"
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name, *summary;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"propagate", "forward and backward through a deep stack at init; per-layer metrics to HDF5",
     ns_cmd_propagate},
    {"train", "train a deep stack as a language model with per-layer tracking and checkpoints",
     ns_cmd_train},
    {"verify", "the mean-field theory against simulation over a battery of cases", ns_cmd_verify},
    {"plot", "figures (PNG/PDF/SVG, with their data and gnuplot scripts) from normscope files",
     ns_cmd_plot},
    {"bench", "time the standard workloads against the machine's sgemm; peak memory",
     ns_cmd_bench},
    {"placements", "list the normalization placements (--placement NAME) and their equations",
     ns_cmd_placements},
};
#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: normscope COMMAND [OPTIONS]   (normscope COMMAND --help for its options)\n"
               "commands:\n");
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  --version  print the version and the BLAS kernels in use\n");
}

int main(int argc, char **argv)
{
    ns_cli_choose_kernels(argv);
    if (argc < 2) {
        usage(stderr);
        return NS_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("normscope %s\nBLAS: %s\nkernels: %s\n", ns_version(), ns_blas_info(),
               ns_cli_kernels_note());
        return NS_EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return NS_EXIT_OK;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc, argv);
    ns_cli_error("unknown command '%s' (run 'normscope --help' for the list)", argv[1]);
    return NS_EXIT_USAGE;
}
