/* ops_act.c: elementwise activations phi and their derivatives. */
#include "internal.h"

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_C 0.044715

/* GELU's tanh form 0.5 x (1 + tanh(u)), u = k (x + c x^3), equals x sigmoid(2u): one exp instead
 * of a tanh, which costs several times more in libm. With s = sigmoid(2u), tanh(u) = 2s - 1 and
 * 1 - tanh(u)^2 = 4 s (1 - s), so the derivative is s + 2 x s (1 - s) du/dx. */
static inline ns_real gelu_sigmoid(ns_real x)
{
    ns_real u = (ns_real)GELU_K * (x + (ns_real)GELU_C * x * x * x);
    /* past u = 40 the sigmoid is 1 to double precision, and exp(-2u) would only reach the slow
     * subnormal range */
    return u > 40 ? 1 : 1 / (1 + ns_exp(-2 * u));
}

void ns_act_forward(ns_real *out, const ns_real *inp, size_t n, ns_act_kind kind)
{
    switch (kind) {
    case NS_ACT_GELU:
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            out[i] = inp[i] * gelu_sigmoid(inp[i]);
        }
        break;
    case NS_ACT_RELU:
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
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

/* dinp += phi'(inp) * dout */
void ns_act_backward(ns_real *dinp, const ns_real *dout, const ns_real *inp, size_t n,
                     ns_act_kind kind)
{
    switch (kind) {
    case NS_ACT_GELU:
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            ns_real x = inp[i], s = gelu_sigmoid(x);
            ns_real du = (ns_real)GELU_K * (1 + (ns_real)(3 * GELU_C) * x * x);
            dinp[i] += (s + 2 * x * s * (1 - s) * du) * dout[i];
        }
        break;
    case NS_ACT_RELU:
#pragma omp parallel for schedule(static) if (n >= NS_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dinp[i] += inp[i] > 0 ? dout[i] : 0;
        break;
    case NS_ACT_LINEAR:
        for (size_t i = 0; i < n; i++)
            dinp[i] += dout[i];
        break;
    }
}
