#!/usr/bin/env bash
# bad_input.sh BIN: every bad input to `normscope` fails cleanly.
#
# For each case: the exit status (2 usage, 1 runtime), nothing on stdout, exactly one line on
# stderr that starts with "normscope" and names the option and/or value at fault (argp's
# "Try ... --help" hint after an unknown option is printed only at a terminal), and no file left
# behind:
# neither the output path nor any *.partial-* (each case runs in a fresh, empty directory).
# Prints only failures and a final summary line; exits non-zero on any failure.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: bad_input.sh /path/to/normscope" >&2
    exit 2
fi
BIN=$1
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ns-e2e-bad.XXXXXX") || exit 2
trap 'rm -rf "$ROOT"' EXIT

# tiny, valid settings: a case that is accidentally accepted costs milliseconds
SMALL=(--depth 2 --width 8 --seq 4 --batch 1 --seeds 1 --threads 1)
ncase=0
nfail=0
failed=0 # per case

fail() {
    echo "FAIL [$CASE]: $*"
    failed=1
}

# describe_status STATUS: "exit N" or "killed by signal N"
describe_status() {
    if [ "$1" -gt 128 ]; then echo "exit $1 (killed by signal $(($1 - 128)))"; else echo "exit $1"; fi
}

# check_outcome STATUS EXPECTED_STATUS NEEDLE...  (uses $DIR/stdout, $DIR/stderr)
check_outcome() {
    local status=$1 expect=$2
    shift 2
    local out=$DIR/.stdout err=$DIR/.stderr
    if [ "$status" -ne "$expect" ]; then
        fail "expected exit $expect, got $(describe_status "$status")"
    fi
    if [ -s "$out" ]; then
        fail "expected nothing on stdout, got: $(head -c 300 "$out")"
    fi
    local nlines first
    nlines=$(wc -l <"$err")
    first=$(head -n 1 "$err")
    if [ ! -s "$err" ]; then
        fail "expected a one-line message on stderr, got nothing"
    else
        case $first in
        normscope*) ;;
        *) fail "stderr's first line does not start with 'normscope': $first" ;;
        esac
        # a message without a final newline still counts as a line
        [ -n "$(tail -c 1 "$err")" ] && nlines=$((nlines + 1))
        if [ "$nlines" -ne 1 ]; then
            fail "expected exactly one line on stderr, got $nlines: $(head -c 400 "$err" | tr '\n' '|')"
        fi
        local needle
        for needle in "$@"; do
            if [[ $first != *"$needle"* ]]; then
                fail "message does not name '$needle': $first"
            fi
        done
    fi
    # nothing may be left behind: not the output, not a *.partial-*, nothing at all
    local left
    left=$(cd "$DIR" && find . -mindepth 1 ! -path ./.stdout ! -path ./.stderr ! -path ./.keep \
        -print | sort | tr '\n' ' ')
    if [ -n "$left" ]; then
        fail "files left behind: $left"
    fi
}

# new_case NAME: a fresh empty directory $DIR, cwd there
declare -A nclass nclass_failed # cases per class, for the summary
case_class() {
    case $1 in
    *ulimit*) echo limits ;;
    SIG*) echo signals ;;
    *) echo "usage and output paths" ;;
    esac
}
new_case() {
    CASE=$1
    ncase=$((ncase + 1))
    nclass[$(case_class "$CASE")]=$((${nclass[$(case_class "$CASE")]:-0} + 1))
    failed=0
    DIR=$ROOT/case$ncase
    mkdir -p "$DIR" && cd "$DIR" || exit 2
}

end_case() {
    [ "$failed" = 0 ] || nfail=$((nfail + 1))
    [ "$failed" = 0 ] ||
        nclass_failed[$(case_class "$CASE")]=$((${nclass_failed[$(case_class "$CASE")]:-0} + 1))
    cd "$ROOT" || exit 2
}

# usage_case NAME NEEDLES ARGS...: propagate with tiny valid sizes plus ARGS -> exit 2.
# NEEDLES is a '|'-separated list of substrings the message must contain.
usage_case() {
    local name=$1 needles=$2
    shift 2
    new_case "$name"
    "$BIN" propagate "${SMALL[@]}" --out out.h5 "$@" >.stdout 2>.stderr </dev/null
    local st=$?
    local -a words
    IFS='|' read -r -a words <<<"$needles"
    check_outcome $st 2 "${words[@]}"
    end_case
}

usage_case "unknown placement" "--placement|sandwch" --placement sandwch
usage_case "b2t on MLP blocks" "--placement b2t|--block" --placement b2t --block mlp
# per-block schedules (a value with a '*'): every problem named, before any file exists
usage_case "schedule counts over L" "--placement|post*9,pre|--depth 8" --placement 'post*9,pre' \
    --depth 8
usage_case "schedule leaves the last entry no block" "post*8,pre|--depth 8|no block" \
    --placement 'post*8,pre' --depth 8
usage_case "schedule counts short of L" "post*1,pre*1|--depth 8" --placement 'post*1,pre*1' \
    --depth 8
usage_case "schedule count 0" "--placement|post*0,pre|count" --placement 'post*0,pre'
usage_case "schedule count negative" "--placement|post*-2,pre|count" --placement 'post*-2,pre'
usage_case "schedule count not a number" "--placement|post*x,pre" --placement 'post*x,pre'
usage_case "schedule unknown name" "--placement|prenorm*1,post|entry 1" --placement 'prenorm*1,post'
usage_case "schedule uncounted entry first" "--placement|post,pre*1|entry 1" --placement 'post,pre*1'
usage_case "schedule b2t on MLP blocks" "--placement|b2t|--block" --placement 'b2t*1,post' \
    --block mlp
usage_case "schedule rows of two layouts" "--placement|span" --placement 'post*1,span'
usage_case "a dual stream in a schedule" "--placement|residual" --placement 'residual*1,post'
usage_case "schedule inside a schedule" "--placement|mixln" --placement 'mixln*1,pre'
usage_case "admin inside a schedule" "--placement|admin|schedule" --placement 'post*2,admin' \
    --depth 4
usage_case "subln beside another init rule" "--placement|subln|init rule" \
    --placement 'subln*2,pre' --depth 4
usage_case "dslm in a schedule with pre" "--placement|dslm|init rule" --placement 'pre*2,dslm' \
    --depth 4
usage_case "--post-fraction above 1" "--post-fraction|1.5" --placement mixln --post-fraction 1.5
usage_case "a model larger than the machine" "needs about|GiB" --width 65536 --depth 8
usage_case "--depth 0" "--depth|0" --depth 0
usage_case "--depth -3" "--depth|-3" --depth -3
usage_case "--depth abc" "--depth|abc" --depth abc
usage_case "--width 0" "--width|0" --width 0
usage_case "--seq 0" "--seq|0" --seq 0
usage_case "--batch -1" "--batch|-1" --batch -1
usage_case "--seeds 0" "--seeds|0" --seeds 0
usage_case "--seed 2^64-1" "--seed|18446744073709551615" --seed 18446744073709551615
usage_case "--seed -1" "--seed|-1" --seed -1
usage_case "--threads 0" "--threads|0" --threads 0
usage_case "--mlp-ratio -1" "--mlp-ratio|-1" --mlp-ratio -1
usage_case "--norm-eps 0" "--norm-eps|0" --norm-eps 0
usage_case "--scale-init bogus" "--scale-init|bogus" --scale-init bogus
usage_case "--scale-init -2" "--scale-init|-2" --scale-init -2
usage_case "--act tanh" "--act|tanh" --act tanh
usage_case "width not divisible by heads" "--width|30|--heads|4" --block transformer --width 30 --heads 4
usage_case "--heads 0" "--heads|0" --block transformer --heads 0
usage_case "--input words" "--input|words" --input words
usage_case "--top-k 3" "--top-k|3" --block moe --top-k 3
usage_case "--top-k above --experts" "--top-k|--experts" --block moe --experts 1 --top-k 2
usage_case "--experts 0" "--experts|0" --block moe --experts 0
usage_case "--capacity -1" "--capacity|-1" --block moe --capacity -1
usage_case "--vocab 0" "--vocab|0" --input tokens --vocab 0
usage_case "--norm batchnorm" "--norm|batchnorm" --norm batchnorm
usage_case "--norm dyt under rezero (no norms)" "--norm dyt|--placement rezero" --norm dyt --placement rezero
usage_case "--norm dyt under tfixup (no norms)" "--norm dyt|--placement tfixup" --norm dyt \
    --placement tfixup --block transformer
usage_case "--dyt-init 0" "--dyt-init|0" --norm dyt --dyt-init 0
usage_case "--block cnn" "--block|cnn" --block cnn
usage_case "stray positional argument" "stray" stray
usage_case "output in a nonexistent directory" "nodir/out.h5" --out nodir/out.h5

# unknown option: argp's message alone (its "Try ... --help" hint only at a terminal)
new_case "unknown option"
"$BIN" propagate "${SMALL[@]}" --out out.h5 --frobnicate >.stdout 2>.stderr </dev/null
check_outcome $? 2 --frobnicate
end_case

# --span-variant is gone (the wrapped SpanNorm is --placement span-wrapped): an unknown option
new_case "removed --span-variant"
"$BIN" propagate "${SMALL[@]}" --out out.h5 --placement span --span-variant wrapped \
    >.stdout 2>.stderr </dev/null
check_outcome $? 2 --span-variant
end_case

# output path whose parent is a regular file (.keep, here and below, is made by the test and is
# not a leftover)
new_case "output parent is a regular file"
echo "not a directory" >.keep
"$BIN" propagate "${SMALL[@]}" --out .keep/out.h5 >.stdout 2>.stderr </dev/null
check_outcome $? 2 .keep/out.h5
[ "$(cat .keep)" = "not a directory" ] || fail "the regular file was modified"
end_case

# an existing directory (with and without a trailing slash), or an empty name, cannot be the
# output file either: refused before any work, like any other unwritable path
new_case "output path is an existing directory"
mkdir .keep
"$BIN" propagate "${SMALL[@]}" --out .keep >.stdout 2>.stderr </dev/null
check_outcome $? 2 .keep
end_case

new_case "output path is an existing directory with a trailing slash"
mkdir .keep
"$BIN" propagate "${SMALL[@]}" --out .keep/ >.stdout 2>.stderr </dev/null
check_outcome $? 2 .keep/
end_case

new_case "empty output path"
"$BIN" propagate "${SMALL[@]}" --out '' >.stdout 2>.stderr </dev/null
check_outcome $? 2 out
end_case

new_case "unknown subcommand"
"$BIN" frobnicate --depth 2 >.stdout 2>.stderr </dev/null
check_outcome $? 2 frobnicate
end_case

# no arguments: exit 2, a usage on stderr naming the subcommands
new_case "no arguments"
"$BIN" >.stdout 2>.stderr </dev/null
st=$?
[ "$st" -eq 2 ] || fail "expected exit 2, got $(describe_status $st)"
[ -s .stdout ] && fail "expected nothing on stdout, got: $(head -c 300 .stdout)"
grep -q normscope .stderr || fail "the usage on stderr does not name normscope: $(head -c 300 .stderr)"
grep -qw propagate .stderr || fail "the usage on stderr does not mention 'propagate': $(head -c 300 .stderr)"
end_case

# --- runtime failures: exit 1 ---

# a file-size limit: the HDF5 file (about 58 KiB at these sizes) cannot be written in 16 KiB
new_case "file-size limit (ulimit -f 16)"
(
    ulimit -f 16 || exit 99
    exec "$BIN" propagate --depth 64 --width 32 --seq 8 --batch 2 --seeds 8 --threads 1 \
        --out big.h5
) >.stdout 2>.stderr </dev/null
check_outcome $? 1 big.h5
end_case

# Ctrl-C / kill: start a long run, wait until it has set up its signal handlers (they are
# installed before the output's .partial file is created), signal it, expect exit 1 and a one-line
# "interrupted" message, and nothing left behind. `env --default-signal` undoes the SIG_IGN that a
# non-interactive shell gives background jobs for SIGINT, as for a foreground job at a terminal.
DEFSIG=()
env --default-signal=INT true 2>/dev/null && DEFSIG=(env "--default-signal=INT,TERM")
for sig in INT TERM; do
    new_case "SIG$sig during a long run"
    "${DEFSIG[@]}" "$BIN" propagate --depth 64 --width 128 --seq 32 --batch 4 --seeds 1000 \
        --threads 1 --out long.h5 >.stdout 2>.stderr </dev/null &
    pid=$!
    # wait (up to 20 s) for the partial file
    for ((i = 0; i < 1000; i++)); do
        compgen -G "long.h5.partial-*" >/dev/null && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.02
    done
    compgen -G "long.h5.partial-*" >/dev/null || fail "no long.h5.partial-* appeared while running"
    kill -"$sig" $pid 2>/dev/null || fail "the run ended before it could be signalled"
    # it must stop promptly (up to 15 s), else kill it for good
    for ((i = 0; i < 750; i++)); do
        kill -0 $pid 2>/dev/null || break
        sleep 0.02
    done
    if kill -0 $pid 2>/dev/null; then
        fail "still running 15 s after SIG$sig; killing it"
        kill -KILL $pid 2>/dev/null
    fi
    wait $pid
    check_outcome $? 1 interrupted
    end_case
done

# --- limits: ulimit -v and ulimit -f ---

# Under an address-space limit (ulimit -v) every command ends: it runs if it fits (status 0, in
# under 20 s), else one line and status 1 or 2 within 5 s, nothing left behind; never the
# endless retry of OpenBLAS's buffer mapping (before: every command, --help included, spun at
# full CPU until `timeout 20` ended it). The compute commands get --threads 2 so that the
# estimate does not depend on the machine's cores. limit_case NAME KB ARGS...
limit_case() {
    local name=$1 kb=$2
    shift 2
    new_case "ulimit -v $kb: $name"
    mkdir .keep
    local t0 st ms
    t0=$(date +%s%N)
    (
        ulimit -v "$kb" || exit 99
        exec timeout 20 "$BIN" "$@"
    ) >.stdout 2>.stderr </dev/null
    st=$?
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$st" -ne 124 ] || fail "still running after 20 s"
    [ "$st" -eq 0 ] || [ "$ms" -le 5000 ] || fail "took $ms ms to fail (at most 5000)"
    if [ "$st" -eq 0 ]; then
        : >.stdout # it fitted and ran: its output is not checked here
        find .keep -mindepth 1 -delete
    fi
    [ "$st" -eq 0 ] || [ "$st" -eq 1 ] || [ "$st" -eq 2 ] ||
        fail "expected exit 0, 1 or 2, got $(describe_status "$st")"
    # plot fails figure by figure (gnuplot itself can crash under the limit, more so on a busy
    # machine): the figures it reported before the failure stay, each whole (plots/README.md),
    # and nothing else may be left
    if [ "$st" -ne 0 ] && [ "$name" = plot ]; then
        local line img
        while IFS= read -r line; do
            img=${line#wrote }
            [ "$img" != "$line" ] && [ -f "$img" ] && [ -f "${img%.*}.dat" ] &&
                [ -f "${img%.*}.gp" ] || fail "reported but not whole: $line"
            rm -f "$img" "${img%.*}.dat" "${img%.*}.gp"
        done <.stdout
        : >.stdout
    fi
    [ "$st" -eq 0 ] || check_outcome "$st" "$st"
    end_case
}
PLOT_IN=$ROOT/plot_in.h5
"$BIN" propagate --depth 4 --width 16 --seq 4 --batch 2 --seeds 2 --threads 1 --out "$PLOT_IN" \
    >/dev/null || echo "FAIL: cannot make the plot input $PLOT_IN"
# (skipped where no limit lets the program start at all: an ASan build reserves terabytes of
# shadow memory)
LIMITS=(100 200 300)
if ! (ulimit -v 102400 && "$BIN" --version) >/dev/null 2>&1; then
    echo "note: the program does not start under ulimit -v; its limit cases are skipped"
    LIMITS=()
fi
for mb in "${LIMITS[@]}"; do
    kb=$((mb * 1024))
    limit_case propagate $kb propagate --depth 2 --width 16 --threads 2 --out .keep/p.h5
    limit_case train $kb train --depth 2 --width 16 --heads 2 --seq 8 --steps 5 --warmup 1 \
        --threads 2 --out .keep/t.h5
    limit_case verify $kb verify --quick --threads 2 --out .keep/v.h5
    limit_case bench $kb bench --quick --threads 2 --only W1
    limit_case plot $kb plot "$PLOT_IN" --out .keep
    limit_case placements $kb placements
    limit_case --help $kb --help
    limit_case "propagate --help" $kb propagate --help
done

# Under a file-size limit, plot reports no truncated image: gnuplot is killed by SIGXFSZ
# (normscope ignores it, and an ignored signal would stay ignored in gnuplot), and a figure
# appears whole (data, script, every format) or not at all. 4 KiB: the first image fails.
new_case "plot under ulimit -f 4"
mkdir .keep
(
    ulimit -f 4 || exit 99
    exec "$BIN" plot "$PLOT_IN" --out .keep --format png
) >.stdout 2>.stderr </dev/null
check_outcome $? 1 "signal 25"
end_case

# 16 KiB: a few figures fit in PDF and SVG, then one figure's PDF fits and its SVG does not; the
# figures reported on stdout are whole, and nothing else is there (not that figure's PDF)
new_case "plot under ulimit -f 16: whole figures only"
mkdir .keep
(
    ulimit -f 16 || exit 99
    exec "$BIN" plot "$PLOT_IN" --out .keep --format pdf,svg
) >.stdout 2>.stderr </dev/null
st=$?
[ "$st" -eq 1 ] || fail "expected exit 1, got $(describe_status "$st")"
[ "$(wc -l <.stderr)" -eq 1 ] || fail "expected one line on stderr: $(tr '\n' '|' <.stderr)"
expect=$(sed -n 's#^wrote \.keep/\(.*\)\.\(pdf\|svg\)$#\1#p' .stdout | sort -u |
    while read -r f; do printf '%s\n' "$f.dat" "$f.gp" "$f.pdf" "$f.svg"; done | sort)
there=$(ls .keep | sort)
[ -n "$expect" ] || fail "no figure was reported (the limit no longer cuts midway?)"
[ "$expect" = "$there" ] ||
    fail "the output directory holds more or less than the reported figures: $(echo $there)"
end_case

# train after a failed write of its log (ulimit -f): one line, status 1, no crash in HDF5's exit
# handler (it crashed closing the file whose flush had failed). 8 KiB: the log fails before it
# appears (nothing left); 64 KiB: at its first flush (the log stays, as kill -9 leaves it).
for kb in 8 64; do
    new_case "train under ulimit -f $kb"
    (
        ulimit -f $kb || exit 99
        exec "$BIN" train --depth 2 --width 32 --heads 2 --seq 16 --steps 400 --probe-every 10 \
            --threads 1 --out t.h5
    ) >.stdout 2>.stderr </dev/null
    st=$?
    [ $kb -eq 64 ] && { [ -f t.h5 ] || fail "no log t.h5"; rm -f t.h5; }
    check_outcome $st 1 t.h5
    end_case
done

# SIGTERM ends every run within a second, even one busy for many seconds between two polls of
# the stop flag: inside one wide block's matrix products (35 s at width 8192 before the grace
# timer), and inside a long held-out evaluation of train (27 s at 400 batches). The signal is
# sent 1 s after the run's file appears, when the work between two polls is under way.
# slow_term_case NAME FILE KEEP CMD...: FILE is what appears once the run is under way; KEEP the
# files it may leave (a training log and its checkpoint), checked and removed before the usual
# checks
slow_term_case() {
    local name=$1 file=$2 keep=$3
    shift 3
    new_case "SIGTERM within 1 s: $name"
    "${DEFSIG[@]}" "$BIN" "$@" >.stdout 2>.stderr </dev/null &
    local pid=$! t0 t1 ms
    for ((i = 0; i < 1500; i++)); do
        compgen -G "$file" >/dev/null && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.02
    done
    sleep 1
    kill -0 $pid 2>/dev/null || fail "the run ended before it could be signalled"
    t0=$(date +%s%N)
    kill -TERM $pid 2>/dev/null
    while kill -0 $pid 2>/dev/null && [ $(($(date +%s%N) - t0)) -lt 15000000000 ]; do
        sleep 0.01
    done
    t1=$(date +%s%N)
    kill -KILL $pid 2>/dev/null
    wait $pid
    local st=$?
    ms=$(((t1 - t0) / 1000000))
    echo "  SIGTERM to exit: $ms ms ($name)"
    [ "$ms" -le 1000 ] || fail "the run took $ms ms to end after SIGTERM (at most 1000)"
    [ -z "$keep" ] || rm -f $keep
    check_outcome $st 1 interrupted
    end_case
}
slow_term_case "one block of width 8192" "wide.h5.partial-*" "" \
    propagate --width 8192 --depth 1 --seq 64 --batch 2 --seeds 1 --threads 1 --out wide.h5
slow_term_case "train's held-out evaluation" "t.h5" "t.h5 t.h5.ckpt" \
    train --depth 2 --width 128 --heads 2 --seq 64 --batch 8 --steps 10 --warmup 1 \
    --probe-every 1 --eval-batches 2000 --threads 1 --out t.h5

for c in "${!nclass[@]}"; do
    echo "  $c: ${nclass[$c]} cases, ${nclass_failed[$c]:-0} failed"
done
if [ "$nfail" -ne 0 ]; then
    echo "bad_input: $nfail of $ncase cases FAILED"
    exit 1
fi
echo "bad_input: all $ncase cases passed"
exit 0
