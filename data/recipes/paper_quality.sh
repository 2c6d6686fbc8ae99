#!/usr/bin/env bash
# paper_quality.sh [--quick] [OPTIONS] [NORMSCOPE [OUTDIR]]: the quality experiment on real text.
# For each placement, dense (Transformer) and MoE stacks at depths 64 and 128 are trained on the
# bytes of a text corpus (V = 256, a tenth held out) at that placement's best learning rate, with
# several seeds; quality_report.py then draws the held-out bits per byte against step (mean and
# spread over the seeds, one curve per placement, one panel per block and depth), and per run
# heatmaps over (probe step, layer) of the per-block gradient norm, cos_tokens and eff_rank
# (representation collapse as it happens), and writes a table (Markdown and CSV).
#
#   --quick          toy sizes (depths 2 and 4, d = 16, 40 steps): under a minute
#   --table CSV      learning rates from stability.sh's table.csv: each placement's best lr with
#                    warmup at that depth, or at the deepest depth it has; without it, --lr
#   --lr LR          the learning rate of every placement without a table (default 3e-3)
#   --depths "L ..." depths (default 64 128); --steps N (default 200); --width D (default 64);
#   --seeds N        seeds per run (default 3); --blocks "transformer moe" (default both)
#   --seq T, --batch B  tokens per sequence and sequences per step (default 32 and 8)
#   --placements "P ..." placements (default pre post span)
#   --data PATHS     the corpus (default /usr/share/games/fortunes, Debian's fortunes package)
#   --jobs N         runs at a time (default 2), each single-threaded
#
# Writes OUTDIR/paper_quality/data/<block>_<placement>_L<depth>_s<seed>.h5 and, in
# OUTDIR/paper_quality/, quality.md, quality.csv, heldout.{png,pdf,svg} (+ heldout_tex.{tex,pdf})
# and layers_<block>_L<depth>.{png,pdf,svg} (+ _tex). MoE: 4 experts, top-2. A run already done
# (its .done marker exists) is not run again.
set -euo pipefail
QUICK=0 DEPTHS="" STEPS="" WIDTH="" SEEDS="" SEQ="" BATCH="" TABLE="" LR=3e-3
PLACEMENTS="pre post span" BLOCKS="transformer moe" JOBS=2 DATA=/usr/share/games/fortunes
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; shift ;;
    --table) TABLE=$2; shift 2 ;;
    --lr) LR=$2; shift 2 ;;
    --depths) DEPTHS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --width) WIDTH=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --seq) SEQ=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --blocks) BLOCKS=$2; shift 2 ;;
    --placements) PLACEMENTS=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -*) echo "paper_quality.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PY=${NS_PYTHON:-/usr/bin/python3}
if [ "$DATA" = /usr/share/games/fortunes ] && [ ! -d "$DATA" ]; then
    echo "paper_quality.sh: fortunes not installed: apt-get install fortunes" >&2
    exit 2
fi
if [ -n "$TABLE" ] && [ ! -r "$TABLE" ]; then
    echo "paper_quality.sh: cannot read --table $TABLE" >&2
    exit 2
fi
if [ $QUICK = 1 ]; then
    : "${DEPTHS:=2 4}" "${STEPS:=40}" "${WIDTH:=16}" "${SEEDS:=3}" "${SEQ:=16}" "${BATCH:=4}"
    SHAPE=(--heads 2 --eval-batches 2)
else
    : "${DEPTHS:=64 128}" "${STEPS:=200}" "${WIDTH:=64}" "${SEEDS:=3}" "${SEQ:=32}" "${BATCH:=8}"
    SHAPE=(--heads 2 --eval-batches 8)
fi
SHAPE+=(--seq "$SEQ" --batch "$BATCH" --experts 4 --top-k 2)
DIR=$OUT/paper_quality
mkdir -p "$DIR/data"
PROBE=$((STEPS / 20 > 0 ? STEPS / 20 : 1))
WARM=$((STEPS / 10 > 0 ? STEPS / 10 : 1))

# lr_for PLACEMENT DEPTH: from the stability table (warmup rows), else --lr
lr_for() {
    if [ -z "$TABLE" ]; then echo "$LR"; return; fi
    "$PY" - "$TABLE" "$1" "$2" "$LR" <<'PY'
import csv, sys
table, pl, depth, default = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = [r for r in csv.DictReader(open(table))
        if r["placement"] == pl and r["warmup"] == "warmup" and r["best_lr"]]
same = [r for r in rows if int(r["depth"]) == depth]
pick = same or sorted(rows, key=lambda r: int(r["depth"]))[-1:]
print(pick[0]["best_lr"] if pick else default)
PY
}

# one BLOCK PLACEMENT DEPTH LR SEED: a divergence (exit 3) is a result, not a failure
one() {
    local blk=$1 pl=$2 L=$3 lr=$4 seed=$5
    local f=$DIR/data/${blk}_${pl}_L${L}_s${seed}.h5
    text_run "$f" "$blk" "$pl" "$L" "$lr" "$WARM" "$seed"
}

for L in $(echo "$DEPTHS" | tr ' ' '\n' | sort -rn); do
    for blk in $BLOCKS; do
        for pl in $PLACEMENTS; do
            lr=$(lr_for "$pl" "$L")
            for seed in $(seq 1 "$SEEDS"); do
                pool one "$blk" "$pl" "$L" "$lr" "$seed"
            done
        done
    done
done
wait_all
run "$PY" "$REPO/data/recipes/quality_report.py" --normscope "$NS" "$DIR"
