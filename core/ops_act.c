/* ops_act.c: elementwise activations phi and their derivatives. */
#include "simd.h"
#include "internal.h"
#include <stdint.h>
#include <string.h>

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_C 0.044715

/* GELU's tanh form 0.5 x (1 + tanh(u)), u = k (x + c x^3), equals x sigmoid(2u): one exp instead
 * of a tanh, which costs several times more in libm. With s = sigmoid(2u), tanh(u) = 2s - 1 and
 * 1 - tanh(u)^2 = 4 s (1 - s), so the derivative is s + 2 x s (1 - s) du/dx. */
#ifdef NS_REAL_DOUBLE
static inline ns_real gelu_sigmoid(ns_real x)
{
    ns_real u = GELU_K * (x + GELU_C * x * x * x);
    /* past u = 40 the sigmoid is 1 to double precision, and exp(-2u) would only reach the slow
     * subnormal range */
    return u > 40 ? 1 : 1 / (1 + exp(-2 * u));
}
#else
/* Below z = -87 the sigmoid is 1 in float; above z = 88, e^z overflows and it is 0; a NaN (a
 * diverged run) stays NaN. Those cases are picked with bit masks after computing s for every
 * z: GCC does not vectorize a loop with a branch, and under its default -ftrapping-math it turns
 * a select between computed floats back into one (it will not run float work unconditionally
 * that might trap). Masks need no -fno-trapping-math, as the softmax and the metrics do not. */
static inline float gelu_sigmoid(float x)
{
    float z = -2.0f * (float)GELU_K * (x + (float)GELU_C * x * x * x);
    float s = 1.0f / (1.0f + ns_exp_vec(z));
    uint32_t lo = -(uint32_t)(z < -87.0f), hi = -(uint32_t)(z > 88.0f), nan = -(uint32_t)(z != z);
    uint32_t sbits, zbits, one = 0x3f800000u;
    memcpy(&sbits, &s, sizeof sbits);
    memcpy(&zbits, &z, sizeof zbits);
    uint32_t out = (sbits & ~(lo | hi | nan)) | (one & lo) | (zbits & nan);
    memcpy(&s, &out, sizeof s);
    return s;
}
#endif

/* GELU's loops are cloned for AVX2 (simd.h: elementwise, so both clones give the same numbers) */
NS_CLONES static void gelu_forward_chunk(ns_real *out, const ns_real *inp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] * gelu_sigmoid(inp[i]);
}

static inline ns_real gelu_derivative(ns_real x)
{
    ns_real s = gelu_sigmoid(x), du = (ns_real)GELU_K * (1 + (ns_real)(3 * GELU_C) * x * x);
    return s + 2 * x * s * (1 - s) * du;
}

/* dinp = (accumulate ? dinp : 0) + phi'(inp) dout; the 0 + keeps the numbers (and the sign of
 * a zero) of adding into a cleared buffer, without clearing it first */
NS_CLONES static void gelu_backward_chunk(ns_real *dinp, const ns_real *dout, const ns_real *inp,
                                          size_t n, int accumulate)
{
    if (accumulate)
        for (size_t i = 0; i < n; i++)
            dinp[i] += gelu_derivative(inp[i]) * dout[i];
    else
        for (size_t i = 0; i < n; i++)
            dinp[i] = 0 + gelu_derivative(inp[i]) * dout[i];
}

/* serially over n values: the steps of a job (ops_linear.c) run inside a parallel region */
void ns_act_forward_serial(ns_real *out, const ns_real *inp, size_t n, ns_act_kind kind)
{
    switch (kind) {
    case NS_ACT_GELU:
        gelu_forward_chunk(out, inp, n);
        break;
    case NS_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            out[i] = inp[i] > 0 ? inp[i] : 0;
        break;
    case NS_ACT_LINEAR:
        if (out != inp)
            for (size_t i = 0; i < n; i++)
                out[i] = inp[i];
        break;
    }
}

void ns_act_backward_serial(ns_real *dinp, const ns_real *dout, const ns_real *inp, size_t n,
                            ns_act_kind kind, int accumulate)
{
    switch (kind) {
    case NS_ACT_GELU:
        gelu_backward_chunk(dinp, dout, inp, n, accumulate);
        break;
    case NS_ACT_RELU:
        for (size_t i = 0; i < n; i++)
            dinp[i] = (accumulate ? dinp[i] : 0) + (inp[i] > 0 ? dout[i] : 0);
        break;
    case NS_ACT_LINEAR:
        for (size_t i = 0; i < n; i++)
            dinp[i] = (accumulate ? dinp[i] : 0) + dout[i];
        break;
    }
}

/* Elementwise, so any cut gives the same numbers: chunks that the OpenMP threads share. */
#define ACT_CHUNK 8192

void ns_act_forward(ns_real *out, const ns_real *inp, size_t n, ns_act_kind kind)
{
    size_t nchunks = (n + ACT_CHUNK - 1) / ACT_CHUNK;
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i = c * ACT_CHUNK;
        ns_act_forward_serial(out + i, inp + i, n - i < ACT_CHUNK ? n - i : ACT_CHUNK, kind);
    }
}

/* dinp += phi'(inp) * dout */
void ns_act_backward(ns_real *dinp, const ns_real *dout, const ns_real *inp, size_t n,
                     ns_act_kind kind)
{
    size_t nchunks = (n + ACT_CHUNK - 1) / ACT_CHUNK;
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i = c * ACT_CHUNK;
        ns_act_backward_serial(dinp + i, dout + i, inp + i, n - i < ACT_CHUNK ? n - i : ACT_CHUNK,
                               kind, 1);
    }
}

double ns_act_unit_ms(ns_act_kind act)
{
    /* GELU's by composite Simpson on [-12, 12] with 2e5 panels in double (the tails beyond add
     * < 1e-30); tests/theory/test_theory_rows.c checks it against the theory's quadrature */
    return act == NS_ACT_GELU     ? 0.42519371103307
           : act == NS_ACT_RELU   ? 0.5
           : act == NS_ACT_LINEAR ? 1.0
                                  : NAN;
}
