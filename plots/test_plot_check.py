#!/usr/bin/env python3
"""test_plot_check.py: the Python half of test_plot.sh (h5py + numpy).

  add-theory SRC DST EXACT    copy SRC to DST with its /theory replaced by a test oracle (act_ms
                              with attributes `exact` = EXACT and `model` on the dataset,
                              act_ms_bound for span, grad_ms relative to p_L = 1, cos_tokens,
                              cos_layer)
  strip-theory SRC DST        copy SRC to DST without /theory
  images DIR FORMATS FIG...   every DIR/FIG.<fmt> is a valid PNG (1280x800 from IHDR), PDF or SVG
  data DIR FILE...            every .dat in DIR parses (a '#' header line naming the columns) and
                              its numbers equal the files' seed means, sample sd, 95% t intervals
                              and theory (scaled by the measured grad_ms[L] for grad_ms); a sweep
                              file counts as one input per point /runs/<i>. MoE: the layer figures
                              (dropped_frac only for runs with a capacity limit), their reference
                              lines, and the expert_load heatmaps with their shared colour scale.
                              Depth sweeps: depth_act_ms / depth_grad_ratio against series found
                              independently (runs grouped by /config but depth), their slopes
                              equal to /sweep/fits in the .dat and (rounded) in the legend, and
                              consistent with a least-squares fit of the drawn means
  corrupt-fits SRC DST        copy a depth sweep with /sweep/fits/first_point scrambled
  mix-series SRC DST          copy a depth sweep with /runs/1's width changed

Prints one line per problem; exits 1 if there is any."""
import math
import os
import shutil
import sys
import xml.etree.ElementTree as ET

import h5py
import numpy as np

# t_{0.975, dof} for dof = 1..10 (two-sided 95%)
T975 = [12.706204736174696, 4.3026527297494619, 3.1824463052837038, 2.7764451051977925,
        2.5705818356363141, 2.4469118511449683, 2.3646242515927844, 2.3060041352041658,
        2.2621571627982053, 2.2281388519862735]

# figure name -> (measured dataset, theory, bound, theory relative to the last layer)
LAYER_FIGS = {
    "act_ms": ("propagate/act_ms", "theory/act_ms", "theory/act_ms_bound", False),
    "grad_ms": ("propagate/grad_ms", "theory/grad_ms", None, True),
    "cos_tokens": ("propagate/cos_tokens", "theory/cos_tokens", None, False),
    "eff_rank": ("propagate/eff_rank", None, None, False),
    "cos_layer": ("propagate/cos_layer", "theory/cos_layer", None, False),
    "attn_entropy": ("propagate/attn_entropy", None, None, False),
    "router_entropy": ("propagate/router_entropy", None, None, False),
    "load_cv": ("propagate/load_cv", None, None, False),
    "dropped_frac": ("propagate/dropped_frac", None, None, False),
}
# figures that leave some runs out: figure name -> predicate on /config
LAYER_APPLIES = {"dropped_frac": lambda cfg: float(cfg["capacity"]) > 0}
COLUMNS = ["mean", "sd", "ci95_lo", "ci95_hi", "theory", "bound"]

problems = []


def problem(msg):
    problems.append(msg)
    print("  " + msg)


def add_theory(src, dst, exact):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        if "theory" in f:
            del f["theory"]
        L = int(f["config"].attrs["depth"])
        scheme = f["config"].attrs["placement"]
        l = np.arange(L + 1.0)
        g = f.create_group("theory")
        q = 1 + 0.425 * l if scheme == "pre" else 1 + l / L
        d = g.create_dataset("act_ms", data=q)
        d.attrs["exact"] = int(exact)
        d.attrs["model"] = "test oracle: q_l = q_0 + l s"
        if scheme == "span":
            g.create_dataset("act_ms_bound", data=(1 + l / math.sqrt(L)) ** 2)
        g.create_dataset("grad_ms", data=1 + 0.3 * (L - l))  # p_l / p_L, 1 at l = L
        g.create_dataset("cos_tokens", data=np.linspace(0, 0.2, L + 1))
        g.create_dataset("cos_layer", data=np.linspace(0.9, 0.95, L))


def strip_theory(src, dst):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        if "theory" in f:
            del f["theory"]


def open_ro(p):
    """read-only; a training log whose writer is running or was killed opens only as SWMR"""
    try:
        return h5py.File(p, "r")
    except OSError:
        return h5py.File(p, "r", swmr=True)


def runs_of(paths):
    """(source as the .dat comments name it, path, group prefix) per run, in plotting order"""
    out = []
    for p in paths:
        with open_ro(p) as f:
            if "runs" in f:
                out += [(f"{p}:/runs/{i}", p, f"/runs/{i}") for i in range(len(f["runs"]))]
            else:
                out.append((p, p, ""))
    return out


def check_images(d, formats, figs):
    for fig in figs:
        for fmt in formats.split(","):
            path = os.path.join(d, f"{fig}.{fmt}")
            try:
                data = open(path, "rb").read()
            except OSError as e:
                problem(f"{path}: {e}")
                continue
            if fmt == "png":
                if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
                    problem(f"{path}: not a PNG")
                    continue
                w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
                if (w, h) != (1280, 800):
                    problem(f"{path}: {w}x{h}, expected 1280x800")
                if b"IEND" not in data[-16:]:
                    problem(f"{path}: no IEND chunk (truncated)")
            elif fmt == "pdf":
                if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
                    problem(f"{path}: not a complete PDF")
            elif fmt == "svg":
                try:
                    root = ET.fromstring(data)
                except ET.ParseError as e:
                    problem(f"{path}: SVG does not parse: {e}")
                    continue
                if not root.tag.endswith("svg") or root.get("width") != "1280":
                    problem(f"{path}: root <{root.tag}> width {root.get('width')}")
            else:
                problem(f"unknown format {fmt}")


def parse_blocks(path):
    """blocks separated by two blank lines: (comment lines, header names, rows)"""
    text = open(path, encoding="utf-8").read()
    blocks = []
    for chunk in text.split("\n\n\n"):
        lines = [x for x in chunk.split("\n") if x.strip()]
        comments = [x for x in lines if x.startswith("#")]
        rows = [x for x in lines if not x.startswith("#")]
        if not rows:
            continue
        header = comments[-1][1:].split()
        blocks.append((comments, header, np.array([[float(v) for v in r.split()] for r in rows])))
    return blocks


def close(a, b, what, where):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or not np.allclose(a, b, rtol=1e-10, atol=1e-12, equal_nan=True):
        problem(f"{where}: {what} differs: {a} vs {b}")


def check_layer(d, name, runs):
    dset, theory, bound, relative = LAYER_FIGS[name]
    having = []
    applies = LAYER_APPLIES.get(name, lambda cfg: True)
    for src, p, pre in runs:
        with open_ro(p) as f:
            if pre + "/" + dset in f and applies(f[pre + "/config"].attrs):
                having.append((src, p, pre))
    path = os.path.join(d, f"{name}.dat")
    if not having:
        if os.path.exists(path):
            problem(f"{path} exists but no input has {dset}")
        return
    blocks = parse_blocks(path)
    if len(blocks) != len(having):
        problem(f"{path}: {len(blocks)} blocks, expected {len(having)}")
        return
    for k, ((src, p, pre), (comments, header, rows)) in enumerate(zip(having, blocks)):
        where = f"{path} index {k}"
        if f"# file: {src}" not in comments:
            problem(f"{where}: block is not for {src} (inputs in command-line order)")
        with open_ro(p) as f:
            g = f[pre] if pre else f
            x = g[dset][:]
            S, N = x.shape
            first = 0 if N == int(g["config"].attrs["depth"]) + 1 else 1
            xname = "layer" if first == 0 else "block"
            if header != [xname] + COLUMNS:
                problem(f"{where}: header {header}")
                continue
            if rows.shape != (N, 7):
                problem(f"{where}: shape {rows.shape}, expected ({N}, 7)")
                continue
            mean = x.mean(axis=0)
            close(rows[:, 0], np.arange(first, first + N), xname, where)
            close(rows[:, 1], mean, "mean over seeds", where)
            if S > 1:
                sd = x.std(axis=0, ddof=1)
                half = T975[S - 2] * sd / math.sqrt(S)
                close(rows[:, 2], sd, "sd", where)
                close(rows[:, 3], mean - half, "ci95_lo", where)
                close(rows[:, 4], mean + half, "ci95_hi", where)
            elif not np.isnan(rows[:, 2:5]).all():
                problem(f"{where}: one seed but an interval")
            scale = mean[-1] if relative else 1.0
            for col, ds in ((5, theory), (6, bound)):
                want = g[ds][:] * scale if ds and ds in g else np.full(N, np.nan)
                close(rows[:, col], want, COLUMNS[col - 1], where)


def check_heatmaps(d, runs):
    having = {}
    for src, p, pre in runs:
        with open_ro(p) as f:
            if pre + "/propagate/attn_entropy_head" in f:
                having[src] = f[pre + "/propagate/attn_entropy_head"][:].mean(axis=0)  # [L, H]
    dats = sorted(x for x in os.listdir(d) if x.startswith("attn_entropy_head_") and x.endswith(".dat"))
    if len(dats) != len(having):
        problem(f"{d}: {len(dats)} heatmaps, expected {len(having)}")
    for name in dats:
        path = os.path.join(d, name)
        text = open(path, encoding="utf-8").read()
        src = [ln.split(" <- ", 1)[1] for ln in text.split("\n") if ln.startswith("#") and " <- " in ln]
        if len(src) != 1 or src[0] not in having:
            problem(f"{path}: names no input run ({src})")
            continue
        header = [ln for ln in text.split("\n") if ln.startswith("#")][-1][1:].split()
        if header != ["block", "head", "entropy"]:
            problem(f"{path}: header {header}")
        mean = having[src[0]]
        L, H = mean.shape
        groups = [g for g in text.split("\n\n") if any(not x.startswith("#") for x in g.split("\n") if x)]
        if len(groups) != L:
            problem(f"{path}: {len(groups)} blank-line groups, expected one per block ({L})")
        rows = np.array([[float(v) for v in ln.split()] for ln in text.split("\n")
                         if ln and not ln.startswith("#")])
        if rows.shape != (L * H, 3):
            problem(f"{path}: shape {rows.shape}, expected ({L * H}, 3)")
            continue
        close(rows[:, 0], np.repeat(np.arange(1, L + 1), H), "block", path)
        close(rows[:, 1], np.tile(np.arange(1, H + 1), L), "head", path)
        close(rows[:, 2], mean.reshape(-1), "entropy mean", path)


def config_of(g):
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g["config"].attrs.items()}


def check_moe_references(d, runs):
    """router_entropy draws ln E, load_cv the counting noise sqrt((E-k)/(k B T)), in grey"""
    for name, ref in (("router_entropy", lambda c: math.log(c["experts"])),
                      ("load_cv", lambda c: math.sqrt((c["experts"] - c["top_k"]) /
                                                       (c["top_k"] * c["batch"] * c["seq"])))):
        want = set()
        for src, p, pre in runs:
            with open_ro(p) as f:
                if pre + "/propagate/" + name in f:
                    want.add(round(ref(config_of(f[pre] if pre else f)), 9))
        path = os.path.join(d, f"{name}.gp")
        if not want:
            continue
        got = set()
        for ln in open(path, encoding="utf-8"):
            ln = ln.strip().rstrip(", \\")
            if ln.endswith('with lines lc rgb "#555555" dt 4 lw 1.2 notitle'):
                got.add(round(float(ln.split()[0]), 9))
        if got != want:
            problem(f"{path}: reference lines {sorted(got)}, expected {sorted(want)}")


def check_expert_heatmaps(d, runs):
    having = {}
    for src, p, pre in runs:
        with open_ro(p) as f:
            if pre + "/propagate/expert_load" in f:
                having[src] = f[pre + "/propagate/expert_load"][:].mean(axis=0)  # [L, E]
    dats = sorted(x for x in os.listdir(d) if x.startswith("expert_load_") and x.endswith(".dat"))
    if len(dats) != len(having):
        problem(f"{d}: {len(dats)} expert_load heatmaps, expected {len(having)}")
    if not having:
        return
    # the shared colour scale: the largest cell (at least 2/E), up to a multiple of 0.05
    m = max(max(v.max(), 2.0 / v.shape[1]) for v in having.values())
    q = 0.05 if m >= 0.1 else 10 ** (math.floor(math.log10(m)) - 1)
    top = min(1.0, math.ceil(m / q - 1e-9) * q)
    for name in dats:
        path = os.path.join(d, name)
        text = open(path, encoding="utf-8").read()
        src = [ln.split(" <- ", 1)[1] for ln in text.split("\n") if ln.startswith("#") and " <- " in ln]
        if len(src) != 1 or src[0] not in having:
            problem(f"{path}: names no input run ({src})")
            continue
        header = [ln for ln in text.split("\n") if ln.startswith("#")][-1][1:].split()
        if header != ["block", "expert", "load"]:
            problem(f"{path}: header {header}")
        mean = having[src[0]]
        L, E = mean.shape
        rows = np.array([[float(v) for v in ln.split()] for ln in text.split("\n")
                         if ln and not ln.startswith("#")])
        if rows.shape != (L * E, 3):
            problem(f"{path}: shape {rows.shape}, expected ({L * E}, 3)")
            continue
        close(rows[:, 0], np.repeat(np.arange(1, L + 1), E), "block", path)
        close(rows[:, 1], np.tile(np.arange(1, E + 1), L), "expert", path)
        close(rows[:, 2], mean.reshape(-1), "load mean", path)
        close(rows[:, 2].reshape(L, E).sum(axis=1), np.ones(L), "loads summing to 1", path)
        gp = open(path[:-4] + ".gp", encoding="utf-8").read()
        cb = [ln for ln in gp.split("\n") if ln.startswith("set cbrange [0:")]
        try:
            ok = len(cb) == 1 and math.isclose(float(cb[0][15:-1]), top, rel_tol=1e-9)
        except ValueError:
            ok = False
        if not ok:
            problem(f"{path[:-4]}.gp: colour scale {cb}, expected [0:{top}]")


# depth figures: name -> (fit column prefix, the per-seed quantity, the theory's)
DEPTH_FIGS = {
    "depth_act_ms": ("act_ms_slope", lambda a, g: a[:, -1], lambda t: t["act_ms"][-1]),
    "depth_grad_ratio": ("grad_ratio_slope", lambda a, g: g[:, 0] / g[:, -1],
                         lambda t: t["grad_ms"][0] / t["grad_ms"][-1]),
}


def depth_series(paths):
    """every series of every file with /sweep/fits, in plotting order: (path, row, [runs by depth]).
    Found without the writer's layout: the runs whose /config equals the first point's in
    everything but depth, out and alpha (which follows from depth under sqrtL)."""
    out = []
    for p in paths:
        with open_ro(p) as f:
            if "sweep/fits/first_point" not in f:
                continue
            key = {}
            for i in range(len(f["runs"])):
                c = config_of(f[f"runs/{i}"])
                key[i] = tuple(sorted((k, str(v)) for k, v in c.items()
                                      if k not in ("depth", "out", "alpha")))
            for row, first in enumerate(f["sweep/fits/first_point"][:]):
                first = int(first)
                runs = [i for i in key if key[i] == key[first]]
                runs.sort(key=lambda i: int(f[f"runs/{i}/config"].attrs["depth"]))
                out.append((p, row, runs))
    return out


def check_depth(d, paths):
    series = depth_series(paths)
    for name, (col, quantity, theory) in DEPTH_FIGS.items():
        path = os.path.join(d, f"{name}.dat")
        if not series:
            if os.path.exists(path):
                problem(f"{path} exists but no input has /sweep/fits")
            continue
        if not os.path.exists(path):
            problem(f"{path} missing")
            continue
        blocks = parse_blocks(path)
        gp = open(os.path.join(d, f"{name}.gp"), encoding="utf-8").read()
        if len(blocks) != len(series):
            problem(f"{path}: {len(blocks)} blocks, expected {len(series)} series")
            continue
        for k, ((p, row, runs), (comments, header, rows)) in enumerate(zip(series, blocks)):
            where = f"{path} index {k}"
            if header != ["depth"] + COLUMNS[:5] + ["run"]:
                problem(f"{where}: header {header}")
                continue
            with open_ro(p) as f:
                fits = {c: float(f[f"sweep/fits/{col}{c}"][row])
                        for c in ("", "_se", "_theory", "_theory_se")}
                depth, mean, sd, lo, hi, th = [], [], [], [], [], []
                for i in runs:
                    g = f[f"runs/{i}"]
                    x = quantity(g["propagate/act_ms"][:], g["propagate/grad_ms"][:])
                    S = len(x)
                    depth.append(int(g["config"].attrs["depth"]))
                    mean.append(x.mean())
                    s = x.std(ddof=1) if S > 1 else math.nan
                    half = T975[S - 2] * s / math.sqrt(S) if S > 1 else math.nan
                    sd.append(s), lo.append(x.mean() - half), hi.append(x.mean() + half)
                    th.append(theory(g["theory"]) if "theory" in g else math.nan)
            if rows.shape != (len(runs), 7):
                problem(f"{where}: shape {rows.shape}, expected ({len(runs)}, 7)")
                continue
            close(rows[:, 0], depth, "depth", where)
            close(rows[:, 1], mean, "mean over seeds", where)
            close(rows[:, 2], sd, "sd", where)
            close(rows[:, 3], lo, "ci95_lo", where)
            close(rows[:, 4], hi, "ci95_hi", where)
            close(rows[:, 5], th, "theory", where)
            close(rows[:, 6], runs, "run", where)
            # the fitted slopes: copied exactly into the .dat, rounded into the legend
            fit = [c for c in comments if c.startswith("# fit ")]
            got = dict(zip(fit[0].split()[2::2], fit[0].split()[3::2])) if len(fit) == 1 else {}
            for c, v in fits.items():
                if f"{col}{c}" not in got:
                    problem(f"{where}: no {col}{c} in the fit line {fit}")
                else:
                    close(float(got[f"{col}{c}"]), v, f"{col}{c}", where)

            def r3(v):
                return f"{0.0 if abs(v) < 5e-4 else v:.3f}"
            legend = f"slope {r3(fits[''])} ± {r3(fits['_se'])}"
            if not math.isnan(fits["_theory"]):
                legend += f" (theory {r3(fits['_theory'])})"
            if f"data index {k} using 1:2 with linespoints" not in gp or \
                    not any(f"data index {k} using 1:2" in ln and legend + '"' in ln
                            for ln in gp.split("\n")):
                problem(f"{name}.gp: index {k} legend lacks '{legend}'")
            # the file's slope is the least-squares slope of the means drawn
            b = np.polyfit(np.log(depth), np.log(mean), 1)[0]
            if not math.isclose(b, fits[""], rel_tol=1e-6, abs_tol=1e-9):
                problem(f"{where}: least-squares slope of the drawn means {b} != /sweep/fits {fits['']}")
            has_theory = f"data index {k} using 1:6 with lines" in gp
            if has_theory != (not np.isnan(th).all()):
                problem(f"{name}.gp: index {k} theory curve {'drawn' if has_theory else 'missing'}")


def train_of(p):
    """a training file's series as the plot reads them: each family cut to its shortest member"""
    with open_ro(p) as f:
        if "train" not in f:
            return None
        t = f["train"]
        n = min(len(t[k]) for k in ("step", "loss", "grad_norm"))
        r = min(len(t["probe/step"]), len(t["probe/eval_loss"]), len(t["probe/grad_ms"]))
        e = min(len(t["events/" + k]) for k in ("step", "kind", "value"))
        return dict(step=t["step"][:n], loss=t["loss"][:n], grad_norm=t["grad_norm"][:n],
                    probe_step=t["probe/step"][:r], eval_loss=t["probe/eval_loss"][:r],
                    grad_ms=t["probe/grad_ms"][:r], ev=np.stack([t["events/" + k][:e] for k in
                                                                 ("step", "kind", "value")], 1),
                    depth=int(f["config"].attrs["depth"]))


def check_events(blocks, tr, curve, where):
    """the next block is the run's events, if it has any: step kind value, and y on the curve"""
    if not len(tr["ev"]):
        return
    if not blocks or blocks[0][1] != ["step", "kind", "value", "y"]:
        problem(f"{where}: no events block")
        return
    rows = blocks.pop(0)[2]
    close(rows[:, :3], tr["ev"], "events", where)
    for (s, _, _, y) in rows:
        # drawn on the curve at its step, or at the top of the axis when the curve is not
        # finite there or runs above the axis
        at = tr[curve][tr["step"] == s]
        if len(at) and np.isfinite(at[0]) and y != at[0] and not y < at[0]:
            problem(f"{where}: event at step {s} drawn at {y}, the curve is at {at[0]}")


def check_train(d, paths):
    runs = [(p, tr) for p in paths for tr in [train_of(p)] if tr is not None and len(tr["step"])]
    if not runs:
        return
    for fig, cols in (("train_loss", ("loss",)), ("train_grad_norm", ("grad_norm",))):
        blocks = parse_blocks(os.path.join(d, fig + ".dat"))
        for p, tr in runs:
            where = f"{fig}.dat ({p})"
            if not blocks or blocks[0][1] != ["step", cols[0]]:
                problem(f"{where}: expected a block 'step {cols[0]}'")
                return
            comments, _, rows = blocks.pop(0)
            if not any(c.endswith(p) for c in comments):
                problem(f"{where}: the block does not name its file")
            close(rows[:, 0], tr["step"], "step", where)
            close(rows[:, 1], tr[cols[0]], cols[0], where)
            if fig == "train_loss" and len(tr["probe_step"]):
                comments, header, rows = blocks.pop(0)
                if header != ["step", "eval_loss"]:
                    problem(f"{where}: expected the held-out block, got {header}")
                    continue
                close(rows[:, 0], tr["probe_step"], "probe step", where)
                close(rows[:, 1], tr["eval_loss"], "eval_loss", where)
            check_events(blocks, tr, cols[0], where)
        if blocks:
            problem(f"{fig}.dat: {len(blocks)} blocks left over")
    heat = sorted(x for x in os.listdir(d) if x.startswith("train_grad_ms_") and x.endswith(".dat"))
    drawable = [tr for _, tr in runs if np.any(np.isfinite(tr["grad_ms"]) & (tr["grad_ms"] > 0))]
    if len(heat) != len(drawable):
        problem(f"{d}: {len(heat)} gradient heatmaps for {len(runs)} runs")
    for name in heat:
        path = os.path.join(d, name)
        text = open(path, encoding="utf-8").read()
        src = [ln.split(" <- ", 1)[1] for ln in text.split("\n") if ln.startswith("#") and " <- " in ln]
        match = [tr for p, tr in runs if src and src[0] == p]
        if len(match) != 1:
            problem(f"{path}: names no input run ({src})")
            continue
        tr = match[0]
        rows = np.array([[float(v) for v in ln.split()] for ln in text.split("\n")
                         if ln and not ln.startswith("#")])
        R, L1 = tr["grad_ms"].shape
        if rows.shape != (R * L1, 6):
            problem(f"{path}: shape {rows.shape}, expected ({R * L1}, 6)")
            continue
        close(rows[:, 0], np.repeat(tr["probe_step"], L1), "step", path)
        close(rows[:, 1], np.tile(np.arange(L1), R), "layer", path)
        close(rows[:, 3], tr["grad_ms"].reshape(-1), "grad_ms", path)
        g = tr["grad_ms"].reshape(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            close(rows[:, 2], np.where(np.isfinite(g) & (g > 0), np.log10(g), np.nan),
                  "log10 grad_ms", path)
        # the colour scale takes in every cell drawn
        scale = [ln for ln in text.split("\n") if ln.startswith("# colour scale ")]
        if len(scale) != 1:
            problem(f"{path}: no colour scale line")
        else:
            lo, hi = (float(v) for v in scale[0].split()[3:6:2])
            v = rows[:, 2][np.isfinite(rows[:, 2])]
            if len(v) and (v.min() < lo or v.max() > hi):
                problem(f"{path}: cells {v.min()} .. {v.max()} outside the scale {lo} .. {hi}")
        # cells tile the step axis: each ends where the next begins
        lo, hi = rows[::L1, 4], rows[::L1, 5]
        if R > 1 and not np.allclose(hi[:-1], lo[1:]):
            problem(f"{path}: cells overlap or leave gaps")


def corrupt_fits(src, dst):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        fp = f["sweep/fits/first_point"]
        fp[...] = fp[:][::-1]


def mix_series(src, dst):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        f["runs/1/config"].attrs["width"] = int(f["runs/1/config"].attrs["width"]) * 2


def main(argv):
    if len(argv) == 4 and argv[0] == "add-theory":
        add_theory(argv[1], argv[2], argv[3])
    elif len(argv) == 3 and argv[0] == "strip-theory":
        strip_theory(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "corrupt-fits":
        corrupt_fits(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "mix-series":
        mix_series(argv[1], argv[2])
    elif len(argv) >= 3 and argv[0] == "images":
        check_images(argv[1], argv[2], argv[3:])
    elif len(argv) >= 3 and argv[0] == "data":
        runs = runs_of(argv[2:])
        for name in LAYER_FIGS:
            check_layer(argv[1], name, runs)
        check_heatmaps(argv[1], runs)
        check_expert_heatmaps(argv[1], runs)
        check_moe_references(argv[1], runs)
        check_depth(argv[1], argv[2:])
        check_train(argv[1], argv[2:])
    else:
        print(__doc__)
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
