#!/usr/bin/python3
"""stability_report.py [--best] [--normscope BIN] DIR: the table and the figure of the stability
experiment (stability.sh) from the training logs in DIR/data/*.h5.

A run diverged if it stopped on a NaN/Inf loss or gradient (a /train/events record of kind 0 or
1), or if its last held-out loss is above both ln 256 nats (8 bits per byte, a uniform guess)
and its first probe's (it blew up; a run too slow to learn is not diverged); it diverged at that
event's step, or at the first probe above both. One row per placement, depth
and warmup:
  best lr           the sweep's (seed 1) learning rate with the lowest final held-out bits;
  stable lr range   the lowest and highest sweep learning rates that did not diverge and ended
                    within 10% of that best;
  bits/byte         final held-out bits per byte at the best lr: mean, sample standard deviation
                    and number of seeds;
  steps to target   the first probe step at which the held-out loss reached the depth's target,
                    10% above the lowest final held-out bits of any run at that depth (mean over
                    the seeds that reached it, "never" if none);
  divergences       diverged sweep runs out of the sweep, with their steps.
Writes DIR/table.md (also printed) and DIR/table.csv, and the figure DIR/stability.{png,pdf,svg}
plus DIR/stability_tex.{tex,pdf} (gnuplot's cairolatex: the text set by LaTeX in the paper's
fonts), with its numbers (stability.dat) and gnuplot script (stability.gp). With --best, prints
"placement depth warmup lr" for each row's best learning rate and writes nothing."""
import csv
import glob
import json
import math
import os
import statistics
import subprocess
import sys

import h5py

from gnuplot_out import render

UNIFORM_BITS = 8.0  # ln 256 nats: a uniform guess over bytes


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read_run(path):
    with h5py.File(path, "r", swmr=True) as f:
        cfg, t = f["config"].attrs, f["train"]
        bits = t["probe/eval_bits"][:]
        steps = t["probe/step"][:]
        kinds, ev_steps = t["events/kind"][:], t["events/step"][:]
        status = int(t["status"][0])
        run = {"placement": text(cfg["placement"]), "depth": int(cfg["depth"]),
               "block": text(cfg["block"]), "warmup": "warmup" if int(cfg["warmup"]) > 1
               else "no warmup", "lr": float(cfg["lr"]), "seed": int(cfg["seed"]),
               "final": float(bits[-1]) if len(bits) else math.nan, "status": status,
               "curve": list(zip(steps.tolist(), bits.tolist())),
               # the learning rate as the recipe spelled it, for the seeds' file names
               "lr_text": os.path.basename(path).rsplit("_lr", 1)[-1].rsplit("_s", 1)[0]}
    nan_steps = [int(s) for s, k in zip(ev_steps, kinds) if k in (0, 1)]
    # worse than a uniform guess at the end and worse than at the first probe: it blew up
    first = run["curve"][0][1] if run["curve"] else math.nan
    blew_up = not run["final"] <= max(UNIFORM_BITS, first)
    above = [int(s) for s, b in run["curve"] if not b <= max(UNIFORM_BITS, first)]
    run["diverged_at"] = nan_steps[0] if nan_steps else (above[0] if blew_up else None)
    if status != 1 and run["diverged_at"] is None:
        print("stability_report.py: skipping %s (status %d: not complete)" % (path, status),
              file=sys.stderr)
        return None
    return run


def rows_of(runs):
    groups = {}
    for r in runs:
        groups.setdefault((r["placement"], r["depth"], r["block"], r["warmup"]), []).append(r)
    return groups


def best_of(sweep):
    ok = [r for r in sweep if r["diverged_at"] is None]
    return min(ok, key=lambda r: r["final"]) if ok else None


def fmt_lr(x):
    return "%.2g" % x


def table(runs, order):
    groups = rows_of(runs)
    target = {}
    for r in runs:
        if r["diverged_at"] is None:
            target[r["depth"]] = min(target.get(r["depth"], math.inf), r["final"] * 1.1)
    out = []
    for key in sorted(groups, key=lambda k: (k[1], k[3] != "warmup", order.get(k[0], 99), k[0])):
        pl, depth, block, warmup = key
        sweep = [r for r in groups[key] if r["seed"] == 1]
        best = best_of(sweep)
        div = sorted((r for r in sweep if r["diverged_at"] is not None), key=lambda r: r["lr"])
        row = {"placement": pl, "depth": depth, "block": block, "warmup": warmup,
               "best_lr": "", "stable_lr_min": "", "stable_lr_max": "", "bits_mean": "",
               "bits_sd": "", "seeds": 0, "steps_to_target": "never",
               "target_bits": "%.3f" % target.get(depth, math.nan),
               "diverged": len(div), "sweep": len(sweep),
               "diverged_at": " ".join("%s@%d" % (fmt_lr(r["lr"]), r["diverged_at"]) for r in div)}
        if best:
            stable = [r["lr"] for r in sweep
                      if r["diverged_at"] is None and r["final"] <= best["final"] * 1.1]
            at_best = [r for r in groups[key] if r["lr"] == best["lr"] and r["diverged_at"] is None]
            finals = [r["final"] for r in at_best]
            reach = [next((s for s, b in r["curve"] if b <= target[depth]), None) for r in at_best]
            reach = [s for s in reach if s is not None]
            row.update(best_lr=fmt_lr(best["lr"]), stable_lr_min=fmt_lr(min(stable)),
                       stable_lr_max=fmt_lr(max(stable)), bits_mean="%.4f" % statistics.mean(finals),
                       bits_sd="%.4f" % (statistics.stdev(finals) if len(finals) > 1 else 0),
                       seeds=len(finals),
                       steps_to_target="%.0f" % statistics.mean(reach) if reach else "never")
        out.append(row)
    return out


def write_tables(d, rows):
    cols = list(rows[0].keys())
    with open(os.path.join(d, "table.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    lines = ["| placement | depth | block | warmup | best lr | stable lr range | held-out bits/byte "
             "(mean ± sd, seeds) | steps to target (bits) | diverged (lr@step) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rng = "%s – %s" % (r["stable_lr_min"], r["stable_lr_max"]) if r["best_lr"] else "none"
        bits = "%s ± %s (%d)" % (r["bits_mean"], r["bits_sd"], r["seeds"]) if r["best_lr"] else "-"
        lines.append("| %s | %d | %s | %s | %s | %s | %s | %s (%s) | %d/%d %s |" % (
            r["placement"], r["depth"], r["block"], r["warmup"], r["best_lr"] or "-", rng, bits,
            r["steps_to_target"], r["target_bits"], r["diverged"], r["sweep"], r["diverged_at"]))
    with open(os.path.join(d, "table.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def figure(d, runs, styles):
    depths = sorted({r["depth"] for r in runs})
    warmups = [w for w in ("warmup", "no warmup") if any(r["warmup"] == w for r in runs)]
    placements = sorted({r["placement"] for r in runs}, key=lambda p: (styles.get(p, {}).get(
        "index", 99), p))
    sweep = [r for r in runs if r["seed"] == 1]
    ok = [r["final"] for r in sweep if r["diverged_at"] is None]
    lo = math.floor(min(ok) * 2) / 2 if ok else 0
    top = math.ceil(max(ok or [UNIFORM_BITS]) * 2) / 2 + 0.5  # diverged runs: at the top edge
    lrs = [r["lr"] for r in sweep]
    blocks, plots = [], []
    for wi, w in enumerate(warmups):
        for di, depth in enumerate(depths):
            panel = []
            for p in placements:
                pts = sorted((r["lr"], r["final"], r["diverged_at"]) for r in sweep
                             if r["warmup"] == w and r["depth"] == depth and r["placement"] == p)
                st = styles.get(p, {})
                color, title = st.get("color", "black"), st.get("title", p)
                good = [(x, y) for x, y, dv in pts if dv is None]
                bad = [(x, top - 0.15) for x, y, dv in pts if dv is not None]
                for data, style in ((good, "with linespoints lw 2 pt 7 ps 0.8"),
                                    (bad, "with points pt 2 ps 1.6 lw 2")):
                    if not data:
                        continue
                    blocks.append("# %s, L=%d, %s%s\n" % (w, depth, p,
                                                          ", diverged" if style[-1] == "2" else "")
                                  + "\n".join("%.6g %.6f" % xy for xy in data))
                    is_first = wi == 0 and di == 0 and data is good
                    panel.append("'stability.dat' index %d using 1:2 %s lc rgb '%s' %s" % (
                        len(blocks) - 1, style, color,
                        "title '%s'" % title if is_first else "notitle"))
            plots.append((w, depth, panel))
    with open(os.path.join(d, "stability.dat"), "w") as fh:
        fh.write("# final held-out bits per byte against the peak learning rate (seed 1); "
                 "diverged runs at the top edge\n" + "\n\n\n".join(blocks) + "\n")
    body = ["set multiplot layout %d,%d" % (len(warmups), len(depths)),
            "set logscale x", "set format x '10^{%L}'", "set grid",
            "set yrange [%g:%g]" % (lo, top), "set key top right font ',8'",
            "set xrange [%g:%g]" % (min(lrs) / 2, max(lrs) * 2),
            "set xlabel 'peak learning rate'", "set ylabel 'held-out bits per byte'"]
    for w, depth, panel in plots:
        body.append("set title 'L = %d, %s'" % (depth, w))
        if any(r["diverged_at"] is not None for r in sweep):
            body.append("set label 1 'x: diverged' at graph 0.98, graph 0.93 right font ',8'")
        if not panel:
            body.append("set label 2 'not run' at graph 0.5, graph 0.5 center")
        body.append("plot " + (", ".join(panel) if panel else "NaN notitle"))
        body.append("unset label 2")
    body.append("unset multiplot")
    render(d, "stability", "\n".join(body) + "\n", 4.2 * len(depths), 3.4 * len(warmups))


def main(argv):
    best_only = "--best" in argv
    argv = [a for a in argv if a != "--best"]
    ns = None
    if "--normscope" in argv:
        i = argv.index("--normscope")
        ns = argv[i + 1]
        del argv[i:i + 2]
    if len(argv) != 1:
        sys.exit("usage: stability_report.py [--best] [--normscope BIN] DIR")
    d = argv[0]
    paths = sorted(glob.glob(os.path.join(d, "data", "*.h5")))
    if not paths:
        sys.exit("stability_report.py: no .h5 files in %s/data" % d)
    runs = [r for r in map(read_run, paths) if r]
    if best_only:
        for (pl, depth, _, warmup), group in sorted(rows_of(runs).items()):
            b = best_of([r for r in group if r["seed"] == 1])
            if b:
                print(pl, depth, "warmup" if warmup == "warmup" else "nowarmup", b["lr_text"])
        return
    styles = {}
    if ns:
        listing = json.loads(subprocess.run([ns, "placements", "--json"], capture_output=True,
                                            text=True, check=True).stdout)
        styles = {p["name"]: p for p in listing["placements"]}
    rows = table(runs, {p: s["index"] for p, s in styles.items()})
    write_tables(d, rows)
    figure(d, runs, styles)


if __name__ == "__main__":
    main(sys.argv[1:])
