#!/usr/bin/python3
"""recipes_quick.py stability|quality NORMSCOPE REPO WORKDIR: the real-text recipes
data/recipes/stability.sh and paper_quality.sh with --quick, end to end.

Runs the recipe at toy sizes on the fortunes corpus, then checks that its table (Markdown and
CSV) has one well-formed row per case, that its numbers (best learning rate, held-out bits per
byte: mean and spread over seeds) agree with a computation of their own from the HDF5 logs, that
the heatmaps' numbers are the logs', and that every figure is a well-formed file of its format
(PNG, PDF, SVG, and the cairolatex .tex with its PDF). A usage error exits 2 with one line.
Prints only failures and a summary; non-zero on failure."""
import csv
import glob
import os
import shutil
import statistics
import subprocess
import sys
import xml.dom.minidom

import h5py
from checklist import check, failures


def final_bits(path):
    with h5py.File(path, "r") as f:
        return float(f["train/probe/eval_bits"][-1]), int(f["train/status"][0])


def check_figure(d, name, words):
    """name.png, name.pdf, name.svg, name_tex.tex and name_tex.pdf are well-formed"""
    with open(os.path.join(d, name + ".png"), "rb") as fh:
        png = fh.read()
    check(png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR" and
          int.from_bytes(png[16:20], "big") > 400, "%s.png is not a PNG" % name)
    for pdf_name in (name + ".pdf", name + "_tex.pdf"):
        with open(os.path.join(d, pdf_name), "rb") as fh:
            pdf = fh.read()
        check(pdf[:5] == b"%PDF-" and b"%%EOF" in pdf[-64:], "%s is not a PDF" % pdf_name)
    try:
        svg = xml.dom.minidom.parse(os.path.join(d, name + ".svg"))
        check(svg.documentElement.tagName == "svg", "%s.svg: root %s"
              % (name, svg.documentElement.tagName))
    except Exception as e:  # noqa: BLE001 - any parse error is the failure
        check(False, "%s.svg: %s" % (name, e))
    with open(os.path.join(d, name + "_tex.tex")) as fh:
        tex = fh.read()
    check("\\includegraphics" in tex and name + "_tex" in tex and words in tex,
          "%s_tex.tex has no picture" % name)


def stability(binary, repo, work):
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
    check_figure(d, "stability", "bits per byte")


def quality(binary, repo, work):
    recipe = os.path.join(repo, "data", "recipes", "paper_quality.sh")
    p = subprocess.run(["bash", recipe, "--table", os.path.join(work, "none.csv"), binary, work],
                       capture_output=True, text=True)
    check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1,
          "missing --table: %d %r" % (p.returncode, p.stderr))
    p = subprocess.run(["bash", recipe, "--quick", binary, work], capture_output=True, text=True,
                       timeout=900)
    if not check(p.returncode == 0, "paper_quality.sh --quick: %d %s" % (p.returncode,
                                                                        p.stderr[-2000:])):
        return
    d = os.path.join(work, "paper_quality")
    # 2 blocks x 2 depths x 3 placements x 3 seeds
    check(len(glob.glob(os.path.join(d, "data", "*.h5"))) == 36, "runs")
    with open(os.path.join(d, "quality.csv")) as fh:
        rows = list(csv.DictReader(fh))
    check(len(rows) == 12, "%d CSV rows" % len(rows))
    for r in rows:
        paths = sorted(glob.glob(os.path.join(d, "data", "%s_%s_L%s_s*.h5" % (
            r["block"], r["placement"], r["depth"]))))
        finals = [final_bits(x)[0] for x in paths]
        check(len(finals) == 3 and int(r["seeds"]) == 3, "%s: seeds %s" % (paths, r["seeds"]))
        check(abs(float(r["bits_mean"]) - statistics.mean(finals)) < 1e-4 and
              abs(float(r["bits_sd"]) - statistics.stdev(finals)) < 1e-4,
              "%s: bits %s +- %s, own %s" % (r, r["bits_mean"], r["bits_sd"], finals))
        top = []
        for x in paths:
            with h5py.File(x, "r") as f:
                top.append(float(f["train/probe/cos_tokens"][-1, -1]))
        check(abs(float(r["top_cos_tokens"]) - statistics.mean(top)) < 1e-4,
              "%s: top cos_tokens %s, own %s" % (paths[0], r["top_cos_tokens"], top))
    # the heatmap numbers are the log's: cos_tokens of seed 1 of the first placement drawn
    with open(os.path.join(d, "layers_transformer_L4.dat")) as fh:
        blocks = fh.read().split("\n\n\n")
    cos_block = next(b for b in blocks if " cos seed 1" in b.splitlines()[0])
    title = cos_block.splitlines()[0]
    vals = [line.split() for line in cos_block.splitlines()[1:] if line.strip()]
    placement = next(p for p in ("pre", "post", "span") if cos_block.startswith(
        "# %s" % {"pre": "PreNorm", "post": "PostNorm", "span": "SpanNorm"}[p]))
    with h5py.File(os.path.join(d, "data", "transformer_%s_L4_s1.h5" % placement), "r") as f:
        cos, steps = f["train/probe/cos_tokens"][:], f["train/probe/step"][:]
    own = [(int(s), layer, float(cos[i, layer])) for i, s in enumerate(steps)
           for layer in range(cos.shape[1])]
    check(len(vals) == len(own) and all(int(a) == s and int(b) == layer and abs(float(c) - v) < 1e-12
                                        for (a, b, c), (s, layer, v) in zip(vals, own)),
          "heatmap %s differs from the log" % title)
    check_figure(d, "heldout", "bits per byte")
    for blk in ("transformer", "moe"):
        for depth in (2, 4):
            check_figure(d, "layers_%s_L%d" % (blk, depth), "eff")


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] not in ("stability", "quality"):
        sys.exit("usage: recipes_quick.py stability|quality NORMSCOPE REPO WORKDIR")
    (stability if sys.argv[1] == "stability" else quality)(*sys.argv[2:])
    print("recipes_quick %s: %d failed" % (sys.argv[1], len(failures)))
    sys.exit(1 if failures else 0)
