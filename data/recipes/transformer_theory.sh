#!/usr/bin/env bash
# transformer_theory.sh [--quick] [--seeds N] [--acts "A ..."] [--placements "P ..."]
# [--widths "D ..."] [NORMSCOPE [OUTDIR]]: the Transformer theory against simulation, the tables
# of analysis/theory/README.md, sections 9.7 (the catalogue's rows), 9.9 and 9.10 (widths).
#
# pre, post and span Transformer stacks (or --placements: any rows of the table; rezero runs at
# gate 0.5, as at its default 0 the stack is the identity), relu (and gelu with --acts),
# LayerNorm, d = 256 (or --widths), H = 4,
# L = 16, MLP ratio 4, Scale Init none (alpha = 1) and sqrtL (alpha = 1/4), T = 32 and 64 tokens,
# batch 4, 64 seeds (5000..). For act_ms, grad_ms (grad_ms_l / grad_ms_L per seed) and
# cos_tokens: the largest relative error over the layers of the seed mean, for /theory (the
# score-field trajectories) and /theory_inf (the expected-Gram recursion), each with the
# simulation's standard error and the trajectories' own at that layer.
# /theory is taken at the run's width (the norms' O(1/d) terms where derived, section 9.10),
# /theory_inf at d -> infinity.
# Writes OUTDIR/transformer_theory/data/<placement>_<scale>_<act>_T<T>_d<d>.h5 and
# OUTDIR/transformer_theory/table.md.
#   --quick   T = 32 only, 16 seeds (a few minutes)
#   --seeds   this many seeds (default 64)
#   --widths  the widths d (default 256; H = 4 heads at every width)
#   --acts    the activations (default relu)
#   --placements  the rows (default "pre post span")
# A data file that already exists is kept, not rerun (delete it to rerun).
set -euo pipefail
QUICK=0
SEEDS=""
ACTS=relu
PLACEMENTS="pre post span"
WIDTHS=256
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; shift ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --acts) ACTS=$2; shift 2 ;;
    --placements) PLACEMENTS=$2; shift 2 ;;
    --widths) WIDTHS=$2; shift 2 ;;
    *) break ;;
    esac
done
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
PY=${NS_PYTHON:-/usr/bin/python3}
DIR=$OUT/transformer_theory
mkdir -p "$DIR/data"
SEQS="32 64"
[ $QUICK = 1 ] && SEQS=32
[ -n "$SEEDS" ] || { if [ $QUICK = 1 ]; then SEEDS=16; else SEEDS=64; fi; }

one() { # one PLACEMENT SCALE ACT T D
    local f=$DIR/data/$1_$2_$3_T$4_d$5.h5
    [ -e "$f" ] && return 0
    local gate=()
    [ "$1" = rezero ] && gate=(--rezero-init 0.5)
    run "$NS" propagate --block transformer --placement "$1" "${gate[@]}" --scale-init "$2" \
        --act "$3" \
        --norm layernorm --width "$5" --heads 4 --depth 16 --mlp-ratio 4 --seq "$4" --batch 4 \
        --seeds "$SEEDS" --seed 5000 --threads 1 --out "$f" >/dev/null
}

for d in $WIDTHS; do
    for act in $ACTS; do
        for T in $SEQS; do
            for si in none sqrtL; do
                for p in $PLACEMENTS; do
                    pool one $p $si "$act" "$T" "$d"
                done
            done
        done
    done
done
wait_all
"$PY" "$REPO/data/recipes/transformer_theory_table.py" "$DIR/data" | tee "$DIR/table.md"
