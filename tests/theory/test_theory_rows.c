/* test_theory_rows.c: the d -> infinity MLP theory of the placement rows with one structural
 * extra (sandwich, deepnorm, lns, rezero, tfixup, residual, admin, subln, dslm;
 * analysis/theory/README.md, sections 2.7-2.12 and 2.14-2.17) against simulation, their closed
 * forms against the recursion, and negative controls. ResiDual's dual stream (dual_act_ms,
 * dual_grad_ms) and Admin's profiled skip weights are compared too.
 *
 * 1. Theory against `ns_propagate` at d = H = 1024, L = 12, seq 32, batch 2, 4 seeds, relu and
 *    gelu, each row at its default Scale Init (alpha = 1), sandwich and dslm also at alpha =
 *    1/sqrt(L), rezero at its default gate 0 (the identity) and at gate 0.5; admin's profiled
 *    skip weights (ns_propagate's skip_weight) against the predicted ones too; subln at alpha 1
 *    and 1/sqrt(L) with LayerNorm and at alpha 1 with RMSNorm (its mid norm's kind). Per layer,
 *    |seed mean - theory| must be within max(K_SIGMA * se, floor), as in test_theory.c: se from
 *    the largest relative seed spread of the series; floor = ALLOW/sqrt(d) relative for mean
 *    squares, absolute for cosines (the finite-width terms the d -> infinity recursion leaves
 *    out: the per-token mean square fluctuates by O(1/sqrt(d)) and enters the norms' and the
 *    kernel's nonlinearities; the measured biases are O(1/d) and far below it), and for grad_ms,
 *    compared as grad_ms_l / grad_ms_L per seed, also the compounded allowance of fw_allowance()
 *    below, except sandwich, lns, deepnorm, admin, dslm, mixln, subln, rezero, tfixup and
 *    residual, whose grad_ms carries its O(1/d) correction (theory_finite*.c,
 *    theory_residual.c; test_finite.c; for rezero and tfixup with relu or linear it is zero,
 *    README section 10.10): the theory's `finite` must be 1 for those (every row here).
 * 2. Negative controls that must FAIL the same criterion: the pre form's prediction for sandwich
 *    (act_ms: alpha^2 E[phi^2] per block instead of alpha^2), the post form's for deepnorm
 *    (cos_layer: no skip gain), the pre form's for lns (act_ms: no 1/l on the branch input's
 *    variance), for tfixup the branch taken with W1 unscaled (act_ms: phi at q, not c^2 q),
 *    for residual the post form (act_ms: the output's Nf(r_L) left out; grad_ms: no dLoss/dr)
 *    and a dual gradient with Nf's 1/R_L left out, the post form's for admin (cos_layer: no
 *    skip weight), and admin's weights without the input's mean square in the sum (w_l^2 = the
 *    branches' alone); for subln the pre form (act_ms) and, on relu, the RMSNorm theory for a
 *    LayerNorm run (grad_ms and cos_tokens: phi's mean left in the mid norm); for dslm the pre
 *    form (act_ms: no lambda, beta) and, gelu, its own recursion with W2 left at the plain init
 *    (act_ms: the branch at E[phi^2], not 1).
 * 3. Closed forms (ns_theory_bounds_mlp) equal the recursion's q_L and p_0/p_L to 1e-10, and
 *    p_0/p_L = q_L/q_0 for relu and linear (README section 2.5; not subln's LayerNorm on relu);
 *    dslm's at q0 = alpha^2: q_L = alpha^2 and p_0/p_L = (1 + (k - 1)/L)^L,
 *    k = E[phi'^2]/E[phi^2] at u ~ N(0, 1), and core's E[phi^2] (ns_act_unit_ms, its init
 *    factor) against the quadrature.
 * Prints only failures and `test_theory_rows: N checks, M failed`; `--verbose` prints every
 * series' agreement. */
#include "normscope.h"
#include "propagate.h"
#include "theory.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K_SIGMA 4.0
#define ALLOW 1.0   /* the floor's coefficient of 1/sqrt(d) */
#define FW_COEF 10.0 /* per norm, the O(1/d) terms of the gradient in units of 1/d */

enum { L = 12, D = 1024, SEQ = 32, BATCH = 2, NSEEDS = 4 };
static int checks, failures, verbose;

static void check(int ok, const char *fmt, ...)
{
    checks++;
    if (ok)
        return;
    failures++;
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

typedef struct {
    double max_rel, max_abs, max_z;
    int failed;
} agreement;

/* sim is [NSEEDS, n]; is_ms: relative floor (a mean square) or absolute (a cosine); first: the
 * first layer compared; ratio_last: every seed's row divided by its last entry (grad_ms), with
 * fw[l] the extra relative allowance */
static agreement compare(const double *sim, int n, const double *th, int is_ms, int first,
                         int ratio_last, const double *fw)
{
    double mean[L + 1], rel_spread = 0;
    agreement a = {0, 0, 0, 0};
    int last = ratio_last ? n - 2 : n - 1;
    for (int l = first; l <= last; l++) {
        double v[NSEEDS], s = 0, ss = 0;
        for (int k = 0; k < NSEEDS; k++) {
            v[k] = sim[k * n + l] / (ratio_last ? sim[k * n + n - 1] : 1);
            s += v[k];
        }
        mean[l] = s / NSEEDS;
        for (int k = 0; k < NSEEDS; k++)
            ss += (v[k] - mean[l]) * (v[k] - mean[l]);
        double scale = is_ms ? fabs(th[l]) : 1.0;
        if (scale > 0)
            rel_spread = fmax(rel_spread, ss / (NSEEDS - 1) / (scale * scale));
    }
    for (int l = first; l <= last; l++) {
        double scale = is_ms ? fabs(th[l]) : 1.0;
        double se = sqrt(rel_spread / NSEEDS) * scale;
        double floor = ALLOW / sqrt((double)D) * scale;
        if (fw)
            floor = fmax(floor, fw[l] * scale);
        double dev = fabs(mean[l] - th[l]);
        if (dev > fmax(K_SIGMA * se, floor))
            a.failed = 1;
        if (se > 0)
            a.max_z = fmax(a.max_z, dev / se);
        a.max_abs = fmax(a.max_abs, dev);
        if (is_ms ? th[l] != 0 : fabs(th[l]) > 0.05) /* cosines near 0: relative says nothing */
            a.max_rel = fmax(a.max_rel, dev / fabs(th[l]));
    }
    return a;
}

/* The O(1/d) terms of the norms that a d -> infinity gradient leaves out (Jensen gaps of
 * 1/|v|^2, LayerNorm's centering, the projected rows; analysis/theory/README.md, sections 5 and
 * 10), at most FW_COEF/d per norm where measured, compounded through the backward: a relative
 * change e in block j's norm factor changes ln p_l, l < j, by e w_j, with w_j = 1 when the whole
 * gain passes the norm (post, deepnorm) and (gain_j - 1)/gain_j otherwise. */
static void fw_allowance(const ns_theory *t, int post, double *fw)
{
    double acc = 0;
    fw[L] = 0;
    for (int j = L; j >= 1; j--) {
        double gain = t->grad_ms[j - 1] / t->grad_ms[j];
        acc += post ? 1.0 : (gain - 1) / gain;
        fw[j - 1] = FW_COEF / D * acc;
    }
}

/* Mix-LN's split here: half the blocks PostNorm */
#define POST_FRACTION 0.5

static const char *act_name(ns_act_kind a) { return a == NS_ACT_GELU ? "gelu" : "relu"; }

/* one configuration: every metric against the theory; keeps r and t for negative controls */
static int run_config(const char *placement, ns_act_kind act, ns_norm_kind norm, double alpha,
                      double gate, ns_propagate_result *r, ns_theory *t)
{
    ns_config c = {.block = NS_BLOCK_MLP, .depth = L, .width = D, .hidden = D,
                   .ntok = SEQ * BATCH, .act = act, .norm = norm, .norm_eps = 1e-5,
                   .alpha = alpha, .gate_init = gate, .post_fraction = POST_FRACTION};
    ns_theory_input in = {.act = act, .norm = norm, .depth = L, .width = D,
                          .hidden = D, .alpha = alpha, .gate = gate, .q0 = 1, .rho0 = 0,
                          .post_fraction = POST_FRACTION};
    int entry;
    if (ns_schedule_is(placement)) { /* a schedule: the theory composes its rows' forms */
        check(ns_schedule_parse(placement, &c.schedule, &entry) == NS_SCHEDULE_OK,
              "%s: not a schedule", placement);
        in.schedule = c.schedule;
    } else {
        c.placement = ns_placement_find(placement);
        in.placement = placement;
    }
    int st = ns_propagate_run(&c, SEQ, NSEEDS, 100, r, NULL, NULL);
    if (st) {
        check(0, "%s %s: simulation failed (%s)", placement, act_name(act), ns_strerror(st));
        return st;
    }
    if ((st = ns_theory_mlp(&in, t))) {
        check(0, "%s %s: theory failed (%s)", placement, act_name(act), ns_strerror(st));
        ns_propagate_result_free(r);
        return st;
    }
    int finite = strcmp(placement, "sandwich") == 0 || strcmp(placement, "lns") == 0 ||
                 strcmp(placement, "dslm") == 0 || strcmp(placement, "deepnorm") == 0 ||
                 strcmp(placement, "admin") == 0 || strcmp(placement, "mixln") == 0 ||
                 strcmp(placement, "subln") == 0 || strcmp(placement, "rezero") == 0 ||
                 strcmp(placement, "tfixup") == 0 || strcmp(placement, "residual") == 0;
    check(t->exact == 1 && t->finite == finite &&
              strstr(t->model, finite ? "O(1/d)" : "d -> inf") != NULL,
          "%s: exact theory %s an O(1/d) term expected", placement, finite ? "with" : "without");
    double fw[L + 1];
    fw_allowance(t, strcmp(placement, "deepnorm") == 0 || strcmp(placement, "residual") == 0 ||
                        strcmp(placement, "admin") == 0,
                 fw);
    const double *fw_grad = finite ? NULL : fw;
    double dual_rel[NSEEDS * (L + 1)]; /* dLoss/dr_l over each seed's top dLoss/dy */
    for (int k = 0; r->dual_grad_ms && k < NSEEDS * (L + 1); k++)
        dual_rel[k] = r->dual_grad_ms[k] / r->grad_ms[k / (L + 1) * (L + 1) + L];
    const struct {
        const char *name;
        const double *sim, *th;
        int n, is_ms, first, ratio;
        const double *fw;
    } m[] = {
        {"act_ms", r->act_ms, t->act_ms, L + 1, 1, 1, 0, NULL},
        {"grad_ms", r->grad_ms, t->grad_ms, L + 1, 1, 0, 1, fw_grad},
        {"cos_tokens", r->cos_tokens, t->cos_tokens, L + 1, 0, 1, 0, NULL},
        {"cos_layer", r->cos_layer, t->cos_layer, L, 0, 0, 0, NULL},
        {"branch_ms", r->branch_ms, t->branch_ms, L, 1, 0, 0, NULL},
        /* ResiDual only: the dual stream r_l, and dLoss/dr_l relative to the top's dLoss/dy */
        {"dual_act_ms", r->dual_act_ms, t->dual_act_ms, L + 1, 1, 1, 0, NULL},
        {"dual_grad_ms", r->dual_grad_ms ? dual_rel : NULL, t->dual_grad_ms, L + 1, 1, 0, 0,
         NULL},
        {"skip_weight", r->skip_weight, t->skip_weight, L, 1, 0, 0, NULL}, /* admin only */
    };
    if (verbose)
        printf("%-9s %-5s %-9s alpha %.3f gate %.2f:", placement, act_name(act),
               norm == NS_NORM_RMSNORM ? "rmsnorm" : "layernorm", alpha, gate);
    check(!r->dual_act_ms == !t->dual_act_ms && !r->dual_grad_ms == !t->dual_grad_ms,
          "%s: measured and predicted dual streams do not match in presence", placement);
    check(!r->skip_weight == !t->skip_weight, "%s: skip weights measured %s, predicted %s",
          placement, r->skip_weight ? "yes" : "no", t->skip_weight ? "yes" : "no");
    for (size_t i = 0; i < sizeof m / sizeof *m; i++) {
        if (!m[i].sim || !m[i].th)
            continue;
        agreement a = compare(m[i].sim, m[i].n, m[i].th, m[i].is_ms, m[i].first, m[i].ratio,
                              m[i].fw);
        check(!a.failed, "%s %s norm %d alpha %g gate %g %s: seed mean and theory differ (max "
              "relative error %.4f, max %.1f se)", placement, act_name(act), (int)norm, alpha,
              gate, m[i].name, a.max_rel, a.max_z);
        if (verbose)
            printf("  %s %.4f (%.1f se)", m[i].name, m[i].is_ms ? a.max_rel : a.max_abs, a.max_z);
    }
    if (verbose)
        printf("\n");
    return 0;
}

static void negative(const char *what, const double *sim, const double *wrong, int n, int is_ms,
                     int first)
{
    agreement a = compare(sim, n, wrong, is_ms, first, 0, NULL);
    check(a.failed, "negative control %s passed the criterion (max relative error %.4f, %.1f se)",
          what, a.max_rel, a.max_z);
    if (verbose)
        printf("negative control %-44s fails as it must: max relative error %.4f, %.1f se\n",
               what, a.max_rel, a.max_z);
}

/* the prediction of another row, or of a norm kind, for the same run (the negative controls'
 * wrong theories) */
static int other_norm(const char *placement, ns_act_kind act, ns_norm_kind norm, double alpha,
                      ns_theory *t)
{
    ns_theory_input in = {.placement = placement, .act = act, .norm = norm,
                          .depth = L, .alpha = alpha, .q0 = 1, .rho0 = 0};
    int st = ns_theory_mlp(&in, t);
    check(st == NS_OK, "theory of %s failed", placement);
    return st;
}

/* the same under LayerNorm */
static int other(const char *placement, ns_act_kind act, double alpha, ns_theory *t)
{
    return other_norm(placement, act, NS_NORM_LAYERNORM, alpha, t);
}

#define LN NS_NORM_LAYERNORM

static void test_simulation(void)
{
    const struct {
        const char *name;
        double alpha, gate;
        ns_norm_kind norm;
    } cases[] = {{"sandwich", 1, 0, LN},      {"sandwich", 0, 0, LN}, {"deepnorm", 1, 0, LN},
                 {"lns", 1, 0, LN},           {"rezero", 1, 0, LN},   {"rezero", 1, 0.5, LN},
                 {"tfixup", 1, 0, LN},        {"mixln", 1, 0, LN},
                 {"post*4,rezero*4,lns", 1, 0.5, LN}, {"residual", 1, 0, LN},
                 {"admin", 1, 0, LN},         {"subln", 1, 0, LN},    {"subln", 0, 0, LN},
                 {"subln", 1, 0, NS_NORM_RMSNORM}, {"dslm", 1, 0, LN}, {"dslm", 0, 0, LN}};
    const ns_act_kind acts[] = {NS_ACT_RELU, NS_ACT_GELU};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int k = 0; k < 2; k++) {
            ns_act_kind act = acts[k];
            double alpha = cases[i].alpha > 0 ? cases[i].alpha : 1 / sqrt((double)L);
            const char *name = cases[i].name;
            ns_propagate_result r;
            ns_theory t, w;
            if (run_config(name, act, cases[i].norm, alpha, cases[i].gate, &r, &t))
                continue;
            if (!strcmp(name, "subln") && alpha == 1 && cases[i].norm == NS_NORM_LAYERNORM &&
                other("pre", act, alpha, &w) == NS_OK) {
                negative(act == NS_ACT_RELU ? "subln relu act_ms by the pre form"
                                            : "subln gelu act_ms by the pre form",
                         r.act_ms, w.act_ms, L + 1, 1, 1);
                ns_theory_free(&w);
            }
            if (!strcmp(name, "subln") && alpha == 1 && act == NS_ACT_RELU &&
                cases[i].norm == NS_NORM_LAYERNORM &&
                other_norm("subln", act, NS_NORM_RMSNORM, alpha, &w) == NS_OK) {
                /* the mid norm taken as RMSNorm: phi's mean neither removed from the token
                 * covariance nor from the backward's divisor */
                double got[NSEEDS * (L + 1)];
                for (int k = 0; k < NSEEDS * (L + 1); k++)
                    got[k] = r.grad_ms[k] / r.grad_ms[k / (L + 1) * (L + 1) + L];
                negative("subln relu grad_ms with an uncentered mid norm", got, w.grad_ms, L + 1,
                         1, 0);
                negative("subln relu cos_tokens with an uncentered mid norm", r.cos_tokens,
                         w.cos_tokens, L + 1, 0, 1);
                ns_theory_free(&w);
            }
            if (!strcmp(name, "sandwich") && alpha == 1 && act == NS_ACT_RELU &&
                other("pre", act, alpha, &w) == NS_OK) {
                negative("sandwich relu act_ms by the pre form", r.act_ms, w.act_ms, L + 1, 1, 1);
                ns_theory_free(&w);
            }
            if (!strcmp(name, "deepnorm") && other("post", act, alpha, &w) == NS_OK) {
                negative(act == NS_ACT_RELU ? "deepnorm relu cos_layer by the post form"
                                            : "deepnorm gelu cos_layer by the post form",
                         r.cos_layer, w.cos_layer, L, 0, 0);
                ns_theory_free(&w);
            }
            if (!strcmp(name, "lns") && act == NS_ACT_GELU && other("pre", act, alpha, &w) == 0) {
                negative("lns gelu act_ms by the pre form", r.act_ms, w.act_ms, L + 1, 1, 1);
                ns_theory_free(&w);
            }
            if (!strcmp(name, "mixln") && other("pre", act, alpha, &w) == NS_OK) {
                /* one form for every block: its post half keeps act_ms at 1 */
                negative(act == NS_ACT_RELU ? "mixln relu act_ms by the pre form"
                                            : "mixln gelu act_ms by the pre form",
                         r.act_ms, w.act_ms, L + 1, 1, 1);
                ns_theory_free(&w);
            }
            if (!strcmp(name, "residual") && other("post", act, alpha, &w) == NS_OK) {
                /* the main stream alone: the top misses Nf(r_L), the backward dLoss/dr */
                negative(act == NS_ACT_RELU ? "residual relu act_ms by the post form"
                                            : "residual gelu act_ms by the post form",
                         r.act_ms, w.act_ms, L + 1, 1, 1);
                double got[NSEEDS * (L + 1)];
                for (int k = 0; k < NSEEDS; k++)
                    for (int l = 0; l <= L; l++)
                        got[k * (L + 1) + l] =
                            r.grad_ms[k * (L + 1) + l] / r.grad_ms[k * (L + 1) + L];
                negative(act == NS_ACT_RELU ? "residual relu grad_ms by the post form"
                                            : "residual gelu grad_ms by the post form",
                         got, w.grad_ms, L + 1, 1, 0);
                /* dLoss/dr taken as the top's gradient itself, without Nf's 1/R_L */
                double wrong[L + 1];
                for (int l = 0; l <= L; l++) {
                    wrong[l] = 1;
                    for (int k = 0; k < NSEEDS; k++)
                        got[k * (L + 1) + l] =
                            r.dual_grad_ms[k * (L + 1) + l] / r.grad_ms[k * (L + 1) + L];
                }
                negative(act == NS_ACT_RELU ? "residual relu dual_grad_ms without 1/R_L"
                                            : "residual gelu dual_grad_ms without 1/R_L",
                         got, wrong, L + 1, 1, 0);
                ns_theory_free(&w);
            }
            if (!strcmp(name, "admin") && other("post", act, alpha, &w) == NS_OK) {
                negative(act == NS_ACT_RELU ? "admin relu cos_layer by the post form"
                                            : "admin gelu cos_layer by the post form",
                         r.cos_layer, w.cos_layer, L, 0, 0);
                ns_theory_free(&w);
                /* the sum without x_0's mean square (1 here): w_l^2 - 1 for l >= 2 */
                double wrong[L];
                for (int l = 0; l < L; l++)
                    wrong[l] = l ? sqrt(t.skip_weight[l] * t.skip_weight[l] - 1) : 1;
                negative(act == NS_ACT_RELU ? "admin relu skip_weight without ms(x_0)"
                                            : "admin gelu skip_weight without ms(x_0)",
                         r.skip_weight, wrong, L, 1, 0);
            }
            if (!strcmp(name, "dslm") && alpha == 1 && other("pre", act, alpha, &w) == NS_OK) {
                negative(act == NS_ACT_RELU ? "dslm relu act_ms by the pre form"
                                            : "dslm gelu act_ms by the pre form",
                         r.act_ms, w.act_ms, L + 1, 1, 1);
                ns_theory_free(&w);
            }
            if (!strcmp(name, "dslm") && alpha == 1 && act == NS_ACT_GELU) {
                /* W2 at the plain init: the branch at E[phi^2] instead of 1 */
                double wrong[L + 1], q = 1, b2 = 1.0 / L;
                wrong[0] = q;
                for (int l = 1; l <= L; l++)
                    wrong[l] = q = (1 - b2) * q + b2 * ns_gauss_phi2(act, 1.0);
                negative("dslm gelu act_ms with W2 unscaled", r.act_ms, wrong, L + 1, 1, 1);
            }
            if (!strcmp(name, "tfixup") && act == NS_ACT_GELU) {
                /* W1 left unscaled: the branch's phi at variance q instead of c^2 q */
                double wrong[L + 1], q = 1, c2 = 1 / sqrt(9.0 * L);
                wrong[0] = q;
                for (int l = 1; l <= L; l++)
                    wrong[l] = q += alpha * alpha * c2 * ns_gauss_phi2(act, q);
                negative("tfixup gelu act_ms with W1 unscaled", r.act_ms, wrong, L + 1, 1, 1);
            }
            ns_theory_free(&t);
            ns_propagate_result_free(&r);
        }
}

static double rel_err(double got, double want)
{
    return fabs(got - want) / fmax(fabs(want), 1e-300);
}

/* Admin: the predicted weights w_1 = 1, w_l^2 = q0 + alpha^2 E[phi^2](q0) + (l - 2) alpha^2
 * E[phi^2](1), so w_L grows as sqrt(L); p_0/p_L a power of L with exponent
 * E[phi'^2]/E[phi^2] - 1 at unit variance (0 for relu: bounded) */
static void test_admin_closed_forms(void)
{
    const double q0 = 1.7, alpha = 0.8, a2 = alpha * alpha;
    ns_theory_input in = {.placement = "admin", .act = NS_ACT_GELU, .depth = 40, .alpha = alpha,
                          .q0 = q0};
    ns_theory t;
    if (ns_theory_mlp(&in, &t) != NS_OK) {
        check(0, "admin: theory failed");
        return;
    }
    double e0 = ns_gauss_phi2(NS_ACT_GELU, q0), e1 = ns_gauss_phi2(NS_ACT_GELU, 1.0);
    int ok = t.skip_weight[0] == 1;
    for (int l = 2; l <= in.depth; l++)
        ok &= rel_err(t.skip_weight[l - 1], sqrt(q0 + a2 * e0 + (l - 2) * a2 * e1)) < 1e-12;
    check(ok, "admin: predicted skip weights differ from w_l^2 = q0 + a^2 E0 + (l-2) a^2 E1");
    ns_theory_free(&t);
    /* the exponent: ln(ratio(2L)/ratio(L)) / ln 2 -> d1/e1 - 1 as L grows */
    double d1 = ns_gauss_dphi2(NS_ACT_GELU, 1.0), r[2];
    ns_theory_bounds b;
    for (int i = 0; i < 2; i++) {
        in.depth = 20000 << i;
        r[i] = ns_theory_bounds_mlp(&in, &b) == NS_OK ? b.grad_ratio : NAN;
    }
    double slope = log(r[1] / r[0]) / log(2.0);
    check(fabs(slope - (d1 / e1 - 1)) < 1e-3, "admin gelu: p_0/p_L grows as L^%.5f, expected "
          "L^%.5f", slope, d1 / e1 - 1);
}

/* DeepScaleLM at q0 = alpha^2: the stream stays at alpha^2 and p_0/p_L = (1 + (k - 1)/L)^L, k =
 * E[phi'^2]/E[phi^2] at unit variance (1 for relu and linear: p_0 = p_L); its init factor's
 * E[phi^2] in core against the quadrature; no O(1/d) term derived */
static void test_dslm_closed_forms(void)
{
    const ns_act_kind acts[] = {NS_ACT_RELU, NS_ACT_GELU, NS_ACT_LINEAR};
    for (int a = 0; a < 3; a++) {
        double e1 = ns_gauss_phi2(acts[a], 1.0), d1 = ns_gauss_dphi2(acts[a], 1.0);
        check(rel_err(ns_act_unit_ms(acts[a]), e1) < 1e-12,
              "act %d: core's E[phi^2] %.15g, the quadrature's %.15g", a, ns_act_unit_ms(acts[a]),
              e1);
        for (int depth = 1; depth <= 1000; depth *= 10) {
            ns_theory_input in = {.placement = "dslm", .act = acts[a], .depth = depth,
                                  .alpha = 0.6, .q0 = 0.36, .width = 256, .hidden = 1024};
            ns_theory_bounds b;
            double want = pow(1 + (d1 / e1 - 1) / depth, depth);
            check(ns_theory_bounds_mlp(&in, &b) == NS_OK && rel_err(b.act_ms_L, 0.36) < 1e-12 &&
                      rel_err(b.grad_ratio, want) < 1e-10 &&
                      ns_theory_finite_covers(&in) == (depth >= 2), /* lambda = 0 at L = 1 */
                  "dslm act %d L %d: q_L %.15g (want 0.36), p0/pL %.15g (want %.15g)", a, depth,
                  b.act_ms_L, b.grad_ratio, want);
        }
    }
}

static void test_bounds(void)
{
    const char *rows[] = {"sandwich", "deepnorm", "lns",  "rezero",
                          "tfixup",   "residual", "admin", "subln", "dslm"};
    const ns_act_kind acts[] = {NS_ACT_RELU, NS_ACT_GELU, NS_ACT_LINEAR};
    const double alphas[] = {1, 0.3}, q0s[] = {1, 2.5};
    for (int p = 0; p < (int)(sizeof rows / sizeof *rows); p++)
        for (int a = 0; a < 3; a++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) {
                    ns_theory_input in = {.placement = rows[p], .act = acts[a],
                                          .norm = NS_NORM_LAYERNORM, .depth = 20,
                                          .alpha = alphas[i], .gate = 0.7, .q0 = q0s[j]};
                    ns_theory t;
                    ns_theory_bounds b;
                    if (ns_theory_mlp(&in, &t) != NS_OK || ns_theory_bounds_mlp(&in, &b) != NS_OK) {
                        check(0, "%s: theory or bounds failed", rows[p]);
                        continue;
                    }
                    double qL = t.act_ms[in.depth], ratio = t.grad_ms[0];
                    check(b.act_ms_exact && b.grad_exact && rel_err(b.act_ms_L, qL) < 1e-10 &&
                              rel_err(b.grad_ratio, ratio) < 1e-10,
                          "%s act %d alpha %g q0 %g: closed form q_L %.15g p0/pL %.15g, "
                          "recursion %.15g %.15g", rows[p], a, alphas[i], q0s[j], b.act_ms_L,
                          b.grad_ratio, qL, ratio);
                    /* not Sub-LN's LayerNorm on relu: the mid norm removes phi's mean, which
                     * divides the backward by the centered variance (README section 2.16) */
                    if (acts[a] != NS_ACT_GELU &&
                        !(!strcmp(rows[p], "subln") && acts[a] == NS_ACT_RELU))
                        check(rel_err(ratio, qL / in.q0) < 1e-10,
                              "%s act %d: p_0/p_L %.15g != q_L/q_0 %.15g", rows[p], a, ratio,
                              qL / in.q0);
                    ns_theory_free(&t);
                }
    /* subln with an RMSNorm mid norm: closed form = recursion; b = 1 on relu (p_0/p_L = q_L/q_0),
     * and with LayerNorm b = pi/(pi - 1): p_0/p_L is the Gamma ratio with that b */
    for (int a = 0; a < 3; a++) {
        ns_theory_input in = {.placement = "subln", .act = acts[a], .norm = NS_NORM_RMSNORM,
                              .depth = 20, .alpha = 0.3, .q0 = 2.5};
        ns_theory t;
        ns_theory_bounds b;
        if (ns_theory_mlp(&in, &t) != NS_OK || ns_theory_bounds_mlp(&in, &b) != NS_OK) {
            check(0, "subln rmsnorm: theory or bounds failed");
            continue;
        }
        check(rel_err(b.act_ms_L, t.act_ms[20]) < 1e-10 && rel_err(b.grad_ratio, t.grad_ms[0]) <
                  1e-10 && (acts[a] == NS_ACT_GELU || rel_err(t.grad_ms[0], t.act_ms[20] / 2.5) <
                  1e-10), "subln rmsnorm act %d: closed form, recursion, q_L/q_0 differ", a);
        ns_theory_free(&t);
    }
    {
        ns_theory_input in = {.placement = "subln", .act = NS_ACT_RELU,
                              .norm = NS_NORM_LAYERNORM, .depth = 20, .alpha = 0.3, .q0 = 2.5};
        ns_theory t;
        if (ns_theory_mlp(&in, &t) == NS_OK) {
            double s = log(40.0) * 0.09, pi = acos(-1.0), bb = pi / (pi - 1), want = 1;
            for (int l = 0; l < 20; l++)
                want *= 1 + bb / (2.5 / s + l);
            check(rel_err(t.grad_ms[0], want) < 1e-10, "subln relu layernorm: p_0/p_L %.15g, "
                  "the Gamma ratio with b = pi/(pi-1) %.15g", t.grad_ms[0], want);
            ns_theory_free(&t);
        } else {
            check(0, "subln relu layernorm: theory failed");
        }
    }
    /* relu closed forms (README section 3's table) */
    ns_theory_input in = {.placement = "lns", .act = NS_ACT_RELU, .depth = 10, .alpha = 1,
                          .q0 = 1};
    double v, H = 0;
    for (int l = 1; l <= 10; l++)
        H += 1.0 / l;
    check(ns_theory_bound_act_ms(&in, &v) == NS_OK && rel_err(v, 1 + H / 2) < 1e-12,
          "lns relu: q_L = 1 + H_L/2, got %.15g", v);
    in.placement = "tfixup";
    check(ns_theory_bound_act_ms(&in, &v) == NS_OK &&
              rel_err(v, pow(1 + 1.0 / (2 * 9 * 10), 10)) < 1e-12,
          "tfixup relu: q_L = (1 + 1/(18 L))^L, got %.15g", v);
    in.placement = "rezero";
    in.gate = 0.5;
    check(ns_theory_bound_act_ms(&in, &v) == NS_OK && rel_err(v, pow(1.125, 10)) < 1e-12,
          "rezero relu gate 0.5: q_L = (1 + w^2/2)^L, got %.15g", v);
    /* gate 0: the identity, exactly */
    in.gate = 0;
    in.act = NS_ACT_GELU;
    in.rho0 = 0.3;
    ns_theory t;
    if (ns_theory_mlp(&in, &t) == NS_OK) {
        int same = 1;
        for (int l = 0; l <= 10; l++)
            same &= t.act_ms[l] == 1 && t.grad_ms[l] == 1 && fabs(t.cos_tokens[l] - 0.3) < 1e-15 &&
                    (l == 10 || t.cos_layer[l] == 1);
        check(same, "rezero gate 0 must be the identity");
        ns_theory_free(&t);
    } else {
        check(0, "rezero gate 0: theory failed");
    }
    /* the forms: b2t has none (it has no MLP block), yet the Transformer theory interprets it
     * as every row */
    ns_theory_form f;
    check(ns_theory_form_of(ns_placement_find("b2t"), &f) == NS_ERR_INVALID, "b2t has a form");
    check(ns_theory_transformer_covers(ns_placement_find("b2t")) &&
              ns_theory_transformer_covers(ns_placement_find("mixln")) &&
              ns_theory_transformer_covers(ns_placement_find("residual")) &&
              !ns_theory_transformer_covers(NULL),
          "the Transformer theory's rows");
    for (int p = 0; p < (int)(sizeof rows / sizeof *rows); p++)
        check(ns_theory_form_of(ns_placement_find(rows[p]), &f) == NS_OK &&
                  (int)f == (int)NS_THEORY_SANDWICH + p &&
                  ns_theory_transformer_covers(ns_placement_find(rows[p])),
              "%s: wrong form", rows[p]);
    in.gate = NAN;
    check(ns_theory_mlp(&in, &t) == NS_ERR_INVALID, "a NaN gate is accepted");
    test_admin_closed_forms();
    test_dslm_closed_forms();
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--verbose") == 0)
            verbose = 1;
        else
            return printf("usage: test_theory_rows [--verbose]\n"), 2;
    }
    ns_set_threads(1); /* 64 tokens: one GEMM row block, a second thread only spins */
    test_bounds();
    test_simulation();
    printf("test_theory_rows: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
