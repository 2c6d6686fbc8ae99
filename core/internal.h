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

#endif
