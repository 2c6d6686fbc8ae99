#!/usr/bin/env bash
# moe_routing.sh [NORMSCOPE [OUTDIR]]: routing at initialization in mixture-of-experts blocks
# (causal attention, then E = 8 experts, top-2, capacity factor 1.25) for the three placements
# at depth 32, d = 256, T = 64, B = 4, GELU, LayerNorm, 8 seeds: expert load per block and
# expert, router entropy, load imbalance, dropped slots, next to the usual layer figures.
# Writes OUTDIR/moe_routing/ (figures) and OUTDIR/moe_routing/data/ (HDF5). pre and post (one
# file) run beside span (another), one thread each; the plot overlays the two files.
set -euo pipefail
source "$(dirname "$0")/common.sh"
DIR=$OUT/moe_routing
mkdir -p "$DIR/data"
MOE=(--block moe --experts 8 --top-k 2 --capacity 1.25 --depth 32 --seeds 8 --threads 1)
in_background run "$NS" propagate "${MOE[@]}" --placement pre,post --out "$DIR/data/moe_pre_post.h5"
in_background run "$NS" propagate "${MOE[@]}" --placement span --out "$DIR/data/moe_span.h5"
wait_all
run "$NS" plot "$DIR/data/moe_pre_post.h5" "$DIR/data/moe_span.h5" --out "$DIR"
