/* files.c: safe temporaries, output and input checks (files.h). */
#define _POSIX_C_SOURCE 200809L
#include "files.h"
#include "normscope.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ATTEMPTS 100 /* names tried before a temporary is given up */

/* ---- this process's temporaries, for a signal handler to remove --------------------------- */
/* The one piece of global state here: a signal that must end the process at once (files.h)
 * cannot reach the handles that own the temporaries. A slot is free (state FREE) or holds a
 * name (state FILE or DIR); a name is copied into a free slot before its state is published,
 * and the handler reads only published slots. A temporary renamed into place or removed gives
 * its slot back (ns_file_discard, ns_file_commit), so a plot's many figures never run out. */
#define MAX_TRACKED 64
#define MAX_NAME 4352 /* a PATH_MAX path and its .partial-PID.N suffix */
enum { FREE, FILE_SLOT, DIR_SLOT };
static char tracked[MAX_TRACKED][MAX_NAME];
static volatile sig_atomic_t tracked_state[MAX_TRACKED];
static volatile sig_atomic_t reading;

void ns_file_track(const char *name, int dir)
{
    size_t n = strlen(name);
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked_state[i] != FREE && strcmp(tracked[i], name) == 0)
            return;
    for (int i = 0; i < MAX_TRACKED && n < MAX_NAME; i++)
        if (tracked_state[i] == FREE) {
            memcpy(tracked[i], name, n + 1);
            __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the name before its state */
            tracked_state[i] = dir ? DIR_SLOT : FILE_SLOT;
            return;
        }
    /* all taken (more than MAX_TRACKED temporaries at once): still removed normally */
}

static void untrack(const char *name)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked_state[i] != FREE && strcmp(tracked[i], name) == 0)
            tracked_state[i] = FREE;
}

void ns_file_discard(const char *name, int dir)
{
    (void)(dir ? rmdir(name) : unlink(name));
    untrack(name);
}

void ns_file_remove_temporaries(void)
{
    /* files first (a log lies in a tracked directory), then directories; async-signal-safe */
    for (int pass = FILE_SLOT; pass <= DIR_SLOT; pass++)
        for (int i = MAX_TRACKED - 1; i >= 0; i--)
            if (tracked_state[i] == pass)
                (void)(pass == DIR_SLOT ? rmdir(tracked[i]) : unlink(tracked[i]));
}

void ns_file_reading(int on) { reading = reading + (on ? 1 : -1); }

/* A read of a healthy file takes a fraction of this: a fixed allowance for opening and the
 * metadata, and 20 MB/s (a slow disk) for the bytes. */
#define READ_ALLOWANCE 5.0
#define READ_BYTES_PER_S 20e6

void ns_file_reading_paths(int on, const char *const *paths, int n)
{
    struct itimerval t = {0};
    if (on) {
        double bytes = 0;
        struct stat st;
        for (int i = 0; i < n; i++)
            if (paths[i] && stat(paths[i], &st) == 0 && S_ISREG(st.st_mode))
                bytes += (double)st.st_size;
        double s = READ_ALLOWANCE + bytes / READ_BYTES_PER_S;
        t.it_value.tv_sec = s > 1e6 ? 1000000 : (time_t)s;
    }
    ns_file_reading(on);
    setitimer(ITIMER_REAL, &t, NULL); /* 0 disarms: a pending grace timer only ends reads */
}
int ns_file_is_reading(void) { return reading > 0; }

int ns_file_probe(void (*read)(void *ctx), void *ctx, char *how, size_t howlen)
{
    const pid_t parent = getpid();
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0)
        return NS_OK;
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(0);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO), dup2(devnull, STDERR_FILENO);
        read(ctx);
        _exit(0); /* no atexit handlers: the parent's files and temporaries are the parent's */
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return NS_OK;
    if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGTERM))
        return NS_ERR_INTERRUPTED;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return NS_OK;
    snprintf(how, howlen, "%s %d", WIFSIGNALED(status) ? "signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return NS_ERR_IO;
}

/* what a non-regular file is, for messages */
static const char *kind_of(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

int ns_file_check_output(const char *path, char *msg, size_t msglen)
{
    struct stat st;
    if (!path[0]) {
        snprintf(msg, msglen, "the output path is empty");
        return NS_ERR_INVALID;
    }
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(msg, msglen, "output path %s is %s, not a regular file", path,
                 kind_of(st.st_mode));
        return NS_ERR_INVALID;
    }
    return NS_OK; /* absent (or unreachable: creating the temporary says why) */
}

int ns_file_check_input(const char *what, const char *path, char *msg, size_t msglen)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(msg, msglen, "cannot read %s%s%s: %s", what ? what : "", what ? " " : "", path,
                 strerror(errno));
        return NS_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(msg, msglen, "%s%s%s is %s, not a regular file", what ? what : "",
                 what ? " " : "", path, kind_of(st.st_mode));
        return NS_ERR_INVALID;
    }
    return NS_OK;
}

int ns_file_open_input(const char *what, const char *path, int *status, char *msg,
                       size_t msglen)
{
    /* O_NONBLOCK: opening a FIFO does not wait for a writer; fstat then refuses it */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), flags;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (flags = fcntl(fd, F_GETFL)) < 0 ||
        (S_ISREG(st.st_mode) && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)) {
        snprintf(msg, msglen, "cannot read %s %s: %s", what, path, strerror(errno));
        *status = NS_ERR_IO;
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(msg, msglen, "%s %s is %s, not a regular file", what, path,
                 kind_of(st.st_mode));
        *status = NS_ERR_INVALID;
    } else {
        *status = NS_OK;
        return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

int ns_file_same(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* TARGET.partial-PID, then TARGET.partial-PID.N; NULL when out of memory */
static char *temp_name(const char *target, int attempt)
{
    size_t n = strlen(target) + 48;
    char *name = malloc(n);
    if (name && attempt == 0)
        snprintf(name, n, "%s.partial-%ld", target, (long)getpid());
    else if (name)
        snprintf(name, n, "%s.partial-%ld.%d", target, (long)getpid(), attempt);
    return name;
}

/* makes a new temporary (a file, or a directory when dir) under the first free name */
static int make_temp(const char *target, int dir, char **tmp, int *fd, char *msg, size_t msglen)
{
    *tmp = NULL;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        char *name = temp_name(target, attempt);
        if (!name) {
            snprintf(msg, msglen, "out of memory");
            return NS_ERR_NOMEM;
        }
        int ok = dir ? mkdir(name, 0700) == 0
                     : (*fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                   0666)) >= 0;
        if (ok) {
            *tmp = name;
            ns_file_track(name, dir);
            return NS_OK;
        }
        int err = errno;
        free(name);
        if (err != EEXIST) {
            snprintf(msg, msglen, "cannot create output file %s: %s", target, strerror(err));
            return NS_ERR_IO;
        }
    }
    snprintf(msg, msglen, "cannot create output file %s: %d temporary names beside it are taken",
             target, MAX_ATTEMPTS);
    return NS_ERR_IO;
}

int ns_file_temp(const char *target, char **tmp, int *fd, char *msg, size_t msglen)
{
    return make_temp(target, 0, tmp, fd, msg, msglen);
}

int ns_file_temp_dir(const char *target, char **dir, char *msg, size_t msglen)
{
    int unused;
    return make_temp(target, 1, dir, &unused, msg, msglen);
}

int ns_file_commit(const char *tmp, const char *target, char *msg, size_t msglen)
{
    struct stat st;
    if (stat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(msg, msglen, "output path %s is %s, not a regular file", target,
                 kind_of(st.st_mode));
        return NS_ERR_INVALID;
    }
    if (rename(tmp, target) != 0) {
        snprintf(msg, msglen, "cannot move %s to %s: %s", tmp, target, strerror(errno));
        return NS_ERR_IO;
    }
    untrack(tmp);
    return NS_OK;
}

int ns_file_write_close(int fd, const void *data, size_t n)
{
    const unsigned char *p = data;
    int err = 0;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = w < 0 ? errno : EIO;
            break;
        }
        p += w, n -= (size_t)w;
    }
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    return err;
}
