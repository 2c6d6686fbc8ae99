/* cli.c: the shared edge of the normscope program. */
#define _GNU_SOURCE
#include "cli.h"
#include "progress.h"
#include "files.h"
#include <sys/time.h>
#include <unistd.h>
#include <signal.h>
#include <sys/resource.h>
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

/* The first SIGINT or SIGTERM sets a flag that the long loops poll (a run then ends as it
 * documents: a checkpoint, a progress file, no partial output). Two cases cannot wait for a
 * poll: a signal while an input file is being read (files.h: a damaged file may keep HDF5 in a
 * call that never returns), and a second signal; a third path is a timer armed by the first
 * signal that fires after NS_CLI_GRACE seconds if the process is still reading an input then.
 * Each removes this process's temporaries and _exits with status 1 (NS_EXIT_RUNTIME). */
#define NS_CLI_GRACE 1

static volatile sig_atomic_t interrupted;

static void end_now(const char *line, size_t n)
{
    ns_file_remove_temporaries();
    (void)!write(2, line, n);
    _exit(NS_EXIT_RUNTIME);
}

#define END_NOW(text) end_now(text, sizeof text - 1)

/* the grace timer after a signal, or the watchdog of a read (files.h) */
static void on_alarm(int sig)
{
    (void)sig;
    if (ns_file_is_reading() && interrupted)
        END_NOW("normscope: interrupted\n");
    if (ns_file_is_reading())
        END_NOW("normscope: an input file takes far longer to read than its size allows "
                "(a damaged HDF5 file?); stopped\n");
}

/* A damaged file can also crash the HDF5 library itself (a corrupt global heap makes H5HG_read
 * copy past its buffers). Inside a read of an input that ends the run with one line; anywhere
 * else the fault is ours and takes its default course (a core, a sanitizer's report). */
static void on_fault(int sig)
{
    if (ns_file_is_reading())
        END_NOW("normscope: the HDF5 library failed on a damaged input file; stopped\n");
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_signal(int sig)
{
    (void)sig;
    if (interrupted || ns_file_is_reading())
        END_NOW("normscope: interrupted\n");
    interrupted = 1;
    struct itimerval grace = {.it_value = {.tv_sec = NS_CLI_GRACE}};
    setitimer(ITIMER_REAL, &grace, NULL);
}

void ns_cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    sa.sa_handler = on_fault;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    signal(SIGXFSZ, SIG_IGN);
}

int ns_cli_interrupted(void) { return interrupted; }

/* what the OpenBLAS buffers, HDF5, the metrics' scratch and the program itself take besides the
 * model: a generous allowance, so that a run this check passes is not stopped by the kernel */
#define NS_CLI_MEMORY_ALLOWANCE (128.0 * 1024 * 1024)

int ns_cli_memory_fits(double bytes, char *err, size_t errlen)
{
    double limit = 0;
    const char *from = "";
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0)
        limit = (double)pages * page, from = "physical memory";
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (limit == 0 || (double)rl.rlim_cur < limit))
        limit = (double)rl.rlim_cur, from = "ulimit -v";
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r"); /* cgroup v2; "max" when unlimited */
    double cg;
    if (f && fscanf(f, "%lf", &cg) == 1 && cg > 0 && (limit == 0 || cg < limit))
        limit = cg, from = "the cgroup's memory.max";
    if (f)
        fclose(f);
    if (limit == 0 || bytes + NS_CLI_MEMORY_ALLOWANCE <= limit)
        return 0;
    snprintf(err, errlen, "this run needs about %.1f GiB of memory for its model, more than the "
             "%.1f GiB it may use (%s); make it narrower, shorter or with fewer tokens",
             (bytes + NS_CLI_MEMORY_ALLOWANCE) / 1073741824.0, limit / 1073741824.0, from);
    return -1;
}

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
