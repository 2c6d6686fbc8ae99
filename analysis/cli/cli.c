/* cli.c: the shared edge of the normscope program. */
#define _GNU_SOURCE
#include "cli.h"
#include "progress.h"
#include "files.h"
#include <sys/time.h>
#include <time.h>
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

/* The first SIGINT or SIGTERM sets a flag that the long loops poll, so that a run ends as it
 * documents (a checkpoint, a progress file, no partial output) when it can do so promptly. It
 * cannot always: one matrix product of a wide block, or a long held-out evaluation, takes many
 * seconds between two polls, and polling inside them would mean splitting the numerics. So the
 * first signal also arms a grace timer: a run still going NS_CLI_GRACE_MS later ends at once,
 * from the handler, as it does on a second signal or a signal while an input file is read (a
 * damaged file can keep HDF5 in a call that never returns, files.h). Ending at once removes
 * this process's temporaries and _exits with status 1 (NS_EXIT_RUNTIME): what is left on disk
 * is what kill -9 leaves, which every command recovers from (a training log resumes from its
 * last checkpoint, a sweep from its progress file; e2e_kill_resume, e2e_sweep_resume). The
 * grace timer is a POSIX timer of its own, so the read watchdog's ITIMER_REAL (files.h) can
 * neither delay nor disarm it. */
#define NS_CLI_GRACE_MS 500

static volatile sig_atomic_t interrupted;
static volatile sig_atomic_t said; /* the run's one line is out: ending at once adds none */
static volatile sig_atomic_t reserving; /* ns_cli_blas_reserve is under way */
static timer_t grace_timer;
static int have_grace_timer;
static const char *interrupt_note = "";

static void end_now(const char *line, size_t n)
{
    ns_file_remove_temporaries();
    (void)!write(2, line, n);
    _exit(NS_EXIT_RUNTIME);
}

#define END_NOW(text) end_now(text, sizeof text - 1)

static void end_interrupted(void)
{
    static const char head[] = "normscope: interrupted";
    ns_file_remove_temporaries();
    if (!said && interrupt_note) {
        (void)!write(2, head, sizeof head - 1);
        (void)!write(2, interrupt_note, strlen(interrupt_note));
        (void)!write(2, "\n", 1);
    }
    _exit(NS_EXIT_RUNTIME);
}

/* the grace timer after a signal, or the watchdog of a read (files.h) */
static void on_alarm(int sig)
{
    (void)sig;
    if (interrupted)
        end_interrupted();
    if (reserving)
        END_NOW("normscope: OpenBLAS cannot map its buffers within this process's memory limit "
                "(ulimit -v); stopped\n");
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
        end_interrupted();
    interrupted = 1;
    struct itimerspec grace = {.it_value = {.tv_sec = NS_CLI_GRACE_MS / 1000,
                                            .tv_nsec = NS_CLI_GRACE_MS % 1000 * 1000000L}};
    if (!have_grace_timer || timer_settime(grace_timer, 0, &grace, NULL) != 0)
        end_interrupted(); /* no timer to bound the wait: end now rather than maybe never */
}

void ns_cli_install_signals(void)
{
    static int installed;
    if (installed++)
        return;
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGALRM;
    have_grace_timer = timer_create(CLOCK_MONOTONIC, &ev, &grace_timer) == 0;
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

void ns_cli_set_interrupt_note(const char *note) { interrupt_note = note; }

void ns_cli_note_no_output(const char *out)
{
    static char note[4200];
    snprintf(note, sizeof note, "; no output written to %s", out);
    interrupt_note = note;
}

int ns_cli_interrupted(void) { return interrupted; }

/* What the program takes besides the model, in address space (which is what ulimit -v limits):
 * the libraries' code and heaps, and per thread its stack and the OpenBLAS buffer it maps when
 * it first multiplies matrices that are not tiny (128 MiB of address space each in Debian's
 * OpenBLAS 0.3.21: VmSize grows by 131072 kB per buffer). */
#define NS_CLI_MEMORY_BASE (64.0 * 1024 * 1024)
#define NS_CLI_MEMORY_PER_THREAD (136.0 * 1024 * 1024)

int ns_cli_memory_fits(double bytes, int threads, char *err, size_t errlen)
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
    double need =
        bytes + NS_CLI_MEMORY_BASE + NS_CLI_MEMORY_PER_THREAD * (threads > 1 ? threads : 1);
    if (limit == 0 || need <= limit)
        return 0;
    snprintf(err, errlen, "this run needs about %.1f GiB of memory (%d thread%s), more than the "
             "%.1f GiB it may use (%s); make it narrower, shorter, with fewer tokens or threads",
             need / 1073741824.0, threads, threads == 1 ? "" : "s", limit / 1073741824.0, from);
    return -1;
}

/* OpenBLAS's own buffer pool (exported by libopenblas, not declared in its cblas.h) */
void *blas_memory_alloc(int procpos);
void blas_memory_free(void *buffer);

/* OpenBLAS maps a buffer the first time a thread calls it, and when the mapping fails it retries
 * for ever, at full speed and deaf to the stop flag. So the buffers every thread will use are
 * mapped here, up front, under a timer: a limit too tight for them ends the run with one line
 * instead of a spin. Freed buffers stay mapped in OpenBLAS's pool, for the threads to take. */
#define NS_CLI_RESERVE_SECONDS 3
#define NS_CLI_MAX_RESERVE 256

void ns_cli_blas_reserve(int buffers)
{
    void *held[NS_CLI_MAX_RESERVE];
    int n = buffers < NS_CLI_MAX_RESERVE ? buffers : NS_CLI_MAX_RESERVE;
    struct itimerval t = {.it_value = {.tv_sec = NS_CLI_RESERVE_SECONDS}}, off = {0};
    ns_cli_install_signals();
    reserving = 1;
    setitimer(ITIMER_REAL, &t, NULL);
    for (int i = 0; i < n; i++)
        held[i] = blas_memory_alloc(0);
    for (int i = 0; i < n; i++)
        blas_memory_free(held[i]);
    setitimer(ITIMER_REAL, &off, NULL);
    reserving = 0;
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
    fflush(stderr);
    said = 1;
    va_end(ap);
}

void ns_cli_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++)
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    putchar('"');
}
