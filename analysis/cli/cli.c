/* cli.c: the shared edge of the normscope program. */
#define _GNU_SOURCE
#include "cli.h"
#include "progress.h"
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
