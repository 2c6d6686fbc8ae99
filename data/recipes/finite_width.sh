#!/usr/bin/env bash
# finite_width.sh [--quick] [--widths "D1 D2 ..."] [--cases "P:A ..."] [--seeds N]
#                 [NORMSCOPE [OUTDIR]]: the MLP theory against simulation at finite width, the
# table of analysis/theory/README.md, section 10.5.
#
# For post, pre, span and span-wrapped (each at its default Scale Init: alpha = 1, 1, 1/sqrt(L),
# 1/sqrt(L)), relu and gelu, LayerNorm, L = 32, MLP ratio 4, at d = 64, 128, 256, 512, 1024:
# many seeds of 64 tokens (one sequence; the MLP never mixes tokens, so T only sets how many
# independent tokens a seed's weights see), then p_0/p_L per seed, its mean and standard error,
# and the relative error of /theory (O(1/d)) and /theory_inf (d -> infinity) against the mean.
# Writes OUTDIR/finite_width/data/<case>_d<d>.h5 and OUTDIR/finite_width/table.md.
#   --quick     d = 64, 128, 256 with a quarter of the seeds (a few minutes)
#   --widths    the widths to run (default: all five, or the quick three)
#   --cases     the placement:activation pairs to run (default: all eight; any row of the
#               table, rezero at gate 0.5, as at its default 0 the stack is the identity)
#   --seeds     this many seeds at every width (default: per width, below)
# A data file that already exists is kept, not rerun (delete it to rerun): an interrupted recipe
# resumes, and a table can be rebuilt from the files alone.
# The full run takes long at d = 1024 (about 4 s per seed and case on one core).
set -euo pipefail
QUICK=0
WIDTHS=""
SEEDS=""
CASES="post:relu post:gelu pre:relu pre:gelu span:relu span:gelu span-wrapped:relu span-wrapped:gelu"
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; shift ;;
    --widths) WIDTHS=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    *) break ;;
    esac
done
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
H5DUMP=${H5DUMP:-h5dump}
command -v "$H5DUMP" >/dev/null || { echo "finite_width.sh: needs h5dump (hdf5-tools)" >&2; exit 2; }
if [ -z "$WIDTHS" ]; then
    if [ $QUICK = 1 ]; then WIDTHS="64 128 256"; else WIDTHS="64 128 256 512 1024"; fi
fi
DIR=$OUT/finite_width
mkdir -p "$DIR/data"
L=32

# seeds per width: the correction falls as 1/d and the cost of a seed grows as d^2, so the wide
# runs resolve less of it; PostNorm's per-seed spread is the largest (over 50% at 64 tokens, at
# d = 64; it falls as 1/sqrt(d))
seeds_for() {
    local s
    [ -n "$SEEDS" ] && { echo "$SEEDS"; return; }
    case $1 in
    64) s=1000 ;; 128) s=500 ;; 256) s=300 ;; 512) s=100 ;; *) s=40 ;;
    esac
    [ $QUICK = 1 ] && s=$((s / 4))
    echo $s
}

one() { # one CASE WIDTH
    local pl=${1%%:*} act=${1##*:} d=$2
    [ -e "$DIR/data/${pl}_${act}_d${d}.h5" ] && return 0
    local gate=()
    [ "$pl" = rezero ] && gate=(--rezero-init 0.5)
    run "$NS" propagate --placement "$pl" "${gate[@]}" --act "$act" --norm layernorm --depth $L \
        --width "$d" --mlp-ratio 4 --seq 64 --batch 1 --seeds "$(seeds_for "$d")" --threads 1 \
        --out "$DIR/data/${pl}_${act}_d${d}.h5" >/dev/null
}

for d in $WIDTHS; do
    for c in $CASES; do
        in_background one "$c" "$d"
        if [ ${#PIDS[@]} -ge 2 ]; then wait_all; fi
    done
done
wait_all

# dataset DSET of FILE as numbers, one per line, in row-major order
values() {
    local tmp
    tmp=$(mktemp)
    "$H5DUMP" -y -w 0 -m %.12g -o "$tmp" -d "$2" "$1" >/dev/null
    tr ',' '\n' <"$tmp" | awk 'NF { print $1 }'
    rm -f "$tmp"
}

{
    echo "| d | case | seeds | simulation p_0/p_L +- se | O(1/d) error | d -> inf error | se |"
    echo "|---|---|---|---|---|---|---|"
    for d in $WIDTHS; do
        for c in $CASES; do
            f=$DIR/data/${c%%:*}_${c##*:}_d${d}.h5
            {
                values "$f" /propagate/grad_ms | awk '{ print "m", $1 }'
                values "$f" /theory/grad_ms | awk '{ print "t", $1 }'
                values "$f" /theory_inf/grad_ms | awk '{ print "i", $1 }'
            } | awk -v L=$L -v d="$d" -v c="${c/:/ }" '
                $1 == "m" { k = nm++ % (L + 1); if (k == 0) p0 = $2;
                            if (k == L) { r = p0 / $2; n++; s += r; ss += r * r } }
                $1 == "t" { if (nt++ == 0) t0 = $2; tL = $2 }
                $1 == "i" { if (ni++ == 0) i0 = $2; iL = $2 }
                END {
                    mean = s / n; se = sqrt((ss / n - mean * mean) / (n - 1))
                    printf "| %d | %s | %d | %.4f +- %.4f | %+.2f%% | %+.2f%% | %.2f%% |\n", d, c,
                        n, mean, se, 100 * (t0 / tL / mean - 1), 100 * (i0 / iL / mean - 1),
                        100 * se / mean
                }'
        done
    done
} | tee "$DIR/table.md"
