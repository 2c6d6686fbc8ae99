#!/usr/bin/env bash
# scale_init_sweep.sh [NORMSCOPE [OUTDIR]]: the Scale Init depth sweep, L = 8, 16, 32, 64, 128,
# MLP blocks, d = 256, T = 64, B = 4, GELU, LayerNorm, 8 seeds: PreNorm without and with
# Scale Init (alpha = 1 and 1/sqrt(L)), PostNorm (alpha = 1) and SpanNorm (alpha = 1/sqrt(L)).
# Each file's /sweep/fits holds the log-log slopes against depth of act_ms[L] and of
# grad_ms[0]/grad_ms[L], measured and predicted; depth_act_ms and depth_grad_ratio draw them.
# Writes OUTDIR/scale_init/ (figures) and OUTDIR/scale_init/data/ (HDF5). Two propagate runs at
# a time, one thread each: pre (two series) beside post, then span.
set -euo pipefail
source "$(dirname "$0")/common.sh"
DIR=$OUT/scale_init
mkdir -p "$DIR/data"
SWEEP=(--depth 8,16,32,64,128 --seeds 8 --threads 1)
post_then_span() {
    run "$NS" propagate --placement post "${SWEEP[@]}" --out "$DIR/data/post.h5"
    run "$NS" propagate --placement span "${SWEEP[@]}" --out "$DIR/data/span.h5"
}
in_background run "$NS" propagate --placement pre --scale-init none,sqrtL "${SWEEP[@]}" \
    --out "$DIR/data/pre.h5"
in_background post_then_span
wait_all
run "$NS" plot "$DIR/data/pre.h5" "$DIR/data/post.h5" "$DIR/data/span.h5" --out "$DIR"
