#!/usr/bin/env python3
"""sweep_readback.py BIN DIR: a propagate sweep lands in one file whose /sweep table, /runs groups
and /sweep/fits agree with each other, and whose every point equals the same run made alone."""
import os
import subprocess
import sys

import h5py
import numpy as np
from checklist import check, failures


def run(binary, args):
    p = subprocess.run([binary] + args, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def main():
    binary, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    common = ["--width", "64", "--seq", "8", "--batch", "2", "--seeds", "2", "--act", "relu",
              "--threads", "1"]
    sweep = os.path.join(outdir, "sweep.h5")
    st, so, se = run(binary, ["propagate", "--placement", "pre,span", "--depth", "4,8,16"]
                     + common + ["--out", sweep])
    if not check(st == 0, "sweep exited %d: %s" % (st, se)):
        return 1
    check(so.startswith("wrote %s: a sweep of 6 points" % sweep), "stdout %r" % so)
    with h5py.File(sweep, "r") as f:
        check(sorted(f.keys()) == ["runs", "sweep"], "top level %s" % list(f.keys()))
        sw = f["sweep"]
        # --placement's /sweep column and /config attribute keep their legacy name, scheme
        check(list(sw.attrs["parameters"]) == ["scheme", "depth"], "parameters %r"
              % sw.attrs["parameters"])
        schemes = [s for s in sw["scheme"].asstr()[()]]
        depths = [int(d) for d in sw["depth"][()]]
        # the first option in the table varies slowest
        check(schemes == ["pre"] * 3 + ["span"] * 3, "scheme column %s" % schemes)
        check(depths == [4, 8, 16] * 2, "depth column %s" % depths)
        for i in range(6):
            g = f["runs/%d" % i]
            c = g["config"].attrs
            check(c["scheme"] == schemes[i] and c["depth"] == depths[i],
                  "runs/%d config %s/%s does not match /sweep" % (i, c["scheme"], c["depth"]))
            check(g["propagate/act_ms"].shape == (2, depths[i] + 1), "runs/%d act_ms shape" % i)
            check("theory" in g and g["theory/act_ms"].shape == (depths[i] + 1,),
                  "runs/%d has no theory" % i)
        fits = f["sweep/fits"]
        check(list(fits["first_point"][()]) == [0, 3], "first_point %s" % fits["first_point"][()])
        slope, se = fits["act_ms_slope"][()], fits["act_ms_slope_se"][()]
        th = fits["act_ms_slope_theory"][()]
        check(np.all(np.isfinite(slope)) and np.all(se >= 0) and np.all(np.isfinite(th)),
              "fits not finite: %s %s %s" % (slope, se, th))
        # recompute the measured slope of the first series from /runs
        act_L = [f["runs/%d/propagate/act_ms" % i][:, -1].mean() for i in range(3)]
        want = np.polyfit(np.log(depths[:3]), np.log(act_L), 1)[0]
        check(abs(slope[0] - want) < 1e-9, "act_ms_slope %r, recomputed %r" % (slope[0], want))
        # its standard error: the spread of each seed's own slope (the seeds share their draws
        # across depths), over sqrt(seeds); both error columns, both series
        for name, per_seed in (("act_ms_slope_se",
                                lambda i: f["runs/%d/propagate/act_ms" % i][:, -1]),
                               ("grad_ratio_slope_se",
                                lambda i: f["runs/%d/propagate/grad_ms" % i][:, 0]
                                / f["runs/%d/propagate/grad_ms" % i][:, -1])):
            for series, first in enumerate((0, 3)):
                ys = np.array([per_seed(first + k) for k in range(3)])  # [depth, seed]
                slopes = [np.polyfit(np.log(depths[:3]), np.log(ys[:, s]), 1)[0]
                          for s in range(ys.shape[1])]
                want_se = np.std(slopes, ddof=1) / np.sqrt(len(slopes))
                got = fits[name][series]
                check(abs(got - want_se) <= 1e-9 * max(1.0, want_se),
                      "%s[%d] %r, recomputed from the seeds' slopes %r"
                      % (name, series, got, want_se))
        # PreNorm grows with depth (slope near 1 for alpha = 1), SpanNorm with sqrtL stays flat
        check(0.4 < th[0] < 1.1 and abs(th[1]) < 0.05, "theory slopes %s" % th)
        # each point equals the same run made alone
        for i in (1, 5):
            alone = os.path.join(outdir, "alone%d.h5" % i)
            st, so, se = run(binary, ["propagate", "--placement", schemes[i], "--depth",
                                      str(depths[i])] + common + ["--out", alone])
            if check(st == 0, "alone run %d: %s" % (i, se)):
                with h5py.File(alone, "r") as a:
                    for n in a["propagate"]:
                        check(np.array_equal(a["propagate"][n][()],
                                             f["runs/%d/propagate/%s" % (i, n)][()]),
                              "runs/%d/propagate/%s differs from the run alone" % (i, n))
    # a list where the option takes none, and a bad list element: usage errors, no file
    for args, needle in ((["--threads", "1,2"], "--threads"), (["--depth", "8,0"], "--depth")):
        out = os.path.join(outdir, "bad.h5")
        st, so, se = run(binary, ["propagate"] + args + ["--out", out])
        check(st == 2 and needle in se and len(se.strip().splitlines()) == 1
              and not os.path.exists(out), "%s: exit %d, stderr %r" % (args, st, se))
    print("sweep_readback: %d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
