#!/usr/bin/env bash
# hostile_paths.sh BIN: a hostile directory cannot turn normscope's files against the user.
#
# 1. A symbolic link planted at the name of a temporary (OUT.partial-PID of every output, the
#    sweep's progress file and its own temporary, the training log's, the checkpoint's, plot's
#    .dat/.gp/image temporaries) is never written through: its target stays as it was. A FIFO
#    planted there never blocks the run. (The PID is known in advance: `sh -c '...; exec BIN'`
#    plants the name with the shell's own PID, which exec hands to normscope.)
# 2. An output that exists and is not a regular file (a device, a FIFO, a socket, a directory),
#    or that is one of the inputs, is refused before any work: exit 2, one line.
# 3. An input that is not a regular file (a FIFO, /dev/zero) is refused: exit 2, one line.
# 4. Small limits: --threads above 1024, a sweep of more than 2^20 points (16 lists of 64 values
#    overflow 64 bits), an empty comma-list value: exit 2, one line. Out of memory: exit 1.
# 5. Every usage error is exactly one line on stderr (no "Try ... --help" hint off a terminal).
# Every run is wrapped in `timeout 10`: a hang is a failure, not a stuck test.
# Prints only failures and a final summary line; exits non-zero on any failure.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: hostile_paths.sh /path/to/normscope" >&2
    exit 2
fi
BIN=$1
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ns-e2e-hostile.XXXXXX") || exit 2
trap 'rm -rf "$ROOT"' EXIT

SMALL=(--depth 2 --width 8 --seq 4 --batch 1 --seeds 1 --threads 1)
TRAIN=(--steps 3 --warmup 1 --depth 2 --width 8 --heads 2 --seq 4 --batch 1 --threads 1
    --probe-every 3 --eval-batches 1)
VICTIM="precious contents"
ncase=0
nfail=0
failed=0

fail() {
    echo "FAIL [$CASE]: $*"
    failed=1
}

new_case() {
    CASE=$1
    ncase=$((ncase + 1))
    failed=0
    DIR=$ROOT/case$ncase
    mkdir -p "$DIR" && cd "$DIR" || exit 2
    echo "$VICTIM" >victim
}

end_case() {
    [ "$failed" = 0 ] || nfail=$((nfail + 1))
    cd "$ROOT" || exit 2
}

# run ARGS...: normscope with ARGS under a 10 s timeout; status in $st, output in .out/.err
run() {
    timeout 10 "$BIN" "$@" >.out 2>.err </dev/null
    st=$?
    [ "$st" -eq 124 ] && fail "hung (killed after 10 s): $*"
}

# planted KIND NAME ARGS...: plants a symlink to ./victim (KIND=link) or a FIFO (KIND=fifo) at
# NAME with '$$' replaced by normscope's PID, then runs normscope ARGS with that PID
planted() {
    local kind=$1 name=$2
    shift 2
    timeout 10 sh -c 'name=$(printf %s "$2" | sed "s/PID/$$/g")
        if [ "$1" = link ]; then ln -s "$PWD/victim" "$name"; else mkfifo "$name"; fi || exit 99
        shift 2; exec "$@"' sh "$kind" "$name" "$BIN" "$@" >.out 2>.err </dev/null
    st=$?
    [ "$st" -eq 124 ] && fail "hung (killed after 10 s) with a $kind at $name"
}

expect_ok() {
    [ "$st" -eq 0 ] || fail "expected exit 0, got $st: $(head -c 300 .err)"
}

victim_untouched() {
    [ -f victim ] && [ ! -L victim ] && [ "$(cat victim)" = "$VICTIM" ] ||
        fail "the link's target was written: $(head -c 100 victim | tr '\n' '|')"
}

# one_line STATUS NEEDLE...: exit STATUS, nothing on stdout, exactly one line on stderr that
# starts with "normscope" and contains every NEEDLE
one_line() {
    local want=$1 n
    shift
    [ "$st" -eq "$want" ] || fail "expected exit $want, got $st: $(head -c 300 .err)"
    [ -s .out ] && fail "expected nothing on stdout, got: $(head -c 200 .out)"
    n=$(wc -l <.err)
    [ -n "$(tail -c 1 .err)" ] && n=$((n + 1))
    [ "$n" -eq 1 ] || fail "expected exactly one line on stderr, got $n: $(head -c 400 .err | tr '\n' '|')"
    case $(head -n 1 .err) in normscope*) ;; *) fail "stderr does not start with normscope: $(head -n 1 .err)" ;; esac
    local needle
    for needle in "$@"; do
        grep -qF -- "$needle" .err || fail "message does not name '$needle': $(head -n 1 .err)"
    done
}

is_hdf5() {
    [ -f "$1" ] && [ ! -L "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = "211HDF" ] ||
        fail "$1 is not a regular HDF5 file"
}

# ---- 1. planted symlinks and FIFOs at every temporary name -----------------------------------
for kind in link fifo; do
    new_case "$kind at the output's temporary (propagate)"
    planted $kind out.h5.partial-PID propagate "${SMALL[@]}" --out out.h5
    expect_ok
    is_hdf5 out.h5
    victim_untouched
    end_case

    new_case "$kind at the sweep output's temporary"
    planted $kind sw.h5.partial-PID propagate "${SMALL[@]}" --depth 2,3 --out sw.h5
    expect_ok
    is_hdf5 sw.h5
    [ -e sw.h5.partial-sweep ] && fail "the progress file was left behind"
    victim_untouched
    end_case

    new_case "$kind at the training log's temporary"
    planted $kind t.h5.partial-PID train "${TRAIN[@]}" --out t.h5
    expect_ok
    is_hdf5 t.h5
    victim_untouched
    end_case

    new_case "$kind at the checkpoint's temporary"
    planted $kind t.h5.ckpt.partial-PID train "${TRAIN[@]}" --checkpoint-every 1 --out t.h5
    expect_ok
    is_hdf5 t.h5.ckpt
    victim_untouched
    end_case

    for tmp in act_ms.dat act_ms.gp act_ms.png; do
        new_case "$kind at plot's $tmp temporary"
        run propagate "${SMALL[@]}" --seeds 2 --out p.h5
        mkdir figs
        planted $kind "figs/$tmp.partial-PID" plot p.h5 --out figs
        expect_ok
        [ -f figs/act_ms.png ] && [ -s figs/act_ms.dat ] && [ -s figs/act_ms.gp ] ||
            fail "act_ms figure incomplete: $(ls figs | tr '\n' ' ')"
        victim_untouched
        end_case
    done
done

# the checkpoint's own name: a link there is replaced by the checkpoint, not written through
new_case "link at the checkpoint's name"
ln -s "$PWD/victim" t.h5.ckpt
run train "${TRAIN[@]}" --checkpoint-every 1 --out t.h5
expect_ok
is_hdf5 t.h5.ckpt
victim_untouched
end_case

# the sweep's progress file is read back by a rerun: a link to something that is not one is
# refused (exit 2), a FIFO too, without blocking
new_case "link at the sweep's progress file"
ln -s "$PWD/victim" sw.h5.partial-sweep
run propagate "${SMALL[@]}" --depth 2,3 --out sw.h5
one_line 2 sw.h5.partial-sweep
victim_untouched
end_case

new_case "FIFO at the sweep's progress file"
mkfifo sw.h5.partial-sweep
run propagate "${SMALL[@]}" --depth 2,3 --out sw.h5
one_line 2 sw.h5.partial-sweep FIFO
end_case

# the progress file's own temporary, written when the first point of a sweep is done and again
# when the sweep is stopped (SIGTERM) during its long second point (exit 1; 0 if it finished)
for kind in link fifo; do
    new_case "$kind at the progress file's temporary"
    timeout 20 sh -c 'name=sw.h5.partial-sweep.partial-$$
        if [ "$1" = link ]; then ln -s "$PWD/victim" "$name"; else mkfifo "$name"; fi || exit 99
        shift; exec "$@"' sh $kind "$BIN" propagate --depth 2,256 --width 128 --seq 32 --batch 4 \
        --seeds 1 --threads 1 --out sw.h5 >.out 2>.err </dev/null &
    pid=$!
    for ((i = 0; i < 150; i++)); do
        compgen -G "sw.h5.partial-sweep.partial-*" >/dev/null && break
        sleep 0.02
    done
    sleep 1
    kill -TERM $pid 2>/dev/null
    wait $pid
    st=$?
    [ "$st" -eq 124 ] && fail "hung"
    [ "$st" -eq 1 ] || [ "$st" -eq 0 ] || fail "expected exit 1 (interrupted), got $st: $(head -c 300 .err)"
    if [ -e sw.h5.partial-sweep ]; then
        [ -f sw.h5.partial-sweep ] && [ ! -L sw.h5.partial-sweep ] ||
            fail "the progress file is not a regular file"
    fi
    victim_untouched
    end_case
done

# ---- 2. outputs that are not regular files, outputs that are inputs ------------------------
# a device as the output: as root, a program that renames onto it would replace the device
# with a regular file. The case uses its own node (mknod, the numbers of /dev/null) so that a
# broken build cannot damage the system's /dev/null; without root, /dev/null itself (which a
# non-root run cannot replace) must be refused all the same.
new_case "--out a character device"
if [ "$(id -u)" -eq 0 ] && mknod -m 666 null c 1 3 2>/dev/null; then
    before=$(stat -c '%F %i %t:%T' null)
    run propagate "${SMALL[@]}" --out null
    one_line 2 null "character device"
    [ "$(stat -c '%F %i %t:%T' null)" = "$before" ] || fail "the device was replaced"
    run train "${TRAIN[@]}" --out null
    one_line 2 null "character device"
    [ "$(stat -c '%F %i %t:%T' null)" = "$before" ] || fail "the device was replaced (train)"
    run verify --quick --threads 1 --out null
    one_line 2 null "character device"
    [ "$(stat -c '%F %i %t:%T' null)" = "$before" ] || fail "the device was replaced (verify)"
else
    echo "note: not root (or no mknod): --out /dev/null is checked as refused only"
    run propagate "${SMALL[@]}" --out /dev/null
    one_line 2 /dev/null "character device"
fi
end_case

new_case "--out a FIFO"
mkfifo out.h5
run propagate "${SMALL[@]}" --out out.h5
one_line 2 out.h5 FIFO
[ -p out.h5 ] || fail "the FIFO was replaced"
run train "${TRAIN[@]}" --out out.h5
one_line 2 out.h5 FIFO
end_case

new_case "--out a socket"
if python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' out.sock 2>/dev/null; then
    run propagate "${SMALL[@]}" --out out.sock
    one_line 2 out.sock socket
    [ -S out.sock ] || fail "the socket was replaced"
else
    echo "note: no python3 to make a socket; case skipped"
fi
end_case

new_case "checkpoint name is a FIFO"
mkfifo t.h5.ckpt
run train "${TRAIN[@]}" --out t.h5
one_line 2 t.h5.ckpt FIFO
[ -e t.h5 ] && fail "the log was created"
end_case

new_case "train --data d.txt --out d.txt"
head -c 4000 /dev/urandom >d.txt
cp d.txt d.orig
run train "${TRAIN[@]}" --vocab 256 --data d.txt --out d.txt
one_line 2 d.txt
cmp -s d.txt d.orig || fail "the data file was modified"
run train "${TRAIN[@]}" --vocab 256 --data d.txt --out ./link.h5
expect_ok # a different file: fine
ln -sf d.txt same.h5
run train "${TRAIN[@]}" --vocab 256 --data d.txt --out same.h5
one_line 2 d.txt same.h5
ln d.txt o.h5.ckpt
run train "${TRAIN[@]}" --vocab 256 --data d.txt --out o.h5
one_line 2 d.txt o.h5.ckpt
cmp -s d.txt d.orig || fail "the data file was modified"
end_case

new_case "plot: an output in --out DIR is an input"
run propagate "${SMALL[@]}" --seeds 2 --out p.h5
mkdir figs
cp p.h5 figs/act_ms.png
cp p.h5 figs/in.h5
run plot figs/act_ms.png --out figs
one_line 2 act_ms.png
cmp -s figs/act_ms.png p.h5 || fail "the input was modified"
[ -e figs/act_ms.dat ] && fail "a figure was written"
ln figs/in.h5 figs/grad_ms.dat
run plot figs/in.h5 --out figs
one_line 2 grad_ms.dat in.h5
cmp -s figs/in.h5 p.h5 || fail "the input was modified"
end_case

new_case "plot: a figure's name in --out DIR is a FIFO"
run propagate "${SMALL[@]}" --seeds 2 --out p.h5
mkdir figs && mkfifo figs/act_ms.gp
run plot p.h5 --out figs
one_line 2 act_ms.gp FIFO
[ -p figs/act_ms.gp ] || fail "the FIFO was replaced"
end_case

# ---- 3. inputs that are not regular files ---------------------------------------------------
new_case "plot a FIFO"
mkfifo in.h5
run plot in.h5 --out figs
one_line 2 in.h5 FIFO
[ -e figs ] && fail "the output directory was made"
end_case

new_case "train --data a FIFO"
mkfifo d.txt
run train "${TRAIN[@]}" --vocab 256 --data d.txt --out t.h5
one_line 2 d.txt FIFO
end_case

new_case "train --data /dev/zero"
run train "${TRAIN[@]}" --vocab 256 --data /dev/zero --out t.h5
one_line 2 /dev/zero "character device"
end_case

new_case "train --resume with a FIFO for the checkpoint"
run train "${TRAIN[@]}" --checkpoint-every 1 --out t.h5
expect_ok
rm -f t.h5.ckpt && mkfifo t.h5.ckpt
run train "${TRAIN[@]}" --steps 4 --checkpoint-every 1 --out t.h5 --resume
one_line 2 t.h5.ckpt FIFO
end_case

new_case "train --resume with a FIFO for the log"
mkfifo t.h5
run train "${TRAIN[@]}" --out t.h5 --resume
one_line 2 t.h5 FIFO
end_case

# ---- 4. small limits ------------------------------------------------------------------------
for cmd in propagate train verify bench; do
    new_case "$cmd --threads 100000"
    case $cmd in
    propagate) run propagate "${SMALL[@]}" --threads 100000 --out out.h5 ;;
    train) run train "${TRAIN[@]}" --threads 100000 --out out.h5 ;;
    verify) run verify --quick --threads 100000 --out out.h5 ;;
    bench) run bench --quick --threads 100000 ;;
    esac
    one_line 2 --threads 100000
    [ -e out.h5 ] && fail "an output was written"
    end_case
done

new_case "a sweep of 64^16 points"
L=$(seq -s, 1 64)
run propagate --depth "$L" --width "$L" --heads "$L" --seq "$L" --batch "$L" --experts "$L" \
    --top-k "$L" --vocab "$L" --seeds "$L" --seed "$L" --mlp-ratio "$L" --expert-ratio "$L" \
    --capacity "$L" --norm-eps "$L" --scale-init "$L" --block mlp,mlp,mlp,mlp --out out.h5
one_line 2 points
[ -e out.h5 ] && fail "an output was written"
end_case

for list in 4,,8 4, ,4 ,; do
    new_case "--depth '$list'"
    run propagate "${SMALL[@]}" --depth "$list" --out out.h5
    one_line 2 --depth "$list"
    end_case
done

new_case "plot --format 'png,'"
run plot x.h5 --out figs --format png,
one_line 2 --format png,
end_case

# out of memory while building the Markov language (2^22 contexts) under an address-space
# limit: exit 1, one line. Skipped where the limit stops the program from starting at all (an
# ASan build reserves terabytes of shadow memory).
new_case "Markov language out of memory"
if (ulimit -v 400000 && "$BIN" --version) >/dev/null 2>&1; then
    (
        ulimit -v 400000
        exec timeout 20 "$BIN" train "${TRAIN[@]}" --vocab 2048 --markov-order 2 --branching 8 \
            --out t.h5
    ) >.out 2>.err </dev/null
    st=$?
    one_line 1 "out of memory"
else
    echo "note: the program does not start under ulimit -v; out-of-memory case skipped"
fi
end_case

# ---- 5. one line per usage error -----------------------------------------------------------
for cmd in propagate train verify plot bench placements; do
    new_case "$cmd --frobnicate"
    run $cmd --frobnicate
    one_line 2 --frobnicate
    end_case
done
new_case "option without its value"
run propagate "${SMALL[@]}" --out out.h5 --depth
one_line 2 --depth
end_case

if [ "$nfail" -ne 0 ]; then
    echo "hostile_paths: $nfail of $ncase cases FAILED"
    exit 1
fi
echo "hostile_paths: all $ncase cases passed"
exit 0
