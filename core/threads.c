/* threads.c: the thread count. The BLAS itself always runs single-threaded: our OpenMP threads
 * share out fixed blocks of every GEMM (ops_linear.c), which keeps results bit-identical across
 * thread counts; OpenBLAS's own threading does not. */
#include "internal.h"
#include <stdio.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS's own controls (declared in its cblas.h, repeated here so the netlib header works) */
void openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);
char *openblas_get_corename(void);

void ns_set_threads(int n)
{
    openblas_set_num_threads(1);
#ifdef _OPENMP
    if (n >= 1)
        omp_set_num_threads(n);
#endif
}

const char *ns_blas_info(void)
{
    static char info[256];
    snprintf(info, sizeof info, "%s (kernels: %s)", openblas_get_config(), openblas_get_corename());
    return info;
}
