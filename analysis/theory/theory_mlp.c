/* theory_mlp.c: the mean-field recursion for residual MLP stacks at initialization.
 *
 * State of the residual stream x_l, per feature, as d -> infinity: q = E[x^2] (act_ms) and the
 * cross-token covariance C = E[x_i x_j] of two distinct tokens, rho = C/q (cos_tokens). The
 * branch F(z) = W2 phi(W1 z) with W1 ~ N(0, 1/d), W2 ~ N(0, aw^2/H) maps a stream with (q_z, rho_z)
 * to an output with mean square aw^2 E[phi(u)^2] and token covariance aw^2 E[phi(u1) phi(u2)]
 * (uncentered: a zero-mean W2 removes phi's mean per feature, not the product of two tokens'
 * activations), u ~ N(0, q_z), corr(u1, u2) = rho_z; the output is uncorrelated with anything
 * independent of W2, so a residual sum adds mean squares. A norm with gain g divides by the
 * root mean square of its input: q' = g^2, rho' = rho. Backward, under gradient independence,
 * the branch multiplies p by aw^2 E[phi'(u)^2] and a norm by g^2 / q_in. Each placement's block
 * is derived in analysis/theory/README.md, section 2. At a finite width (in->width > 0) the
 * gradient mean square of pre, post, span, span-wrapped, sandwich, lns, deepnorm, admin, dslm,
 * mixln and subln is then replaced by its O(1/d) correction (theory_finite*.c, README section
 * 10); act_ms needs none except for span-wrapped, rezero and tfixup (exact in expectation for
 * the others; rezero's and tfixup's with relu or linear are exact at every width,
 * theory_finite_nonorm.c). The other metrics keep their d -> infinity values; residual is
 * theory_residual.c. */
#include "theory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* E[phi(u)^2] and E[phi'(u)^2] at u ~ N(0, s), remembered for the last s: PreNorm and PostNorm
 * feed the branch the same variance at every block after the first. */
typedef struct {
    ns_act_kind act;
    double s, phi2, dphi2;
    int valid;
} moments;

static int moments_at(moments *m, double s)
{
    if (m->valid && m->s == s)
        return NS_OK;
    m->s = s;
    m->phi2 = ns_gauss_phi2(m->act, s);
    m->dphi2 = ns_gauss_dphi2(m->act, s);
    m->valid = isfinite(m->phi2) && isfinite(m->dphi2);
    return m->valid ? NS_OK : NS_ERR_NUMERIC;
}

/* Sub-LN's mid norm over the H hidden units phi(u), u ~ N(0, s), as H -> infinity: it divides
 * by their standard deviation (LayerNorm: var = E[phi^2] - m^2, m = E[phi]; it also subtracts
 * m, so m2 = m^2) or their root mean square (RMSNorm: var = E[phi^2], m2 = 0) */
static int subln_mid(const ns_theory_input *in, moments *mo, double s, double *var, double *m2)
{
    int st = moments_at(mo, s);
    double m = in->norm == NS_NORM_LAYERNORM ? ns_gauss_phi(in->act, s) : 0;
    *m2 = m * m;
    *var = mo->phi2 - *m2;
    return st || !isfinite(m) || !(*var > 0) ? NS_ERR_NUMERIC : st;
}

static double clamp_unit(double x) { return x > 1 ? 1 : x < -1 ? -1 : x; }

static const char *act_name(ns_act_kind act)
{
    return act == NS_ACT_GELU ? "gelu (tanh form)" : act == NS_ACT_RELU ? "relu" : "linear";
}

int ns_theory_mlp(const ns_theory_input *in, ns_theory *out)
{
    /* the recursion each form solves, after the placement's name */
    static const char *const equations[] = {"y = x + F(N(x))", "y = N(x + F(x))",
                                            "y = x + N(F(x)), gain alpha",
                                            "y = x + N(x + F(x)), gain alpha",
                                            "y = x + No(F(Ni(x))), gain of No alpha",
                                            "y = N(a x + F(x)), a = (2L)^(1/4), W1, W2 std "
                                            "times (8L)^(-1/4)",
                                            "y = x + F(N(x)/sqrt(l))",
                                            "y = x + w F(x), gate w",
                                            "y = x + F(x), W1, W2 std times (9L)^(-1/4)",
                                            "x = N(x + F(x)), r = r + F(x), output x_L + "
                                            "Nf(r_L)",
                                            "y = N(w_l x + F(x)), w_l profiled",
                                            "y = x + W2 Nm(phi(W1 N(x))), W1, W2 std times "
                                            "sqrt(log(2L))",
                                            "y = lambda x + beta F(N(x)), beta^2 = 1/L = 1 - "
                                            "lambda^2, W2 std times E[phi^2]^(-1/2)"};
    _Static_assert(sizeof equations / sizeof equations[0] == NS_THEORY_NFORMS, "one per form");
    if (!out)
        return NS_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!in)
        return NS_ERR_INVALID;
    /* one form for the stack, or (a schedule, Mix-LN) a form per block: one step of that form's
     * recursion per block (analysis/theory/README.md, section 2.13) */
    ns_theory_form kind;
    int uniform = ns_theory_validate(in, &kind) == NS_OK, status = NS_OK;
    for (int l = 1; !uniform && l <= in->depth && status == NS_OK; l++)
        status = ns_theory_block_form(in, l, &kind);
    if (status || in->depth < 1)
        return NS_ERR_INVALID;
    if (kind == NS_THEORY_RESIDUAL) /* two streams: its own recursion (never in a schedule) */
        return ns_theory_residual(in, out);
    int L = in->depth;
    int admin = uniform && kind == NS_THEORY_ADMIN;
    double *base = malloc((3 * (size_t)(L + 1) + (2 + admin) * (size_t)L) * sizeof(double));
    if (!base)
        return NS_ERR_NOMEM;
    out->depth = L;
    out->act_ms = base;
    out->grad_ms = base + (L + 1);
    out->cos_tokens = base + 2 * (L + 1);
    out->cos_layer = base + 3 * (L + 1);
    out->branch_ms = base + 3 * (L + 1) + L;
    out->skip_weight = admin ? base + 3 * (L + 1) + 2 * L : NULL;
    out->exact = 1;
    out->finite = ns_theory_finite_covers(in);
    /* rows whose act_ms is not exact in expectation at finite width get its O(1/d) term too */
    const int act_finite = kind == NS_THEORY_SPAN_WRAPPED || kind == NS_THEORY_REZERO ||
                           kind == NS_THEORY_TFIXUP;
    char order[96], gate_text[48];
    snprintf(gate_text, sizeof gate_text, ", gate %.6g", in->gate);
    if (out->finite)
        snprintf(order, sizeof order, "%s to O(1/d) at d = %d, H = %d",
                 act_finite ? "act_ms, grad_ms" : "grad_ms", in->width,
                 in->hidden);
    else
        snprintf(order, sizeof order, "d -> inf%s",
                 in->width > 0 ? " (no O(1/d) correction derived for this case)" : "");
    /* a schedule is named by its blocks' rows ("post*8,pre"); the line is for people, so a
     * long one is cut at the model's size */
    char blocks[96];
    ns_schedule rows;
    ns_schedule_resolve(in->schedule.n ? NULL : ns_placement_find(in->placement), &in->schedule,
                        in->post_fraction, L, &rows);
    ns_schedule_text(&rows, blocks, sizeof blocks);
    const char *name = in->schedule.n ? "schedule" : in->placement;
    const char *equation = uniform ? equations[kind] : blocks;
    int n = snprintf(out->model, sizeof out->model,
                     "mean-field MLP recursion (gradient independence): %s %s%s, %s, %s, alpha "
                     "%.6g%s; %s",
                     name, uniform ? "" : "per block ", equation, act_name(in->act),
                     in->norm == NS_NORM_RMSNORM ? "RMSNorm" : "LayerNorm", in->alpha,
                     kind == NS_THEORY_REZERO ? gate_text : "", order);
    if (n < 0 || n >= (int)sizeof out->model) /* cut: snprintf has ended it */
        out->model[sizeof out->model - 1] = 0;

    const double a = in->alpha, a2 = a * a;
    /* DeepNorm's skip gain A^2 = sqrt(2L) and init factor b^2 = (8L)^(-1/2); T-Fixup's init
     * factor c^2 = (9L)^(-1/2); ReZero's gate w (README sections 2.7 to 2.11) */
    const double A2 = sqrt(2.0 * L), b2 = 1 / sqrt(8.0 * L), c2 = 1 / sqrt(9.0 * L);
    /* Sub-LN's init factor g^2 = log(2L) on the variance of W1 and W2 (README section 2.16) */
    const double g2 = log(2.0 * L);
    const double w2 = in->gate * in->gate;
    /* DeepScaleLM's beta^2 = 1/L, lambda^2 = 1 - beta^2, and its init factor u^2 = 1/E[phi^2] on
     * W2's variance, E[phi^2] as core sets it (README section 2.17) */
    const double B2 = 1.0 / L, l2 = 1 - B2, u2 = 1 / ns_act_unit_ms(in->act);
    moments mo = {.act = in->act};
    double q = in->q0, C = in->rho0 * in->q0;
    /* Admin: the profiling pass is PostNorm's forward, whose branch sees q0 in block 1 and 1
     * after, so w_l^2 = q0 + (the mean squares of the branches before l) in closed form */
    double w2_admin = in->q0;
    out->act_ms[0] = q;
    out->cos_tokens[0] = in->rho0;
    /* The forward pass also stores each block's backward gain p_{l-1}/p_l in grad_ms[l-1]; the
     * backward pass below turns the gains into the products p_l = prod of the gains above l. */
    for (int l = 1; l <= L && status == NS_OK; l++) {
        double rho = clamp_unit(C / q), qn, Cn, cos_layer, branch, gain;
        if (!uniform)
            ns_theory_block_form(in, l, &kind); /* checked above */
        switch (kind) {
        case NS_THEORY_PRE: { /* branch input N(x): q_z = 1, rho_z = rho */
            double k = ns_gauss_kernel(in->act, 1.0, rho);
            status = moments_at(&mo, 1.0);
            branch = a2 * mo.phi2;
            qn = q + branch;
            Cn = C + a2 * k;
            cos_layer = sqrt(q / qn);
            gain = 1 + a2 * mo.dphi2 / q;
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_POST: { /* v = x + F(x), y = N(v) */
            double k = ns_gauss_kernel(in->act, q, rho);
            status = moments_at(&mo, q);
            branch = a2 * mo.phi2;
            double qv = q + branch, Cv = C + a2 * k;
            qn = 1.0;
            Cn = Cv / qv;
            cos_layer = sqrt(q / qv);
            gain = (1 + a2 * mo.dphi2) / qv;
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_SPAN: { /* b = F(x), y = x + alpha N(b) */
            double k = ns_gauss_kernel(in->act, q, rho);
            status = moments_at(&mo, q);
            branch = mo.phi2;
            qn = q + a2;
            Cn = C + a2 * k / branch;
            cos_layer = sqrt(q / qn);
            gain = 1 + a2 * mo.dphi2 / branch;
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_SPAN_WRAPPED: { /* v = x + F(x), n = alpha N(v), y = x + n */
            double k = ns_gauss_kernel(in->act, q, rho);
            status = moments_at(&mo, q);
            branch = mo.phi2;
            double qv = q + branch, Cv = C + k, r = 1 / sqrt(qv);
            /* x.n/d = alpha x.v/(d sqrt(q_v)) = alpha q r: the norm carries x along */
            qn = q + a2 + 2 * a * q * r;
            Cn = C * (1 + 2 * a * r) + a2 * Cv / qv;
            cos_layer = q * (1 + a * r) / sqrt(q * qn);
            /* g_x = g_y + (I + J_F)' J_N' g_y: the two skip paths add coherently */
            gain = 1 + 2 * a * r + a2 * (1 + mo.dphi2) / qv;
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_SANDWICH: { /* z = N(x): q_z = 1; b = F(z) (W2 std 1); y = x + alpha No(b) */
            double k = ns_gauss_kernel(in->act, 1.0, rho);
            status = moments_at(&mo, 1.0);
            branch = mo.phi2;
            qn = q + a2;
            Cn = C + a2 * k / branch;
            cos_layer = sqrt(q / qn);
            /* No: alpha^2 / E[b^2]; F: E[phi'^2]; Ni: 1/q */
            gain = 1 + a2 * mo.dphi2 / (branch * q);
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_DEEPNORM: { /* v = A x + F(x), W1 std b: u ~ N(0, b^2 q); y = N(v) */
            double s = b2 * q, k = ns_gauss_kernel(in->act, s, rho);
            status = moments_at(&mo, s);
            branch = a2 * b2 * mo.phi2;
            double qv = A2 * q + branch, Cv = A2 * C + a2 * b2 * k;
            qn = 1.0;
            Cn = Cv / qv;
            cos_layer = sqrt(A2 * q / qv);
            gain = (A2 + a2 * b2 * b2 * mo.dphi2) / qv;
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_LNS: { /* z = N(x)/sqrt(l): q_z = 1/l; y = x + F(z) */
            double s = 1.0 / l, k = ns_gauss_kernel(in->act, s, rho);
            status = moments_at(&mo, s);
            branch = a2 * mo.phi2;
            qn = q + branch;
            Cn = C + a2 * k;
            cos_layer = sqrt(q / qn);
            gain = 1 + a2 * mo.dphi2 * s / q;
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_REZERO: { /* b = F(x); y = x + w b */
            double k = ns_gauss_kernel(in->act, q, rho);
            status = moments_at(&mo, q);
            branch = a2 * mo.phi2; /* b before the gate, as propagate's branch_ms */
            qn = q + w2 * branch;
            Cn = C + w2 * a2 * k;
            cos_layer = sqrt(q / qn);
            gain = 1 + w2 * a2 * mo.dphi2;
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_TFIXUP: { /* W1 std c: u ~ N(0, c^2 q); y = x + F(x) */
            double s = c2 * q, k = ns_gauss_kernel(in->act, s, rho);
            status = moments_at(&mo, s);
            branch = a2 * c2 * mo.phi2;
            qn = q + branch;
            Cn = C + a2 * c2 * k;
            cos_layer = sqrt(q / qn);
            gain = 1 + a2 * c2 * c2 * mo.dphi2;
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_ADMIN: { /* v = w x + F(x), y = N(v); the branch sees q as PostNorm's */
            double k = ns_gauss_kernel(in->act, q, rho), w2s = l == 1 ? 1.0 : w2_admin;
            status = moments_at(&mo, q);
            branch = a2 * mo.phi2;
            double qv = w2s * q + branch, Cv = w2s * C + a2 * k;
            qn = 1.0;
            Cn = Cv / qv;
            cos_layer = sqrt(w2s * q / qv);
            gain = (w2s + a2 * mo.dphi2) / qv;
            out->skip_weight[l - 1] = sqrt(w2s);
            w2_admin += branch; /* the profiling pass's branch has the same mean square */
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_SUBLN: { /* u = W1 N(x) ~ N(0, g^2); b = W2 Nm(phi(u)), ms g^2 alpha^2 */
            double k = ns_gauss_kernel(in->act, g2, rho), var, m2;
            status = subln_mid(in, &mo, g2, &var, &m2);
            branch = g2 * a2;
            qn = q + branch;
            Cn = C + branch * (k - m2) / var;
            cos_layer = sqrt(q / qn);
            /* W2: g^2 alpha^2; Nm: 1/var; phi: E[phi'^2]; W1: g^2; N: 1/q */
            gain = 1 + branch * g2 * mo.dphi2 / (var * q);
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        case NS_THEORY_DSLM: { /* z = N(x): q_z = 1; b = F(z), W2 std alpha u; y = l x + beta b */
            double k = ns_gauss_kernel(in->act, 1.0, rho);
            status = moments_at(&mo, 1.0);
            branch = a2 * u2 * mo.phi2; /* b before beta, as propagate's branch_ms */
            qn = l2 * q + B2 * branch;
            Cn = l2 * C + B2 * a2 * u2 * k;
            cos_layer = sqrt(l2 * q / qn);
            gain = l2 + B2 * a2 * u2 * mo.dphi2 / q;
            if (!isfinite(k))
                status = NS_ERR_NUMERIC;
            break;
        }
        default:
            status = NS_ERR_INVALID;
            qn = Cn = cos_layer = branch = gain = NAN;
            break;
        }
        out->act_ms[l] = qn;
        out->cos_tokens[l] = clamp_unit(Cn / qn);
        out->cos_layer[l - 1] = cos_layer;
        out->branch_ms[l - 1] = branch;
        out->grad_ms[l - 1] = gain;
        q = qn;
        C = Cn;
    }
    if (status) {
        ns_theory_free(out);
        return status;
    }
    out->grad_ms[L] = 1.0;
    for (int l = L - 1; l >= 0; l--)
        out->grad_ms[l] *= out->grad_ms[l + 1];
    if (out->finite)
        status = kind == NS_THEORY_SPAN_WRAPPED
                     ? ns_theory_finite_wrapped(in, out->act_ms, out->grad_ms)
                 : act_finite ? ns_theory_finite_nonorm(in, out->act_ms, out->grad_ms)
                              : ns_theory_finite_grad(in, out->grad_ms);
    if (status)
        ns_theory_free(out);
    return status;
}
