/* cmd_verify.c: `normscope verify`, the theory against simulation over a battery of cases.
 *
 * Each case (block kind x placement x activation x Scale Init, and for MLP stacks the width)
 * runs the propagate protocol over several seeds; the seed mean of every metric is compared with
 * the theory layer by layer (verify.h). MLP stacks run at d = 64, 256 and 1024 and are compared
 * with the theory at their width (grad_ms to O(1/d)), with the d -> infinity theory's error
 * printed beside it. The table goes to stdout and to HDF5 (/verify); the exit status is 1
 * if a row with an exact verdict fails its tolerance. Transformer cases are compared with the
 * score-field trajectories (whose Monte Carlo standard error has its own column and widens the
 * interval), with the expected-Gram recursion in the d -> infinity column; the act_ms, grad_ms
 * and cos_tokens of pre, post and span get exact verdicts (TOL_TRANSFORMER), the others the
 * verdict "approx". MoE cases are compared with the expected-Gram recursion, always "approx". */
#define _GNU_SOURCE
#include "cli.h"
#include "h5out.h"
#include "options.h"
#include "progress.h"
#include "propagate.h"
#include "theory.h"
#include "verify.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int quick, threads;
    const char *out;
} opts;

#define F(field) offsetof(opts, field)
static const ns_opt_spec verify_specs[] = {
    {"quick", K_FLAG, F(quick), NULL, NULL, NS_ONE, NULL,
     "a smaller battery for CI: MLP widths 64 and 256 at depth 8, relu and gelu (default: "
     "widths 64, 256 and 1024 at depth 32, relu, gelu and linear)", NULL, NULL},
    {"threads", K_THREADS, F(threads), NULL, NULL, NS_ONE, "N",
     "OpenMP threads (default: all cores)",
     NULL, NULL},
    {"out", K_TEXT, F(out), NULL, "verify.h5", NS_ONE, "FILE", "HDF5 file for the table",
     NULL, NULL},
};

/* What is compared, and how closely. Where the theory includes the width's leading correction
 * (act_ms and grad_ms of pre, post, span, span-wrapped, sandwich, lns, deepnorm, admin, dslm,
 * mixln, subln, rezero and tfixup: act_ms is exact in expectation but for span-wrapped's and
 * rezero's and tfixup's with gelu, which are taken to O(1/d) as grad_ms is) the seed spread
 * alone decides: a layer passes while the theory lies inside the t
 * interval of the seed mean that holds for all the case's layers at once with probability
 * CI_FAIL (per-layer intervals would fail a correct theory in a few of a battery's hundreds of
 * cases), and the
 * tolerance is only TOL_ROUNDING. Elsewhere the theory is the d -> infinity one, and the
 * relative tolerances below allow its finite-width error at d >= WIDE (a layer also passes
 * inside the interval); below WIDE such rows are reported as approx. */
#define CI_FAIL 0.999
#define WIDE 1024
/* Transformer stacks of pre, post and span: act_ms, grad_ms and cos_tokens are exact-verdict
 * rows with the accuracy the theory claims for them (analysis/theory/README.md, 9.10), or inside
 * the interval widened by the trajectories' Monte Carlo standard error. The other rows stay
 * approx: the O(1/d) terms of their norms are not in the theory, and they exceed 5% where a
 * block has more norms (sandwich, subln) or a norm divides by the realized |x + F(x)| of the
 * block input (span-wrapped at alpha = 1). */
#define TOL_TRANSFORMER 0.05

/* 1 for the Transformer cases of TOL_TRANSFORMER */
static int transformer_exact(const ns_placement *pl)
{
    ns_theory_form f;
    return ns_theory_form_of(pl, &f) == NS_OK &&
           (f == NS_THEORY_PRE || f == NS_THEORY_POST || f == NS_THEORY_SPAN);
}
/* the tolerance of the rows the interval decides: what the theory leaves out on purpose, the
 * norm's eps (1e-5 of the variance) and float32 rounding; PostNorm's act_ms is 1 in every seed,
 * so its interval has no width */
#define TOL_ROUNDING 1e-4
static const struct {
    const char *name;
    double floor, tol_rel;
} metrics[] = {
    {"act_ms", 0.0, 0.03},
    {"grad_ms", 0.0, 0.10},
    {"cos_tokens", 0.05, 0.05}, /* cosines: relative to max(|theory|, 0.05) */
    {"cos_layer", 0.05, 0.02},
    /* Admin's profiled skip weights (w_l, l >= 2), an extra row where the theory has them */
    {"skip_weight", 0.0, 0.02},
};
#define NMETRICS (int)(sizeof metrics / sizeof metrics[0] - 1) /* the rows of every case */

typedef struct {
    char name[96], metric[16];
    ns_verify_stats st;
    double tol, err_inf; /* err_inf: the d -> infinity theory's worst relative error, or NAN */
    double mc_se;        /* the theory's largest Monte Carlo standard error over the layers,
                          * relative to the prediction (Transformer and MoE), or NAN */
    int exact;
} row;

static const char *const scales[] = {"none", "sqrtL"};
/* the branch gates' start in gated rows (ReZero): at its default 0 the stack is the identity and
 * a comparison checks nothing */
#define GATE 0.5
static const char *const act_names[] = {"gelu", "relu", "linear"};

/* The cases: every placement the theory has a form for (in table order) x activation x Scale
 * Init, as MLP stacks; every placement the Transformer theory covers, with gelu and relu, as
 * Transformer stacks; then these MoE cases, each on the first placement of its form. The
 * Transformer and MoE cases run smaller (approx_* attributes of /verify): attention makes a run
 * several times dearer. */
static const struct {
    ns_theory_form form;
    const char *scale;
    ns_act_kind act;
    int top_k;
} moe_cases[] = {{NS_THEORY_PRE, "none", NS_ACT_GELU, 2},
                 {NS_THEORY_SPAN, "sqrtL", NS_ACT_GELU, 1}};
#define NMOE (int)(sizeof moe_cases / sizeof moe_cases[0])

/* Mix-LN's split in the cases: --post-fraction's default */
#define POST_FRACTION 0.25

/* 1 if the MLP recursion has a form for every block of row p (a schedule row: each of its rows)
 * in a stack of L blocks */
static int mlp_covers(const ns_placement *p, int L)
{
    ns_theory_input in = {.placement = p->name, .post_fraction = POST_FRACTION, .depth = L,
                          .alpha = 1, .q0 = 1};
    ns_theory_form form;
    int ok = 1;
    for (int l = 1; l <= L; l++)
        ok &= ns_theory_block_form(&in, l, &form) == NS_OK;
    return ok;
}

/* the placements with a theory at depth L, in table order (at most max); with tf, only those
 * the Transformer/MoE theory covers too; returns their count */
static int covered(const ns_placement **out, int max, int tf, int L)
{
    const ns_placement *p;
    int n = 0;
    for (int i = 0; (p = ns_placement_at(i)); i++)
        if (n < max && (tf ? ns_theory_transformer_covers(p) : mlp_covers(p, L)))
            out[n++] = p;
    return n;
}

/* the first placement of a form */
static const ns_placement *first_of(ns_theory_form form)
{
    const ns_placement *p;
    ns_theory_form f;
    for (int i = 0; (p = ns_placement_at(i)); i++)
        if (ns_theory_form_of(p, &f) == NS_OK && f == form)
            return p;
    return NULL;
}

/* compares one run at width d with its theory t, and the d -> infinity theory t_inf (NULL if
 * t is that one); appends NMETRICS rows, and a skip_weight row where t has skip weights (an
 * MLP stack's: one sublayer per block); tf_exact: a Transformer case whose first three metrics
 * get an exact verdict (TOL_TRANSFORMER); returns the rows appended */
static int compare(const ns_propagate_result *r, const ns_theory *t, const ns_theory *t_inf,
                   int d, const char *name, int tf_exact, row *rows)
{
    int S = r->seeds, L = r->depth;
    double p_top = 0; /* theory's grad_ms is relative to p_L = 1: scale by the measured top */
    for (int s = 0; s < S; s++)
        p_top += r->grad_ms[(size_t)s * (L + 1) + L] / S;
    double *grad_th = malloc(3 * (L + 1) * sizeof *grad_th), *grad_inf = grad_th + (L + 1),
           *grad_se = grad_inf + (L + 1);
    for (int l = 0; grad_th && l <= L; l++) {
        grad_th[l] = t->grad_ms[l] * p_top;
        grad_inf[l] = t_inf ? t_inf->grad_ms[l] * p_top : NAN;
        grad_se[l] = t->grad_ms_se ? t->grad_ms_se[l] * p_top : 0;
    }
    const double *x[] = {r->act_ms, r->grad_ms, r->cos_tokens, r->cos_layer, r->skip_weight};
    const double *th[] = {t->act_ms, grad_th ? grad_th : NULL, t->cos_tokens, t->cos_layer,
                          t->skip_weight};
    const double *thi[] = {t_inf ? t_inf->act_ms : NULL, t_inf && grad_th ? grad_inf : NULL,
                           t_inf ? t_inf->cos_tokens : NULL, t_inf ? t_inf->cos_layer : NULL,
                           t_inf ? t_inf->skip_weight : NULL};
    const double *th_se[] = {t->act_ms_se, t->grad_ms_se, t->cos_tokens_se, NULL, NULL};
    /* the same on the compared scale (grad_ms times the measured top) */
    const double *th_se_abs[] = {t->act_ms_se, t->grad_ms_se && grad_th ? grad_se : NULL,
                                 t->cos_tokens_se, NULL, NULL};
    int n[] = {L + 1, L + 1, L + 1, L, L}, first[] = {1, 0, 1, 0, 1},
        last[] = {L + 1, L, L + 1, L, L};
    int nrows = NMETRICS + (t->skip_weight && r->skip_weight && r->sublayers == 1);
    for (int k = 0; k < nrows; k++) {
        row *w = &rows[k];
        snprintf(w->name, sizeof w->name, "%s", name);
        snprintf(w->metric, sizeof w->metric, "%s", metrics[k].name);
        /* act_ms (k = 0) and grad_ms (k = 1) carry the width's correction where t->finite */
        int tf = t->act_ms_se != NULL; /* the trajectories: a Transformer stack */
        int at_width = !tf && t->finite && k <= 1;
        w->tol = at_width ? TOL_ROUNDING : tf && k <= 2 ? TOL_TRANSFORMER : metrics[k].tol_rel;
        w->exact = tf ? tf_exact && k <= 2 : t->exact && (at_width || d >= WIDE);
        if (!th[k] || ns_verify_compare(x[k], S, n[k], th[k], th_se_abs[k], first[k], last[k],
                                        metrics[k].floor, w->tol, CI_FAIL, &w->st) != 0)
            w->st = (ns_verify_stats){.worst_rel_err = NAN, .share_in_ci = NAN, .pass = 0};
        ns_verify_stats si;
        w->err_inf = thi[k] && ns_verify_compare(x[k], S, n[k], thi[k], NULL, first[k], last[k],
                                                 metrics[k].floor, w->tol, CI_FAIL, &si) == 0
                         ? si.worst_rel_err
                         : NAN;
        /* relative to t's own arrays (grad_ms relative to p_L = 1, as its se) */
        const double *own[] = {t->act_ms, t->grad_ms, t->cos_tokens, t->cos_layer,
                               t->skip_weight};
        w->mc_se = th_se[k] ? 0 : NAN;
        for (int l = first[k]; th_se[k] && l < last[k]; l++)
            w->mc_se = fmax(w->mc_se, th_se[k][l] / fmax(fabs(own[k][l]), metrics[k].floor));
    }
    free(grad_th);
    return nrows;
}

static int write_table(ns_h5 *h, const row *rows, int n, const opts *o, int width, int depth,
                       int seeds, const int approx_dims[3])
{
    const char **names = malloc(2 * (size_t)n * sizeof *names), **mets = names + n;
    double *col = malloc(6 * (size_t)n * sizeof *col);
    int st = names && col ? NS_OK : NS_ERR_NOMEM;
    for (int i = 0; st == NS_OK && i < n; i++) {
        names[i] = rows[i].name, mets[i] = rows[i].metric;
        col[i] = rows[i].st.worst_rel_err;
        col[n + i] = rows[i].st.share_in_ci;
        col[2 * n + i] = rows[i].tol;
        col[3 * n + i] = rows[i].exact;
        col[4 * n + i] = rows[i].st.pass;
        col[5 * n + i] = rows[i].err_inf;
    }
    /* the columns are the table's /verify entries, in order (h5schema.h) */
    _Static_assert(NS_H5S_VERIFY_WORST_REL_ERR_INF - NS_H5S_VERIFY_WORST_REL_ERR == 5,
                   "6 numeric columns");
    const ns_h5schema_sizes z = {.rows = (size_t)n};
    if (st == NS_OK && !(st = ns_h5_group(h, "/verify")) &&
        !(st = ns_h5_entry_strings(h, "", NS_H5S_VERIFY_CASE, n, names)))
        st = ns_h5_entry_strings(h, "", NS_H5S_VERIFY_METRIC, n, mets);
    for (int c = 0; st == NS_OK && c < 6; c++)
        st = ns_h5_entry(h, "", (ns_h5schema_id)(NS_H5S_VERIFY_WORST_REL_ERR + c), &z,
                         col + (size_t)c * n);
    if (st == NS_OK && !(st = ns_h5_attr_int(h, "/verify", "width", width)) &&
        !(st = ns_h5_attr_int(h, "/verify", "depth", depth)) &&
        !(st = ns_h5_attr_int(h, "/verify", "seeds", seeds)) &&
        !(st = ns_h5_attr_int(h, "/verify", "approx_width", approx_dims[0])) &&
        !(st = ns_h5_attr_int(h, "/verify", "approx_depth", approx_dims[1])) &&
        !(st = ns_h5_attr_int(h, "/verify", "approx_seeds", approx_dims[2])))
        st = ns_h5_attr_int(h, "/verify", "quick", o->quick);
    free(names);
    free(col);
    return st;
}

int ns_cmd_verify(int argc, char **argv)
{
    static const ns_command cmd = {
        .name = "normscope verify",
        .doc = "Compare the mean-field theory with simulation over a battery of cases; exit 1 if "
               "an exact case fails its tolerance.",
        .own = verify_specs,
        .nown = (int)(sizeof verify_specs / sizeof verify_specs[0])};
    static ns_opt_given g;
    opts o = {0};
    const char *command_line = ns_cli_command_line(argc, argv);
    if (ns_opt_parse(&g, &cmd, argc, argv) != 0) {
        ns_opt_free(&g);
        return NS_EXIT_USAGE;
    }
    ns_opt_point_at(&g, 0, &o);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (!o.threads)
        o.threads = ncpu > 0 ? (int)ncpu : 1;
    char err[512];
    /* the threads' own needs; the battery's models (up to width 1024) are not estimated */
    if (ns_cli_memory_fits(0, o.threads, err, sizeof err) != 0) {
        ns_cli_error("%s", err);
        ns_opt_free(&g);
        return NS_EXIT_USAGE;
    }
    /* MLP widths and seeds: narrow runs are cheap, and their seed spread is larger, so they
     * take more seeds; quick stays well under a minute of CPU */
    static const int widths_full[] = {64, 256, 1024}, seeds_full[] = {32, 16, 8};
    static const int widths_quick[] = {64, 256}, seeds_quick[] = {16, 8};
    const int *widths = o.quick ? widths_quick : widths_full;
    const int *wseeds = o.quick ? seeds_quick : seeds_full;
    int nwidths = o.quick ? 2 : 3, width = widths[nwidths - 1], seeds = wseeds[nwidths - 1];
    int depth = o.quick ? 8 : 32;
    const ns_placement *pls[64], *tfpls[64];
    int npl = covered(pls, 64, 0, depth), ntf = covered(tfpls, 64, 1, depth) * 2 * 2;
    int nacts = o.quick ? 2 : 3, seq = 32, batch = 4;
    int nper = npl * nacts * 2, nmlp = nper * nwidths, ncases = nmlp + ntf + NMOE;
    /* the Transformer and MoE cases' width, depth and seeds */
    int tdims[3] = {o.quick ? 256 : 512, o.quick ? 8 : 16, o.quick ? 8 : 12};
    row *rows = calloc((size_t)ncases * (NMETRICS + 1), sizeof *rows);
    ns_h5 *h = NULL;
    if (!rows) {
        ns_cli_error("out of memory");
        ns_opt_free(&g);
        return NS_EXIT_RUNTIME;
    }
    ns_cli_install_signals(); /* before the output exists: a signal must never leave a partial */
    ns_cli_note_no_output(o.out);
    if (ns_h5_create(&h, o.out) != NS_OK) {
        ns_cli_error("%s", ns_h5_error(h));
        ns_h5_free(h);
        free(rows);
        ns_opt_free(&g);
        return NS_EXIT_USAGE;
    }
    ns_set_threads(o.threads);
    ns_cli_blas_reserve(o.threads);
    ns_progress bar;
    ns_progress_start(&bar, "verify", "cases");
    int st = NS_OK, nrows = 0;
    for (int c = 0; st == NS_OK && c < ncases; c++) {
        const ns_placement *pl;
        const char *si;
        ns_act_kind act;
        ns_block_kind block = NS_BLOCK_MLP;
        int top_k = 0, k = c - nmlp, wi = k < 0 ? c / nper : 0, cm = c % nper;
        if (k < 0) {
            pl = pls[cm / (2 * nacts)], si = scales[cm % 2];
            act = (ns_act_kind)((cm / 2) % nacts);
        } else if (k < ntf) {
            block = NS_BLOCK_TRANSFORMER;
            pl = tfpls[k / 4], si = scales[k % 2], act = (ns_act_kind)((k / 2) % 2);
        } else {
            block = NS_BLOCK_MOE;
            pl = first_of(moe_cases[k - ntf].form), si = moe_cases[k - ntf].scale;
            act = moe_cases[k - ntf].act, top_k = moe_cases[k - ntf].top_k;
        }
        int w = k < 0 ? widths[wi] : tdims[0], L = k < 0 ? depth : tdims[1];
        ns_propagate_opts po = {
            .model = {.block = block, .placement = pl, .post_fraction = POST_FRACTION,
                      .depth = L, .width = w,
                      .hidden = w, .ntok = seq * batch, .seq = seq, .heads = 4, .experts = 8,
                      .expert_hidden = w, .top_k = top_k, .act = act,
                      .norm = NS_NORM_LAYERNORM, .norm_eps = 1e-5,
                      .gate_init = pl->gated ? GATE : 0},
            .seeds = k < 0 ? wseeds[wi] : tdims[2], .seed = 1000, .input = NS_INPUT_GAUSSIAN};
        ns_scale_init_parse(si, L, &po.model.alpha);
        ns_theory_input in = {.placement = pl->name, .post_fraction = POST_FRACTION,
                              .act = act, .norm = NS_NORM_LAYERNORM,
                              .depth = L, .width = w, .hidden = w,
                              .alpha = po.model.alpha, .gate = po.model.gate_init, .q0 = 1,
                              .rho0 = 0, .norm_eps = po.model.norm_eps};
        /* an MLP case without the O(1/d) term is "approx" below WIDE: it runs at the widest
         * width of the battery only (full: 1024, where it is exact; quick: 256) */
        if (block == NS_BLOCK_MLP && wi < nwidths - 1 && !ns_theory_finite_covers(&in)) {
            ns_progress_update(&bar, c + 1, ncases);
            continue;
        }
        ns_propagate_result r;
        ns_theory t = {0}, t_inf = {0};
        char name[96];
        if (block == NS_BLOCK_MLP)
            snprintf(name, sizeof name, "mlp d=%d %s %s %s", w, pl->name, act_names[act], si);
        else if (block == NS_BLOCK_TRANSFORMER)
            snprintf(name, sizeof name, "transformer %s %s %s", pl->name, act_names[act], si);
        else
            snprintf(name, sizeof name, "moe-top%d %s %s %s", top_k, pl->name, act_names[act], si);
        if (block == NS_BLOCK_MLP) {
            st = ns_theory_mlp(&in, &t);
            in.width = 0; /* beside it, what the d -> infinity theory would say */
            if (st == NS_OK && t.finite)
                st = ns_theory_mlp(&in, &t_inf);
        } else {
            /* as propagate's /theory and /theory_inf: Transformer stacks the score-field
             * trajectories, and beside them the expected-Gram recursion; MoE stacks that
             * recursion alone (analysis/theory/README.md, 9.9) */
            in.width = 0;
            ns_theory_tf_input ti = {.base = in, .block = block, .seq = seq,
                                     .attn = NS_THEORY_ATTN_SOFTMAX, .experts = 8,
                                     .top_k = top_k};
            st = ns_theory_transformer(&ti, block == NS_BLOCK_MOE ? &t : &t_inf);
            ti.attn = NS_THEORY_ATTN_TRAJECTORY;
            ti.base.width = w; /* PostNorm: the norms' O(1/d) terms (section 9.10) */
            ti.heads = po.model.heads;
            ti.mc_samples = NS_THEORY_TRAJECTORIES;
            if (st == NS_OK && block == NS_BLOCK_TRANSFORMER)
                st = ns_theory_transformer(&ti, &t);
        }
        if (st == NS_OK && (st = ns_propagate(&po, &r, NULL, NULL)) == NS_OK) {
            nrows += compare(&r, &t, t_inf.act_ms ? &t_inf : NULL, w, name,
                             block == NS_BLOCK_TRANSFORMER && transformer_exact(pl),
                             rows + nrows);
            ns_propagate_result_free(&r);
        }
        ns_theory_free(&t);
        ns_theory_free(&t_inf);
        ns_progress_update(&bar, c + 1, ncases);
        if (ns_cli_interrupted())
            st = NS_ERR_INTERRUPTED;
    }
    ns_progress_finish(&bar);
    int failed = 0, nexact = 0;
    if (st == NS_OK) {
        printf("%-11s %-40s %14s %12s %8s %6s %10s %6s  %s\n", "metric", "case", "worst rel err",
               "d->inf err", "MC se", "layer", "in 95% CI", "tol", "verdict");
        for (int i = 0; i < nrows; i++) {
            const row *w = &rows[i];
            const char *verdict = !w->exact ? "approx" : w->st.pass ? "ok" : "FAIL";
            failed += w->exact && !w->st.pass;
            nexact += w->exact;
            printf("%-11s %-40s %14.4f %12.4f %8.4f %6d %9.0f%% %6.3f  %s\n", w->metric,
                   w->name, w->st.worst_rel_err, w->err_inf, w->mc_se, w->st.worst_layer,
                   100 * w->st.share_in_ci, w->tol, verdict);
        }
        printf("verify: %d exact comparisons, %d failed (MLP depth %d; width:seeds", nexact,
               failed, depth);
        for (int i = 0; i < nwidths; i++)
            printf(" %d:%d", widths[i], wseeds[i]);
        printf("); %d approximate (below width %d the d -> infinity rows, run at width %d "
               "only; Transformer, MoE: width %d, depth %d, %d seeds)\n",
               nrows - nexact, WIDE, width, tdims[0], tdims[1], tdims[2]);
        if (!(st = ns_h5_write_root_attrs(h, command_line)) &&
            !(st = write_table(h, rows, nrows, &o, width, depth, seeds, tdims)))
            st = ns_h5_commit(h);
    }
    int status = NS_EXIT_OK;
    if (st != NS_OK) {
        if (st == NS_ERR_INTERRUPTED)
            ns_cli_error("interrupted; no output written to %s", o.out);
        else if (st == NS_ERR_IO)
            ns_cli_error("%s", ns_h5_error(h));
        else
            ns_cli_error("verify failed: %s", ns_strerror(st));
        status = NS_EXIT_RUNTIME;
    } else if (failed) {
        status = NS_EXIT_RUNTIME;
    }
    ns_h5_free(h);
    free(rows);
    ns_opt_free(&g);
    return status;
}
