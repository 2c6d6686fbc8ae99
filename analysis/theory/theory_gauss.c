/* theory_gauss.c: Gaussian expectations of activations, by fixed Gauss-Legendre rules (GSL).
 *
 * 1-D: E[f(u)], u = sqrt(s) z, z ~ N(0,1), as the integral of N(z) f(sqrt(s) z) over [-Z, Z],
 * split at z = 0 where relu (and relu') is not smooth and where GELU changes fastest at large s.
 *
 * 2-D: E[f(u1) g(u2)] with u1 = sqrt(s) z1, u2 = sqrt(s) (rho z1 + sqrt(1-rho^2) z2). In polar
 * coordinates (z1, z2) = r (cos t, sin t) and with rho = cos t0,
 *     u1 = sqrt(s) r cos t,   u2 = sqrt(s) r cos(t - t0),
 *     E[f g] = (1/2pi) int_0^2pi dt int_0^inf r exp(-r^2/2) f(u1) g(u2) dr.
 * The lines u1 = 0 and u2 = 0 (relu's kinks, relu''s jumps) are the rays t = pi/2, 3pi/2,
 * t0 + pi/2, t0 + 3pi/2 for every r, so splitting the angle there leaves integrands that are
 * smooth on every piece, and a fixed rule on each piece converges geometrically. That holds
 * uniformly in rho: as rho -> +-1 two rays merge and one piece shrinks to nothing, instead of a
 * Cartesian grid having to resolve a kink that sharpens. GELU is analytic; its fast change near
 * u = 0 (width 1/sqrt(s) in z at large s) sits at the same rays, where Gauss-Legendre nodes
 * cluster.
 *
 * Why fixed rules and not gsl_integration_qag: the adaptive routines report failure through the
 * GSL error handler, whose default prints and aborts, and this module must never exit. The fixed
 * rules cannot fail once their tables exist; the tables are built once (thread-safe), with the
 * handler switched off for that moment only, so that even an allocation failure turns into NAN
 * rather than an abort. */
#include "theory_internal.h"

#include <math.h>
#include <stddef.h>
#include <threads.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>

#define PI 3.14159265358979323846
#define INV_SQRT_2PI 0.39894228040143267794
#define GELU_K 0.79788456080286535588 /* sqrt(2/pi) */
#define GELU_C 0.044715

/* Truncation: the Gaussian weight beyond 12 standard deviations is below 1e-31, far under the
 * rules' own error even after a polynomial growth of f g. */
#define Z_MAX 12.0
#define N1 128 /* nodes per piece, 1-D */
#define NT 64  /* nodes per angular piece, 2-D */
#define NR 64  /* radial nodes, 2-D */

/* Gauss-Legendre nodes and weights on [0, 1] */
static double gl1_x[N1], gl1_w[N1], glt_x[NT], glt_w[NT], glr_x[NR], glr_w[NR];
/* the Transformer theory's rules (32, 48 and 64 nodes) */
static double gl32_x[32], gl32_w[32], gl48_x[48], gl48_w[48], gl64_x[64], gl64_w[64];
static int tables_ok;
static once_flag tables_once = ONCE_FLAG_INIT;

static int fill_table(size_t n, double *x, double *w)
{
    gsl_integration_glfixed_table *t = gsl_integration_glfixed_table_alloc(n);
    if (!t)
        return 0;
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = gsl_integration_glfixed_point(0.0, 1.0, i, &x[i], &w[i], t) == GSL_SUCCESS;
    gsl_integration_glfixed_table_free(t);
    return ok;
}

static void build_tables(void)
{
    gsl_error_handler_t *previous = gsl_set_error_handler_off();
    tables_ok = fill_table(N1, gl1_x, gl1_w) && fill_table(NT, glt_x, glt_w) &&
                fill_table(NR, glr_x, glr_w) && fill_table(32, gl32_x, gl32_w) &&
                fill_table(48, gl48_x, gl48_w) && fill_table(64, gl64_x, gl64_w);
    gsl_set_error_handler(previous);
}

static int tables_ready(void)
{
    call_once(&tables_once, build_tables);
    return tables_ok;
}

/* ---- the activations, in double, as core/ops_act.c defines them ------------------------- */

double ns_act_phi(ns_act_kind act, double u)
{
    switch (act) {
    case NS_ACT_GELU:
        return 0.5 * u * (1 + tanh(GELU_K * (u + GELU_C * u * u * u)));
    case NS_ACT_RELU:
        return u > 0 ? u : 0;
    case NS_ACT_LINEAR:
        return u;
    }
    return NAN;
}

double ns_act_dphi(ns_act_kind act, double u)
{
    switch (act) {
    case NS_ACT_GELU: {
        double t = tanh(GELU_K * (u + GELU_C * u * u * u));
        return 0.5 * (1 + t) + 0.5 * u * (1 - t * t) * GELU_K * (1 + 3 * GELU_C * u * u);
    }
    case NS_ACT_RELU:
        return u > 0 ? 1 : 0; /* relu'(0) = 0, as the backward in ops_act.c */
    case NS_ACT_LINEAR:
        return 1;
    }
    return NAN;
}

static int act_valid(ns_act_kind act)
{
    return act == NS_ACT_GELU || act == NS_ACT_RELU || act == NS_ACT_LINEAR;
}

/* ---- generic expectations ------------------------------------------------------------------ */

double ns_gauss_expect(ns_gauss_fn f, void *ctx, double s)
{
    if (!f || !(s >= 0) || !isfinite(s) || !tables_ready())
        return NAN;
    if (s == 0)
        return f(0, ctx);
    double sd = sqrt(s), sum = 0;
    /* pieces [-Z, 0] and [0, Z]; each node mirrored gives both */
    for (int i = 0; i < N1; i++) {
        double z = Z_MAX * gl1_x[i];
        double w = Z_MAX * gl1_w[i] * INV_SQRT_2PI * exp(-0.5 * z * z);
        sum += w * (f(sd * z, ctx) + f(-sd * z, ctx));
    }
    return sum;
}

/* sorted angular breakpoints of [0, 2pi]: the rays where u1 = 0 or u2 = 0 */
static int angle_breaks(double t0, double *br)
{
    double cand[4] = {0.5 * PI, 1.5 * PI, t0 + 0.5 * PI, t0 + 1.5 * PI};
    int n = 0;
    br[n++] = 0;
    for (int i = 0; i < 4; i++) {
        double a = cand[i] >= 2 * PI ? cand[i] - 2 * PI : cand[i];
        if (a > 0 && a < 2 * PI)
            br[n++] = a;
    }
    br[n++] = 2 * PI;
    for (int i = 1; i < n; i++) /* insertion sort of at most 6 values */
        for (int j = i; j > 0 && br[j] < br[j - 1]; j--) {
            double tmp = br[j];
            br[j] = br[j - 1];
            br[j - 1] = tmp;
        }
    return n;
}

double ns_gauss_expect2(ns_gauss_fn f, void *fctx, ns_gauss_fn g, void *gctx, double s,
                        double rho)
{
    if (!f || !g || !(s >= 0) || !isfinite(s) || !(rho >= -1 && rho <= 1) || !tables_ready())
        return NAN;
    if (s == 0)
        return f(0, fctx) * g(0, gctx);
    double sd = sqrt(s), t0 = acos(rho), br[6];
    /* the radial weight r exp(-r^2/2) on the radial nodes, shared by every angle */
    double rr[NR], rw[NR];
    for (int k = 0; k < NR; k++) {
        rr[k] = Z_MAX * glr_x[k];
        rw[k] = Z_MAX * glr_w[k] * rr[k] * exp(-0.5 * rr[k] * rr[k]);
    }
    int nb = angle_breaks(t0, br);
    double total = 0;
    for (int p = 0; p + 1 < nb; p++) {
        double a = br[p], len = br[p + 1] - br[p];
        if (!(len > 0))
            continue; /* rho = +-1 makes two rays coincide */
        double piece = 0;
        for (int i = 0; i < NT; i++) {
            double t = a + len * glt_x[i];
            double c1 = sd * cos(t), c2 = sd * cos(t - t0), radial = 0;
            for (int k = 0; k < NR; k++)
                radial += rw[k] * f(c1 * rr[k], fctx) * g(c2 * rr[k], gctx);
            piece += len * glt_w[i] * radial;
        }
        total += piece;
    }
    return total / (2 * PI);
}

/* ---- the activation's expectations --------------------------------------------------------- */

static double fn_phi(double u, void *ctx) { return ns_act_phi(*(const ns_act_kind *)ctx, u); }
static double fn_dphi(double u, void *ctx) { return ns_act_dphi(*(const ns_act_kind *)ctx, u); }
static double fn_phi2(double u, void *ctx)
{
    double v = ns_act_phi(*(const ns_act_kind *)ctx, u);
    return v * v;
}
static double fn_dphi2(double u, void *ctx)
{
    double v = ns_act_dphi(*(const ns_act_kind *)ctx, u);
    return v * v;
}

double ns_gauss_phi(ns_act_kind act, double s)
{
    return act_valid(act) ? ns_gauss_expect(fn_phi, &act, s) : NAN;
}

double ns_gauss_phi2(ns_act_kind act, double s)
{
    return act_valid(act) ? ns_gauss_expect(fn_phi2, &act, s) : NAN;
}

double ns_gauss_dphi2(ns_act_kind act, double s)
{
    return act_valid(act) ? ns_gauss_expect(fn_dphi2, &act, s) : NAN;
}

double ns_gauss_kernel(ns_act_kind act, double s, double rho)
{
    return act_valid(act) ? ns_gauss_expect2(fn_phi, &act, fn_phi, &act, s, rho) : NAN;
}

double ns_gauss_dkernel(ns_act_kind act, double s, double rho)
{
    return act_valid(act) ? ns_gauss_expect2(fn_dphi, &act, fn_dphi, &act, s, rho) : NAN;
}

/* ---- the Transformer theory's rules (theory_internal.h): the same GSL tables --------------- */
void ns_tf_gauss_legendre(int n, const double **x, const double **w)
{
    tables_ready();
    *x = n == 32 ? gl32_x : n == 48 ? gl48_x : n == 64 ? gl64_x : NULL;
    *w = n == 32 ? gl32_w : n == 48 ? gl48_w : n == 64 ? gl64_w : NULL;
}

int ns_tf_quadrature_ready(void) { return tables_ready(); }

/* ---- cubic Lagrange interpolation in tabulated functions (theory_internal.h) ---------------- */
void ns_tf_lagrange4(const double *v, int n, double x, double *a, double *b)
{
    int k0 = (int)floor(x) - 1;
    k0 = k0 < 0 ? 0 : k0 > n - 4 ? n - 4 : k0;
    double f = x - k0;
    *a = *b = 0;
    for (int i = 0; i < 4; i++) {
        double w = 1;
        for (int j = 0; j < 4; j++)
            if (j != i)
                w *= (f - j) / (double)(i - j);
        *a += w * v[k0 + i];
        *b += w * v[n + k0 + i];
    }
}
