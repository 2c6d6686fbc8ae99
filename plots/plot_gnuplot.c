/* plot_gnuplot.c: find gnuplot, run it with fork/exec, check how it ended. */
#define _POSIX_C_SOURCE 200809L
#include "plot_gnuplot.h"
#include "plot_buf.h"
#include "files.h"
#include "normscope.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int ns_gnuplot_find(char *path, size_t n, char *msg, size_t msglen)
{
    const char *p = getenv("PATH"); /* what execvp would search */
    if (!p || !*p)
        p = "/usr/local/bin:/usr/bin:/bin";
    for (;;) {
        size_t len = strcspn(p, ":");
        int w = snprintf(path, n, "%.*s/gnuplot", len ? (int)len : 1, len ? p : ".");
        struct stat st;
        if (w > 0 && (size_t)w < n && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            access(path, X_OK) == 0)
            return NS_OK;
        if (!p[len])
            break;
        p += len + 1;
    }
    snprintf(msg, msglen, "gnuplot not found on PATH (install it: apt-get install gnuplot-nox)");
    return NS_ERR_IO;
}

static int cloexec_pipe(int fd[2])
{
    if (pipe(fd) != 0)
        return -1;
    if (fcntl(fd[0], F_SETFD, FD_CLOEXEC) == 0 && fcntl(fd[1], F_SETFD, FD_CLOEXEC) == 0)
        return 0;
    close(fd[0]);
    close(fd[1]);
    return -1;
}

/* the last non-empty line of gnuplot's output: its error, where it stopped */
static void last_line(const char *text, char *out, size_t n)
{
    const char *best = NULL;
    size_t best_len = 0;
    for (const char *s = text; *s;) {
        size_t len = strcspn(s, "\n");
        size_t i = 0;
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '^'))
            i++;
        if (i < len)
            best = s + i, best_len = len - i;
        s += len + (s[len] == '\n');
    }
    snprintf(out, n, "%.*s", best ? (int)(best_len > 300 ? 300 : best_len) : 0, best ? best : "");
}

int ns_gnuplot_render(const char *gnuplot, const char *dir, const char *name, const char *fmt,
                      char *msg, size_t msglen)
{
    char script[4096], final_name[256], input[1024], output[8192] = "", why[320];
    char tmp_path[4096 + 256] = "", final_path[4096 + 256], *tmpdir = NULL;
    size_t got = 0;
    int in[2] = {-1, -1}, err[2] = {-1, -1}, status = NS_ERR_IO, wstatus = 0;
    if (ns_path_join(script, sizeof script, dir, name) != NS_OK)
        script[0] = 0;
    snprintf(final_name, sizeof final_name, "%s.%s", name, fmt);
    if (ns_path_join(final_path, sizeof final_path, dir, final_name) != NS_OK) {
        snprintf(msg, msglen, "output path too long in %s", dir);
        return NS_ERR_IO;
    }
    /* gnuplot opens its output by name: it writes into a private directory beside the image
     * (DIR/NAME.FMT.partial-PID/, mode 0700), where nobody can plant a link (analysis/files) */
    if ((status = ns_file_temp_dir(final_path, &tmpdir, msg, msglen)) != NS_OK)
        return status;
    status = NS_ERR_IO;
    const char *tmpbase = strrchr(tmpdir, '/') ? strrchr(tmpdir, '/') + 1 : tmpdir;
    if (ns_path_join(tmp_path, sizeof tmp_path, tmpdir, final_name) != NS_OK) {
        snprintf(msg, msglen, "output path too long in %s", dir);
        goto done;
    }
    ns_file_track(tmp_path, 0); /* removed with its directory if a signal ends the run at once */
    /* names are ours ([A-Za-z0-9_.-]), so they need no quoting inside gnuplot strings */
    int len = snprintf(input, sizeof input, "fmt = \"%s\"\nout = \"%s/%s\"\nload \"%s.gp\"\n",
                       fmt, tmpbase, final_name, name);
    /* the whole input goes into the pipe before gnuplot starts: it is far below PIPE_BUF, so the
     * write neither blocks nor can hit a closed pipe (SIGPIPE) if gnuplot dies early */
    if (len <= 0 || len >= PIPE_BUF || cloexec_pipe(in) != 0 || cloexec_pipe(err) != 0 ||
        write(in[1], input, (size_t)len) != len) {
        snprintf(msg, msglen, "cannot set up a pipe to gnuplot: %s", strerror(errno));
        goto done;
    }
    close(in[1]);
    in[1] = -1;
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        snprintf(msg, msglen, "cannot start gnuplot: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) { /* the child: only async-signal-safe calls until exec */
        /* gnuplot ends with us: a run ended at once by a signal (analysis/cli/cli.c) removes
         * the directory gnuplot writes into, and must not leave it drawing */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(126);
        /* we ignore SIGXFSZ, and an ignored signal stays ignored across exec: gnuplot would
         * then not notice that a file-size limit cut its image short, and exit 0 */
        signal(SIGXFSZ, SIG_DFL);
        if (chdir(dir) != 0)
            _exit(126);
        if (dup2(in[0], 0) < 0 || dup2(err[1], 1) < 0 || dup2(err[1], 2) < 0)
            _exit(126);
        execl(gnuplot, "gnuplot", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(err[1]);
    in[0] = err[1] = -1;
    /* gnuplot's messages, all of them read (so it never blocks on a full pipe), the first 8 KiB
     * kept */
    for (;;) {
        char chunk[1024];
        ssize_t r = read(err[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t keep = got + (size_t)r < sizeof output - 1 ? (size_t)r : sizeof output - 1 - got;
        memcpy(output + got, chunk, keep);
        got += keep;
    }
    output[got] = 0;
    while (waitpid(pid, &wstatus, 0) < 0) {
        if (errno != EINTR) {
            snprintf(msg, msglen, "cannot wait for gnuplot: %s", strerror(errno));
            goto done;
        }
    }
    if (WIFSIGNALED(wstatus)) {
        snprintf(msg, msglen, "gnuplot was killed by signal %d while rendering %s (%s)",
                 WTERMSIG(wstatus), script, fmt);
        goto done;
    }
    if (WEXITSTATUS(wstatus) == 126 || WEXITSTATUS(wstatus) == 127) {
        snprintf(msg, msglen, "cannot run %s in %s (exit %d)", gnuplot, dir,
                 WEXITSTATUS(wstatus));
        goto done;
    }
    if (WEXITSTATUS(wstatus) != 0) {
        last_line(output, why, sizeof why);
        snprintf(msg, msglen, "gnuplot failed on %s (%s): %s", script, fmt,
                 why[0] ? why : "no message");
        goto done;
    }
    struct stat st;
    if (lstat(tmp_path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        snprintf(msg, msglen, "gnuplot wrote no %s output for %s", fmt, script);
        goto done;
    }
    status = ns_file_commit(tmp_path, final_path, msg, msglen);
done:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    if (status != NS_OK && tmp_path[0]) /* never leave a half-written figure */
        ns_file_discard(tmp_path, 0);
    ns_file_discard(tmpdir, 1);
    free(tmpdir);
    return status;
}
