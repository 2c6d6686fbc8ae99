#!/usr/bin/python3
"""h5_readback.py BIN DIR: run `normscope propagate` for every placement and read each file back
with h5py alone, checking the normscope/1 layout (root and /config attributes with their types
and values; datasets with shape, dtype, description and dimension labels) and the physics at
init that any correct implementation must show.

DIR is a scratch directory for the files (created; its *.h5 files are replaced on each run).
Prints only failures and a final summary line; exits non-zero on any failure.
"""
import datetime
import math
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import checklist
from checklist import check, failures


def run(binary, args):
    """run the program; returns (status, stdout, stderr)"""
    p = subprocess.run([binary] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def as_str(v):
    if isinstance(v, bytes):
        return v.decode("utf-8")
    return v


# ---------------------------------------------------------------------------------------------
# attribute checks

STRING, INT, FLOAT = "string", "int", "float"

ROOT_ATTRS = {"schema": STRING, "version": STRING, "command_line": STRING,
              "created_utc": STRING, "blas": STRING, "wall_seconds": FLOAT}
# scheme and span_variant are the legacy names of the placement, which files keep carrying
CONFIG_ATTRS = {"block": STRING, "scheme": STRING, "span_variant": STRING, "placement": STRING,
                "block_equation": STRING, "depth": INT, "width": INT, "seq": INT, "batch": INT,
                "mlp_ratio": FLOAT, "hidden": INT, "act": STRING, "norm": STRING,
                "norm_eps": FLOAT, "scale_init": STRING, "alpha": FLOAT, "seeds": INT,
                "seed": INT, "threads": INT, "out": STRING, "heads": INT, "input": STRING,
                "vocab": INT, "experts": INT, "expert_ratio": FLOAT, "top_k": INT,
                "capacity": FLOAT}


def attr_typed(tag, obj, name, kind):
    """the attribute's value if it exists, is a scalar, and has the HDF5 type kind; else None"""
    if not check(name in obj.attrs, "%s: attribute %s missing" % (tag, name)):
        return None
    aid = obj.attrs.get_id(name)
    if not check(aid.shape == (), "%s: attribute %s is not a scalar (shape %s)"
                 % (tag, name, aid.shape)):
        return None
    v = obj.attrs[name]
    if kind == STRING:
        ok = isinstance(v, (bytes, str)) and aid.get_type().get_class() == h5py.h5t.STRING
    elif kind == INT:
        ok = isinstance(v, np.integer) and aid.get_type().get_class() == h5py.h5t.INTEGER
    else:
        ok = isinstance(v, np.floating) and aid.dtype == np.float64
    if not check(ok, "%s: attribute %s should be a %s, got %r (%s)"
                 % (tag, name, kind, v, aid.dtype)):
        return None
    return as_str(v) if kind == STRING else v.item()


def check_attrs(tag, obj, spec, expected):
    got = {}
    for name, kind in spec.items():
        v = attr_typed(tag, obj, name, kind)
        got[name] = v
        if v is None or name not in expected:
            continue
        want = expected[name]
        if kind == FLOAT:
            check(math.isclose(v, want, rel_tol=1e-12, abs_tol=0),
                  "%s: %s = %r, expected %r" % (tag, name, v, want))
        else:
            check(v == want, "%s: %s = %r, expected %r" % (tag, name, v, want))
    return got


# ---------------------------------------------------------------------------------------------
# one run

DATASETS_L1 = ["act_ms", "act_var", "grad_ms", "cos_tokens", "eff_rank"]   # [S, L+1]
DATASETS_L0 = ["cos_layer", "branch_ms"]                                     # [S, L]
DATASETS_TRANSFORMER = ["attn_out_ms", "mlp_out_ms", "mid_act_ms", "attn_entropy"]  # [S, L]
DATASETS_MOE = ["router_entropy", "load_cv", "dropped_frac", "aux_loss"]             # [S, L]
# placement -> its legacy /config attributes (scheme, span_variant), unchanged since before
# --placement replaced --scheme and --span-variant
LEGACY = {"pre": ("pre", "aggregate"), "post": ("post", "aggregate"),
          "span": ("span", "aggregate"), "span-wrapped": ("span", "wrapped")}


def propagate(binary, outdir, name, opts, version, blas):
    """run with opts (a dict of option -> value); check the file; return it (open) or None"""
    o = {"block": "mlp", "placement": "pre", "depth": 32,
         "width": 256, "seq": 64, "batch": 4, "mlp-ratio": 4.0, "act": "gelu",
         "norm": "layernorm", "norm-eps": 1e-5, "seeds": 4, "seed": 0, "threads": 1,
         "heads": 4, "input": "gaussian", "vocab": 256, "experts": 8, "expert-ratio": 4.0,
         "top-k": 2, "capacity": 0.0}
    o.update(opts)
    if "scheme" in opts:  # --scheme, the alias of --placement
        o["placement"] = opts["scheme"]
    out = os.path.join(outdir, name + ".h5")
    args = ["propagate"]
    for k in opts:
        args += ["--" + k, str(opts[k])]
    if "threads" not in opts:
        args += ["--threads", "1"]
    args += ["--out", out]
    tag = name
    st, so, se = run(binary, args)
    if not check(st == 0, "%s: %s exited %d: %s" % (tag, " ".join(args), st, se.strip())):
        return None
    check(se == "", "%s: unexpected stderr: %r" % (tag, se[:300]))
    check(re.fullmatch(r"wrote %s: .*\n" % re.escape(out), so) is not None,
          "%s: stdout should be one line 'wrote %s: ...', got %r" % (tag, out, so))
    check(not any(".partial-" in f for f in os.listdir(outdir)),
          "%s: a *.partial-* file was left behind" % tag)
    if not check(os.path.isfile(out), "%s: %s not written" % (tag, out)):
        return None
    f = h5py.File(out, "r")

    L, S, d = o["depth"], o["seeds"], o["width"]
    # ---- root attributes
    now = datetime.datetime.now(datetime.timezone.utc)
    got = check_attrs(tag, f, ROOT_ATTRS, {"schema": "normscope/1", "version": version,
                                           "blas": blas})
    cl = got.get("command_line")
    if cl is not None:
        check(" propagate " in cl and out in cl and
              all("--%s %s" % (k, opts[k]) in cl for k in opts),
              "%s: command_line %r does not record the command" % (tag, cl))
    cu = got.get("created_utc")
    if cu is not None and check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", cu),
                                "%s: created_utc %r is not YYYY-MM-DDTHH:MM:SSZ" % (tag, cu)):
        t = datetime.datetime.strptime(cu, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        check(abs((now - t).total_seconds()) < 600,
              "%s: created_utc %s is not the time of the run (now %s)" % (tag, cu, now))
    ws = got.get("wall_seconds")
    if ws is not None:
        check(math.isfinite(ws) and 0 <= ws < 120, "%s: wall_seconds = %r" % (tag, ws))

    # ---- /config
    if not check("config" in f and isinstance(f["config"], h5py.Group),
                 "%s: group /config missing" % tag):
        return f
    placement = o["placement"]
    scheme, variant = LEGACY[placement]
    default_si = "sqrtL" if scheme == "span" else "none"  # span and span-wrapped
    si = str(o.get("scale-init", default_si))
    alpha = {"none": 1.0, "sqrtL": 1 / math.sqrt(L), "sqrt2L": 1 / math.sqrt(2 * L)}.get(si)
    if alpha is None:
        alpha = float(si)
    expected = {"block": o["block"], "scheme": scheme, "span_variant": variant,
                "placement": placement,
                "depth": L, "width": d, "seq": o["seq"], "batch": o["batch"],
                "mlp_ratio": float(o["mlp-ratio"]), "hidden": int(round(o["mlp-ratio"] * d)),
                "act": o["act"], "norm": o["norm"], "norm_eps": float(o["norm-eps"]),
                "scale_init": si, "alpha": alpha, "seeds": S, "seed": o["seed"],
                "threads": o["threads"], "out": out, "heads": o["heads"], "input": o["input"],
                "vocab": o["vocab"], "experts": o["experts"],
                "expert_ratio": float(o["expert-ratio"]), "top_k": o["top-k"],
                "capacity": float(o["capacity"])}
    got = check_attrs(tag + ":/config", f["config"], CONFIG_ATTRS, expected)
    eq = got.get("block_equation")
    if eq is not None:
        # one equation for MLP blocks, two (attention A, then F) for Transformer and MoE blocks
        ok = eq.startswith("y = ") if o["block"] == "mlp" else (" A(" in eq and "; y = " in eq)
        check(ok, "%s: block_equation %r" % (tag, eq))

    # ---- /propagate
    if not check("propagate" in f and isinstance(f["propagate"], h5py.Group),
                 "%s: group /propagate missing" % tag):
        return f
    g = f["propagate"]
    shapes = {n: (S, L + 1) for n in DATASETS_L1}
    shapes.update({n: (S, L) for n in DATASETS_L0})
    transformer = o["block"] in ("transformer", "moe")
    moe = o["block"] == "moe"
    if transformer:
        shapes.update({n: (S, L) for n in DATASETS_TRANSFORMER})
        shapes["attn_entropy_head"] = (S, L, o["heads"])
    if moe:
        shapes.update({n: (S, L) for n in DATASETS_MOE})
        shapes["expert_load"] = (S, L, o["experts"])
    P = None
    if check("param_grad_ms" in g, "%s: /propagate/param_grad_ms missing" % tag):
        pg = g["param_grad_ms"]
        names = pg.attrs.get("names")
        if check(names is not None, "%s: param_grad_ms has no attribute names" % tag):
            names = [as_str(x) for x in np.asarray(names).ravel()]
            P = len(names)
            check(np.asarray(pg.attrs["names"]).ndim == 1, "%s: names is not 1-D" % tag)
            check(all(isinstance(x, str) and x for x in names),
                  "%s: names are not all non-empty strings: %r" % (tag, names))
            ffn = "moe" if moe else "mlp"
            check(ffn + ".w1" in names and ffn + ".w2" in names,
                  "%s: names %r lack %s.w1 / %s.w2" % (tag, names, ffn, ffn))
            if moe:
                check("moe.router" in names, "%s: names %r lack moe.router" % (tag, names))
            if transformer:
                check(all("attn.w" + w in names for w in "qkvo"),
                      "%s: names %r lack attn.wq/wk/wv/wo" % (tag, names))
            check(len(set(names)) == len(names), "%s: duplicate names %r" % (tag, names))
        shapes["param_grad_ms"] = (S, L, P if P is not None else pg.shape[-1])
    labels = {2: ["seed", "layer"], 3: ["seed", "block", "param"]}
    data = {}
    for n, shape in shapes.items():
        p = "/propagate/" + n
        if not check(n in g and isinstance(g[n], h5py.Dataset), "%s: dataset %s missing"
                     % (tag, p)):
            continue
        ds = g[n]
        check(ds.shape == shape, "%s: %s has shape %s, expected %s" % (tag, p, ds.shape, shape))
        check(ds.dtype == np.dtype("<f8"), "%s: %s has dtype %s, expected float64 (<f8)"
              % (tag, p, ds.dtype))
        desc = ds.attrs.get("description")
        check(desc is not None and as_str(desc).strip() != "",
              "%s: %s has no (or an empty) description" % (tag, p))
        want = (["seed", "block"] if n in DATASETS_L0 + DATASETS_TRANSFORMER + DATASETS_MOE
                else ["seed", "block", "head"] if n == "attn_entropy_head"
                else ["seed", "block", "expert"] if n == "expert_load" else labels[len(shape)])
        got_labels = [ds.dims[i].label for i in range(ds.ndim)]
        check(got_labels == want, "%s: %s has dimension labels %s, expected %s"
              % (tag, p, got_labels, want))
        v = ds[()]
        data[n] = v
        check(np.all(np.isfinite(v)), "%s: %s has non-finite values" % (tag, p))
    extra = set(g.keys()) - set(shapes)
    check(not extra, "%s: unexpected objects in /propagate: %s" % (tag, sorted(extra)))
    if len(data) == len(shapes) and all(data[n].shape == shapes[n] for n in shapes):
        sanity(tag, data, min(o["seq"], d))
        if transformer:
            # entropy of causal rows: 0 <= H_i <= ln(i+1), so the mean is at most mean_i ln(i+1)
            top = np.mean(np.log(np.arange(1, o["seq"] + 1)))
            for n in ("attn_entropy", "attn_entropy_head"):
                check(np.all((data[n] >= 0) & (data[n] <= top + 1e-9)),
                      "%s: %s outside [0, %r]" % (tag, n, top))
            check(np.allclose(data["attn_entropy_head"].mean(axis=2), data["attn_entropy"],
                              rtol=1e-12, atol=0), "%s: attn_entropy is not the head mean" % tag)
            check(np.array_equal(data["mlp_out_ms"], data["branch_ms"]),
                  "%s: branch_ms should be the MLP sublayer's output" % tag)
        if moe:
            E = o["experts"]
            check(np.allclose(data["expert_load"].sum(axis=2), 1, rtol=0, atol=1e-12),
                  "%s: expert loads do not sum to 1" % tag)
            check(np.all((data["router_entropy"] >= 0) &
                         (data["router_entropy"] <= math.log(E) + 1e-9)),
                  "%s: router_entropy outside [0, ln E]" % tag)
            check(np.all((data["dropped_frac"] >= 0) & (data["dropped_frac"] <= 1)),
                  "%s: dropped_frac outside [0, 1]" % tag)
            if o["capacity"] == 0:
                check(np.all(data["dropped_frac"] == 0), "%s: drops without a capacity" % tag)
            # the Switch loss E sum_e f_e P_e is 1 for perfectly uniform routing, positive always
            check(np.all(data["aux_loss"] > 0), "%s: aux_loss not positive" % tag)
    return f


def sanity(tag, v, rank_max):
    """properties every correct run has, at any size"""
    am, gm = v["act_ms"], v["grad_ms"]
    check(np.all(np.abs(am[:, 0] - 1) <= 0.10),
          "%s: act_ms[:,0] = %s, expected within 10%% of 1 (input N(0,1))" % (tag, am[:, 0]))
    check(np.all(np.abs(gm[:, -1] - 1) <= 0.10),
          "%s: grad_ms[:,L] = %s, expected within 10%% of 1 (cotangent N(0,1))"
          % (tag, gm[:, -1]))
    for n in ("act_ms", "grad_ms", "branch_ms"):
        check(np.all(v[n] > 0), "%s: %s has entries <= 0" % (tag, n))
    check(np.all(v["act_var"] >= 0), "%s: act_var has negative entries" % tag)
    check(np.all(v["param_grad_ms"] >= 0), "%s: param_grad_ms has negative entries" % tag)
    bad = v["act_var"] > am + 1e-12
    check(not bad.any(), "%s: act_var > act_ms at %s" % (tag, np.argwhere(bad)[:5].tolist()))
    er = v["eff_rank"]
    check(np.all((er >= 1 - 1e-12) & (er <= rank_max + 1e-9)),
          "%s: eff_rank outside [1, %d]: min %r max %r" % (tag, rank_max, er.min(), er.max()))
    for n in ("cos_tokens", "cos_layer"):
        c = v[n]
        check(np.all(np.abs(c) <= 1 + 1e-12), "%s: %s outside [-1, 1]: min %r max %r"
              % (tag, n, c.min(), c.max()))


def close(f):
    if f is not None:
        f.close()


def guarded(tag, fn):
    """run one case; an exception (an unreadable file, a missing object) is a failure"""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - report it and go on with the other cases
        check(False, "%s: %s: %s" % (tag, type(e).__name__, e))


def main():
    if len(sys.argv) != 3:
        print("usage: h5_readback.py /path/to/normscope SCRATCH_DIR", file=sys.stderr)
        return 2
    binary, outdir = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(outdir, exist_ok=True)
    for fn in os.listdir(outdir):
        if fn.endswith(".h5") or ".h5.partial-" in fn:
            os.unlink(os.path.join(outdir, fn))

    st, so, se = run(binary, ["--version"])
    m = re.fullmatch(r"normscope (\S+)\nBLAS: (.+)\nkernels: (.+)\n", so)
    if not check(st == 0 and m is not None and se == "",
                 "normscope --version: exit %d, stdout %r, stderr %r" % (st, so, se)):
        version = blas = None
    else:
        version, blas = m.group(1), m.group(2)

    tiny = {"depth": 4, "width": 32, "seq": 8, "batch": 16, "seeds": 2}
    runs = [
        ("pre_gelu_ln", dict(tiny, placement="pre", act="gelu", norm="layernorm", seed=7)),
        # the one use of --scheme in the tests: the alias still selects the placement
        ("post_relu_rms", dict(tiny, scheme="post", act="relu", norm="rmsnorm", **{
            "mlp-ratio": 2, "norm-eps": 1e-6})),
        ("span_gelu_rms", dict(tiny, placement="span", norm="rmsnorm")),
        ("span_wrapped_relu_ln", dict(tiny, placement="span-wrapped", act="relu", **{
            "scale-init": "sqrt2L"})),
        ("pre_linear_scale", dict(tiny, placement="pre", act="linear", threads=2, **{
            "scale-init": "0.25"})),
        ("defaults_small", {"depth": 3, "width": 32, "seq": 8, "batch": 16}),
        ("tr_pre_tokens", dict(tiny, block="transformer", placement="pre", input="tokens",
                               vocab=50)),
        ("tr_post_rms", dict(tiny, block="transformer", placement="post", norm="rmsnorm",
                             heads=2)),
        ("tr_span", dict(tiny, block="transformer", placement="span", heads=8)),
        ("tr_span_wrapped_h1", dict(tiny, block="transformer", placement="span-wrapped", heads=1,
                                    act="relu")),
        ("moe_pre_k2", dict(tiny, block="moe", placement="pre", experts=4)),
        ("moe_span_k1_capacity", dict(tiny, block="moe", placement="span", experts=3,
                                      capacity=1.0, **{"top-k": 1, "expert-ratio": 2})),
    ]
    if version is not None:
        for name, opts in runs:
            guarded(name, lambda: close(propagate(binary, outdir, name, opts, version, blas)))

        # ---- physics at a modest width
        mid = {"depth": 8, "width": 256, "seq": 16, "batch": 4}

        def post_physics(norm):
            tag = "post_physics_" + norm
            f = propagate(binary, outdir, tag, dict(mid, placement="post", norm=norm, seeds=2),
                          version, blas)
            if f is not None:
                am = f["propagate/act_ms"][()]
                # a post-norm stream is normalized after every block (norm gain 1, bias 0)
                check(np.all(np.abs(am[:, 1:] - 1) <= 0.01),
                      "%s: act_ms[:,1:] should be within 1%% of 1, got range [%r, %r]"
                      % (tag, am[:, 1:].min(), am[:, 1:].max()))
                f.close()

        def span_physics():
            tag = "span_physics"
            f = propagate(binary, outdir, tag, dict(mid, placement="span", seeds=4), version, blas)
            if f is not None:
                am = f["propagate/act_ms"][()]
                alpha = 1 / math.sqrt(mid["depth"])  # the default Scale Init for span: sqrtL
                # y = x + N(F(x)) with gain alpha: each block adds about alpha^2 to the mean
                # square (the cross term averages out over blocks and seeds)
                inc = np.diff(am, axis=1).mean()
                check(abs(inc / alpha ** 2 - 1) <= 0.05,
                      "%s: mean act_ms increment per block %r, expected alpha^2 = %r within 5%%"
                      % (tag, inc, alpha ** 2))
                f.close()

        for norm in ("layernorm", "rmsnorm"):
            guarded("post_physics_" + norm, lambda: post_physics(norm))
        guarded("span_physics", span_physics)

    if failures:
        print("h5_readback: %d of %d checks FAILED" % (len(failures), checklist.nchecks))
        return 1
    print("h5_readback: all %d checks passed" % checklist.nchecks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
