# common.sh: sourced by the figure recipes (not run on its own).
#
#   recipe.sh [NORMSCOPE [OUTDIR]]
#
# NORMSCOPE defaults to build/release/normscope and OUTDIR to out/figures, both under
# the repository root; paths given on the command line are taken as given (relative to the
# current directory). Each recipe writes its HDF5 files to OUTDIR/<recipe>/data/ and its figures
# to OUTDIR/<recipe>/..., echoing every command before it runs it.
#
# Threads: every propagate runs single-threaded (--threads 1), and a recipe runs two of them at a
# time where it has independent ones. At these sizes (256 tokens) a GEMM is two 128-row blocks,
# so a second OpenMP thread gains little, and on a shared, busy machine it spins: measured here
# under load, --threads 2 was 2.7x (MLP) to 3.9x (Transformer) slower than --threads 1.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NS=${1:-$REPO/build/release/normscope}
OUT=${2:-$REPO/out/figures}
if [ ! -x "$NS" ]; then
    echo "$(basename "$0"): no normscope binary at $NS (build it: cmake --build --preset release)" >&2
    exit 2
fi

# run CMD...: echo, then run (set -e stops the recipe on the first failure)
run() {
    echo "+ $*"
    "$@"
}

# in_background CMD...: run CMD (a command or a function) alongside the recipe; wait_all waits
# for every such job and fails if any failed. A recipe that stops early ends its jobs.
PIDS=()
in_background() {
    "$@" &
    PIDS+=($!)
}
wait_all() {
    local st=0
    for p in "${PIDS[@]}"; do
        wait "$p" || st=$?
    done
    PIDS=()
    return $st
}
# pool CMD...: in_background, but at most JOBS (default 2) jobs at a time: waits for the oldest
pool() {
    in_background "$@"
    if [ ${#PIDS[@]} -ge "${JOBS:-2}" ]; then
        wait "${PIDS[0]}"
        PIDS=("${PIDS[@]:1}")
    fi
}
trap '[ ${#PIDS[@]} -eq 0 ] || kill "${PIDS[@]}" 2>/dev/null' EXIT
# text_run FILE BLOCK PLACEMENT DEPTH LR WARMUP SEED: one training run on the --data corpus $DATA
# (shape from WIDTH, SHAPE, STEPS, PROBE), skipped when FILE.done marks it finished; a divergence
# (exit 3) is a result, not a failure
text_run() {
    local f=$1 blk=$2 pl=$3 L=$4 lr=$5 warm=$6 seed=$7
    [ -e "$f.done" ] && return 0
    rm -f "$f" "$f.ckpt"
    local st=0
    echo "+ $NS train --block $blk --placement $pl --depth $L --lr $lr --warmup $warm" \
        "--seed $seed ... --out $f"
    "$NS" train --block "$blk" --placement "$pl" --depth "$L" --width "$WIDTH" "${SHAPE[@]}" \
        --vocab 256 --data "$DATA" --steps "$STEPS" --warmup "$warm" --lr "$lr" \
        --min-lr "$(awk -v x="$lr" 'BEGIN { print x / 10 }')" --probe-every "$PROBE" \
        --checkpoint-every "$((STEPS + 1))" --seed "$seed" --threads 1 --out "$f" \
        >/dev/null || st=$?
    rm -f "$f.ckpt"
    [ $st -eq 0 ] || [ $st -eq 3 ] || return $st
    touch "$f.done"
}
