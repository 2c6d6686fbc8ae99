#!/usr/bin/python3
"""recipe_stability.py NORMSCOPE REPO WORKDIR: data/recipes/stability.sh --quick end to end.

Runs the recipe at toy sizes on the fortunes corpus, then checks that the table (Markdown and
CSV) has one well-formed row per placement, depth and warmup, that its best learning rate and
held-out bits per byte agree with a computation of their own from the HDF5 logs, and that every
figure is a well-formed file of its format (PNG, PDF, SVG, and the cairolatex .tex with its PDF).
A usage error exits 2 with one line. Prints only failures and a summary; non-zero on failure."""
import csv
import glob
import os
import shutil
import statistics
import subprocess
import sys
import xml.dom.minidom

import h5py

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)
    return cond


def final_bits(path):
    with h5py.File(path, "r") as f:
        return float(f["train/probe/eval_bits"][-1]), int(f["train/status"][0])


def main(binary, repo, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    recipe = os.path.join(repo, "data", "recipes", "stability.sh")
    p = subprocess.run(["bash", recipe, "--bogus", binary, work], capture_output=True, text=True)
    check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1,
          "unknown option: %d %r" % (p.returncode, p.stderr))
    p = subprocess.run(["bash", recipe, "--quick", binary, work], capture_output=True, text=True,
                       timeout=900)
    if not check(p.returncode == 0, "stability.sh --quick: %d %s" % (p.returncode, p.stderr[-2000:])):
        return
    d = os.path.join(work, "stability")
    runs = glob.glob(os.path.join(d, "data", "*.h5"))
    # 3 placements x 2 depths x 2 warmups x 6 lrs, then 1 more seed per row at its best lr
    check(len(runs) == 72 + 12, "%d runs" % len(runs))
    with open(os.path.join(d, "table.csv")) as fh:
        rows = list(csv.DictReader(fh))
    check(len(rows) == 12, "%d CSV rows" % len(rows))
    keys = {(r["placement"], r["depth"], r["warmup"]) for r in rows}
    check(len(keys) == 12, "duplicate rows: %s" % sorted(keys))
    for r in rows:
        w = "warmup" if r["warmup"] == "warmup" else "nowarmup"
        stem = os.path.join(d, "data", "%s_L%s_%s_lr" % (r["placement"], r["depth"], w))
        sweep = {}
        for path in glob.glob(stem + "*_s1.h5"):
            bits, status = final_bits(path)
            if status == 1 and bits <= 8.0:
                sweep[path[len(stem):-len("_s1.h5")]] = bits
        best = min(sweep, key=sweep.get)
        check(float(r["best_lr"]) == float(best) or sweep[best] == min(sweep.values()),
              "%s: best lr %s, own %s" % (stem, r["best_lr"], best))
        seeds = [final_bits(x)[0] for x in sorted(glob.glob(stem + best + "_s*.h5"))]
        check(int(r["seeds"]) == 2 == len(seeds), "%s: %s seeds" % (stem, r["seeds"]))
        check(abs(float(r["bits_mean"]) - statistics.mean(seeds)) < 1e-4 and
              abs(float(r["bits_sd"]) - statistics.stdev(seeds)) < 1e-4,
              "%s: bits %s +- %s, own %s" % (stem, r["bits_mean"], r["bits_sd"], seeds))
        check(0 < float(r["bits_mean"]) < 8, "%s: bits %s" % (stem, r["bits_mean"]))
        check(float(r["stable_lr_min"]) <= float(r["best_lr"]) <= float(r["stable_lr_max"]),
              "%s: stable range %s-%s" % (stem, r["stable_lr_min"], r["stable_lr_max"]))
        check(r["steps_to_target"] == "never" or 0 < float(r["steps_to_target"]) <= 30,
              "%s: steps to target %s" % (stem, r["steps_to_target"]))
        check(0 <= int(r["diverged"]) <= int(r["sweep"]) == 6, "%s: divergences" % stem)
    with open(os.path.join(d, "table.md")) as fh:
        md = fh.read().strip().splitlines()
    check(len(md) == 14 and all(line.count("|") == 10 for line in md), "table.md: %r" % md[:3])
    with open(os.path.join(d, "stability.png"), "rb") as fh:
        png = fh.read()
    check(png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR" and
          int.from_bytes(png[16:20], "big") > 400, "stability.png is not a PNG")
    for name in ("stability.pdf", "stability_tex.pdf"):
        with open(os.path.join(d, name), "rb") as fh:
            pdf = fh.read()
        check(pdf[:5] == b"%PDF-" and b"%%EOF" in pdf[-64:], "%s is not a PDF" % name)
    try:
        svg = xml.dom.minidom.parse(os.path.join(d, "stability.svg"))
        check(svg.documentElement.tagName == "svg", "stability.svg: root %s"
              % svg.documentElement.tagName)
    except Exception as e:  # noqa: BLE001 - any parse error is the failure
        check(False, "stability.svg: %s" % e)
    with open(os.path.join(d, "stability_tex.tex")) as fh:
        tex = fh.read()
    check("\\includegraphics" in tex and "stability_tex" in tex and "bits per byte" in tex,
          "stability_tex.tex has no picture")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: recipe_stability.py NORMSCOPE REPO WORKDIR")
    main(*sys.argv[1:])
    print("recipe_stability: %d failed" % len(failures))
    sys.exit(1 if failures else 0)
