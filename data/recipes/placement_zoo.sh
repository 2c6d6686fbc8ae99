#!/usr/bin/env bash
# placement_zoo.sh [NORMSCOPE [OUTDIR]]: every placement of the table at once, at initialization,
# L = 128, d = 256, T = 64, B = 4, GELU, LayerNorm, 8 seeds, each placement at its default Scale
# Init: MLP blocks (every row that takes them) and Transformer blocks (H = 4).
# Writes OUTDIR/placement_zoo/{mlp,transformer}/ (figures: act_ms, grad_ms, cos_tokens, ...) and
# OUTDIR/placement_zoo/data/ (HDF5). The placements come from the program's own table, so a new
# row shows up here with no change to this script.
set -euo pipefail
source "$(dirname "$0")/common.sh"
DIR=$OUT/placement_zoo
mkdir -p "$DIR/data"
# every row, and the rows that take MLP blocks (B2T needs two sublayers); one row a line
json=$("$NS" placements --json)
all=$(sed -n 's/.*"name": "\([^"]*\)".*/\1/p' <<< "$json" | paste -sd, -)
mlp=$(grep '"blocks": \[[^]]*"mlp"' <<< "$json" | sed -n 's/.*"name": "\([^"]*\)".*/\1/p' |
      paste -sd, -)
in_background run "$NS" propagate --block mlp --placement "$mlp" --depth 128 --seeds 8 \
    --threads 1 --out "$DIR/data/mlp.h5"
in_background run "$NS" propagate --block transformer --placement "$all" --depth 128 --seeds 8 \
    --threads 1 --out "$DIR/data/transformer.h5"
wait_all
for block in mlp transformer; do
    run "$NS" plot "$DIR/data/$block.h5" --out "$DIR/$block"
done
