/* files.h: paths that a hostile directory cannot turn against the user.
 *
 * Outputs are written under a temporary name beside them and renamed at the end. The temporary
 * is created exclusively, so a symbolic link, a FIFO or any file planted at its name is never
 * opened: a name that is taken is skipped for the next one. A file that another library or
 * program opens by name (HDF5's own writer, gnuplot) goes into a private directory (mode 0700,
 * made by mkdir, which never follows a link) beside the output instead. An output or input that
 * exists and is not a regular file (a device, a FIFO, a socket, a directory) is refused before
 * any work. Status codes and one-line messages; nothing here prints or exits. */
#ifndef NS_FILES_H
#define NS_FILES_H
#include <stddef.h>

/* NS_OK if path can be an output: absent, or a regular file (a link to one counts, and is
 * replaced, not followed, when the output is renamed into place). NS_ERR_INVALID for an empty
 * path or one that names a directory, a device, a FIFO or a socket, with a message. */
int ns_file_check_output(const char *path, char *msg, size_t msglen);

/* NS_OK if path is an existing regular file (following links); NS_ERR_IO if it cannot be
 * looked up (missing: "cannot read WHAT PATH: No such file ..."), NS_ERR_INVALID if it is
 * something else. what names it in the message ("--data", "the checkpoint"; NULL: nothing). */
int ns_file_check_input(const char *what, const char *path, char *msg, size_t msglen);

/* opens path for reading without blocking on a FIFO, and keeps it only if it is a regular file:
 * the descriptor (blocking, close-on-exec), or -1 with the status in *status and a message */
int ns_file_open_input(const char *what, const char *path, int *status, char *msg,
                       size_t msglen);

/* 1 if a and b both exist and are the same file (device and inode), else 0 */
int ns_file_same(const char *a, const char *b);

/* a new, empty temporary for target: TARGET.partial-PID, or TARGET.partial-PID.N if that name
 * is taken, created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0666 less the umask. Its name in
 * *tmp (malloc'd) and an open descriptor (write-only, close-on-exec) in *fd. */
int ns_file_temp(const char *target, char **tmp, int *fd, char *msg, size_t msglen);

/* a new private directory for target, named like ns_file_temp's files, mode 0700: *dir
 * (malloc'd). Remove it with rmdir once its file is renamed out. */
int ns_file_temp_dir(const char *target, char **dir, char *msg, size_t msglen);

/* renames tmp onto target, only if target is absent or a regular file (NS_ERR_INVALID if it
 * became something else meanwhile; NS_ERR_IO if rename fails) */
int ns_file_commit(const char *tmp, const char *target, char *msg, size_t msglen);

/* writes all n bytes to fd, fsyncs and closes it: 0 or an errno (fd is closed either way) */
int ns_file_write_close(int fd, const void *data, size_t n);

/* ---- ending at once on a signal ----------------------------------------------------------
 * Every temporary made above is remembered (and a file another library creates inside a private
 * directory can be added with ns_file_track), so that a signal handler can remove them all with
 * ns_file_remove_temporaries (async-signal-safe: unlink and rmdir only) before _exit. Input
 * files are read between ns_file_reading(1) and ns_file_reading(0): a damaged file can keep the
 * HDF5 library busy in a call that never returns, and a signal there ends the process at once
 * (analysis/cli/cli.c). */
void ns_file_track(const char *name, int dir);
void ns_file_remove_temporaries(void);
/* removes a temporary (rmdir if dir, else unlink) and forgets it */
void ns_file_discard(const char *name, int dir);
void ns_file_reading(int on);
int ns_file_is_reading(void);
/* ns_file_reading, and a watchdog: while the n files are read the real-time timer is armed for
 * what reading their bytes could take on a slow disk (5 s + 20 MB/s), so that a damaged file
 * that keeps HDF5 looping ends the process with a clear line (SIGALRM, analysis/cli/cli.c)
 * instead of a hang; off disarms it */
void ns_file_reading_paths(int on, const char *const *paths, int n);

/* ---- reading a hostile file first in a child process --------------------------------------
 * libhdf5 1.10 aborts on some crafted metadata (a free() of a bad pointer while it closes the
 * file), and under a sanitizer it stops at an absurd allocation that a release build survives
 * (malloc returns NULL), both before any check of ours sees a value. ns_file_probe runs
 * read(ctx) in a child process that writes nothing (its output goes to /dev/null) and dies with
 * its parent. NS_OK if the child finished, whatever read found (the caller's own read says it
 * again), and also if no child could be made (the caller reads as without a probe);
 * NS_ERR_INTERRUPTED if SIGINT or SIGTERM ended it; NS_ERR_IO otherwise, with how the child
 * ended in how ("signal 6", "exit status 1"). Call it while ns_file_reading_paths is on: the
 * watchdog is the parent's (timers are not inherited), and ending the parent ends the child. */
int ns_file_probe(void (*read)(void *ctx), void *ctx, char *how, size_t howlen);

#endif
