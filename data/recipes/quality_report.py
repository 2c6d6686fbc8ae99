#!/usr/bin/python3
"""quality_report.py [--normscope BIN] DIR: the table and figures of the quality experiment
(paper_quality.sh) from the training logs DIR/data/<block>_<placement>_L<depth>_s<seed>.h5.

  quality.md, quality.csv  one row per block, depth and placement: the learning rate, the final
      held-out bits per byte (mean, sample standard deviation, seeds), runs that stopped on a
      NaN/Inf, and at the last probe the top layer's cos_tokens and eff_rank (mean over seeds);
  heldout.*  held-out bits per byte against step: the mean over seeds (line) and their range
      (band), one curve per placement, one panel per block and depth;
  layers_<block>_L<depth>.*  for seed 1 of each placement (one row each), heatmaps over (probe
      step, layer) of log10 of the per-block gradient norm (/train/probe/param_grad_norm),
      cos_tokens and eff_rank of the stream on the probe batch.
Each figure as PNG, PDF, SVG and cairolatex (gnuplot_out.py), with its numbers (.dat)."""
import csv
import glob
import json
import os
import statistics
import subprocess
import sys

import h5py
import numpy as np

from gnuplot_out import render


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read_run(path):
    with h5py.File(path, "r", swmr=True) as f:
        cfg, t, pr = f["config"].attrs, f["train"], f["train/probe"]
        kinds = t["events/kind"][:]
        return {"block": text(cfg["block"]), "placement": text(cfg["placement"]),
                "depth": int(cfg["depth"]), "seed": int(cfg["seed"]), "lr": float(cfg["lr"]),
                "status": int(t["status"][0]), "nan": bool(np.isin(kinds, (0, 1)).any()),
                "step": pr["step"][:], "bits": pr["eval_bits"][:],
                "gnorm": pr["param_grad_norm"][:], "cos": pr["cos_tokens"][:],
                "rank": pr["eff_rank"][:]}


def fmt(x, spec="%.4f"):
    return spec % x if x == x else "nan"


def table(d, groups, order):
    rows = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], order.get(k[2], 99), k[2])):
        runs = groups[key]
        finals = [float(r["bits"][-1]) for r in runs if len(r["bits"]) and not r["nan"]]
        last = [r for r in runs if len(r["cos"]) and not r["nan"]]
        rows.append({"block": key[0], "depth": key[1], "placement": key[2],
                     "lr": "%.2g" % runs[0]["lr"], "seeds": len(finals),
                     "bits_mean": fmt(statistics.mean(finals)) if finals else "nan",
                     "bits_sd": fmt(statistics.stdev(finals)) if len(finals) > 1 else "0",
                     "diverged": sum(r["nan"] for r in runs), "runs": len(runs),
                     "top_cos_tokens": fmt(statistics.mean(float(r["cos"][-1][-1]) for r in last))
                     if last else "nan",
                     "top_eff_rank": fmt(statistics.mean(float(r["rank"][-1][-1]) for r in last),
                                         "%.2f") if last else "nan"})
    with open(os.path.join(d, "quality.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    lines = ["| block | depth | placement | lr | held-out bits/byte (mean ± sd, seeds) | "
             "diverged | top-layer cos_tokens | top-layer eff_rank |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %d | %s | %s | %s ± %s (%d) | %d/%d | %s | %s |" % (
            r["block"], r["depth"], r["placement"], r["lr"], r["bits_mean"], r["bits_sd"],
            r["seeds"], r["diverged"], r["runs"], r["top_cos_tokens"], r["top_eff_rank"]))
    with open(os.path.join(d, "quality.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def heldout_figure(d, groups, styles, order):
    panels = sorted({(k[0], k[1]) for k in groups})
    blocks = sorted({p[0] for p in panels})
    depths = sorted({p[1] for p in panels})
    data, body = [], ["set multiplot layout %d,%d" % (len(blocks), len(depths)), "set grid",
                      "set key top right font ',8'", "set xlabel 'step'",
                      "set ylabel 'held-out bits per byte'", "set style fill transparent solid 0.2"]
    for blk in blocks:
        for depth in depths:
            clauses = []
            for key in sorted((k for k in groups if k[:2] == (blk, depth)),
                              key=lambda k: order.get(k[2], 99)):
                runs = [r for r in groups[key] if len(r["bits"])]
                n = min((len(r["bits"]) for r in runs), default=0)
                if not n:
                    continue
                b = np.array([r["bits"][:n] for r in runs], dtype=float)
                step = runs[0]["step"][:n]
                data.append("# %s L=%d %s: step, mean, min, max over %d seeds\n" % (
                    blk, depth, key[2], len(runs)) + "\n".join(
                    "%d %s %s %s" % (s, m, lo, hi) for s, m, lo, hi in
                    zip(step, b.mean(0), b.min(0), b.max(0))))
                st = styles.get(key[2], {})
                color, title = st.get("color", "black"), st.get("title", key[2])
                i = len(data) - 1
                clauses.append("'heldout.dat' index %d using 1:3:4 with filledcurves lc rgb '%s' "
                               "notitle" % (i, color))
                clauses.append("'heldout.dat' index %d using 1:2 with lines lw 2 lc rgb '%s' "
                               "title '%s'" % (i, color, title))
            body.append("set title '%s, L = %d'" % (blk, depth))
            body.append("plot " + (", ".join(clauses) if clauses else "NaN notitle"))
    body.append("unset multiplot")
    with open(os.path.join(d, "heldout.dat"), "w") as fh:
        fh.write("\n\n\n".join(data) + "\n")
    render(d, "heldout", "\n".join(body) + "\n", 4.2 * len(depths), 3.4 * len(blocks))


def layers_figure(d, groups, styles, order, blk, depth):
    keys = sorted((k for k in groups if k[:2] == (blk, depth)), key=lambda k: order.get(k[2], 99))
    runs = [next((r for r in groups[k] if r["seed"] == 1), groups[k][0]) for k in keys]
    metrics = [("gnorm", "log_{10} block gradient norm", True, 1),
               ("cos", "cos\\_tokens", False, 0), ("rank", "eff\\_rank", False, 0)]
    name = "layers_%s_L%d" % (blk, depth)
    data, body = [], ["set multiplot layout %d,3" % len(runs), "set xlabel 'step'", "set autoscale fix",
                      "set ylabel 'layer'", "set palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', "
                      "4 '#fde725')"]
    for r in runs:
        title = styles.get(r["placement"], {}).get("title", r["placement"])
        for field, label, log, first_layer in metrics:
            m = np.array(r[field], dtype=float)
            if log:
                with np.errstate(divide="ignore", invalid="ignore"):
                    m = np.log10(m)
            rows = []
            for s, row in zip(r["step"], m):
                rows.append("\n".join("%d %d %s" % (s, first_layer + j, v)
                                      for j, v in enumerate(row)))
            data.append("# %s %s seed %d: step, layer, %s\n" % (title, field, r["seed"], label)
                        + "\n\n".join(rows))
            body.append("set title '%s: %s'" % (title, label))
            body.append("plot '%s.dat' index %d using 1:2:3 with image notitle"
                        % (name, len(data) - 1))
    body.append("unset multiplot")
    with open(os.path.join(d, name + ".dat"), "w") as fh:
        fh.write("\n\n\n".join(data) + "\n")
    render(d, name, "\n".join(body) + "\n", 10.5, 2.6 * len(runs))


def main(argv):
    ns = None
    if "--normscope" in argv:
        i = argv.index("--normscope")
        ns = argv[i + 1]
        del argv[i:i + 2]
    if len(argv) != 1:
        sys.exit("usage: quality_report.py [--normscope BIN] DIR")
    d = argv[0]
    paths = sorted(glob.glob(os.path.join(d, "data", "*.h5")))
    if not paths:
        sys.exit("quality_report.py: no .h5 files in %s/data" % d)
    groups = {}
    for p in paths:
        r = read_run(p)
        if r["status"] == 0:
            print("quality_report.py: skipping %s (not complete)" % p, file=sys.stderr)
            continue
        groups.setdefault((r["block"], r["depth"], r["placement"]), []).append(r)
    styles = {}
    if ns:
        listing = json.loads(subprocess.run([ns, "placements", "--json"], capture_output=True,
                                            text=True, check=True).stdout)
        styles = {p["name"]: p for p in listing["placements"]}
    order = {p: s["index"] for p, s in styles.items()}
    table(d, groups, order)
    heldout_figure(d, groups, styles, order)
    for blk, depth in sorted({k[:2] for k in groups}):
        layers_figure(d, groups, styles, order, blk, depth)


if __name__ == "__main__":
    main(sys.argv[1:])
