#!/usr/bin/env bash
# init_depth64.sh [NORMSCOPE [OUTDIR]]: the standard figures at initialization at depth 64
# (init_depth.sh 64).
exec "$(dirname "$0")/init_depth.sh" 64 "$@"
