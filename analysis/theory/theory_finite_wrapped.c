/* theory_finite_wrapped.c: the O(1/d) finite-width correction of wrapped SpanNorm,
 * y = x + alpha N(x + F(x)), for act_ms and grad_ms (analysis/theory/README.md, section 10.6).
 *
 * Unlike pre, post and span, the wrapped block's act_ms is not exact at finite width: the cross
 * term x.N(v)/d = alpha (x.v/d) / sqrt(|v|^2/d) divides by the realized length of v = x + F(x),
 * so it has a Jensen gap, and the map n -> E[n'] of the token's squared norm n = |x|^2/d is
 * nonlinear, so n's own spread (variance V_l/d) shifts the mean. Both are tracked forward (the
 * shift dq_l, the spread V_l). Backward, the cotangent's conditional covariance given the stream
 * is t_l(n) P + rho_l(n) xhat xhat^T (+ T1_l along the mean for LayerNorm); t_l = t0_l + t1_l/d,
 * with t0_l(n) the d -> infinity product of block gains along the trajectory started at n, carried
 * with its first two n-derivatives by the chain rule, and t1_l the O(1/d) one-block terms
 * (Jensen gaps of 1/|v|, the covariance of the output's norm with the gain, the rows the norm's
 * Jacobian removes, finite H). Every term is derived in the README; nothing here is fitted. */
#include "theory.h"

#include <math.h>
#include <stdlib.h>

/* one block at input squared norm n: the d -> infinity maps with two n-derivatives, and the
 * O(1/d) forward terms */
typedef struct {
    double n, E, D, Q, c;      /* n, E[phi^2], E[phi'^2] at variance n; q_v = n + E, 1/sqrt(q_v) */
    double mu, mu1, mu2;       /* E[n'] = n + a^2 + 2 a n / sqrt(q_v), and its derivatives */
    double G, G1, G2;          /* the gain 1 + 2a/sqrt(q_v) + a^2 (1 + D)/q_v, and derivatives */
    double nu, w;              /* d (E[n'] - mu), d Var(n' | n) */
    double xg, g2;             /* d Cov(n', gain), d (E[gain] - G) at fixed T */
    double k1, k2, mu4, cda;   /* E[u phi phi']/E, E[u^2 phi'^2] - E[u phi phi']^2/E,
                                * E[phi^2 phi'^2]/E, Cov(phi^2, phi'^2) */
} wblock;

static int block_at(ns_act_kind act, double a, double n, double r, double q0, int ell,
                    wblock *b)
{
    ns_gauss_moments m;
    int st = ns_gauss_moments_at(act, n, &m);
    if (st)
        return st;
    const double a2 = a * a, E = m.phi2, D = m.dphi2;
    const double Q = n + E, Q1 = 1 + m.phi2_ds, Q2 = m.phi2_ds2;
    /* Q^(-1/2) and 1/Q with their n-derivatives */
    const double h0 = 1 / sqrt(Q), h1 = -0.5 * h0 / Q * Q1,
                 h2 = 0.75 * h0 / (Q * Q) * Q1 * Q1 - 0.5 * h0 / Q * Q2;
    const double i0 = 1 / Q, i1 = -Q1 / (Q * Q), i2 = 2 * Q1 * Q1 / (Q * Q * Q) - Q2 / (Q * Q);
    b->n = n, b->E = E, b->D = D, b->Q = Q, b->c = h0;
    b->mu = n + a2 + 2 * a * n * h0;
    b->mu1 = 1 + 2 * a * (h0 + n * h1);
    b->mu2 = 2 * a * (2 * h1 + n * h2);
    b->G = 1 + 2 * a * h0 + a2 * (1 + D) * i0;
    b->G1 = 2 * a * h1 + a2 * (m.dphi2_ds * i0 + (1 + D) * i1);
    b->G2 = 2 * a * h2 + a2 * (m.dphi2_ds2 * i0 + 2 * m.dphi2_ds * i1 + (1 + D) * i2);
    /* |v|^2/d = q_v + delta/sqrt(d): delta = 2 sqrt(n) f + beta, f = xhat.F ~ N(0, E), beta the
     * spread of |F|^2/d (chi-square over d features, mean of phi^2 over H units) */
    const double kappa = m.phi4 / (E * E) - 1;
    const double beta2 = 2 * E * E + kappa * E * E / r, Wv = 4 * n * E + beta2;
    b->cda = m.phi2_dphi2 - E * D;
    b->nu = 2 * a * h0 * n * (0.375 * Wv / (Q * Q) - E / Q);
    b->w = 4 * a2 / Q * (n * E * E * E / (Q * Q) + n * n * beta2 / (4 * Q * Q));
    /* the gain's fluctuation is -(a/Q^1.5 + a^2 (1 + D)/Q^2) delta + a^2/Q (the spread of the
     * hidden units' mean phi'^2), n' - mu's is 2 a h0 (sqrt(n) f E/Q - n beta/(2Q)) */
    const double xd = 2 * a * h0 * n * E * E * (1 - kappa / (2 * r)) / Q;
    const double xD = -a * h0 * n * b->cda / (r * Q);
    b->xg = -(a * h0 / Q + a2 * (1 + D) / (Q * Q)) * xd + a2 / Q * xD;
    b->g2 = 0.75 * a * Wv * h0 / (Q * Q) + a2 * (1 + D) * Wv / (Q * Q * Q) -
            a2 * b->cda / (r * Q * Q);
    if (ell) {
        /* LayerNorm centres v: d E[mean(v)^2] = q0 + E (the stream keeps x_0's feature mean,
         * an i.i.d. N(0, q0) input's; F adds its own) shortens |v|^2/d and x.v/d by that and q0 */
        b->nu += 2 * a * (-q0 * h0 + n * (q0 + E) * h0 / (2 * Q));
        b->g2 += (q0 + E) * (a * h0 / Q + a2 * (1 + D) / (Q * Q));
    }
    const double k = m.u_phi_dphi;
    b->k1 = k / E;
    b->k2 = m.dphi2_u2 - k * k / E;
    b->mu4 = m.phi2_dphi2 / E;
    return NS_OK;
}

int ns_theory_finite_wrapped(const ns_theory_input *in, double *q, double *p)
{
    ns_theory_form kind;
    if (!q || !p || !ns_theory_finite_covers(in) || ns_theory_validate(in, &kind) != NS_OK ||
        kind != NS_THEORY_SPAN_WRAPPED)
        return NS_ERR_INVALID;
    const int L = in->depth, ell = in->norm == NS_NORM_LAYERNORM;
    const double d = in->width, r = (double)in->hidden / in->width, a = in->alpha, a2 = a * a;
    const double q0 = in->q0;
    wblock *b = malloc((size_t)L * sizeof *b);
    double *dq = malloc(2 * ((size_t)L + 1) * sizeof *dq), *V = dq ? dq + L + 1 : NULL;
    int st = b && dq ? NS_OK : NS_ERR_NOMEM;
    /* forward: q_l (d -> infinity), the O(1/d) shift dq_l of E[n_l], and d Var(n_l) */
    double qd = q0;
    if (st == NS_OK)
        dq[0] = 0, V[0] = 2 * q0 * q0;
    for (int l = 0; st == NS_OK && l < L; l++) {
        if ((st = block_at(in->act, a, qd, r, q0, ell, &b[l])) != NS_OK)
            break;
        const wblock *k = &b[l];
        dq[l + 1] = k->mu1 * dq[l] + 0.5 * k->mu2 * V[l] + k->nu;
        V[l + 1] = k->mu1 * k->mu1 * V[l] + k->w;
        q[l] = qd + dq[l] / d;
        qd = k->mu;
    }
    if (st == NS_OK)
        q[L] = qd + dq[L] / d;
    /* backward from the top (t = rho = T1 = 1, an i.i.d. cotangent); T = t0_{l+1} at q_{l+1},
     * with its n-derivatives T1d, T2d */
    double T = 1, Td = 0, Tdd = 0, t1 = 0, rho = 1, T1 = 1;
    if (st == NS_OK)
        p[L] = 1;
    for (int l = L - 1; st == NS_OK && l >= 0; l--) {
        const wblock *k = &b[l];
        const double c = k->c, E = k->E, Q = k->Q, n = k->n, ny = k->mu, G = k->G;
        const double Dl = rho - T;            /* the radial excess above */
        const double eq = E / Q;              /* |P_v xhat|^2 */
        const double vy2 = (n * c + a) * (n * c + a) / ny; /* (vhat.yhat)^2 */
        const double ry = 1 + a * c + a * c * eq;          /* yhat.(xhat + a c P_v xhat) sqrt(ny/n) */
        const double corr = Td * k->nu * G + 0.5 * Tdd * k->w * G + Td * k->xg + T * k->g2 +
                            Dl * (1 + (G - 1) * (1 - vy2) - n / ny * ry * ry) -
                            T * (a2 * c * c * k->D * (1 + ell) + (2 * a * c + a2 * c * c) * eq) +
                            k->mu4 * a2 * c * c * (-T * eq / r + Dl * eq * n * n / (r * Q * ny));
        const double D1 = -2 * k->k1 * a * c * eq * (T * (1 + a * c) + Dl * n * ry / ny);
        const double Dw = a2 * c * c * (k->k1 * k->k1 * E * (T / Q + Dl * E * n / (Q * Q * ny)) +
                                        T * k->k2 / n);
        const double rho_x = T * (1 + (2 * a * c + a2 * c * c) * eq) + Dl * n / ny * ry * ry +
                             D1 + Dw;
        T1 += a2 * c * c * k->D * T; /* the mean row: only the skip and J_F^T carry it */
        t1 = G * t1 + corr;
        const double t0 = G * T, t0d = k->G1 * T + G * Td * k->mu1;
        const double t0dd = k->G2 * T + 2 * k->G1 * Td * k->mu1 +
                            G * (Tdd * k->mu1 * k->mu1 + Td * k->mu2);
        T = t0, Td = t0d, Tdd = t0dd, rho = rho_x;
        p[l] = t0 + (t0d * dq[l] + 0.5 * t0dd * V[l] + t1 + rho - t0 + ell * (T1 - t0)) / d;
    }
    free(b);
    free(dq);
    return st;
}
