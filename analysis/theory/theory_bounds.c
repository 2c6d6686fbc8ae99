/* theory_bounds.c: closed forms for the depth dependence (analysis/theory/README.md,
 * section 3). LayerNorm Scaling, ReZero and T-Fixup are evaluated by the scalar recursion of q
 * (exact; their relu and linear closed forms are in the README's table).
 *
 * These need no recursion over the token kernel: the mean square of the stream and the gradient
 * do not depend on the token correlation, and for PreNorm, PostNorm and SpanNorm the branch sees
 * a variance known in closed form at every block (1 after a norm; q0 + l alpha^2 for SpanNorm),
 * so q_L and p_0/p_L are sums and products of 1-D Gaussian expectations. Where the product
 * telescopes into a ratio of Gamma functions it is evaluated as one (gsl_sf_lngamma), so the
 * dependence on L is explicit. Derivations: analysis/theory/README.md, section 3. */
#include "theory.h"

#include <math.h>

#include <gsl/gsl_sf_gamma.h>

/* prod_{k=0}^{n-1} (x + k)/(y + k) = G(x + n) G(y) / (G(x) G(y + n)), for x, y > 0 */
static int gamma_ratio(int n, double x, double y, double *out)
{
    gsl_sf_result r1, r2, r3, r4;
    if (!(x > 0) || !(y > 0) || gsl_sf_lngamma_e(x + n, &r1) || gsl_sf_lngamma_e(y, &r2) ||
        gsl_sf_lngamma_e(x, &r3) || gsl_sf_lngamma_e(y + n, &r4))
        return NS_ERR_NUMERIC;
    *out = exp(r1.val + r2.val - r3.val - r4.val);
    return NS_OK;
}

/* prod_{l=0}^{L-1} (1 + b/(a + l)) = G(L + a + b) G(a) / (G(a + b) G(L + a)), for a > 0, b >= 0 */
static int gamma_product(int L, double a, double b, double *out)
{
    gsl_sf_result r1, r2, r3, r4;
    /* positive arguments: gsl_sf_lngamma_e cannot hit its domain errors, so the GSL error
     * handler is never invoked */
    if (!(a > 0) || !(b >= 0) || gsl_sf_lngamma_e(L + a + b, &r1) || gsl_sf_lngamma_e(a, &r2) ||
        gsl_sf_lngamma_e(a + b, &r3) || gsl_sf_lngamma_e(L + a, &r4))
        return NS_ERR_NUMERIC;
    *out = exp(r1.val + r2.val - r3.val - r4.val);
    return NS_OK;
}

int ns_theory_bounds_mlp(const ns_theory_input *in, ns_theory_bounds *b)
{
    if (!b)
        return NS_ERR_INVALID;
    *b = (ns_theory_bounds){.act_ms_L = NAN, .act_ms_L_lower = NAN, .grad_ratio = NAN,
                            .grad_ratio_upper = NAN};
    ns_theory_form kind;
    int status = ns_theory_validate(in, &kind);
    if (status)
        return status;
    const int L = in->depth;
    const double a = in->alpha, a2 = a * a, q0 = in->q0;
    /* the d -> infinity forms at any width: the O(1/d) correction is ns_theory_finite_grad's
     * recursion (analysis/theory/README.md, section 10) */
    /* the branch's moments when its input has unit mean square (after a gain-1 norm) */
    const double e1 = ns_gauss_phi2(in->act, 1.0), d1 = ns_gauss_dphi2(in->act, 1.0);
    if (!isfinite(e1) || !isfinite(d1))
        return NS_ERR_NUMERIC;
    switch (kind) {
    case NS_THEORY_PRE: {
        /* q_l = q0 + l s, and block l+1 scales p by 1 + c/q_l */
        double s = a2 * e1, c = a2 * d1;
        b->act_ms_L = b->act_ms_L_lower = q0 + L * s;
        b->act_ms_exact = 1;
        status = gamma_product(L, q0 / s, c / s, &b->grad_ratio);
        b->grad_ratio_upper = b->grad_ratio;
        b->grad_exact = 1;
        break;
    }
    case NS_THEORY_POST: {
        /* every norm output has mean square 1; block 1 sees q0, the others 1 */
        double e0 = ns_gauss_phi2(in->act, q0), d0 = ns_gauss_dphi2(in->act, q0);
        if (!isfinite(e0) || !isfinite(d0))
            return NS_ERR_NUMERIC;
        double r1 = (1 + a2 * d0) / (q0 + a2 * e0), r = (1 + a2 * d1) / (1 + a2 * e1);
        b->act_ms_L = b->act_ms_L_lower = 1.0;
        b->act_ms_exact = 1;
        b->grad_ratio = b->grad_ratio_upper = r1 * pow(r, L - 1);
        b->grad_exact = 1;
        break;
    }
    case NS_THEORY_SPAN: {
        /* q_l = q0 + l alpha^2 at any width; block l+1 scales p by 1 + alpha^2 E[phi'^2]/E[phi^2]
         * at u ~ N(0, q_l). For relu and linear the ratio is 1/q_l: a Gamma ratio. */
        b->act_ms_L = b->act_ms_L_lower = q0 + L * a2;
        b->act_ms_exact = 1;
        b->grad_exact = 1;
        if (in->act == NS_ACT_RELU || in->act == NS_ACT_LINEAR) {
            status = gamma_product(L, q0 / a2, 1.0, &b->grad_ratio);
            b->grad_ratio_upper = exp(L * a2 / q0);
            break;
        }
        double prod = 1, worst = 0;
        for (int l = 0; l < L; l++) {
            double q = q0 + l * a2, e = ns_gauss_phi2(in->act, q), d = ns_gauss_dphi2(in->act, q);
            if (!isfinite(e) || !isfinite(d) || !(e > 0))
                return NS_ERR_NUMERIC;
            prod *= 1 + a2 * d / e;
            worst = fmax(worst, d / e);
        }
        b->grad_ratio = prod;
        b->grad_ratio_upper = exp(L * a2 * worst);
        break;
    }
    case NS_THEORY_SPAN_WRAPPED:
        /* q' = q + alpha^2 + 2 alpha q / sqrt(q + E[phi^2]): the cross term is positive and at most
         * 2 alpha sqrt(q), so q + alpha^2 <= q' <= (sqrt(q) + alpha)^2 */
        b->act_ms_L_lower = q0 + L * a2;
        b->act_ms_L = pow(sqrt(q0) + L * a, 2);
        b->act_ms_exact = 0;
        /* No closed form: the gain depends on q_l, which has none. For relu and linear
         * (E[phi^2] = c q, E[phi'^2] = c) the gain 1 + 2 alpha/sqrt(q_v) + alpha^2/q equals
         * q_{l+1}/q_l, so p_0/p_L = q_L/q0 <= the upper bound on q_L over q0. */
        b->grad_exact = 0;
        if (in->act == NS_ACT_RELU || in->act == NS_ACT_LINEAR)
            b->grad_ratio_upper = b->act_ms_L / q0;
        break;
    case NS_THEORY_SANDWICH: {
        /* q_l = q0 + l alpha^2 (the output norm fixes the increment); block l+1 scales p by
         * 1 + alpha^2 (E[phi'^2]/E[phi^2] at u ~ N(0,1)) / q_l: a Gamma ratio */
        b->act_ms_L = b->act_ms_L_lower = q0 + L * a2;
        b->act_ms_exact = 1;
        status = gamma_product(L, q0 / a2, d1 / e1, &b->grad_ratio);
        b->grad_ratio_upper = b->grad_ratio;
        b->grad_exact = 1;
        break;
    }
    case NS_THEORY_DEEPNORM: {
        /* q_l = 1 for l >= 1; the branch sees b^2 q: b^2 q0 in block 1, b^2 after */
        double A2 = sqrt(2.0 * L), b2 = 1 / sqrt(8.0 * L), r[2];
        for (int i = 0; i < 2; i++) {
            double q = i ? 1.0 : q0, e = ns_gauss_phi2(in->act, b2 * q),
                   d = ns_gauss_dphi2(in->act, b2 * q);
            if (!isfinite(e) || !isfinite(d))
                return NS_ERR_NUMERIC;
            r[i] = (A2 + a2 * b2 * b2 * d) / (A2 * q + a2 * b2 * e);
        }
        b->act_ms_L = b->act_ms_L_lower = 1.0;
        b->act_ms_exact = 1;
        b->grad_ratio = b->grad_ratio_upper = r[0] * pow(r[1], L - 1);
        b->grad_exact = 1;
        break;
    }
    case NS_THEORY_ADMIN: {
        /* q_l = 1 for l >= 1; block 1 is PostNorm's (w_1 = 1); block l >= 2 scales p by
         * (w_l^2 + c)/(w_l^2 + s), w_l^2 = W + (l - 2) s, c = alpha^2 E[phi'^2], s = alpha^2
         * E[phi^2] at u ~ N(0,1): with k = l - 2, (x + k)/(y + k), a Gamma ratio */
        double e0 = ns_gauss_phi2(in->act, q0), d0 = ns_gauss_dphi2(in->act, q0);
        if (!isfinite(e0) || !isfinite(d0))
            return NS_ERR_NUMERIC;
        double s = a2 * e1, c = a2 * d1, W = q0 + a2 * e0, rest = NAN;
        status = gamma_ratio(L - 1, (W + c) / s, W / s + 1, &rest);
        b->act_ms_L = b->act_ms_L_lower = 1.0;
        b->act_ms_exact = 1;
        b->grad_ratio = b->grad_ratio_upper = (1 + a2 * d0) / (q0 + a2 * e0) * rest;
        b->grad_exact = 1;
        break;
    }
    case NS_THEORY_SUBLN: {
        /* PreNorm's Gamma ratio with s = g^2 alpha^2 (the mid norm fixes the branch's mean
         * square) and c = s g^2 E[phi'^2]/var at u ~ N(0, g^2), g^2 = log(2L), var the hidden
         * units' variance (LayerNorm) or mean square (RMSNorm) that Nm divides by */
        double g2 = log(2.0 * L), e = ns_gauss_phi2(in->act, g2), d = ns_gauss_dphi2(in->act, g2);
        double m = in->norm == NS_NORM_LAYERNORM ? ns_gauss_phi(in->act, g2) : 0;
        if (!isfinite(e) || !isfinite(d) || !isfinite(m) || !(e - m * m > 0))
            return NS_ERR_NUMERIC;
        double s = g2 * a2, c = s * g2 * d / (e - m * m);
        b->act_ms_L = b->act_ms_L_lower = q0 + L * s;
        b->act_ms_exact = 1;
        status = gamma_product(L, q0 / s, c / s, &b->grad_ratio);
        b->grad_ratio_upper = b->grad_ratio;
        b->grad_exact = 1;
        break;
    }
    case NS_THEORY_LNS:
    case NS_THEORY_REZERO:
    case NS_THEORY_TFIXUP: {
        /* q alone: q_l = q_{l-1} + m E[phi^2](s_l), and block l scales p by
         * 1 + m t E[phi'^2](s_l) / (q_{l-1} if the branch input is normalized), with
         * lns: s_l = 1/l, m = alpha^2, t = 1/l; rezero: s_l = q_{l-1}, m = w^2 alpha^2, t = 1;
         * tfixup: s_l = c^2 q_{l-1}, m = alpha^2 c^2, t = c^2. Closed for relu and linear
         * (README section 3): a harmonic sum (lns) or a geometric growth (rezero, tfixup). */
        double c2 = 1 / sqrt(9.0 * L), q = q0, prod = 1;
        for (int l = 1; l <= L; l++) {
            double s = kind == NS_THEORY_LNS ? 1.0 / l : kind == NS_THEORY_REZERO ? q : c2 * q;
            double m = kind == NS_THEORY_REZERO ? in->gate * in->gate * a2
                       : kind == NS_THEORY_TFIXUP ? a2 * c2
                                                  : a2;
            double t = kind == NS_THEORY_LNS ? s / q : kind == NS_THEORY_TFIXUP ? c2 : 1.0;
            double e = ns_gauss_phi2(in->act, s), d = ns_gauss_dphi2(in->act, s);
            if (!isfinite(e) || !isfinite(d))
                return NS_ERR_NUMERIC;
            prod *= 1 + m * t * d;
            q += m * e;
        }
        b->act_ms_L = b->act_ms_L_lower = q;
        b->act_ms_exact = 1;
        b->grad_ratio = b->grad_ratio_upper = prod;
        b->grad_exact = 1;
        break;
    }
    case NS_THEORY_DSLM: {
        /* q_l = lambda^2 q_{l-1} + beta^2 s, s = alpha^2 (the init puts the branch at alpha^2):
         * q_L = s + lambda^(2L) (q0 - s), between q0 and s whatever L; block l scales p by
         * lambda^2 + beta^2 c/q_{l-1}, c = alpha^2 E[phi'^2]/E[phi^2] at u ~ N(0,1). At q0 = s
         * the product is (1 + (c/s - 1)/L)^L -> exp(c/s - 1) (README section 2.17) */
        double B2 = 1.0 / L, l2 = 1 - B2, u2 = 1 / ns_act_unit_ms(in->act);
        double s = a2 * u2 * e1, c = a2 * u2 * d1;
        double q = q0, prod = 1;
        for (int l = 1; l <= L; l++) {
            prod *= l2 + B2 * c / q;
            q = l2 * q + B2 * s;
        }
        b->act_ms_L = b->act_ms_L_lower = s + pow(l2, L) * (q0 - s);
        b->act_ms_exact = 1;
        b->grad_ratio = b->grad_ratio_upper = prod;
        b->grad_exact = 1;
        break;
    }
    case NS_THEORY_RESIDUAL: {
        /* The main stream is PostNorm's; the dual stream r gains B_l = alpha^2 E[phi^2] per
         * block, and X_l = x_l.r_l/d obeys X_l = (X_{l-1} + B_l)/sqrt(s_l), s_l = q_{l-1} + B_l:
         * after block 1 (X_1 = sqrt(s_1)) geometric, ratio c = 1/sqrt(1 + B), towards
         * X* = 1 + sqrt(1 + B). The output y = x_L + Nf(r_L): q_L = 2 + 2 X_L/sqrt(R_L),
         * R_L = q0 + B_1 + (L - 1) B. */
        double e0 = ns_gauss_phi2(in->act, q0), d0 = ns_gauss_dphi2(in->act, q0);
        if (!isfinite(e0) || !isfinite(d0))
            return NS_ERR_NUMERIC;
        double B1 = a2 * e0, s1 = q0 + B1, B = a2 * e1, s = 1 + B, c = 1 / sqrt(s);
        double Xs = 1 + sqrt(s), XL = Xs + (sqrt(s1) - Xs) * pow(c, L - 1);
        double RL = q0 + B1 + (L - 1) * B;
        b->act_ms_L = b->act_ms_L_lower = 2 + 2 * XL / sqrt(RL);
        b->act_ms_exact = 1;
        /* p_0/p_L: the main gradient P and its overlap K with dLoss/dr (ms D = 1/R_L) from the
         * top, P <- P (1 + chi)/s + chi (D + 2 K/sqrt(s)), K <- K/sqrt(s); block 1 also passes
         * dLoss/dr to x_0 (README section 2.14) */
        double D = 1 / RL, P = 1, K = 1 / sqrt(RL);
        for (int l = L; l >= 1; l--) {
            double sl = l == 1 ? s1 : s, chi = a2 * (l == 1 ? d0 : d1);
            double Pv = P / sl, Kv = K / sqrt(sl);
            P = Pv + chi * (Pv + D + 2 * Kv) + (l == 1 ? D + 2 * Kv : 0);
            K = Kv + (l == 1 ? D : 0);
        }
        b->grad_ratio = b->grad_ratio_upper = P;
        b->grad_exact = 1;
        break;
    }
    default:
        return NS_ERR_INVALID;
    }
    return status;
}

int ns_theory_bound_act_ms(const ns_theory_input *in, double *q_L_bound)
{
    ns_theory_bounds b;
    int status = q_L_bound ? ns_theory_bounds_mlp(in, &b) : NS_ERR_INVALID;
    if (status == NS_OK)
        *q_L_bound = b.act_ms_L;
    return status;
}

int ns_theory_bound_grad_ratio(const ns_theory_input *in, double *p0_over_pL)
{
    ns_theory_bounds b;
    int status = p0_over_pL ? ns_theory_bounds_mlp(in, &b) : NS_ERR_INVALID;
    if (status == NS_OK && !b.grad_exact)
        status = NS_ERR_INVALID;
    if (status == NS_OK)
        *p0_over_pL = b.grad_ratio;
    return status;
}
