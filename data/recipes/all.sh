#!/usr/bin/env bash
# all.sh [NORMSCOPE [OUTDIR]]: every figure recipe, one after the other, each timed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
for r in init_depth64 init_depth128 scale_init_sweep moe_routing placement_zoo; do
    start=$SECONDS
    bash "$HERE/$r.sh" "$@"
    echo "== $r: $((SECONDS - start)) s"
done
