#!/usr/bin/env bash
# init_depth.sh L [NORMSCOPE [OUTDIR]]: variance and gradients at initialization for the three
# placements (pre, post, span at their default Scale Init: alpha = 1, 1, 1/sqrt(L)) at depth L,
# MLP blocks and Transformer blocks (H = 4), d = 256, T = 64, B = 4, GELU, LayerNorm, 8 seeds.
# Writes OUTDIR/init_depthL/{mlp,transformer}/ (figures) and OUTDIR/init_depthL/data/ (HDF5).
# init_depth64.sh and init_depth128.sh are this at L = 64 and 128.
# The MLP and the Transformer file are made side by side, one thread each.
set -euo pipefail
if [ $# -lt 1 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: init_depth.sh L [NORMSCOPE [OUTDIR]] (L a positive depth)" >&2
    exit 2
fi
L=$1
shift
source "$(dirname "$0")/common.sh"
DIR=$OUT/init_depth$L
mkdir -p "$DIR/data"
for block in mlp transformer; do
    in_background run "$NS" propagate --block $block --placement pre,post,span --depth $L \
        --seeds 8 --threads 1 --out "$DIR/data/$block.h5"
done
wait_all
for block in mlp transformer; do
    run "$NS" plot "$DIR/data/$block.h5" --out "$DIR/$block"
done
