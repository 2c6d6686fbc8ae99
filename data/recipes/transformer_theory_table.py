#!/usr/bin/env python3
"""transformer_theory_table.py DIR: the table of transformer_theory.sh from the propagate files
in DIR (<placement>_<scale>_<act>_T<T>_d<d>.h5). For each file and metric (act_ms, grad_ms as
grad_ms_l / grad_ms_L per seed, cos_tokens), the largest relative error over the layers of the
seed mean for /theory (score-field trajectories, with the norms' O(1/d) terms where derived) and
/theory_inf (expected-Gram recursion); beside each, the simulation's standard error and the
trajectories' own at that layer, relative to the mean (for cos_tokens relative to
max(|mean|, 0.05), as `normscope verify` does, since a cosine near 0 has no meaningful relative
error)."""
import glob
import os
import re
import sys

import h5py
import numpy as np


def worst(sim, th, th_se, lo, hi, floor=0.0):
    """the layer of the largest |theory - mean| / max(|mean|, floor) in [lo, hi), and that
    signed error and the two standard errors (simulation, theory) on the same scale"""
    m = sim.mean(0)
    se = sim.std(0, ddof=1) / np.sqrt(sim.shape[0])
    scale = np.maximum(np.abs(m), floor)
    e = (th[lo:hi] - m[lo:hi]) / scale[lo:hi]
    k = lo + int(np.argmax(np.abs(e)))
    return k, (th[k] - m[k]) / scale[k], se[k] / scale[k], \
        (th_se[k] / scale[k] if th_se is not None else 0.0)


def main():
    rows = []
    # numbers in the names (T, d) sort by value: d64 before d128
    key = lambda p: re.sub(r"\d+", lambda m: m.group().zfill(6), p)
    for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.h5")), key=key):
        with h5py.File(path) as f:
            L = int(f["config"].attrs["depth"])
            seeds = f["propagate/act_ms"].shape[0]
            g = f["propagate/grad_ms"][:]
            sims = {"act_ms": f["propagate/act_ms"][:], "grad_ms": g / g[:, -1:],
                    "cos_tokens": f["propagate/cos_tokens"][:]}
            # act_ms and cos_tokens from layer 1 (layer 0 is the input), grad_ms below the top
            span = {"act_ms": (1, L + 1), "grad_ms": (0, L), "cos_tokens": (1, L + 1)}
            name = os.path.basename(path)[:-3].replace("_", " ")
            for met, x in sims.items():
                lo, hi = span[met]
                floor = 0.05 if met == "cos_tokens" else 0.0
                k, e, se, tse = worst(x, f["theory/" + met][:], f["theory/" + met + "_se"][:],
                                      lo, hi, floor)
                _, ei, _, _ = worst(x, f["theory_inf/" + met][:], None, lo, hi, floor)
                rows.append((name, seeds, met, k, e, se, tse, ei))
    print("| case | seeds | metric | layer | trajectories | ± sim se | ± MC se | expected Gram |")
    print("|---|---|---|---|---|---|---|---|")
    for name, seeds, met, k, e, se, tse, ei in rows:
        print(f"| {name} | {seeds} | {met} | {k} | {100 * e:+.1f}% | {100 * se:.1f}% | "
              f"{100 * tse:.1f}% | {100 * ei:+.1f}% |")


if __name__ == "__main__":
    main()
