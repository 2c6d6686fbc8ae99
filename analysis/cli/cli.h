/* cli.h: what every subcommand of the normscope program shares: exit statuses, the recorded
 * command line, Ctrl-C, one-line errors (options: options.h). */
#ifndef NS_CLI_H
#define NS_CLI_H
#include <argp.h>

enum { NS_EXIT_OK = 0, NS_EXIT_RUNTIME = 1, NS_EXIT_USAGE = 2 };

/* "normscope propagate --depth 8 ..." with shell quoting where needed; static storage */
const char *ns_cli_command_line(int argc, char **argv);

/* SIGINT/SIGTERM set a flag that long loops poll, and a run still going half a second later
 * ends at once (cli.c: "normscope: interrupted", temporaries removed, status 1); SIGXFSZ is
 * ignored so that a file-size limit shows up as a failed write that we report */
void ns_cli_install_signals(void);
/* what follows "normscope: interrupted" when a run ends at once (static storage; default "";
 * NULL: no line at all, for an MPI worker whose rank 0 reports) */
void ns_cli_set_interrupt_note(const char *note);
/* the note "; no output written to OUT" */
void ns_cli_note_no_output(const char *out);
int ns_cli_interrupted(void);
/* an ns_tick_fn over an ns_progress bar (ctx): draws it (total 0: nothing to draw) and returns
 * ns_cli_interrupted(), so that a signal stops the run */
int ns_cli_tick(void *bar, long done, long total);

/* Before anything else in main: on a CPU with AVX-512 whose OpenBLAS loaded AVX2 kernels,
 * re-executes the program with OPENBLAS_CORETYPE=SkylakeX (kernels.c); returns otherwise */
void ns_cli_choose_kernels(char **argv);
/* why the kernels in use are these, for --version and bench */
const char *ns_cli_kernels_note(void);

/* Before allocating: 0 if a run that needs `bytes` fits in the memory this process may use
 * with `threads` threads (the smallest of RLIMIT_AS, the cgroup's memory.max and the physical
 * memory, less an allowance for the libraries, thread stacks and BLAS buffers), else -1 and
 * one line in err naming the estimate and the limit */
int ns_cli_memory_fits(double bytes, int threads, char *err, size_t errlen);
/* maps the OpenBLAS buffers that `buffers` threads calling the BLAS at once will take, before
 * any work: under a memory limit too tight for them the run ends with one line and status 1
 * (OpenBLAS itself would retry the mapping for ever) */
void ns_cli_blas_reserve(int buffers);

/* "normscope: <message>" on stderr */
void ns_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* s as a JSON string on stdout, quotes and control characters escaped (--json outputs) */
void ns_cli_json_string(const char *s);

int ns_cmd_propagate(int argc, char **argv);
int ns_cmd_verify(int argc, char **argv);
int ns_cmd_plot(int argc, char **argv);
int ns_cmd_train(int argc, char **argv);
int ns_cmd_bench(int argc, char **argv);
int ns_cmd_placements(int argc, char **argv);

#endif
