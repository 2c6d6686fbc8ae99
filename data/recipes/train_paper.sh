#!/usr/bin/env bash
# train_paper.sh [NORMSCOPE] [OUTDIR]: the paper-shaped training experiment, laptop-sized.
# PreNorm, PostNorm and SpanNorm (with its Scale Init, alpha = 1/sqrt(L)) Transformer stacks at
# depths 64 and 128, trained on the same synthetic Markov language with the same width, steps,
# batches and learning rate, then one table: final train and held-out loss, the first divergence
# step, and the gap to the entropy floor. Sized to finish in about 30 minutes on 2 cores.
set -euo pipefail
bin=${1:-build/release/analysis/normscope}
out=${2:-out/train_paper}
mkdir -p "$out"
common=(--block transformer --width 64 --heads 2 --seq 32 --batch 8 --vocab 32
        --steps 200 --warmup 20 --lr 3e-3 --min-lr 3e-4 --probe-every 50 --seed 1)
for depth in 64 128; do
  for scheme in pre post span; do
    f="$out/${scheme}_L${depth}.h5"
    # a divergence ends the run with status 3 and a complete file: record it, go on
    "$bin" train "${common[@]}" --scheme "$scheme" --depth "$depth" --out "$f" || [ $? -eq 3 ]
  done
done
/usr/bin/python3 - "$out" <<'PY'
import glob, os, sys
import h5py, numpy as np
print("| run | final train loss (mean of last 20 steps) | final held-out loss | diverged at | gap to the floor |")
print("|---|---|---|---|---|")
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.h5"))):
    with h5py.File(f, "r", swmr=True) as h:
        t = h["train"]
        loss, ev = t["loss"][:], t["events"]
        kinds, steps = ev["kind"][:], ev["step"][:]
        nan = [int(s) for s, k in zip(steps, kinds) if k in (0, 1)]
        ev_loss = t["probe/eval_loss"][-1] if len(t["probe/eval_loss"]) else float("nan")
        floor = t.attrs["loss_floor"]
        print("| %s | %.3f | %.3f | %s | %.3f |" % (os.path.basename(f)[:-3],
              np.nanmean(loss[-20:]), ev_loss, nan[0] if nan else "-", ev_loss - floor))
PY
