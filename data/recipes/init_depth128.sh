#!/usr/bin/env bash
# init_depth128.sh [NORMSCOPE [OUTDIR]]: the standard figures at initialization at depth 128
# (init_depth.sh 128).
exec "$(dirname "$0")/init_depth.sh" 128 "$@"
