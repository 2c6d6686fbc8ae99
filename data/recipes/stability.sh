#!/usr/bin/env bash
# stability.sh [--quick] [OPTIONS] [NORMSCOPE [OUTDIR]]: the learning-rate stability experiment on
# real text. For each placement and depth, Transformer stacks are trained on the bytes of a text
# corpus (V = 256, a tenth held out) at 6 peak learning rates from 1e-4 to 1e-1, with a linear
# warmup of a tenth of the steps and without one (--warmup 1: the first step at the peak), seed 1;
# then at each sweep's best learning rate with more seeds. stability_report.py makes the table
# (Markdown and CSV) and the figure: final held-out bits per byte against the learning rate, one
# curve per placement, one panel per depth, diverged runs marked.
#
#   --quick          toy sizes (depths 2 and 4, d = 16, 30 steps, 2 seeds): about a minute
#   --depths "L ..." depths (default 16 64 128)
#   --steps N        optimizer steps per run (default 200)
#   --width D        model width (default 64)
#   --seq T, --batch B  tokens per sequence and sequences per step (default 32 and 8)
#   --warmups "W ..."   warmup and/or nowarmup (default both)
#   --seeds N        seeds at the best learning rate, the sweep's included (default 3)
#   --placements "P ..." placements (default pre post span); --all-placements: every row of
#                    `normscope placements --json` that takes Transformer blocks
#   --data PATHS     the corpus (default /usr/share/games/fortunes, Debian's fortunes package)
#   --jobs N         runs at a time (default 2), each single-threaded (common.sh says why)
#
# Writes OUTDIR/stability/data/<placement>_L<depth>_<warmup|nowarmup>_lr<lr>_s<seed>.h5, and
# OUTDIR/stability/{table.md,table.csv,stability.{png,pdf,svg},stability_tex.{tex,pdf}}. A run
# already done (its .done marker exists) is not run again, so an interrupted recipe continues.
set -euo pipefail
QUICK=0 DEPTHS="" STEPS="" WIDTH="" SEEDS="" SEQ="" BATCH="" WARMUPS="warmup nowarmup"
PLACEMENTS="pre post span" ALL=0 JOBS=2
DATA=/usr/share/games/fortunes
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; shift ;;
    --depths) DEPTHS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --width) WIDTH=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --seq) SEQ=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --warmups) WARMUPS=$2; shift 2 ;;
    --placements) PLACEMENTS=$2; shift 2 ;;
    --all-placements) ALL=1; shift ;;
    --data) DATA=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -*) echo "stability.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PY=${NS_PYTHON:-/usr/bin/python3}
if [ "$DATA" = /usr/share/games/fortunes ] && [ ! -d "$DATA" ]; then
    echo "stability.sh: fortunes not installed: apt-get install fortunes" >&2
    exit 2
fi
if [ $QUICK = 1 ]; then
    : "${DEPTHS:=2 4}" "${STEPS:=30}" "${WIDTH:=16}" "${SEEDS:=2}" "${SEQ:=16}" "${BATCH:=4}"
    SHAPE=(--heads 2 --eval-batches 2)
else
    : "${DEPTHS:=16 64 128}" "${STEPS:=200}" "${WIDTH:=64}" "${SEEDS:=3}" "${SEQ:=32}" "${BATCH:=8}"
    SHAPE=(--heads 2 --eval-batches 8)
fi
SHAPE+=(--seq "$SEQ" --batch "$BATCH")
if [ $ALL = 1 ]; then
    PLACEMENTS=$("$NS" placements --json | "$PY" -c '
import json, sys
print(" ".join(p["name"] for p in json.load(sys.stdin)["placements"]
               if "transformer" in p["blocks"]))')
fi
LRS="1e-4 4e-4 1.6e-3 6.3e-3 2.5e-2 1e-1"
DIR=$OUT/stability
mkdir -p "$DIR/data"
PROBE=$((STEPS / 10 > 0 ? STEPS / 10 : 1))

# one PLACEMENT DEPTH warmup|nowarmup LR SEED: a divergence (exit 3) is a result, not a failure
one() {
    local pl=$1 L=$2 w=$3 lr=$4 seed=$5 warm=1
    [ "$w" = warmup ] && warm=$((STEPS / 10 > 0 ? STEPS / 10 : 1))
    local f=$DIR/data/${pl}_L${L}_${w}_lr${lr}_s${seed}.h5
    text_run "$f" transformer "$pl" "$L" "$lr" "$warm" "$seed"
}

# 1. the sweep, deepest first
for L in $(echo "$DEPTHS" | tr ' ' '\n' | sort -rn); do
    for w in $WARMUPS; do
        for pl in $PLACEMENTS; do
            for lr in $LRS; do
                pool one "$pl" "$L" "$w" "$lr" 1
            done
        done
    done
done
wait_all
# 2. more seeds at each sweep's best learning rate
"$PY" "$REPO/data/recipes/stability_report.py" --best "$DIR" >"$DIR/best.txt"
while read -r pl L w lr; do
    for seed in $(seq 2 "$SEEDS"); do
        pool one "$pl" "$L" "$w" "$lr" "$seed"
    done
done <"$DIR/best.txt"
wait_all
# 3. the table and the figure
run "$PY" "$REPO/data/recipes/stability_report.py" --normscope "$NS" "$DIR"
