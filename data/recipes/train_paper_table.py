#!/usr/bin/python3
"""train_paper_table.py DIR: the table of the paper-shaped training experiment (train_paper.sh)
from its HDF5 files, as Markdown: final training loss (mean of the last 20 steps), final
held-out loss, the first divergence step, the gap to the loss floor, the mean training loss of
the first 100 steps (how fast it learns) and the first probe whose held-out loss is within 0.1
nats of the floor. Reads the files as a SWMR reader, so it also works on a run in progress."""
import glob
import os
import sys

import h5py
import numpy as np


def row(path):
    with h5py.File(path, "r", swmr=True) as f:
        t, cfg = f["train"], f["config"].attrs
        loss, ev_loss, probe = t["loss"][:], t["probe/eval_loss"][:], t["probe/step"][:]
        kinds, steps = t["events/kind"][:], t["events/step"][:]
        floor = float(t.attrs["loss_floor"])
        nan = [int(s) for s, k in zip(steps, kinds) if k in (0, 1)]
        close = [int(s) for s, e in zip(probe, ev_loss) if e - floor <= 0.1]
        last = ev_loss[-1] if len(ev_loss) else float("nan")
        name = "%s L=%d (alpha %.3g)" % (cfg["scheme"].decode() if isinstance(cfg["scheme"], bytes)
                                          else cfg["scheme"], cfg["depth"], cfg["alpha"])
        return (int(cfg["depth"]), name, np.nanmean(loss[-20:]), last, nan[0] if nan else "-",
                last - floor, np.nanmean(loss[:100]), close[0] if close else "never", floor)


def main(d):
    rows = sorted((row(p) for p in glob.glob(os.path.join(d, "*.h5"))), key=lambda r: (r[0], r[1]))
    if not rows:
        sys.exit("train_paper_table.py: no .h5 files in %s" % d)
    print("| run | final train loss (last 20 steps) | final held-out loss | diverged at | gap to the "
          "floor (%.3f) | mean train loss, steps 1-100 | held-out within 0.1 of the floor at |"
          % rows[0][8])
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %.3f | %.3f | %s | %.3f | %.3f | %s |" % r[1:8])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/train_paper")
