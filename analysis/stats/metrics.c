/* Per-layer residual-stream metrics (see metrics.h).
 *
 * Determinism: every parallel loop writes one double per independent unit of work (a fixed-size
 * chunk, a token or a sequence) into a scratch array, and the array is then summed serially in
 * index order. The rounding of each result therefore depends only on the input shape, never on
 * the thread count or the schedule. Long sums run in lanes (simd.h). */
#include "metrics.h"
#include "simd.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>

#ifdef _OPENMP
#include <omp.h>
/* Pragmas go through a macro so a build without -fopenmp is still -Wall -Werror clean
 * (gcc warns on ignored omp pragmas) and simply runs serially, with the same results. */
#define NS_OMP(directive) _Pragma(#directive)
/* below this many elements a metric runs serially: a parallel region's barrier costs more, and
 * far more when other processes hold the cores (libgomp spin-waits there) */
#define NS_METRIC_PAR_MIN 32768
#else
#define NS_OMP(directive)
#endif

static int max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Sums the index-ordered partials serially; this is the only place results are combined. */
static double serial_sum(const double *partial, size_t n) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        total += partial[i];
    }
    return total;
}

/* ------------------------------------------------------------------------------------------ */
/* mean square */

/* mean_square has no row structure, so the sum is split into fixed-length chunks rather than
 * per-thread ranges: chunk boundaries depend only on n, hence so does the rounding. */
#define NS_MS_CHUNK ((size_t)1 << 14)

NS_CLONES static double sum_squares(const float *x, size_t n) {
    double acc[NS_LANES] = {0};
    size_t i = 0;
    for (; i + NS_LANES <= n; i += NS_LANES) {
        for (int j = 0; j < NS_LANES; j++) {
            double v = (double)x[i + j];
            acc[j] += v * v;
        }
    }
    for (; i < n; i++) {
        double v = (double)x[i];
        acc[i % NS_LANES] += v * v;
    }
    return ns_lanes_total(acc);
}

double ns_metric_mean_square(const float *x, size_t n) {
    if (x == NULL || n == 0) {
        return NAN;
    }
    size_t nchunks = (n + NS_MS_CHUNK - 1) / NS_MS_CHUNK;
    double *partial = malloc(nchunks * sizeof(double));
    if (partial == NULL) {
        return NAN;
    }
    NS_OMP(omp parallel for schedule(static) if (n >= NS_METRIC_PAR_MIN))
    for (size_t c = 0; c < nchunks; c++) {
        size_t start = c * NS_MS_CHUNK;
        size_t len = (n - start < NS_MS_CHUNK) ? n - start : NS_MS_CHUNK;
        partial[c] = sum_squares(x + start, len);
    }
    double total = serial_sum(partial, nchunks);
    free(partial);
    return total / (double)n;
}

/* ------------------------------------------------------------------------------------------ */
/* act_var */

/* Two-pass variance: activations of a residual stream can have a large common offset, where the
 * one-pass E[x^2] - E[x]^2 cancels catastrophically. */
NS_CLONES static double token_var(const float *t, int width) {
    double sum[NS_LANES] = {0}, ss[NS_LANES] = {0};
    int k = 0;
    for (; k + NS_LANES <= width; k += NS_LANES) {
        for (int j = 0; j < NS_LANES; j++) {
            sum[j] += (double)t[k + j];
        }
    }
    for (; k < width; k++) {
        sum[k % NS_LANES] += (double)t[k];
    }
    double mean = ns_lanes_total(sum) / (double)width;
    for (k = 0; k + NS_LANES <= width; k += NS_LANES) {
        for (int j = 0; j < NS_LANES; j++) {
            double d = (double)t[k + j] - mean;
            ss[j] += d * d;
        }
    }
    for (; k < width; k++) {
        double d = (double)t[k] - mean;
        ss[k % NS_LANES] += d * d;
    }
    return ns_lanes_total(ss) / (double)width;
}

double ns_metric_act_var(const float *x, int ntok, int width) {
    if (x == NULL || ntok < 1 || width < 1) {
        return NAN;
    }
    double *partial = malloc((size_t)ntok * sizeof(double));
    if (partial == NULL) {
        return NAN;
    }
    NS_OMP(omp parallel for schedule(static) if ((size_t)ntok * width >= NS_METRIC_PAR_MIN))
    for (int t = 0; t < ntok; t++) {
        partial[t] = token_var(x + (size_t)t * (size_t)width, width);
    }
    double total = serial_sum(partial, (size_t)ntok);
    free(partial);
    return total / (double)ntok;
}

/* ------------------------------------------------------------------------------------------ */
/* cos_tokens */

/* Mean pairwise cosine of one sequence via the sum of unit vectors. `usum` is width doubles of
 * scratch. sum_i |u_i|^2 is accumulated from the computed u_i (rather than counting nonzero tokens
 * as 1) so the diagonal terms cancel with the same rounding they entered |sum u_i|^2 with. */
NS_CLONES static double seq_cos_tokens(const float *xs, int seq, int width, double *usum) {
    for (int k = 0; k < width; k++) {
        usum[k] = 0.0;
    }
    double self[NS_LANES] = {0}, total_sq[NS_LANES] = {0};
    for (int i = 0; i < seq; i++) {
        const float *t = xs + (size_t)i * (size_t)width;
        double nsq = sum_squares(t, (size_t)width);
        if (nsq == 0.0) {
            continue; /* zero token: no direction, contributes cosine 0 to all its pairs */
        }
        double norm = sqrt(nsq);
        int k = 0;
        for (; k + NS_LANES <= width; k += NS_LANES) {
            for (int j = 0; j < NS_LANES; j++) {
                double u = (double)t[k + j] / norm;
                usum[k + j] += u;
                self[j] += u * u;
            }
        }
        for (; k < width; k++) {
            double u = (double)t[k] / norm;
            usum[k] += u;
            self[k % NS_LANES] += u * u;
        }
    }
    for (int k = 0; k < width; k++) {
        total_sq[k % NS_LANES] += usum[k] * usum[k];
    }
    return (ns_lanes_total(total_sq) - ns_lanes_total(self)) / ((double)seq * (double)(seq - 1));
}

double ns_metric_cos_tokens(const float *x, int nseq, int seq, int width) {
    if (x == NULL || nseq < 1 || seq < 2 || width < 1) {
        return NAN; /* includes seq == 1: there are no pairs */
    }
    int nthreads = max_threads();
    /* One allocation: nseq partials, then one width-long unit-vector sum per thread. */
    size_t ws_per_thread = (size_t)width;
    if ((size_t)nthreads > (SIZE_MAX / sizeof(double) - (size_t)nseq) / ws_per_thread) {
        return NAN;
    }
    double *buf = malloc(((size_t)nseq + (size_t)nthreads * ws_per_thread) * sizeof(double));
    if (buf == NULL) {
        return NAN;
    }
    double *partial = buf;
    double *ws = buf + nseq;
    NS_OMP(omp parallel num_threads(nthreads) if ((size_t)nseq * seq * width >= NS_METRIC_PAR_MIN))
    {
        double *usum = ws + (size_t)thread_id() * ws_per_thread;
        NS_OMP(omp for schedule(static))
        for (int s = 0; s < nseq; s++) {
            const float *xs = x + (size_t)s * (size_t)seq * (size_t)width;
            partial[s] = seq_cos_tokens(xs, seq, width, usum);
        }
    }
    double total = serial_sum(partial, (size_t)nseq);
    free(buf);
    return total / (double)nseq;
}

/* ------------------------------------------------------------------------------------------ */
/* eff_rank */

/* Per-thread scratch for one sequence. */
typedef struct {
    double *xd;   /* [seq * width] double copy of the sequence */
    double *gram; /* [m * m] Gram matrix, column-major, lower triangle */
    double *eig;  /* [m] eigenvalues, ascending */
    double *work; /* [lwork] dsyev workspace */
} EffRankWs;

/* Effective rank of one [seq x width] row-major matrix; returns a LAPACKE info (0 = ok). */
static int seq_eff_rank(const float *xs, int seq, int width, int m, const EffRankWs *ws,
                        lapack_int lwork, double *erank) {
    size_t mat = (size_t)seq * (size_t)width;
    /* The Gram matrix is formed in double: forming it in float would square the float rounding.
     * A non-finite value (a diverged run) gives no rank, and dsyev would fail on it; it is
     * spotted by its all-ones exponent, in a loop without a branch, which vectorizes. */
    uint32_t nonfinite = 0;
    for (size_t i = 0; i < mat; i++) {
        uint32_t bits;
        memcpy(&bits, &xs[i], sizeof bits);
        nonfinite |= (bits & 0x7f800000u) == 0x7f800000u;
        ws->xd[i] = (double)xs[i];
    }
    if (nonfinite) {
        *erank = NAN;
        return 0;
    }
    /* Row-major X [seq x width] is, bit for bit, column-major A = X^T [width x seq] with ld width.
     * Working column-major throughout spares LAPACKE its row-major transpose copy (and malloc). */
    if (seq <= width) {
        /* A^T A = X X^T, [seq x seq] */
        cblas_dsyrk(CblasColMajor, CblasLower, CblasTrans, seq, width, 1.0, ws->xd, width, 0.0,
                    ws->gram, m);
    } else {
        /* A A^T = X^T X, [width x width] */
        cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, width, seq, 1.0, ws->xd, width, 0.0,
                    ws->gram, m);
    }
    lapack_int info =
        LAPACKE_dsyev_work(LAPACK_COL_MAJOR, 'N', 'L', m, ws->gram, m, ws->eig, ws->work, lwork);
    if (info != 0) {
        return (int)info;
    }
    double lmax = ws->eig[m - 1];
    if (!(lmax > 0.0)) {
        *erank = (lmax == 0.0) ? 0.0 : NAN; /* all-zero sequence; NAN only for non-finite input */
        return 0;
    }
    /* Eigenvalues at the rounding-noise level of the Gram route are treated as zero (see
     * metrics.h); this also clamps the tiny negative ones. */
    int kdim = seq > width ? seq : width;
    double tol = (double)kdim * DBL_EPSILON * lmax;
    double ssum = 0.0;
    for (int i = 0; i < m; i++) {
        double l = ws->eig[i];
        ws->eig[i] = (l > tol) ? sqrt(l) : 0.0; /* now singular values */
        ssum += ws->eig[i];
    }
    double entropy = 0.0;
    for (int i = 0; i < m; i++) {
        if (ws->eig[i] > 0.0) {
            double p = ws->eig[i] / ssum;
            entropy -= p * log(p);
        }
    }
    *erank = exp(entropy);
    return 0;
}

int ns_metric_eff_rank(const float *x, int nseq, int seq, int width, double *out) {
    if (out != NULL) {
        *out = NAN;
    }
    if (x == NULL || out == NULL || nseq < 1 || seq < 1 || width < 1) {
        return -1;
    }
    const int m = seq <= width ? seq : width;
    /* Workspace query; dsyev does not touch a or w when lwork == -1. */
    double lwork_opt = 0.0, dummy_a = 0.0, dummy_w = 0.0;
    lapack_int info =
        LAPACKE_dsyev_work(LAPACK_COL_MAJOR, 'N', 'L', m, &dummy_a, m, &dummy_w, &lwork_opt, -1);
    if (info != 0) {
        return (int)info;
    }
    lapack_int lwork = (lapack_int)lwork_opt;
    if (lwork < 3 * m - 1) {
        lwork = 3 * m - 1; /* documented minimum for jobz = 'N' */
    }
    if (lwork < 1) {
        lwork = 1;
    }
    /* All scratch is allocated up front, so nothing inside the parallel region can fail to
     * allocate: nseq partials, then one EffRankWs per thread. */
    int nthreads = max_threads();
    size_t mat = (size_t)seq * (size_t)width, mm = (size_t)m * (size_t)m;
    size_t per_thread = mat + mm + (size_t)m + (size_t)lwork;
    if (per_thread < mat ||
        (size_t)nthreads > (SIZE_MAX / sizeof(double) - (size_t)nseq) / per_thread) {
        return -1;
    }
    double *partial = malloc(((size_t)nseq + (size_t)nthreads * per_thread) * sizeof(double));
    int *status = malloc((size_t)nseq * sizeof(int));
    if (partial == NULL || status == NULL) {
        free(partial);
        free(status);
        return -1;
    }
    /* Sequences are taken dynamically: the cores' speeds wander, and which thread computes a
     * sequence changes nothing in its number. */
    NS_OMP(omp parallel num_threads(nthreads) if ((size_t)nseq * mat >= NS_METRIC_PAR_MIN))
    {
        double *p = partial + nseq + (size_t)thread_id() * per_thread;
        EffRankWs ws = {p, p + mat, p + mat + mm, p + mat + mm + m};
        NS_OMP(omp for schedule(dynamic))
        for (int s = 0; s < nseq; s++) {
            partial[s] = NAN;
            status[s] = seq_eff_rank(x + (size_t)s * mat, seq, width, m, &ws, lwork, &partial[s]);
        }
    }
    /* The lowest-index failure is reported, so the status is thread-count independent too. */
    int rc = 0;
    for (int s = 0; s < nseq && rc == 0; s++) {
        rc = status[s];
    }
    if (rc == 0) {
        *out = serial_sum(partial, (size_t)nseq) / (double)nseq;
    }
    free(partial);
    free(status);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* cos_layer */

NS_CLONES static double token_cos(const float *a, const float *b, int width) {
    double dot_l[NS_LANES] = {0}, na_l[NS_LANES] = {0}, nb_l[NS_LANES] = {0};
    int k = 0;
    for (; k + NS_LANES <= width; k += NS_LANES) {
        for (int j = 0; j < NS_LANES; j++) {
            double va = (double)a[k + j], vb = (double)b[k + j];
            dot_l[j] += va * vb;
            na_l[j] += va * va;
            nb_l[j] += vb * vb;
        }
    }
    for (; k < width; k++) {
        double va = (double)a[k], vb = (double)b[k];
        dot_l[k % NS_LANES] += va * vb;
        na_l[k % NS_LANES] += va * va;
        nb_l[k % NS_LANES] += vb * vb;
    }
    double dot = ns_lanes_total(dot_l), na = ns_lanes_total(na_l), nb = ns_lanes_total(nb_l);
    if (na == 0.0 || nb == 0.0) {
        return 0.0; /* a zero token has no direction */
    }
    return dot / (sqrt(na) * sqrt(nb));
}

double ns_metric_cos_layer(const float *x_prev, const float *x, int ntok, int width) {
    if (x_prev == NULL || x == NULL || ntok < 1 || width < 1) {
        return NAN;
    }
    double *partial = malloc((size_t)ntok * sizeof(double));
    if (partial == NULL) {
        return NAN;
    }
    NS_OMP(omp parallel for schedule(static) if ((size_t)ntok * width >= NS_METRIC_PAR_MIN))
    for (int t = 0; t < ntok; t++) {
        size_t off = (size_t)t * (size_t)width;
        partial[t] = token_cos(x_prev + off, x + off, width);
    }
    double total = serial_sum(partial, (size_t)ntok);
    free(partial);
    return total / (double)ntok;
}

/* ln x for a normal double x > 0, in a form the compiler vectorizes (libm's log is a call per
 * element; it was 1.2% of a transformer propagate's CPU time). fdlibm's e_log.c: x = 2^k (1 + f)
 * with sqrt(2)/2 < 1 + f < sqrt(2), s = f / (2 + f), ln(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2))
 * with its minimax R, error below 1 ulp. The reduction is integer work on the bits: GCC does
 * not vectorize a floating-point select here (it will not speculate an operation that might
 * trap), and k comes out as a double by the 2^52 trick, since AVX2 has no int64 conversion. */
static inline double log_vec(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint64_t mbits = (bits & 0x000fffffffffffffu) | 0x3ff0000000000000u; /* 1 + f in [1, 2) */
    uint64_t big = mbits > 0x3ff6a09e667f3bcdu; /* above sqrt(2): halve 1 + f, and k + 1 */
    mbits -= big << 52;
    uint64_t kbits = ((bits >> 52) + big) | 0x4330000000000000u; /* 2^52 + biased k */
    double kd, m;
    memcpy(&kd, &kbits, sizeof kd);
    memcpy(&m, &mbits, sizeof m);
    double k = kd - (4503599627370496.0 + 1023.0);
    double f = m - 1.0, s = f / (2.0 + f), z = s * s, w = z * z;
    double t1 = w * (3.999999999940941908e-01 +
                     w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
    double t2 = z * (6.666666666666735130e-01 +
                     w * (2.857142874366239149e-01 +
                          w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
    double hfsq = 0.5 * f * f;
    return k * 6.93147180369123816490e-01 -
           ((hfsq - (s * (hfsq + t1 + t2) + k * 1.90821492927058770002e-10)) - f);
}

/* p ln p for 0 < p < inf, else 0 (so 0 ln 0 = 0, and a NaN of a diverged run adds nothing),
 * without a branch: the mask is all ones exactly when the bits of p lie in 1 .. those of inf */
static inline double p_log_p(double p)
{
    double t = p * log_vec(p); /* finite for p = 0 too */
    uint64_t pb, tb;
    memcpy(&pb, &p, sizeof pb);
    memcpy(&tb, &t, sizeof tb);
    tb &= -(uint64_t)(pb - 1 < 0x7ff0000000000000u);
    memcpy(&t, &tb, sizeof t);
    return t;
}

/* -sum p ln p over the causal rows of one [seq x seq] attention matrix, each row in lanes */
NS_CLONES static double causal_entropy(const float *p, int seq)
{
    double acc[NS_LANES] = {0};
    for (int i = 0; i < seq; i++) {
        const float *row = p + (size_t)i * seq;
        int j = 0;
        for (; j + NS_LANES <= i + 1; j += NS_LANES) {
            for (int l = 0; l < NS_LANES; l++) {
                acc[l] -= p_log_p(row[j + l]);
            }
        }
        for (; j <= i; j++) {
            acc[j % NS_LANES] -= p_log_p(row[j]);
        }
    }
    return ns_lanes_total(acc);
}

double ns_metric_attn_entropy(const float *probs, int nseq, int heads, int seq, double *per_head) {
    if (probs == NULL || per_head == NULL || nseq < 1 || heads < 1 || seq < 1) {
        return NAN;
    }
    int nrows = nseq * heads;
    double *partial = malloc((size_t)nrows * sizeof(double));
    if (partial == NULL) {
        return NAN;
    }
    /* one partial per (sequence, head); summed per head serially below */
    NS_OMP(omp parallel for schedule(static) if ((size_t)nrows * seq * seq >= NS_METRIC_PAR_MIN))
    for (int bh = 0; bh < nrows; bh++) {
        partial[bh] = causal_entropy(probs + (size_t)bh * seq * seq, seq);
    }
    double mean = 0.0;
    for (int h = 0; h < heads; h++) {
        double s = 0.0;
        for (int b = 0; b < nseq; b++) {
            s += partial[b * heads + h];
        }
        per_head[h] = s / ((double)nseq * seq);
        mean += per_head[h];
    }
    free(partial);
    return mean / heads;
}

double ns_metric_expert_load(const int *expert, int ntok, int top_k, int E, double *load) {
    if (expert == NULL || load == NULL || ntok < 1 || top_k < 1 || E < 1) {
        return NAN;
    }
    for (int e = 0; e < E; e++) {
        load[e] = 0.0;
    }
    size_t slots = (size_t)ntok * (size_t)top_k;
    for (size_t s = 0; s < slots; s++) {
        if (expert[s] >= 0 && expert[s] < E) {
            load[expert[s]] += 1.0;
        }
    }
    double mean = 1.0 / E, ss = 0.0;
    for (int e = 0; e < E; e++) {
        load[e] /= (double)slots;
        ss += (load[e] - mean) * (load[e] - mean);
    }
    return sqrt(ss / E) / mean;
}

double ns_metric_router_entropy(const float *probs, int ntok, int E) {
    if (probs == NULL || ntok < 1 || E < 1) {
        return NAN;
    }
    double sum = 0.0;
    for (int i = 0; i < ntok; i++) {
        for (int e = 0; e < E; e++) {
            double p = probs[(size_t)i * E + e];
            if (p > 0.0) {
                sum -= p * log(p);
            }
        }
    }
    return sum / ntok;
}

double ns_metric_dropped_frac(const int *row, int ntok, int top_k) {
    if (row == NULL || ntok < 1 || top_k < 1) {
        return NAN;
    }
    size_t slots = (size_t)ntok * (size_t)top_k, dropped = 0;
    for (size_t s = 0; s < slots; s++) {
        dropped += row[s] < 0;
    }
    return (double)dropped / (double)slots;
}
