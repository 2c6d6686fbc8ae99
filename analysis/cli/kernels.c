/* kernels.c: the fastest BLAS kernels the CPU supports, chosen safely.
 *
 * Debian's OpenBLAS is built for every x86 core (DYNAMIC_ARCH) and picks its kernels once, when
 * it loads, from the CPU it recognises; on some AVX-512 CPUs it settles for its AVX2 (Haswell or
 * Zen) kernels, which run sgemm about half as fast. The only way to choose is the environment
 * variable OPENBLAS_CORETYPE, read at load time: so, before anything else, if the user has not
 * set it, the CPU has the AVX-512 subsets OpenBLAS's SkylakeX kernels use (F, BW, DQ, VL), and
 * the kernels loaded are not AVX-512 ones, the program re-executes itself once with
 * OPENBLAS_CORETYPE=SkylakeX. A CPU without them (AMD Zen, for example) keeps what OpenBLAS
 * chose; the kernels in use are reported by --version and by bench. */
#define _GNU_SOURCE
#include "cli.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

char *openblas_get_corename(void);

#define MARK "NORMSCOPE_KERNELS_CHOSEN" /* set on the re-execution: never loop */

static int cpu_has_avx512(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

static int avx512_kernels(const char *core)
{
    static const char *const names[] = {"skylakex", "cooperlake", "sapphirerapids"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (core && strcasecmp(core, names[i]) == 0)
            return 1;
    return 0;
}

/* Under a memory limit (ulimit -v) the threads OpenBLAS starts when it loads, one per core,
 * each map a buffer at once and, when the limit leaves no room, retry for ever at full speed
 * (even `normscope --help` then never ends). The program never uses them (the BLAS runs
 * single-threaded inside our OpenMP blocks, core/threads.c; bench starts them when it needs
 * them), so under a limit OpenBLAS is loaded with OPENBLAS_NUM_THREADS=1 and starts none. */
static int address_space_limited(void)
{
    struct rlimit rl;
    return getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY;
}

void ns_cli_choose_kernels(char **argv)
{
    int core = !getenv("OPENBLAS_CORETYPE") && !getenv(MARK) && cpu_has_avx512() &&
               !avx512_kernels(openblas_get_corename());
    int one_thread = !getenv("OPENBLAS_NUM_THREADS") && address_space_limited();
    if (!core && !one_thread)
        return;
    if (core && (setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) != 0 || setenv(MARK, "1", 1) != 0))
        return;
    if (one_thread && setenv("OPENBLAS_NUM_THREADS", "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* could not re-execute: carry on with what is loaded */
    if (core) {
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv(MARK);
    }
}

const char *ns_cli_kernels_note(void)
{
    const char *core = openblas_get_corename();
    if (getenv(MARK))
        return "AVX-512 kernels chosen by normscope (OPENBLAS_CORETYPE=SkylakeX)";
    if (getenv("OPENBLAS_CORETYPE"))
        return "as OPENBLAS_CORETYPE in the environment asks";
    if (avx512_kernels(core))
        return "AVX-512 kernels, chosen by OpenBLAS";
    return cpu_has_avx512() ? "AVX-512 CPU, but the re-execution to use its kernels failed"
                            : "the best this CPU supports: it has no AVX-512";
}
