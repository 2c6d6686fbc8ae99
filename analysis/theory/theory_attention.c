/* theory_attention.c: the moments of causal softmax attention at initialization, for the
 * Transformer theory (theory_internal.h; derivations in analysis/theory/README.md,
 * section 9.3).
 *
 * One head of one sequence, as d -> infinity with the head width: the input z has the Gram
 * matrix Z over positions; the scores s_ij = q_i . k_j / sqrt(d/H) (j <= i) form a Gaussian field
 * with Cov(s_ij, s_lk) = Z_il Z_jk, independent of the values v = z W_V (Gram Z); P is the causal
 * softmax of s. The sublayer needs
 *   forward    A  = E[P Z P^T]
 *   backward   Gz = E[P^T G P]                                    (through the values)
 *                 + G o Qm,  Qm_il = E[sum_jk P_ij P_lk V~(i,j;l,k) Z_jk]   (through the queries)
 *                 + Bk,      Bk_jk = sum_il (G o Z)_il E[P_ij P_lk V~(i,j;l,k)] (through the keys)
 * with V~(i,j;l,k) = (v_j - vbar_i).(v_k - vbar_l)/dh, vbar_i = sum_m P_im v_m, and o the
 * elementwise product. Three ways to take the expectations over P:
 *   uniform      P = Pbar, Pbar_ij = 1/(i+1) for j <= i, in every term;
 *   softmax      (the default) queries independent, each query's weights exchangeable with the
 *                moments of a softmax of n = i+1 i.i.d. N(0, s2_i) scores, s2_i = Z_ii (D_i - O_i)
 *                (D_i, O_i: the mean variance and the mean covariance of its keys). Then
 *                A = Pbar Z Pbar^T + diag((m2_i - 1/n_i)(D_i - O_i)), the value path gains the
 *                same fluctuation term, and the query and key paths of each pair of queries are
 *                their uniform values scaled by the exchangeable/uniform ratio of the pair
 *                (pair_path), which goes to 0 as the softmax saturates. The moments are 1-D
 *                integrals (ns_theory_softmax_moments), tabulated in s2 per prediction;
 *   Monte Carlo  the expectations themselves over sampled score matrices, including the
 *                correlation between queries that the softmax model leaves out (a reference). */
#include "theory_internal.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_rng.h>
/* from <gsl/gsl_randist.h>, which cannot be included beside OpenBLAS's cblas.h (it pulls in GSL's
 * own CBLAS declarations) */
double gsl_ran_gaussian_ziggurat(const gsl_rng *r, const double sigma);

/* ---- softmax moments of i.i.d. Gaussian scores (analysis/theory/README.md, section 9.4) ----
 * With 1/S^m = int_0^inf t^(m-1) e^(-t S) dt / (m-1)! and t = e^u,
 *   E[sum_j P_j^m]          = n/(m-1)! int psi_m(u) psi_0(u)^(n-1) du
 *   E[sum_(j!=k) P_j^2 P_k^2] = n(n-1)/3! int psi_2(u)^2 psi_0(u)^(n-2) du
 * where psi_m(u) = E[g_m(u + sigma z)], g_m(w) = exp(m w - e^w) (m >= 1), and
 * psi_0(u) = E[exp(-e^(u + sigma z))] = int g_1(w) Phi((w - u)/sigma) dw (by parts). Every g_m is
 * a bump of width O(1), so the integrands are smooth and decay at both ends: a trapezoid rule in
 * u converges geometrically. psi is a Gauss-Legendre sum over z (sigma <= 1.5) or over w. */

#define SM_NODES 64

static double g_m(int m, double w) { return exp(m * w - exp(w)); }

/* psi_0, psi_2, psi_3, psi_4 at u */
static void psi_at(double u, double sigma, double psi[5])
{
    const double *x, *wt;
    ns_tf_gauss_legendre(SM_NODES, &x, &wt);
    double p0 = 0, p2 = 0, p3 = 0, p4 = 0;
    if (sigma <= 1.5) { /* over z in [-9, 9], split at 0 */
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < SM_NODES; i++) {
                double z = (h ? 9.0 : -9.0) * x[i], w = 9.0 * wt[i] * exp(-0.5 * z * z) *
                                                        0.39894228040143267794;
                double v = u + sigma * z, e = exp(v), d = exp(-e);
                p0 += w * d;
                p2 += w * exp(2 * v) * d;
                p3 += w * exp(3 * v) * d;
                p4 += w * exp(4 * v) * d;
            }
    } else { /* over w in [-46, 6], split at -8 where the bumps' exponential tails begin */
        static const double lo[] = {-46.0, -8.0}, hi[] = {-8.0, 6.0};
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < SM_NODES; i++) {
                double w = lo[h] + (hi[h] - lo[h]) * x[i], ww = (hi[h] - lo[h]) * wt[i];
                double t = (w - u) / sigma;
                double dens = exp(-0.5 * t * t) * 0.39894228040143267794 / sigma;
                p0 += ww * g_m(1, w) * 0.5 * erfc(-t / sqrt(2.0));
                p2 += ww * g_m(2, w) * dens;
                p3 += ww * g_m(3, w) * dens;
                p4 += ww * g_m(4, w) * dens;
            }
    }
    psi[0] = p0 > 1 ? 1 : p0;
    psi[2] = p2, psi[3] = p3, psi[4] = p4;
}

/* the moments for n = 1..T at one s2 */
static int sm_moments_all(int T, double s2, double *m2, double *m3, double *m22)
{
    if (!(s2 >= 0) || !isfinite(s2))
        return NS_ERR_INVALID;
    if (s2 == 0) {
        for (int n = 1; n <= T; n++)
            m2[n - 1] = 1.0 / n, m3[n - 1] = 1.0 / ((double)n * n), m22[n - 1] = m3[n - 1];
        return NS_OK;
    }
    double sigma = sqrt(s2);
    double lo = -46.0 - 9.0 * sigma, hi = 8.0 + 9.0 * sigma;
    double h = 0.2 * (sigma > 4 ? sigma / 4 : 1.0);
    int nu = (int)ceil((hi - lo) / h) + 1;
    double *a = calloc((size_t)3 * T, sizeof *a);
    if (!a)
        return NS_ERR_NOMEM;
    double *s2sum = a, *s3sum = a + T, *s4sum = a + 2 * T;
    double *s22 = malloc((size_t)T * sizeof *s22);
    if (!s22) {
        free(a);
        return NS_ERR_NOMEM;
    }
    for (int n = 0; n < T; n++)
        s22[n] = 0;
    for (int k = 0; k < nu; k++) {
        double u = lo + k * h, psi[5];
        psi_at(u, sigma, psi);
        double l0 = psi[0] > 0 ? log(psi[0]) : -INFINITY;
        double pw = 1; /* psi_0^(n-1) */
        for (int n = 1; n <= T; n++) {
            if (n > 1)
                pw = exp((n - 1) * l0);
            s2sum[n - 1] += psi[2] * pw;
            s3sum[n - 1] += psi[3] * pw;
            s4sum[n - 1] += psi[4] * pw;
            if (n > 1)
                s22[n - 1] += psi[2] * psi[2] * (n > 2 ? exp((n - 2) * l0) : 1.0);
        }
    }
    int st = NS_OK;
    for (int n = 1; n <= T; n++) {
        m2[n - 1] = n * h * s2sum[n - 1];
        m3[n - 1] = n * h * s3sum[n - 1] / 2;
        m22[n - 1] = n * h * s4sum[n - 1] / 6 + (double)n * (n - 1) * h * s22[n - 1] / 6;
        if (!isfinite(m2[n - 1]) || !isfinite(m3[n - 1]) || !isfinite(m22[n - 1]))
            st = NS_ERR_NUMERIC;
    }
    free(a);
    free(s22);
    return st;
}

int ns_theory_softmax_moments(int n, double s2, double *m2, double *m3, double *m22)
{
    if (n < 1 || !m2 || !m3 || !m22)
        return NS_ERR_INVALID;
    if (!ns_tf_quadrature_ready())
        return NS_ERR_NUMERIC;
    double *b = malloc((size_t)3 * n * sizeof *b);
    if (!b)
        return NS_ERR_NOMEM;
    int st = sm_moments_all(n, s2, b, b + n, b + 2 * n);
    if (st == NS_OK)
        *m2 = b[n - 1], *m3 = b[2 * n - 1], *m22 = b[3 * n - 1];
    free(b);
    return st;
}

/* A table of the moments on a grid of x = log(1 + s2), step 1/16, nodes computed when first
 * needed, cubic Lagrange interpolation between them (within 1e-4 of the integrals). s2 is capped at
 * 1e6 (sigma = 1000), where 1 - m2 is below 0.01 for up to 256 scores: nearly one-hot. */
#define SM_STEP (1.0 / 16)
#define SM_S2_MAX 1e6

typedef struct {
    int T, nnodes;
    double *val;   /* [nnodes][3][T] */
    char *done;    /* [nnodes] */
} sm_table;

static int sm_table_node(sm_table *t, int k, const double **v)
{
    if (!t->done[k]) {
        double s2 = expm1(k * SM_STEP);
        double *p = t->val + (size_t)k * 3 * t->T;
        int st = sm_moments_all(t->T, s2, p, p + t->T, p + 2 * t->T);
        if (st)
            return st;
        t->done[k] = 1;
    }
    *v = t->val + (size_t)k * 3 * t->T;
    return NS_OK;
}

/* m2, m3, m22 at (n, s2) */
static int sm_table_at(sm_table *t, int n, double s2, double out[3])
{
    double x = log1p(s2 < SM_S2_MAX ? (s2 > 0 ? s2 : 0) : SM_S2_MAX) / SM_STEP;
    int k0 = (int)floor(x) - 1;
    if (k0 < 0)
        k0 = 0;
    if (k0 > t->nnodes - 4)
        k0 = t->nnodes - 4;
    double f = x - k0; /* position among the 4 nodes k0 .. k0+3, in [0, 3] */
    double wts[4];
    for (int a = 0; a < 4; a++) {
        double w = 1;
        for (int b = 0; b < 4; b++)
            if (b != a)
                w *= (f - b) / (double)(a - b);
        wts[a] = w;
    }
    out[0] = out[1] = out[2] = 0;
    for (int a = 0; a < 4; a++) {
        const double *v;
        int st = sm_table_node(t, k0 + a, &v);
        if (st)
            return st;
        for (int c = 0; c < 3; c++)
            out[c] += wts[a] * v[(size_t)c * t->T + (n - 1)];
    }
    return NS_OK;
}

/* ---- the model ------------------------------------------------------------------------------- */
struct ns_tf_attn {
    ns_theory_attn kind;
    int T, samples;
    uint64_t seed;
    sm_table tab;
    /* scratch, T*T each */
    double *P, *W, *PW, *Z2, *t1, *t2, *t3, *L, *xi, *acc1, *acc2, *acc3, *eig;
};

void ns_tf_attn_free(ns_tf_attn *a)
{
    if (!a)
        return;
    free(a->tab.val);
    free(a->tab.done);
    free(a->P);
    free(a);
}

int ns_tf_attn_create(ns_tf_attn **out, ns_theory_attn kind, int T, int samples, uint64_t seed)
{
    *out = NULL;
    if (T < 1 || (kind != NS_THEORY_ATTN_UNIFORM && kind != NS_THEORY_ATTN_SOFTMAX &&
                  kind != NS_THEORY_ATTN_MONTE_CARLO))
        return NS_ERR_INVALID;
    ns_tf_attn *a = calloc(1, sizeof *a);
    if (!a)
        return NS_ERR_NOMEM;
    a->kind = kind, a->T = T, a->samples = samples > 0 ? samples : 256, a->seed = seed;
    size_t TT = (size_t)T * T;
    a->P = malloc(13 * TT * sizeof(double));
    a->tab.T = T;
    a->tab.nnodes = (int)ceil(log1p(SM_S2_MAX) / SM_STEP) + 4;
    a->tab.val = kind == NS_THEORY_ATTN_SOFTMAX
                     ? malloc((size_t)a->tab.nnodes * 3 * T * sizeof(double))
                     : NULL;
    a->tab.done = calloc((size_t)a->tab.nnodes, 1);
    if (!a->P || !a->tab.done || (kind == NS_THEORY_ATTN_SOFTMAX && !a->tab.val)) {
        ns_tf_attn_free(a);
        return NS_ERR_NOMEM;
    }
    double **views[] = {&a->W, &a->PW, &a->Z2, &a->t1, &a->t2, &a->t3, &a->L, &a->xi,
                        &a->acc1, &a->acc2, &a->acc3, &a->eig};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        *views[i] = a->P + (i + 1) * TT;
    *out = a;
    return NS_OK;
}

void ns_tf_attn_layer_bind(ns_tf_attn_layer *st, double *mem, int T)
{
    size_t TT = (size_t)T * T;
    st->Z = mem;
    st->Qm = mem + TT;
    st->ratio = mem + 2 * TT;
    st->dm2 = mem + 3 * TT;
    st->spread = st->dm2 + T;
    st->fields = NULL;
}

size_t ns_tf_attn_fields(const ns_tf_attn *a)
{
    return a->kind == NS_THEORY_ATTN_MONTE_CARLO ? (size_t)a->samples * a->T * a->T : 0;
}

/* C = A B (op(A) = A^T if ta) for T x T */
static void mm(int T, int ta, int tb, const double *A, const double *B, double *C, double beta)
{
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, T, T,
                T, 1.0, A, T, B, T, beta, C, T);
}

/* C = op(P) B (left) or B op(P) (right) for a causal, lower-triangular P: half a GEMM's work */
static void mm_causal(int T, int left, int tp, const double *P, const double *B, double *C)
{
    memcpy(C, B, (size_t)T * T * sizeof *C);
    cblas_dtrmm(CblasRowMajor, left ? CblasLeft : CblasRight, CblasLower,
                tp ? CblasTrans : CblasNoTrans, CblasNonUnit, T, T, 1.0, P, T, C, T);
}

static void uniform_P(int T, double *P)
{
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            P[(size_t)i * T + j] = j <= i ? 1.0 / (i + 1) : 0.0;
}

/* for one P: acc1 += P Z P^T, acc2 += the query path's sum (Qm) */
static void forward_one(ns_tf_attn *a, const double *Z, double w)
{
    int T = a->T;
    size_t TT = (size_t)T * T;
    mm_causal(T, 0, 1, a->P, Z, a->W);     /* W = Z P^T */
    mm_causal(T, 1, 0, a->P, a->W, a->PW); /* P Z P^T */
    mm_causal(T, 1, 0, a->P, a->Z2, a->t1);
    mm_causal(T, 0, 1, a->P, a->t1, a->t2); /* P (Z o Z) P^T */
    for (size_t e = 0; e < TT; e++)
        a->t1[e] = a->W[e] * a->W[e];
    mm_causal(T, 1, 0, a->P, a->t1, a->t3); /* P (W o W) */
    for (int i = 0; i < T; i++)
        for (int l = 0; l < T; l++) {
            size_t il = (size_t)i * T + l, li = (size_t)l * T + i;
            a->acc1[il] += w * a->PW[il];
            a->acc2[il] += w * (a->t2[il] - a->t3[il] - a->t3[li] + a->PW[il] * a->PW[il]);
        }
}

/* for one P: acc1 += P^T G P + the key path (analysis/theory/README.md, section 9.3,
 * t1 - t2 - t3 + t4) */
static void backward_one(ns_tf_attn *a, const double *Z, const double *G, const double *ratio,
                         double w)
{
    int T = a->T;
    size_t TT = (size_t)T * T;
    double *Bm = a->acc3, *PtB = a->t1, *tmp = a->t2, *out = a->t3;
    mm_causal(T, 0, 1, a->P, Z, a->W);
    mm_causal(T, 1, 0, a->P, a->W, a->PW);
    mm_causal(T, 1, 1, a->P, G, tmp);
    mm_causal(T, 0, 0, a->P, tmp, out); /* P^T G P */
    for (size_t e = 0; e < TT; e++)
        a->acc1[e] += w * out[e];
    for (size_t e = 0; e < TT; e++)
        Bm[e] = G[e] * Z[e] * (ratio ? ratio[e] : 1);
    mm_causal(T, 1, 1, a->P, Bm, PtB);
    mm_causal(T, 0, 0, a->P, PtB, out); /* t1 = (P^T Bm P) o Z */
    for (size_t e = 0; e < TT; e++)
        a->acc1[e] += w * out[e] * Z[e];
    for (size_t e = 0; e < TT; e++)
        tmp[e] = PtB[e] * a->W[e];
    mm_causal(T, 0, 0, a->P, tmp, out); /* t2 = ((P^T Bm) o W) P */
    for (int j = 0; j < T; j++)
        for (int k = 0; k < T; k++) /* t3 = t2^T when Bm is symmetric, as it is here */
            a->acc1[(size_t)j * T + k] -= w * (out[(size_t)j * T + k] + out[(size_t)k * T + j]);
    for (size_t e = 0; e < TT; e++)
        tmp[e] = Bm[e] * a->PW[e];
    mm_causal(T, 1, 1, a->P, tmp, PtB);
    mm_causal(T, 0, 0, a->P, PtB, out); /* t4 = P^T (Bm o P Z P^T) P */
    for (size_t e = 0; e < TT; e++)
        a->acc1[e] += w * out[e];
}

/* a factor L with Z = L L^T, from Cholesky's factorization with complete pivoting, which is
 * robust to a semi-definite Z (tokens that have collapsed onto one direction): P^T Z P = C C^T
 * with C lower-triangular and zero beyond Z's numerical rank, and L = P C. A tenth of the cost
 * of the eigendecomposition; any factor gives the fields the same distribution. Z is symmetric,
 * so its row-major storage is its column-major one, and LAPACK's column-major upper factor U
 * (P^T Z P = U^T U) reads row-major as C = U^T. */
static int factor(ns_tf_attn *a, const double *Z)
{
    int T = a->T;
    double *C = a->t1;
    lapack_int *piv = (lapack_int *)a->eig, rank = 0;
    memcpy(C, Z, (size_t)T * T * sizeof(double));
    if (LAPACKE_dpstrf(LAPACK_COL_MAJOR, 'U', T, C, T, piv, &rank, -1.0) < 0)
        return NS_ERR_NUMERIC;
    for (int k = 0; k < T; k++) { /* row k of C is row piv[k] of L */
        double *row = a->L + (size_t)(piv[k] - 1) * T;
        for (int j = 0; j < T; j++)
            row[j] = j <= k && j < rank ? C[(size_t)k * T + j] : 0;
    }
    return NS_OK;
}

/* one sampled P from the stream's generator */
static void sample_P(ns_tf_attn *a, gsl_rng *r)
{
    int T = a->T;
    size_t TT = (size_t)T * T;
    for (size_t e = 0; e < TT; e++)
        a->xi[e] = gsl_ran_gaussian_ziggurat(r, 1.0);
    mm(T, 0, 0, a->L, a->xi, a->t1, 0);
    mm(T, 0, 1, a->t1, a->L, a->P, 0); /* scores L xi L^T: Cov = Z_il Z_jk */
    for (int i = 0; i < T; i++) {
        double *row = a->P + (size_t)i * T, mx = row[0], sum = 0;
        for (int j = 1; j <= i; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j <= i; j++)
            sum += row[j] = exp(row[j] - mx);
        for (int j = 0; j < T; j++)
            row[j] = j <= i ? row[j] / sum : 0;
    }
}

static gsl_rng *stream_rng(uint64_t seed, uint64_t stream)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (r) { /* splitmix64 of (seed, stream): distinct, well-mixed 32-bit seeds */
        uint64_t z = seed * 0x9E3779B97F4A7C15ULL + stream + 0x632BE59BD9B4E019ULL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        gsl_rng_set(r, (unsigned long)(z & 0xffffffffUL) | 1UL);
    }
    return r;
}

/* the exchangeable corrections' shape: for each query i (n = i+1 >= 2) with weight c_i, add
 * c_i/n to every diagonal entry j <= i and -c_i/(n(n-1)) to every off-diagonal (j, k <= i) */
static void add_exchangeable(int T, const double *c, double *out)
{
    double u = 0, v = 0; /* suffix sums over i >= m */
    for (int m = T - 1; m >= 0; m--) {
        if (m >= 1) {
            double n = m + 1;
            u += c[m] / (n * (n - 1));
            v += c[m] / (n - 1);
        }
        /* row m, columns k <= m, and its mirror: max(j, k) = m */
        for (int k = 0; k < m; k++) {
            out[(size_t)m * T + k] -= u;
            out[(size_t)k * T + m] -= u;
        }
        out[(size_t)m * T + m] += v - u;
    }
}

/* E[c - sum_j P_ij P_lj^2 - sum_j P_ij^2 P_lj + c^2], c = sum_j P_ij P_lj over the m shared
 * keys, for two independent exchangeable queries with n_i, n_l keys and second moments m2i, m2l:
 * the pair's query and key paths over (D - O)^2 for equicorrelated keys
 * (analysis/theory/README.md, section 9.3) */
static double pair_path(int ni, int nl, double m2i, double m2l)
{
    double m = ni < nl ? ni : nl;
    double oi = ni > 1 ? (1 - m2i) / (ni * (ni - 1.0)) : 0;
    double ol = nl > 1 ? (1 - m2l) / (nl * (nl - 1.0)) : 0;
    double c2 = m * (m2i / ni) * (m2l / nl) + m * (m - 1) * oi * ol;
    return m / ((double)ni * nl) * (1 - m2i - m2l) + c2;
}

int ns_tf_attn_forward(ns_tf_attn *a, ns_tf_attn_layer *st, const double *Z, double *A,
                       uint64_t stream)
{
    int T = a->T;
    size_t TT = (size_t)T * T;
    memcpy(st->Z, Z, TT * sizeof(double));
    st->stream = stream;
    for (size_t e = 0; e < TT; e++)
        a->Z2[e] = Z[e] * Z[e], a->acc1[e] = a->acc2[e] = 0;
    /* D_i, O_i over the keys of query i */
    double sdiag = 0, sall = 0;
    for (int i = 0; i < T; i++) {
        double row = 0;
        for (int j = 0; j < i; j++)
            row += Z[(size_t)i * T + j];
        sdiag += Z[(size_t)i * T + i];
        sall += 2 * row + Z[(size_t)i * T + i];
        double n = i + 1, D = sdiag / n, O = i ? (sall - sdiag) / (n * (n - 1)) : D;
        st->spread[i] = D - O > 0 ? D - O : 0;
        st->dm2[i] = 0;
    }
    if (a->kind == NS_THEORY_ATTN_MONTE_CARLO) {
        int s = factor(a, Z);
        gsl_rng *r = s ? NULL : stream_rng(a->seed, stream);
        if (s || !r) {
            gsl_rng_free(r);
            return s ? s : NS_ERR_NOMEM;
        }
        for (int k = 0; k < a->samples; k++) {
            sample_P(a, r);
            if (st->fields)
                memcpy(st->fields + k * TT, a->P, TT * sizeof(double));
            forward_one(a, Z, 1.0 / a->samples);
        }
        gsl_rng_free(r);
    } else {
        uniform_P(T, a->P);
        forward_one(a, Z, 1.0);
    }
    if (a->kind == NS_THEORY_ATTN_SOFTMAX) {
        /* each query's moments; the forward's diagonal correction (m2 - 1/n)(D - O) */
        double *m2 = a->t1, *R = a->t2;
        for (int i = 0; i < T; i++) {
            int n = i + 1;
            double mo[3] = {1, 1, 1}, s2 = Z[(size_t)i * T + i] * st->spread[i];
            int s = i ? sm_table_at(&a->tab, n, s2, mo) : NS_OK;
            if (s)
                return s;
            m2[i] = mo[0];
            R[i] = mo[0] - 2 * mo[1] + mo[2];
            st->dm2[i] = mo[0] - 1.0 / n;
            a->acc1[(size_t)i * T + i] += st->dm2[i] * st->spread[i];
        }
        /* the query and key paths of the pair (i, l) scaled by their exchangeable value over
         * their uniform value (analysis/theory/README.md, section 9.3): 1 at zero score
         * variance, 0 when saturated */
        for (int i = 0; i < T; i++)
            for (int l = 0; l <= i; l++) {
                double r = i == l ? R[i] / ((double)i / ((i + 1.0) * (i + 1.0)))
                                  : pair_path(i + 1, l + 1, m2[i], m2[l]) /
                                        pair_path(i + 1, l + 1, 1.0 / (i + 1), 1.0 / (l + 1));
                if (!isfinite(r))
                    r = 1; /* a query with one key: both paths are 0 */
                st->ratio[(size_t)i * T + l] = st->ratio[(size_t)l * T + i] = r;
                a->acc2[(size_t)i * T + l] *= r;
                if (l != i)
                    a->acc2[(size_t)l * T + i] *= r;
            }
    }
    memcpy(A, a->acc1, TT * sizeof(double));
    memcpy(st->Qm, a->acc2, TT * sizeof(double));
    for (size_t e = 0; e < TT; e++)
        if (!isfinite(A[e]) || !isfinite(st->Qm[e]))
            return NS_ERR_NUMERIC;
    return NS_OK;
}

int ns_tf_attn_backward(ns_tf_attn *a, const ns_tf_attn_layer *st, const double *G, double *Gz)
{
    int T = a->T;
    size_t TT = (size_t)T * T;
    for (size_t e = 0; e < TT; e++)
        a->acc1[e] = 0;
    if (a->kind == NS_THEORY_ATTN_MONTE_CARLO && st->fields) {
        for (int k = 0; k < a->samples; k++) {
            memcpy(a->P, st->fields + k * TT, TT * sizeof(double));
            backward_one(a, st->Z, G, NULL, 1.0 / a->samples);
        }
    } else if (a->kind == NS_THEORY_ATTN_MONTE_CARLO) {
        int s = factor(a, st->Z); /* the forward's samples again, from the same stream */
        gsl_rng *r = s ? NULL : stream_rng(a->seed, st->stream);
        if (s || !r) {
            gsl_rng_free(r);
            return s ? s : NS_ERR_NOMEM;
        }
        for (int k = 0; k < a->samples; k++) {
            sample_P(a, r);
            backward_one(a, st->Z, G, NULL, 1.0 / a->samples);
        }
        gsl_rng_free(r);
    } else {
        uniform_P(T, a->P);
        backward_one(a, st->Z, G, a->kind == NS_THEORY_ATTN_SOFTMAX ? st->ratio : NULL, 1.0);
    }
    if (a->kind == NS_THEORY_ATTN_SOFTMAX) { /* the value path's fluctuation term */
        double *c = a->t1;
        for (int i = 0; i < T; i++)
            c[i] = G[(size_t)i * T + i] * st->dm2[i];
        add_exchangeable(T, c, a->acc1);
    }
    for (size_t e = 0; e < TT; e++) {
        Gz[e] = a->acc1[e] + G[e] * st->Qm[e]; /* plus the query path */
        if (!isfinite(Gz[e]))
            return NS_ERR_NUMERIC;
    }
    return NS_OK;
}
