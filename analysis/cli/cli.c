/* cli.c: strict parsing and the shared edge of the normscope program. */
#define _GNU_SOURCE
#include "cli.h"
#include "progress.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ns_cli_positive_int(struct argp_state *st, const char *opt, const char *arg)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < 1 || v > INT_MAX)
        argp_failure(st, NS_EXIT_USAGE, 0, "%s must be a positive integer, got '%s'", opt, arg);
    return (int)v;
}

uint64_t ns_cli_seed(struct argp_state *st, const char *opt, const char *arg)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    /* stored as a signed 64-bit HDF5 attribute */
    if (errno || end == arg || *end || arg[0] == '-' || v > (unsigned long long)INT64_MAX)
        argp_failure(st, NS_EXIT_USAGE, 0, "%s must be an integer from 0 to 2^63-1, got '%s'",
                     opt, arg);
    return (uint64_t)v;
}

double ns_cli_positive_double(struct argp_state *st, const char *opt, const char *arg)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || !(v > 0))
        argp_failure(st, NS_EXIT_USAGE, 0, "%s must be a positive number, got '%s'", opt, arg);
    return v;
}

int ns_cli_choice(struct argp_state *st, const char *opt, const char *arg,
                  const char *const *choices)
{
    char list[256] = "";
    for (int i = 0; choices[i]; i++) {
        if (strcmp(arg, choices[i]) == 0)
            return i;
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 choices[i]);
    }
    argp_failure(st, NS_EXIT_USAGE, 0, "unknown %s '%s' (choose from %s)", opt, arg, list);
    return -1;
}

const char *ns_cli_command_line(int argc, char **argv)
{
    static char line[4096];
    size_t n = 0;
    line[0] = 0;
    for (int i = 0; i < argc && n < sizeof line - 1; i++) {
        int quote = argv[i][strcspn(argv[i], " \t'\"$\\")] != 0 || !argv[i][0];
        n += snprintf(line + n, sizeof line - n, quote ? "%s'%s'" : "%s%s", i ? " " : "", argv[i]);
    }
    return line;
}

static volatile sig_atomic_t interrupted;
static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

void ns_cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}

int ns_cli_interrupted(void) { return interrupted; }

int ns_cli_tick(void *bar, long done, long total)
{
    if (total > 0)
        ns_progress_update(bar, done, total);
    return interrupted;
}

void ns_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("normscope: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
