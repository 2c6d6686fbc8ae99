/* ops_attention.c: causal multi-head scaled dot-product attention, the core of the attention
 * branch (the projections W_Q, W_K, W_V, W_O are ns_linear ops around it, in model.c).
 *
 * Shapes: q, k, v, cat are [nseq * T, d] row-major, head h in columns h*dh .. (h+1)*dh - 1
 * (dh = d / H); probs is [nseq, H, T, T]. For each (sequence, head) pair the scores, the
 * softmax and the weighted sum are whole-matrix GEMMs on strided views (lda = d), never
 * per-token loops; the pairs are independent, so OpenMP shares them out and results do not
 * depend on the thread count. Masked entries (key after query) get probability exactly 0. */
#include "internal.h"
#include "simd.h"

#ifdef NS_REAL_DOUBLE
/* row[j] = e^(row[j] - max) for j < n; returns their sum */
static double exp_shifted(ns_real *row, int n, ns_real max)
{
    double sum = 0;
    for (int j = 0; j < n; j++) {
        row[j] = exp(row[j] - max);
        sum += row[j];
    }
    return sum;
}

static ns_real row_max(const ns_real *row, int n)
{
    ns_real max = row[0];
    for (int j = 1; j < n; j++)
        max = row[j] > max ? row[j] : max;
    return max;
}
#else
/* The float library's softmax vectorizes (expf is a call per element, and the running max and
 * sum are chains): e^z by ns_exp_vec, 0 below z = -87 (e^z is then below float's normal range
 * and far below the row's largest term, 1), a NaN kept, selected with bit masks as in GELU. */
static inline float exp_nonpositive(float z)
{
    float e = ns_exp_vec(z);
    uint32_t keep = ~-(uint32_t)(z < -87.0f), nan = -(uint32_t)(z != z), ebits, zbits;
    memcpy(&ebits, &e, sizeof ebits);
    memcpy(&zbits, &z, sizeof zbits);
    ebits = (ebits & keep & ~nan) | (zbits & nan);
    memcpy(&e, &ebits, sizeof e);
    return e;
}

NS_CLONES static double exp_shifted(float *row, int n, float max)
{
    double acc[NS_LANES] = {0};
    int j = 0;
    for (; j + NS_LANES <= n; j += NS_LANES)
        for (int l = 0; l < NS_LANES; l++) {
            row[j + l] = exp_nonpositive(row[j + l] - max);
            acc[l] += row[j + l];
        }
    for (; j < n; j++) {
        row[j] = exp_nonpositive(row[j] - max);
        acc[j % NS_LANES] += row[j];
    }
    return ns_lanes_total(acc);
}

/* the max is the same numbers for any grouping, so it runs in lanes too */
NS_CLONES static float row_max(const float *row, int n)
{
    float lane[NS_LANES];
    int j = 0;
    for (int l = 0; l < NS_LANES; l++)
        lane[l] = row[0];
    for (; j + NS_LANES <= n; j += NS_LANES)
        for (int l = 0; l < NS_LANES; l++)
            lane[l] = row[j + l] > lane[l] ? row[j + l] : lane[l];
    for (; j < n; j++)
        lane[0] = row[j] > lane[0] ? row[j] : lane[0];
    float max = lane[0];
    for (int l = 1; l < NS_LANES; l++)
        max = lane[l] > max ? lane[l] : max;
    return max;
}
#endif

/* row-wise causal softmax of s[T,T] in place: entries j > i become 0 */
static void causal_softmax(ns_real *s, int T)
{
    for (int i = 0; i < T; i++) {
        ns_real *row = s + (size_t)i * T;
        ns_real max = row_max(row, i + 1);
        double sum = exp_shifted(row, i + 1, max); /* stable: the largest exponent is 0 */
        ns_real inv = (ns_real)(1.0 / sum);
        for (int j = 0; j <= i; j++)
            row[j] *= inv;
        for (int j = i + 1; j < T; j++)
            row[j] = 0;
    }
}

void ns_attention_forward(ns_real *cat, ns_real *probs, const ns_real *q, const ns_real *k,
                          const ns_real *v, int nseq, int T, int d, int H)
{
    int dh = d / H;
    ns_real scale = (ns_real)(1.0 / sqrt((double)dh));
#pragma omp parallel for schedule(static) if ((size_t)nseq * T * T * d >= NS_PAR_MIN)
    for (int bh = 0; bh < nseq * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t off = (size_t)b * T * d + (size_t)h * dh;
        ns_real *p = probs + (size_t)bh * T * T;
        /* scores = scale Q K^T */
        ns_matmul(0, 1, T, T, dh, scale, q + off, d, k + off, d, 0, p, T);
        causal_softmax(p, T);
        /* out = P V */
        ns_matmul(0, 0, T, dh, T, 1, p, T, v + off, d, 0, cat + off, d);
    }
}

/* Writes dq, dk, dv (each element belongs to one (sequence, head) pair). dprobs is scratch of
 * the size of probs. With dS the gradient of the scores: dP = dO V^T; dV = P^T dO;
 * dS = P * (dP - rowsum(P * dP)); dQ = scale dS K; dK = scale dS^T Q. Masked entries have P = 0
 * and so dS = 0. */
void ns_attention_backward(ns_real *dq, ns_real *dk, ns_real *dv, ns_real *dprobs,
                           const ns_real *dcat, const ns_real *probs, const ns_real *q,
                           const ns_real *k, const ns_real *v, int nseq, int T, int d, int H)
{
    int dh = d / H;
    ns_real scale = (ns_real)(1.0 / sqrt((double)dh));
#pragma omp parallel for schedule(static) if ((size_t)nseq * T * T * d >= NS_PAR_MIN)
    for (int bh = 0; bh < nseq * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t off = (size_t)b * T * d + (size_t)h * dh;
        const ns_real *p = probs + (size_t)bh * T * T;
        ns_real *ds = dprobs + (size_t)bh * T * T;
        ns_matmul(0, 1, T, T, dh, 1, dcat + off, d, v + off, d, 0, ds, T);
        ns_matmul(1, 0, T, dh, T, 1, p, T, dcat + off, d, 0, dv + off, d);
        for (int i = 0; i < T; i++) {
            const ns_real *pr = p + (size_t)i * T;
            ns_real *dr = ds + (size_t)i * T;
            double dot = 0;
            for (int j = 0; j <= i; j++)
                dot += (double)pr[j] * dr[j];
            for (int j = 0; j < T; j++)
                dr[j] = j <= i ? pr[j] * (dr[j] - (ns_real)dot) : 0;
        }
        ns_matmul(0, 0, T, dh, T, scale, ds, T, k + off, d, 0, dq + off, d);
        ns_matmul(1, 0, T, dh, T, scale, ds, T, q + off, d, 0, dk + off, d);
    }
}
