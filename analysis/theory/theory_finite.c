/* theory_finite.c: the O(1/d) finite-width correction of the gradient mean square p_l of
 * residual MLP stacks (PreNorm, PostNorm, SpanNorm, Sandwich, LayerNorm Scaling; wrapped
 * SpanNorm's is theory_finite_wrapped.c, DeepNorm's and Admin's theory_finite_post.c,
 * DeepScaleLM's theory_finite_pre.c, Sub-LN's theory_finite_subln.c, ReZero's and T-Fixup's
 * theory_finite_nonorm.c), the Gaussian moments it needs, and the pieces the others share
 * (ns_theory_post_terms_scaled, ns_theory_pre_chain).
 *
 * The d -> infinity recursion (theory_mlp.c) treats a token's squared norm |x_l|^2/d as its
 * expectation q_l and a norm's 1/|v|^2 as 1/E|v|^2. At width d both fluctuate by O(1/sqrt(d)),
 * and the gradient's mean square depends on them nonlinearly, so p_l moves by O(1/d): Jensen gaps
 * of 1/|v|^2, the rows a norm's Jacobian projects out (the radial one is the most amplified
 * direction of the branch's Jacobian, so removing it costs more than 1/d of the mean square), the
 * finite hidden width H = r d, and, for PreNorm and SpanNorm, the persistence of a token's norm
 * from block to block. analysis/theory/README.md, section 10, derives every formula below and
 * compares it with simulation.
 *
 * Expectations at u ~ N(0, s) are theory_gauss.c's rules (split at u = 0, so relu's jumps are
 * integrated exactly). Derivatives in s are taken under the Gaussian, not by finite differences:
 * d/ds N(u; 0, s) = N (u^2 - s)/(2 s^2) and d^2/ds^2 N = N (u^4 - 6 s u^2 + 3 s^2)/(4 s^4), so
 * they are integrals of the same kind, exact for relu's step phi'. */
#include "theory_internal.h"

#include <math.h>
#include <stdlib.h>

/* which integrand: the products the moments need, each optionally times a Hermite weight */
typedef enum { M_PHI2, M_DPHI2, M_PHI4, M_PHI2DPHI2, M_UPHIDPHI, M_DPHI2U2 } moment_kind;

typedef struct {
    ns_act_kind act;
    moment_kind kind;
    int deriv; /* 0, 1 or 2: the s-derivative of the Gaussian density as a weight */
    double s;
} moment_ctx;

static double moment_fn(double u, void *vctx)
{
    const moment_ctx *c = vctx;
    double p = ns_act_phi(c->act, u), dp = ns_act_dphi(c->act, u), v;
    switch (c->kind) {
    case M_PHI2: v = p * p; break;
    case M_DPHI2: v = dp * dp; break;
    case M_PHI4: v = p * p * p * p; break;
    case M_PHI2DPHI2: v = p * p * dp * dp; break;
    case M_UPHIDPHI: v = u * p * dp; break;
    default: v = dp * dp * u * u; break;
    }
    double s = c->s, u2 = u * u;
    if (c->deriv == 1)
        v *= (u2 - s) / (2 * s * s);
    else if (c->deriv == 2)
        v *= (u2 * u2 - 6 * s * u2 + 3 * s * s) / (4 * s * s * s * s);
    return v;
}

static double moment(ns_act_kind act, moment_kind kind, int deriv, double s)
{
    moment_ctx c = {.act = act, .kind = kind, .deriv = deriv, .s = s};
    return ns_gauss_expect(moment_fn, &c, s);
}

int ns_gauss_moments_at(ns_act_kind act, double s, ns_gauss_moments *m)
{
    if (!m || !(s > 0) || !isfinite(s) ||
        (act != NS_ACT_GELU && act != NS_ACT_RELU && act != NS_ACT_LINEAR))
        return NS_ERR_INVALID;
    m->phi2 = moment(act, M_PHI2, 0, s);
    m->dphi2 = moment(act, M_DPHI2, 0, s);
    m->phi4 = moment(act, M_PHI4, 0, s);
    m->phi2_dphi2 = moment(act, M_PHI2DPHI2, 0, s);
    m->u_phi_dphi = moment(act, M_UPHIDPHI, 0, s);
    m->dphi2_u2 = moment(act, M_DPHI2U2, 0, s);
    m->phi2_ds = moment(act, M_PHI2, 1, s);
    m->phi2_ds2 = moment(act, M_PHI2, 2, s);
    m->dphi2_ds = moment(act, M_DPHI2, 1, s);
    m->dphi2_ds2 = moment(act, M_DPHI2, 2, s);
    /* every field is a double (theory.h), so the struct reads as an array */
    _Static_assert(sizeof(ns_gauss_moments) == 10 * sizeof(double), "ten moments");
    const double *v = &m->phi2;
    for (int i = 0; i < 10; i++)
        if (!isfinite(v[i]))
            return NS_ERR_NUMERIC;
    return NS_OK;
}

int ns_theory_post_terms(const ns_theory_input *in, double r, int ell, ns_post_terms *pt)
{
    return ns_theory_post_terms_scaled(in->act, in->alpha * in->alpha, 1.0, r, ell, pt);
}

int ns_theory_post_terms_scaled(ns_act_kind act, double a2, double v, double r, int ell,
                                ns_post_terms *pt)
{
    ns_gauss_moments m;
    int st = ns_gauss_moments_at(act, v, &m);
    if (st)
        return st;
    /* W1 with variance v/d is a unit branch of phi_v(u) = phi(sqrt(v) u): each phi' brings a
     * sqrt(v), each s-derivative a v (u phi phi', u^2 phi'^2, phi^4 keep their values) */
    m.dphi2 *= v, m.phi2_dphi2 *= v, m.phi2_ds *= v, m.phi2_ds2 *= v * v;
    m.dphi2_ds *= v * v, m.dphi2_ds2 *= v * v * v;
    const double a4 = a2 * a2;
    const double s = a2 * m.phi2, chi = a2 * m.dphi2, s1 = a2 * m.u_phi_dphi;
    const double kappa = m.phi4 / (m.phi2 * m.phi2) - 1;
    const double m4 = a4 * m.phi2_dphi2, cda = a4 * (m.phi2_dphi2 - m.phi2 * m.dphi2);
    const double chi2 = a2 * (m.dphi2_u2 - m.dphi2);
    const double e2 = a2 * (m.dphi2_u2 - 2 * m.u_phi_dphi + m.phi2); /* E[(u phi' - phi)^2] */
    const double qv = 1 + s, g = 1 + chi;
    /* E|(I + J_F)^T vhat|^2: the radial row the norm removes, amplified by the branch */
    const double cperp = g + (2 * s1 + s1 * s1 + m4 / r) / qv;
    pt->a_pi = (chi2 - cperp - ell * g) / g + ell * s / qv - cda / (r * qv * g) +
               (4 * s + 2 * s * s + s * s * kappa / r) / (qv * qv);
    pt->a_tau = pt->a_pi + 1 + ell - (e2 + ell * chi) / g;
    /* f(n) = (1 + a^2 E[phi'^2]) / (n + a^2 E[phi^2]) at input mean square n: x_0's n has
     * variance 2/d, so its average adds f''(1)/d */
    const double N0 = 1 + chi, N1 = a2 * m.dphi2_ds, N2 = a2 * m.dphi2_ds2;
    const double Q0 = qv, Q1 = 1 + a2 * m.phi2_ds, Q2 = a2 * m.phi2_ds2;
    const double f2 = N2 / Q0 - 2 * N1 * Q1 / (Q0 * Q0) - N0 * Q2 / (Q0 * Q0) +
                      2 * N0 * Q1 * Q1 / (Q0 * Q0 * Q0);
    pt->gain = g / qv; /* the d -> infinity gain */
    /* x_0 is not centered, so LayerNorm's centering of the first block's v is not free */
    pt->a_pi0 = pt->a_pi + ell / qv + f2 / pt->gain;
    return NS_OK;
}

/* PostNorm, y = N(x + F(x)). The stream after a norm has |x|^2 = d exactly and everything
 * downstream is rotation invariant (about 1 for LayerNorm), so the gradient's conditional
 * covariance is isotropic on the directions the next norm lets through, and p_l reduces exactly
 * to one-block averages: p_{L-1} = pi, p_l = pi tau^(L-1-l), p_0 = pi0 tau^(L-1), with pi the
 * mean square a block passes to an isotropic cotangent, tau the same restricted to directions
 * orthogonal to x (and 1), and pi0 the first block's, whose input x_0 is neither normalized nor
 * centered. Section 10.2. */
static int post_grad(const ns_theory_input *in, double d, double r, int ell, double *p)
{
    ns_post_terms pt;
    int st = ns_theory_post_terms(in, r, ell, &pt);
    if (st)
        return st;
    /* each factor's relative O(1/d) coefficient; every factor is linear in 1/d (multiplying the
     * expansions out, e.g. tau = pi (1 + b/d), adds O(1/d^2) terms of no particular sign that
     * measurably worsen the prediction at d = 64) */
    const double pi = pt.gain * (1 + pt.a_pi / d), tau = pt.gain * (1 + pt.a_tau / d);
    const double pi0 = pt.gain * (1 + pt.a_pi0 / d);
    const int L = in->depth;
    p[L] = 1;
    for (int l = L - 1; l >= 1; l--)
        p[l] = l == L - 1 ? pi : p[l + 1] * tau;
    p[0] = pi0 * pow(tau, L - 1);
    return NS_OK;
}

/* the scalars of the PreNorm and SpanNorm backward recursions, per block (section 10.3) */
typedef struct {
    double t, lam, S, rho, c, V, q;
} bstate;

/* PreNorm, y = x + F(N(x)): the branch always sees unit mean square, the stream's
 * q_l = q0 + l s. The token's n_l = |x_l|^2/d fluctuates around q_l with variance V_l/d and
 * persists, so the gradient's conditional covariance is t_l(n) P + rho_l(n) xhat xhat^T;
 * expanding t_l to second order in n - q_l gives the lam (first derivative over t) and M (second)
 * terms, and rho_l - t_l the radial excess, which the next block's norm and branch mix back.
 * LayerNorm Scaling, y = x + F(N(x)/sqrt(l)), is the same block with W1's variance scaled by
 * v_l = 1/l: the branch's moments are taken at variance v_l, and every term with a factor of J_F
 * (chi, m4, c) carries v_l (section 10.7). pre_chain runs the recursion over a chain of
 * branches, each with its own moments (ns_pre_branch), and fills b[0..n]. */
static void pre_chain(const ns_pre_branch *br, int n, double q0, double v0, bstate *b)
{
    /* q_l, and d Var n_l: the input's v0 (2 q0^2 for i.i.d. N(0, q0)), then each block's
     * 4 s q_l + 2 s^2 + s^2 kappa/r */
    b[0].V = v0;
    double q = q0;
    for (int l = 0; l < n; l++) {
        const ns_pre_branch *k = &br[l];
        b[l].q = q;
        b[l + 1].V = b[l].V + 4 * k->s * q + 2 * k->s * k->s + k->s * k->s * k->kappa / k->r;
        q += k->s;
    }
    b[n].t = 1, b[n].lam = 0, b[n].S = 0, b[n].rho = 1, b[n].c = 0, b[n].q = q;
    for (int l = n - 1; l >= 0; l--) {
        const ns_pre_branch *k = &br[l];
        const double s = k->s, chi = k->chi, r = k->r, qc = b[l].q, qn = b[l + 1].q,
                     h = chi / qc;
        const bstate *u = &b[l + 1];
        bstate *x = &b[l];
        x->t = u->t * (1 + h);
        x->lam = u->lam - chi / (qc * (qc + chi));
        x->S = u->S + 1 / (qc * qc) - 1 / ((qc + chi) * (qc + chi));
        x->rho = (s * u->t + qc * u->rho) / qn;
        const double w = 2 * s * s + s * s * k->kappa / r; /* plus 4 s q_l: d Var n_l's growth */
        const double Mn = u->lam * u->lam + u->S, Rn = u->rho / u->t;
        x->c = u->c +
               ((Rn - 1) * (s / qn + h + k->m4 / (r * qc * qn)) + u->lam * k->cda / (r * qc) +
                h * k->mid / r) /
                   (1 + h) +
               0.5 * Mn * (4 * s * qc + w);
    }
}

/* p_l / t_l: the O(1/d) factor of a chain's gradient mean square over its d -> infinity value */
static double pre_factor(const bstate *b, double d)
{
    const double M = b->lam * b->lam + b->S, R = b->rho / b->t;
    return 1 + (b->c + 0.5 * M * b->V + R - 1) / d;
}

ns_pre_branch ns_pre_branch_of(const ns_gauss_moments *m, double a2, double v, double r)
{
    return (ns_pre_branch){.s = a2 * m->phi2, .chi = a2 * m->dphi2 * v,
                           .kappa = m->phi4 / (m->phi2 * m->phi2) - 1,
                           .m4 = a2 * a2 * m->phi2_dphi2 * v,
                           .cda = a2 * a2 * (m->phi2_dphi2 - m->phi2 * m->dphi2) * v, .r = r};
}

int ns_theory_pre_chain(const ns_pre_branch *br, int n, double q0, double v0, double d,
                        double *factor, double *radial)
{
    bstate *b = malloc(((size_t)n + 1) * sizeof *b);
    if (!b)
        return NS_ERR_NOMEM;
    pre_chain(br, n, q0, v0, b);
    for (int l = 0; l <= n; l++) {
        factor[l] = pre_factor(&b[l], d);
        if (radial)
            radial[l] = b[l].rho / b[l].t - 1;
    }
    free(b);
    return NS_OK;
}

int ns_theory_pre_chain_scale(const ns_pre_branch *br, const ns_theory_input *in, double *p)
{
    const int L = in->depth;
    double *factor = malloc(((size_t)L + 1) * sizeof *factor);
    if (!factor)
        return NS_ERR_NOMEM;
    int st = ns_theory_pre_chain(br, L, in->q0, 2 * in->q0 * in->q0, in->width, factor, NULL);
    if (st == NS_OK)
        for (int l = 0; l <= L; l++)
            p[l] *= factor[l];
    free(factor);
    return st;
}

static int pre_grad(const ns_theory_input *in, double d, double r, int lns, double *p, bstate *b)
{
    const int L = in->depth;
    const double a2 = in->alpha * in->alpha;
    ns_pre_branch *br = calloc((size_t)L, sizeof *br);
    if (!br)
        return NS_ERR_NOMEM;
    ns_gauss_moments m;
    int st = NS_OK;
    for (int l = 0; l < L && st == NS_OK; l++) {
        const double v = lns ? 1.0 / (l + 1) : 1.0; /* block l + 1's branch input variance */
        if ((lns || l == 0) && (st = ns_gauss_moments_at(in->act, v, &m)) != NS_OK)
            break;
        br[l] = ns_pre_branch_of(&m, a2, v, r);
    }
    if (st == NS_OK) {
        pre_chain(br, L, in->q0, 2 * in->q0 * in->q0, b);
        for (int l = 0; l <= L; l++)
            p[l] = b[l].t * pre_factor(&b[l], d);
    }
    free(br);
    return st;
}

/* SpanNorm, y = x + alpha N(F(x)): the branch sees the stream itself, q_l = q0 + l alpha^2, so
 * the block's gain 1 + gamma(n), gamma = alpha^2 E[phi'^2]/E[phi^2] at variance n, depends on
 * the token's norm (its n-derivatives enter as lam and M), and the norm's 1/|F|^2 has its own
 * Jensen gap and projected row (eps, e). */
static int span_grad(const ns_theory_input *in, double d, double r, double *p, bstate *b)
{
    const int L = in->depth;
    const double a2 = in->alpha * in->alpha, q0 = in->q0;
    b[L] = (bstate){.t = 1, .lam = 0, .S = 0, .rho = 1, .c = 0};
    for (int l = L - 1; l >= 0; l--) {
        const double q = q0 + l * a2, qn = q + a2;
        ns_gauss_moments m;
        int st = ns_gauss_moments_at(in->act, q, &m);
        if (st)
            return st;
        const double E = m.phi2, D = m.dphi2, E1 = m.phi2_ds, E2 = m.phi2_ds2, D1 = m.dphi2_ds,
                     D2 = m.dphi2_ds2;
        const double g = a2 * D / E;
        const double g1 = a2 * (D1 / E - D * E1 / (E * E));
        const double g2 = a2 * (D2 / E - 2 * D1 * E1 / (E * E) - D * E2 / (E * E) +
                                2 * D * E1 * E1 / (E * E * E));
        const double k2 = m.u_phi_dphi * m.u_phi_dphi;
        const double e = a2 * (m.dphi2_u2 - k2 / E) / (q * E); /* 0 for relu and linear */
        const double eps = m.dphi2_u2 / (q * D) - k2 / (q * E * D) +
                           (m.phi4 / (E * E) - 2 * m.phi2_dphi2 / (E * D)) / r;
        const bstate *u = &b[l + 1];
        bstate *x = &b[l];
        x->t = u->t * (1 + g);
        x->lam = u->lam + g1 / (1 + g);
        x->S = u->S + g2 / (1 + g) - (g1 / (1 + g)) * (g1 / (1 + g));
        x->rho = u->t * (1 + e) + (u->rho - u->t) * q / qn;
        const double Mn = u->lam * u->lam + u->S, Rn = u->rho / u->t;
        x->c = u->c + (g * (1 + eps) - e + (Rn - 1) * (a2 + g * q) / qn) / (1 + g) +
               0.5 * Mn * 4 * a2 * q;
    }
    b[0].V = 2 * q0 * q0;
    for (int l = 0; l < L; l++)
        b[l + 1].V = b[l].V + 4 * a2 * (q0 + l * a2);
    for (int l = 0; l <= L; l++) {
        const double M = b[l].lam * b[l].lam + b[l].S, R = b[l].rho / b[l].t;
        p[l] = b[l].t * (1 + (b[l].c + 0.5 * M * b[l].V + R - 1) / d);
    }
    return NS_OK;
}

/* Sandwich, y = x + alpha No(F(Ni(x))): the branch sees a normalized input (moments at variance
 * 1), No fixes the increment's norm, so q_l = q0 + l alpha^2 and the gain 1 + c0/n,
 * c0 = alpha^2 E[phi'^2]/E[phi^2], depends on the token's n through Ni alone. Given the forward
 * pass, W2 h = P_a W2' h (No's projection makes F.h = 0) and Ni's Jacobian removes the radial row
 * of J_F^T, so the block adds to the cotangent a fresh Gaussian orthogonal to x: the radial part
 * is carried by the skip only. Section 10.7. */
int ns_theory_sandwich_chain(const ns_sandwich_branch *br, int nbr, int n, double a2,
                             double q0, int ell, double d, double *p, double *t)
{
    bstate *b = malloc(((size_t)n + 1) * sizeof *b);
    if (!b)
        return NS_ERR_NOMEM;
    /* t0 with its first two n-derivatives (lam, S hold t0' and t0'' here) */
    b[n] = (bstate){.t = 1, .lam = 0, .S = 0, .rho = 1, .c = 0};
    for (int l = n - 1; l >= 0; l--) {
        const double c0 = br[l % nbr].c0, q = q0 + l * a2, qn = q + a2, g = c0 / q;
        const bstate *u = &b[l + 1];
        bstate *x = &b[l];
        x->c = (1 + g) * u->c + 2 * a2 * q * u->S * (1 + g) +
               u->t * g * (1 + br[l % nbr].jx + ell * q0 / q) +
               (u->rho - u->t) * (a2 + g * q) / qn;
        x->rho = u->t + (u->rho - u->t) * q / qn;
        x->t = (1 + g) * u->t;
        x->lam = -c0 / (q * q) * u->t + (1 + g) * u->lam;
        x->S = 2 * c0 / (q * q * q) * u->t - 2 * c0 / (q * q) * u->lam + (1 + g) * u->S;
    }
    double V = 2 * q0 * q0; /* d Var n_l: x_0 i.i.d. N(0, q0), then 4 alpha^2 q_l per branch */
    for (int l = 0; l <= n; l++) {
        /* LayerNorm: the mean row is carried by the skip alone (both norms remove it), so it
         * keeps the top's 1 */
        p[l] = b[l].t + (0.5 * b[l].S * V + b[l].c + b[l].rho - b[l].t + ell * (1 - b[l].t)) / d;
        if (t)
            t[l] = b[l].t;
        V += 4 * a2 * (q0 + l * a2);
    }
    free(b);
    return NS_OK;
}

ns_sandwich_branch ns_sandwich_branch_of(const ns_gauss_moments *m, double a2, double r)
{
    const double E = m->phi2, D = m->dphi2;
    /* the Jensen gap of No's 1/|F|^2 beyond the chi-square's 2/d: the hidden units' phi^2 and
     * their covariance with phi'^2 */
    return (ns_sandwich_branch){.c0 = a2 * D / E,
                                .jx = (m->phi4 / (E * E) - 2 * m->phi2_dphi2 / (E * D)) / r};
}

static int sandwich_grad(const ns_theory_input *in, double d, double r, int ell, double *p)
{
    ns_gauss_moments m;
    int st = ns_gauss_moments_at(in->act, 1.0, &m);
    if (st)
        return st;
    const ns_sandwich_branch br = ns_sandwich_branch_of(&m, in->alpha * in->alpha, r);
    return ns_theory_sandwich_chain(&br, 1, in->depth, in->alpha * in->alpha, in->q0, ell, d, p,
                                    NULL);
}

int ns_theory_finite_covers(const ns_theory_input *in)
{
    ns_theory_form kind;
    if (in->width <= 0 || in->hidden < 1)
        return 0;
    /* PostNorm blocks below PreNorm blocks (Mix-LN): theory_finite_mix.c */
    if (ns_theory_validate(in, &kind) != NS_OK)
        return in->q0 == 1 && ns_theory_mix_split(in) > 0;
    /* PostNorm's first block is derived for the propagate protocol's input, x_0 ~ N(0, 1) */
    if ((kind == NS_THEORY_DEEPNORM || kind == NS_THEORY_ADMIN) && in->q0 == 1)
        return 1; /* theory_finite_post.c */
    return kind == NS_THEORY_PRE || kind == NS_THEORY_SPAN || kind == NS_THEORY_SPAN_WRAPPED ||
           kind == NS_THEORY_SANDWICH || kind == NS_THEORY_LNS ||
           (kind == NS_THEORY_DSLM && in->depth >= 2) || kind == NS_THEORY_SUBLN ||
           kind == NS_THEORY_REZERO || kind == NS_THEORY_TFIXUP ||
           (kind == NS_THEORY_POST && in->q0 == 1) ||
           (kind == NS_THEORY_RESIDUAL && in->q0 == 1 && in->alpha > 0 &&
            in->depth <= NS_THEORY_RESIDUAL_FINITE_MAX_DEPTH);
}

int ns_theory_finite_grad(const ns_theory_input *in, double *p)
{
    ns_theory_form kind;
    if (!p || !ns_theory_finite_covers(in))
        return NS_ERR_INVALID;
    int m = ns_theory_mix_split(in);
    if (m > 0)
        return ns_theory_finite_mix(in, m, p);
    if (ns_theory_validate(in, &kind) != NS_OK || kind == NS_THEORY_SPAN_WRAPPED)
        return NS_ERR_INVALID;
    if (kind == NS_THEORY_REZERO || kind == NS_THEORY_TFIXUP) /* no norms (section 10.10) */
        return ns_theory_finite_nonorm(in, NULL, p);
    if (kind == NS_THEORY_RESIDUAL)
        return ns_theory_finite_residual(in, p); /* theory_residual.c */
    const double d = in->width, r = (double)in->hidden / in->width;
    const int ell = in->norm == NS_NORM_LAYERNORM; /* LayerNorm also projects out the mean */
    if (kind == NS_THEORY_POST)
        return post_grad(in, d, r, ell, p);
    if (kind == NS_THEORY_DEEPNORM || kind == NS_THEORY_ADMIN)
        return ns_theory_finite_post(in, p);
    if (kind == NS_THEORY_DSLM)
        return ns_theory_finite_dslm(in, p); /* theory_finite_pre.c */
    if (kind == NS_THEORY_SUBLN)
        return ns_theory_finite_subln(in, p);
    /* PreNorm and SpanNorm: LayerNorm's centering and mean-row terms cancel in p_l at O(1/d),
     * so both norms share one recursion (section 10.3), as in LayerNorm Scaling; in Sandwich
     * they do not (10.7) */
    if (kind == NS_THEORY_SANDWICH)
        return sandwich_grad(in, d, r, ell, p);
    bstate *b = malloc(((size_t)in->depth + 1) * sizeof *b);
    if (!b)
        return NS_ERR_NOMEM;
    int st = kind == NS_THEORY_PRE || kind == NS_THEORY_LNS
                 ? pre_grad(in, d, r, kind == NS_THEORY_LNS, p, b)
                 : span_grad(in, d, r, p, b);
    free(b);
    return st;
}
