/* internal.h: what the core's sources share and the public header does not promise. */
#ifndef NS_INTERNAL_H
#define NS_INTERNAL_H

#include "normscope.h"
#include <cblas.h>
#include <math.h>

/* one GEMM name for both precisions: the shipped float library and the double test library */
#ifdef NS_REAL_DOUBLE
#define ns_gemm cblas_dgemm
#define ns_exp exp
#else
#define ns_gemm cblas_sgemm
#define ns_exp expf
#endif

#define NS_NONE ((size_t)-1) /* an absent buffer or parameter slot */

/* Below this many elements of work a loop runs serially: opening a parallel region costs a
 * barrier, and when other processes hold the cores, libgomp's spin-waiting at that barrier can
 * cost far more than the loop (small runs were 10x slower in parallel on a loaded machine). */
#define NS_PAR_MIN 32768

#endif
